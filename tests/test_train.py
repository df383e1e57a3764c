"""`resistkit train` on a tiny model built in-process: SFT, DPO, LoRA, slices, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from resistkit.recipes import load_recipe
from resistkit.training.layout import slice_dir
from resistkit.training.train import train


def tiny_recipe(repo: Path, name: str, tmp_path: Path, *sets: str):
    return load_recipe(repo / "recipes" / "tiny" / name, [f"output_dir={tmp_path / 'run'}", *sets])


def read_log(run_dir: Path) -> list[dict]:
    lines = (run_dir / "train_log.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def params_changed(base: Path, other: Path) -> bool:
    a = AutoModelForCausalLM.from_pretrained(base).state_dict()
    b = AutoModelForCausalLM.from_pretrained(other).state_dict()
    return any(not torch.equal(a[k], b[k]) for k in a)


def test_sft_trains_logs_and_saves_loadable_slices(repo: Path, tmp_path: Path) -> None:
    recipe = tiny_recipe(repo, "sft.yaml", tmp_path, "save_at_samples=[16, 32]")
    result = train(recipe, progress=False)
    run = result.run_dir
    log = [r for r in read_log(run) if "loss" in r]
    assert len(log) == 4 and all(r["loss"] > 0 for r in log)  # 32 samples / batch 8
    assert log[-1]["loss"] < log[0]["loss"]  # lr 1e-3 on a tiny model: loss moves down
    assert (run / "train_recipe.yaml").exists()
    env = json.loads((run / "train_env.json").read_text())
    assert env["seed"] == 42 and env["packages"]["trl"]
    for n in (16, 32):
        path = slice_dir(run, n)
        meta = json.loads((path / "slice.json").read_text())
        assert meta["samples_seen"] == n
        model = AutoModelForCausalLM.from_pretrained(path)
        tok = AutoTokenizer.from_pretrained(path)
        ids = tok("The movie was", return_tensors="pt")
        out = model.generate(
            **ids, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id
        )
        assert out.shape[1] == ids["input_ids"].shape[1] + 4
    assert params_changed(run / "base", slice_dir(run, 16))
    assert params_changed(slice_dir(run, 16), slice_dir(run, 32))


def test_same_seed_same_losses(repo: Path, tmp_path: Path) -> None:
    a = train(tiny_recipe(repo, "sft.yaml", tmp_path / "a", "save_at_samples=[16]"), progress=False)
    b = train(tiny_recipe(repo, "sft.yaml", tmp_path / "b", "save_at_samples=[16]"), progress=False)
    la = [r["loss"] for r in read_log(a.run_dir) if "loss" in r]
    lb = [r["loss"] for r in read_log(b.run_dir) if "loss" in r]
    assert la == lb


def test_dpo_trains_and_changes_parameters(repo: Path, tmp_path: Path) -> None:
    recipe = tiny_recipe(repo, "dpo.yaml", tmp_path, "data.num_samples=16", "save_at_samples=[16]")
    result = train(recipe, progress=False)
    log = [r for r in read_log(result.run_dir) if "loss" in r]
    assert log and all(r["loss"] == r["loss"] for r in log)  # logged, not NaN
    assert params_changed(result.run_dir / "base", slice_dir(result.run_dir, 16))


def test_lora_slices_load_with_from_pretrained(repo: Path, tmp_path: Path) -> None:
    recipe = tiny_recipe(repo, "lora.yaml", tmp_path, "data.num_samples=16", "save_at_samples=[16]")
    result = train(recipe, progress=False)
    path = slice_dir(result.run_dir, 16)
    assert (path / "adapter_config.json").exists()
    model = AutoModelForCausalLM.from_pretrained(path)  # transformers' PEFT integration
    assert any("lora" in name for name, _ in model.named_parameters())


def test_finished_run_is_not_recomputed(repo: Path, tmp_path: Path) -> None:
    recipe = tiny_recipe(repo, "sft.yaml", tmp_path, "save_at_samples=[16]")
    first = train(recipe, progress=False)
    stamp = (first.final_dir / "model.safetensors").stat().st_mtime_ns
    again = train(recipe, progress=False)
    assert (again.final_dir / "model.safetensors").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_losses(repo: Path, tmp_path: Path) -> None:
    """SIGKILL mid-training, start again: same per-step losses as an uninterrupted run."""
    sets = ["save_at_samples=[64, 128]", "train.save_steps=4", "train.logging_steps=1"]
    ref = train(tiny_recipe(repo, "sft.yaml", tmp_path / "ref", *sets), progress=False)
    ref_losses = {r["step"]: r["loss"] for r in read_log(ref.run_dir) if "loss" in r}

    run_dir = tmp_path / "killed" / "run"
    cmd = [sys.executable, "-m", "resistkit", "train", str(repo / "recipes/tiny/sft.yaml"),
           "-o", str(run_dir)] + [a for s in sets for a in ("--set", s)]
    proc = subprocess.Popen(cmd, env=os.environ | {"PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    # Kill once a checkpoint beyond step 4 exists, i.e. genuinely mid-run.
    while time.time() < deadline and proc.poll() is None:
        if (run_dir / "checkpoints" / "checkpoint-8").exists():
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    assert not (run_dir / "final").exists(), "the run finished before it could be killed"
    resumed = subprocess.run(cmd, env=os.environ, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    losses = {r["step"]: r["loss"] for r in read_log(run_dir) if "loss" in r}
    assert sorted(losses) == sorted(ref_losses)
    for step, loss in ref_losses.items():
        assert losses[step] == pytest.approx(loss, abs=1e-6)
    assert AutoModelForCausalLM.from_pretrained(slice_dir(run_dir, 128))


def test_inverse_command_trains_a_slice_on_the_other_side(repo: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from resistkit.cli import app

    first = train(tiny_recipe(repo, "sft.yaml", tmp_path / "pos", "save_at_samples=[16]"),
                  progress=False)
    out = tmp_path / "inv"
    result = CliRunner().invoke(app, [
        "inverse", str(slice_dir(first.run_dir, 16)), "--data", "builtin:reviews/negative",
        "--save-at", "8,16", "-o", str(out), "--recipe", str(repo / "recipes/tiny/sft.yaml"),
    ])
    assert result.exit_code == 0, result.output
    recipe = (out / "train_recipe.yaml").read_text()
    assert "builtin:reviews/negative" in recipe and str(slice_dir(first.run_dir, 16)) in recipe
    assert params_changed(slice_dir(first.run_dir, 16), slice_dir(out, 16))
    assert json.loads((slice_dir(out, 8) / "slice.json").read_text())["samples_seen"] == 8
