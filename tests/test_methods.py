"""KTO, SimPO, ORPO and GRPO through TRL's own trainers: each trains the tiny model, logs its
loss (or reward), changes the parameters and saves slices that load and generate; each is
Setting II's inverse step, nested where the schedule allows."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from resistkit.experiment import load_experiment, run_experiment
from resistkit.recipes import load_recipe
from resistkit.training.layout import BASE_DIR, slice_dir
from resistkit.training.methods import METHODS, unpair
from resistkit.training.train import train

SMALL = {  # a few steps each: (overrides, the slices they save)
    "kto": (["data.num_samples=16", "save_at_samples=[16, 32]"], [16, 32]),
    "simpo": (["data.num_samples=16", "save_at_samples=[8, 16]"], [8, 16]),
    "orpo": (["data.num_samples=16", "save_at_samples=[8, 16]"], [8, 16]),
    "grpo": (["data.num_samples=4", "save_at_samples=[8, 16]"], [8, 16]),
}


def read_log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("method", sorted(SMALL))
def test_method_trains_logs_and_saves_slices_that_generate(repo: Path, tmp_path: Path,
                                                           method: str) -> None:
    sets, slices = SMALL[method]
    recipe = load_recipe(repo / f"recipes/tiny/{method}.yaml",
                         [f"output_dir={tmp_path / 'run'}", *sets])
    assert recipe.method == method
    result = train(recipe, progress=False)
    log = [r for r in read_log(result.run_dir) if "loss" in r]  # the steps, not the summary
    assert len(log) == slices[-1] // 8 and all(r["samples"] == r["step"] * 8 for r in log)
    key = "reward" if method == "grpo" else "loss"
    assert all(isinstance(r[key], float) for r in log)
    if method == "grpo":  # the reward is the lexicon's score, negated (maximize: false)
        assert all(r["reward"] < 0.2 for r in log)
        assert all(r["rollout_seconds"] > 0 for r in log)  # rollouts by resistkit's sampler
    assert sorted(result.slices) == slices
    base = AutoModelForCausalLM.from_pretrained(result.run_dir / BASE_DIR).state_dict()
    tok = AutoTokenizer.from_pretrained(result.run_dir / BASE_DIR)
    for n in slices:
        model = AutoModelForCausalLM.from_pretrained(slice_dir(result.run_dir, n))
        state = model.state_dict()
        assert any(not torch.equal(base[k], state[k]) for k in base), f"slice {n} is the base"
        ids = tok("The film", return_tensors="pt")
        out = model.generate(**ids, max_new_tokens=5, do_sample=False,
                             pad_token_id=tok.pad_token_id)
        assert out.shape[1] > ids["input_ids"].shape[1]
    assert result.metrics["train_samples"] == slices[-1]


def test_kto_unpairs_preference_rows_alternately() -> None:
    from datasets import Dataset

    rows = unpair(Dataset.from_list([{"prompt": "p1", "chosen": "a", "rejected": "b"},
                                     {"prompt": "p2", "chosen": "c", "rejected": "d"}]))
    assert rows.to_list() == [
        {"prompt": "p1", "completion": "a", "label": True},
        {"prompt": "p1", "completion": "b", "label": False},
        {"prompt": "p2", "completion": "c", "label": True},
        {"prompt": "p2", "completion": "d", "label": False},
    ]


def test_experimental_methods_say_so() -> None:
    assert {m.name for m in METHODS.values() if m.experimental} == {"simpo", "orpo"}
    assert METHODS["simpo"].defaults["loss_type"] == "simpo"


def results(run: dict) -> list[tuple[str, str, str]]:
    with open(Path(run["run_dir"]) / "report/results.csv", encoding="utf-8") as fh:
        return [(r["q1"], r["q2"], r["mean"]) for r in csv.DictReader(fh)]


@pytest.mark.parametrize("method", ["kto", "grpo"])
def test_inverse_method_nested_equals_separate_runs(repo: Path, micro_base: Path,
                                                    tmp_path: Path, method: str) -> None:
    """The nested schedule holds for the ablations too: slices of one inverse run score
    exactly like separate runs (KTO reads its alternating rows in order; GRPO's prompts keep
    their order and every rollout round has its own seed)."""
    sets = [f"model.name_or_path={micro_base}", "setting2.q1=[16]", "setting2.q2=[0,16,32]",
            f"setting2.inverse_method={method}", "eval.kl=null"]
    runs = {}
    for nested in ("always", "never"):
        exp = load_experiment(str(repo / "recipes/tiny/setting2.yaml"),
                              [f"output_dir={tmp_path / nested}", *sets,
                               f"setting2.nested={nested}"])
        runs[nested] = run_experiment(exp)
    assert results(runs["always"]) == results(runs["never"])
    recipe = (Path(runs["always"]["run_dir"]) / "seed-42/train/inverse-q1-16/train_recipe.yaml")
    text = recipe.read_text()
    assert f"method: {method}" in text
    if method == "grpo":  # rewarded for the inverse (negative) direction, sampled like eval
        assert "maximize: false" in text and "max_completion_length: 12" in text
        assert "builtin:reviews/negative" in text
    else:
        assert "inverse-unpaired" in text
        rows = (Path(runs["always"]["run_dir"]) / "seed-42/data/inverse-unpaired/pairs.jsonl")
        labels = [json.loads(x)["label"] for x in rows.read_text().splitlines()]
        assert labels == [True, False] * 16
