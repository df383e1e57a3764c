"""Experiment recipes for `resistkit run`: Settings I, II and III of the paper.

An experiment recipe shares the stage recipe's vocabulary (``model``, ``prompt_format``,
``train:`` = TRL's own fields, data specs) and adds one section per setting plus ``eval:``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from resistkit.recipes import (
    DataSpec,
    GenerationSpec,
    LoraSpec,
    ModelSpec,
    PromptFormat,
    RecipeError,
    TinyModelConfig,
    _Strict,
    validate_trainer_fields,
)


class EvalSpec(_Strict):
    """How every checkpoint is judged: sample on held-out prompts, then score."""

    prompts: DataSpec = Field(description="Held-out prompt set (`prompt` column).")
    generation: GenerationSpec = Field(default_factory=GenerationSpec)
    scorers: list[str] = Field(default_factory=lambda: ["sentiment-lexicon"])
    scorer_options: dict[str, Any] = Field(
        default_factory=dict, description="Options passed to the scorers (e.g. model=PATH)."
    )
    metric: str | None = Field(
        None, description="Score column plotted and tabled; default: the first scorer's first."
    )
    compression: list[DataSpec] = Field(
        default_factory=list,
        description="Datasets whose bits/token is measured at every checkpoint (the theory's γ).",
    )


class Setting1Spec(_Strict):
    """Resistance: forward (θk on Dl) vs inverse (θl on Dk) alignment, same hyper-parameters."""

    data: DataSpec = Field(description="Task data θ0 is fine-tuned on to make the slices.")
    slices: list[int] = Field(description="Training samples at which slices θ1..θn are saved.")
    responses: DataSpec | None = Field(
        None, description="Prompts whose responses form Dk (default: eval.prompts)."
    )
    pair_samples: int | None = Field(
        None, ge=1, description="Responses per forward/inverse training run (default: all)."
    )


class Setting2Spec(_Strict):
    """Rebound: Q1 positive samples, then Q2 negative samples, scored at every point."""

    positive: DataSpec
    negative: DataSpec
    q1: list[int] = Field(description="Positive-SFT volumes.")
    q2: list[int] = Field(description="Inverse volumes (0 = the Q1 slice itself).")
    reverse: bool = Field(False, description="Ablation: negative first, then positive.")
    control: DataSpec | None = Field(
        None,
        description="Domain control: SFT the base on this (mixed-polarity) data first and use "
        "the result as θ0 and as the baseline, so style shifts are not read as sentiment.",
    )
    inverse_method: Literal["sft", "dpo"] = Field(
        "sft", description="Ablation: DPO (chosen = the inverse side) as the inverse step."
    )
    inverse_train: dict[str, Any] = Field(
        default_factory=dict,
        description="TRL fields for the inverse step on top of `train:` (e.g. DPO's beta).",
    )
    nested: Literal["auto", "always", "never"] = Field(
        "auto",
        description="auto: one run per direction when the schedule is constant-LR, one epoch "
        "and volumes are multiples of the batch; otherwise separate runs.",
    )


class BaseModelEntry(_Strict):
    label: str
    model: ModelSpec


class Setting3Spec(_Strict):
    """Setting II swept over base models (sizes, or pre-training volumes)."""

    models: list[BaseModelEntry]
    axis: str = Field("model", description="What varies, for the figure: size, tokens, ...")


class LaunchSpec(_Strict):
    """Run every training stage under `accelerate launch` (generation and scoring stay
    in-process). Not part of any stage fingerprint: the launcher does not change results
    beyond floating-point order, so switching it never re-runs finished stages."""

    accelerate_config: str = Field(
        "ddp", description="A shipped config (ddp, zero2, zero3, zero3_offload, fsdp) or a path."
    )
    num_processes: int | None = Field(
        None, ge=1, description="Processes (GPUs); default: the config's num_processes."
    )
    launch_args: list[str] = Field(
        default_factory=list, description="More `accelerate launch` options, passed verbatim."
    )


class ExperimentRecipe(_Strict):
    experiment: Literal["setting1", "setting2", "setting3"]
    seeds: list[int] = Field(default_factory=lambda: [42])
    output_dir: str = "runs/experiment"
    method: Literal["sft"] = Field("sft", description="Forward alignment uses SFT, as the paper.")
    model: ModelSpec = Field(default_factory=ModelSpec, description="The base model θ0.")
    prompt_format: PromptFormat = "continuation"
    prompt_template: str | None = None
    lora: LoraSpec | None = None
    train: dict[str, Any] = Field(
        default_factory=dict, description="TRL SFTConfig fields for every training stage."
    )
    eval: EvalSpec
    setting1: Setting1Spec | None = None
    setting2: Setting2Spec | None = None
    setting3: Setting3Spec | None = None
    launch: LaunchSpec | None = Field(
        None, description="Train under accelerate (multi-GPU); `run --accelerate-config` sets it."
    )


def validate_experiment(recipe: ExperimentRecipe, source: str) -> ExperimentRecipe:
    recipe.train = validate_trainer_fields(recipe.train, "sft", source)
    if recipe.launch is not None:
        from resistkit.launch import resolve_accelerate_config

        try:
            resolve_accelerate_config(recipe.launch.accelerate_config)
        except ValueError as err:
            raise RecipeError(source, "launch.accelerate_config", str(err)) from None
    if recipe.model.name_or_path == "tiny" and recipe.model.tiny is None:
        recipe.model.tiny = TinyModelConfig()
    need = {"setting1": "setting1", "setting2": "setting2", "setting3": "setting2"}
    for section in {need[recipe.experiment], recipe.experiment}:
        if getattr(recipe, section) is None:
            raise RecipeError(source, section, f"required for experiment {recipe.experiment}")
    if recipe.setting2 is not None:
        s2 = recipe.setting2
        merged = {**recipe.train, **s2.inverse_train}
        s2.inverse_train = {
            k: v for k, v in validate_trainer_fields(merged, s2.inverse_method, source).items()
            if k in s2.inverse_train
        }
        for key, values in (("setting2.q1", s2.q1), ("setting2.q2", s2.q2)):
            if sorted(set(values)) != values:
                raise RecipeError(source, key, "must be strictly increasing")
        if s2.control is not None and s2.control.num_samples is None:
            raise RecipeError(source, "setting2.control.num_samples", "required")
        if s2.q1 and s2.q1[0] <= 0:
            raise RecipeError(source, "setting2.q1", "volumes must be positive")
    s1 = recipe.setting1
    if s1 is not None and sorted(set(s1.slices)) != s1.slices:
        raise RecipeError(source, "setting1.slices", "must be strictly increasing")
    if recipe.setting1 is not None and len(recipe.setting1.slices) < 2:
        raise RecipeError(source, "setting1.slices", "needs at least two slices to form a pair")
    return recipe


def load_experiment(path: str, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentRecipe:
    from resistkit.recipes import load_recipe

    recipe = load_recipe(path, overrides, model=ExperimentRecipe)
    return validate_experiment(recipe, str(path))
