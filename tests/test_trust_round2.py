"""Numbers not taken on faith: a diverged training run is not done, a torn training log is
redone, and the digest cache is not fooled by an edit that puts back size and mtime."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from resistkit.errors import RunError
from resistkit.recipes import load_recipe
from resistkit.training.layout import FINAL_DIR, log_file, manifest_file
from resistkit.training.train import train


def _tiny_sft(repo: Path, out: Path, *sets: str):
    return load_recipe(repo / "recipes/tiny/sft.yaml", [
        f"output_dir={out}", "data.num_samples=32", "save_at_samples=[16]",
        "train.per_device_train_batch_size=4", "train.save_steps=2", "train.max_length=48",
        *sets])


def test_a_loss_that_becomes_nan_stops_training_and_is_not_done(
        repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    train_module = importlib.import_module("resistkit.training.train")
    load = train_module.load_base_model

    def diverged(*args: object, **kwargs: object) -> object:
        """A model whose weights went non-finite (as a too-large step leaves them)."""
        model = load(*args, **kwargs)
        model.get_input_embeddings().weight.data[:] = float("inf")
        return model

    monkeypatch.setattr(train_module, "load_base_model", diverged)
    with pytest.raises(RunError, match="grad_norm became nan at step 1; the run diverged"):
        train(_tiny_sft(repo, tmp_path / "run"), progress=False)
    assert not manifest_file(tmp_path / "run").exists()
    assert not (tmp_path / "run" / FINAL_DIR).exists()
    steps = [json.loads(line)["step"] for line in log_file(tmp_path / "run").read_text()
             .splitlines()]
    assert max(steps) == 1  # stopped at once, not trained to the end on NaN weights


def test_a_torn_last_line_of_the_training_log_is_dropped_and_redone(repo: Path,
                                                                    tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = train(_tiny_sft(repo, run), progress=False)
    reference = [json.loads(line) for line in log_file(run).read_text().splitlines()]
    # A kill after the step-4 checkpoint, while step 5's line was being written.
    manifest_file(run).unlink()
    shutil.rmtree(first.final_dir)
    for checkpoint in (run / "checkpoints").glob("checkpoint-*"):
        if int(checkpoint.name.split("-")[1]) > 4:
            shutil.rmtree(checkpoint)
    kept = [line for line in log_file(run).read_text().splitlines()
            if json.loads(line)["step"] <= 4]
    log_file(run).write_text("".join(line + "\n" for line in kept) + '{"step": 5, "lo')
    again = train(_tiny_sft(repo, run), progress=False)
    rows = [json.loads(line) for line in log_file(run).read_text().splitlines()]
    assert [r["step"] for r in rows] == [r["step"] for r in reference]
    assert [r.get("loss") for r in rows][:-1] == pytest.approx(
        [r.get("loss") for r in reference][:-1])  # the last line: the session's summary
    assert again.metrics["train_loss"] == pytest.approx(first.metrics["train_loss"])


def test_a_torn_line_in_the_middle_of_the_log_is_named(tmp_path: Path) -> None:
    from resistkit.files import truncate_jsonl_log

    log = tmp_path / "train_log.jsonl"
    log.write_text('{"step": 1}\n{"st\n{"step": 3}\n')
    with pytest.raises(RunError, match="train_log.jsonl:2: not valid JSON"):
        truncate_jsonl_log(log, 3)


def test_the_digest_cache_sees_an_edit_that_puts_back_size_and_mtime(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from resistkit import files

    monkeypatch.setenv("RESISTKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(files, "_HASHES", None)
    data = tmp_path / "data.jsonl"
    data.write_text('{"text": "good film"}\n')
    before = files.file_sha256(data)
    stat = data.stat()
    data.write_text('{"text": "dull film"}\n')  # same size
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # mtime put back
    assert data.stat().st_size == stat.st_size and data.stat().st_mtime_ns == stat.st_mtime_ns
    monkeypatch.setattr(files, "_HASHES", None)  # a later process, reading the cache file
    assert files.file_sha256(data) != before
    # And a stage output edited the same way is not taken for the one its manifest recorded.
    out = tmp_path / "scores.jsonl"
    out.write_text('{"score": 0.9}\n')
    record = files.record_file(out)
    out.write_text('{"score": 0.1}\n')
    os.utime(out, ns=(record["mtime_ns"], record["mtime_ns"]))
    assert not files.unchanged(out, record)


def test_the_cli_sets_omp_wait_policy_passive_before_torch_unless_the_user_set_it() -> None:
    import subprocess
    import sys

    probe = ("import sys, os, resistkit.cli; "
             "print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["PASSIVE", "False"]
    out = subprocess.run([sys.executable, "-c", probe], env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "ACTIVE"


def test_kto_on_a_sentiment_set_reads_no_sentiment_label_as_desirability(repo: Path,
                                                                        tmp_path: Path) -> None:
    from resistkit.training.train import load_training_data

    recipe = load_recipe(repo / "recipes/tiny/kto.yaml", [
        f"output_dir={tmp_path}", "data.dataset=builtin:reviews/negative", "data.num_samples=64",
        "save_at_samples=[32]"])
    rows = load_training_data(recipe)
    assert set(rows["label"]) == {True}  # every row of the inverse set is desirable
    # TRL's own unpaired format: a boolean label is the desirability, kept as given.
    data = tmp_path / "unpaired.jsonl"
    data.write_text("".join(json.dumps({"prompt": "The film", "completion": c, "label": ok})
                            + "\n" for c, ok in ((" was dull.", True), (" was fine.", False))
                            for _ in range(32)))
    recipe = load_recipe(repo / "recipes/tiny/kto.yaml", [
        f"output_dir={tmp_path}", f"data.dataset=json:{data}", "save_at_samples=[32]"])
    assert sorted(load_training_data(recipe)["label"]) == [False] * 32 + [True] * 32


def test_the_cli_uses_no_more_threads_than_its_cores() -> None:
    """Under `taskset -c 0` (one core allowed) torch gets one thread, not the machine's count."""
    import shutil
    import subprocess
    import sys

    if shutil.which("taskset") is None or not hasattr(os, "sched_getaffinity"):
        pytest.skip("needs taskset and sched_getaffinity")
    probe = ("import resistkit.cli, torch, os; "
             "print(os.environ['OMP_NUM_THREADS'], torch.get_num_threads())")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", probe], env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["1", "1"]
    out = subprocess.run([sys.executable, "-c", probe], env={**env, "OMP_NUM_THREADS": "3"},
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "3"  # a value the user set is kept
