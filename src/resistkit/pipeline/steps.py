"""The work a stage does: train, generate, score, measure compression, turn responses into data.

Each function takes the stage directory and returns the outputs recorded in its manifest.
Paths in outputs are relative to the run directory, so a run directory can be moved.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from resistkit.models import is_tiny
from resistkit.pipeline import layout
from resistkit.pipeline.schema import ExperimentRecipe
from resistkit.recipes import DataSpec, ModelSpec, Recipe, RewardSpec, applicable_fields

log = logging.getLogger(__name__)

# Nested schedules need the trainer to read rows in the order of the seeded permutation that
# `load_data` made, so that the first n rows of a longer run are exactly a shorter run's rows.
SEQUENTIAL = {"train_sampling_strategy": "sequential"}


def stage_train_fields(exp: ExperimentRecipe, method: str,
                       extra: dict[str, Any] | None) -> dict[str, Any]:
    """A training stage's TRL fields: sequential sampling, the experiment's ``train:`` where
    the method's config has the field, then the stage's own (e.g. ``inverse_train``)."""
    from resistkit.training.methods import get_method

    # GRPO's sampler shuffles prompts unless told not to; rollouts are seeded per step, so
    # with the stored order a nested run equals separate runs here too.
    order = {**SEQUENTIAL, "shuffle_dataset": False} if get_method(method).reward else SEQUENTIAL
    return {**order, **applicable_fields(exp.train, method), **(extra or {})}


def model_spec_for(exp: ExperimentRecipe, path: str | None) -> ModelSpec:
    """The experiment's base-model spec, or a trained checkpoint directory."""
    if path is None:
        return exp.model
    return ModelSpec(name_or_path=path, dtype=exp.model.dtype)


def is_nestable(train_fields: dict[str, Any], volumes: list[int], batch: int) -> tuple[bool, str]:
    """Whether one run with slices equals separate runs per volume (constant LR, one epoch).

    Volumes off the step grid still nest, but their slices land on the first step past them
    (``slice.json`` records the samples actually seen); the reason says so.
    """
    schedule = train_fields.get("lr_scheduler_type", "linear")
    if schedule not in ("constant", "constant_with_warmup"):
        return False, f"lr_scheduler_type={schedule} is not constant"
    if train_fields.get("warmup_steps", 0) not in (0, 0.0):
        return False, "warm-up makes the learning rate depend on the run length"
    if train_fields.get("num_train_epochs", 1) != 1 or train_fields.get("max_steps", -1) > 0:
        return False, "not a single epoch"
    uneven = [v for v in volumes if v % batch]
    if uneven:
        rounded = ", ".join(f"{v}->{-(-v // batch) * batch}" for v in uneven)
        return True, (f"constant LR, one epoch; slices off the {batch}-sample step grid are "
                      f"taken at the next step ({rounded})")
    return True, "constant LR, one epoch, volumes on step boundaries"


def samples_per_step(train_fields: dict[str, Any]) -> int:
    return int(train_fields.get("per_device_train_batch_size", 8)) * int(
        train_fields.get("gradient_accumulation_steps", 1)
    )


def train_stage(
    run_dir: Path,
    exp: ExperimentRecipe,
    *,
    model_path: str | None,
    data: DataSpec,
    save_at: list[int],
    seed: int,
    method: str = "sft",
    extra_train: dict[str, Any] | None = None,
    measure_target: bool = False,
    reward: RewardSpec | None = None,
) -> Any:
    """A closure that trains ``model_path`` (None = base) on ``data`` and saves slices.

    ``measure_target`` adds the trained model's cross-entropy (nats/token) on its training
    set, Setting I's "final loss on the target set".
    """

    def run(stage_dir: Path) -> dict[str, Any]:
        from resistkit.training.train import clear_checkpoints, train

        spec = model_spec_for(exp, None if model_path is None else str(run_dir / model_path))
        if model_path is None and is_tiny(spec.name_or_path):
            spec = spec.model_copy(update={"init_seed": spec.init_seed or seed})
        from resistkit.training.methods import get_method

        fields = stage_train_fields(exp, method, extra_train)
        rows = get_method(method).rows_for(save_at[-1], fields) if save_at else None
        recipe = Recipe(
            seed=seed,
            output_dir=str(stage_dir),
            method=method,  # type: ignore[arg-type]
            model=spec,
            prompt_format=exp.prompt_format,
            prompt_template=exp.prompt_template,
            data=data.model_copy(update={"num_samples": data.num_samples or rows}),
            save_at_samples=save_at,
            lora=exp.lora,
            train=fields,
            reward=reward,
        )
        # With `launch:` the stage trains in accelerate-launched subprocesses (multi-GPU).
        result = train(recipe, source=exp.origin) if exp.launch is None \
            else launched_train(stage_dir, recipe, exp)
        clear_checkpoints(stage_dir)
        rel = {n: str(p.relative_to(run_dir)) for n, p in result.slices.items()}
        extra: dict[str, Any] = {}
        if measure_target:
            extra["target_loss"] = _target_loss(stage_dir, recipe, str(result.final_dir))
        return {
            **extra,
            "slices": {str(n): p for n, p in rel.items()},
            "final": str(result.final_dir.relative_to(run_dir)),
            "train_loss": result.metrics.get("train_loss"),
            "tokens_at_samples": result.metrics.get("tokens_at_samples"),
            "losses": _losses(stage_dir),
        }

    return run


