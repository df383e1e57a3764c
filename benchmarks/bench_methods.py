"""Throughput of every training method on the tiny model at the same batch (8 samples a step).

For each method: the tiny recipe (`recipes/tiny/<method>.yaml`; `sft` on the same harmful
prompts' refusals, builtin:safety/safe; `grpo` on review openings, 4 completions of 16 tokens
per prompt), 64 training samples = 8 optimizer steps, no slices. Steps/s is
measured from the JSONL log between the first and the last step (the first step carries
one-off costs: the reference pass of DPO/KTO, compilation of the data collator). GRPO also
reports its rollout seconds per step (sampling by resistkit's generator) next to the rest.

    OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 python benchmarks/bench_methods.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
METHODS = ["sft", "dpo", "kto", "simpo", "orpo", "grpo"]
RECIPE = {"sft": "sft", "dpo": "dpo", "kto": "kto", "simpo": "simpo", "orpo": "orpo",
          "grpo": "grpo"}


def overrides(method: str, out: Path) -> list[str]:
    sets = [f"output_dir={out}", "save_at_samples=[]", "train.per_device_train_batch_size=8"]
    if method == "sft":  # SFT on the same prompts, the chosen (refusal) completions
        sets += ["data.dataset=builtin:safety/safe", "data.num_samples=64",
                 "train.max_length=384", "train.learning_rate=5e-4"]
    elif method == "kto":
        sets += ["data.num_samples=32"]  # 32 pairs unpaired = 64 samples
    elif method == "grpo":
        sets += ["data.num_samples=16"]  # 16 prompts x 4 completions = 64 samples
    else:
        sets += ["data.num_samples=64"]
    return sets


def one_run(method: str) -> dict[str, float]:
    from resistkit.recipes import load_recipe
    from resistkit.training.train import train

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        recipe = load_recipe(REPO / f"recipes/tiny/{RECIPE[method]}.yaml", overrides(method, out))
        start = time.perf_counter()
        train(recipe, progress=False)
        wall = time.perf_counter() - start
        rows = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
        steps = [r for r in rows if "loss" in r]
        first, last = steps[0], steps[-1]
        span = last["elapsed_s"] - first["elapsed_s"]
        per_step = span / (last["step"] - first["step"])
        result = {"wall_s": wall, "steps": last["step"], "samples": last["samples"],
                  "steps_per_s": 1 / per_step, "samples_per_s": 8 / per_step}
        if method == "grpo":
            result["rollout_s_per_step"] = statistics.fmean(r["rollout_seconds"] for r in steps)
            result["step_s"] = per_step
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {m: [] for m in METHODS}
    for _ in range(args.repeats):  # interleaved, so a noisy minute hits every method alike
        for method in METHODS:
            results[method].append(one_run(method))
    print("| method | steps/s | samples/s | wall s (64 samples) | notes |")
    print("| --- | --- | --- | --- | --- |")
    for method in METHODS:
        runs = results[method]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        note = ""
        if method == "grpo":
            note = (f"rollout {med['rollout_s_per_step']:.3f} s of {med['step_s']:.3f} s per "
                    f"step ({100 * med['rollout_s_per_step'] / med['step_s']:.0f} %)")
        print(f"| {method} | {med['steps_per_s']:.2f} | {med['samples_per_s']:.1f} | "
              f"{med['wall_s']:.1f} | {note} |")


if __name__ == "__main__":
    main()
