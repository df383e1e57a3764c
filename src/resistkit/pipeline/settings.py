"""Expanding an experiment recipe into stages: Settings I, II and III.

Setting II with a nested schedule (constant LR, one epoch): one forward run saves every Q1
slice and one inverse run per slice saves every Q2 point — the same numbers as separate runs,
because the first n rows of a seeded permutation are a shorter run's rows and a constant
schedule does not depend on the run's length. Otherwise every point is its own run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resistkit.pipeline import steps
from resistkit.pipeline.runner import Plan, Stage
from resistkit.pipeline.schema import ExperimentRecipe
from resistkit.recipes import DataSpec


@dataclass
class Point:
    """One checkpoint that is generated from and scored."""

    label: dict[str, Any]  # e.g. {"seed": 42, "q1": 100, "q2": 50}
    model_stage: str | None  # the stage that trains the checkpoint; None = the base model
    stage_prefix: str


def _train_config(exp: ExperimentRecipe, model: Any, data: DataSpec, save_at: list[int],
                  seed: int, method: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": model, "data": data.model_dump(exclude_defaults=True), "save_at": save_at,
        "seed": seed,
        "method": method, "train": {**steps.SEQUENTIAL, **exp.train, **extra},
        "lora": exp.lora.model_dump(exclude_defaults=True) if exp.lora else None,
        "prompt_format": exp.prompt_format, "prompt_template": exp.prompt_template,
    }


def _base_model_config(exp: ExperimentRecipe) -> dict[str, Any]:
    # Non-default settings only: a field added to the schema later leaves fingerprints alone.
    return exp.model.model_dump(exclude_defaults=True)


def _add_eval(plan: Plan, exp: ExperimentRecipe, point: Point, seed: int,
              model_path: str | None) -> None:
    """generate → score (→ compression) for one checkpoint."""
    gen_name = f"{point.stage_prefix}/generate"
    deps = [point.model_stage] if point.model_stage else []
    gen_cfg = {"model": model_path or _base_model_config(exp), "seed": seed,
               "prompts": exp.eval.prompts.model_dump(exclude_defaults=True),
               "generation": exp.eval.generation.model_dump(exclude_defaults=True),
               "prompt_format": exp.prompt_format, "prompt_template": exp.prompt_template}
    plan.add(Stage(gen_name, "generate", gen_cfg,
                   steps.generate_stage(plan.run_dir, exp, model_path=model_path, seed=seed),
                   deps=deps))
    plan.add(Stage(f"{point.stage_prefix}/score", "score",
                   {"scorers": exp.eval.scorers, "options": exp.eval.scorer_options,
                    "point": point.label},
                   steps.score_stage(plan.run_dir, exp, generations_stage=gen_name),
                   deps=[gen_name]))
    if exp.eval.compression:
        plan.add(Stage(f"{point.stage_prefix}/compression", "eval",
                       {"model": model_path or _base_model_config(exp),
                        "datasets": [d.model_dump(exclude_defaults=True)
                                     for d in exp.eval.compression]},
                       steps.compression_stage(plan.run_dir, exp, model_path=model_path),
                       deps=deps))


def slice_path(stage_name: str, samples: int) -> str:
    from resistkit.train import slice_dir

    return str(slice_dir(Path(stage_name), samples))


# --------------------------------------------------------------------------------------------
# Setting II


def plan_setting2(plan: Plan, exp: ExperimentRecipe, prefix: str = "") -> dict[str, Any]:
    """Stages for one base model; returns the nesting decision and training-sample totals."""
    s2 = exp.setting2
    assert s2 is not None
    first, second = (s2.negative, s2.positive) if s2.reverse else (s2.positive, s2.negative)
    processes = exp.launch.num_processes if exp.launch is not None else 1
    batch = steps.samples_per_step(exp.train) * processes
    inv_fields = {**exp.train, **s2.inverse_train}
    ok_fwd, why_fwd = steps.is_nestable(exp.train, s2.q1, batch)
    q2_pos = [q for q in s2.q2 if q > 0]
    ok_inv, why_inv = steps.is_nestable(inv_fields, q2_pos,
                                        steps.samples_per_step(inv_fields) * processes)
    want = {"always": True, "never": False}.get(s2.nested)
    nested = (ok_fwd and ok_inv) if want is None else want
    reason = why_fwd if not ok_fwd else why_inv if not ok_inv else f"{why_fwd}; inverse: {why_inv}"
    naive = sum(s2.q1) + len(s2.q1) * sum(q2_pos)
    nested_total = max(s2.q1) + len(s2.q1) * (max(q2_pos) if q2_pos else 0)

    for seed in exp.seeds:
        root = f"{prefix}seed-{seed}"
        # The domain control (optional): a first SFT on mixed-polarity data, so the baseline
        # and every Q1 slice share the task's style and differ only in its sentiment.
        start, start_cfg, start_deps = None, _base_model_config(exp), []
        if s2.control is not None:
            ctl = f"{root}/train/control"
            plan.add(Stage(ctl, "train",
                           _train_config(exp, start_cfg, s2.control, [], seed, "sft", {}),
                           steps.train_stage(plan.run_dir, exp, model_path=None,
                                             data=s2.control, save_at=[], seed=seed),
                           train_samples=s2.control.num_samples or 0))
            start, start_cfg, start_deps = f"{ctl}/final", f"{ctl}/final", [ctl]
        _add_eval(plan, exp, Point({"seed": seed, "q1": 0, "q2": 0},
                                   start_deps[0] if start_deps else None,
                                   f"{root}/points/base"), seed, start)
        for q1 in s2.q1:
            if nested:
                fwd = f"{root}/train/forward"
                plan.add(Stage(fwd, "train",
                               _train_config(exp, start_cfg, first, s2.q1, seed,
                                             "sft", {}),
                               steps.train_stage(plan.run_dir, exp, model_path=start,
                                                 data=first, save_at=s2.q1, seed=seed),
                               deps=start_deps, train_samples=max(s2.q1)))
            else:
                fwd = f"{root}/train/forward-q1-{q1}"
                plan.add(Stage(fwd, "train",
                               _train_config(exp, start_cfg, first, [q1], seed,
                                             "sft", {}),
                               steps.train_stage(plan.run_dir, exp, model_path=start,
                                                 data=first, save_at=[q1], seed=seed),
                               deps=start_deps, train_samples=q1))
            slice_q1 = slice_path(fwd, q1)
            point_root = f"{root}/points/q1-{q1}"
            if 0 in s2.q2:
                _add_eval(plan, exp, Point({"seed": seed, "q1": q1, "q2": 0}, fwd,
                                           f"{point_root}/q2-0"), seed, slice_q1)
            if not q2_pos:
                continue
            inv_data, deps = second, [fwd]
            if s2.inverse_method == "dpo":
                pairs = f"{root}/data/inverse-pairs"
                plan.add(Stage(pairs, "data",
                               {"chosen": second.model_dump(exclude_defaults=True),
                                "rejected": first.model_dump(exclude_defaults=True),
                                "n": max(q2_pos), "seed": seed},
                               steps.preference_pairs_stage(plan.run_dir, chosen=second,
                                                            rejected=first, n=max(q2_pos),
                                                            seed=seed)))
                inv_data = DataSpec(dataset=f"json:{plan.run_dir / pairs / 'pairs.jsonl'}")
                deps = [fwd, pairs]
            # Nested: one inverse run per Q1 slice saves every Q2; else one run per point.
            runs = ([(f"{root}/train/inverse-q1-{q1}", q2_pos)] if nested else
                    [(f"{root}/train/inverse-q1-{q1}-q2-{q2}", [q2]) for q2 in q2_pos])
            for inv, save_at in runs:
                plan.add(Stage(inv, "train",
                               _train_config(exp, slice_q1, inv_data, save_at, seed,
                                             s2.inverse_method, s2.inverse_train),
                               steps.train_stage(plan.run_dir, exp, model_path=slice_q1,
                                                 data=inv_data, save_at=save_at, seed=seed,
                                                 method=s2.inverse_method,
                                                 extra_train=s2.inverse_train),
                               deps=deps, train_samples=max(save_at)))
                for q2_point in save_at:
                    _add_eval(plan, exp,
                              Point({"seed": seed, "q1": q1, "q2": q2_point}, inv,
                                    f"{point_root}/q2-{q2_point}"),
                              seed, slice_path(inv, q2_point))
    return {"nested": nested, "nested_reason": reason,
            "train_samples_naive": naive * len(exp.seeds),
            "train_samples_nested": nested_total * len(exp.seeds)}


# --------------------------------------------------------------------------------------------
# Setting I


def plan_setting1(plan: Plan, exp: ExperimentRecipe) -> dict[str, Any]:
    s1 = exp.setting1
    assert s1 is not None
    pairs = [(k, l) for i, k in enumerate(s1.slices) for l in s1.slices[i + 1 :]]  # noqa: E741
    total = 0
    for seed in exp.seeds:
        root = f"seed-{seed}"
        sft = f"{root}/train/slices"
        plan.add(Stage(sft, "train",
                       _train_config(exp, _base_model_config(exp), s1.data, s1.slices, seed,
                                     "sft", {}),
                       steps.train_stage(plan.run_dir, exp, model_path=None, data=s1.data,
                                         save_at=s1.slices, seed=seed),
                       train_samples=max(s1.slices)))
        total += max(s1.slices)
        prompts = s1.responses or exp.eval.prompts
        for k in s1.slices:
            model = slice_path(sft, k)
            gen = f"{root}/responses/theta-{k}/generate"
            plan.add(Stage(gen, "generate",
                           {"model": model, "seed": seed,
                            "prompts": prompts.model_dump(exclude_defaults=True),
                            "generation": exp.eval.generation.model_dump(exclude_defaults=True)},
                           steps.generate_stage(plan.run_dir, exp, model_path=model, seed=seed,
                                                prompts=prompts),
                           deps=[sft]))
            plan.add(Stage(f"{root}/responses/theta-{k}/data", "data", {"from": gen},
                           steps.responses_dataset_stage(plan.run_dir, generations_stage=gen),
                           deps=[gen]))
        n = s1.pair_samples
        for k, l in pairs:  # noqa: E741
            for direction, src, dst in (("forward", k, l), ("inverse", l, k)):
                data_stage = f"{root}/responses/theta-{dst}/data"
                data = DataSpec(
                    dataset=f"json:{plan.run_dir / data_stage / 'dataset.jsonl'}",
                    num_samples=n, seed=seed,
                )
                name = f"{root}/pairs/{direction}-{src}-to-{dst}"
                model = slice_path(sft, src)
                plan.add(Stage(name, "train",
                               _train_config(exp, model, data, [], seed, "sft", {}),
                               steps.train_stage(plan.run_dir, exp, model_path=model, data=data,
                                                 save_at=[], seed=seed, measure_target=True),
                               deps=[sft, data_stage], train_samples=n or 0))
    return {"pairs": [list(p) for p in pairs], "train_samples": total}


# --------------------------------------------------------------------------------------------
# Setting III


def plan_setting3(plan: Plan, exp: ExperimentRecipe) -> dict[str, Any]:
    s3 = exp.setting3
    assert s3 is not None
    out: dict[str, Any] = {"models": {}}
    for entry in s3.models:
        sub = exp.model_copy(update={"model": entry.model})
        out["models"][entry.label] = plan_setting2(plan, sub, prefix=f"models/{entry.label}/")
    return out


def build_plan(exp: ExperimentRecipe, run_dir: Path) -> tuple[Plan, dict[str, Any]]:
    plan = Plan(run_dir)
    builders = {"setting1": plan_setting1, "setting2": plan_setting2, "setting3": plan_setting3}
    info = builders[exp.experiment](plan, exp)
    return plan, info