def launched_train(stage_dir: Path, recipe: Recipe, exp: ExperimentRecipe) -> Any:
    """``train(recipe)`` as a subprocess under `accelerate launch` (``exp.launch``).

    The stage recipe is written to the stage directory and the outputs are read back from the
    files the in-process path writes too (``train_manifest.json``, slices, the JSONL log).
    """
    from resistkit.files import read_json
    from resistkit.launch import launch_train, write_stage_recipe
    from resistkit.training.layout import manifest_file
    from resistkit.training.train import TrainResult

    launch = exp.launch
    assert launch is not None
    path = write_stage_recipe(recipe, stage_dir / "stage_recipe.yaml")
    code = launch_train(path, accelerate_config=launch.accelerate_config,
                        num_processes=launch.num_processes, launch_args=launch.launch_args)
    manifest_path = manifest_file(stage_dir)
    if code != 0 or not manifest_path.exists():
        raise RuntimeError(f"training stage {stage_dir} failed under accelerate launch "
                           f"(exit status {code}); its output is above, its files in {stage_dir}")
    manifest = read_json(manifest_path)
    return TrainResult(stage_dir, Path(manifest["final"]),
                       {int(k): Path(v) for k, v in manifest["slices"].items()},
                       manifest["metrics"])


def _target_loss(stage_dir: Path, recipe: Recipe, model: str) -> float:
    import math

    from resistkit.models import clear_model_cache
    from resistkit.scoring.stage import run_score

    assert recipe.data is not None
    # Through the data registry, so the scored rows are exactly the rows trained on.
    result = run_score(
        recipe.data.dataset, ["compression"], num_samples=recipe.data.num_samples,
        seed=recipe.data.seed if recipe.data.seed is not None else recipe.seed,
        output=stage_dir / "target.scores.jsonl", summary_output=stage_dir / "target.summary.json",
        model=model,
    )
    clear_model_cache()
    return result.summary["scorers"]["compression"]["corpus"]["bits_per_token"] * math.log(2)


def _losses(stage_dir: Path) -> list[dict[str, float]]:
    from resistkit.files import read_jsonl
    from resistkit.training.layout import log_file

    return [{"step": r["step"], "samples": r["samples"], "loss": r["loss"]}
            for r in read_jsonl(log_file(stage_dir)) if "loss" in r]


def resolve_model(run_dir: Path, exp: ExperimentRecipe, model_path: str | None) -> str:
    """The local directory (or hub id) of a checkpoint in the run, or of the base model."""
    if model_path is not None:
        return str(run_dir / model_path)
    from resistkit.models import resolve_spec

    return resolve_spec(exp.model).path


def generate_stage(
    run_dir: Path, exp: ExperimentRecipe, *, model_path: str | None, seed: int,
    prompts: DataSpec | None = None,
) -> Any:
    """Sample the eval prompts from a checkpoint (None = the base model)."""

    def run(stage_dir: Path) -> dict[str, Any]:
        from resistkit.generation import generate_prompt_set

        spec = exp.model if model_path is None else model_spec_for(exp, str(run_dir / model_path))
        out = generate_prompt_set(
            spec, prompts or exp.eval.prompts, exp.eval.generation, stage_dir / layout.GENERATIONS,
            prompt_format=exp.prompt_format, prompt_template=exp.prompt_template,
            decode_seed=seed, data_seed=0, record_model=model_path or exp.model.name_or_path,
            progress=True,
        )
        return {"generations": str(out.relative_to(run_dir))}

    return run


