"""`resistkit report RUN_DIR`: Markdown, PNG figures and a CSV, from the run directory alone.

Everything is read back from stage manifests and score files, so a report can be regenerated
(or a run directory moved and reported) without the recipe that made it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from resistkit.runinfo import atomic_write_text, read_json

POINT_RE = re.compile(
    r"^(?:models/(?P<model>[^/]+)/)?seed-(?P<seed>\d+)/points/"
    r"(?:base|q1-(?P<q1>\d+)/q2-(?P<q2>\d+))/(?P<kind>score|compression)$"
)
PAIR_RE = re.compile(
    r"^seed-(?P<seed>\d+)/pairs/(?P<dir>forward|inverse)-(?P<src>\d+)-to-(?P<dst>\d+)$"
)


def _manifests(run_dir: Path) -> list[dict[str, Any]]:
    return [read_json(p) for p in sorted(run_dir.rglob("manifest.json"))]


def _t_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95 % t-interval half-width (normal quantile above 30 samples)."""
    from resistkit.scoring.summary import t_quantile

    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return mean, math.nan, math.nan
    sd = statistics.stdev(values)
    return mean, sd, t_quantile(0.975, n - 1) * sd / math.sqrt(n)


def _metric(exp: dict[str, Any], manifests: list[dict[str, Any]]) -> str:
    chosen = exp.get("eval", {}).get("metric")
    if chosen:
        return chosen
    for m in manifests:
        if m["kind"] == "score":
            return next(iter(m["outputs"]["columns"]))
    raise ValueError("no score stage has finished in this run directory")


# --------------------------------------------------------------------------------------------
# Setting II / III


