"""Training under `accelerate launch` on CPU: configs, DDP (gloo), DeepSpeed ZeRO-3, and
`resistkit run` with every training stage launched. accelerate runs FSDP only on accelerators
(on CPU it quietly becomes MULTI_CPU data parallel), so the FSDP config is parsed and resolved
here but trained with on GPUs only.

Equivalence criterion: N processes at per-device batch b give the same per-step losses as one
process at batch b with N-step gradient accumulation (same samples per optimizer step, same
order). Measured on 2 CPU cores, tiny SFT, lr 1e-3, fp32: DDP is bit-identical to one
process (losses and slice weights); ZeRO-3 has identical logged losses over 8 steps and slice
weights within 2e-6. The tests allow 1e-4 (relative, losses; absolute, weights): 50x the
measured gap, and 10x below one optimizer step's change at this learning rate.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoModelForCausalLM

from resistkit.errors import RunError
from resistkit.launch import (
    CONFIG_NAMES,
    available_configs,
    build_launch_command,
    resolve_accelerate_config,
)
from resistkit.recipes import load_recipe
from resistkit.training.layout import slice_dir
from resistkit.training.train import read_losses, train

LOSS_RTOL = 1e-4
WEIGHT_ATOL = 1e-4
HAS_DEEPSPEED = importlib.util.find_spec("deepspeed") is not None
needs_deepspeed = pytest.mark.skipif(
    not HAS_DEEPSPEED,
    reason="deepspeed is not installed (pip install 'resistkit[deepspeed]', DS_BUILD_OPS=0)",
)

# Per-device batch 4; the single-process reference accumulates 2 micro-batches instead.
SETS = ["save_at_samples=[16, 32]", "train.per_device_train_batch_size=4"]


def _env() -> dict[str, str]:
    env = dict(os.environ)  # conftest hides GPUs: every rank runs the CPU path
    env.update(OMP_WAIT_POLICY="PASSIVE", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    return env


def launch(repo: Path, out: Path, config: str, procs: int = 2) -> subprocess.CompletedProcess:
    """`resistkit train --accelerate-config` through `python -m resistkit` (the CLI path)."""
    cmd = [sys.executable, "-m", "resistkit", "train", str(repo / "recipes/tiny/sft.yaml"),
           "-o", str(out), "--accelerate-config", config, "--num-processes", str(procs)]
    cmd += [a for s in SETS for a in ("--set", s)]
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def reference(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One process, gradient accumulation 2: the trajectory every launch must reproduce."""
    out = tmp_path_factory.mktemp("reference") / "run"
    recipe = load_recipe(repo / "recipes/tiny/sft.yaml",
                         [f"output_dir={out}", *SETS, "train.gradient_accumulation_steps=2"])
    return train(recipe, progress=False).run_dir


def state(path: Path) -> dict[str, torch.Tensor]:
    return AutoModelForCausalLM.from_pretrained(path).state_dict()


def assert_matches_reference(run: Path, reference: Path, kind: str) -> None:
    manifest = json.loads((run / "train_manifest.json").read_text())
    assert manifest["num_processes"] == 2 and manifest["distributed_type"] == kind
    assert manifest["samples_per_step"] == 8
    ref, got = read_losses(reference), read_losses(run)
    assert len(got) == len(ref) == 4
    for a, b in zip(ref, got, strict=True):
        assert b == pytest.approx(a, rel=LOSS_RTOL)
    base = state(run / "base")
    for n in (16, 32):
        meta = json.loads((slice_dir(run, n) / "slice.json").read_text())
        assert meta["samples_seen"] == n
        got_w, ref_w = state(slice_dir(run, n)), state(slice_dir(reference, n))
        assert got_w.keys() == ref_w.keys() == base.keys()
        for key, value in got_w.items():
            # A complete checkpoint: every tensor has its full shape and real values.
            assert value.shape == ref_w[key].shape and value.numel() > 0
            assert torch.isfinite(value).all()
            assert (value - ref_w[key]).abs().max().item() <= WEIGHT_ATOL, key
        assert any(not torch.equal(got_w[k], base[k]) for k in base)  # it trained


# --------------------------------------------------------------------------------------------
# Configs


