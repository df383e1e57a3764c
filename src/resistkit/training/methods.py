"""The table of training methods: which TRL config and trainer each one uses, and its data.

Adding a method is adding a row: the recipe's ``train:`` fields are then checked against its
config class, the data is loaded in its format, and ``resistkit.training.train`` builds its
trainer. Classes are named by import path and imported on first use, so reading the table
(recipe validation, ``--help``) never imports TRL.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


def _sft_columns(columns: Sequence[str]) -> list[str] | None:
    if "prompt" in columns and "completion" in columns:
        return ["prompt", "completion"]
    if "text" in columns:
        return ["text"]
    return None  # let TRL say what it needs


def _preference_columns(columns: Sequence[str]) -> list[str]:
    return ["prompt", "chosen", "rejected"]


@dataclass(frozen=True)
class Method:
    """One training method resistkit runs through TRL."""

    name: str
    config_path: str  # "module:Class"
    trainer_path: str
    data_format: str | None  # resistkit.data format the training data must have
    columns: Callable[[Sequence[str]], list[str] | None]  # columns handed to the trainer
    description: str
    defaults: Mapping[str, Any] = field(default_factory=dict)  # a recipe's values win
    # Keyword arguments of the trainer beyond model/args/data/tokenizer/callbacks/peft.
    trainer_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def config_class(self) -> type:
        return _import(self.config_path)

    def trainer_class(self) -> type:
        return _import(self.trainer_path)


def _import(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("sft", "trl:SFTConfig", "trl:SFTTrainer", None, _sft_columns,
           "supervised fine-tuning on text or prompt/completion rows"),
    Method("dpo", "trl:DPOConfig", "trl:DPOTrainer", "preference", _preference_columns,
           "direct preference optimisation on prompt/chosen/rejected rows",
           # One reference pass before training instead of one per step: 4x faster on CPU,
           # and the reference needs no saved copy of the policy.
           defaults={"precompute_ref_log_probs": True},
           trainer_kwargs={"ref_model": None}),
)}


def method_names() -> list[str]:
    return sorted(METHODS)


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(f"unknown training method {name!r}; methods: "
                       f"{', '.join(method_names())}") from None
