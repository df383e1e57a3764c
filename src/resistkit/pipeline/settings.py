"""Expanding an experiment recipe into stages: Settings I, II and III.

Setting II with a nested schedule (constant LR, one epoch): one forward run saves every Q1
slice and one inverse run per slice saves every Q2 point — the same numbers as separate runs,
because the first n rows of a seeded permutation are a shorter run's rows and a constant
schedule does not depend on the run's length. Otherwise every point is its own run.

Stage names come from ``pipeline.layout``; every evaluated checkpoint is registered as a
``Point`` and every Setting I training run as a ``PairRun``, which is how the report finds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resistkit.pipeline import layout, steps
from resistkit.pipeline.layout import SeedLayout
from resistkit.pipeline.prompt_sets import prompt_set_scorers
from resistkit.pipeline.runner import PairRun, Plan, Point, Stage
from resistkit.pipeline.schema import ExperimentRecipe
from resistkit.recipes import DataSpec, RewardSpec
from resistkit.training.methods import get_method


def _train_config(exp: ExperimentRecipe, model: Any, data: DataSpec, save_at: list[int],
                  seed: int, method: str, extra: dict[str, Any], produced: bool = False,
                  reward: RewardSpec | None = None) -> dict[str, Any]:
    config = {
        "model": model, "data": steps.data_config(data, produced=produced), "save_at": save_at,
        "seed": seed,
        "method": method, "train": steps.stage_train_fields(exp, method, extra),
        "lora": exp.lora.model_dump(exclude_defaults=True) if exp.lora else None,
        "prompt_format": exp.prompt_format, "prompt_template": exp.prompt_template,
    }
    if reward is not None:
        config["reward"] = reward.model_dump()
    return {**config, **_precision(exp)}


def _precision(exp: ExperimentRecipe) -> dict[str, Any]:
    """What ``dtype: auto`` chose on this CPU, in the fingerprint of every stage whose numbers
    it changes (empty on the fp32 path, so those fingerprints are as before)."""
    import torch

    from resistkit.hardware import fingerprint_precision

    return fingerprint_precision(exp.model.dtype, on_cpu=not torch.cuda.is_available())


def _base_model_config(exp: ExperimentRecipe) -> dict[str, Any]:
    """The base model's settings and content identity: replacing its weights at the same path
    makes every stage that reads it stale. Non-default settings only: a field added to the
    schema later leaves fingerprints alone."""
    from resistkit.errors import ResistkitError
    from resistkit.models import is_tiny, model_identity, resolve_spec

    config = exp.model.model_dump(exclude_defaults=True)
    if not is_tiny(exp.model.name_or_path):
        try:
            config["identity"] = model_identity(resolve_spec(exp.model))
        except ResistkitError as err:
            if not err.missing_input:
                raise
            # Not on this machine (a dry run plans past it; a real run refused it already):
            # no finished stage can match this fingerprint.
            config["identity"] = {"unavailable": exp.model.name_or_path}
    return config


def _add_train(plan: Plan, exp: ExperimentRecipe, name: str, *, model_path: str | None,
               model_cfg: Any, data: DataSpec, save_at: list[int], seed: int, deps: list[str],
               method: str = "sft", extra: dict[str, Any] | None = None,
               train_samples: int | None = None, measure_target: bool = False,
               produced: bool = False, reward: RewardSpec | None = None) -> str:
    """A training stage; ``produced``: its data is a file an earlier stage of the run wrote."""
    plan.add(Stage(name, "train",
                   _train_config(exp, model_cfg, data, save_at, seed, method, extra or {},
                                 produced, reward),
                   steps.train_stage(plan.run_dir, exp, model_path=model_path, data=data,
                                     save_at=save_at, seed=seed, method=method,
                                     extra_train=extra, measure_target=measure_target,
                                     reward=reward),
                   deps=deps,
                   train_samples=max(save_at) if train_samples is None else train_samples))
    return name


@dataclass(frozen=True)
class Start:
    """θ0 of one seed: the base model (``path`` None) or the domain control's final model."""

    path: str | None
    config: Any
    deps: list[str]