def test_shipped_configs_resolve_by_name_and_path(repo: Path, tmp_path: Path) -> None:
    assert available_configs() == sorted(CONFIG_NAMES)
    for name in CONFIG_NAMES:
        packaged = resolve_accelerate_config(name)
        assert packaged == resolve_accelerate_config(f"{name}.yaml")
        top = repo / "accelerate_configs" / f"{name}.yaml"
        # One copy: the top-level folder is what users read and what the package installs.
        assert top.read_text() == packaged.read_text()
        assert resolve_accelerate_config(top) == top.resolve()
    own = tmp_path / "mine.yaml"
    own.write_text("distributed_type: MULTI_GPU\n")
    assert resolve_accelerate_config(str(own)) == own.resolve()
    with pytest.raises(RunError, match="zero3_offload"):
        resolve_accelerate_config("zero4")


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_accelerate_parses_and_resolves_each_config(name: str, monkeypatch) -> None:
    """accelerate's own config loader and launch-argument resolution accept every config."""
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    path = str(resolve_accelerate_config(name))
    cfg = load_config_from_file(path)
    args = launch_command_parser().parse_args(
        ["--config_file", path, "--num_processes", "2", "-m", "resistkit", "train", "r.yaml"]
    )
    args, defaults, _ = _validate_launch_command(args)
    assert args.num_processes == 2 and args.mixed_precision == "no"  # precision: the recipe's
    kind = {"ddp": "MULTI_GPU", "fsdp": "FSDP"}.get(name, "DEEPSPEED")
    assert cfg.distributed_type.value == kind
    assert (args.multi_gpu, args.use_deepspeed, args.use_fsdp) == (
        kind == "MULTI_GPU", kind == "DEEPSPEED", kind == "FSDP")
    if kind == "DEEPSPEED":
        from accelerate.utils import DeepSpeedPlugin
        from accelerate.utils.launch import prepare_deepspeed_cmd_env

        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
        _, env = prepare_deepspeed_cmd_env(args)
        for key, value in env.items():
            if key.startswith("ACCELERATE_"):
                monkeypatch.setenv(key, value)
        zero = DeepSpeedPlugin().deepspeed_config["zero_optimization"]
        assert zero["stage"] == (2 if name == "zero2" else 3)
        if name.startswith("zero3"):
            # Slices and final/ must be complete checkpoints, not per-rank shards.
            assert zero["stage3_gather_16bit_weights_on_model_save"] is True
        offload = "cpu" if name == "zero3_offload" else "none"
        assert zero["offload_optimizer"]["device"] == offload
        assert zero["offload_param"]["device"] == offload
    if kind == "FSDP":
        assert cfg.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"


def test_launch_command_on_cpu(tmp_path: Path) -> None:
    cmd = build_launch_command("r.yaml", accelerate_config="ddp", num_processes=2,
                               overrides=["train.learning_rate=1e-5"], train_args=["--no-resume"])
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "2"
    assert cmd[cmd.index("--main_process_port") + 1] == "0"  # a free port, no clashes
    assert cmd[-7:] == ["-m", "resistkit", "train", "r.yaml", "--set",
                        "train.learning_rate=1e-5", "--no-resume"]
    assert "--multi_gpu" not in cmd  # the config already says MULTI_GPU
    # A MULTI_CPU config would silently run ONE process: the launcher asks for torchrun.
    own = tmp_path / "cpu.yaml"
    own.write_text("distributed_type: MULTI_CPU\nnum_processes: 2\n")
    assert "--multi_gpu" in build_launch_command("r.yaml", accelerate_config=own)
    assert "--multi_gpu" not in build_launch_command("r.yaml", accelerate_config=own,
                                                     num_processes=1)
    multi_node = build_launch_command("r.yaml", accelerate_config="zero3", launch_args=[
        "--num_machines", "2", "--machine_rank", "1", "--main_process_ip", "10.0.0.1",
        "--main_process_port", "29500"])
    assert multi_node.count("--main_process_port") == 1


