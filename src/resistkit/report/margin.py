"""The likelihood margin, a model-side metric: m = bits/token(minus set) - bits/token(plus set).

Both sets are compression sets already measured at every point, so the margin has no sampling
noise; its uncertainty comes from which texts the sets hold. With per-record bits b_i and
tokens t_i of a set, its rate is r = Σb/Σt; the variance of r (linearised ratio estimator) is
n/(n-1) · Σ(b_i - r t_i)² / (Σt)². Between two checkpoints the same records are scored, so a
change is paired: Var(Δr) = n · var(Δb_i) / (Σt)², and the two sets' variances add.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from typing import Any

from resistkit.files import read_jsonl
from resistkit.pipeline import layout
from resistkit.pipeline.runner import Plan
from resistkit.pipeline.schema import margin_sets

Records = tuple[list[float], list[float]]  # per-record bits and tokens of one set


def _records(path: Any) -> Records:
    bits, tokens = [], []
    for row in read_jsonl(path):
        b, t = row.get("compression_bits"), row.get("compression_tokens")
        if b is None or t is None or (isinstance(b, float) and math.isnan(b)) or t <= 0:
            continue
        bits.append(float(b))
        tokens.append(float(t))
    return bits, tokens


def rate(records: Records) -> float:
    bits, tokens = records
    return sum(bits) / sum(tokens)


def rate_variance(records: Records) -> float:
    bits, tokens = records
    n, total = len(bits), sum(tokens)
    if n < 2:
        return math.nan
    r = sum(bits) / total
    return n / (n - 1) * math.fsum((b - r * t) ** 2 for b, t in zip(bits, tokens, strict=True)) \
        / total ** 2


def paired_rate_change(a: Records, b: Records) -> tuple[float, float]:
    """Change of a set's rate from checkpoint a to b (same records), and its variance."""
    n = min(len(a[0]), len(b[0]))
    diffs = [b[0][i] - a[0][i] for i in range(n)]
    total = sum(a[1][:n])
    if n < 2:
        return math.nan, math.nan
    return sum(diffs) / total, n * statistics.variance(diffs) / total ** 2


def margin(plus: Records, minus: Records) -> float:
    return rate(minus) - rate(plus)


def collect_margin_points(plan: Plan, exp: Any) -> list[dict[str, Any]]:
    """Rows like ``collect_points``' for the margin, pooled over seeds as the mean of the seeds'
    margins; ``_margin`` keeps each seed's records for paired changes."""
    plus_i, minus_i = margin_sets(exp)
    name = exp.eval.margin.name
    found: dict[tuple, dict[int, tuple[Records, Records]]] = defaultdict(dict)
    sets: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for point in plan.points:
        comp = point.stages.get(layout.COMPRESSION)
        if comp is None or not plan.done(comp):
            continue
        key = (point.label["model"], point.label["q1"], point.label["q2"])
        folder = plan.dir(comp)
        found[key][point.label["seed"]] = (_records(folder / layout.compression_scores(plus_i)),
                                           _records(folder / layout.compression_scores(minus_i)))
        for set_name, values in plan.outputs(comp)["compression"].items():
            sets[key][set_name].append(values["bits_per_token"])
    rows = []
    for key in sorted(found):
        per_seed = found[key]
        values = {s: margin(p, m) for s, (p, m) in per_seed.items()}
        variance = sum(rate_variance(p) + rate_variance(m) for p, m in per_seed.values())
        rows.append({
            "model": key[0], "q1": key[1], "q2": key[2], "metric": name,
            "mean": statistics.fmean(values.values()),
            "ci95_half": 1.96 * math.sqrt(variance) / len(values),
            "std": math.nan, "n": sum(len(p[0]) + len(m[0]) for p, m in per_seed.values()),
            "nan": 0, "seeds": len(values),
            "seed_std": statistics.stdev(values.values()) if len(values) > 1 else math.nan,
            "_margin": per_seed, "_seed_values": values,
            **{f"bits_per_token[{k}]": statistics.fmean(v) for k, v in sets[key].items()},
        })
    by_q1 = {(r["model"], r["q1"]): r["mean"] for r in rows if r["q2"] == 0}
    for r in rows:
        start = by_q1.get((r["model"], r["q1"]))
        r["change_from_q2_0"] = r["mean"] - start if start is not None and r["q1"] >= 0 \
            else math.nan
    return rows


def margin_change(a: dict, b: dict, seed: int | None = None) -> tuple[float, float]:
    """Mean change of the margin from row a to row b over seeds (or one seed), and its
    variance (paired over records)."""
    seeds = sorted(set(a["_margin"]) & set(b["_margin"]))
    if seed is not None:
        seeds = [s for s in seeds if s == seed]
    if not seeds:
        return math.nan, math.nan
    deltas, variances = [], []
    for s in seeds:
        (pa, ma), (pb, mb) = a["_margin"][s], b["_margin"][s]
        d_minus, v_minus = paired_rate_change(ma, mb)
        d_plus, v_plus = paired_rate_change(pa, pb)
        deltas.append(d_minus - d_plus)
        variances.append(v_minus + v_plus)
    return statistics.fmean(deltas), sum(variances) / len(seeds) ** 2
