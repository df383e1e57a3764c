"""Checks of a training stage's inputs that need the data or the model, made before anything is
written: the data loads, has the method's columns, enough rows and no empty ones; prompts fit
``max_length`` (TRL drops a row whose prompt fills it, and a nested schedule would lose its
volumes); the model resolves and its config loads; LoRA's target modules exist in it.

Every failure is a ``RecipeError`` naming the recipe file and key; what is only worth knowing
(some prompts truncated) comes back as notes.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from resistkit.errors import RecipeError, ResistkitError
from resistkit.models import is_tiny
from resistkit.training.methods import get_method

if TYPE_CHECKING:
    from resistkit.recipes import DataSpec, LoraSpec, ModelSpec


def rekey(err: ResistkitError, source: str, key: str, prefix: str = "") -> RecipeError:
    """``err`` as a RecipeError naming the recipe file and key (keeping what it says of the
    hub), its message after ``prefix``."""
    out = RecipeError(source, key, prefix + str(err))
    out.missing_input = err.missing_input
    return out


def default_max_length(method: str) -> int | None:
    """TRL's default ``max_length`` of a method's config."""
    cls = get_method(method).config_class()
    field = next((f for f in dataclasses.fields(cls) if f.name == "max_length"), None)
    return None if field is None else field.default


def load_spec(spec: DataSpec, key: str, source: str, *, rows: int | None, seed: int,
              fmt: str | None = None) -> Any:
    """``load_data`` of a recipe's data spec; its errors name the recipe key."""
    from resistkit.data import load_data

    try:
        return load_data(spec.dataset, split=spec.split, num_samples=rows,
                         seed=spec.seed if spec.seed is not None else seed, format=fmt,
                         data_files=spec.data_files)
    except ResistkitError as err:
        raise rekey(err, source, key) from None


def check_training_data(spec: DataSpec, key: str, source: str, *, method: str, rows: int | None,
                        seed: int, tokenizer: Any, max_length: int | None, prompt_format: str,
                        template: str | None, save_at: list[int] | None = None,
                        train: dict[str, Any] | None = None) -> list[str]:
    """The rows a training stage will read: columns, no empty ones, prompts that fit, and
    enough training samples for the last of ``save_at``."""
    m = get_method(method)
    ds = load_spec(spec, key, source, rows=rows, seed=seed, fmt=m.data_format)
    if len(ds) == 0:
        raise RecipeError(source, key, f"dataset {spec.dataset!r} has no rows to train on")
    columns = m.columns(ds.column_names)
    if columns is None:
        raise RecipeError(source, key, f"dataset {spec.dataset!r} cannot be trained on with "
                          f"method {method}: it needs {m.needs} (columns: "
                          f"{', '.join(ds.column_names)})")
    if save_at:
        _check_capacity(m, ds.select_columns(columns), save_at[-1], train or {}, source)
    answer = [c for c in columns if c in ("text", "completion", "chosen", "rejected")]
    for column in answer:
        empty = sum(1 for v in ds[column] if not isinstance(v, str) or not v.strip())
        if empty:
            raise RecipeError(source, key, f"{empty} of the {len(ds)} rows of {spec.dataset!r} "
                              f"have an empty {column!r}; remove them (they would train on "
                              "nothing but the end-of-text token)")
    if "prompt" not in columns or max_length is None or tokenizer is None:
        return []
    return _check_prompt_lengths(ds, spec, key, source, tokenizer, max_length, prompt_format,
                                 template, rows)


def _check_capacity(m: Any, ds: Any, needed: int, train: dict[str, Any], source: str) -> None:
    """The run has ``needed`` samples to train on: its rows as the trainer reads them (KTO
    unpairs preference rows into two), times completions per prompt (GRPO), times epochs."""
    rows = len(m.prepare(ds)) if m.prepare is not None else len(ds)
    per_row = m.samples_per_row(train)
    epochs = train.get("num_train_epochs", 1)
    if needed > rows * per_row * epochs:
        each = f" x {per_row} completions" if per_row > 1 else ""
        raise RecipeError(source, "save_at_samples", f"{needed} exceeds the {rows} training "
                          f"rows{each} x {epochs} epoch(s) this run has (data.num_samples)")