def score_stage(run_dir: Path, *, generations_stage: str, scorers: list[str],
                options: dict[str, Any]) -> Any:
    """Score a generate stage's samples with ``scorers`` and their ``options`` (eval.scorers
    and eval.scorer_options, or a further prompt set's own)."""

    def run(stage_dir: Path) -> dict[str, Any]:
        from resistkit.models import clear_model_cache
        from resistkit.scoring.stage import run_score

        source = run_dir / generations_stage / layout.GENERATIONS
        from resistkit.judge import ensure_judges

        # A pipeline may build an offline judge once (minutes); `score` alone never does.
        with_judges = ensure_judges(scorers, options)
        result = run_score(
            source, scorers, output=stage_dir / layout.SCORES,
            summary_output=stage_dir / layout.SUMMARY, progress=True, **with_judges,
        )
        clear_model_cache()  # a pipeline scores many checkpoints; keep one in memory at most
        return {"summary": str(result.summary_path.relative_to(run_dir)),
                "columns": _column_stats(result.summary)}

    return run


def compression_stage(run_dir: Path, exp: ExperimentRecipe, *, model_path: str | None) -> Any:
    """Bits per token / byte of each `eval.compression` dataset under a checkpoint."""

    def run(stage_dir: Path) -> dict[str, Any]:
        from resistkit.models import clear_model_cache
        from resistkit.scoring.stage import run_score

        model = resolve_model(run_dir, exp, model_path)
        out: dict[str, Any] = {}
        for i, spec in enumerate(exp.eval.compression):
            result = run_score(
                spec.dataset, ["compression"], split=spec.split, num_samples=spec.num_samples,
                seed=spec.seed if spec.seed is not None else 0,
                output=stage_dir / layout.compression_scores(i),
                summary_output=stage_dir / layout.compression_summary(i), model=model,
                progress=True, response_column=spec.column,
                **prompt_rendering(exp, model),
            )
            corpus = result.summary["scorers"]["compression"]["corpus"]
            out[spec.key] = {
                "bits_per_token": corpus["bits_per_token"],
                "bits_per_byte": corpus["bits_per_byte"],
                "tokens": corpus["tokens"],
            }
        clear_model_cache()
        return {"compression": out}

    return run


def kl_stage(run_dir: Path, exp: ExperimentRecipe, *, model_path: str | None,
             reference: str | None) -> Any:
    """KL(checkpoint ‖ θ0) per token on ``eval.kl`` (response tokens only), both models' log-
    probs from one forward pass each per batch."""

    def run(stage_dir: Path) -> dict[str, Any]:
        from resistkit.models import clear_model_cache
        from resistkit.scoring.stage import run_score

        spec = exp.eval.kl
        assert spec is not None
        result = run_score(
            spec.dataset, ["kl"], split=spec.split, num_samples=spec.num_samples,
            seed=spec.seed if spec.seed is not None else 0,
            output=stage_dir / layout.KL_SCORES, summary_output=stage_dir / layout.KL_SUMMARY,
            model=resolve_model(run_dir, exp, model_path),
            ref_model=resolve_model(run_dir, exp, reference), progress=True,
            **prompt_rendering(exp, resolve_model(run_dir, exp, model_path)),
        )
        clear_model_cache()
        corpus = result.summary["scorers"]["kl"]["corpus"]
        return {"kl": corpus["kl_model_ref"], "kl_reverse": corpus["kl_ref_model"],
                "tokens": corpus["tokens"]}

    return run


def responses_dataset_stage(run_dir: Path, *, generations_stage: str) -> Any:
    """Setting I's D_k: a slice's responses as prompt/completion training data."""

    def run(stage_dir: Path) -> dict[str, Any]:
        from resistkit.files import atomic_write_text

        rows = []
        src = run_dir / generations_stage / layout.GENERATIONS
        for line in src.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row["response"].strip():  # an empty response teaches nothing but EOS
                rows.append({"prompt": row["prompt"], "completion": row["response"]})
        path = stage_dir / layout.RESPONSES
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        return {"dataset": str(path.relative_to(run_dir)), "rows": len(rows),
                "empty_dropped": sum(1 for _ in src.open()) - len(rows)}

    return run


