"""An experiment's plan, from a recipe or from a run directory's own resolved recipe."""

from __future__ import annotations

from pathlib import Path

from resistkit.errors import RunError
from resistkit.pipeline import layout
from resistkit.pipeline.runner import Plan
from resistkit.pipeline.schema import ExperimentRecipe, load_experiment


def plan_experiment(exp: ExperimentRecipe, run_dir: Path | None = None) -> tuple[Plan, dict]:
    from resistkit.pipeline.settings import build_plan

    return build_plan(exp, (run_dir or Path(exp.output_dir)).resolve())


def open_run(run_dir: Path) -> tuple[ExperimentRecipe, Plan]:
    """The resolved experiment of a run directory and its plan (as the run made it)."""
    recipe = run_dir / layout.EXPERIMENT_FILE
    if not recipe.is_file():
        raise RunError(f"{run_dir} is not a resistkit run directory (no {layout.EXPERIMENT_FILE})")
    exp = load_experiment(str(recipe))
    plan, _ = plan_experiment(exp, run_dir)
    return exp, plan
