"""`resistkit pretrain` on a micro model: tokenizer, token checkpoints, held-out loss, resume,
bitwise reproducibility, recipe errors and the CLI command."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from resistkit.recipes import RecipeError
from resistkit.training.layout import CHECKPOINT_INFO, tokens_dir
from resistkit.training.pretrain import load_pretrain_recipe, pretrain

LOG_FILE, MANIFEST = "pretrain_log.jsonl", "pretrain_manifest.json"

MICRO: dict[str, Any] = {
    "seed": 7,
    "data": {"dataset": "builtin:pretrain", "num_samples": 120},
    "tokenizer": {"source": "train", "vocab_size": 300},
    "model": {
        "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 64, "max_position_embeddings": 64,
    },
    "max_tokens": 2048,
    "save_at_tokens": [512, 1024, 2048],
    "heldout_max_tokens": 1024,
    "train": {
        "max_length": 32, "per_device_train_batch_size": 4, "logging_steps": 2,
        "save_steps": 4,
    },
}
SAVES = MICRO["save_at_tokens"]


def write_recipe(path: Path, **changes: Any) -> Path:
    raw = json.loads(json.dumps(MICRO))
    raw.update(changes)
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def run_micro(tmp: Path, name: str, callbacks: tuple[Any, ...] = (), **changes: Any) -> Any:
    recipe = load_pretrain_recipe(
        write_recipe(tmp / f"{name}.yaml", **changes), [f"output_dir={tmp / name}"]
    )
    return pretrain(recipe, progress=False, callbacks=callbacks)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def weights(run_dir: Path) -> dict[str, str]:
    files = {"final": run_dir / "final" / "model.safetensors"}
    for n in SAVES:
        files[str(n)] = tokens_dir(run_dir, n) / "model.safetensors"
    return {k: digest(v) for k, v in files.items()}


@pytest.fixture(scope="module")
def micro_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    tmp = tmp_path_factory.mktemp("pretrain")
    return tmp, run_micro(tmp, "a")


def test_micro_run_outputs(micro_run: tuple[Path, Any]) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp, result = micro_run
    run = tmp / "a"
    manifest = json.loads((run / MANIFEST).read_text())
    assert manifest["complete"] is True
    assert manifest["tokenizer"]["source"] == "train" and manifest["tokenizer"]["vocab_size"] == 300
    assert manifest["tokens_per_step"] == 128 and manifest["max_steps"] == 16
    assert manifest["data"]["train_documents"] == 120
    assert manifest["unigram_bits_per_token"] > 0
    assert [c["tokens_requested"] for c in manifest["checkpoints"]] == SAVES
    for row in manifest["checkpoints"]:
        assert row["tokens_seen"] >= row["tokens_requested"]
        assert row["heldout_bits_per_token"] > 0 and row["heldout_tokens"] > 0
        assert row["tokens_per_s"] > 0
    assert manifest["final"]["tokens_seen"] == 2048
    # Every checkpoint is a complete model directory that loads on its own.
    for n in SAVES:
        path = tokens_dir(run, n)
        info = json.loads((path / CHECKPOINT_INFO).read_text())
        assert info["tokens_requested"] == n
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path)
        assert len(tok) == model.config.vocab_size == 300
    assert result.checkpoints == {n: tokens_dir(run, n) for n in SAVES}
    # The tokenizer is byte-level: anything round-trips.
    tok = AutoTokenizer.from_pretrained(run / "final")
    text = "Ça marche — «quoted» 🎬 text"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    rows = [json.loads(line) for line in (run / LOG_FILE).read_text().splitlines()]
    assert {r["event"] for r in rows} == {"log", "checkpoint", "final"}
    assert all(r["tokens_seen"] == r["step"] * 128 for r in rows if r["event"] == "log")


def test_heldout_never_trained_on(micro_run: tuple[Path, Any]) -> None:
    from resistkit.data import load_data

    tmp, _ = micro_run
    recipe = load_pretrain_recipe(tmp / "a.yaml")
    train = set(load_data(recipe.data.dataset, split="train")["text"])
    heldout = set(load_data(recipe.data.dataset, split="heldout")["text"])
    assert heldout and not train & heldout


def test_same_seed_identical_weights_and_resume(micro_run: tuple[Path, Any]) -> None:
    from transformers import TrainerCallback

    tmp, _ = micro_run
    expected = weights(tmp / "a")
    run_micro(tmp, "b")
    assert weights(tmp / "b") == expected

    class Interrupt(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step == 10:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_micro(tmp, "c", callbacks=(Interrupt(),))
    assert not (tmp / "c" / "final").exists()
    assert (tmp / "c" / "checkpoints" / "checkpoint-8").is_dir()
    run_micro(tmp, "c")  # resumes from checkpoint-8
    assert weights(tmp / "c") == expected
    log_steps = [
        json.loads(line)["step"] for line in (tmp / "c" / LOG_FILE).read_text().splitlines()
        if json.loads(line)["event"] == "log"
    ]
    assert log_steps == sorted(set(log_steps))  # no step logged twice after the resume


def test_other_seed_differs(micro_run: tuple[Path, Any]) -> None:
    tmp, _ = micro_run
    run_micro(tmp, "d", seed=8, save_at_tokens=[], max_tokens=512)
    a = digest(tmp / "a" / "tokens" / "tokens-000000000512" / "model.safetensors")
    assert digest(tmp / "d" / "final" / "model.safetensors") != a


def test_finished_run_is_not_recomputed(micro_run: tuple[Path, Any]) -> None:
    tmp, result = micro_run
    mtime = (tmp / "a" / "final" / "model.safetensors").stat().st_mtime_ns
    again = run_micro(tmp, "a")
    assert again.manifest["final"] == result.manifest["final"]
    assert (tmp / "a" / "final" / "model.safetensors").stat().st_mtime_ns == mtime


def test_half_precision_save_loads_as_float32(tmp_path: Path) -> None:
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    result = run_micro(tmp_path, "h", save_dtype="float16", save_at_tokens=[], max_tokens=256)
    path = result.final_dir / "model.safetensors"
    with safe_open(str(path), "pt") as fh:
        assert fh.get_tensor(next(iter(fh.keys()))).dtype == torch.float16
    assert AutoModelForCausalLM.from_pretrained(result.final_dir).dtype == torch.float32
    final = result.manifest["final"]
    assert abs(final["heldout_bits_per_token"] - final["heldout_bits_per_token_fp32"]) < 0.01


@pytest.mark.parametrize(
    ("changes", "key", "needle"),
    [
        ({"train": {"max_steps": 5}}, "train.max_steps", "max_tokens"),
        ({"train": {"packing": False}}, "train.packing", "always on"),
        ({"save_at_tokens": [4096]}, "save_at_tokens", "exceeds max_tokens"),
        ({"save_at_tokens": [1024, 512]}, "save_at_tokens", "increasing"),
        ({"max_tokenz": 5}, "max_tokenz", "did you mean 'max_tokens'"),
        ({"train": {"learnig_rate": 1.0}}, "train.learnig_rate", "learning_rate"),
        ({"train": {"max_length": 128}}, "train.max_length", "max_position_embeddings"),
        ({"data": {"dataset": "builtin:pretrain", "heldout_split": "train"}},
         "data.heldout_split", "must differ"),
    ],
)
def test_recipe_errors(tmp_path: Path, changes: dict[str, Any], key: str, needle: str) -> None:
    path = write_recipe(tmp_path / "bad.yaml", **changes)
    with pytest.raises(RecipeError) as info:
        load_pretrain_recipe(path)
    assert info.value.key == key
    assert needle in str(info.value) and str(path) in str(info.value)


def test_shipped_recipes_validate(repo: Path) -> None:
    recipes = sorted((repo / "recipes" / "pretrain").glob("*.yaml"))
    assert recipes
    for path in recipes:
        load_pretrain_recipe(path)


def test_cli_command(micro_run: tuple[Path, Any]) -> None:
    from typer.testing import CliRunner

    from resistkit.cli import app

    tmp, _ = micro_run
    runner = CliRunner()
    done = runner.invoke(app, ["pretrain", str(tmp / "a.yaml"), "-o", str(tmp / "a")])
    assert done.exit_code == 0, done.output
    assert "held-out" in done.output and "unigram baseline" in done.output
    bad = runner.invoke(app, ["pretrain", str(tmp / "a.yaml"), "--set", "max_tokenz=1"])
    assert bad.exit_code == 2 and "max_tokens" in bad.output
