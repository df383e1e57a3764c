"""The Setting II / III part of the report: rebound figure and tables, compression, Hooke."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from resistkit.report import plots
from resistkit.report.behaviour import behaviour_section, merge_rates, side_rows
from resistkit.report.collect import collect_points
from resistkit.report.elastic import (
    elastic_fit,
    kl_table,
    ordered_by_q1,
    paired_change,
    seed_drops,
)
from resistkit.report.tables import markdown_table, table_section


def rebound_summary(rows: list[dict]) -> list[dict]:
    """Per (model, Q1): the early drop (first Q2 step) and the late slope, with 95 % intervals.

    Rebound predicts early drops that grow with Q1 and late slopes near zero. Intervals
    combine the two points' half-widths as independent samples (sqrt(h1² + h2²)); the paired
    interval uses the per-record differences (same prompt, sample index and decoding seed).
    """
    out = []
    for model in sorted({r["model"] for r in rows}):
        for q1 in sorted({r["q1"] for r in rows if r["model"] == model and r["q1"] >= 0}):
            line = sorted((r for r in rows if r["model"] == model and r["q1"] == q1),
                          key=lambda r: r["q2"])
            if len(line) < 3 or line[0]["q2"] != 0:
                continue
            out.append(_drop_row(model, q1, line))
    return out


def _drop_row(model: str, q1: int, line: list[dict]) -> dict[str, Any]:
    a, b = line[0], line[1]
    y, z = line[-2], line[-1]

    def half(u: dict, v: dict) -> float:
        return math.sqrt(u["ci95_half"] ** 2 + v["ci95_half"] ** 2)

    paired = paired_change(a, b)
    return {
        "model": model, "q1": q1,
        "early_q2": b["q2"], "early_drop": b["mean"] - a["mean"],
        "early_drop_ci95_half": half(a, b),
        "early_drop_paired_mean": paired[0], "early_drop_paired_ci95_half": paired[1],
        "paired_n": paired[2],
        "early_slope_per_100": 100 * (b["mean"] - a["mean"]) / b["q2"],
        "late_q2": f"{y['q2']}-{z['q2']}",
        "late_slope_per_100": 100 * (z["mean"] - y["mean"]) / (z["q2"] - y["q2"]),
        "late_slope_ci95_half": 100 * half(y, z) / (z["q2"] - y["q2"]),
        "total_change": z["mean"] - a["mean"],
    }


def rebound_section(exp: Any, plan: Any, metric: str, out: Path) -> tuple[list[str], list[dict]]:
    """Markdown lines and the results rows of Setting II / III."""
    setting3 = exp.experiment == "setting3"
    model_side = exp.eval.margin is not None and metric == exp.eval.margin.name
    if model_side:
        from resistkit.report.margin import collect_margin_points

        rows = collect_margin_points(plan, exp)
        m = exp.eval.margin
        about = (f"the likelihood margin bits/token(`{m.minus}`) − bits/token(`{m.plus}`), "
                 "computed from the compression records (no sampling); mean over seeds, 95 % "
                 "interval from the records' variance (`n`: records of both sets)")
    else:
        rows = collect_points(plan, metric)
        about = "mean over all sampled responses and seeds, 95 % t interval half-width"
    if not rows:
        return ["No planned point has a finished score yet.", ""], rows
    title = "Setting III: rebound across base models" if setting3 else "Setting II: rebound"
    base_label = "domain control (θ0)" if exp.setting2.control else "base model"
    fig = plots.plot_setting2(rows, metric, out / "rebound.png", title, base_label)
    lines = [f"## {title}", "", f"![rebound]({fig.name})", "",
             f"Metric: `{metric}` ({about}; q1 = -1 is the {base_label}).", ""]
    cols = ["model", "q1", "q2", "mean", "ci95_half", "change_from_q2_0", "n", "nan",
            "seeds", "seed_std"]
    unscored = any(r.get("nan_why") for r in rows)
    if unscored:
        cols.insert(cols.index("nan") + 1, "nan_why")
    if not setting3:
        cols.remove("model")
    lines += [markdown_table(rows, cols), ""]
    if unscored:
        lines += ["`nan`: responses not scored, never counted as 0; `nan_why`: the scorer's "
                  "reasons, by count (`empty`: the model answered nothing, `missing` / "
                  "`not_text`: no response in the record).", ""]
    drops = rebound_summary(rows)
    if drops:
        lines += table_section(
            "### Early drop and late slope",
            "Rebound predicts an early drop (first inverse step) that grows with Q1, and a late "
            "slope near zero. ± = 95 % interval half-width.",
            drops, [c for c in ("model", "q1", "early_q2", "early_drop", "early_drop_ci95_half",
                                "early_drop_paired_ci95_half", "early_slope_per_100",
                                "late_q2", "late_slope_per_100", "late_slope_ci95_half",
                                "total_change") if setting3 or c != "model"],
            out / "rebound_summary.csv")
    lines += seed_section(rows, out, setting3)
    if model_side:
        lines += sides_section(exp, rows, out, setting3)
    behaviour, rates = behaviour_section(exp, plan, rows, metric, out, setting3)
    lines += behaviour
    merge_rates(rows, rates)
    merge_kl(rows, plan)
    lines += kl_section(exp, plan, out, setting3)
    lines += compression_section(exp, plan, rows, cols, out)
    return lines, rows


def seed_section(rows: list[dict], out: Path, setting3: bool) -> list[str]:
    """Early drops seed by seed, whether each seed orders them by Q1, and the elastic fit."""
    drops = seed_drops(rows)
    if not drops:
        return []
    keep = [] if setting3 else ["model"]
    lines = table_section(
        "### Early drop seed by seed",
        "Each seed's drop over the first inverse step, with its 95 % interval paired over "
        "records (same prompts, samples and decoding seeds; or the same texts for a "
        "model-side metric); `drop_over_se` is the drop in standard errors.",
        drops, [c for c in ("model", "q1", "seed", "early_q2", "early_drop",
                            "early_drop_paired_ci95_half", "drop_over_se") if c not in keep],
        out / "seed_drops.csv")
    order = ordered_by_q1(drops)
    if order:
        lines += table_section(
            "### Is the drop steeper for larger Q1, seed by seed?",
            "`ordered`: every larger Q1 drops faster; the last column is the largest Q1's drop "
            "minus the smallest's, in combined standard errors (rebound: clearly negative).",
            order, [c for c in ("model", "seed", "ordered", "largest_minus_smallest_q1",
                                "in_standard_errors") if c not in keep])
    fits = elastic_fit(rows)
    if fits:
        lines += table_section(
            "### Elastic fit: rate = c + k · displacement",
            "Per seed (and pooled, `all`): every step between consecutive Q2 points, its rate "
            "of change per 100 inverse samples against its displacement from θ0. A spring "
            "pulls back harder the further it is stretched: k < 0. "
            + _zero_note(fits),
            fits, [c for c in ("model", "seed", "steps", "k_per_100", "k_ci95_half_per_100",
                               "c_per_100", "r2", "k_excludes_zero") if c not in keep],
            out / "elastic_fit.csv")
    return lines


def sides_section(exp: Any, rows: list[dict], out: Path, setting3: bool) -> list[str]:
    """The margin's two sets apart: does the aligned side's own likelihood decay?"""
    sides = side_rows(rows, exp)
    if not sides:
        return []
    keep = [] if setting3 else ["model"]
    m = exp.eval.margin
    return table_section(
        "### The margin's two sides, seed by seed",
        f"bits/token of the `plus` set ({m.plus}) and the `minus` set ({m.minus}) at Q2 = 0, "
        "after the first inverse step and at the last Q2. The inverse data teach the `minus` "
        "side, so its bits fall; `plus_rises_early` = the aligned side's own bits rise, i.e. "
        "the aligned behaviour itself decays: the sharpest rebound signal.",
        sides, [c for c in ("model", "q1", "seed", "early_q2", "last_q2", "plus_q2_0",
                            "plus_early", "plus_last", "plus_rises_early", "minus_q2_0",
                            "minus_early", "minus_last") if c not in keep],
        out / "margin_sides.csv")


def _zero_note(fits: list[dict]) -> str:
    zero = [str(f["seed"]) for f in fits if not f["k_excludes_zero"]]
    if not zero:
        return "Every k's interval excludes zero."
    return (f"**k's 95 % interval includes zero for seed(s) {', '.join(zero)}**: there the data "
            "do not show a restoring force.")


def merge_kl(rows: list[dict], plan: Any) -> None:
    """Each point's KL to θ0 (mean over seeds) into its results row (NaN where not
    measured: θ0 itself has no KL stage)."""
    import statistics

    from resistkit.pipeline import layout

    found: dict[tuple, list[float]] = {}
    for point in plan.points:
        name = point.stages.get(layout.KL)
        if name is not None and plan.done(name):
            key = (point.label["model"], point.label["q1"], point.label["q2"])
            found.setdefault(key, []).append(plan.outputs(name)["kl"])
    if not found:
        return
    for r in rows:
        values = found.get((r["model"], r["q1"], r["q2"]))
        r["kl"] = statistics.fmean(values) if values else math.nan


def kl_section(exp: Any, plan: Any, out: Path, setting3: bool) -> list[str]:
    """The paper's Table 3: KL to θ0 after alignment, and the Q2 that brings it back."""
    if exp.eval.kl is None:
        return []
    rows = kl_table(plan, exp)
    if not rows:
        return []
    fig = plots.plot_kl(rows, out / "kl.png")
    keep = [] if setting3 else ["model"]
    return [f"![kl]({fig.name})", ""] + table_section(
        "### KL to θ0 (the paper's Table 3)",
        f"KL(θ ‖ θ0) in nats per token on `{exp.eval.kl.dataset}` ({exp.eval.kl.split}), "
        f"response tokens only. `q2_below_threshold`: the inverse samples after which KL first "
        f"falls below {exp.eval.kl.threshold} (linear between points; NaN: not by the last "
        "Q2). Paper (Llama2-7B, safety): KL after 1k / 2k / 5k / 10k safe samples 0.21 / 0.22 "
        "/ 0.26 / 0.27; unsafe samples to bring it below 0.01: 961 / 844 / 801 / 729.",
        rows, [c for c in ("model", "seed", "q1", "kl_after_alignment", "q2_below_threshold",
                           "last_q2", "kl_at_last_q2") if c not in keep],
        out / "kl_table.csv")


