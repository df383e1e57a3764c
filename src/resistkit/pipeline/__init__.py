"""`resistkit run`: an experiment recipe expanded into resumable stages under one run directory."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from resistkit.pipeline.schema import ExperimentRecipe, load_experiment
from resistkit.recipes import dump_recipe
from resistkit.runinfo import atomic_write_json, atomic_write_text, environment

log = logging.getLogger(__name__)

__all__ = ["ExperimentRecipe", "load_experiment", "plan_experiment", "run_experiment"]


def plan_experiment(exp: ExperimentRecipe) -> tuple[Any, dict[str, Any]]:
    from resistkit.pipeline.settings import build_plan

    return build_plan(exp, Path(exp.output_dir).resolve())


def describe_plan(plan: Any, info: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for stage in plan.stages.values():
        rows.append({
            "stage": stage.name,
            "kind": stage.kind,
            "status": plan.status(stage),
            "model": _short(stage.config.get("model")),
            "train_samples": stage.train_samples,
        })
    return rows


def _short(model: Any) -> str:
    if isinstance(model, dict):
        return str(model.get("name_or_path", ""))
    return str(model or "")


def run_experiment(
    exp: ExperimentRecipe, *, dry_run: bool = False, report: bool = True,
    on_stage: Any = None,
) -> dict[str, Any]:
    """Run (or with ``dry_run`` only plan) every stage not already complete; then report."""
    plan, info = plan_experiment(exp)
    rows = describe_plan(plan, info)
    summary = {"run_dir": str(plan.run_dir), "stages": rows, **info}
    if dry_run:
        return summary
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(plan.run_dir / "experiment.yaml", dump_recipe(exp))
    env = environment()
    env["seeds"] = exp.seeds
    atomic_write_json(plan.run_dir / "env.json", env)
    atomic_write_json(plan.run_dir / "plan.json", summary)
    plan.run(on_stage=on_stage)
    if report:
        from resistkit.report import write_report

        summary["report"] = str(write_report(plan.run_dir))
    return summary
