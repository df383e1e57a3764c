"""The report's figures (matplotlib, Agg backend, PNG at 110 dpi)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def plot_setting2(rows: list[dict], metric: str, path: Path, title: str,
                  base_label: str = "base model") -> Path:
    plt = _pyplot()
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
    return _save(fig, path)


def plot_compression(rows: list[dict], path: Path) -> Path | None:
    keys = sorted({k for r in rows for k in r if k.startswith("bits_per_token[")})
    if not keys:
        return None
    plt = _pyplot()
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
    return _save(fig, path)


def plot_hooke(hooke: list[dict], path: Path) -> Path | None:
    pts = [r for r in hooke if r.get("k_predicted") and 0 < r["k_hat"] < math.inf]
    if not pts:
        return None
    plt = _pyplot()
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
    return _save(fig, path)


def plot_setting1(rows: list[dict], path: Path) -> Path:
    plt = _pyplot()
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
    return _save(fig, path)


def plot_kl(rows: list[dict], path: Path) -> Path:
    """KL to θ0 against Q2, one line per (model, Q1): the mean over seeds at each Q2."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 4))
    threshold = rows[0]["threshold"]
    several = len({r["model"] for r in rows}) > 1
    for model, q1 in sorted({(r["model"], r["q1"]) for r in rows}):
        by_q2: dict[int, list[float]] = {}
        for r in rows:
            if r["model"] == model and r["q1"] == q1 and r["seed"] != "mean":
                for q2, kl in r["_trajectory"]:
                    by_q2.setdefault(q2, []).append(kl)
        xs = sorted(by_q2)
        ys = [sum(by_q2[x]) / len(by_q2[x]) for x in xs]
        ax.plot(xs, ys, marker="o", label=f"{model + ', ' if several else ''}Q1 = {q1}")
    ax.axhline(threshold, color="gray", linestyle="--", label=f"threshold {threshold}")
    ax.set_xlabel("Q2 (inverse fine-tuning samples)")
    ax.set_ylabel("KL(θ ‖ θ0), nats/token")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_breaks(breaks: list[dict], metric: str, path: Path, max_q2: int) -> Path:
    """Samples to break per Q1, one panel per measure: each seed a dot, the seeds' mean a bar
    when every seed broke; a seed that never broke is a triangle above the last Q2 (dashed),
    and an undefined break (no aligned value to fall from) is written out."""
    plt = _pyplot()
    measures = [(f"{metric}_break_seed_", f"{metric}: halfway back to θ0"),
                ("refusal_break_seed_", "refusal rate: below half")]
    fig, axes = plt.subplots(1, len(measures), figsize=(5.2 * len(measures), 3.8), squeeze=False)
    labels = [f"{r['model']}, Q1 = {r['q1']}" if len({b['model'] for b in breaks}) > 1
              else f"Q1 = {r['q1']}" for r in breaks]
    top = max_q2 * 1.08
    for ax, (prefix, title) in zip(axes[0], measures, strict=True):
        labelled = False
        for x, r in enumerate(breaks):
            values = [v for k, v in r.items() if k.startswith(prefix) and isinstance(v, float)
                      and not math.isnan(v)]
            reached = [v for v in values if math.isfinite(v)]
            if values and len(reached) == len(values):
                ax.bar(x, sum(reached) / len(reached), width=0.5, color="tab:blue", alpha=0.35)
            ax.scatter([x] * len(reached), reached, color="tab:blue", zorder=3)
            never = len(values) - len(reached)
            if never:
                ax.scatter([x] * never, [top] * never, marker="^", color="tab:red", zorder=3,
                           label=None if labelled else f"not by Q2 = {max_q2}")
                labelled = True
            if not values:
                ax.text(x, max_q2 * 0.05, "undefined", ha="center", va="bottom", fontsize=8)
        ax.axhline(max_q2, color="gray", linestyle="--", linewidth=0.8)
        ax.set_ylim(0, max_q2 * 1.15)
        ax.set_xlim(-0.6, len(breaks) - 0.4)
        ax.set_xticks(range(len(breaks)), labels, fontsize=8)
        ax.set_ylabel("inverse samples (Q2)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, axis="y")
        if labelled:
            ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("Samples to break")
    return _save(fig, path)
