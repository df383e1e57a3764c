"""What SLURM says about jobs, read with `squeue` (never `sacct`, which needs accounting).

A job the queue still shows as pending or running is *active*; one it no longer shows, or
shows as finished, has left the queue. Callers decide from the run directory whether a job
that left did its work: the queue is asked only "is it still there, and where".
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

# States in which a job still holds (or will hold) its stage (squeue's long names).
ACTIVE_STATES = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED",
                           "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SIGNALING",
                           "STAGE_OUT", "STOPPED"})
_SQUEUE_TIMEOUT_S = 30


@dataclass(frozen=True)
class JobState:
    job_id: str
    state: str  # squeue's long state name, e.g. PENDING, RUNNING, CANCELLED
    node: str  # the node list, empty while pending

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


def available() -> bool:
    """Whether this machine has SLURM's client commands."""
    return shutil.which("squeue") is not None and shutil.which("sbatch") is not None


def current_job() -> str | None:
    """The id of the SLURM job this process runs in, if any."""
    return os.environ.get("SLURM_JOB_ID") or None


def queue(job_ids: list[str] | None = None) -> dict[str, JobState] | None:
    """The queue's view of the given jobs (all of this user's when None): jobs it does not
    list are absent from the result. None if the queue cannot be asked (no SLURM, squeue
    failing or not answering in time): then nothing can be concluded about any job."""
    if shutil.which("squeue") is None:
        return None
    if job_ids is not None and not job_ids:
        return {}
    cmd = ["squeue", "--noheader", "--states=all", "--format=%i|%T|%N",
           f"--user={os.environ.get('USER') or os.getuid()}"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=_SQUEUE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    states: dict[str, JobState] = {}
    for line in done.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            states[parts[0]] = JobState(parts[0], parts[1], parts[2])
    if job_ids is not None:
        states = {i: states[i] for i in job_ids if i in states}
    return states
