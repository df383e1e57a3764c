"""Test settings: offline, CPU, no thread spinning (2 shared cores collapse otherwise)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["CUDA_VISIBLE_DEVICES"] = ""

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def micro_base(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model briefly trained on built-in pre-training text (a stand-in base θ0)."""
    from resistkit.recipes import load_recipe
    from resistkit.training.train import train

    out = tmp_path_factory.mktemp("base") / "run"
    recipe = load_recipe(repo / "recipes/tiny/sft.yaml", [
        f"output_dir={out}", "data.dataset=builtin:pretrain", "data.num_samples=128",
        "save_at_samples=[64]", "train.max_length=96",
    ])
    return train(recipe, progress=False).final_dir
