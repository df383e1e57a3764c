"""The theory's measurable: Hooke's law for compression rates along a Setting II trajectory.

The paper models training as compression of D = D_pre ∪ D_align ∪ D_perturb and predicts that
as perturbation grows, the compression rate of D_align changes about k = |D_pre| / |D_align|
times faster than that of D_pre (springs in series: |Δγ_i| · |D_i| ≈ const). It never measures
γ. Here γ is the token-weighted bits/token of a data set under each checkpoint, and

    k̂ = |slope of γ_align vs Q2| / |slope of γ_pre vs Q2|

per (model, seed, Q1), with a paired bootstrap over records for a 95 % interval. Where the
base model records its pre-training volume (`pretrain_checkpoint.json`), the predicted
|D_pre| / |D_align| is reported next to it, in tokens.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from resistkit.files import read_jsonl
from resistkit.pipeline import layout


def _roles(exp: Any) -> tuple[int, int, int | None] | None:
    """Indexes of the pre-training, alignment and (if measured) perturbation sets among
    `eval.compression`, by the role each declares."""
    index = {spec.role: i for i, spec in enumerate(exp.eval.compression)}
    if "pretrain" not in index or "align" not in index:
        return None
    return index["pretrain"], index["align"], index.get("perturb")


def _records(path: Path) -> tuple[list[float], list[float]]:
    bits, tokens = [], []
    for row in read_jsonl(path):
        b, t = row.get("compression_bits"), row.get("compression_tokens")
        ok = b is not None and t is not None and not math.isnan(b) and t > 0
        bits.append(b if ok else 0.0)
        tokens.append(t if ok else 0.0)
    return bits, tokens


def _slope(xs: list[float], ys: list[float]) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def _k_of(data: dict[str, Any], xs: list[float], sel_pre: Any,
          sel_align: Any) -> tuple[float, float, float]:
    """k̂ and both slopes for one selection of records (all of them, or a bootstrap draw)."""
    slopes = {}
    for role, sel in (("pre", sel_pre), ("align", sel_align)):
        bits, toks = data[role]
        gamma = bits[:, sel].sum(axis=1) / toks[:, sel].sum(axis=1)
        slopes[role] = _slope(xs, [float(g) for g in gamma])
    k = abs(slopes["align"]) / abs(slopes["pre"]) if slopes["pre"] else math.inf
    return k, slopes["pre"], slopes["align"]


def _trajectories(plan: Any) -> dict[tuple[str, int, int], dict[int, Any]]:
    """Finished compression stages of the plan's inverse points, per (model, seed, Q1)."""
    groups: dict[tuple[str, int, int], dict[int, Any]] = defaultdict(dict)
    for point in plan.points:
        comp = point.stages.get(layout.COMPRESSION)
        if point.label["q1"] < 0 or comp is None or not plan.done(comp):
            continue
        key = (point.label["model"], point.label["seed"], point.label["q1"])
        groups[key][point.label["q2"]] = point
    return groups


