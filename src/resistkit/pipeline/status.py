"""Where a run stands, from its directory alone (`resistkit status RUN_DIR`)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resistkit.errors import ResistkitError
from resistkit.files import read_json
from resistkit.pipeline.runner import FAILED, MANIFEST

RESUMES = {"train": "interrupted; resumes from its last checkpoint",
           "generate": "interrupted; resumes after its last finished batch (hf backend)"}


@dataclass
class StageState:
    name: str
    kind: str
    state: str  # done | stale | partial | pending | failed | queued | running
    why: str = ""
    seconds: float | None = None
    job: dict[str, Any] | None = None  # the stage's last job (executor, job_id, log), if any


@dataclass
class RunStatus:
    run_dir: Path
    stages: list[StageState]
    seconds_by_kind: dict[str, float] = field(default_factory=dict)
    left_by_kind: dict[str, int] = field(default_factory=dict)
    estimate_left_s: float | None = None

    @property
    def complete(self) -> bool:
        return all(s.state == "done" for s in self.stages)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for s in self.stages:
            out[s.state] += 1
        return dict(out)


def run_status(run_dir: str | Path) -> RunStatus:
    """Every planned stage's state (and why), time spent per stage kind, what is left."""
    from resistkit.pipeline import open_run

    run_dir = Path(run_dir)
    _, plan = open_run(run_dir)
    stages: list[StageState] = []
    spent: dict[str, list[float]] = defaultdict(list)
    for stage in plan.stages.values():
        state, why = plan.check(stage)
        seconds = _seconds(plan.dir(stage.name) / MANIFEST) if state == "done" else None
        if seconds is not None:
            spent[stage.kind].append(seconds)
        failed = plan.dir(stage.name) / FAILED
        if state != "done" and failed.exists():
            state, why = "failed", _failure(failed)
        elif state == "todo":
            state = "pending"
        elif state == "partial":
            # Training resumes from its last checkpoint and HF generation batch by batch;
            # scoring, compression, KL and data stages start over.
            why = RESUMES.get(stage.kind,
                              "interrupted; starts over (this stage kind does not resume mid-way)")
        stages.append(StageState(stage.name, stage.kind, state, why, seconds))
    _add_jobs(run_dir, stages)
    left: dict[str, int] = defaultdict(int)
    for s in stages:
        if s.state != "done":
            left[s.kind] += 1
    estimate = None
    if all(spent.get(kind) for kind in left):
        estimate = sum(n * statistics.fmean(spent[kind]) for kind, n in left.items())
    from resistkit.pipeline import layout
    from resistkit.report.files import is_current

    # The report is the run's last stage: a kill while writing it, or a plan that changed
    # since, leaves a run whose stages are all done but which is not complete.
    if is_current(run_dir / layout.REPORT_DIR, plan):
        stages.append(StageState(layout.REPORT_DIR, "report", "done"))
    else:
        written = (run_dir / layout.REPORT_DIR / "report.md").is_file()
        stages.append(StageState(layout.REPORT_DIR, "report", "stale" if written else "pending",
                                 "written from another plan, or cut short" if written else ""))
        left["report"] += 1
    return RunStatus(run_dir, stages, {k: sum(v) for k, v in spent.items()}, dict(left),
                     estimate)


def _add_jobs(run_dir: Path, stages: list[StageState]) -> None:
    """A stage not done whose job (``--executor local/slurm``) is still in the queue is
    queued or running (job id, node); one whose job left the queue without finishing it is
    failed, with the job's log."""
    from resistkit.pipeline.executor import job_views
    from resistkit.pipeline.jobs import read_record

    records = {s.name: r for s in stages if s.state != "done"
               and (r := read_record(run_dir, s.name)) is not None}
    if not records:
        return
    try:
        views = job_views(records)
    except ResistkitError as err:  # squeue not answering: say so, judge from files alone
        for s in stages:
            if s.name in records:
                s.job, s.why = records[s.name], f"{s.why}; {err}".lstrip("; ")
        return
    for s in stages:
        record = records.get(s.name)
        if record is None:
            continue
        s.job = record
        view = views[s.name]
        job = f"{record.get('executor')} job {record.get('job_id')}"
        if view.state == "active":
            s.state = "running" if s.state == "partial" or "RUNNING" in view.detail \
                else "queued"
            s.why = f"{job} {view.detail}".rstrip()
        elif s.state in ("partial", "pending", "failed"):
            s.state = "failed"
            s.why = f"{job} ended without finishing it ({s.why or 'never started'}); " \
                f"log: {record.get('log')}"


def _seconds(manifest: Path) -> float | None:
    try:
        return float(read_json(manifest).get("seconds"))
    except (ResistkitError, TypeError, ValueError):
        return None


def _failure(path: Path) -> str:
    try:
        return "failed: " + str(read_json(path).get("error", ""))
    except ResistkitError:
        return "failed"


def describe(status: RunStatus) -> dict[str, Any]:
    """The status as JSON-able data (`resistkit status --json`)."""
    return {
        "run_dir": str(status.run_dir),
        "complete": status.complete,
        "counts": status.counts(),
        "seconds_by_kind": status.seconds_by_kind,
        "left_by_kind": status.left_by_kind,
        "estimate_left_s": status.estimate_left_s,
        "stages": [s.__dict__ for s in status.stages],
    }