def _add_eval(plan: Plan, exp: ExperimentRecipe, point: str, label: dict[str, Any], *,
              model_stage: str | None, model_path: str | None, forward: str | None,
              theta0: Start) -> dict[str, str]:
    """The evaluation of one checkpoint (``model_path`` None = the base): generate → score
    when there are scorers (at the Q2 points ``eval.sample_at_q2`` names), compression when
    there are sets, KL to θ0 when asked for. Returns the eval stages by kind."""
    deps = [model_stage] if model_stage else []
    model_cfg = model_path or _base_model_config(exp)
    names: dict[str, str] = {}
    if exp.eval.samples_at(label.get("q2", -1)):
        assert exp.eval.prompts is not None
        _add_sampling(plan, exp, label, names, point, (layout.GENERATE, layout.SCORE),
                      exp.eval.prompts, exp.eval.scorers, exp.eval.scorer_options,
                      model_cfg=model_cfg, model_path=model_path, deps=deps)
        for ps in exp.eval.prompt_sets:
            scorers, options = prompt_set_scorers(ps, exp.eval.scorers, exp.eval.scorer_options)
            _add_sampling(plan, exp, label, names, point, layout.prompt_set_kinds(ps.name), ps,
                          scorers, options, model_cfg=model_cfg, model_path=model_path,
                          deps=deps)
    if exp.eval.compression:
        names[layout.COMPRESSION] = layout.eval_stage(point, layout.COMPRESSION)
        plan.add(Stage(names[layout.COMPRESSION], "eval",
                       {"model": model_cfg, "datasets": [steps.compression_config(d)
                                                         for d in exp.eval.compression],
                        **steps.likelihood_format(exp), **_precision(exp)},
                       steps.compression_stage(plan.run_dir, exp, model_path=model_path),
                       deps=deps))
    if exp.eval.kl is not None and model_path != theta0.path:
        names[layout.KL] = layout.eval_stage(point, layout.KL)
        plan.add(Stage(names[layout.KL], "eval",
                       {"model": model_cfg, "reference": theta0.config,
                        "data": steps.data_config(exp.eval.kl), **steps.likelihood_format(exp),
                        **_precision(exp)},
                       steps.kl_stage(plan.run_dir, exp, model_path=model_path,
                                      reference=theta0.path),
                       deps=sorted(set(deps + theta0.deps))))
    plan.points.append(Point(label, names, forward, exp.model.name_or_path))
    return names


def _add_sampling(plan: Plan, exp: ExperimentRecipe, label: dict[str, Any],
                  names: dict[str, str], point: str, kinds: tuple[str, str], prompts: DataSpec,
                  scorers: list[str], options: dict[str, Any], *, model_cfg: Any,
                  model_path: str | None, deps: list[str]) -> None:
    """A generate stage on ``prompts`` and the score stage after it, of kinds ``kinds``:
    ``generate``/``score`` for eval.prompts, GENERATE-NAME/SCORE-NAME for a further prompt set
    (``eval.prompt_sets``), which is sampled with the same decoding."""
    seed = label["seed"]
    gen, score = kinds
    names[gen], names[score] = layout.eval_stage(point, gen), layout.eval_stage(point, score)
    plan.add(Stage(names[gen], "generate",
                   {"model": model_cfg, "seed": seed, "prompts": steps.data_config(prompts),
                    "generation": exp.eval.generation.model_dump(exclude_defaults=True),
                    "prompt_format": exp.prompt_format, "prompt_template": exp.prompt_template,
                    **_precision(exp)},
                   steps.generate_stage(plan.run_dir, exp, model_path=model_path, seed=seed,
                                        prompts=prompts),
                   deps=deps))
    plan.add(Stage(names[score], "score",
                   {"scorers": scorers, "options": options,
                    "point": {k: v for k, v in label.items() if k != "model"},
                    **steps.judge_config(scorers, options), **_precision(exp)},
                   steps.score_stage(plan.run_dir, generations_stage=names[gen],
                                     scorers=scorers, options=options),
                   deps=[names[gen]]))


# --------------------------------------------------------------------------------------------
# Setting II


@dataclass(frozen=True)
class Schedule:
    nested: bool
    reason: str
    naive: int  # training samples with one run per point
    nested_total: int  # ... with one run per direction


def setting2_schedule(exp: ExperimentRecipe) -> Schedule:
    """Whether Setting II nests (one run per direction) and what each choice trains."""
    s2 = exp.setting2
    assert s2 is not None
    processes = exp.launch.num_processes if exp.launch is not None else 1
    inv_fields = {**exp.train, **s2.inverse_train}
    ok_fwd, why_fwd = steps.is_nestable(exp.train, [q for q in s2.q1 if q > 0],
                                        steps.samples_per_step(exp.train) * processes)
    q2_pos = [q for q in s2.q2 if q > 0]
    ok_inv, why_inv = steps.is_nestable(inv_fields, q2_pos,
                                        steps.samples_per_step(inv_fields) * processes)
    want = {"always": True, "never": False}.get(s2.nested)
    nested = (ok_fwd and ok_inv) if want is None else want
    reason = why_fwd if not ok_fwd else why_inv if not ok_inv else f"{why_fwd}; inverse: {why_inv}"
    naive = sum(s2.q1) + len(s2.q1) * sum(q2_pos)
    nested_total = max(s2.q1) + len(s2.q1) * (max(q2_pos) if q2_pos else 0)
    return Schedule(nested, reason, naive, nested_total)


