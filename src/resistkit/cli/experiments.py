"""Experiment commands: `run` (a whole setting as resumable stages) and `report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from resistkit.cli.common import AccelOpt, OutOpt, ProcsOpt, SetOpt, VerboseOpt, stage_overrides


def run(
    recipe: Annotated[str, typer.Argument(
        help="An experiment recipe (a YAML path or a packaged name such as quickstart), or a "
        "run directory to continue.", show_default=False)],
    set_: SetOpt = None,
    output_dir: OutOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and training volumes; run nothing.")
    ] = False,
    accelerate_config: AccelOpt = None,
    num_processes: ProcsOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Start this experiment in a run directory that "
                           "holds another experiment's run (its old report is removed).")
    ] = False,
    executor: Annotated[
        str | None, typer.Option("--executor", metavar="KIND", help="How stages run: "
                                 "sequential (here, one by one), local (up to --jobs "
                                 "processes here) or slurm (one SLURM job per stage, through "
                                 "submitit; resources from the recipe's executor.slurm). "
                                 "Default: the recipe's executor.kind, else sequential.",
                                 show_default=False)
    ] = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", metavar="N", min=1, help="With --executor local: "
                                 "stages at once (one GPU each where there are GPUs).",
                                 show_default=False)
    ] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Run an experiment (Setting I, II or III): train, slices, generate, inverse, score, report.

    Finished stages are skipped; an interrupted stage resumes from its last checkpoint; a
    changed setting re-runs only the stages that depend on it. With --accelerate-config every
    training stage runs under `accelerate launch` (multi-GPU); generation and scoring do not.
    With --executor slurm this command is a driver: it submits every stage whose inputs are
    done as a job and follows them; stop it and run it again at any time.
    """
    from resistkit import progress
    from resistkit.catalog import find_recipe
    from resistkit.cli.console import Console, RunView
    from resistkit.experiment import load_experiment, run_experiment

    path = find_recipe(recipe)
    if path.is_dir() and (path / "experiment.yaml").is_file():  # continue a run where it is
        path, output_dir = path / "experiment.yaml", output_dir or str(path)
    if output_dir is not None and not dry_run:
        from resistkit.locks import check_free

        # Before the recipe's validation: a second writer is told at once (a stage job still
        # running from an earlier driver is judged later, once the executor is known).
        check_free(output_dir, below=False)
    sets = stage_overrides(set_, output_dir)
    if accelerate_config is not None:
        sets.append(f"launch.accelerate_config={accelerate_config}")
    if num_processes is not None:
        sets.append(f"launch.num_processes={num_processes}")  # config: the recipe's, or ddp
    if executor is not None:
        sets.append(f"executor.kind={executor}")
    if jobs is not None:
        sets.append(f"executor.jobs={jobs}")
    console = Console()
    # At once, before the recipe is validated (which imports TRL, seconds on a laptop).
    console.line(f"resistkit run {recipe}: checking inputs")
    exp = load_experiment(str(path), sets)
    model = exp.model.name_or_path if exp.setting3 is None else \
        ", ".join(m.label for m in exp.setting3.models)
    console.line(f"  {exp.experiment}, {model}, seeds {exp.seeds} -> {exp.output_dir}")
    view = RunView(console, exp)
    try:
        with progress.reporting(console):
            summary = run_experiment(exp, dry_run=dry_run, on_ready=view.ready,
                                     on_stage=view.started, on_done=view.finished,
                                     command=_command_line(), force=force, say=view.say)
    finally:
        console.close()
    if dry_run:
        _print_plan(summary)
        return
    console.line(f"report: {summary['report']}  ({console.elapsed()})")


def _command_line() -> str:
    """The command as the user typed it (for the report's "how to reproduce"), less the
    options that say how stages run, not what they compute (--executor, --jobs, --set
    executor.*): a run made
    of SLURM jobs and the same run made here write the same report."""
    import shlex
    import sys

    kept: list[str] = []
    args = iter(sys.argv[1:])
    for arg in args:
        if arg in ("--executor", "--jobs"):
            next(args, None)
        elif arg == "--set":
            value = next(args, "")
            if not value.startswith("executor."):
                kept += [arg, value]
        elif not arg.startswith(("--executor=", "--jobs=", "--set=executor.")):
            kept.append(arg)
    return shlex.join(["resistkit", *kept])


def _print_plan(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"plan for {summary['run_dir']}")
    for col in ("stage", "kind", "status", "model", "train samples"):
        table.add_column(col, overflow="fold")
    for row in summary["stages"]:
        table.add_row(row["stage"], row["kind"], row["status"], row["model"],
                      str(row["train_samples"] or ""))
    console = Console(width=max(Console().width, 140))
    console.print(table)
    total = sum(r["train_samples"] for r in summary["stages"])
    console.print(f"training samples in this plan: {total}")
    for key in ("nested", "nested_reason", "train_samples_nested", "train_samples_naive"):
        if key in summary:
            console.print(f"{key}: {summary[key]}")
    for label, info in summary.get("models", {}).items():
        console.print(f"{label}: nested={info['nested']} "
                      f"({info['train_samples_nested']} vs naive {info['train_samples_naive']})")


def report(
    run_dir: Annotated[Path, typer.Argument(help="A `resistkit run` directory.")],
    verbose: VerboseOpt = False,
) -> None:
    """Regenerate the Markdown report, figures and CSV from a run directory alone."""
    from resistkit.locks import writer_lock
    from resistkit.report import write_report

    with writer_lock(run_dir):
        typer.echo(f"wrote {write_report(run_dir)}")


def status(
    run_dir: Annotated[Path, typer.Argument(help="A `resistkit run` directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Where a run stands: every planned stage done, stale (and why), pending or failed.

    Also the seconds spent per stage kind, what is left with an estimate from the stages done
    so far, and the command that continues the run.
    """
    import json

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from resistkit.cli.console import seconds_text
    from resistkit.pipeline.status import describe, run_status

    state = run_status(run_dir)
    if as_json:
        typer.echo(json.dumps(describe(state), indent=2))
        return
    console = Console()
    colours = {"done": "green", "stale": "yellow", "partial": "yellow", "failed": "red",
               "running": "magenta", "queued": "blue"}
    table = Table(title=f"{run_dir}: " + ", ".join(f"{n} {k}" for k, n in
                                                    sorted(state.counts().items())))
    for col in ("stage", "kind", "state", "why / seconds"):
        table.add_column(col, overflow="fold")
    for s in state.stages:
        colour = colours.get(s.state, "cyan")
        detail = s.why or (seconds_text(s.seconds) if s.seconds is not None else "")
        table.add_row(escape(s.name), s.kind, f"[{colour}]{s.state}[/]", escape(detail))
    console.print(table)
    spent = ", ".join(f"{k} {seconds_text(v)}" for k, v in sorted(state.seconds_by_kind.items()))
    typer.echo(f"time spent: {spent or 'nothing finished yet'}")
    if state.complete:
        typer.echo(f"complete; the report: resistkit report {run_dir}")
        return
    left = ", ".join(f"{n} {k}" for k, n in sorted(state.left_by_kind.items()))
    eta = f" (about {seconds_text(state.estimate_left_s)} at the pace so far)" \
        if state.estimate_left_s is not None else ""
    typer.echo(f"left: {left}{eta}")
    typer.echo(f"continue with: resistkit run {run_dir}")
