"""The pre-training recipe (`resistkit pretrain RECIPE`) and the trainer config it gives.

``train:`` holds TRL ``SFTConfig`` fields by their own names, as in every other recipe; the
keys resistkit derives from the token budget are reserved (``PRETRAIN_RESERVED_KEYS``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from resistkit.errors import RecipeError
from resistkit.recipes import (
    RESERVED_TRAIN_KEYS,
    Strict,
    TinyModelConfig,
    load_recipe,
    validate_trainer_fields,
)
from resistkit.training import common
from resistkit.training.layout import CHECKPOINTS_DIR

# Keys resistkit pretrain sets itself from the recipe; a recipe that set them in `train:`
# would silently change the token accounting.
PRETRAIN_RESERVED_KEYS = {
    **RESERVED_TRAIN_KEYS,
    "max_steps": "derived from `max_tokens`",
    "num_train_epochs": "derived from `max_tokens` (the data repeats as needed)",
    "packing": "always on for pre-training",
    "packing_strategy": "'wrapped' so every step sees batch x max_length tokens",
    "dataset_text_field": "set from `data.text_column`",
    "include_num_input_tokens_seen": "always 'non_padding': tokens seen drive `save_at_tokens`",
}


class PretrainDataSpec(Strict):
    dataset: str = Field("builtin:pretrain", description="Any text data set spec (load_data).")
    split: str = Field("train", description="Split trained on.")
    heldout_split: str | None = Field(
        "heldout", description="Split for held-out loss; never trained on. null: no evaluation."
    )
    text_column: str = Field("text", description="Column holding the documents.")
    num_samples: int | None = Field(None, ge=1, description="Train on the first n documents.")
    data_files: str | None = Field(None, description="Local files for an hf: adapter.")


class TokenizerSpec(Strict):
    source: str = Field(
        "train",
        description="'train': byte-level BPE on the training split; 'default': the shipped "
        "tokenizer; otherwise a tokenizer directory.",
    )
    vocab_size: int = Field(4096, ge=263, description="Vocabulary size when source='train'.")
    max_documents: int | None = Field(
        None, ge=1, description="Train the tokenizer on the first n training documents only."
    )


class PretrainRecipe(Strict):
    """A from-scratch pre-training run. `train:` holds TRL SFTConfig fields by their names."""

    seed: int = Field(42, description="Seed for data order, tokenizer data and initialisation.")
    output_dir: str = Field("runs/pretrain", description="Run directory.")
    data: PretrainDataSpec = Field(default_factory=PretrainDataSpec)
    tokenizer: TokenizerSpec = Field(default_factory=TokenizerSpec)
    model: TinyModelConfig = Field(default_factory=TinyModelConfig)
    max_tokens: int = Field(ge=1, description="Token budget; sets max_steps and the LR schedule.")
    save_at_tokens: list[int] = Field(
        default_factory=list, description="Save complete models once this many tokens are seen."
    )
    heldout_max_tokens: int | None = Field(
        65536, ge=2, description="Evaluate at most this many held-out tokens (null: all)."
    )
    eval_batch_size: int = Field(16, ge=1, description="Blocks per held-out forward pass.")
    save_dtype: Literal["float32", "float16", "bfloat16"] = Field(
        "float32", description="Dtype of the saved complete models (Trainer checkpoints: fp32)."
    )
    train: dict[str, Any] = Field(default_factory=dict, description="trl.SFTConfig fields.")


def validate_pretrain_recipe(recipe: PretrainRecipe, source: str) -> PretrainRecipe:
    """Checks that need more than one field (pydantic already checked names and types)."""
    recipe.train = validate_trainer_fields(recipe.train, "sft", source, PRETRAIN_RESERVED_KEYS)
    saves = recipe.save_at_tokens
    if sorted(set(saves)) != saves or any(n <= 0 for n in saves):
        raise RecipeError(source, "save_at_tokens", "must be positive and strictly increasing")
    if saves and saves[-1] > recipe.max_tokens:
        raise RecipeError(
            source, "save_at_tokens", f"{saves[-1]} exceeds max_tokens={recipe.max_tokens}"
        )
    if recipe.data.heldout_split is not None and recipe.data.heldout_split == recipe.data.split:
        raise RecipeError(source, "data.heldout_split", "must differ from data.split")
    max_length = recipe.train.get("max_length", PRETRAIN_DEFAULTS["max_length"])
    if max_length is None or max_length > recipe.model.max_position_embeddings:
        raise RecipeError(
            source, "train.max_length",
            f"must be set and <= model.max_position_embeddings "
            f"({recipe.model.max_position_embeddings}), got {max_length}",
        )
    return recipe


def load_pretrain_recipe(path: str | Path, overrides: Sequence[str] = ()) -> PretrainRecipe:
    recipe = load_recipe(path, overrides, model=PretrainRecipe)
    return validate_pretrain_recipe(recipe, str(path))


# --------------------------------------------------------------------------------------------
# Trainer configuration

# Pre-training defaults for tiny models (a recipe's `train:` wins). Learning rates that suit
# fine-tuning (TRL's 2e-5) leave a from-scratch model at the unigram level.
PRETRAIN_DEFAULTS: dict[str, Any] = {
    "per_device_train_batch_size": 16,
    "max_length": 128,
    "learning_rate": 3e-3,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0.05,  # a float < 1 is a fraction of max_steps
    "weight_decay": 0.1,
    "adam_beta2": 0.95,
    "max_grad_norm": 1.0,
    "logging_steps": 10,
    "shuffle_dataset": True,  # shuffle documents before packing: seeded, mixes sources
    "dataloader_drop_last": False,
}


def build_trainer_config(recipe: PretrainRecipe, run_dir: Path) -> Any:
    from trl import SFTConfig

    # fp32 always: pre-training builds the shipped bases, which must not depend on the CPU.
    values = common.device_defaults("float32")
    values.update(PRETRAIN_DEFAULTS)
    values.update(seed=recipe.seed, data_seed=recipe.seed)
    values.update(recipe.train)
    per_step = tokens_per_step_of(values)
    max_steps = max(1, math.ceil(recipe.max_tokens / per_step))
    if "save_steps" not in recipe.train:
        values["save_steps"] = common.checkpoint_spacing(max_steps)
    values.update(
        output_dir=str(run_dir / CHECKPOINTS_DIR),
        max_steps=max_steps,
        packing=True,
        packing_strategy="wrapped",
        dataset_text_field=recipe.data.text_column,
        include_num_input_tokens_seen="non_padding",
    )
    return SFTConfig(**values)


def tokens_per_step_of(values: dict[str, Any], world: int | None = None) -> int:
    """Tokens per optimizer step with wrapped packing: every row is `max_length` long."""
    return common.samples_per_step(values, world) * int(values["max_length"])
