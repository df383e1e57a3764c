"""`dtype: auto` on CPUs: the selection logic forced down each path, what it puts in stage
fingerprints, and bf16's fidelity on a real compression measurement."""

from __future__ import annotations

from pathlib import Path

import pytest

from resistkit import hardware

AMX = frozenset({"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
AVX512_BF16 = frozenset({"avx2", "avx512f", "avx512_bf16"})
AVX2 = frozenset({"avx2", "fma"})


@pytest.mark.parametrize(("flags", "kind", "inference", "autocast"), [
    (AMX, "amx_bf16", "bfloat16", True),
    (AVX512_BF16, "avx512_bf16", "bfloat16", True),
    (AVX2, None, "float32", False),
    (frozenset(), None, "float32", False),
])
def test_auto_follows_the_cpu_flags(flags: frozenset[str], kind: str | None, inference: str,
                                    autocast: bool) -> None:
    assert hardware.cpu_bf16(flags) == kind
    chosen = hardware.cpu_precision("auto", flags)
    assert (chosen.inference, chosen.train_autocast) == (inference, autocast)
    assert ("has AMX_BF16" in chosen.reason) == (kind == "amx_bf16")


def test_float32_forces_the_old_path_on_a_bf16_cpu() -> None:
    chosen = hardware.cpu_precision("float32", AMX)
    assert (chosen.inference, chosen.train_autocast) == ("float32", False)


def _patch(monkeypatch: pytest.MonkeyPatch, flags: frozenset[str]) -> None:
    monkeypatch.setattr(hardware, "cpu_flags", lambda: flags)


def test_the_loaders_and_trainer_defaults_follow_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from resistkit.models.load import resolve_dtype
    from resistkit.training.common import device_defaults

    cpu = torch.device("cpu")
    _patch(monkeypatch, AMX)
    assert resolve_dtype("auto", cpu) == torch.bfloat16
    assert device_defaults("auto")["bf16"] is True
    assert device_defaults("auto")["optim"] == "adamw_torch_fused"
    assert device_defaults("float32")["bf16"] is False
    assert resolve_dtype("float32", cpu) == torch.float32
    _patch(monkeypatch, AVX2)
    assert resolve_dtype("auto", cpu) == torch.float32
    assert device_defaults("auto")["bf16"] is False
    assert "optim" not in device_defaults("auto")  # TRL's own default: the exact fp32 path


def test_fingerprints_change_only_where_bf16_is_chosen(monkeypatch: pytest.MonkeyPatch,
                                                       repo: Path, tmp_path: Path) -> None:
    """On an fp32 CPU the plan's fingerprints are those of before `auto` could pick bf16;
    on a bf16 CPU every stage whose numbers bf16 changes gets a new one, and the data stages
    none; `float32` gives the fp32 fingerprints back."""
    from resistkit.experiment import load_experiment
    from resistkit.pipeline.settings import build_plan

    def fingerprints(flags: frozenset[str], *sets: str) -> dict[str, tuple[str, dict]]:
        _patch(monkeypatch, flags)
        exp = load_experiment(str(repo / "recipes/tiny/safety.yaml"),
                              [f"output_dir={tmp_path}", *sets])
        plan, _ = build_plan(exp, tmp_path)
        return {s.name: (s.kind, s.fingerprint) for s in plan.stages.values()}

    fp32 = fingerprints(AVX2)
    bf16 = fingerprints(AMX)
    changed = {name for name in fp32 if fp32[name][1] != bf16[name][1]}
    assert changed == {name for name, (kind, _) in fp32.items()
                       if kind in ("train", "generate", "score", "eval")}
    assert fingerprints(AMX, "model.dtype=float32") == \
        fingerprints(AVX2, "model.dtype=float32")


def test_bf16_weights_measure_compression_within_half_a_percent(tmp_path: Path) -> None:
    """The fidelity bound the speed-up rests on, on the shipped tiny base and real text."""
    from resistkit.models import resolve_model
    from resistkit.scoring.stage import run_score

    base = resolve_model("builtin:tiny-base").path
    rates = {}
    for dtype in ("float32", "bfloat16"):
        result = run_score("builtin:pretrain", ["compression"], split="heldout", num_samples=24,
                           seed=0, output=tmp_path / f"{dtype}.jsonl", model=base, dtype=dtype)
        rates[dtype] = result.summary["scorers"]["compression"]["corpus"]["bits_per_token"]
    assert rates["bfloat16"] == pytest.approx(rates["float32"], rel=0.005)
    assert rates["bfloat16"] != rates["float32"]  # the bf16 path really ran


def test_the_bf16_training_path_runs_for_real(monkeypatch: pytest.MonkeyPatch, repo: Path,
                                              tmp_path: Path) -> None:
    """TRL accepts the forced bf16 path on a CPU (autocast, fused AdamW) and trains."""
    import math

    from resistkit.recipes import load_recipe
    from resistkit.training.train import build_trainer_config, train

    _patch(monkeypatch, AMX)
    recipe = load_recipe(repo / "recipes/tiny/sft.yaml", [
        f"output_dir={tmp_path / 'run'}", "data.num_samples=16", "train.max_length=48",
        "save_at_samples=[8]"])
    config = build_trainer_config(recipe, tmp_path / "cfg", 16)
    assert config.bf16 is True and config.optim == "adamw_torch_fused"
    result = train(recipe, progress=False)
    losses = [row["loss"] for row in result.metrics.get("losses", [])] or \
        [result.metrics["train_loss"]]
    assert all(math.isfinite(v) for v in losses)