def _check_prompt_lengths(ds: Any, spec: DataSpec, key: str, source: str, tokenizer: Any,
                          max_length: int, prompt_format: str, template: str | None,
                          rows: int | None) -> list[str]:
    from resistkit.prompts import render_prompt

    try:
        rendered = [render_prompt(p, prompt_format, tokenizer, template) for p in ds["prompt"]]
    except ValueError as err:
        raise RecipeError(source, "prompt_format", str(err)) from None
    lengths = [len(ids) for ids in tokenizer(rendered)["input_ids"]]
    dropped = sum(1 for n in lengths if n >= max_length)
    if not dropped:
        return []
    fix = "raise train.max_length or shorten the prompts"
    if dropped == len(ds):
        raise RecipeError(source, key, f"every prompt of {spec.dataset!r} fills max_length="
                          f"{max_length} tokens, so TRL would drop every row; {fix}")
    if rows is not None and len(ds) - dropped < rows:
        raise RecipeError(source, key, f"{dropped} of the {len(ds)} rows of {spec.dataset!r} "
                          f"have a prompt of at least max_length={max_length} tokens and would be "
                          f"dropped, leaving {len(ds) - dropped} of the {rows} this stage needs; "
                          f"{fix}")
    return [f"{key}: {dropped} of {len(ds)} prompts fill max_length={max_length} and are dropped"]


def check_model(spec: ModelSpec, key: str, source: str) -> Any:
    """Resolve a model and load its config (None for ``tiny``); errors name the recipe key."""
    if is_tiny(spec.name_or_path):
        return None
    from resistkit.models import load_config, resolve_spec

    try:
        return load_config(resolve_spec(spec), trust_remote_code=spec.trust_remote_code)
    except ResistkitError as err:
        raise rekey(err, source, key) from None


def check_lora(lora: LoraSpec, config: Any, source: str) -> None:
    """Every target module names a module of the model (checked on an empty, meta-device copy)."""
    if config is None or isinstance(lora.target_modules, str):
        return
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in lora.target_modules if t not in names]
    if missing:
        linear = sorted({n.rsplit(".", 1)[-1] for n, mod in model.named_modules()
                         if isinstance(mod, torch.nn.Linear)})
        raise RecipeError(source, "lora.target_modules", f"{missing} not in the model; its "
                          f"linear modules: {', '.join(linear)} (or all-linear)")


def preflight_train(recipe: Any, source: str) -> list[str]:
    """Every input of one training stage, checked before anything is written; returns notes."""
    from resistkit.models import spec_tokenizer

    if recipe.data is None:
        raise RecipeError(source, "data", "the recipe has no `data:` to train on")
    if getattr(recipe, "reward", None) is not None:
        from resistkit.scoring.checks import check_reward_scorer

        check_reward_scorer(recipe.reward, source, "reward")
    config = check_model(recipe.model, "model.name_or_path", source)
    if recipe.lora is not None:
        check_lora(recipe.lora, config, source)
    try:
        tokenizer = spec_tokenizer(recipe.model)
    except ResistkitError as err:
        raise rekey(err, source, "model") from None
    saves = recipe.save_at_samples
    method = get_method(recipe.method)
    rows = recipe.data.num_samples or (method.rows_for(saves[-1], recipe.train) if saves
                                       else None)
    per_row = method.samples_per_row(recipe.train)
    if method.name == "kto" and recipe.train.get("per_device_train_batch_size", 8) < 2:
        raise RecipeError(source, "train.per_device_train_batch_size", "KTO estimates its KL "
                          "term from the other completions of a batch; use at least 2")
    if method.reward:
        from resistkit.training.common import samples_per_step

        per_step = samples_per_step({"per_device_train_batch_size": 8, **recipe.train})
        if per_step % per_row:
            raise RecipeError(source, "train.num_generations", f"{per_row} does not divide the "
                              f"{per_step} completions of an optimizer step (per_device_train_"
                              "batch_size x gradient_accumulation_steps x processes); each "
                              "prompt's group must fit in one step")
    max_length = recipe.train.get("max_length", default_max_length(recipe.method))
    return check_training_data(recipe.data, "data", source, method=recipe.method, rows=rows,
                               seed=recipe.seed, tokenizer=tokenizer, max_length=max_length,
                               prompt_format=recipe.prompt_format,
                               template=recipe.prompt_template, save_at=saves,
                               train=recipe.train)
