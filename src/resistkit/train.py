"""`resistkit train`: SFT or DPO through TRL's own trainers, with slices and resumption.

Reading order: ``train()`` → data → tokenizer/model → ``build_trainer_config()`` →
``SFTTrainer``/``DPOTrainer`` → ``trainer.train(resume_from_checkpoint=...)``. resistkit adds
two callbacks (slices, JSONL log) and nothing that changes the optimisation itself.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resistkit.recipes import Recipe, dump_recipe, trainer_config_class
from resistkit.runinfo import (
    atomic_write_json,
    atomic_write_text,
    environment,
    truncate_jsonl_log,
)

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import TrainerCallback

log = logging.getLogger(__name__)

SLICES_DIR = "slices"
CHECKPOINTS_DIR = "checkpoints"
FINAL_DIR = "final"
BASE_DIR = "base"
LOG_FILE = "train_log.jsonl"


def slice_dir(run_dir: str | Path, samples: int) -> Path:
    return Path(run_dir) / SLICES_DIR / f"samples-{samples:07d}"


@dataclass
class TrainResult:
    run_dir: Path
    final_dir: Path
    slices: dict[int, Path] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Configuration


def device_defaults(method: str) -> dict[str, Any]:
    """Defaults that depend on the hardware; a recipe's own ``train:`` values win."""
    import torch

    defaults: dict[str, Any] = {
        "report_to": "none",
        "save_strategy": "steps",
        "save_total_limit": 2,
        "logging_steps": 1,
        "seed": 42,
        "data_seed": 42,
        "num_train_epochs": 1,
    }
    if not torch.cuda.is_available():
        # TRL defaults to bf16 and activation checkpointing; on CPU the first is ~50x slower
        # and the second only trades speed for memory we have.
        defaults.update(bf16=False, activation_checkpointing=False, use_cpu=True)
    if method == "dpo":
        defaults["precompute_ref_log_probs"] = True  # one reference pass, 4x faster on CPU
    return defaults


