"""Stages as jobs: a driver that starts every stage whose inputs are done, as a SLURM job
(through submitit) or as a local process, and follows them until the run is complete.

The driver polls (no SLURM dependencies: a failed parent would leave its children pending for
ever). Every round it judges each stage from the run directory alone, as `resistkit status`
does; a stage not done is *active* while the queue (or this host's process table) still
holds the job its record names, and otherwise is started once its dependencies are done. A
job that leaves the queue without its stage done has failed: the driver names its log, starts
nothing that depends on it, finishes the rest, and exits with an error; run it again to retry.
So the driver can be stopped and re-run at any time: it finds the jobs already queued or
running through their records (``pipeline.jobs``) and starts only what is missing. It never
waits on a job without a bound: it asks the queue, never a job's result.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from resistkit.errors import RunError
from resistkit.files import read_json
from resistkit.locks import pid_alive
from resistkit.pipeline.jobs import JOBS_DIR, LOCAL_LOG, job_dir, read_record, write_record
from resistkit.pipeline.runner import MANIFEST, Plan, Stage

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class JobView:
    """Where a stage's last job stands: active (queued or running) or gone."""

    state: str  # active | gone
    detail: str = ""  # e.g. "RUNNING on node3"


class Backend(Protocol):
    name: str

    def free_slots(self) -> int: ...

    def busy(self) -> bool: ...

    def submit(self, run_dir: Path, stage: Stage) -> dict[str, Any]: ...

    def view(self, name: str, record: dict[str, Any]) -> JobView | None: ...


class LocalBackend:
    """Up to ``jobs`` stages at once as processes on this machine (``python -m
    resistkit.pipeline.jobs RUN STAGE``), one GPU each where there are GPUs."""

    name = "local"

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.gpu_of: dict[str, int] = {}
        self.gpus = _gpu_count()

    def free_slots(self) -> int:
        for name, proc in list(self.procs.items()):
            if proc.poll() is not None:
                del self.procs[name]
                self.gpu_of.pop(name, None)
        return self.jobs - len(self.procs)

    def busy(self) -> bool:
        """A job is still alive (its stage may be done while its process exits)."""
        return self.free_slots() < self.jobs

    def submit(self, run_dir: Path, stage: Stage) -> dict[str, Any]:
        env = dict(os.environ)
        if self.gpus:
            used = set(self.gpu_of.values())
            gpu = next(i for i in range(self.gpus) if i not in used) if len(used) < self.gpus \
                else len(self.procs) % self.gpus
            env["CUDA_VISIBLE_DEVICES"] = str(gpu)
            self.gpu_of[stage.name] = gpu
        logfile = job_dir(run_dir, stage.name) / LOCAL_LOG
        logfile.parent.mkdir(parents=True, exist_ok=True)
        with logfile.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "resistkit.pipeline.jobs", str(run_dir), stage.name],
                stdout=out, stderr=subprocess.STDOUT, env=env)
        self.procs[stage.name] = proc
        return {"executor": self.name, "job_id": str(proc.pid), "pid": proc.pid,
                "host": socket.gethostname(), "log": str(logfile)}

    def view(self, name: str, record: dict[str, Any]) -> JobView | None:
        """A job this driver started, judged from its process handle (None if not ours)."""
        proc = self.procs.get(name)
        if proc is None or str(proc.pid) != record.get("job_id"):
            return None
        return JobView("active" if proc.poll() is None else "gone")


class SlurmBackend:
    """Every ready stage as a SLURM job through submitit; resources per stage kind."""

    name = "slurm"

    def __init__(self, run_dir: Path, spec: Any) -> None:
        try:
            import submitit  # noqa: F401
        except ImportError:
            raise RunError("--executor slurm needs submitit: pip install 'resistkit[slurm]'") \
                from None
        from resistkit import slurm

        if not slurm.available():
            raise RunError("--executor slurm: this machine has no SLURM commands (sbatch, "
                           "squeue); run the driver on a cluster's login node")
        self.spec = spec
        self.folder = run_dir / JOBS_DIR / "slurm"

    def free_slots(self) -> int:
        return 1 << 30  # the queue decides what runs when

    def busy(self) -> bool:
        return False  # jobs are followed through the queue (job_views)

    def submit(self, run_dir: Path, stage: Stage) -> dict[str, Any]:
        import submitit

        from resistkit.pipeline.jobs import run_stage

        executor = submitit.SlurmExecutor(folder=str(self.folder / "%j"))
        executor.update_parameters(**self.spec.sbatch_for(stage.kind),
                                   job_name=f"rk-{stage.name}"[:120])
        job = executor.submit(run_stage, str(run_dir), stage.name)
        return {"executor": self.name, "job_id": str(job.job_id), "host": socket.gethostname(),
                "log": str(job.paths.stdout), "stderr": str(job.paths.stderr)}

    def view(self, name: str, record: dict[str, Any]) -> JobView | None:
        return None  # SLURM jobs are judged from the queue, whoever started them


