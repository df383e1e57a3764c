"""One stage of a run as a job of its own (a SLURM job or a local process), and the record
of each job in the run directory.

    RUN/jobs/STAGE/job.json          the job that was last started for STAGE (executor, id,
                                     host, log path, when), written by the driver
    RUN/jobs/STAGE/.resistkit.lock   held by the job while it writes STAGE (one writer each)
    RUN/jobs/STAGE/job.log           a local job's output (SLURM jobs: RUN/jobs/slurm/ID/ID_0_log.*)

The driver holds the run directory's lock (noted as an executor's) for as long as it runs;
a job passes through that lock but takes its stage's own, so two drivers, a requeued job or
a user's `resistkit run` never write one stage twice. Everything a job needs is read from
the run directory (experiment.yaml): a job started by a driver that has since stopped still
does exactly its stage.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from resistkit.errors import ResistkitError
from resistkit.files import atomic_write_json, read_json

JOBS_DIR = "jobs"
JOB_FILE = "job.json"
LOCAL_LOG = "job.log"

log = logging.getLogger(__name__)


def job_dir(run_dir: Path, stage: str) -> Path:
    return run_dir / JOBS_DIR / stage


def read_record(run_dir: Path, stage: str) -> dict[str, Any] | None:
    path = job_dir(run_dir, stage) / JOB_FILE
    if not path.is_file():
        return None
    try:
        return read_json(path)
    except (ResistkitError, OSError):  # a torn record is no record: judge the stage by its files
        return None


def write_record(run_dir: Path, stage: str, record: dict[str, Any]) -> None:
    path = job_dir(run_dir, stage)
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path / JOB_FILE, record)


class JobCancelled(KeyboardInterrupt):
    """The job was cancelled (SIGTERM): an interruption, not a failure of the stage."""


def _cancelled(signum: int, frame: Any) -> None:
    raise JobCancelled(f"signal {signum}: the job was cancelled")


def run_stage(run_dir: str, stage_name: str) -> str:
    """Run one stage of the run in ``run_dir`` (the body of every job): refuse if the run
    is held by a writer other than an executor's driver, take the stage's lock, and run the
    stage unless it is done already. Returns what happened, in a word."""
    from resistkit.threads import settle

    settle()
    # `scancel` sends SIGTERM, then SIGKILL after the cluster's KillWait; submitit ignores
    # SIGTERM (it is meant for preemption), so without this the stage writes on for that
    # while. Stop at once instead: the stage stays interrupted and resumes, as after a kill.
    signal.signal(signal.SIGTERM, _cancelled)
    from resistkit.errors import RunError
    from resistkit.locks import HELD_ENV, describe, holder, lock_path, writer_lock
    from resistkit.pipeline.planning import open_run

    run = Path(run_dir).resolve()
    held = holder(run)
    if held is not None and not held.get("executor"):
        raise RunError(f"{run} is in use by {describe(held)}, which is not an executor's "
                       f"driver; stage {stage_name} was not run")
    # The driver's run lock covers this job (it may be on another node, or gone).
    os.environ[HELD_ENV] = os.pathsep.join(
        [p for p in [os.environ.get(HELD_ENV, ""), str(lock_path(run))] if p])
    _, plan = open_run(run)
    if stage_name not in plan.stages:
        raise RunError(f"{run}: the plan has no stage {stage_name} (the recipe changed?)")
    stage = plan.stages[stage_name]
    with writer_lock(job_dir(run, stage_name), what="stage", own=True):
        if plan.status(stage) == "done":
            log.info("%s is done already", stage_name)
            return "done already"
        _, seconds = plan.run_one(stage)
        print(f"resistkit: {stage_name} done in {seconds:.1f} s", flush=True)
    return "done"


if __name__ == "__main__":  # a local job: python -m resistkit.pipeline.jobs RUN_DIR STAGE
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    try:
        run_stage(sys.argv[1], sys.argv[2])
    except Exception as err:  # the log says why in one line; the driver reads the exit code
        print(f"resistkit: stage {sys.argv[2]} failed: {type(err).__name__}: {err}",
              file=sys.stderr, flush=True)
        raise
