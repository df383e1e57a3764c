"""`resistkit train`: fine-tuning through TRL's own trainers, with slices and resumption.

Reading order: ``train()`` → ``load_training_data()`` → tokenizer/model → ``build_trainer_config()``
→ the method's TRL trainer (``resistkit.training.methods``) →
``trainer.train(resume_from_checkpoint=...)``. resistkit adds two callbacks (slices, JSONL log)
and nothing that changes the optimisation itself.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resistkit.errors import RecipeError, RunError
from resistkit.files import atomic_write_json, atomic_write_text, read_jsonl
from resistkit.models import is_tiny, spec_model, spec_tokenizer
from resistkit.recipes import Recipe, dump_recipe, nearest
from resistkit.runinfo import environment
from resistkit.training import common
from resistkit.training.callbacks import jsonl_log_callback, slice_callback
from resistkit.training.layout import (
    BASE_DIR,
    CHECKPOINTS_DIR,
    FINAL_DIR,
    log_file,
    manifest_file,
    slice_dir,
)
from resistkit.training.methods import get_method

if TYPE_CHECKING:
    from datasets import Dataset

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    final_dir: Path
    slices: dict[int, Path] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


def build_trainer_config(recipe: Recipe, run_dir: Path, num_samples: int) -> Any:
    method = get_method(recipe.method)
    values = common.device_defaults(recipe.model.dtype)
    values.update(method.defaults)
    values.update(seed=recipe.seed, data_seed=recipe.seed)
    if "gradient_checkpointing" in recipe.train:  # the deprecated alias loses to the new name
        values.pop("activation_checkpointing", None)
    values.update(recipe.train)
    if "save_steps" not in recipe.train:
        steps = max(1, num_samples // common.samples_per_step(values))
        values["save_steps"] = common.checkpoint_spacing(steps)
    values["output_dir"] = str(run_dir / CHECKPOINTS_DIR)
    return method.config_class()(**values)


def load_training_data(recipe: Recipe) -> Dataset:
    from resistkit.data import load_data
    from resistkit.prompts import to_trl_format

    assert recipe.data is not None  # preflight_train checked it
    spec = recipe.data
    method = get_method(recipe.method)
    num = spec.num_samples
    if num is None and recipe.save_at_samples:
        num = method.rows_for(recipe.save_at_samples[-1], recipe.train)
    ds = load_data(
        spec.dataset, split=spec.split, num_samples=num,
        seed=spec.seed if spec.seed is not None else recipe.seed,
        format=method.data_format, data_files=spec.data_files,
    )
    columns = method.columns(ds.column_names)
    if columns is not None:
        ds = ds.select_columns(columns)
    if method.prepare is not None:
        ds = method.prepare(ds)
    return to_trl_format(ds, recipe.prompt_format, recipe.prompt_template)


def write_run_info(recipe: Recipe, run_dir: Path, name: str = "train") -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / f"{name}_recipe.yaml", dump_recipe(recipe))
    atomic_write_json(run_dir / f"{name}_env.json", {**environment(), "seed": recipe.seed})


def ensure_tiny_base(recipe: Recipe, run_dir: Path, tokenizer: Any) -> Path:
    """Build a ``tiny`` model and save it to RUN/base once (rank 0); return its directory.

    DPO with ``ref_model=None`` reloads the reference from ``config._name_or_path`` and every
    slice should name a base it can be compared with, so a built model must live on disk. It
    is built before the trainer config switches on ``deepspeed.zero.Init``, so under ZeRO-3 it
    is saved whole, not as empty partitions.
    """
    base = run_dir / BASE_DIR
    if (base / "config.json").exists():
        return base
    if not common.is_main_process():
        common.wait_for_file(base / "config.json")
        return base
    model = spec_model(recipe.model, tokenizer, seed=recipe.seed)

    def save(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    common.save_atomically(base, save, main=True)
    return base


def load_base_model(recipe: Recipe, base: Path | None, tokenizer: Any) -> Any:
    """The model training starts from: the saved tiny base, or the recipe's model."""
    if base is None:
        return spec_model(recipe.model, tokenizer, seed=recipe.seed)
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(base, dtype="float32")


def _callbacks(recipe: Recipe, run_dir: Path, config: Any, holder: dict[str, Any]) -> list[Any]:
    per_step = common.samples_per_step(config.to_dict(), config.world_size)
    callbacks = [jsonl_log_callback(log_file(run_dir), per_step)]
    if recipe.save_at_samples:
        too_big = [n for n in recipe.save_at_samples if n > holder["num_samples"]]
        if too_big:
            raise RecipeError(recipe.output_dir, "save_at_samples",
                              f"{too_big} exceed the {holder['num_samples']} samples TRL kept to "
                              "train on")
        callbacks.append(slice_callback(holder, run_dir, recipe.save_at_samples, per_step))
        uneven = [n for n in recipe.save_at_samples if n % per_step]
        if uneven:
            log.warning(
                "save_at_samples %s are not multiples of the %d samples per optimizer step; "
                "those slices are saved at the first step past them (see slice.json)",
                uneven, per_step,
            )
    return callbacks


