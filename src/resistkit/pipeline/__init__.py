"""`resistkit run`: an experiment recipe expanded into resumable stages under one run directory.

``schema`` validates the recipe, ``settings`` plans its stages (names from ``layout``),
``runner`` runs what is not done, ``steps`` is the work each stage does. The report is one
layer up (``resistkit.report``); ``resistkit.experiment.run_experiment`` runs both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from resistkit.errors import RunError
from resistkit.locks import check_free, writer_lock
from resistkit.pipeline import layout
from resistkit.pipeline.claim import check_claim, claim
from resistkit.pipeline.planning import open_run, plan_experiment
from resistkit.pipeline.runner import Plan, Stage
from resistkit.pipeline.schema import ExperimentRecipe, load_experiment
from resistkit.recipes import dump_recipe
from resistkit.runinfo import environment

log = logging.getLogger(__name__)

__all__ = ["ExperimentRecipe", "execute", "load_experiment", "open_run", "plan_experiment"]


def describe_plan(plan: Plan) -> list[dict[str, Any]]:
    return [{"stage": stage.name, "kind": stage.kind, "status": plan.status(stage),
             "model": _short(stage.config.get("model")), "train_samples": stage.train_samples}
            for stage in plan.stages.values()]


def _run_as_jobs(exp: ExperimentRecipe, plan: Plan,
                 on_stage: Callable[[Stage, str], None] | None,
                 on_done: Callable[[Stage, dict[str, Any], float], None] | None,
                 say: Callable[[str], None] | None) -> None:
    from resistkit.pipeline.executor import backend_for, drive, failure_message

    backend = backend_for(exp.executor, plan.run_dir)
    poll_s = exp.executor.poll_s or (5.0 if exp.executor.kind == "slurm" else 1.0)
    outcome = drive(plan, backend, poll_s=poll_s, say=say or log.info,
                    on_start=on_stage, on_done=on_done)
    if outcome.failed:
        raise RunError(failure_message(outcome, plan.run_dir))
    if outcome.blocked:
        raise RunError(f"{len(outcome.blocked)} stages could not start (first: "
                       f"{outcome.blocked[0]}); run the same command again")


def _short(model: Any) -> str:
    if isinstance(model, dict):
        return str(model.get("name_or_path", ""))
    return str(model or "")


def execute(
    exp: ExperimentRecipe, *, dry_run: bool = False,
    on_stage: Callable[[Stage, str], None] | None = None,
    on_done: Callable[[Stage, dict[str, Any], float], None] | None = None,
    on_ready: Callable[[Plan, dict[str, Any]], None] | None = None,
    command: str | None = None,
    force: bool = False,
    finish: Callable[[dict[str, Any]], None] | None = None,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Check every input, then run (or with ``dry_run`` only plan) every stage not done.

    ``on_ready(plan, summary)`` is told once the inputs are checked and before any stage runs;
    ``on_stage`` / ``on_done`` before and after each stage (see ``Plan.run``). ``command`` is
    the command line that started the run, recorded in env.json for the report. The run
    directory is locked (``resistkit.locks``) from the first write until ``finish(summary)``
    (the report) has run; it must hold no other experiment's run unless ``force``. With
    ``executor.kind`` local or slurm the stages run as jobs (``pipeline.executor``), the
    lock marks this process as their driver, and ``say`` is told what the jobs do.
    """
    from resistkit.pipeline.preflight import preflight

    run_dir = Path(exp.output_dir).resolve()
    as_jobs = exp.executor.kind != "sequential"
    # Before the slow checks: a second writer is told at once. A driver may start while
    # its earlier jobs still hold their stages' locks; a sequential run may not.
    check_free(run_dir, below=not as_jobs)
    notes = preflight(exp, exp.origin, dry_run=dry_run)
    for note in notes:
        log.warning(note)
    plan, info = plan_experiment(exp)
    summary = {"run_dir": str(plan.run_dir), "stages": describe_plan(plan), "notes": notes,
               **info}
    files = {layout.EXPERIMENT_FILE: dump_recipe(exp),
             layout.ENV_FILE: {**environment(), "seeds": exp.seeds, "command": command},
             layout.PLAN_FILE: summary}
    check_claim(plan.run_dir, exp.experiment, {layout.EXPERIMENT_FILE: files[
        layout.EXPERIMENT_FILE]}, force=force)
    if dry_run:
        return summary
    note = {"executor": exp.executor.kind} if as_jobs else None
    with writer_lock(plan.run_dir, note=note, below=not as_jobs):
        claim(plan.run_dir, exp.experiment, files, force=force)
        if on_ready is not None:
            on_ready(plan, summary)
        if as_jobs:
            _run_as_jobs(exp, plan, on_stage, on_done, say)
        else:
            plan.run(on_stage=on_stage, on_done=on_done)
        if finish is not None:
            finish(summary)
    return summary
