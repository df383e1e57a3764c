"""Stages as jobs: `--executor local --jobs 2` and `--executor slurm` (a real one-node SLURM,
started by tests/slurm/one_node.sh) write the same report, byte for byte, as a sequential run;
a `scancel`led stage is failed with its log, and the driver run again finishes it; a second
driver on the same run submits nothing and says why; a stage's lock outlives its driver."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resistkit import slurm
from resistkit.errors import RunError
from resistkit.locks import HELD_ENV, LOCK_FILE, writer_lock
from resistkit.pipeline.jobs import JOB_FILE, JOBS_DIR, run_stage

FORWARD = "seed-42/train/forward"


def _argv(repo: Path, base: Path, run_dir: Path, *more: str) -> list[str]:
    sets = [f"model.name_or_path={base}", "setting2.q1=[16]", "setting2.q2=[0]",
            "eval.prompts.num_samples=8", "train.save_steps=1"]
    return [sys.executable, "-m", "resistkit", "run", str(repo / "recipes/tiny/setting2.yaml"),
            "-o", str(run_dir), *[a for s in sets for a in ("--set", s)], *more]


def _report(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run_dir / "report").iterdir())}


def _run(argv: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.fixture(scope="module")
def reference(repo: Path, micro_base: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> dict[str, bytes]:
    """The report of the same run made sequentially (every run dir is named `run`: the
    report names its directory)."""
    run_dir = tmp_path_factory.mktemp("sequential") / "run"
    done = _run(_argv(repo, micro_base, run_dir))
    assert done.returncode == 0, done.stderr[-2000:]
    return _report(run_dir)


@pytest.fixture(scope="module")
def cluster(repo: Path) -> None:
    """A one-node SLURM on this machine, or a skip that says why not."""
    if shutil.which("slurmctld") is None:
        pytest.skip("SLURM is not installed (bash tests/slurm/one_node.sh install, as root)")
    started = subprocess.run(["bash", str(repo / "tests/slurm/one_node.sh"), "start"],
                             capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        pytest.skip(f"a one-node SLURM could not start here: {started.stderr.strip()[-300:]}")
    pytest.importorskip("submitit")


@pytest.mark.slow
def test_local_jobs_write_the_sequential_report(repo: Path, micro_base: Path,
                                                reference: dict[str, bytes],
                                                tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    done = _run(_argv(repo, micro_base, run_dir, "--executor", "local", "--jobs", "2"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert _report(run_dir) == reference
    # Every stage ran as a job of its own, recorded in the run directory.
    records = list((run_dir / JOBS_DIR).rglob(JOB_FILE))
    assert len(records) == 6
    assert {json.loads(r.read_text())["executor"] for r in records} == {"local"}
    # How the stages ran is not what they computed: the report's command omits it.
    assert b"--executor" not in reference["report.md"]
    assert b"--executor" not in _report(run_dir)["report.md"]


@pytest.mark.slow
@pytest.mark.slurm
def test_slurm_run_scancel_and_second_driver(repo: Path, micro_base: Path, cluster: None,
                                             reference: dict[str, bytes],
                                             tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    argv = _argv(repo, micro_base, run_dir, "--executor", "slurm", "--set",
                 "executor.poll_s=0.5")
    driver = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        # The forward training stage as soon as its job writes: cancel it mid-stage.
        record = run_dir / JOBS_DIR / FORWARD / JOB_FILE
        pending = run_dir / FORWARD / "pending.json"
        deadline = time.time() + 180
        while not (record.is_file() and pending.is_file()) and time.time() < deadline:
            time.sleep(0.05)
        assert pending.is_file(), "the forward stage's job never started"
        job_id = json.loads(record.read_text())["job_id"]
        subprocess.run(["scancel", job_id], check=True)
        # A second driver meanwhile: refused at once, nothing submitted. The first is paused
        # for it (SIGSTOP: alive, holding its lock), so that on a loaded machine it cannot
        # finish before the second starts.
        driver.send_signal(signal.SIGSTOP)
        try:
            second = _run(argv, timeout=120)
        finally:
            driver.send_signal(signal.SIGCONT)
        assert second.returncode == 2, second.stderr[-1000:]
        assert f"in use by pid {driver.pid}" in second.stderr, second.stderr
        assert json.loads(record.read_text())["job_id"] == job_id
        out, err = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 2, out[-2000:] + err[-2000:]
    assert f"stage {FORWARD} failed" in err and f"job {job_id} ended without" in err, err
    assert "log: " in err and str(run_dir / JOBS_DIR / "slurm") in err
    queue = slurm.queue([job_id])
    assert queue is not None and job_id in queue and queue[job_id].state == "CANCELLED"
    assert not (run_dir / FORWARD / "manifest.json").exists()
    status = _run([sys.executable, "-m", "resistkit", "status", str(run_dir), "--json"])
    forward = next(s for s in json.loads(status.stdout)["stages"] if s["name"] == FORWARD)
    assert forward["state"] == "failed", forward
    assert f"slurm job {job_id} ended without finishing it" in forward["why"]
    assert forward["job"]["log"] in forward["why"]
    # The driver again: the cancelled stage resumes (its lock's job has left the queue).
    again = _run(argv)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert json.loads(record.read_text())["job_id"] != job_id
    assert _report(run_dir) == reference


def test_a_stage_job_refuses_a_run_held_by_a_sequential_writer(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run = tmp_path / "run"
        run.mkdir()
        (run / LOCK_FILE).write_text(json.dumps({
            "pid": holder.pid, "host": socket.gethostname(), "started": "2025-01-01",
            "command": "resistkit run x"}))
        with pytest.raises(RunError, match="not an executor's driver; stage seed-42/x was "
                           "not run"):
            run_stage(str(run), "seed-42/x")
        assert sorted(p.name for p in run.iterdir()) == [LOCK_FILE]
    finally:
        holder.kill()


def test_a_stage_lock_is_its_own_inside_a_held_run(tmp_path: Path) -> None:
    """A job passes through its driver's run lock but holds its stage's: a second job for
    the same stage is refused while the first lives."""
    run = tmp_path / "run"
    stage_dir = run / JOBS_DIR / FORWARD
    with writer_lock(run, note={"executor": "slurm"}), \
            writer_lock(stage_dir, what="stage", own=True):
        assert (stage_dir / LOCK_FILE).is_file()
        code = ("import sys; from resistkit.locks import writer_lock\n"
                f"with writer_lock({str(stage_dir)!r}, what='stage', own=True): pass")
        env = {k: v for k, v in os.environ.items() if k != HELD_ENV}  # another process
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               env=env)
        assert other.returncode != 0
        assert "this stage is in use by pid" in other.stderr
    assert not (stage_dir / LOCK_FILE).exists()


def test_slurm_resources_per_stage_kind(repo: Path) -> None:
    from resistkit.experiment import load_experiment

    exp = load_experiment(str(repo / "recipes/tiny/setting2.yaml"), [
        "executor.kind=slurm", "executor.slurm.partition=gpu", "executor.slurm.cpus=8",
        "executor.slurm.mem_gb=1.5", "executor.slurm.sbatch={qos: high}",
        "executor.slurm.by_kind={train: {gpus: 4, time_min: 600, sbatch: {constraint: a100}}}"])
    train = exp.executor.slurm.sbatch_for("train")
    assert train == {"time": 600, "cpus_per_task": 8, "partition": "gpu", "gpus_per_node": 4,
                     "mem": "1536M",
                     "additional_parameters": {"qos": "high", "constraint": "a100"}}
    score = exp.executor.slurm.sbatch_for("score")
    assert score["time"] == 60 and "gpus_per_node" not in score
    assert score["additional_parameters"] == {"qos": "high"}


def test_an_unknown_stage_kind_or_executor_is_refused(repo: Path) -> None:
    from resistkit.errors import RecipeError
    from resistkit.experiment import load_experiment

    recipe = str(repo / "recipes/tiny/setting2.yaml")
    with pytest.raises(RecipeError, match="executor.kind"):
        load_experiment(recipe, ["executor.kind=ray"])
    with pytest.raises(RecipeError, match="by_kind"):
        load_experiment(recipe, ["executor.slurm.by_kind={trian: {gpus: 1}}"])
