"""An experiment end to end: its stages (``resistkit.pipeline``), then its report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from resistkit.pipeline import ExperimentRecipe, execute, load_experiment

__all__ = ["load_experiment", "run_experiment"]


def run_experiment(
    exp: ExperimentRecipe, *, dry_run: bool = False, report: bool = True,
    **hooks: Callable[..., None] | None,
) -> dict[str, Any]:
    """Run every stage not already complete, then write the report (unless ``dry_run``);
    ``hooks`` are ``pipeline.execute``'s (on_ready, on_stage, on_done)."""
    summary = execute(exp, dry_run=dry_run, **hooks)
    if not dry_run and report:
        from resistkit.report import write_report

        summary["report"] = str(write_report(summary["run_dir"]))
    return summary