def plan_setting2(plan: Plan, exp: ExperimentRecipe, model_label: str = "") -> dict[str, Any]:
    """Stages for one base model; returns the nesting decision and training-sample totals."""
    schedule = setting2_schedule(exp)
    for seed in exp.seeds:
        _plan_seed2(plan, exp, SeedLayout(seed, model_label), schedule.nested)
    return {"nested": schedule.nested, "nested_reason": schedule.reason,
            "train_samples_naive": schedule.naive * len(exp.seeds),
            "train_samples_nested": schedule.nested_total * len(exp.seeds)}


def _plan_seed2(plan: Plan, exp: ExperimentRecipe, lay: SeedLayout, nested: bool) -> None:
    s2 = exp.setting2
    assert s2 is not None
    seed = lay.seed
    first, second = (s2.negative, s2.positive) if s2.reverse else (s2.positive, s2.negative)
    # The domain control (optional): a first SFT on mixed-polarity data, so the baseline and
    # every Q1 slice share the task's style and differ only in its sentiment.
    theta0 = Start(None, _base_model_config(exp), [])
    if s2.control is not None:
        ctl = _add_train(plan, exp, lay.control(), model_path=None, model_cfg=theta0.config,
                         data=s2.control, save_at=[], seed=seed, deps=[],
                         train_samples=s2.control.num_samples or 0)
        theta0 = Start(layout.final_of(ctl), layout.final_of(ctl), [ctl])
    start, start_cfg, start_deps = theta0.path, theta0.config, theta0.deps
    # Setting III labels points by base; Setting II by its one base model's name.
    label = {"model": lay.model or exp.model.name_or_path, "seed": seed}
    base_stage = start_deps[0] if start_deps else None
    base_names = _add_eval(plan, exp, lay.point(), {**label, "q1": -1, "q2": -1},
                           model_stage=base_stage, model_path=start, forward=None, theta0=theta0)
    q2_pos = [q for q in s2.q2 if q > 0]
    q1_pos = [q for q in s2.q1 if q > 0]
    for q1 in s2.q1:
        if q1 == 0:
            # The Q1 = 0 arm starts from θ0 itself: its Q2 = 0 point is θ0's evaluation (the
            # same stages, not measured twice) and its inverse run starts from θ0.
            if 0 in s2.q2:
                plan.points.append(Point({**label, "q1": 0, "q2": 0}, base_names, None,
                                         exp.model.name_or_path))
            if q2_pos:
                _plan_inverse(plan, exp, lay, 0, base_stage, start, start_cfg, q2_pos, first,
                              second, nested, theta0)
            continue
        save_at = q1_pos if nested else [q1]
        fwd = _add_train(plan, exp, lay.forward(None if nested else q1), model_path=start,
                         model_cfg=start_cfg, data=first, save_at=save_at, seed=seed,
                         deps=start_deps)
        slice_q1 = layout.slice_of(fwd, q1)
        if 0 in s2.q2:
            _add_eval(plan, exp, lay.point(q1, 0), {**label, "q1": q1, "q2": 0},
                      model_stage=fwd, model_path=slice_q1, forward=fwd, theta0=theta0)
        if q2_pos:
            _plan_inverse(plan, exp, lay, q1, fwd, slice_q1, slice_q1, q2_pos, first, second,
                          nested, theta0)


