"""The two callbacks `resistkit train` adds to a TRL trainer: slices and a JSONL log.

Both run between optimizer steps and touch no RNG state, so they do not change the training.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from resistkit.files import atomic_write_json
from resistkit.training.common import save_atomically
from resistkit.training.layout import SLICE_INFO, slice_dir


def slice_callback(holder: dict[str, Any], run_dir: Path, thresholds: list[int],
                   samples_per_step: int) -> Any:
    from transformers import TrainerCallback

    class SliceCallback(TrainerCallback):
        """Saves a complete model each time the samples seen pass a threshold."""

        def __init__(self) -> None:
            self.pending = [t for t in thresholds if not slice_dir(run_dir, t).exists()]

        def _save(self, threshold: int, samples: int, state: Any) -> None:
            trainer = holder["trainer"]
            main = state.is_world_process_zero

            def save(tmp: Path) -> None:
                trainer.save_model(str(tmp))
                if main:
                    atomic_write_json(tmp / SLICE_INFO, {
                        "samples_requested": threshold, "samples_seen": samples,
                        "global_step": state.global_step,
                    })

            save_atomically(slice_dir(run_dir, threshold), save, main=main,
                            barrier=trainer.accelerator.wait_for_everyone)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            seen = state.global_step * samples_per_step
            while self.pending and seen >= self.pending[0]:
                self._save(self.pending.pop(0), seen, state)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            # A last partial batch: thresholds up to the data size are reached at the end.
            total = holder["num_samples"]
            while self.pending and self.pending[0] <= total:
                self._save(self.pending.pop(0), total, state)

    return SliceCallback()


def jsonl_log_callback(path: Path, samples_per_step: int) -> Any:
    from transformers import TrainerCallback

    class JsonlLogCallback(TrainerCallback):
        """One JSON line per logging step: step, samples, loss, lr, elapsed seconds."""

        def __init__(self) -> None:
            self.start = time.time()
            # (step, what) of the first non-finite loss or gradient norm: the run stops
            # there and is not done.
            self.diverged: tuple[int, str] | None = None

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            # The trainer logs a NaN loss as the mean of earlier ones (logging_nan_inf_filter),
            # so the gradient norm tells too. Checked on every rank (the logged values are the
            # same everywhere), so all stop together.
            bad = [(k, v) for k, v in (logs or {}).items() if k in ("loss", "grad_norm")
                   and isinstance(v, float) and not math.isfinite(v)]
            if bad and self.diverged is None:
                self.diverged = (state.global_step, f"{bad[0][0]} became {bad[0][1]}")
                control.should_training_stop = True
                control.should_save = False
            if not state.is_world_process_zero or not logs:
                return
            row = {
                "step": state.global_step,
                "samples": state.global_step * samples_per_step,
                "epoch": state.epoch,
                "elapsed_s": round(time.time() - self.start, 3),
                **logs,
            }
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")

    return JsonlLogCallback()
