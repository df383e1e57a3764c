"""Recipe schema: YAML files that describe one stage (train / generate) of an experiment.

The ``train:`` section is not a schema of ours: its keys are TRL's own ``SFTConfig`` /
``DPOConfig`` field names, checked against those dataclasses, so a TRL user reads a recipe
without a manual. Everything else is a small pydantic model with ``extra="forbid"``.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from resistkit.errors import RecipeError
from resistkit.models.resolve import TINY, is_tiny
from resistkit.recipe_checks import check_generation, check_train_numbers, check_volumes
from resistkit.training.methods import METHODS, get_method, method_names

__all__ = ["RecipeError", "Recipe", "check_generation", "check_train_numbers", "check_volumes",
           "load_recipe", "validate_recipe"]


class Strict(BaseModel):
    """Every recipe section: unknown keys are errors (with the nearest valid key)."""

    # No recipe number is ever meant to be NaN or infinite (YAML's .nan, .inf, 1e400).
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)
    # The file the recipe came from, for errors found after parsing ("recipe" if none).
    _origin: str = PrivateAttr("recipe")

    @property
    def origin(self) -> str:
        return self._origin


class TinyModelConfig(Strict):
    """A Llama-style model built from scratch with the shipped byte-level BPE tokenizer."""

    hidden_size: int = Field(64, ge=2, description="Width of the residual stream.")
    num_hidden_layers: int = Field(2, ge=1, description="Number of transformer blocks.")
    num_attention_heads: int = Field(4, ge=1, description="Attention heads per block.")
    num_key_value_heads: int | None = Field(None, ge=1,
                                            description="KV heads (GQA); default = heads.")
    intermediate_size: int = Field(192, ge=1, description="Width of the MLP.")
    max_position_embeddings: int = Field(512, ge=2,
                                         description="Longest sequence the model accepts.")
    tie_word_embeddings: bool = Field(True, description="Share input and output embeddings.")

    # Checked here, not when the model is built: transformers builds a Llama whose heads do not
    # split its width (or whose head width is odd, which rotary embeddings cannot rotate) and
    # only fails at its first forward pass, after the data has loaded.
    @field_validator("num_attention_heads")
    @classmethod
    def _heads_split_width(cls, heads: int, info: ValidationInfo) -> int:
        width = info.data.get("hidden_size")
        if width is not None and (width % heads or (width // heads) % 2):
            raise ValueError(f"{heads} heads must split hidden_size {width} into equal, even "
                             "head widths (e.g. 4 heads of 16 for 64)")
        return heads

    @field_validator("num_key_value_heads")
    @classmethod
    def _kv_heads_group(cls, kv: int | None, info: ValidationInfo) -> int | None:
        heads = info.data.get("num_attention_heads")
        if kv is not None and heads is not None and heads % kv:
            raise ValueError(f"{kv} must divide num_attention_heads {heads} (grouped attention)")
        return kv


class ModelSpec(Strict):
    name_or_path: str = Field(
        TINY,
        description="Hub id, local directory, or 'tiny' to build a Llama from `tiny:`.",
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit).")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="'auto' = float32 on CPU, bfloat16 on a GPU that supports it."
    )
    trust_remote_code: bool = Field(False, description="Run modelling code from the hub repo.")
    gguf_file: str | None = Field(None, description="GGUF file inside `name_or_path` to load.")
    tokenizer: str | None = Field(None, description="Tokenizer id/path; default: the model's.")
    tiny: TinyModelConfig | None = Field(None, description="Architecture when name is 'tiny'.")
    init_seed: int | None = Field(None, description="Seed for a tiny model's initial weights.")


PromptFormat = Literal["continuation", "chat", "template"]


class DataSpec(Strict):
    dataset: str = Field(description="builtin:NAME, hf:ID[#selector], json:PATH or csv:PATH.")
    split: str = Field("train", description="Split to read (builtin data: train / heldout).")
    num_samples: int | None = Field(None, ge=1, description="First n of a seeded permutation.")
    seed: int | None = Field(None, description="Sampling seed; default: the recipe's seed.")
    data_files: str | None = Field(None, description="Local files for an hf: adapter.")


class LoraSpec(Strict):
    r: int = Field(8, ge=1, description="Rank of the adapters.")
    lora_alpha: int = Field(16, ge=1, description="Scale of the adapters (alpha / r).")
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | str = Field(
        "all-linear", description="Module names (suffixes) to adapt, or all-linear.")


class GenerationSpec(Strict):
    prompts: DataSpec | None = Field(None, description="Prompt set (its `prompt` column).")
    max_new_tokens: int = Field(32, ge=1)
    do_sample: bool = True
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0, description="0 disables top-k filtering.")
    num_return_sequences: int = Field(1, ge=1, description="Samples per prompt.")
    batch_size: int = Field(32, ge=1)
    seed: int | None = Field(None, description="Decoding seed; default: the recipe's seed.")
    output: str | None = Field(None, description="Output JSONL (default in output_dir).")
    backend: Literal["hf", "vllm"] = Field(
        "hf", description="hf: transformers' generate; vllm: vLLM (`resistkit[vllm]`, GPUs)."
    )
    tensor_parallel_size: int = Field(
        1, ge=1, description="GPUs one vLLM model is split over (backend vllm only)."
    )


class RewardSpec(Strict):
    """The reward of online RL (method grpo): a resistkit scorer's column on each sample."""

    scorer: str = Field("sentiment-lexicon", description="A scorer of `resistkit score`.")
    column: str | None = Field(None, description="Its column to reward; default: its first.")
    maximize: bool = Field(True, description="false rewards the opposite (-value), e.g. the "
                           "inverse direction of a sentiment scorer. GRPO normalises rewards "
                           "within each group, so -p and 1-p train alike.")
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="Scorer options (e.g. classifier=NAME).")


