"""Rebound seed by seed, and as a spring: per-seed early drops with paired intervals, and an
elastic fit of the rate of change against the displacement from θ0.

The elastic fit, per seed (and pooled): along every Q1 trajectory, each step between two
consecutive Q2 points gives a rate (metric change per inverse sample) and a displacement (the
step's mean metric minus θ0's). A spring pulls back harder the further it is stretched:
rate = c + k · displacement with k < 0. k is a behaviour-level spring constant, beside the
compression-level k̂ of Hooke's law.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from resistkit.report.margin import margin_change
from resistkit.report.tables import paired_interval


def _t975(dof: int) -> float:
    from resistkit.scoring.summary import t_quantile

    return t_quantile(0.975, dof) if dof > 0 else math.nan


def paired_change(a: dict, b: dict, seed: int | None = None) -> tuple[float, float, int]:
    """Change of the metric from row a to row b (over seeds, or one seed), its 95 % paired
    half-width and how many records were paired."""
    if "_margin" in a:
        mean, var = margin_change(a, b, seed)
        n = sum(len(p[0]) + len(m[0]) for s, (p, m) in a["_margin"].items()
                if seed is None or s == seed)
        return mean, 1.96 * math.sqrt(var) if var == var else math.nan, n
    ids_a, ids_b = a["_by_id"], b["_by_id"]
    if seed is not None:
        ids_a = {k: v for k, v in ids_a.items() if k[0] == seed}
        ids_b = {k: v for k, v in ids_b.items() if k[0] == seed}
    return paired_interval(ids_a, ids_b)


def _lines(rows: list[dict]) -> dict[tuple[str, int], list[dict]]:
    out: dict[tuple[str, int], list[dict]] = {}
    for r in rows:
        if r["q1"] >= 0:
            out.setdefault((r["model"], r["q1"]), []).append(r)
    return {k: sorted(v, key=lambda r: r["q2"]) for k, v in sorted(out.items())}


def seed_drops(rows: list[dict]) -> list[dict[str, Any]]:
    """Per (model, Q1, seed): the early drop (Q2 = 0 to the first Q2 > 0), paired interval."""
    out = []
    for (model, q1), line in _lines(rows).items():
        if len(line) < 2 or line[0]["q2"] != 0:
            continue
        a, b = line[0], line[1]
        for seed in sorted(a["_seed_values"]):
            drop, half, n = paired_change(a, b, seed)
            out.append({"model": model, "q1": q1, "seed": seed, "early_q2": b["q2"],
                        "early_drop": drop, "early_drop_paired_ci95_half": half, "paired_n": n,
                        "drop_over_se": drop / (half / 1.96) if half and half == half
                        else math.nan})
    return out


def ordered_by_q1(drops: list[dict]) -> list[dict[str, Any]]:
    """Per (model, seed): is the early drop steeper (more negative) for every larger Q1, and
    by how many standard errors is the largest Q1's drop below the smallest's."""
    out = []
    for model, seed in sorted({(d["model"], d["seed"]) for d in drops}):
        line = sorted((d for d in drops if d["model"] == model and d["seed"] == seed),
                      key=lambda d: d["q1"])
        if len(line) < 2:
            continue
        first, last = line[0], line[-1]
        se = math.sqrt((first["early_drop_paired_ci95_half"] / 1.96) ** 2
                       + (last["early_drop_paired_ci95_half"] / 1.96) ** 2)
        out.append({"model": model, "seed": seed,
                    "ordered": all(x["early_drop"] > y["early_drop"]
                                   for x, y in zip(line, line[1:], strict=False)),
                    "largest_minus_smallest_q1": last["early_drop"] - first["early_drop"],
                    "in_standard_errors": (last["early_drop"] - first["early_drop"]) / se
                    if se else math.nan})
    return out


def elastic_fit(rows: list[dict]) -> list[dict[str, Any]]:
    """rate = c + k · displacement, per (model, seed) and pooled over seeds (seed "all")."""
    base = {r["model"]: r for r in rows if r["q1"] < 0}
    points: dict[tuple[str, Any], list[tuple[float, float]]] = {}
    for (model, _), line in _lines(rows).items():
        if model not in base:
            continue
        for seed, v0 in base[model]["_seed_values"].items():
            for a, b in zip(line, line[1:], strict=False):
                va, vb = a["_seed_values"].get(seed), b["_seed_values"].get(seed)
                if va is None or vb is None:
                    continue
                rate = (vb - va) / (b["q2"] - a["q2"])
                shift = (va + vb) / 2 - v0
                points.setdefault((model, seed), []).append((shift, rate))
                points.setdefault((model, "all"), []).append((shift, rate))
    return [_fit(model, seed, pts) for (model, seed), pts in sorted(points.items(), key=str)
            if len(pts) >= 3]


def _fit(model: str, seed: Any, pts: list[tuple[float, float]]) -> dict[str, Any]:
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    n = len(pts)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    k = sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else math.nan
    c = my - k * mx
    resid = [y - (c + k * x) for x, y in pts]
    syy = sum((y - my) ** 2 for y in ys)
    half = _t975(n - 2) * math.sqrt(sum(e * e for e in resid) / (n - 2) / sxx) \
        if sxx and n > 2 else math.nan
    return {"model": model, "seed": seed, "steps": n,
            "k_per_100": 100 * k, "k_ci95_half_per_100": 100 * half,
            "c_per_100": 100 * c,
            "r2": 1 - sum(e * e for e in resid) / syy if syy else math.nan,
            "k_excludes_zero": bool(half == half and abs(k) > half)}


def kl_table(plan: Any, exp: Any) -> list[dict[str, Any]]:
    """The paper's Table 3 view, per (model, seed, Q1): KL(θ ‖ θ0) after alignment (Q2 = 0)
    and the Q2 at which it falls back below the threshold (interpolated between points)."""
    from resistkit.pipeline import layout

    threshold = exp.eval.kl.threshold
    traj: dict[tuple, list[tuple[int, float]]] = {}
    for point in plan.points:
        name = point.stages.get(layout.KL)
        if point.label["q1"] < 0 or name is None or not plan.done(name):
            continue
        key = (point.label["model"], point.label["seed"], point.label["q1"])
        traj.setdefault(key, []).append((point.label["q2"], plan.outputs(name)["kl"]))
    rows = [_kl_row(model, seed, q1, sorted(pts), threshold)
            for (model, seed, q1), pts in sorted(traj.items())]
    # The mean over seeds: the seeds' trajectories averaged at each Q2, then read the same way.
    for model, q1 in sorted({(r["model"], r["q1"]) for r in rows}):
        seeds = [r["_trajectory"] for r in rows if r["model"] == model and r["q1"] == q1]
        if len(seeds) < 2:
            continue
        shared = set.intersection(*({q for q, _ in t} for t in seeds))
        mean = [(q, statistics.fmean(dict(t)[q] for t in seeds)) for q in sorted(shared)]
        rows.append(_kl_row(model, "mean", q1, mean, threshold))
    return rows


def _kl_row(model: str, seed: Any, q1: int, pts: list[tuple[int, float]],
            threshold: float) -> dict[str, Any]:
    return {"model": model, "seed": seed, "q1": q1,
            "kl_after_alignment": pts[0][1] if pts[0][0] == 0 else math.nan,
            "kl_at_last_q2": pts[-1][1], "last_q2": pts[-1][0],
            "q2_below_threshold": _crossing(pts, threshold), "threshold": threshold,
            "_trajectory": pts}


def _crossing(pts: list[tuple[int, float]], threshold: float) -> float:
    """The first Q2 where KL is below the threshold, linearly interpolated (NaN: never)."""
    if pts[0][1] < threshold:
        return float(pts[0][0])
    for (q_a, k_a), (q_b, k_b) in zip(pts, pts[1:], strict=False):
        if k_b < threshold <= k_a:
            return q_a + (k_a - threshold) / (k_a - k_b) * (q_b - q_a)
    return math.nan
