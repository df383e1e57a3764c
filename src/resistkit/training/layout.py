"""The directory of one training run, as `resistkit train` and `resistkit pretrain` write it.

    RUN/base/                     a built `tiny` model, saved before training (it needs a path)
    RUN/slices/samples-0000128/   complete model after 128 training samples (`save_at_samples`)
    RUN/final/                    complete model at the end
    RUN/checkpoints/checkpoint-N/ Trainer checkpoints (optimizer, RNG) for resumption
    RUN/train_recipe.yaml  RUN/train_env.json  RUN/train_log.jsonl  RUN/train_manifest.json

Pre-training adds ``RUN/tokenizer/`` and ``RUN/tokens/tokens-000001000000/`` (complete models
once that many tokens were seen) and names its files ``pretrain_*``.
"""

from __future__ import annotations

from pathlib import Path

SLICES_DIR = "slices"
CHECKPOINTS_DIR = "checkpoints"
FINAL_DIR = "final"
BASE_DIR = "base"
TOKENIZER_DIR = "tokenizer"
TOKENS_DIR = "tokens"
SLICE_INFO = "slice.json"
CHECKPOINT_INFO = "pretrain_checkpoint.json"


def slice_dir(run_dir: str | Path, samples: int) -> Path:
    return Path(run_dir) / SLICES_DIR / f"samples-{samples:07d}"


def tokens_dir(run_dir: str | Path, tokens: int) -> Path:
    return Path(run_dir) / TOKENS_DIR / f"tokens-{tokens:012d}"


def run_file(run_dir: str | Path, kind: str, what: str) -> Path:
    """``RUN/{kind}_{what}``: e.g. ``train_log.jsonl``, ``pretrain_manifest.json``."""
    return Path(run_dir) / f"{kind}_{what}"


def log_file(run_dir: str | Path, kind: str = "train") -> Path:
    return run_file(run_dir, kind, "log.jsonl")


def manifest_file(run_dir: str | Path, kind: str = "train") -> Path:
    return run_file(run_dir, kind, "manifest.json")