def _plan_inverse(plan: Plan, exp: ExperimentRecipe, lay: SeedLayout, q1: int,
                  fwd: str | None, slice_q1: str | None, slice_cfg: Any, q2_pos: list[int],
                  first: DataSpec, second: DataSpec, nested: bool, theta0: Start) -> None:
    """The inverse runs from one Q1 slice (``fwd``/``slice_q1`` None: from the base model)."""
    s2 = exp.setting2
    assert s2 is not None
    inv_data, deps = second, [fwd] if fwd else []
    # The inverse data in the method's form (methods.Method.setting2_data); "plain" and
    # "prompts" (GRPO samples the inverse set's prompts) read the inverse set itself.
    kind = get_method(s2.inverse_method).setting2_data
    if kind in ("pairs", "unpaired"):
        unpaired = kind == "unpaired"
        pairs = lay.inverse_pairs(unpaired)
        config = {"chosen": steps.data_config(second), "rejected": steps.data_config(first),
                  "n": max(q2_pos), "seed": lay.seed}
        plan.add(Stage(pairs, "data", {**config, "unpaired": True} if unpaired else config,
                       steps.preference_pairs_stage(plan.run_dir, chosen=second, rejected=first,
                                                    n=max(q2_pos), seed=lay.seed,
                                                    unpaired=unpaired)))
        inv_data = DataSpec(dataset=f"json:{plan.run_dir / pairs / layout.PAIRS}")
        deps = [*deps, pairs]
    # Nested: one inverse run per Q1 slice saves every Q2; else one run per point.
    runs = [(lay.inverse(q1), q2_pos)] if nested else [(lay.inverse(q1, q2), [q2])
                                                       for q2 in q2_pos]
    for inv, save_at in runs:
        _add_train(plan, exp, inv, model_path=slice_q1, model_cfg=slice_cfg, data=inv_data,
                   save_at=save_at, seed=lay.seed, deps=deps, method=s2.inverse_method,
                   extra=s2.inverse_train, produced=inv_data is not second,
                   reward=s2.inverse_reward)
        for q2 in save_at:
            _add_eval(plan, exp, lay.point(q1, q2),
                      {"model": lay.model or exp.model.name_or_path, "seed": lay.seed,
                       "q1": q1, "q2": q2},
                      model_stage=inv, model_path=layout.slice_of(inv, q2), forward=fwd,
                      theta0=theta0)


# --------------------------------------------------------------------------------------------
# Setting I


def plan_setting1(plan: Plan, exp: ExperimentRecipe) -> dict[str, Any]:
    s1 = exp.setting1
    assert s1 is not None
    pairs = [(k, l) for i, k in enumerate(s1.slices) for l in s1.slices[i + 1 :]]  # noqa: E741
    prompts = s1.responses or exp.eval.prompts
    for seed in exp.seeds:
        lay = SeedLayout(seed)
        sft = _add_train(plan, exp, lay.slices(), model_path=None,
                         model_cfg=_base_model_config(exp), data=s1.data, save_at=s1.slices,
                         seed=seed, deps=[])
        for k in s1.slices:
            model = layout.slice_of(sft, k)
            gen = layout.eval_stage(lay.responses(k), layout.GENERATE)
            plan.add(Stage(gen, "generate",
                           {"model": model, "seed": seed,
                            "prompts": steps.data_config(prompts),
                            "generation": exp.eval.generation.model_dump(exclude_defaults=True)},
                           steps.generate_stage(plan.run_dir, exp, model_path=model, seed=seed,
                                                prompts=prompts),
                           deps=[sft]))
            plan.add(Stage(f"{lay.responses(k)}/data", "data", {"from": gen},
                           steps.responses_dataset_stage(plan.run_dir, generations_stage=gen),
                           deps=[gen]))
        for k, l in pairs:  # noqa: E741
            for direction, src, dst in (("forward", k, l), ("inverse", l, k)):
                data_stage = f"{lay.responses(dst)}/data"
                data = DataSpec(
                    dataset=f"json:{plan.run_dir / data_stage / layout.RESPONSES}",
                    num_samples=s1.pair_samples, seed=seed,
                )
                model = layout.slice_of(sft, src)
                name = _add_train(plan, exp, lay.pair(direction, src, dst), model_path=model,
                                  model_cfg=model, data=data, save_at=[], seed=seed,
                                  deps=[sft, data_stage], train_samples=s1.pair_samples or 0,
                                  measure_target=True, produced=True)
                plan.pairs.append(PairRun({"seed": seed, "direction": direction, "k": k,
                                           "l": l, "src": src, "dst": dst}, name))
    return {"pairs": [list(p) for p in pairs], "train_samples": max(s1.slices) * len(exp.seeds)}


# --------------------------------------------------------------------------------------------
# Setting III


def plan_setting3(plan: Plan, exp: ExperimentRecipe) -> dict[str, Any]:
    s3 = exp.setting3
    assert s3 is not None
    out: dict[str, Any] = {"models": {}}
    for entry in s3.models:
        sub = exp.model_copy(update={"model": entry.model})
        out["models"][entry.label] = plan_setting2(plan, sub, model_label=entry.label)
    return out


def build_plan(exp: ExperimentRecipe, run_dir: Path) -> tuple[Plan, dict[str, Any]]:
    plan = Plan(run_dir)
    builders = {"setting1": plan_setting1, "setting2": plan_setting2, "setting3": plan_setting3}
    info = builders[exp.experiment](plan, exp)
    return plan, info
