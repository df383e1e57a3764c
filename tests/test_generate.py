"""Batched generation: left padding, length-sorted batches, seeded, resumable, recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from resistkit.generation.common import DecodingParams, length_sorted_batches
from resistkit.generation.hf import generate_texts, generate_to_file
from resistkit.recipes import load_recipe
from resistkit.training.layout import slice_dir
from resistkit.training.train import train


@pytest.fixture(scope="module")
def trained(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "run"
    sets = [f"output_dir={out}", "save_at_samples=[64]"]
    recipe = load_recipe(repo / "recipes/tiny/sft.yaml", sets)
    train(recipe, progress=False)
    return slice_dir(out, 64)


def test_length_sorted_batches_cover_every_index_once() -> None:
    batches = length_sorted_batches([3, 9, 1, 7, 5], 2)
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3, 4]
    assert batches[0] == [1, 3]  # longest first


def test_batched_greedy_equals_one_at_a_time(trained: Path) -> None:
    tok = AutoTokenizer.from_pretrained(trained)
    model = AutoModelForCausalLM.from_pretrained(trained)
    prompts = ["The film", "A dull and lifeless", "Brilliant acting and a story that", "It is"]
    params = DecodingParams(max_new_tokens=8, do_sample=False)
    batched = generate_texts(model, tok, prompts, params, batch_size=4, progress=False)
    single = [generate_texts(model, tok, [p], params, batch_size=1, progress=False)[0]
              for p in prompts]
    assert batched == single
    assert tok.padding_side == "left"


def test_generate_cli_writes_records_with_params(repo: Path, trained: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from resistkit.cli import app

    out = tmp_path / "gen.jsonl"
    result = CliRunner().invoke(app, [
        "generate", str(repo / "recipes/tiny/sft.yaml"), "--model", str(trained),
        "--output", str(out), "--set", "generate.num_return_sequences=2",
        "--set", "generate.prompts.num_samples=6",
    ])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 12
    assert {r["sample"] for r in rows} == {0, 1}
    assert rows[0]["params"]["max_new_tokens"] == 24 and rows[0]["params"]["seed"] == 42
    # The row names the model as asked, where it resolved to, and what its weights are.
    from resistkit.models import model_identity, resolve_model

    assert rows[0]["model"] == {"name": str(trained), "path": str(trained.resolve()),
                                "source": "local",
                                "identity": model_identity(resolve_model(str(trained)))}
    assert all(isinstance(r["response"], str) and r["prompt"] for r in rows)
    again = tmp_path / "gen2.jsonl"
    CliRunner().invoke(app, [
        "generate", str(repo / "recipes/tiny/sft.yaml"), "--model", str(trained),
        "--output", str(again), "--set", "generate.num_return_sequences=2",
        "--set", "generate.prompts.num_samples=6",
    ])
    assert again.read_text() == out.read_text()  # seeded: same responses


def test_resume_from_partial_file_gives_same_output(trained: Path, tmp_path: Path) -> None:
    prompts = [f"Review number {i} says the movie" for i in range(10)]
    params = DecodingParams(max_new_tokens=6, seed=3)
    model = AutoModelForCausalLM.from_pretrained(trained)
    tok = AutoTokenizer.from_pretrained(trained)
    full = generate_to_file(model, tok, prompts, tmp_path / "full.jsonl", params,
                            record_model=str(trained), batch_size=4, progress=False)
    by_prompt = {}
    for line in full.read_text().splitlines():
        row = json.loads(line)
        by_prompt[row["prompt"]] = row["response"]
    # A run killed after its first batch leaves that batch and a torn line in `.partial`.
    lengths = [len(tok(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    first = length_sorted_batches(lengths, 4)[0]
    target = tmp_path / "resumed.jsonl"
    partial = target.with_name(target.name + ".partial")
    done = {str(i): [by_prompt[prompts[i]]] for i in first}
    partial.write_text(json.dumps({"batch": 0, "responses": done}) + '\n{"batch": 1, ')
    resumed = generate_to_file(model, tok, prompts, target, params, record_model=str(trained),
                               batch_size=4, progress=False)
    assert resumed.read_text() == full.read_text()
    assert not partial.exists()
