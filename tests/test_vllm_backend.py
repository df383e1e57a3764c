"""`generate.backend: vllm`: the DecodingParams → SamplingParams mapping, token-id prompts, the
JSONL rows, and the routing from recipes and pipeline stages — all without vLLM, whose
engine only stands in as a fake here. The one real-vLLM test needs the `vllm` extra and a GPU.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from resistkit.generation.common import DecodingParams
from resistkit.generation.hf import generate_to_file
from resistkit.generation.vllm import (
    build_requests,
    generate_to_file_vllm,
    responses_from_outputs,
    sampling_kwargs,
)
from resistkit.recipes import GenerationSpec, ModelSpec, RecipeError, load_recipe


def fake_outputs(requests: list[Any]) -> list[SimpleNamespace]:
    """What vLLM's LLM.generate returns, shaped as RequestOutput(outputs=[CompletionOutput])."""
    return [
        SimpleNamespace(outputs=[SimpleNamespace(text=f" r{i}.{s}")
                                 for s in range(r.sampling["n"])])
        for i, r in enumerate(requests)
    ]


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def run(model_path: str, requests: list[Any], **kw: Any) -> list[SimpleNamespace]:
        calls.append({"model": model_path, "requests": requests, **kw})
        return fake_outputs(requests)

    monkeypatch.setattr("resistkit.generation.vllm.run_vllm", run)
    return calls


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved (random) tiny model with the shipped tokenizer: enough for the HF side."""
    from resistkit.models import spec_model, spec_tokenizer

    spec = ModelSpec(name_or_path="tiny", tiny={"hidden_size": 32, "num_hidden_layers": 1,
                                                "num_attention_heads": 2,
                                                "intermediate_size": 64})
    tok = spec_tokenizer(spec)
    out = tmp_path_factory.mktemp("tiny") / "model"
    spec_model(spec, tok).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_sampling_kwargs_map_every_decoding_field() -> None:
    params = DecodingParams(max_new_tokens=20, temperature=0.7, top_p=0.9, top_k=40,
                            num_return_sequences=4, seed=7)
    assert sampling_kwargs(params, 3) == {
        "n": 4, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "max_tokens": 20, "seed": 10,
        "skip_special_tokens": True,
    }
    # resistkit's top_k 0 = "off" is vLLM's -1.
    assert sampling_kwargs(DecodingParams(top_k=0))["top_k"] == -1
    greedy = sampling_kwargs(DecodingParams(do_sample=False, temperature=0.3, top_k=5))
    assert (greedy["temperature"], greedy["top_p"], greedy["top_k"]) == (0.0, 1.0, -1)
    with pytest.raises(ValueError, match="num_return_sequences"):
        sampling_kwargs(DecodingParams(do_sample=False, num_return_sequences=2))


def test_prompts_are_token_ids_without_special_tokens(tiny_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    texts = ["The movie was", "A quiet, lovely film"]
    requests = build_requests(texts, DecodingParams(seed=5), tok)
    expected = tok(texts, add_special_tokens=False)["input_ids"]
    assert [r.prompt["prompt_token_ids"] for r in requests] == expected
    assert [r.sampling["seed"] for r in requests] == [5, 6]  # per prompt, batch-independent
    assert build_requests(texts, DecodingParams())[0].prompt == {"prompt": "The movie was"}


def test_responses_keep_request_order_and_check_counts() -> None:
    requests = build_requests(["a", "b"], DecodingParams(num_return_sequences=2))
    assert responses_from_outputs(fake_outputs(requests), 2) == [
        [" r0.0", " r0.1"], [" r1.0", " r1.1"]]
    with pytest.raises(RuntimeError, match="expected 3"):
        responses_from_outputs(fake_outputs(requests), 3)


def test_vllm_rows_have_the_hf_rows_format(tiny_dir: Path, tmp_path: Path,
                                           fake_vllm: list) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    prompts = ["The movie was", "I expected"]
    params = DecodingParams(max_new_tokens=3, num_return_sequences=2, seed=1)
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    hf = generate_to_file(AutoModelForCausalLM.from_pretrained(tiny_dir), tok, prompts,
                          tmp_path / "hf.jsonl", params, record_model=str(tiny_dir),
                          progress=False, extra={"dataset": "x"})
    vl = generate_to_file_vllm(str(tiny_dir), prompts, tmp_path / "vllm.jsonl", params,
                               tokenizer=tok, tensor_parallel_size=2, extra={"dataset": "x"})
    hf_rows = [json.loads(line) for line in hf.read_text().splitlines()]
    vl_rows = [json.loads(line) for line in vl.read_text().splitlines()]
    assert [r.keys() for r in vl_rows] == [r.keys() for r in hf_rows]
    for a, b in zip(hf_rows, vl_rows, strict=True):
        for key in ("id", "prompt_id", "sample", "prompt", "model", "dataset"):
            assert a[key] == b[key]
        assert a["params"].items() - {("batch_size", 32)} <= b["params"].items()
        assert b["params"]["backend"] == "vllm" and b["params"]["tensor_parallel_size"] == 2
        assert "vllm" in b["versions"]
    assert [r["response"] for r in vl_rows] == [" r0.0", " r0.1", " r1.0", " r1.1"]
    assert fake_vllm[0]["tensor_parallel_size"] == 2 and fake_vllm[0]["seed"] == 1


def test_generation_spec_backend_fields(repo: Path) -> None:
    spec = GenerationSpec(backend="vllm", tensor_parallel_size=4)
    assert (spec.backend, spec.tensor_parallel_size) == ("vllm", 4)
    assert GenerationSpec().backend == "hf"
    with pytest.raises(RecipeError, match="generate.backend"):
        load_recipe(repo / "recipes/tiny/sft.yaml", ["generate.backend=tgi"])
    with pytest.raises(RecipeError, match="tensor_parallel_size"):
        load_recipe(repo / "recipes/tiny/sft.yaml", ["generate.tensor_parallel_size=0"])


def _no_hf_model(*args: Any, **kw: Any) -> None:
    raise AssertionError("the vllm backend must not load a transformers model")


def test_recipe_generation_routes_to_vllm(repo: Path, tiny_dir: Path, tmp_path: Path,
                                          fake_vllm: list, monkeypatch) -> None:
    from resistkit.generation import generate_from_recipe

    monkeypatch.setattr("resistkit.models.spec_model", _no_hf_model)
    recipe = load_recipe(repo / "recipes/tiny/sft.yaml", [
        f"output_dir={tmp_path}", "generate.backend=vllm", "generate.tensor_parallel_size=2",
        "generate.prompts.num_samples=4", "generate.num_return_sequences=2"])
    out = generate_from_recipe(recipe, model=str(tiny_dir))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 8 and rows[0]["params"]["backend"] == "vllm"
    assert fake_vllm[0]["model"] == str(tiny_dir)
    assert fake_vllm[0]["tensor_parallel_size"] == 2


def test_pipeline_generate_stage_routes_to_vllm(repo: Path, tiny_dir: Path, tmp_path: Path,
                                                fake_vllm: list, monkeypatch) -> None:
    from resistkit.pipeline import load_experiment
    from resistkit.pipeline.steps import generate_stage

    monkeypatch.setattr("resistkit.models.spec_model", _no_hf_model)
    exp = load_experiment(str(repo / "recipes/tiny/setting2.yaml"), [
        f"output_dir={tmp_path}", f"model.name_or_path={tiny_dir}",
        "eval.generation.backend=vllm", "eval.prompts.num_samples=3"])
    stage = tmp_path / "points/base/generate"
    stage.mkdir(parents=True)
    outputs = generate_stage(tmp_path, exp, model_path=None, seed=42)(stage)
    rows = [json.loads(line) for line in (tmp_path / outputs["generations"]).open()]
    assert len(rows) == 3 and rows[0]["model"]["name"] == str(tiny_dir)
    assert fake_vllm[0]["requests"][0].sampling["max_tokens"] == 12  # the recipe's value


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                    reason="vllm is not installed (the optional `vllm` extra; Linux + GPU)")
def test_real_vllm_generates(tiny_dir: Path, tmp_path: Path) -> None:  # pragma: no cover
    import torch

    if not torch.cuda.is_available():
        pytest.skip("vLLM needs a GPU")
    out = generate_to_file_vllm(str(tiny_dir), ["The movie was"], tmp_path / "g.jsonl",
                                DecodingParams(max_new_tokens=4, num_return_sequences=2))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and all(isinstance(r["response"], str) for r in rows)
