"""Pre-training throughput and held-out loss vs tokens for three tiny Llama sizes.

Each size trains on builtin:pretrain with the shipped tokenizer for `--seconds` of training
time (constant learning rate after a short warm-up, so stopping early does not truncate a
schedule), evaluating held-out bits/token at doubling token counts. Optionally times
SmolLM2-135M's first (GGUF → safetensors) and cached loads through `resistkit.models`.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_pretrain.py [--seconds 45] [--smollm2]

Prints a Markdown table and writes the raw numbers as JSON (`--out`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# name: (hidden, layers, heads, ffn); with the 4096-token vocabulary and tied embeddings these
# are ~1M, ~4M and ~16M parameters.
REPO = Path(__file__).resolve().parents[1]

SIZES: dict[str, tuple[int, int, int, int]] = {
    "1m": (128, 3, 4, 256),
    "4m": (256, 4, 4, 640),
    "16m": (384, 8, 6, 1024),
}
EVAL_AT = [2**k * 8192 for k in range(12)]  # 8k ... 16.8M tokens


def stop_after(seconds: float) -> Any:
    from transformers import TrainerCallback

    class StopAfter(TrainerCallback):
        """Stops after `seconds` of forward/backward/optimizer time; the held-out evaluations
        (which run in on_step_end, after on_optimizer_step) do not count."""

        def __init__(self) -> None:
            self.busy = 0.0
            self.t0 = 0.0

        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.t0 = time.perf_counter()

        def on_optimizer_step(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.busy += time.perf_counter() - self.t0

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.busy >= seconds:
                control.should_training_stop = True

    return StopAfter()


def run_size(name: str, seconds: float, workdir: Path, heldout_tokens: int) -> dict[str, Any]:
    from resistkit.training import pretrain as pt

    hidden, layers, heads, ffn = SIZES[name]
    out = workdir / name
    sets = [
        f"output_dir={out}",
        f"model.hidden_size={hidden}",
        f"model.num_hidden_layers={layers}",
        f"model.num_attention_heads={heads}",
        f"model.intermediate_size={ffn}",
        "max_tokens=1000000000",
        f"save_at_tokens={EVAL_AT}",
        f"heldout_max_tokens={heldout_tokens}",
        "save_dtype=float32",
        "train.lr_scheduler_type=constant_with_warmup",
        "train.warmup_steps=20",
        "train.save_strategy='no'",
    ]
    recipe = pt.load_pretrain_recipe(REPO / "recipes/pretrain/tiny-base.yaml", sets)
    start = time.perf_counter()
    result = pt.pretrain(recipe, progress=False, callbacks=[stop_after(seconds)])
    wall = time.perf_counter() - start
    m = result.manifest
    curve = [(c["tokens_seen"], c["heldout_bits_per_token"]) for c in m["checkpoints"]]
    curve.append((m["final"]["tokens_seen"], m["final"]["heldout_bits_per_token"]))
    row = {
        "size": name,
        "hidden": hidden, "layers": layers, "heads": heads, "ffn": ffn,
        "parameters": m["parameters"],
        "non_embedding_parameters": m["non_embedding_parameters"],
        "tokens_seen": m["final"]["tokens_seen"],
        "train_s": m["final"]["train_s_this_session"],
        "tokens_per_s": m["final"]["tokens_per_s"],
        "setup_s": m["setup_s"],
        "wall_s": round(wall, 1),
        "unigram_bits_per_token": m["unigram_bits_per_token"],
        "heldout_curve": curve,
    }
    shutil.rmtree(out, ignore_errors=True)
    return row


def time_smollm2() -> dict[str, Any]:
    """First use (GGUF dequantise + save) in a fresh cache, then a load of the cached copy."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from resistkit.models import builtin, resolve_model

    cache = Path(tempfile.mkdtemp(prefix="rk-models-"))
    try:
        start = time.perf_counter()
        path = resolve_model("smollm2-135m", cache_dir=cache).path
        first = time.perf_counter() - start
        start = time.perf_counter()
        path = resolve_model("smollm2-135m", cache_dir=cache).path
        AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        AutoTokenizer.from_pretrained(path)
        cached = time.perf_counter() - start
        size = sum(f.stat().st_size for f in Path(path).iterdir())
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    gguf = builtin.smollm2_gguf_path()
    return {
        "first_use_s": round(first, 1),
        "cached_load_s": round(cached, 2),
        "cache_dir_mb": round(size / 2**20, 1),
        "gguf_mb": round(gguf.stat().st_size / 2**20, 1),
    }