def job_views(records: dict[str, dict[str, Any]],
              backend: Backend | None = None) -> dict[str, JobView]:
    """Where each stage's recorded job stands, whichever executor started it: a SLURM job
    from the queue, a local job from this host's processes. A local job on another host
    cannot be seen and counts as gone (the stage's lock still keeps a second writer out)."""
    from resistkit import slurm

    ids = [str(r.get("job_id")) for r in records.values() if r.get("executor") == "slurm"]
    states = None
    for attempt in range(3):
        states = slurm.queue(ids)
        if states is not None or not ids:
            break
        time.sleep(2.0 * (attempt + 1))
    if ids and states is None:
        raise RunError("squeue does not answer: cannot tell which jobs are still queued; "
                       "the jobs already started go on, run the driver again later")
    out: dict[str, JobView] = {}
    for name, record in records.items():
        own = backend.view(name, record) if backend is not None else None
        if own is not None:
            out[name] = own
        elif record.get("executor") == "slurm":
            job = (states or {}).get(str(record.get("job_id")))
            if job is None:
                out[name] = JobView("gone")
            else:
                where = f" on {job.node}" if job.node else ""
                out[name] = JobView("active" if job.active else "gone", f"{job.state}{where}")
        elif record.get("host") == socket.gethostname() and pid_alive(int(record["pid"])):
            out[name] = JobView("active", f"pid {record['pid']}")
        else:
            out[name] = JobView("gone")
    return out


def _gpu_count() -> int:
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return 0
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # no usable torch CUDA: CPU jobs
        return 0


@dataclass
class Outcome:
    started: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # stage -> why (with its log path)
    blocked: list[str] = field(default_factory=list)  # waiting on a failed stage


def drive(plan: Plan, backend: Backend, *, poll_s: float,
          say: Callable[[str], None] = print,
          on_start: Callable[[Stage, str], None] | None = None,
          on_done: Callable[[Stage, dict[str, Any], float], None] | None = None) -> Outcome:
    """Start and follow jobs until every stage is done or nothing more can run;
    ``on_start(stage, status)`` as a job is started for it, ``on_done(stage, outputs,
    seconds)`` as its manifest appears."""
    outcome = Outcome()
    announced: set[str] = set()
    done_seen: set[str] = set()
    while True:
        plan.forget()
        status = {name: plan.status(stage) for name, stage in plan.stages.items()}
        for name, state in status.items():
            if state == "done" and name not in done_seen:
                done_seen.add(name)
                if (name in outcome.started or name in announced) and on_done is not None:
                    manifest = read_json(plan.dir(name) / MANIFEST)
                    on_done(plan.stages[name], manifest.get("outputs", {}),
                            float(manifest.get("seconds") or 0.0))
        left = [plan.stages[n] for n, s in status.items() if s != "done"]
        if not left:
            return outcome
        records = {s.name: r for s in left if (r := read_record(plan.run_dir, s.name))}
        views = job_views(records, backend)
        running = 0
        for stage in left:
            view = views.get(stage.name)
            if view is not None and view.state == "active":
                running += 1
                if stage.name not in announced and stage.name not in outcome.started:
                    announced.add(stage.name)
                    say(f"  job {records[stage.name]['job_id']} already started: "
                        f"{stage.name} {view.detail}".rstrip())
            elif stage.name in outcome.started and stage.name not in outcome.failed:
                plan.forget()  # it may have finished since `status` was read: look again
                if plan.status(stage) == "done":
                    running += 1  # reported done next round
                    continue
                record = records.get(stage.name, {})
                outcome.failed[stage.name] = (f"job {record.get('job_id')} ended without "
                                              f"finishing it; log: {record.get('log')}")
                say(f"  failed {stage.name}: {outcome.failed[stage.name]}")
        submitted = 0
        for stage in left:
            active = views.get(stage.name, JobView("gone")).state == "active"
            # Started once by this driver (now active or failed): not again in this drive.
            if active or stage.name in outcome.started:
                continue
            if any(status[d] != "done" for d in stage.deps):
                continue
            if backend.free_slots() <= 0:
                break
            if on_start is not None:
                on_start(stage, status[stage.name])
            record = {**backend.submit(plan.run_dir, stage), "stage": stage.name,
                      "submitted": _now()}
            write_record(plan.run_dir, stage.name, record)
            outcome.started.append(stage.name)
            submitted += 1
            running += 1
            say(f"  job {record['job_id']} ({backend.name}): {stage.name}")
        if running == 0 and submitted == 0 and not backend.busy():
            failed = set(outcome.failed)
            outcome.blocked = [s.name for s in left if s.name not in failed]
            return outcome
        time.sleep(poll_s)


def backend_for(spec: Any, run_dir: Path) -> Backend:
    """The backend of an ``executor:`` section (``schema.ExecutorSpec``), not sequential."""
    if spec.kind == "slurm":
        return SlurmBackend(run_dir, spec.slurm)
    return LocalBackend(spec.jobs)


def failure_message(outcome: Outcome, run_dir: Path) -> str:
    first, why = next(iter(outcome.failed.items()))
    more = f" (and {len(outcome.failed) - 1} more)" if len(outcome.failed) > 1 else ""
    blocked = f"; {len(outcome.blocked)} stages wait for it" if outcome.blocked else ""
    return (f"stage {first} failed{more}: {why}{blocked}. Fix the cause and run the same "
            f"command again (`resistkit status {run_dir}` lists every stage)")
