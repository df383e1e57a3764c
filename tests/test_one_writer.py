"""One writer per run directory, one experiment per run directory, and no user file replaced."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from resistkit.cli import app
from resistkit.errors import RunError
from resistkit.locks import LOCK_FILE, writer_lock
from resistkit.pipeline import layout
from resistkit.pipeline.claim import claim


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _lock(directory: Path, pid: int, host: str | None = None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / LOCK_FILE).write_text(json.dumps({
        "pid": pid, "host": host or socket.gethostname(), "started": "2025-01-01T00:00:00+00:00",
        "command": "resistkit run x"}))


def test_a_live_holder_refuses_a_second_writer_and_nothing_changes(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run = tmp_path / "run"
        _lock(run, holder.pid)
        before = _snapshot(tmp_path)
        with pytest.raises(RunError, match=f"in use by pid {holder.pid} on "
                           f"{socket.gethostname()}, started 2025-01-01"), writer_lock(run):
            pass
        # A stage directory inside a locked run is refused too, and `report` into it.
        for argv in (["report", str(run)],
                     ["train", "tiny/sft", "-o", str(run / "seed-42/train/forward")]):
            result = CliRunner().invoke(app, argv)
            assert result.exit_code == 2, result.output
            assert f"in use by pid {holder.pid}" in result.output
            assert "Traceback" not in result.output
        assert _snapshot(tmp_path) == before
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    run = tmp_path / "run"
    dead = _dead_pid()
    _lock(run, dead)
    with caplog.at_level(logging.WARNING, logger="resistkit.locks"), writer_lock(run):
        held = json.loads((run / LOCK_FILE).read_text())
        assert held["pid"] == os.getpid()
    assert f"pid {dead}" in caplog.text and "gone" in caplog.text
    assert not (run / LOCK_FILE).exists()
    # A lock on another host cannot be checked from here: it is never taken over.
    _lock(run, dead, host="elsewhere.example")
    with pytest.raises(RunError, match="elsewhere.example"), writer_lock(run):
        pass


def test_a_refused_writer_leaves_no_directory_behind(tmp_path: Path) -> None:
    new = tmp_path / "new"
    with pytest.raises(ValueError), writer_lock(new):
        raise ValueError("refused after the lock")
    assert not new.exists()


def test_two_concurrent_runs_the_second_refused_at_once(repo: Path, micro_base: Path,
                                                         tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    argv = [sys.executable, "-m", "resistkit", "run", str(repo / "recipes/tiny/setting2.yaml"),
            "-o", str(run_dir), "--set", f"model.name_or_path={micro_base}",
            "--set", "setting2.q1=[64]", "--set", "setting2.q2=[0,32,64]",
            "--set", "eval.prompts.num_samples=32"]
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (run_dir / LOCK_FILE).exists():
            assert first.poll() is None, first.communicate()
            assert time.time() < deadline
            time.sleep(0.2)
        started = time.time()
        second = subprocess.run(argv, capture_output=True, text=True)
        assert second.returncode == 2, second.stderr
        assert time.time() - started < 15  # told before its own input checks
        errors = [line for line in second.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and f"in use by pid {first.pid}" in errors[0], second.stderr
        assert "Traceback" not in second.stderr
        out, err = first.communicate(timeout=900)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err[-2000:]
    assert (run_dir / layout.REPORT_DIR / "report.md").is_file()
    assert not (run_dir / LOCK_FILE).exists()


def _setting2_run(repo: Path, run_dir: Path) -> None:
    """A run directory as `resistkit run tiny/setting2` leaves it (its report included)."""
    from resistkit.experiment import load_experiment
    from resistkit.recipes import dump_recipe

    exp = load_experiment(str(repo / "recipes/tiny/setting2.yaml"), [f"output_dir={run_dir}"])
    claim(run_dir, exp.experiment, {layout.EXPERIMENT_FILE: dump_recipe(exp)}, force=False)
    (run_dir / layout.REPORT_DIR).mkdir()
    (run_dir / layout.REPORT_DIR / "report.md").write_text("# Setting II\n")


def test_a_run_directory_belongs_to_one_experiment(repo: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _setting2_run(repo, run_dir)
    before = _snapshot(tmp_path)
    for extra in ([], ["--dry-run"]):
        result = CliRunner().invoke(app, ["run", "tiny/setting1", "-o", str(run_dir), *extra])
        assert result.exit_code == 2, result.output
        assert "holds a setting2 run, not setting1" in result.output
        assert "--force" in result.output
    assert _snapshot(tmp_path) == before
    # --force: the old experiment's report is not mixed into the new one's.
    claim(run_dir, "setting1", {layout.EXPERIMENT_FILE: "experiment: setting1\n"}, force=True)
    assert not (run_dir / layout.REPORT_DIR).exists()


def test_the_users_own_experiment_yaml_is_never_overwritten(repo: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    mine = run_dir / layout.EXPERIMENT_FILE
    mine.write_text("# my commented recipe\n" + (repo / "recipes/tiny/setting2.yaml")
                    .read_text())
    before = _snapshot(tmp_path)
    for argv in (["run", str(mine), "-o", str(run_dir)], ["run", str(run_dir)]):
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 2, result.output
        assert "was not written by resistkit" in result.output
    assert _snapshot(tmp_path) == before


def test_a_file_resistkit_wrote_is_told_apart_from_an_edit(tmp_path: Path) -> None:
    from resistkit.pipeline.claim import written_by_resistkit

    claim(tmp_path, "setting2", {layout.EXPERIMENT_FILE: "experiment: setting2\n",
                                 layout.ENV_FILE: {"a": 1}}, force=False)
    assert written_by_resistkit(tmp_path, layout.EXPERIMENT_FILE)
    (tmp_path / layout.EXPERIMENT_FILE).write_text("experiment: setting2  # mine\n")
    assert not written_by_resistkit(tmp_path, layout.EXPERIMENT_FILE)
    with pytest.raises(RunError, match="never overwrites"):
        claim(tmp_path, "setting2", {layout.EXPERIMENT_FILE: "experiment: setting2\nseeds: [1]\n"},
              force=True)


def test_ranks_of_a_distributed_launch_share_rank_zeros_lock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`accelerate launch -m resistkit train`: rank 0 takes the lock, the other ranks write
    under it instead of being refused by it."""
    from resistkit.locks import lock_path, writer_lock

    with writer_lock(tmp_path / "out", "training directory"):
        assert lock_path(tmp_path / "out").exists()
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("RANK", "1")
        monkeypatch.delenv("RESISTKIT_HELD_LOCKS", raising=False)
        with writer_lock(tmp_path / "out", "training directory"):
            pass  # not refused
