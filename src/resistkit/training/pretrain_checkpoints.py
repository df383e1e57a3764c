"""Complete models at token thresholds during pre-training, with their held-out bits."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resistkit.files import atomic_write_json
from resistkit.training import common
from resistkit.training.heldout import bits_per_token
from resistkit.training.layout import CHECKPOINT_INFO, log_file, tokens_dir

KIND = "pretrain"  # run files are pretrain_recipe.yaml, pretrain_log.jsonl, ...


@dataclass
class PretrainState:
    """What the callback and the final save share."""

    run_dir: Path
    tokenizer: Any
    blocks: Any
    eval_batch_size: int
    save_dtype: str
    unigram_bits: float | None
    trainer: Any = None
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    start: float = 0.0
    overhead_s: float = 0.0  # time spent evaluating and saving, not training
    session_tokens0: int = 0


def _dtype(name: str) -> Any:
    import torch

    return getattr(torch, name)


def save_complete_model(state: PretrainState, target: Path, info: dict[str, Any]) -> None:
    """Save model + tokenizer + record to `target` atomically (temp dir, then rename)."""
    model = state.trainer.model
    if state.save_dtype != "float32":
        import copy

        model = copy.deepcopy(model).to(_dtype(state.save_dtype))

    def save(tmp: Path) -> None:
        model.save_pretrained(str(tmp))
        config_path = tmp / "config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        # The trainer turns the KV cache off while training; a saved model is for generation.
        config["use_cache"] = True
        # Weights may be stored in half precision to save space, but `dtype="auto"` (the
        # transformers default) should still load float32: half-precision matmuls run ~50x
        # slower on CPUs. The config's dtype is what "auto" reads.
        config["dtype"] = "float32"
        atomic_write_json(config_path, config)
        state.tokenizer.save_pretrained(str(tmp))
        # The record travels with the model (copied or shipped elsewhere), so no path in it.
        atomic_write_json(tmp / CHECKPOINT_INFO, {k: v for k, v in info.items() if k != "dir"})

    common.save_atomically(target, save, main=True)


def evaluate_now(state: PretrainState, tokens_seen: int, step: int) -> dict[str, Any]:
    """Held-out bits of the weights as they will be saved (rounded to `save_dtype`)."""
    model = state.trainer.model
    train_s = time.perf_counter() - state.start - state.overhead_s
    new_tokens = tokens_seen - state.session_tokens0
    row: dict[str, Any] = {
        "tokens_seen": tokens_seen,
        "step": step,
        "train_s_this_session": round(train_s, 2),
        "tokens_per_s": round(new_tokens / train_s, 1) if train_s > 0 else None,
        "weights_dtype": state.save_dtype,
    }
    if state.blocks is not None:
        bits = bits_per_token(model, state.blocks, state.eval_batch_size)
        row["heldout_bits_per_token_fp32"] = round(bits, 5)
        if state.save_dtype != "float32":
            import copy

            rounded = copy.deepcopy(model).to(_dtype(state.save_dtype)).float()
            bits = bits_per_token(rounded, state.blocks, state.eval_batch_size)
        row["heldout_bits_per_token"] = round(bits, 5)
        row["heldout_tokens"] = int(state.blocks[:, 1:].numel())
        row["unigram_bits_per_token"] = state.unigram_bits
    return row


def append_log(run_dir: Path, row: dict[str, Any]) -> None:
    with open(log_file(run_dir, KIND), "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


def pretrain_callback(state: PretrainState, thresholds: list[int]) -> Any:
    from transformers import TrainerCallback

    class PretrainCallback(TrainerCallback):
        """Complete models at token thresholds, held-out bits, and a JSONL log."""

        def __init__(self) -> None:
            self.pending = [t for t in thresholds if not tokens_dir(state.run_dir, t).exists()]

        def on_train_begin(self, args: Any, st: Any, control: Any, **kw: Any) -> None:
            state.start = time.perf_counter()
            state.overhead_s = 0.0
            state.session_tokens0 = st.num_input_tokens_seen

        def on_step_end(self, args: Any, st: Any, control: Any, **kw: Any) -> None:
            seen = st.num_input_tokens_seen
            while self.pending and seen >= self.pending[0]:
                self.save(self.pending.pop(0), st)

        def save(self, threshold: int, st: Any) -> None:
            t0 = time.perf_counter()
            row = evaluate_now(state, st.num_input_tokens_seen, st.global_step)
            row["tokens_requested"] = threshold
            target = tokens_dir(state.run_dir, threshold)
            row["dir"] = str(target)
            if st.is_world_process_zero:
                save_complete_model(state, target, row)
                append_log(state.run_dir, {"event": "checkpoint", **row})
            state.records[threshold] = row
            state.overhead_s += time.perf_counter() - t0

        def on_log(self, args: Any, st: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if not st.is_world_process_zero or not logs or "loss" not in logs:
                return
            row = {
                "event": "log",
                "step": st.global_step,
                "tokens_seen": st.num_input_tokens_seen,
                "elapsed_s": round(time.perf_counter() - state.start, 3),
                "loss": logs.get("loss"),
                "bits_per_token": round(logs["loss"] / math.log(2), 5),
                "learning_rate": logs.get("learning_rate"),
                "grad_norm": logs.get("grad_norm"),
            }
            append_log(state.run_dir, row)

        def on_train_end(self, args: Any, st: Any, control: Any, **kw: Any) -> None:
            # Wrapped packing leaves one short row per map batch, so the last step may end a
            # few tokens below a threshold at max_tokens: save those with the final state.
            # A run stopped early (a callback, a time limit) has not reached them: skip.
            if st.global_step < st.max_steps:
                return
            while self.pending:
                self.save(self.pending.pop(0), st)

    return PretrainCallback()
