"""Reading results back through the plan: exactly the planned stages whose outputs match it.

A stage left on disk by an earlier plan (a larger grid, other settings) is not in the plan or
does not match its fingerprint, so it never enters a table; a planned point without a finished
result is listed as missing instead.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from typing import Any

from resistkit.files import read_jsonl
from resistkit.pipeline import layout
from resistkit.pipeline.runner import Plan, Point
from resistkit.report.tables import t_interval


def metric_of(exp: Any, plan: Plan) -> str:
    """The recipe's ``eval.metric``, else the first score column of the first finished point."""
    if exp.eval.metric:
        return exp.eval.metric
    for point in plan.points:
        name = point.stages.get(layout.SCORE)
        if name is not None and plan.done(name):
            return next(iter(plan.outputs(name)["columns"]))
    from resistkit.errors import RunError

    raise RunError(f"{plan.run_dir}: no score stage of the plan has finished yet; "
                   "`resistkit run` it first")


def missing_points(plan: Plan) -> list[dict[str, Any]]:
    """Planned points whose metric has no finished result (yet): the score, or for a
    model-side metric the compression stage."""
    return [p.label for p in plan.points
            if not plan.done(p.stages.get(layout.SCORE) or p.stages[layout.COMPRESSION])]


def _key(point: Point) -> tuple[str, int, int]:
    return point.label["model"], point.label["q1"], point.label["q2"]


def _scores(plan: Plan, point: Point, metric: str) -> tuple[list[float], dict[str, float], int]:
    """A point's metric values, the same keyed by record id (for pairing), and its NaN count."""
    values, by_id, nan = [], {}, 0
    for row in read_jsonl(plan.dir(point.stages[layout.SCORE]) / layout.SCORES):
        v = row.get(metric)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            nan += 1
        else:
            values.append(float(v))
            by_id[str(row.get("id"))] = float(v)
    return values, by_id, nan


def _unscored_reasons(plan: Plan, point: Point, metric: str) -> dict[str, int]:
    """Why the metric's scorer left records of a point unscored, from its summary."""
    from resistkit.files import read_json

    path = plan.dir(point.stages[layout.SCORE]) / layout.SUMMARY
    if not path.is_file():
        return {}
    summary = read_json(path)
    owner = summary.get("columns", {}).get(metric, {}).get("scorer")
    reasons = summary.get("scorers", {}).get(owner, {}).get("not_scored", {})
    return {str(k): int(v) for k, v in reasons.items()}


def collect_points(plan: Plan, metric: str) -> list[dict[str, Any]]:
    """One row per (model, q1, q2): records pooled over seeds, plus the spread of seed means.

    The base model is q1 = q2 = -1. ``_by_id`` maps (seed, record id) to the score: every
    checkpoint decodes with the same seeds, so records with one id are paired across
    checkpoints and differences can be tested pairwise.
    """
    pooled: dict[tuple, dict[int, list[float]]] = defaultdict(dict)
    compression: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    nan_counts: dict[tuple, int] = defaultdict(int)
    why: dict[tuple, dict[str, int]] = defaultdict(dict)
    by_id: dict[tuple, dict[tuple[int, str], float]] = defaultdict(dict)
    for point in plan.points:
        key, seed = _key(point), point.label["seed"]
        comp = point.stages.get(layout.COMPRESSION)
        if comp is not None and plan.done(comp):
            for name, values in plan.outputs(comp)["compression"].items():
                compression[key][name].append(values["bits_per_token"])
        if not plan.done(point.stages[layout.SCORE]):
            continue
        values, ids, nan = _scores(plan, point, metric)
        nan_counts[key] += nan
        for reason, n in _unscored_reasons(plan, point, metric).items():
            why[key][reason] = why[key].get(reason, 0) + n
        by_id[key].update({(seed, i): v for i, v in ids.items()})
        pooled[key][seed] = values
    rows = [_row(key, pooled[key], nan_counts[key], by_id[key], compression.get(key, {}), metric)
            for key in sorted(pooled) if any(pooled[key].values())]
    for r in rows:  # why the `nan` responses were not scored (empty answer, ...), by count
        reasons = why.get((r["model"], r["q1"], r["q2"]), {})
        r["nan_why"] = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or ""
    by_q1 = {(r["model"], r["q1"]): r["mean"] for r in rows if r["q2"] == 0}
    for r in rows:
        start = by_q1.get((r["model"], r["q1"]))
        r["change_from_q2_0"] = r["mean"] - start if start is not None and r["q1"] >= 0 \
            else math.nan
    return rows


def _row(key: tuple, per_seed: dict[int, list[float]], nan: int, by_id: dict,
         compression: dict[str, list[float]], metric: str) -> dict[str, Any]:
    allv = [v for vals in per_seed.values() for v in vals]
    mean, sd, half = t_interval(allv)
    seed_means = [statistics.fmean(v) for v in per_seed.values() if v]
    return {
        "model": key[0], "q1": key[1], "q2": key[2], "metric": metric,
        "mean": mean, "ci95_half": half, "std": sd, "n": len(allv), "nan": nan,
        "seeds": len(seed_means),
        "seed_std": statistics.stdev(seed_means) if len(seed_means) > 1 else math.nan,
        "_by_id": by_id, "_seed_values": {s: statistics.fmean(v) for s, v in per_seed.items()
                                          if v},
        **{f"bits_per_token[{k}]": statistics.fmean(v) for k, v in compression.items()},
    }


def collect_pairs(plan: Plan) -> list[dict[str, Any]]:
    """Setting I: forward vs inverse training loss per slice pair, over seeds."""
    found: dict[tuple[int, int], dict[str, dict[int, dict]]] = defaultdict(
        lambda: defaultdict(dict))
    for run in plan.pairs:
        if not plan.done(run.stage):
            continue
        out = plan.outputs(run.stage)
        label = run.label
        found[(label["k"], label["l"])][label["direction"]][label["seed"]] = {
            "mean_loss": statistics.fmean(x["loss"] for x in out["losses"]),
            "final_loss": out.get("target_loss", math.nan),
        }
    return [row for (k, l), sides in sorted(found.items())  # noqa: E741
            if (row := _pair_row(k, l, sides.get("forward", {}), sides.get("inverse", {})))]


def _pair_row(k: int, l: int, fwd: dict, inv: dict) -> dict[str, Any] | None:  # noqa: E741
    seeds = sorted(set(fwd) & set(inv))
    if not seeds:
        return None

    def ms(values: list[float]) -> tuple[float, float]:
        return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1
                                          else math.nan)

    diffs = [inv[s]["mean_loss"] - fwd[s]["mean_loss"] for s in seeds]
    f_mean, f_sd = ms([fwd[s]["mean_loss"] for s in seeds])
    i_mean, i_sd = ms([inv[s]["mean_loss"] for s in seeds])
    d_mean, d_sd = ms(diffs)
    return {
        "pair": f"theta{k}/theta{l}", "k": k, "l": l, "seeds": len(seeds),
        "forward_loss": f_mean, "forward_std": f_sd,
        "inverse_loss": i_mean, "inverse_std": i_sd,
        "inverse_minus_forward": d_mean, "diff_std": d_sd,
        "forward_final_target_loss": ms([fwd[s]["final_loss"] for s in seeds])[0],
        "inverse_final_target_loss": ms([inv[s]["final_loss"] for s in seeds])[0],
        "resistance": all(d < 0 for d in diffs),
    }