class Recipe(Strict):
    """One stage recipe. `resistkit train` reads model/data/train; `generate` reads generate."""

    seed: int = Field(42, description="Seed for data sampling, initialisation and training.")
    output_dir: str = Field("runs/resistkit", description="Run directory.")
    method: str = Field("sft", description="Training method: " + ", ".join(METHODS) + ".")
    model: ModelSpec = Field(default_factory=ModelSpec)
    prompt_format: PromptFormat = Field(
        "continuation",
        description="continuation: raw text; chat: the tokenizer's chat template; "
        "template: `prompt_template` with {prompt}.",
    )
    prompt_template: str | None = Field(None, description="Used when prompt_format=template.")
    data: DataSpec | None = Field(None, description="Training data.")
    save_at_samples: list[int] = Field(
        default_factory=list, description="Save complete slices after this many training samples."
    )
    lora: LoraSpec | None = Field(None, description="Train LoRA adapters through PEFT.")
    train: dict[str, Any] = Field(
        default_factory=dict, description="Fields of TRL's SFTConfig / DPOConfig, by their names."
    )
    generate: GenerationSpec | None = None
    reward: RewardSpec | None = Field(None, description="Reward of method grpo.")


# --------------------------------------------------------------------------------------------
# Loading


def load_recipe(
    path: str | Path, overrides: Sequence[str] = (), *, model: type[BaseModel] = Recipe
) -> Any:
    """Read a YAML recipe, apply ``key.path=value`` overrides and validate it."""
    source = str(path)
    if Path(path).is_dir():
        raise RecipeError(source, "", "is a directory; give a recipe YAML file")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(source, "", "file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise RecipeError(source, "", f"cannot be read as UTF-8 text ({err})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise RecipeError(source, "", f"not valid YAML: {_yaml_problem(err)}") from None
    if raw is None:
        raise RecipeError(source, "", "the file is empty; a recipe is a YAML mapping of keys "
                          "(see recipes/ for examples)")
    if not isinstance(raw, dict):
        raise RecipeError(source, "", "the top level must be a mapping of keys")
    for item in overrides:
        apply_override(raw, item, source)
    return validate_recipe(raw, source, model=model)


def apply_override(raw: dict[str, Any], item: str, source: str = "--set") -> None:
    """``train.learning_rate=2e-5`` → raw["train"]["learning_rate"] = 2e-5 (YAML-typed)."""
    key, equals, value = item.partition("=")
    parts = key.strip().split(".")
    if not equals or not all(parts):
        raise RecipeError("--set", repr(item), "expected KEY.PATH=VALUE, e.g. --set seed=7 or "
                          "--set train.learning_rate=2e-5")
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise RecipeError(source, key, f"'{part}' is not a mapping, cannot set a sub-key")
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(value) if value != "" else None
    except yaml.YAMLError as err:
        raise RecipeError("--set", key, f"value {value!r} is not valid YAML "
                          f"({_yaml_problem(err)}); quote it or close its brackets") from None


def _yaml_problem(err: yaml.YAMLError) -> str:
    """PyYAML's multi-line message, on one line."""
    return " ".join(str(err).split())


def validate_recipe(raw: dict[str, Any], source: str, *, model: type[BaseModel] = Recipe) -> Any:
    _check_unknown_keys(raw, model, source, prefix="")
    try:
        recipe = model.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        # A validator's own message, without pydantic's "Value error, " prefix.
        message = str(first["ctx"]["error"]) if first["type"] == "value_error" else first["msg"]
        raise RecipeError(source, key, message) from None
    recipe._origin = source
    if isinstance(recipe, Recipe):
        if recipe.method not in METHODS:
            raise RecipeError(source, "method", f"unknown method {recipe.method!r}; methods: "
                              f"{', '.join(method_names())}", nearest(recipe.method, METHODS))
        recipe.train = validate_trainer_fields(recipe.train, recipe.method, source)
        if is_tiny(recipe.model.name_or_path) and recipe.model.tiny is None:
            recipe.model.tiny = TinyModelConfig()
        if recipe.prompt_format == "template" and not recipe.prompt_template:
            raise RecipeError(source, "prompt_template", "required when prompt_format=template")
        check_volumes(recipe.save_at_samples, "save_at_samples", source, allow_empty=True)
        check_train_numbers(recipe.train, source)
        if recipe.generate is not None:
            check_generation(recipe.generate, source, "generate")
        check_reward(recipe, source)
    return recipe


def check_reward(recipe: Recipe, source: str) -> None:
    """Only online RL has a reward, and it needs one."""
    check_method_reward(recipe.method, recipe.reward, source, "reward")


def check_method_reward(method_name: str, reward: RewardSpec | None, source: str,
                        key: str) -> None:
    """A reward is given exactly when the method needs one. Its scorer, column and options are
    checked where the scorer registry is known (``scoring.checks.check_reward_scorer``, from
    the experiment schema and the training preflight): this schema module sits below it."""
    method = get_method(method_name)
    if reward is None:
        if method.reward:
            raise RecipeError(source, key, f"required by method {method_name!r}: the scorer "
                              "whose column rewards each sampled completion, e.g. "
                              "{scorer: sentiment-lexicon, maximize: false}")
        return
    if not method.reward:
        raise RecipeError(source, key, f"method {method_name!r} learns from its data, not "
                          "from a reward; remove it or use method grpo")


def nearest(key: str, options: typing.Iterable[str]) -> str | None:
    found = difflib.get_close_matches(key, list(options), n=1, cutoff=0.6)
    return found[0] if found else None


def _model_type(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as ``DataSpec | None`` (not the value
    type of a mapping: see ``_mapped_type``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) is dict:
        return None
    for arg in typing.get_args(annotation):
        found = _model_type(arg)
        if found is not None:
            return found
    return None


def _check_unknown_keys(
    raw: Mapping[str, Any], model: type[BaseModel], source: str, prefix: str
) -> None:
    # pydantic reports extra keys too, but cannot suggest the key that was meant.
    fields = model.model_fields
    for key, value in raw.items():
        path = f"{prefix}{key}"
        if key not in fields:
            raise RecipeError(source, path, "unknown key", nearest(str(key), fields))
        annotation = fields[key].annotation
        sub = _model_type(annotation)
        if sub is not None and isinstance(value, Mapping):
            _check_unknown_keys(value, sub, source, prefix=f"{path}.")
        elif typing.get_origin(annotation) is dict and isinstance(value, Mapping):
            key_type, value_type = typing.get_args(annotation)
            allowed = typing.get_args(key_type) if typing.get_origin(key_type) is \
                typing.Literal else None
            for name, item in value.items():
                if allowed is not None and name not in allowed:
                    raise RecipeError(source, f"{path}.{name}", "unknown key (one of "
                                      f"{', '.join(allowed)})", nearest(str(name), allowed))
                inner = _model_type(value_type)
                if inner is not None and isinstance(item, Mapping):
                    _check_unknown_keys(item, inner, source, prefix=f"{path}.{name}.")


# --------------------------------------------------------------------------------------------
# TRL pass-through


def trainer_config_class(method: str) -> type:
    return get_method(method).config_class()


@functools.cache
def _trainer_field_types(method: str) -> dict[str, Any]:
    cls = trainer_config_class(method)
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}


def applicable_fields(train: Mapping[str, Any], method: str) -> dict[str, Any]:
    """The ``train:`` fields that ``method``'s TRL config has: an experiment's shared ``train:``
    applies to each stage where the field exists (GRPO has no ``max_length``, say)."""
    types = _trainer_field_types(method)
    return {k: v for k, v in train.items() if k in types}


# Keys resistkit sets itself, with why: a recipe that set them would be silently overridden.
RESERVED_TRAIN_KEYS: dict[str, str] = {
    "output_dir": "set by resistkit; use the top-level `output_dir`",
}


def validate_trainer_fields(
    values: dict[str, Any], method: str, source: str,
    reserved: Mapping[str, str] = RESERVED_TRAIN_KEYS,
) -> dict[str, Any]:
    """Check names and types of ``train:`` against TRL's config dataclass; coerce values."""
    types = _trainer_field_types(method)
    cls_name = trainer_config_class(method).__name__
    out: dict[str, Any] = {}
    for key, value in values.items():
        path = f"train.{key}"
        if key in reserved:
            raise RecipeError(source, path, reserved[key])
        if key not in types:
            raise RecipeError(
                source, path, f"not a field of trl.{cls_name}", nearest(key, types)
            )
        value = _undo_yaml11_bool(value, types[key])
        try:
            adapter = TypeAdapter(types[key])
        except Exception:  # exotic annotation pydantic cannot build: TRL will check it
            out[key] = value
            continue
        try:
            adapter.validate_python(value)
        except ValidationError as err:
            msg = err.errors()[0]["msg"]
            raise RecipeError(
                source, path, f"{msg} (trl.{cls_name}.{key} is {types[key]}, got {value!r})"
            ) from None
        # Keep the YAML value; only fix numbers that YAML 1.1 reads as strings ("1e-5").
        out[key] = _fix_number(value, types[key])
    return out


def _undo_yaml11_bool(value: Any, annotation: Any) -> Any:
    """YAML 1.1 reads ``save_strategy: no`` as False; a string field wants "no" back."""
    if isinstance(value, bool):
        allowed = {annotation, *typing.get_args(annotation)}
        if bool not in allowed and (str in allowed or any(
            isinstance(a, type) and issubclass(a, str) for a in allowed
        )):
            return "yes" if value else "no"
    return value


def _fix_number(value: Any, annotation: Any) -> Any:
    if isinstance(value, str):
        allowed = {annotation, *typing.get_args(annotation)}
        for number in (int, float):
            if number in allowed:
                try:
                    return number(value)
                except ValueError:
                    continue
    return value


def dump_recipe(recipe: BaseModel) -> str:
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)
