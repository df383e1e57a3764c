"""The table of training methods: which TRL config and trainer each one uses, and its data.

Adding a method is adding a row: the recipe's ``train:`` fields are then checked against its
config class, the data is loaded in its format, and ``resistkit.training.train`` builds its
trainer. Classes are named by import path and imported on first use, so reading the table
(recipe validation, ``--help``) never imports TRL. CPO (SimPO) and ORPO live in
``trl.experimental`` in TRL 1.16: importing them sets ``TRL_EXPERIMENTAL_SILENCE=1`` (the API
may change between TRL releases; ``resistkit env`` says which methods are experimental).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


def _sft_columns(columns: Sequence[str]) -> list[str] | None:
    if "prompt" in columns and "completion" in columns:
        return ["prompt", "completion"]
    if "text" in columns:
        return ["text"]
    return None  # let TRL say what it needs


def _preference_columns(columns: Sequence[str]) -> list[str]:
    return ["prompt", "chosen", "rejected"]


def _unpaired_columns(columns: Sequence[str]) -> list[str] | None:
    if {"prompt", "chosen", "rejected"} <= set(columns):
        return ["prompt", "chosen", "rejected"]  # unpaired by ``unpair`` below
    if {"prompt", "completion"} <= set(columns):
        return ["prompt", "completion", *(["label"] if "label" in columns else [])]
    return None


def _prompt_columns(columns: Sequence[str]) -> list[str] | None:
    return ["prompt"] if "prompt" in columns else None


def unpair(dataset: Any) -> Any:
    """KTO's data, with desirability always explicit: each preference row becomes its chosen
    completion (desirable) then its rejected one (undesirable), so the two alternate in a
    batch; prompt/completion rows keep a boolean ``label`` (TRL's unpaired format, true =
    desirable) and are otherwise all desirable, as an alignment set's rows are. A ``label``
    that is not boolean (a sentiment class: 0 = negative) is not desirability: read as one,
    it would push the inverse step away from the very data it was given."""
    if {"prompt", "completion"} <= set(dataset.column_names):
        label = dataset.features.get("label")
        if label is not None and getattr(label, "dtype", None) == "bool":
            return dataset
        if label is not None:
            log.warning("KTO: column 'label' holds %s values, not booleans: read as a class "
                        "label, not as desirability; every row is desirable (give a boolean "
                        "'label' for undesirable rows)", getattr(label, "dtype", label))
            dataset = dataset.remove_columns("label")
        return dataset.add_column("label", [True] * len(dataset), feature=_bool_feature())
    from datasets import Dataset

    rows = []
    for r in dataset:
        rows.append({"prompt": r["prompt"], "completion": r["chosen"], "label": True})
        rows.append({"prompt": r["prompt"], "completion": r["rejected"], "label": False})
    return Dataset.from_list(rows)


def _bool_feature() -> Any:
    from datasets import Value

    return Value("bool")


@dataclass(frozen=True)
class Method:
    """One training method resistkit runs through TRL."""

    name: str
    config_path: str  # "module:Class"
    trainer_path: str
    data_format: str | None  # resistkit.data format the training data must have
    columns: Callable[[Sequence[str]], list[str] | None]  # columns handed to the trainer
    description: str
    needs: str  # the columns it trains on, for errors
    defaults: Mapping[str, Any] = field(default_factory=dict)  # a recipe's values win
    # Keyword arguments of the trainer beyond model/args/data/tokenizer/callbacks/peft.
    trainer_kwargs: Mapping[str, Any] = field(default_factory=dict)
    prepare: Callable[[Any], Any] | None = None  # the loaded rows -> what the trainer reads
    # How Setting II makes this method's inverse data from its two sets: "plain" (the inverse
    # set itself), "pairs" (inverse side chosen, forward side rejected), "unpaired" (the
    # same, as alternating desirable / undesirable rows) or "prompts" (sampled and rewarded).
    setting2_data: str = "plain"
    reward: bool = False  # online RL: the recipe's `reward:` scores the samples
    # "module:function" returning more trainer keyword arguments for a recipe (rewards).
    extras_path: str | None = None

    def config_class(self) -> type:
        return _import(self.config_path)

    def trainer_class(self) -> type:
        return _import(self.trainer_path)

    def extras(self, recipe: Any, tokenizer: Any) -> dict[str, Any]:
        return _import(self.extras_path)(recipe, tokenizer) if self.extras_path else {}

    @property
    def experimental(self) -> bool:
        return self.trainer_path.startswith("trl.experimental")

    def samples_per_row(self, train: Mapping[str, Any]) -> int:
        """Training samples one data row gives: online RL samples ``num_generations``
        completions per prompt, and a sample is a completion; otherwise a row is a sample."""
        if not self.reward:
            return 1
        import dataclasses

        default = next(f.default for f in dataclasses.fields(self.config_class())
                       if f.name == "num_generations")
        return int(train.get("num_generations") or default)

    def rows_for(self, samples: int, train: Mapping[str, Any]) -> int:
        """Data rows a run needs to train on ``samples`` samples."""
        per = self.samples_per_row(train)
        return -(-samples // per)


def _import(path: str) -> Any:
    module, _, name = path.partition(":")
    if module.startswith("trl.experimental"):
        os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    return getattr(importlib.import_module(module), name)


_PREFERENCE = "prompt/chosen/rejected rows"

METHODS: dict[str, Method] = {m.name: m for m in (
    Method("sft", "trl:SFTConfig", "trl:SFTTrainer", None, _sft_columns,
           "supervised fine-tuning on text or prompt/completion rows",
           "a 'text' column, or 'prompt' and 'completion' columns"),
    Method("dpo", "trl:DPOConfig", "trl:DPOTrainer", "preference", _preference_columns,
           "direct preference optimisation on prompt/chosen/rejected rows", _PREFERENCE,
           # One reference pass before training instead of one per step: 4x faster on CPU,
           # and the reference needs no saved copy of the policy.
           defaults={"precompute_ref_log_probs": True},
           trainer_kwargs={"ref_model": None}, setting2_data="pairs"),
    Method("kto", "trl:KTOConfig", "trl:KTOTrainer", None, _unpaired_columns,
           "Kahneman-Tversky optimisation on unpaired desirable / undesirable completions",
           "'prompt' and 'completion' (every row desirable, unless a boolean 'label' says "
           "which are), or prompt/chosen/rejected rows (unpaired)",
           trainer_kwargs={"ref_model": None}, prepare=unpair, setting2_data="unpaired"),
    Method("simpo", "trl.experimental.cpo:CPOConfig", "trl.experimental.cpo:CPOTrainer",
           "preference", _preference_columns,
           "SimPO: reference-free, length-normalised preference optimisation (TRL's CPO "
           "trainer, loss_type simpo)", _PREFERENCE,
           # cpo_alpha 0 drops CPO's behaviour-cloning term: SimPO as its paper defines it.
           defaults={"loss_type": "simpo", "cpo_alpha": 0.0}, setting2_data="pairs"),
    Method("orpo", "trl.experimental.orpo:ORPOConfig", "trl.experimental.orpo:ORPOTrainer",
           "preference", _preference_columns,
           "ORPO: odds-ratio preference optimisation with the SFT loss, no reference model",
           _PREFERENCE, setting2_data="pairs"),
    Method("grpo", "trl:GRPOConfig", "trl:GRPOTrainer", None, _prompt_columns,
           "GRPO: online RL on sampled completions, rewarded by a resistkit scorer",
           "a 'prompt' column (the completions are sampled and scored by `reward:`)",
           setting2_data="prompts", reward=True,
           extras_path="resistkit.training.grpo:trainer_extras"),
)}


def method_names() -> list[str]:
    return sorted(METHODS)


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(f"unknown training method {name!r}; methods: "
                       f"{', '.join(method_names())}") from None
