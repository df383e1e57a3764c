"""An experiment end to end: its stages (``resistkit.pipeline``), then its report."""

from __future__ import annotations

from typing import Any

from resistkit.pipeline import ExperimentRecipe, execute, load_experiment

__all__ = ["load_experiment", "run_experiment"]


def run_experiment(
    exp: ExperimentRecipe, *, dry_run: bool = False, report: bool = True, force: bool = False,
    **hooks: Any,
) -> dict[str, Any]:
    """Run every stage not already complete, then write the report (unless ``dry_run``),
    all under the run directory's lock; ``hooks`` are ``pipeline.execute``'s (on_ready,
    on_stage, on_done, command); ``force`` lets another experiment replace the one there."""

    def write(summary: dict[str, Any]) -> None:
        from resistkit.report import write_report

        summary["report"] = str(write_report(summary["run_dir"]))

    return execute(exp, dry_run=dry_run, force=force, finish=write if report else None,
                   **hooks)