def _trainer(recipe: Recipe, model: Any, config: Any, dataset: Any, tokenizer: Any,
             callbacks: list[Any]) -> Any:
    method = get_method(recipe.method)
    peft_config = None
    if recipe.lora is not None:
        from peft import LoraConfig

        _check_lora_targets(recipe, model)
        peft_config = LoraConfig(task_type="CAUSAL_LM", **recipe.lora.model_dump())
    trainer = method.trainer_class()(
        model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
        callbacks=callbacks, peft_config=peft_config, **method.trainer_kwargs,
        **method.extras(recipe, tokenizer),
    )
    common.quiet_printer(trainer)
    return trainer


def _check_lora_targets(recipe: Recipe, model: Any) -> None:
    """Every named LoRA target matches a module of the model (PEFT matches a name or a
    name's last parts), else one line naming the key and the model's linear layers."""
    import torch

    targets = recipe.lora.target_modules if recipe.lora is not None else "all-linear"
    if isinstance(targets, str):
        return  # "all-linear" or a regular expression: PEFT's own rules
    names = [n for n, _ in model.named_modules() if n]
    missing = [t for t in targets if not any(n == t or n.endswith(f".{t}") for n in names)]
    if missing:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                         if isinstance(m, torch.nn.Linear)})
        raise RecipeError(recipe.origin, "lora.target_modules", f"{missing[0]!r} matches no "
                          f"module of this model; its linear layers: {', '.join(linear)}",
                          nearest(missing[0], linear))