def test_launch_train_writes_a_mapping_recipe_and_finds_the_source(tmp_path: Path,
                                                                   monkeypatch) -> None:
    import resistkit.launch as launch_mod

    seen: dict = {}

    def fake_run(cmd: list[str], env: dict, check: bool) -> SimpleNamespace:
        seen.update(cmd=cmd, env=env)
        return SimpleNamespace(returncode=3)

    monkeypatch.setattr(launch_mod.subprocess, "run", fake_run)
    raw = {"output_dir": str(tmp_path / "run"), "save_at_samples": [8],
           "train": {"learning_rate": 1e-4}}
    assert launch_mod.launch_train(raw, accelerate_config="zero3", num_processes=4) == 3
    written = tmp_path / "run" / "launch_recipe.yaml"
    assert load_recipe(written).save_at_samples == [8]  # a valid stage recipe
    assert seen["cmd"][seen["cmd"].index("train") + 1] == str(written)
    src = Path(launch_mod.__file__).resolve().parents[1]
    if src.name == "src":  # a source checkout: the ranks must import this very copy
        assert str(src) in seen["env"]["PYTHONPATH"].split(os.pathsep)


def test_cli_rejects_an_unknown_accelerate_config(repo: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from resistkit.cli import app

    result = CliRunner().invoke(app, [
        "run", str(repo / "recipes/tiny/setting2.yaml"), "--dry-run", "-o", str(tmp_path),
        "--accelerate-config", "zero4", "--num-processes", "8"])
    assert result.exit_code == 2
    assert "launch.accelerate_config" in result.output


# --------------------------------------------------------------------------------------------
# Real multi-process runs (gloo on CPU)


def test_ddp_two_processes_match_one_with_accumulation(repo: Path, reference: Path,
                                                       tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    proc = launch(repo, out, "ddp")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_matches_reference(out, reference, "MULTI_CPU")
    # Rank 0 alone reports.
    assert proc.stdout.count("final model:") == 1


@pytest.mark.slow
@needs_deepspeed
def test_zero3_two_processes_match_one_and_save_consolidated_slices(
    repo: Path, reference: Path, tmp_path: Path
) -> None:
    """Real DeepSpeed ZeRO-3 on 2 gloo processes (the first run JIT-compiles a comm op, ~1-2
    min; later runs reuse TORCH_EXTENSIONS_DIR)."""
    out = tmp_path / "zero3"
    proc = launch(repo, out, "zero3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_matches_reference(out, reference, "DEEPSPEED")
    assert not list(out.rglob("slices/*/global_step*")), "ZeRO shards instead of a checkpoint"


@pytest.mark.slow
def test_run_launches_every_training_stage(repo: Path, reference: Path, tmp_path: Path) -> None:
    """`resistkit run --accelerate-config ddp --num-processes 2`: training stages run as
    launched subprocesses, generation and scoring in-process, same numbers as in-process."""
    from typer.testing import CliRunner

    from resistkit.cli import app
    from resistkit.experiment import load_experiment, run_experiment

    base = reference / "final"  # any trained model will do as θ0 here
    sets = [f"model.name_or_path={base}", "setting2.q1=[16]", "setting2.q2=[0, 16]",
            "train.per_device_train_batch_size=4"]
    launched = tmp_path / "launched"
    args = ["run", str(repo / "recipes/tiny/setting2.yaml"), "-o", str(launched),
            "--accelerate-config", "ddp", "--num-processes", "2"]
    result = CliRunner().invoke(app, args + [a for s in sets for a in ("--set", s)])
    assert result.exit_code == 0, result.output
    inproc = run_experiment(load_experiment(
        str(repo / "recipes/tiny/setting2.yaml"),
        [f"output_dir={tmp_path / 'inproc'}", *sets, "train.gradient_accumulation_steps=2"]))
    inproc_dir = Path(inproc["run_dir"])
    for stage in ("seed-42/train/forward", "seed-42/train/inverse-q1-16"):
        got = json.loads((launched / stage / "manifest.json").read_text())["outputs"]
        ref = json.loads((inproc_dir / stage / "manifest.json").read_text())["outputs"]
        train_manifest = json.loads((launched / stage / "train_manifest.json").read_text())
        assert train_manifest["distributed_type"] == "MULTI_CPU"
        assert (launched / stage / "stage_recipe.yaml").exists()
        assert [r["loss"] for r in got["losses"]] == pytest.approx(
            [r["loss"] for r in ref["losses"]], rel=LOSS_RTOL)
        assert got["slices"] == ref["slices"]
    assert (launched / "report" / "report.md").exists()
