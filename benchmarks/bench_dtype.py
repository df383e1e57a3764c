"""fp32 vs `dtype: auto` on this CPU, as ratios measured in one run: a compression stage, a KL
stage and SFT steps on SmolLM2-135M (after `resistkit models download smollm2-135m`).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_dtype.py [--records 64] [--steps 20]

Prints the CPU's bf16 flags and what `auto` resolves to. Where `auto` is fp32 (an AVX2-only
CPU) the two paths are the same code, so the script also times *forced* bf16 weights on a
compression stage, to show what `auto` avoids there. Paths alternate (A, B, A, B) so drifting
load hits both alike; each figure is the median of the repeats.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from resistkit.hardware import cpu_bf16, cpu_flags, cpu_precision
    from resistkit.models import clear_model_cache, resolve_model
    from resistkit.scoring.stage import run_score

    chosen = cpu_precision("auto")
    print(f"CPU bf16 flags: {cpu_bf16() or 'none'} (avx2: {'avx2' in cpu_flags()}, "
          f"avx512f: {'avx512f' in cpu_flags()})")
    print(f"auto -> {chosen.inference} inference, "
          f"{'bf16 autocast' if chosen.train_autocast else 'fp32'} training: {chosen.reason}")
    model = resolve_model("smollm2-135m").path
    tmp = Path(tempfile.mkdtemp())

    def compression(dtype: str) -> Callable[[], object]:
        def run() -> object:
            clear_model_cache()  # a stage loads its model: count the load too
            return run_score("builtin:safety/preference", ["compression"], split="heldout",
                             num_samples=args.records, seed=0, response_column="rejected",
                             output=tmp / f"c-{dtype}.jsonl", model=model, dtype=dtype)
        return run

    def kl(dtype: str) -> Callable[[], object]:
        def run() -> object:
            clear_model_cache()
            return run_score("builtin:safety/safe-short", ["kl"], split="heldout",
                             num_samples=min(args.records, 48), seed=0,
                             output=tmp / f"k-{dtype}.jsonl", model=model, ref_model=model,
                             dtype=dtype)
        return run

    paths = ["float32", "auto"] if chosen.inference != "float32" else ["float32", "bfloat16"]
    rows = []
    for name, make in (("compression", compression), ("kl", kl)):
        if name == "kl" and paths[1] == "bfloat16":
            continue  # forced bf16 on an AVX2 CPU: the compression row already shows it
        times: dict[str, list[float]] = {p: [] for p in paths}
        for _ in range(args.repeats):
            for p in paths:
                times[p] += timed(make(p), 1)
        a, b = (statistics.median(times[p]) for p in paths)
        rows.append((name, a, b))
    if chosen.train_autocast:
        rows.append(("sft", *sft_pair(model, args.steps, tmp)))
    print(f"{'stage':<12} {paths[0]:>10} {paths[1]:>10}   speed-up")
    for name, a, b in rows:
        print(f"{name:<12} {a:>9.2f}s {b:>9.2f}s   {a / b:.2f}x")
    if not chosen.train_autocast:
        print("sft          auto trains in fp32 here: the same path as float32 (ratio 1.00x)")


def sft_pair(model: str, steps: int, tmp: Path) -> tuple[float, float]:
    """Seconds per step of SFT under float32 and under auto (bf16 autocast + fused AdamW)."""
    from resistkit.recipes import load_recipe
    from resistkit.training.train import train

    out = []
    for dtype in ("float32", "auto"):
        recipe = load_recipe(Path(__file__).parents[1] / "recipes/tiny/sft.yaml", [
            f"output_dir={tmp / ('sft-' + dtype)}", f"model.name_or_path={model}",
            f"model.dtype={dtype}", "data.dataset=builtin:safety/safe-short",
            f"data.num_samples={steps * 4}", "train.per_device_train_batch_size=4",
            "train.max_length=128", f"save_at_samples=[{steps * 4}]"])
        start = time.perf_counter()
        train(recipe, progress=False)
        out.append((time.perf_counter() - start) / steps)
    return out[0], out[1]


if __name__ == "__main__":
    main()
