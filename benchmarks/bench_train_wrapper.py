"""Thin-wrapper proof: `resistkit train` vs a plain TRL SFTTrainer script, same everything.

Both start from the same saved tiny base model, read the same rows and use the same SFTConfig
values. Prints per-step loss differences and the wall-time ratio (median of alternating runs).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_train_wrapper.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
SETS = ["save_at_samples=[]", "data.num_samples=256", "train.save_strategy=no"]


def run_resistkit(out: Path) -> tuple[float, list[float]]:
    from resistkit.recipes import load_recipe
    from resistkit.training.train import read_losses, train

    recipe = load_recipe(REPO / "recipes/tiny/sft.yaml", [f"output_dir={out}", *SETS])
    start = time.perf_counter()
    train(recipe, progress=False)
    return time.perf_counter() - start, read_losses(out)


def run_plain_trl(out: Path, base: Path) -> tuple[float, list[float]]:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from resistkit.data import load_data

    start = time.perf_counter()
    ds = load_data("builtin:reviews/positive", num_samples=256, seed=42)
    ds = ds.select_columns(["prompt", "completion"])
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    # What a TRL user would write by hand for recipes/tiny/sft.yaml on a CPU.
    config = SFTConfig(
        output_dir=str(out), learning_rate=1e-3, lr_scheduler_type="constant",
        per_device_train_batch_size=8, gradient_accumulation_steps=1, max_length=64,
        logging_steps=1, num_train_epochs=1, seed=42, data_seed=42, report_to="none",
        save_strategy="no", bf16=False, gradient_checkpointing=False, use_cpu=True,
    )
    trainer = SFTTrainer(model=model, args=config, train_dataset=ds, processing_class=tok)
    trainer.train()
    trainer.save_model(str(out / "final"))
    elapsed = time.perf_counter() - start
    return elapsed, [r["loss"] for r in trainer.state.log_history if "loss" in r]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-wrapper-"))
    # The base model is built and saved once by a resistkit run; both sides load it.
    run_resistkit(tmp / "warmup")
    base = tmp / "warmup" / "base"
    ours, plain, diffs = [], [], []
    for i in range(args.repeats):
        t_plain, l_plain = run_plain_trl(tmp / f"plain{i}", base)
        t_ours, l_ours = run_resistkit(tmp / f"ours{i}")
        assert len(l_plain) == len(l_ours), (len(l_plain), len(l_ours))
        diffs.append(max(abs(a - b) for a, b in zip(l_plain, l_ours, strict=True)))
        ours.append(t_ours)
        plain.append(t_plain)
    result = {
        "steps": len(l_ours),
        "max_abs_loss_diff": max(diffs),
        "resistkit_s": statistics.median(ours),
        "plain_trl_s": statistics.median(plain),
        "ratio": statistics.median(ours) / statistics.median(plain),
    }
    print(json.dumps(result, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