def compression_section(exp: Any, plan: Any, rows: list[dict], cols: list[str],
                        out: Path) -> list[str]:
    comp = plots.plot_compression(rows, out / "compression.png")
    if comp is None:
        return []
    keys = [k for k in rows[0] if k.startswith("bits_per_token[")]
    lines = ["## Compression along the trajectory", "", f"![compression]({comp.name})", "",
             markdown_table(rows, [c for c in cols if c in ("model", "q1", "q2")] + keys), ""]
    from resistkit.elasticity import hooke_estimates

    hooke = hooke_estimates(plan, exp)
    if not hooke:
        return lines
    lines += table_section(
        "### Hooke's law: k̂ = |dγ_align/dQ2| / |dγ_pre/dQ2|",
        "Slopes of bits/token against inverse samples, for the forward (alignment) set and "
        "held-out pre-training text; 95 % paired bootstrap interval over records. The theory "
        "predicts k ≈ |D_pre| / |D_align| (tokens).",
        hooke, ["model", "seed", "q1", "k_hat", "k_ci95_low", "k_ci95_high", "k_predicted",
                "slope_pre_bits_per_sample", "slope_align_bits_per_sample",
                "slope_perturb_bits_per_sample"], out / "hooke.csv",
    ) + ["Numbers: [hooke.csv](hooke.csv).", ""]
    return lines + hooke_scaling_section(hooke, out)


def hooke_scaling_section(hooke: list[dict], out: Path) -> list[str]:
    """Figure and table of k̂ against the predicted k, where bases record their volume."""
    from resistkit.elasticity import hooke_scaling

    if not any(r.get("k_predicted") for r in hooke):
        return []
    fig = plots.plot_hooke(hooke, out / "hooke.png")
    lines = ["![hooke](hooke.png)", ""] if fig else []
    scaling = hooke_scaling(hooke)
    if scaling:
        lines += table_section(
            "### Does k̂ grow with the pre-training volume?",
            "Exponent b of k̂ ∝ |D_pre|^b per Q1 (least squares on logs over bases and seeds, "
            "95 % t interval); the theory predicts b = 1. `ratio_to_predicted` is the "
            "geometric mean of k̂ / k_predicted.",
            scaling, ["q1", "points", "volumes", "exponent", "exponent_ci95_half",
                      "predicted_exponent", "ratio_to_predicted"], out / "hooke_scaling.csv")
    return lines
