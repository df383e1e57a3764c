"""The numbers of a recipe that its types allow but no run can mean, refused at validation.

TRL accepts a NaN learning rate (and trains to NaN weights), an infinite temperature and a
batch of 10^20 rows (and asks for memory no machine has), so resistkit bounds them here, naming
the recipe key. The bounds are far past any real run; they are listed in docs/reliability.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from resistkit.errors import RecipeError

# `train:` fields whose nonsense values TRL accepts and fails on late (or trains on silently),
# with the largest value a run can mean.
TRAIN_LIMITS: dict[str, float] = {
    "per_device_train_batch_size": 2**16,
    "gradient_accumulation_steps": 2**16,
    "num_train_epochs": 10_000,
    "learning_rate": 10.0,
    "logging_steps": 1e9,
    "save_steps": 1e9,
}
MAX_STEPS_LIMIT = 1e9
MAX_LENGTH_LIMIT = 2**20
# `generate:` / `eval.generation:` fields, likewise.
GENERATION_LIMITS: dict[str, float] = {
    "temperature": 100.0,
    "max_new_tokens": 2**17,
    "num_return_sequences": 4096,
    "batch_size": 2**16,
}


def check_volumes(values: list[int], key: str, source: str, *, allow_empty: bool = False,
                  allow_zero: bool = False) -> None:
    """Sample counts of a grid: positive (or zero where allowed), strictly increasing."""
    if not values and not allow_empty:
        raise RecipeError(source, key, "is empty; give at least one sample count")
    low = 0 if allow_zero else 1
    bad = [v for v in values if isinstance(v, bool) or v < low]
    if bad:
        raise RecipeError(source, key, f"{bad} {'are' if len(bad) > 1 else 'is'} not "
                          f"{'>= 0' if allow_zero else 'positive'} sample counts")
    if sorted(set(values)) != values:
        raise RecipeError(source, key, f"{values} must be strictly increasing")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_train_numbers(train: Mapping[str, Any], source: str, prefix: str = "train") -> None:
    for key, value in train.items():
        if _number(value) and not math.isfinite(value):
            raise RecipeError(source, f"{prefix}.{key}", f"must be a finite number, got {value!r}")
    for key, limit in TRAIN_LIMITS.items():
        value = train.get(key)
        if not _number(value):
            continue
        if value <= 0:
            raise RecipeError(source, f"{prefix}.{key}", f"must be positive, got {value!r}")
        if value > limit:
            raise RecipeError(source, f"{prefix}.{key}", f"{value!r} is past any real run (at "
                              f"most {limit:g}); check the value")
    max_steps = train.get("max_steps")
    if max_steps is not None and max_steps != -1 and (max_steps <= 0
                                                      or max_steps > MAX_STEPS_LIMIT):
        raise RecipeError(source, f"{prefix}.max_steps", f"must be -1 (use epochs) or from 1 "
                          f"to {MAX_STEPS_LIMIT:g}, got {max_steps!r}")
    max_length = train.get("max_length")
    if max_length is not None and not 2 <= max_length <= MAX_LENGTH_LIMIT:
        raise RecipeError(source, f"{prefix}.max_length", f"must be from 2 to "
                          f"{MAX_LENGTH_LIMIT}, got {max_length}")


def check_generation(gen: Any, source: str, key: str) -> None:
    # gen: a recipes.GenerationSpec (typed Any: this module sits below the schema it checks)
    for field, limit in GENERATION_LIMITS.items():
        value = getattr(gen, field)
        if value > limit:
            raise RecipeError(source, f"{key}.{field}", f"{value!r} is past any real run (at "
                              f"most {limit:g}); check the value")
    if not gen.do_sample and gen.num_return_sequences > 1:
        raise RecipeError(source, f"{key}.num_return_sequences", "greedy decoding (do_sample: "
                          "false) gives one answer per prompt; set it to 1 or sample")