def heldout_bits_per_char(model_name: str, max_chars: int) -> dict[str, Any]:
    """Bits per character on the first held-out documents of builtin:pretrain: comparable
    across tokenizers (bits/token is not). Each model reads 128-token blocks of its own tokens."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from resistkit.data import load_data
    from resistkit.models import resolve_model
    from resistkit.training.heldout import bits_per_token, heldout_blocks

    texts, chars = [], 0
    for text in load_data("builtin:pretrain", split="heldout", shuffle=False)["text"]:
        texts.append(text)
        chars += len(text)
        if chars >= max_chars:
            break
    path = resolve_model(model_name).path
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    blocks = heldout_blocks(tok, texts, 128, None)
    start = time.perf_counter()
    bits = bits_per_token(model, blocks, batch_size=8)
    seconds = time.perf_counter() - start
    scored = blocks[:, 1:].numel()
    # Characters covered by the scored tokens (the remainder past the last block is dropped).
    covered = len(tok.decode(blocks.reshape(-1).tolist(), skip_special_tokens=True))
    return {
        "model": model_name,
        "bits_per_token": round(bits, 3),
        "chars_per_token": round(covered / blocks.numel(), 3),
        "bits_per_char": round(bits * scored / covered, 3),
        "scored_tokens": int(scored),
        "forward_tokens_per_s": round(blocks.numel() / seconds, 1),
    }


def samples(model_name: str, n: int, max_new_tokens: int, seed: int = 0) -> list[dict[str, str]]:
    """Greedy and sampled continuations of held-out review prompts (positive and negative)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from resistkit.data import load_data
    from resistkit.models import resolve_model

    path = resolve_model(model_name).path
    tok = AutoTokenizer.from_pretrained(path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    prompts = []
    for polarity in ("positive", "negative"):
        ds = load_data(f"builtin:reviews/{polarity}", split="heldout", num_samples=n, seed=seed)
        prompts += [p.rstrip() for p in ds["prompt"]]
    batch = tok(prompts, return_tensors="pt", padding=True)
    cut = batch["input_ids"].shape[1]
    greedy = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
    torch.manual_seed(seed)
    sampled = model.generate(
        **batch, max_new_tokens=max_new_tokens, do_sample=True, temperature=0.8, top_k=0,
        top_p=1.0,
    )
    decode = lambda ids: tok.batch_decode(ids[:, cut:], skip_special_tokens=True)  # noqa: E731
    return [
        {"prompt": p, "greedy": g, "sampled": s}
        for p, g, s in zip(prompts, decode(greedy), decode(sampled), strict=True)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(SIZES), help="Comma-separated: 1m,4m,16m")
    parser.add_argument("--seconds", type=float, default=45.0, help="Training time per size.")
    parser.add_argument("--heldout-tokens", type=int, default=16384)
    parser.add_argument("--smollm2", action="store_true", help="Also time SmolLM2 loading.")
    parser.add_argument(
        "--bits-per-char", type=int, default=0, metavar="CHARS",
        help="Compare builtin:tiny-base (and smollm2-135m with --smollm2) in bits/char on "
        "this many held-out characters.",
    )
    parser.add_argument(
        "--samples", type=int, default=0, metavar="N",
        help="Print continuations of N positive + N negative held-out review prompts by "
        "builtin:tiny-base.",
    )
    parser.add_argument("--out", default="bench_pretrain.json")
    args = parser.parse_args()

    import torch

    workdir = Path(tempfile.mkdtemp(prefix="rk-bench-pretrain-"))
    rows = []
    try:
        for name in filter(None, args.sizes.split(",")):
            rows.append(run_size(name.strip(), args.seconds, workdir, args.heldout_tokens))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report: dict[str, Any] = {"threads": torch.get_num_threads(), "sizes": rows}
    if args.smollm2:
        report["smollm2"] = time_smollm2()
    if args.bits_per_char:
        names = ["builtin:tiny-base"] + (["smollm2-135m"] if args.smollm2 else [])
        report["bits_per_char"] = [heldout_bits_per_char(n, args.bits_per_char) for n in names]
    if args.samples:
        report["samples"] = samples("builtin:tiny-base", args.samples, 24)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    print(f"\ntorch threads: {report['threads']}, training time per size: {args.seconds:.0f} s\n")
    print("| size | params (non-emb) | tokens/s | tokens seen | held-out bits/token by tokens |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        curve = ", ".join(f"{t / 1000:.0f}k: {b:.2f}" for t, b in r["heldout_curve"])
        print(
            f"| {r['size']} ({r['hidden']}x{r['layers']}, ffn {r['ffn']}) | "
            f"{r['parameters'] / 1e6:.2f}M ({r['non_embedding_parameters'] / 1e6:.2f}M) | "
            f"{r['tokens_per_s']:.0f} | {r['tokens_seen']} | {curve} |"
        )
    if rows:
        print(f"\nunigram baseline: {rows[0]['unigram_bits_per_token']:.3f} bits/token")
    if "smollm2" in report:
        print(f"\nSmolLM2-135M: {report['smollm2']}")
    for row in report.get("bits_per_char", []):
        print(f"\nheld-out {row}")
    for row in report.get("samples", []):
        print(f"\n> {row['prompt']}\n  greedy:  {row['greedy']!r}\n  sampled: {row['sampled']!r}")


if __name__ == "__main__":
    main()