def build_trainer_config(recipe: Recipe, run_dir: Path, num_samples: int) -> Any:
    cls = trainer_config_class(recipe.method)
    values = device_defaults(recipe.method)
    values.update(seed=recipe.seed, data_seed=recipe.seed)
    if "gradient_checkpointing" in recipe.train:  # the deprecated alias loses to the new name
        values.pop("activation_checkpointing", None)
    values.update(recipe.train)
    if "save_steps" not in recipe.train:
        # About ten checkpoints per run bounds the work an interruption can lose.
        batch = values.get("per_device_train_batch_size", 8) * values.get(
            "gradient_accumulation_steps", 1
        )
        steps = max(1, num_samples // max(1, batch))
        values["save_steps"] = max(1, steps // 10)
    values["output_dir"] = str(run_dir / CHECKPOINTS_DIR)
    return cls(**values)


# --------------------------------------------------------------------------------------------
# Callbacks


def _slice_callback(trainer_holder: dict[str, Any], run_dir: Path, thresholds: list[int]) -> Any:
    from transformers import TrainerCallback

    class SliceCallback(TrainerCallback):
        """Saves a complete checkpoint each time the samples seen pass a threshold."""

        def __init__(self) -> None:
            self.pending = [t for t in thresholds if not slice_dir(run_dir, t).exists()]

        def _samples(self, args: Any, state: Any) -> int:
            per_step = (
                args.per_device_train_batch_size * args.gradient_accumulation_steps
                * args.world_size
            )
            return state.global_step * per_step

        def _save(self, threshold: int, samples: int, state: Any) -> None:
            trainer = trainer_holder["trainer"]
            final = slice_dir(run_dir, threshold)
            tmp = final.with_name(final.name + ".tmp")
            if state.is_world_process_zero and tmp.exists():
                shutil.rmtree(tmp)
            trainer.save_model(str(tmp))  # all ranks: ZeRO-3 gathers weights here
            if state.is_world_process_zero:
                atomic_write_json(
                    tmp / "slice.json",
                    {"samples_requested": threshold, "samples_seen": samples,
                     "global_step": state.global_step},
                )
                os.replace(tmp, final)
            trainer.accelerator.wait_for_everyone()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            seen = self._samples(args, state)
            while self.pending and seen >= self.pending[0]:
                self._save(self.pending.pop(0), seen, state)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            # A last partial batch: thresholds up to the data size are reached at the end.
            total = trainer_holder.get("num_samples", 0)
            while self.pending and self.pending[0] <= total:
                self._save(self.pending.pop(0), total, state)

    return SliceCallback()


def _jsonl_log_callback(run_dir: Path, samples_per_step: int) -> TrainerCallback:
    from transformers import TrainerCallback

    class JsonlLogCallback(TrainerCallback):
        """One JSON line per logging step: step, samples, loss, lr, elapsed seconds."""

        def __init__(self) -> None:
            self.start = time.time()

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if not state.is_world_process_zero or not logs:
                return
            row = {
                "step": state.global_step,
                "samples": state.global_step * samples_per_step,
                "epoch": state.epoch,
                "elapsed_s": round(time.time() - self.start, 3),
                **logs,
            }
            with open(run_dir / LOG_FILE, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")

    return JsonlLogCallback()


def last_complete_checkpoint(root: Path) -> Path | None:
    """The newest checkpoint whose ``trainer_state.json`` (written last) is intact.

    A SIGKILL while a checkpoint is written leaves a directory that transformers'
    ``get_last_checkpoint`` would pick; such partial directories are removed instead.
    """
    if not root.is_dir():
        return None
    found = sorted(
        (p for p in root.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
        reverse=True,
    )
    for path in found:
        try:
            json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
            return path
        except (OSError, json.JSONDecodeError):
            log.warning("removing incomplete checkpoint %s", path)
            shutil.rmtree(path, ignore_errors=True)
    return None


# --------------------------------------------------------------------------------------------
# Data


def load_training_data(recipe: Recipe) -> Dataset:
    from resistkit.data import load_data
    from resistkit.prompts import to_trl_format

    if recipe.data is None:
        raise ValueError("the recipe has no `data:` section to train on")
    spec = recipe.data
    num = spec.num_samples
    if num is None and recipe.save_at_samples:
        num = recipe.save_at_samples[-1]
    fmt = "preference" if recipe.method == "dpo" else None
    ds = load_data(
        spec.dataset,
        split=spec.split,
        num_samples=num,
        seed=spec.seed if spec.seed is not None else recipe.seed,
        format=fmt,
        data_files=spec.data_files,
    )
    if recipe.method == "sft" and "prompt" in ds.column_names and "completion" in ds.column_names:
        ds = ds.select_columns(["prompt", "completion"])
    elif recipe.method == "sft" and "text" in ds.column_names:
        ds = ds.select_columns(["text"])
    elif recipe.method == "dpo":
        ds = ds.select_columns(["prompt", "chosen", "rejected"])
    return to_trl_format(ds, recipe.prompt_format, recipe.prompt_template)


# --------------------------------------------------------------------------------------------
# Entry point


def write_run_info(recipe: Recipe, run_dir: Path, name: str = "train") -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / f"{name}_recipe.yaml", dump_recipe(recipe))
    env = environment()
    env["seed"] = recipe.seed
    atomic_write_json(run_dir / f"{name}_env.json", env)


def _is_main_process() -> bool:
    """Rank 0 of a launch (torchrun/accelerate/deepspeed set RANK before Python starts)."""
    return int(os.environ.get("RANK", "0")) == 0


def _wait_for_file(path: Path, timeout_s: float = 600.0) -> None:
    # Before the trainer exists there is no process group to barrier on, so the other ranks
    # wait for rank 0's atomically renamed output instead.
    deadline = time.time() + timeout_s
    while not path.exists():
        if time.time() > deadline:
            raise TimeoutError(f"rank {os.environ.get('RANK')}: {path} did not appear")
        time.sleep(0.2)


def ensure_tiny_base(recipe: Recipe, run_dir: Path, tokenizer: Any) -> Path:
    """Build and save a tiny model once (rank 0); return its directory.

    Runs before the trainer config exists, so under ZeRO-3 the model is built whole and not
    inside ``deepspeed.zero.Init`` (a partitioned model would be saved as empty tensors).
    """
    from resistkit.models import load_model

    base = run_dir / BASE_DIR
    if (base / "config.json").exists():
        return base
    if not _is_main_process():
        _wait_for_file(base / "config.json")
        return base
    model = load_model(recipe.model, tokenizer, seed=recipe.seed)
    tmp = base.with_name(BASE_DIR + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    os.replace(tmp, base)
    return base


def prepare_base_model(recipe: Recipe, run_dir: Path, tokenizer: Any) -> Any:
    """Load the model; a freshly built tiny model is saved first so it has a path.

    DPO with ``ref_model=None`` reloads the reference from ``config._name_or_path`` and every
    slice should name a base it can be compared with, so a built model must live on disk.
    """
    from resistkit.models import load_model

    if recipe.model.name_or_path != "tiny":
        return load_model(recipe.model, tokenizer, seed=recipe.seed)
    base = ensure_tiny_base(recipe, run_dir, tokenizer)
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(base, dtype="float32")


def train(recipe: Recipe, *, resume: bool = True, progress: bool = True) -> TrainResult:
    """Run one training stage described by ``recipe``; return where its outputs are."""
    from transformers import set_seed

    from resistkit.models import load_tokenizer

    run_dir = Path(recipe.output_dir)
    final_dir = run_dir / FINAL_DIR
    if (final_dir / "config.json").exists() and (run_dir / "train_manifest.json").exists():
        log.info("training already complete in %s", run_dir)
        manifest = json.loads((run_dir / "train_manifest.json").read_text())
        return TrainResult(
            run_dir, final_dir,
            {int(k): Path(v) for k, v in manifest["slices"].items()}, manifest["metrics"],
        )
    if _is_main_process():
        write_run_info(recipe, run_dir)
    set_seed(recipe.seed)

    dataset = load_training_data(recipe)
    # DPO pads prompts on the left itself; SFT's collator wants right padding.
    tokenizer = load_tokenizer(recipe.model, padding_side="right")
    if recipe.model.name_or_path == "tiny":
        ensure_tiny_base(recipe, run_dir, tokenizer)
    # The config first: under accelerate + ZeRO-3 it switches on deepspeed.zero.Init, so the
    # model below is loaded already sharded instead of whole on every rank.
    config = build_trainer_config(recipe, run_dir, len(dataset))
    model = prepare_base_model(recipe, run_dir, tokenizer)
    samples_per_step = (
        config.per_device_train_batch_size * config.gradient_accumulation_steps * config.world_size
    )

    holder: dict[str, Any] = {"num_samples": len(dataset)}
    callbacks = [_jsonl_log_callback(run_dir, samples_per_step)]
    if recipe.save_at_samples:
        too_big = [n for n in recipe.save_at_samples if n > len(dataset)]
        if too_big:
            raise ValueError(f"save_at_samples {too_big} exceed the {len(dataset)} training rows")
        callbacks.append(_slice_callback(holder, run_dir, recipe.save_at_samples))
        uneven = [n for n in recipe.save_at_samples if n % samples_per_step]
        if uneven:
            log.warning(
                "save_at_samples %s are not multiples of the %d samples per optimizer step; "
                "those slices are saved at the first step past them (see slice.json)",
                uneven, samples_per_step,
            )
    if "disable_tqdm" not in recipe.train:
        # A live rich panel on a terminal; in logs (CI, pipelines) train_log.jsonl says it all.
        config.disable_tqdm = True
        if progress and sys.stderr.isatty():
            from trl.trainer.callbacks import RichProgressCallback

            callbacks.append(RichProgressCallback())

    peft_config = None
    if recipe.lora is not None:
        from peft import LoraConfig

        peft_config = LoraConfig(task_type="CAUSAL_LM", **recipe.lora.model_dump())

    if recipe.method == "sft":
        from trl import SFTTrainer

        trainer = SFTTrainer(
            model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
            callbacks=callbacks, peft_config=peft_config,
        )
    else:
        from trl import DPOTrainer

        trainer = DPOTrainer(
            model=model, ref_model=None, args=config, train_dataset=dataset,
            processing_class=tokenizer, callbacks=callbacks, peft_config=peft_config,
        )
    if config.disable_tqdm:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # rich shows the logs; no raw dict spam
    holder["trainer"] = trainer

    last = last_complete_checkpoint(run_dir / CHECKPOINTS_DIR) if resume else None
    if last is not None:
        state = json.loads((last / "trainer_state.json").read_text())
        if trainer.is_world_process_zero():  # only rank 0 writes the log
            truncate_jsonl_log(run_dir / LOG_FILE, state["global_step"])
        log.info("resuming from %s", last)
    elif trainer.is_world_process_zero():
        (run_dir / LOG_FILE).unlink(missing_ok=True)

    result = trainer.train(resume_from_checkpoint=str(last) if last else None)
    metrics = dict(result.metrics)
    metrics["train_samples"] = len(dataset)

    tmp = final_dir.with_name(FINAL_DIR + ".tmp")
    if trainer.is_world_process_zero():
        shutil.rmtree(tmp, ignore_errors=True)
    trainer.save_model(str(tmp))
    slices = {n: slice_dir(run_dir, n) for n in recipe.save_at_samples}
    if trainer.is_world_process_zero():
        shutil.rmtree(final_dir, ignore_errors=True)
        os.replace(tmp, final_dir)
        trainer.save_state()
        atomic_write_json(
            run_dir / "train_manifest.json",
            {
                "method": recipe.method,
                "seed": recipe.seed,
                "final": str(final_dir),
                "slices": {str(k): str(v) for k, v in slices.items()},
                "metrics": metrics,
                "samples_per_step": samples_per_step,
                # How it ran: "NO" in-process, MULTI_CPU/MULTI_GPU/DEEPSPEED/FSDP under a launch.
                "distributed_type": str(trainer.accelerator.distributed_type.value),
                "num_processes": trainer.accelerator.num_processes,
            },
        )
    trainer.accelerator.wait_for_everyone()
    return TrainResult(run_dir, final_dir, slices, metrics)


def read_losses(run_dir: str | Path) -> list[float]:
    """Per-step training losses from a run's JSONL log."""
    path = Path(run_dir) / LOG_FILE
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [r["loss"] for r in rows if "loss" in r]
