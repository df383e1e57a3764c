"""Experiment commands: `run` (a whole setting as resumable stages) and `report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from resistkit.cli.common import AccelOpt, OutOpt, ProcsOpt, SetOpt, VerboseOpt, stage_overrides


def run(
    recipe: Annotated[Path, typer.Argument(help="Experiment recipe YAML.", show_default=False)],
    set_: SetOpt = None,
    output_dir: OutOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and training volumes; run nothing.")
    ] = False,
    accelerate_config: AccelOpt = None,
    num_processes: ProcsOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Run an experiment (Setting I, II or III): train, slices, generate, inverse, score, report.

    Finished stages are skipped; an interrupted stage resumes from its last checkpoint; a
    changed setting re-runs only the stages that depend on it. With --accelerate-config every
    training stage runs under `accelerate launch` (multi-GPU); generation and scoring do not.
    """
    from rich.console import Console

    from resistkit.experiment import load_experiment, run_experiment

    sets = stage_overrides(set_, output_dir)
    if accelerate_config is not None:
        sets.append(f"launch.accelerate_config={accelerate_config}")
    if num_processes is not None:
        sets.append(f"launch.num_processes={num_processes}")  # config: the recipe's, or ddp
    exp = load_experiment(str(recipe), sets)
    console = Console(stderr=True)

    def announce(stage: Any, status: str) -> None:
        mark = {"done": "[green]done[/]", "partial": "[yellow]resume[/]",
                "stale": "[yellow]rerun[/]"}.get(status, "[cyan]run[/]")
        console.print(f"{mark:>8}  {stage.kind:<9} {stage.name}")

    summary = run_experiment(exp, dry_run=dry_run, on_stage=announce)
    if dry_run:
        _print_plan(summary)
        return
    typer.echo(f"report: {summary['report']}")


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
    from resistkit.report import write_report

    typer.echo(f"wrote {write_report(run_dir)}")
