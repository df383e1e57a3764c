"""Plumbing shared by `resistkit train` and `resistkit pretrain`.

Both run a TRL trainer in a run directory (``resistkit.training.layout``) and need the same
things around it: hardware defaults, the finished-run check, the last *complete* checkpoint
to resume from, progress display, atomic saves of complete models, and how many samples one
optimizer step consumes across every process.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from resistkit.files import read_json, truncate_jsonl_log

log = logging.getLogger(__name__)

# About this many resumable checkpoints per run bound the work an interruption can lose.
CHECKPOINTS_PER_RUN = 10


def device_defaults(dtype: str = "auto") -> dict[str, Any]:
    """Trainer defaults that depend on the hardware or on resistkit; a recipe's values win.

    ``dtype`` is the recipe's ``model.dtype``: with ``auto`` on a CPU with fast bf16
    (``resistkit.hardware``) training runs under bf16 autocast over fp32 master weights.
    """
    import torch

    defaults: dict[str, Any] = {
        "report_to": "none",
        "save_strategy": "steps",
        "save_total_limit": 2,
        "logging_steps": 1,
        "num_train_epochs": 1,
    }
    if not torch.cuda.is_available():
        # TRL defaults to bf16 and activation checkpointing; on CPU the first is ~50x slower
        # and the second only trades speed for memory we have.
        from resistkit.hardware import cpu_precision

        fast = cpu_precision(dtype).train_autocast
        defaults.update(bf16=fast, activation_checkpointing=False, use_cpu=True)
        if fast:
            # Same AdamW, one fused kernel (torch >= 2.4 has it for CPU): the optimizer's
            # element-wise work was ~25 % of a SmolLM2 step. Only on the bf16 path, whose
            # fingerprints already differ, so fp32 runs keep their exact numbers.
            defaults["optim"] = "adamw_torch_fused"
    return defaults


def world_size() -> int:
    """Processes of a launch (torchrun/accelerate/deepspeed set WORLD_SIZE before Python)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def samples_per_step(values: dict[str, Any], world: int | None = None) -> int:
    """Training samples one optimizer step consumes, over every process."""
    return (
        int(values.get("per_device_train_batch_size", 8))
        * int(values.get("gradient_accumulation_steps", 1))
        * (world_size() if world is None else world)
    )


def checkpoint_spacing(total_steps: int) -> int:
    """``save_steps`` giving about ``CHECKPOINTS_PER_RUN`` checkpoints over ``total_steps``."""
    return max(1, total_steps // CHECKPOINTS_PER_RUN)


def is_main_process() -> bool:
    """Rank 0 of a launch (torchrun/accelerate/deepspeed set RANK before Python starts)."""
    return int(os.environ.get("RANK", "0")) == 0


def wait_for_file(path: Path, timeout_s: float = 600.0) -> None:
    """Other ranks wait for rank 0's atomically renamed output (there is no process group to
    barrier on before the trainer exists)."""
    deadline = time.time() + timeout_s
    while not path.exists():
        if time.time() > deadline:
            raise TimeoutError(f"rank {os.environ.get('RANK')}: {path} did not appear")
        time.sleep(0.2)


def finished(manifest: Path, final_dir: Path) -> dict[str, Any] | None:
    """The manifest of a finished run (final model + manifest present and complete), else None."""
    if not any((final_dir / f).exists() for f in ("config.json", "adapter_config.json")):
        return None
    if not manifest.exists():
        return None
    done = read_json(manifest)
    return done if done.get("complete", True) else None


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


def resume_point(checkpoints: Path, log_path: Path, *, resume: bool, main: bool) -> Path | None:
    """The checkpoint to resume from (None: start fresh), with the JSONL log made to match:
    lines past the checkpoint's step are dropped, or the whole log when starting over."""
    last = last_complete_checkpoint(checkpoints) if resume else None
    if not main:
        return last
    if last is not None:
        from resistkit import progress

        step = read_json(last / "trainer_state.json")["global_step"]
        truncate_jsonl_log(log_path, step)
        log.info("resuming from %s (step %d)", last, step)
        progress.current().note(f"resumed from step {step} ({last.name})")
    else:
        log_path.unlink(missing_ok=True)
    return last


def progress_callbacks(config: Any, train_fields: dict[str, Any], progress: bool) -> list[Any]:
    """Training progress (step/total, loss, samples/s) goes to ``resistkit.progress`` instead of
    tqdm; the command line shows it. A recipe that sets ``disable_tqdm`` keeps TRL's display."""
    if "disable_tqdm" in train_fields:
        return []
    config.disable_tqdm = True
    return [progress_callback()] if progress else []


def progress_callback() -> Any:
    from transformers import TrainerCallback

    from resistkit import progress

    class ProgressCallback(TrainerCallback):
        """Steps, loss and samples per second, reported as they happen (rank 0 only)."""

        def __init__(self) -> None:
            self.loss: float | None = None
            self.start = 0.0
            self.step0 = 0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.is_world_process_zero:
                self.start, self.step0 = time.time(), state.global_step
                progress.current().start("training", state.max_steps, "step",
                                         done=state.global_step)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
                   **kw: Any) -> None:
            if logs and "loss" in logs:
                self.loss = logs["loss"]

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if not state.is_world_process_zero:
                return
            elapsed = time.time() - self.start
            per_step = samples_per_step(args.to_dict(), args.world_size)
            rate = (state.global_step - self.step0) * per_step / elapsed if elapsed else 0.0
            progress.current().update(done=state.global_step, loss=self.loss,
                                      samples_per_s=round(rate, 1))

    return ProgressCallback()


def quiet_printer(trainer: Any) -> None:
    """Without tqdm, transformers prints every log dict; the panel or the JSONL log has them."""
    if trainer.args.disable_tqdm:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)


def save_atomically(target: Path, save: Callable[[Path], None], *, main: bool,
                    barrier: Callable[[], None] | None = None) -> None:
    """Write a complete model with ``save(tmp)`` (every rank: ZeRO-3 gathers weights there),
    then rank 0 renames it over ``target``, so a kill never leaves half a model."""
    tmp = target.with_name(target.name + ".tmp")
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
    save(tmp)
    if main:
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
    if barrier is not None:
        barrier()