def train(recipe: Recipe, *, resume: bool = True, progress: bool = True, force: bool = False,
          source: str | None = None) -> TrainResult:
    """Run one training stage described by ``recipe``; return where its outputs are.

    A directory holding a run of another recipe or other inputs is refused (``force``: train
    again from scratch); every input is checked before anything is written (``source`` names
    the recipe in errors).
    """
    from transformers import set_seed

    from resistkit.training.preflight import preflight_train
    from resistkit.training.provenance import check_provenance, write_provenance

    source = source or recipe.origin
    run_dir = Path(recipe.output_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RecipeError(source, "output_dir", f"{run_dir} is a file; give a directory")
    record = check_provenance(recipe, run_dir, force=force)
    final_dir = run_dir / FINAL_DIR
    done = common.finished(manifest_file(run_dir), final_dir)
    if done is not None:
        log.info("training already complete in %s", run_dir)
        return TrainResult(run_dir, final_dir,
                           {int(k): Path(v) for k, v in done["slices"].items()}, done["metrics"])
    for note in preflight_train(recipe, source):
        log.warning(note)
    main = common.is_main_process()
    if main:
        write_run_info(recipe, run_dir)
        write_provenance(run_dir, record)
    set_seed(recipe.seed)
    return _run(recipe, run_dir, resume=resume, progress=progress)


def _run(recipe: Recipe, run_dir: Path, *, resume: bool, progress: bool) -> TrainResult:
    dataset = load_training_data(recipe)
    # DPO pads prompts on the left itself; SFT's collator wants right padding.
    tokenizer = spec_tokenizer(recipe.model, padding_side="right")
    tiny = is_tiny(recipe.model.name_or_path)
    base = ensure_tiny_base(recipe, run_dir, tokenizer) if tiny else None
    # The config first: under accelerate + ZeRO-3 it switches on deepspeed.zero.Init, so the
    # model below is loaded already sharded instead of whole on every rank.
    config = build_trainer_config(recipe, run_dir, len(dataset))
    model = load_base_model(recipe, base, tokenizer)
    holder: dict[str, Any] = {"num_samples": len(dataset)}
    trainer = _trainer(recipe, model, config, dataset, tokenizer,
                       common.progress_callbacks(config, recipe.train, progress))
    # TRL drops rows it cannot train on (a prompt filling max_length); the data the run
    # consumes is what is left, and the volumes must come from it.
    holder["num_samples"] = len(trainer.train_dataset) * get_method(recipe.method) \
        .samples_per_row(recipe.train)
    callbacks = _callbacks(recipe, run_dir, config, holder)
    for callback in callbacks:
        trainer.add_callback(callback)
    holder["trainer"] = trainer

    last = common.resume_point(run_dir / CHECKPOINTS_DIR, log_file(run_dir), resume=resume,
                               main=trainer.is_world_process_zero())
    result = trainer.train(resume_from_checkpoint=str(last) if last else None)
    _stop_if_diverged(recipe, run_dir, callbacks[0].diverged)
    common.save_atomically(run_dir / FINAL_DIR, lambda tmp: trainer.save_model(str(tmp)),
                           main=trainer.is_world_process_zero())
    slices = {n: slice_dir(run_dir, n) for n in recipe.save_at_samples}
    metrics = whole_run_metrics(run_dir, trainer, result.metrics, recipe.save_at_samples,
                                get_method(recipe.method).samples_per_row(recipe.train))
    if trainer.is_world_process_zero():
        trainer.save_state()
        _write_manifest(recipe, run_dir, trainer, slices, metrics)
    trainer.accelerator.wait_for_everyone()
    return TrainResult(run_dir, run_dir / FINAL_DIR, slices, metrics)


def _stop_if_diverged(recipe: Recipe, run_dir: Path,
                      diverged: tuple[int, str] | None) -> None:
    """A loss (or gradient norm) that became NaN or infinite stops the run before its final
    model and manifest are written, so the stage is never taken for done."""
    if diverged is None:
        return
    step, what = diverged
    lr = recipe.train.get("learning_rate", "the default")
    raise RunError(f"{run_dir}: the training {what} at step {step}; the run "
                   f"diverged and is not marked done: lower train.learning_rate (now {lr}) "
                   "and train again from scratch (--force)")


def whole_run_metrics(run_dir: Path, trainer: Any, session: dict[str, Any],
                      save_at: list[int], samples_per_row: int = 1) -> dict[str, Any]:
    """Figures of the whole run, counted from what it consumed and logged, not from trainer
    counters that restart with a resumed session (those stay under ``session``)."""
    steps = [r for r in read_jsonl(log_file(run_dir)) if "loss" in r]
    total, weight, previous = 0.0, 0, 0
    for row in steps:  # a logged loss is the mean over the steps since the last log
        total += row["loss"] * (row["step"] - previous)
        weight += row["step"] - previous
        previous = row["step"]
    rows = len(trainer.train_dataset)
    # The first n samples are the first n rows only when rows are read in order.
    ordered = getattr(trainer.args, "train_sampling_strategy", "random") == "sequential"
    counts = [*save_at, rows] if ordered else [rows]
    return {
        "train_loss": total / weight if weight else None,
        "train_samples": rows * samples_per_row,
        "tokens_at_samples": tokens_at_samples(trainer.train_dataset, counts),
        "global_step": trainer.state.global_step,
        "session": dict(session),
    }


def tokens_at_samples(dataset: Any, counts: list[int]) -> dict[str, int] | None:
    """Tokens in the first n training rows, for each n: the alignment volume in tokens, counted
    from the data itself (prefixes are meaningful when rows are read in order)."""
    if "input_ids" not in dataset.column_names:
        return None  # preference data: three sequences per row, no single volume
    lengths = [len(ids) for ids in dataset["input_ids"]]
    total, rows = sum(lengths), len(lengths)
    # Past one epoch the rows come round again: whole epochs, then a prefix of the next.
    return {str(n): (n // rows) * total + sum(lengths[: n % rows]) for n in counts}


def _write_manifest(recipe: Recipe, run_dir: Path, trainer: Any, slices: dict[int, Path],
                    metrics: dict[str, Any]) -> None:
    atomic_write_json(manifest_file(run_dir), {
        "method": recipe.method,
        "seed": recipe.seed,
        "final": str(run_dir / FINAL_DIR),
        "slices": {str(k): str(v) for k, v in slices.items()},
        "metrics": metrics,
        "samples_per_step": common.samples_per_step(trainer.args.to_dict(),
                                                    trainer.args.world_size),
        # How it ran: "NO" in-process, MULTI_CPU/MULTI_GPU/DEEPSPEED/FSDP under a launch.
        "distributed_type": str(trainer.accelerator.distributed_type.value),
        "num_processes": trainer.accelerator.num_processes,
    })


def read_losses(run_dir: str | Path) -> list[float]:
    """Per-step training losses from a run's JSONL log."""
    return [r["loss"] for r in read_jsonl(log_file(run_dir)) if "loss" in r]


def clear_checkpoints(run_dir: Path) -> None:
    """Trainer checkpoints exist for resumption; once a run is complete they are only disk
    (1.6 GB each for a 135M model with its optimizer state)."""
    shutil.rmtree(run_dir / CHECKPOINTS_DIR, ignore_errors=True)
