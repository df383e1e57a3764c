"""Test settings: offline, CPU, no thread spinning (2 shared cores collapse otherwise)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["CUDA_VISIBLE_DEVICES"] = ""
# Under pytest-xdist the workers share the cores: each torch (and every resistkit subprocess a
# test starts) gets its share, so two workers on two cores do not fight over four threads.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT") and hasattr(os, "sched_getaffinity"):
    _share = len(os.sched_getaffinity(0)) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _share)))

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# The files that take longest go to the workers first (`--dist loadfile` hands out whole files
# in collection order), so that none of them starts last and runs on alone.
LONGEST_FIRST = ("test_reliability.py", "test_pipeline.py", "test_executors.py",
                 "test_distributed.py", "test_safety_rebound.py", "test_layout.py",
                 "test_train.py", "test_methods.py", "test_one_writer.py")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker per core this process may use, at most 4 (each holds torch)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, cores or 1))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order kept


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