def preference_pairs_stage(run_dir: Path, *, chosen: DataSpec, rejected: DataSpec, n: int,
                           seed: int, unpaired: bool = False) -> Any:
    """Preference data for the inverse ablation: the inverse side's completion is chosen, the
    forward side's completion of another prompt is rejected, under the chosen row's prompt.
    ``unpaired`` (KTO): n rows alternating desirable (the inverse side, its own prompt) and
    undesirable (the forward side, its own prompt)."""

    def run(stage_dir: Path) -> dict[str, Any]:
        if unpaired:
            return _unpaired_rows(stage_dir)
        from resistkit.data import load_data

        good = load_data(chosen.dataset, split=chosen.split, num_samples=n,
                         seed=chosen.seed if chosen.seed is not None else seed,
                         format="prompt_completion")
        bad = load_data(rejected.dataset, split=rejected.split, num_samples=n,
                        seed=rejected.seed if rejected.seed is not None else seed,
                        format="prompt_completion")
        rows = [{"prompt": g["prompt"], "chosen": g["completion"], "rejected": b["completion"]}
                for g, b in zip(good, bad, strict=True)]
        return _write_rows(stage_dir, rows)

    def _unpaired_rows(stage_dir: Path) -> dict[str, Any]:
        from resistkit.data import load_data

        half = -(-n // 2)
        sides = []
        for spec, label in ((chosen, True), (rejected, False)):
            ds = load_data(spec.dataset, split=spec.split, num_samples=half,
                           seed=spec.seed if spec.seed is not None else seed,
                           format="prompt_completion")
            sides.append([{"prompt": r["prompt"], "completion": r["completion"], "label": label}
                          for r in ds])
        rows = [row for pair in zip(*sides, strict=True) for row in pair][:n]
        return _write_rows(stage_dir, rows)

    def _write_rows(stage_dir: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
        from resistkit.files import atomic_write_text

        path = stage_dir / layout.PAIRS
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        return {"dataset": str(path.relative_to(run_dir)), "rows": len(rows)}

    return run


def data_config(spec: DataSpec, *, produced: bool = False) -> dict[str, Any]:
    """A data spec as a stage fingerprint holds it: its settings and its content identity (a
    data file replaced at the same path makes the stage stale). Files the run ``produced``
    itself (DPO pairs, Setting I responses) are covered by the stage that wrote them."""
    from resistkit.data import data_identity

    config = spec.model_dump(exclude_defaults=True, exclude={"role"})
    if not produced:
        config["identity"] = data_identity(spec.dataset, spec.data_files)
    return config


def judge_config(scorers: list[str], options: dict[str, Any]) -> dict[str, Any]:
    """The judges a score stage loads, by identity, for its fingerprint: a built-in judge by
    its build id (bumped whenever its build recipe changes, so a rebuilt judge re-scores),
    a judge on disk by its content. Empty when no scorer loads a judge."""
    from resistkit.judge import task_for
    from resistkit.models import model_identity, resolve_model
    from resistkit.scoring import get_scorer

    judges: dict[str, Any] = {}
    for name in scorers:
        spec = get_scorer(name)
        for option in spec.judge_options:
            value = options.get(option) or spec.options.get(option)
            if not value:
                continue
            task = task_for(str(value))
            judges[f"{name}.{option}"] = task.judge_id if task is not None else \
                model_identity(resolve_model(str(value)))
    return {"judges": judges} if judges else {}


def compression_config(spec: DataSpec) -> dict[str, Any]:
    """What a compression set's output depends on: its data, not the role the report gives it."""
    return data_config(spec)


def prompt_rendering(exp: ExperimentRecipe, model: str) -> dict[str, Any]:
    """Options that make a likelihood stage (compression, KL) condition each response on its
    prompt as the model saw it in training and generation: in ``prompt_format`` (the chat
    template, say), tokenised without added special tokens as generation does. None for
    ``continuation``, where the raw prompt is the text (the stored behaviour)."""
    if exp.prompt_format == "continuation":
        return {}
    from resistkit.models import load_tokenizer
    from resistkit.prompts import render_prompt

    tokenizer = load_tokenizer(model, cache=True)
    return {"render_prompt": lambda p: render_prompt(p, exp.prompt_format, tokenizer,
                                                     exp.prompt_template),
            "prompt_special_tokens": False}


def likelihood_format(exp: ExperimentRecipe) -> dict[str, Any]:
    """The prompt format's part of a compression or KL stage's fingerprint: empty for
    ``continuation`` (so stages measured before formats applied keep their fingerprints)."""
    if exp.prompt_format == "continuation":
        return {}
    return {"prompt_format": exp.prompt_format, "prompt_template": exp.prompt_template}


def _column_stats(summary: dict[str, Any]) -> dict[str, Any]:
    keep = ("n", "nan", "mean", "std", "ci95")
    return {
        name: {k: col.get(k) for k in keep}
        for name, col in summary["columns"].items()
        if not col.get("auxiliary")
    }