def collect_points(run_dir: Path, metric: str, manifests: list[dict[str, Any]]) -> list[dict]:
    """One row per (model, q1, q2): records pooled over seeds, plus the spread of seed means."""
    pooled: dict[tuple[str, int, int], dict[int, list[float]]] = defaultdict(dict)
    compression: dict[tuple[str, int, int], dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    nan_counts: dict[tuple[str, int, int], int] = defaultdict(int)
    # Score per (seed, record id): every checkpoint decodes with the same seeds, so records
    # with one id are paired across checkpoints and differences can be tested pairwise.
    by_id: dict[tuple[str, int, int], dict[tuple[int, str], float]] = defaultdict(dict)
    for m in manifests:
        match = POINT_RE.match(m["stage"])
        if not match:
            continue
        key = (match["model"] or "", int(match["q1"] or 0), int(match["q2"] or 0))
        if match["q1"] is None:
            key = (key[0], -1, -1)  # the base model
        if match["kind"] == "compression":
            for name, values in m["outputs"]["compression"].items():
                compression[key][name].append(values["bits_per_token"])
            continue
        values = []
        with open(run_dir / m["stage"] / "scores.jsonl", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                v = row.get(metric)
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    nan_counts[key] += 1
                else:
                    values.append(float(v))
                    by_id[key][(int(match["seed"]), str(row.get("id")))] = float(v)
        pooled[key][int(match["seed"])] = values
    rows = []
    for key in sorted(pooled):
        per_seed = pooled[key]
        allv = [v for vals in per_seed.values() for v in vals]
        if not allv:
            continue
        mean, sd, half = _t_interval(allv)
        seed_means = [statistics.fmean(v) for v in per_seed.values() if v]
        rows.append({
            "model": key[0], "q1": key[1], "q2": key[2], "metric": metric,
            "mean": mean, "ci95_half": half, "std": sd, "n": len(allv), "nan": nan_counts[key],
            "seeds": len(seed_means),
            "seed_std": statistics.stdev(seed_means) if len(seed_means) > 1 else math.nan,
            "_by_id": by_id[key],
            **{f"bits_per_token[{k}]": statistics.fmean(v)
               for k, v in compression.get(key, {}).items()},
        })
    by_q1 = {(r["model"], r["q1"]): r["mean"] for r in rows if r["q2"] == 0}
    for r in rows:
        start = by_q1.get((r["model"], r["q1"]))
        r["change_from_q2_0"] = r["mean"] - start if start is not None and r["q1"] >= 0 \
            else math.nan
    return rows


def _paired_interval(a: dict, b: dict) -> tuple[float, float, int]:
    """Mean and 95 % half-width of b - a over the record ids both scored."""
    diffs = [b[k] - a[k] for k in a.keys() & b.keys()]
    if len(diffs) < 2:
        return math.nan, math.nan, len(diffs)
    mean, _, half = _t_interval(diffs)
    return mean, half, len(diffs)


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
            a, b = line[0], line[1]
            y, z = line[-2], line[-1]

            def half(u: dict, v: dict) -> float:
                return math.sqrt(u["ci95_half"] ** 2 + v["ci95_half"] ** 2)

            paired = _paired_interval(a["_by_id"], b["_by_id"])
            out.append({
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
            })
    return out


def plot_setting2(rows: list[dict], metric: str, path: Path, title: str,
                  base_label: str = "base model") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({r["model"] for r in rows})
    fig, axes = plt.subplots(1, len(models), figsize=(5.2 * len(models), 4), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        sub = [r for r in rows if r["model"] == model]
        base = [r for r in sub if r["q1"] < 0]
        for q1 in sorted({r["q1"] for r in sub if r["q1"] >= 0}):
            line = sorted((r for r in sub if r["q1"] == q1), key=lambda r: r["q2"])
            xs = [r["q2"] for r in line]
            ys = [r["mean"] for r in line]
            err = [0 if math.isnan(r["ci95_half"]) else r["ci95_half"] for r in line]
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=f"Q1 = {q1}")
        if base:
            ax.axhline(base[0]["mean"], color="gray", linestyle="--", label=base_label)
        ax.set_xlabel("Q2 (inverse fine-tuning samples)")
        ax.set_ylabel(metric)
        if model:
            ax.set_title(model)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_compression(rows: list[dict], path: Path) -> Path | None:
    keys = sorted({k for r in rows for k in r if k.startswith("bits_per_token[")})
    if not keys:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({r["model"] for r in rows})
    fig, axes = plt.subplots(1, len(keys), figsize=(4.6 * len(keys), 3.8), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        # One line per (base model, Q1): Setting III runs share Q1 values across bases.
        for model in models:
            prefix = f"{model}, " if model else ""
            for q1 in sorted({r["q1"] for r in rows if r["q1"] >= 0 and r["model"] == model}):
                line = sorted((r for r in rows if r["model"] == model and r["q1"] == q1
                               and key in r), key=lambda r: r["q2"])
                ax.plot([r["q2"] for r in line], [r[key] for r in line], marker="o",
                        label=f"{prefix}Q1 = {q1}")
        base = [r for r in rows if r["q1"] < 0 and key in r]
        if base and len(models) == 1:
            ax.axhline(base[0][key], color="gray", linestyle="--", label="base model")
        ax.set_title(key[len("bits_per_token["):-1], fontsize=9)
        ax.set_xlabel("Q2")
        ax.set_ylabel("bits / token")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _hooke_scaling_section(hooke: list[dict], out: Path) -> list[str]:
    """Figure and table of k̂ against the predicted k, where bases record their volume."""
    from resistkit.elasticity import hooke_scaling

    if not any(r.get("k_predicted") for r in hooke):
        return []
    fig = plot_hooke(hooke, out / "hooke.png")
    lines = ["![hooke](hooke.png)", ""] if fig else []
    scaling = hooke_scaling(hooke)
    if scaling:
        atomic_write_text(out / "hooke_scaling.csv", _csv(scaling))
        lines += [
            "### Does k̂ grow with the pre-training volume?", "",
            "Exponent b of k̂ ∝ |D_pre|^b per Q1 (least squares on logs over bases and seeds, "
            "95 % t interval); the theory predicts b = 1. `ratio_to_predicted` is the "
            "geometric mean of k̂ / k_predicted.", "",
            _markdown_table(scaling, ["q1", "points", "volumes", "exponent",
                                      "exponent_ci95_half", "predicted_exponent",
                                      "ratio_to_predicted"]), "",
        ]
    return lines


def plot_hooke(hooke: list[dict], path: Path) -> Path | None:
    pts = [r for r in hooke if r.get("k_predicted") and 0 < r["k_hat"] < math.inf]
    if not pts:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.4, 4.4))
    markers = "osD^v"
    for i, q1 in enumerate(sorted({r["q1"] for r in pts})):
        sub = [r for r in pts if r["q1"] == q1]
        xs = [r["k_predicted"] for r in sub]
        ys = [r["k_hat"] for r in sub]
        low = [max(y - r["k_ci95_low"], 0) for y, r in zip(ys, sub, strict=True)]
        high = [max(r["k_ci95_high"] - y, 0) for y, r in zip(ys, sub, strict=True)]
        ax.errorbar(xs, ys, yerr=[low, high], fmt=markers[i % len(markers)], capsize=3,
                    label=f"Q1 = {q1}")
        for x, y, r in zip(xs, ys, sub, strict=True):
            ax.annotate(r["model"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    lo = min(min(r["k_predicted"] for r in pts), min(r["k_hat"] for r in pts)) / 2
    hi = max(max(r["k_predicted"] for r in pts), max(r["k_hat"] for r in pts)) * 2
    ax.plot([lo, hi], [lo, hi], color="gray", linestyle="--", label="k̂ = |D_pre| / |D_align|")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("predicted k = |D_pre| / |D_align| (tokens)")
    ax.set_ylabel("measured k̂ (ratio of compression slopes)")
    volumes = {r.get("pretrain_tokens") for r in pts}
    ax.set_title("Hooke's law across pre-training volumes" if len(volumes) > 1
                 else "Hooke's law: measured vs predicted k")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------
# Setting I


def collect_pairs(manifests: list[dict[str, Any]]) -> list[dict]:
    found: dict[tuple[int, int], dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for m in manifests:
        match = PAIR_RE.match(m["stage"])
        if not match:
            continue
        src, dst = int(match["src"]), int(match["dst"])
        k, l = (src, dst) if match["dir"] == "forward" else (dst, src)  # noqa: E741
        losses = [x["loss"] for x in m["outputs"]["losses"]]
        found[(k, l)][match["dir"]].append({
            "seed": int(match["seed"]), "mean_loss": statistics.fmean(losses),
            "final_loss": m["outputs"].get("target_loss", math.nan),
        })
    rows = []
    for (k, l), sides in sorted(found.items()):  # noqa: E741
        fwd = {r["seed"]: r for r in sides.get("forward", [])}
        inv = {r["seed"]: r for r in sides.get("inverse", [])}
        seeds = sorted(set(fwd) & set(inv))
        if not seeds:
            continue
        diffs = [inv[s]["mean_loss"] - fwd[s]["mean_loss"] for s in seeds]

        def ms(values: list[float]) -> tuple[float, float]:
            return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1
                                              else math.nan)

        f_mean, f_sd = ms([fwd[s]["mean_loss"] for s in seeds])
        i_mean, i_sd = ms([inv[s]["mean_loss"] for s in seeds])
        d_mean, d_sd = ms(diffs)
        ff, _ = ms([fwd[s]["final_loss"] for s in seeds])
        fi, _ = ms([inv[s]["final_loss"] for s in seeds])
        rows.append({
            "pair": f"theta{k}/theta{l}", "k": k, "l": l, "seeds": len(seeds),
            "forward_loss": f_mean, "forward_std": f_sd,
            "inverse_loss": i_mean, "inverse_std": i_sd,
            "inverse_minus_forward": d_mean, "diff_std": d_sd,
            "forward_final_target_loss": ff, "inverse_final_target_loss": fi,
            "resistance": all(d < 0 for d in diffs),
        })
    return rows


def plot_setting1(rows: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(rows), 3.8))
    xs = range(len(rows))
    for offset, side, color in ((-0.18, "forward", "tab:red"), (0.18, "inverse", "tab:blue")):
        ys = [r[f"{side}_loss"] for r in rows]
        err = [0 if math.isnan(r[f"{side}_std"]) else r[f"{side}_std"] for r in rows]
        label = "forward (θk on Dl)" if side == "forward" else "inverse (θl on Dk)"
        ax.bar([x + offset for x in xs], ys, width=0.36, yerr=err, capsize=3, color=color,
               label=label)
    ax.set_xticks(list(xs), [f"θ{r['k']} / θ{r['l']}" for r in rows])
    low = min(min(r["forward_loss"], r["inverse_loss"]) for r in rows)
    ax.set_ylim(bottom=max(0.0, low * 0.9))
    ax.set_ylabel("mean training loss (nats/token)")
    ax.set_title("Setting I: resistance (inverse < forward)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def _markdown_table(rows: list[dict], cols: list[str]) -> str:
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(out)


def _csv(rows: list[dict]) -> str:
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_report(run_dir: str | Path) -> Path:
    """Write ``report.md``, figures and ``results.csv`` into ``RUN_DIR/report/``."""
    run_dir = Path(run_dir)
    exp = yaml.safe_load((run_dir / "experiment.yaml").read_text(encoding="utf-8"))
    manifests = _manifests(run_dir)
    out = run_dir / "report"
    out.mkdir(exist_ok=True)
    kind = exp["experiment"]
    lines = [f"# resistkit report: {kind}", "", f"Run directory: `{run_dir}`", ""]
    env = read_json(run_dir / "env.json") if (run_dir / "env.json").exists() else {}
    pk = env.get("packages", {})
    lines += [f"Seeds: {exp.get('seeds')}. Base model: `{exp['model']['name_or_path']}`. "
              f"torch {pk.get('torch')}, transformers {pk.get('transformers')}, "
              f"trl {pk.get('trl')}.", ""]
    rows: list[dict] = []
    if kind in ("setting2", "setting3"):
        metric = _metric(exp, manifests)
        rows = collect_points(run_dir, metric, manifests)
        title = "Setting III: rebound across base models" if kind == "setting3" else \
            "Setting II: rebound"
        control = (exp.get("setting2") or {}).get("control")
        base_label = "domain control (θ0)" if control else "base model"
        fig = plot_setting2(rows, metric, out / "rebound.png", title, base_label)
        lines += [f"## {title}", "", f"![rebound]({fig.name})", "",
                  f"Metric: `{metric}` (mean over all sampled responses and seeds, 95 % t "
                  f"interval half-width; q1 = -1 is the {base_label}).", ""]
        cols = ["model", "q1", "q2", "mean", "ci95_half", "change_from_q2_0", "n", "nan",
                "seeds", "seed_std"]
        if kind == "setting2":
            cols.remove("model")
        lines += [_markdown_table(rows, cols), ""]
        drops = rebound_summary(rows)
        if drops:
            atomic_write_text(out / "rebound_summary.csv", _csv(drops))
            lines += ["### Early drop and late slope", "",
                      "Rebound predicts an early drop (first inverse step) that grows with Q1, "
                      "and a late slope near zero. ± = 95 % interval half-width.", "",
                      _markdown_table(drops, [c for c in ("model", "q1", "early_q2",
                                      "early_drop", "early_drop_ci95_half",
                                      "early_drop_paired_ci95_half",
                                      "early_slope_per_100", "late_q2", "late_slope_per_100",
                                      "late_slope_ci95_half", "total_change")
                                      if kind == "setting3" or c != "model"]), ""]
        comp = plot_compression(rows, out / "compression.png")
        if comp is not None:
            keys = [k for k in rows[0] if k.startswith("bits_per_token[")]
            lines += ["## Compression along the trajectory", "", f"![compression]({comp.name})",
                      "", _markdown_table(rows, [c for c in cols if c in ("model", "q1", "q2")]
                                          + keys), ""]
            from resistkit.elasticity import hooke_estimates

            hooke = hooke_estimates(run_dir, exp, manifests)
            if hooke:
                atomic_write_text(out / "hooke.csv", _csv(hooke))
                lines += [
                    "### Hooke's law: k̂ = |dγ_align/dQ2| / |dγ_pre/dQ2|", "",
                    "Slopes of bits/token against inverse samples, for the forward (alignment) "
                    "set and held-out pre-training text; 95 % paired bootstrap interval over "
                    "records. The theory predicts k ≈ |D_pre| / |D_align| (tokens).", "",
                    _markdown_table(hooke, ["model", "seed", "q1", "k_hat", "k_ci95_low",
                                            "k_ci95_high", "k_predicted",
                                            "slope_pre_bits_per_sample",
                                            "slope_align_bits_per_sample",
                                            "slope_perturb_bits_per_sample"]),
                    "", "Numbers: [hooke.csv](hooke.csv).", "",
                ]
                lines += _hooke_scaling_section(hooke, out)
    else:
        rows = collect_pairs(manifests)
        if rows:
            fig = plot_setting1(rows, out / "resistance.png")
            lines += [f"![resistance]({fig.name})", ""]
        lines += ["## Setting I: resistance", "",
                  "Mean training cross-entropy (nats/token) of forward alignment (θk trained on "
                  "Dl, the later slice's responses) and inverse alignment (θl trained on Dk). "
                  "Resistance: inverse < forward. Paper (Llama2-7B): θ2→θ1 0.1589 vs θ1→θ2 "
                  "0.2018; θ3→θ1 0.1666 vs θ1→θ3 0.2346.", "",
                  _markdown_table(rows, ["pair", "forward_loss", "inverse_loss",
                                         "inverse_minus_forward", "diff_std", "seeds",
                                         "forward_final_target_loss",
                                         "inverse_final_target_loss", "resistance"]), ""]
    atomic_write_text(out / "results.csv",
                      _csv([{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]))
    lines += ["All numbers: [results.csv](results.csv)."]
    atomic_write_text(out / "report.md", "\n".join(lines) + "\n")
    return out / "report.md"