def hooke_estimates(plan: Any, exp: Any, *, bootstrap: int = 400,
                    seed: int = 0) -> list[dict[str, Any]]:
    """k̂ with a paired bootstrap interval per (model, seed, Q1) of the plan."""
    import numpy as np

    roles = _roles(exp)
    if roles is None:
        return []
    pre, align, perturb = roles
    rng = np.random.default_rng(seed)
    rows = []
    for (model, run_seed, q1), by_q2 in sorted(_trajectories(plan).items()):
        q2s = sorted(by_q2)
        if len(q2s) < 2:
            continue
        dirs = [plan.dir(by_q2[q].stages[layout.COMPRESSION]) for q in q2s]
        data = {}
        for role, idx in (("pre", pre), ("align", align)):
            mats = [_records(d / layout.compression_scores(idx)) for d in dirs]
            data[role] = (np.array([b for b, _ in mats]), np.array([t for _, t in mats]))
        n_pre, n_align = data["pre"][0].shape[1], data["align"][0].shape[1]
        xs = [float(q) for q in q2s]
        k, s_pre, s_align = _k_of(data, xs, np.arange(n_pre), np.arange(n_align))
        # The perturbation set's own slope is context for k̂ (is D_perturb learned at all?).
        s_perturb = math.nan
        if perturb is not None:
            mats = [_records(d / layout.compression_scores(perturb)) for d in dirs]
            s_perturb = _slope(xs, [sum(b) / sum(t) if sum(t) else math.nan for b, t in mats])
        boots = [
            _k_of(data, xs, rng.integers(0, n_pre, n_pre), rng.integers(0, n_align, n_align))[0]
            for _ in range(bootstrap)
        ]
        lo, hi = (float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5)))
        point = by_q2[q2s[0]]
        rows.append({
            "model": model, "seed": run_seed, "q1": q1, "q2_max": q2s[-1],
            "slope_pre_bits_per_sample": s_pre, "slope_align_bits_per_sample": s_align,
            "slope_perturb_bits_per_sample": s_perturb,
            "k_hat": k, "k_ci95_low": lo, "k_ci95_high": hi,
            **_predicted_k(plan, point, q1),
        })
    return rows


def _predicted_k(plan: Any, point: Any, q1: int) -> dict[str, Any]:
    """|D_pre| / |D_align| in tokens, where the base model says how much it was trained on."""
    from resistkit.errors import ResistkitError
    from resistkit.models import resolve_model
    from resistkit.training.layout import CHECKPOINT_INFO

    try:
        resolved = resolve_model(point.base)
    except ResistkitError:  # a hub id or an unavailable built-in: no volume to compare with
        return {}
    info_path = Path(resolved.path) / CHECKPOINT_INFO
    if not resolved.is_local or not info_path.exists():
        return {}
    d_pre = json.loads(info_path.read_text())["tokens_seen"]
    # |D_align|: tokens of the first q1 forward samples, counted from the data the forward
    # stage consumed (a trainer's token counter restarts when a run resumes).
    tokens = plan.outputs(point.forward).get("tokens_at_samples") or {}
    d_align = tokens.get(str(q1))
    if not d_align:
        return {"pretrain_tokens": d_pre}
    return {"pretrain_tokens": d_pre, "align_tokens": d_align, "k_predicted": d_pre / d_align}


def hooke_scaling(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """How k̂ grows with the pre-training volume: the exponent b of k̂ ∝ |D_pre|^b, per Q1.

    The theory predicts b = 1 (k = |D_pre| / |D_align| with |D_align| fixed by Q1). Fitted by
    least squares on log k̂ against log |D_pre| over every (base, seed) row of that Q1; the
    interval is the slope's 95 % t interval. ``ratio_to_predicted`` is the geometric mean of
    k̂ / k_predicted: how far the measured stiffness is from the predicted one in level.
    """
    from resistkit.scoring.summary import t_quantile

    out = []
    for q1 in sorted({r["q1"] for r in rows}):
        pts = [
            (math.log(r["pretrain_tokens"]), math.log(r["k_hat"]), r.get("k_predicted"))
            for r in rows
            if r["q1"] == q1 and r.get("pretrain_tokens") and 0 < r["k_hat"] < math.inf
        ]
        if len({x for x, _, _ in pts}) < 2 or len(pts) < 3:
            continue
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        slope = _slope(xs, ys)
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        resid = [y - (my + slope * (x - mx)) for x, y in zip(xs, ys, strict=True)]
        sxx = sum((x - mx) ** 2 for x in xs)
        dof = len(pts) - 2
        half = (
            t_quantile(0.975, dof) * math.sqrt(sum(e * e for e in resid) / dof / sxx)
            if dof > 0 else math.nan
        )
        logs = [y - math.log(k) for _, y, k in pts if k]
        out.append({
            "q1": q1,
            "points": len(pts),
            "volumes": len({x for x, _, _ in pts}),
            "exponent": slope,
            "exponent_ci95_half": half,
            "predicted_exponent": 1.0,
            "ratio_to_predicted": math.exp(sum(logs) / len(logs)) if logs else math.nan,
        })
    return out
