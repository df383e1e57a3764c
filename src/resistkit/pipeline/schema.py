"""Experiment recipes for `resistkit run`: Settings I, II and III of the paper.

An experiment recipe shares the stage recipe's vocabulary (``model``, ``prompt_format``,
``train:`` = TRL's own fields, data specs) and adds one section per setting plus ``eval:``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from resistkit.errors import RecipeError, RunError
from resistkit.models import is_tiny
from resistkit.pipeline.executor_spec import ExecutorSpec
from resistkit.pipeline.prompt_sets import PromptSetSpec, check_prompt_sets
from resistkit.pipeline.roles import CompressionSpec, assign_roles, check_roles
from resistkit.recipes import (
    DataSpec,
    GenerationSpec,
    LoraSpec,
    ModelSpec,
    PromptFormat,
    RewardSpec,
    Strict,
    TinyModelConfig,
    applicable_fields,
    check_generation,
    check_method_reward,
    check_train_numbers,
    check_volumes,
    nearest,
    validate_trainer_fields,
)
from resistkit.training.methods import METHODS, get_method, method_names


class MarginSpec(Strict):
    """A likelihood margin between two compression sets, a model-side metric with no sampling
    noise: m = bits/token(minus) - bits/token(plus); it rises as the model comes to prefer the
    ``plus`` set (e.g. positive snippets) over the ``minus`` set (negative ones)."""

    name: str = Field("likelihood_margin", description="Its column name (use it as eval.metric).")
    plus: str = Field("align", description="A compression set: its role (align, perturb, "
                      "pretrain) or DATASET:SPLIT.")
    minus: str = Field("perturb", description="The other compression set, the same way.")


class KLSpec(DataSpec):
    """KL(θ ‖ θ0) per token at every point, on a fixed held-out text set (response tokens
    only), θ0 being the base model (or the domain control)."""

    threshold: float = Field(0.01, gt=0, description="KL (nats/token) below which a point "
                             "counts as back at θ0 (the paper's Table 3 uses 0.01).")


class EvalSpec(Strict):
    """How every checkpoint is judged: sample on held-out prompts and score the samples;
    measure compression, likelihood margins and KL to the base on fixed text."""

    prompts: DataSpec | None = Field(None, description="Held-out prompt set (`prompt` "
                                     "column); needed when there are scorers.")
    prompt_sets: list[PromptSetSpec] = Field(
        default_factory=list, description="Further prompt sets (safe prompts for over-refusal, "
        "another benchmark's), each sampled and scored beside eval.prompts.")
    generation: GenerationSpec = Field(default_factory=GenerationSpec)
    scorers: list[str] = Field(default_factory=lambda: ["sentiment-lexicon"], description=(
        "Scorers of the sampled responses; [] samples nothing (a model-side metric only)."))
    scorer_options: dict[str, Any] = Field(
        default_factory=dict, description="Options passed to the scorers (e.g. model=PATH)."
    )
    metric: str | None = Field(
        None, description="Score column plotted and tabled; default: the first scorer's first."
    )
    compression: list[CompressionSpec] = Field(
        default_factory=list,
        description="Datasets whose bits/token is measured at every checkpoint (the theory's γ).",
    )
    margin: MarginSpec | None = Field(None, description="A likelihood margin between two "
                                      "compression sets, usable as eval.metric.")
    kl: KLSpec | None = Field(None, description="KL to the base model at every point.")
    sample_at_q2: list[int] | None = Field(
        None, description="Setting II/III: the Q2 points at which responses are sampled and "
        "scored (θ0 always is); default: every point. Sampling costs most of a CPU run, so a "
        "model-side metric can run at every point and the scorers at a few."
    )

    @property
    def samples(self) -> bool:
        """Whether points are sampled and scored (else only model-side measures)."""
        return bool(self.scorers)

    def samples_at(self, q2: int) -> bool:
        """Whether the point after ``q2`` inverse samples (-1: θ0) is sampled and scored."""
        return self.samples and (q2 < 0 or self.sample_at_q2 is None or q2 in self.sample_at_q2)


class Setting1Spec(Strict):
    """Resistance: forward (θk on Dl) vs inverse (θl on Dk) alignment, same hyper-parameters."""

    data: DataSpec = Field(description="Task data θ0 is fine-tuned on to make the slices.")
    slices: list[int] = Field(description="Training samples at which slices θ1..θn are saved.")
    responses: DataSpec | None = Field(
        None, description="Prompts whose responses form Dk (default: eval.prompts)."
    )
    pair_samples: int | None = Field(
        None, ge=1, description="Responses per forward/inverse training run (default: all)."
    )


class Setting2Spec(Strict):
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
    inverse_method: str = Field(
        "sft", description="Ablation: the training method of the inverse step: sft, dpo / "
        "simpo / orpo (pairs: the inverse side chosen, the forward side rejected), kto (the "
        "same pairs unpaired: desirable / undesirable rows alternate) or grpo (the inverse "
        "set's prompts, sampled and rewarded by `inverse_reward`)."
    )
    inverse_train: dict[str, Any] = Field(
        default_factory=dict,
        description="TRL fields for the inverse step on top of `train:` (e.g. DPO's beta); "
        "fields of `train:` the inverse method's config lacks do not apply to it.",
    )
    inverse_reward: RewardSpec | None = Field(
        None, description="grpo only: the reward of the inverse step; default: the scorer of "
        "eval.metric, rewarding the inverse direction (the metric falling, or rising when "
        "reverse)."
    )
    nested: Literal["auto", "always", "never"] = Field(
        "auto",
        description="auto: one run per direction when the schedule is constant-LR, one epoch "
        "and volumes are multiples of the batch; otherwise separate runs.",
    )


class BaseModelEntry(Strict):
    label: str
    model: ModelSpec


class Setting3Spec(Strict):
    """Setting II swept over base models (sizes, or pre-training volumes)."""

    models: list[BaseModelEntry]


class LaunchSpec(Strict):
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


class ExperimentRecipe(Strict):
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
    executor: ExecutorSpec = Field(
        default_factory=ExecutorSpec, description="Stages in this process, as local processes "
        "or as SLURM jobs; `run --executor` / `--jobs` set it."
    )


def validate_experiment(recipe: ExperimentRecipe, source: str) -> ExperimentRecipe:
    """Checks across fields (pydantic checked names and types); inputs are checked later,
    before the first stage runs (``pipeline.preflight``)."""
    recipe.train = validate_trainer_fields(recipe.train, "sft", source)
    check_train_numbers(recipe.train, source)
    if recipe.launch is not None:
        from resistkit.launch import resolve_accelerate_config

        try:
            resolve_accelerate_config(recipe.launch.accelerate_config)
        except RunError as err:
            raise RecipeError(source, "launch.accelerate_config", str(err)) from None
    if is_tiny(recipe.model.name_or_path) and recipe.model.tiny is None:
        recipe.model.tiny = TinyModelConfig()
    need = {"setting1": "setting1", "setting2": "setting2", "setting3": "setting2"}
    for section in {need[recipe.experiment], recipe.experiment}:
        if getattr(recipe, section) is None:
            raise RecipeError(source, section, f"required for experiment {recipe.experiment}")
    if not recipe.seeds:
        raise RecipeError(source, "seeds", "is empty; give at least one seed")
    if len(set(recipe.seeds)) != len(recipe.seeds):
        raise RecipeError(source, "seeds", f"{recipe.seeds} repeats a seed; seeds must differ")
    check_generation(recipe.eval.generation, source, "eval.generation")
    check_eval(recipe, source)
    if recipe.setting2 is not None:
        _validate_setting2(recipe, source)
    if recipe.setting1 is not None:
        if recipe.eval.prompt_sets:
            raise RecipeError(source, "eval.prompt_sets", "Setting I compares slices on "
                              "eval.prompts only; remove eval.prompt_sets")
        check_volumes(recipe.setting1.slices, "setting1.slices", source)
        if not recipe.eval.scorers:
            raise RecipeError(source, "eval.scorers", "Setting I compares scores of sampled "
                              "responses; name at least one scorer")
        if recipe.setting1.responses is None and recipe.eval.prompts is None:
            raise RecipeError(source, "setting1.responses", "required (or eval.prompts): the "
                              "prompts each slice answers")
        if len(recipe.setting1.slices) < 2:
            raise RecipeError(source, "setting1.slices", "needs at least two slices to form a pair")
    if recipe.setting3 is not None:
        labels = [m.label for m in recipe.setting3.models]
        if not labels or len(set(labels)) != len(labels):
            raise RecipeError(source, "setting3.models", f"labels {labels} must be non-empty "
                              "and unique")
    return recipe


def _validate_setting2(recipe: ExperimentRecipe, source: str) -> None:
    s2 = recipe.setting2
    assert s2 is not None
    if is_tiny(recipe.model.name_or_path) and recipe.experiment == "setting2":
        raise RecipeError(source, "model.name_or_path", "'tiny' is an untrained model with "
                          "no baseline to rebound to; use builtin:tiny-base or a trained "
                          "model directory")
    if s2.inverse_method not in METHODS:
        raise RecipeError(source, "setting2.inverse_method",
                          f"unknown method {s2.inverse_method!r}; methods: "
                          f"{', '.join(method_names())}", nearest(s2.inverse_method, METHODS))
    forward, inverse = (s2.negative, s2.positive) if s2.reverse else (s2.positive, s2.negative)
    assign_roles(recipe.eval.compression, forward, inverse)
    check_roles(recipe.eval.compression, source)
    if recipe.eval.margin is not None:
        margin_sets(recipe, source)
    merged = {**applicable_fields(recipe.train, s2.inverse_method), **s2.inverse_train}
    s2.inverse_train = {
        k: v for k, v in validate_trainer_fields(merged, s2.inverse_method, source).items()
        if k in s2.inverse_train
    }
    if get_method(s2.inverse_method).reward:
        if s2.inverse_reward is None:
            s2.inverse_reward = default_inverse_reward(recipe, source)
        # Online RL samples like the evaluation does unless told otherwise (TRL's default of
        # 512 new tokens would dwarf every other stage).
        gen = recipe.eval.generation
        s2.inverse_train.setdefault("max_completion_length", gen.max_new_tokens)
        s2.inverse_train.setdefault("temperature", gen.temperature)
    check_method_reward(s2.inverse_method, s2.inverse_reward, source, "setting2.inverse_reward")
    if s2.inverse_reward is not None:
        from resistkit.scoring.checks import check_reward_scorer

        check_reward_scorer(s2.inverse_reward, source, "setting2.inverse_reward")
    check_train_numbers(s2.inverse_train, source, "setting2.inverse_train")
    # Q1 = 0 is θ0 itself (the released model, or the domain control): its inverse arm shows
    # how an unaligned-by-us model takes the same perturbation.
    check_volumes(s2.q1, "setting2.q1", source, allow_zero=True)
    check_volumes(s2.q2, "setting2.q2", source, allow_zero=True)
    at = recipe.eval.sample_at_q2
    if at is not None:
        if not recipe.eval.samples:
            raise RecipeError(source, "eval.sample_at_q2", "is set but eval.scorers is empty, "
                              "so nothing is sampled; remove it or name a scorer")
        stray = sorted(set(at) - set(s2.q2))
        if stray or not at:
            raise RecipeError(source, "eval.sample_at_q2", f"{stray or at} must be a non-empty "
                              f"subset of setting2.q2 {s2.q2}")
    if s2.control is not None and s2.control.num_samples is None:
        raise RecipeError(source, "setting2.control.num_samples", "required")


def default_inverse_reward(recipe: ExperimentRecipe, source: str) -> RewardSpec:
    """GRPO's inverse reward when the recipe names none: the scorer of eval.metric, rewarding
    the direction the inverse data pulls (the metric rises toward the positive set)."""
    from resistkit.scoring import SCORERS

    ev, s2 = recipe.eval, recipe.setting2
    assert s2 is not None
    for name in ev.scorers:
        columns = [c for c in SCORERS[name].columns if c not in SCORERS[name].auxiliary]
        if ev.metric in (None, *columns):
            options = {k: v for k, v in ev.scorer_options.items() if k in SCORERS[name].options}
            return RewardSpec(scorer=name, column=ev.metric or columns[0],
                              maximize=s2.reverse, options=options)
    raise RecipeError(source, "setting2.inverse_reward", "required: eval.metric "
                      f"{ev.metric!r} is not a scorer's column, so GRPO has no reward to "
                      "default to; name one, e.g. {scorer: sentiment-lexicon, maximize: false}")


def check_eval(recipe: ExperimentRecipe, source: str) -> None:
    """Scorers, their options and the metric exist; compression sets do not collide."""
    from resistkit.scoring import SCORERS
    from resistkit.scoring.registry import route_options

    ev = recipe.eval
    if not ev.scorers and ev.margin is None:
        raise RecipeError(source, "eval.scorers", "is empty and there is no eval.margin, so no "
                          "metric is measured; name a scorer, or set eval.margin (a model-side "
                          "metric)")
    if ev.scorers and ev.prompts is None:
        raise RecipeError(source, "eval.prompts", "required to sample the responses that "
                          "eval.scorers score")
    for i, name in enumerate(ev.scorers):
        if name not in SCORERS:
            raise RecipeError(source, f"eval.scorers.{i}", f"unknown scorer {name!r}; scorers: "
                              f"{', '.join(sorted(SCORERS))}", nearest(name, SCORERS))
    if len(set(ev.scorers)) != len(ev.scorers):
        raise RecipeError(source, "eval.scorers", f"{ev.scorers} lists a scorer twice")
    specs = [SCORERS[name] for name in ev.scorers]
    check_prompt_sets(ev.prompt_sets, has_prompts=ev.prompts is not None, scorers=ev.scorers,
                      scorer_options=ev.scorer_options, source=source)
    # Options go to every scorer that takes them, here or in a further prompt set.
    others = {n for p in ev.prompt_sets for n in (p.scorers or [])} - set(ev.scorers)
    try:
        route_options(specs + [SCORERS[n] for n in sorted(others)], ev.scorer_options) \
            if specs or others else None
    except ValueError as err:
        raise RecipeError(source, "eval.scorer_options", str(err)) from None
    columns = [c for spec in specs for c in spec.columns if c not in spec.auxiliary]
    if ev.margin is not None:
        taken = {c for spec in specs for c in spec.columns} | set(ev.scorers) | RESULT_COLUMNS
        if ev.margin.name in taken:
            raise RecipeError(source, "eval.margin.name", f"{ev.margin.name!r} is already a "
                              "scorer's name or column, or a column of results.csv; give the "
                              "margin its own name, e.g. safety_margin")
        columns.append(ev.margin.name)
    if ev.metric is not None and ev.metric not in columns:
        raise RecipeError(source, "eval.metric", f"{ev.metric!r} is not a column of the "
                          f"scorers {ev.scorers} or the margin; columns: "
                          f"{', '.join(columns) or 'none'}", nearest(ev.metric, columns))
    if ev.metric is None and not specs and ev.margin is not None:
        ev.metric = ev.margin.name
    keys = [c.key for c in ev.compression]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise RecipeError(source, "eval.compression", f"{dupes} measured twice; each data set "
                          "and split once")


# Columns every results.csv row has; a metric named like one would shadow it.
RESULT_COLUMNS = frozenset({"model", "seed", "q1", "q2", "metric", "mean", "ci95_half", "std",
                            "n", "nan", "seeds", "seed_std", "change_from_q2_0", "kl"})


def margin_sets(recipe: ExperimentRecipe, source: str = "recipe") -> tuple[int, int]:
    """Indexes of the margin's plus and minus sets among eval.compression."""
    margin = recipe.eval.margin
    assert margin is not None
    found = []
    for key in ("plus", "minus"):
        ref = getattr(margin, key)
        hits = [i for i, c in enumerate(recipe.eval.compression)
                if ref in (c.role, c.key)]
        if len(hits) != 1:
            names = ", ".join(f"{c.key} ({c.role})" for c in recipe.eval.compression)
            raise RecipeError(source, f"eval.margin.{key}", f"{ref!r} names "
                              f"{'no' if not hits else 'more than one'} compression set; sets: "
                              f"{names or 'none'}")
        found.append(hits[0])
    if found[0] == found[1]:
        raise RecipeError(source, "eval.margin", "plus and minus name the same set")
    return found[0], found[1]


def load_experiment(path: str, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentRecipe:
    from resistkit.recipes import load_recipe

    recipe = load_recipe(path, overrides, model=ExperimentRecipe)
    return validate_experiment(recipe, str(path))
