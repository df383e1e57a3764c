"""SmolLM2-135M generation throughput on CPU by batch size (issue 7 target: > 100 tokens/s).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_smollm2_generate.py [--prompts 64]
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=20)
    parser.add_argument("--batch-sizes", default="8,32,64")
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from resistkit.data import load_data
    from resistkit.generation.common import DecodingParams
    from resistkit.generation.hf import generate_texts
    from resistkit.models import resolve_model

    path = resolve_model("smollm2-135m").path
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    prompts = list(load_data("builtin:reviews/all", split="heldout",
                             num_samples=args.prompts)["prompt"])
    # Force exactly new-tokens per sequence so tokens/s is comparable across batch sizes.
    params = DecodingParams(max_new_tokens=args.new_tokens, seed=0)
    model.generation_config.eos_token_id = None
    results = []
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        start = time.perf_counter()
        generate_texts(model, tok, prompts, params, batch_size=bs, progress=False)
        elapsed = time.perf_counter() - start
        results.append({"batch_size": bs, "seconds": round(elapsed, 2),
                        "new_tokens_per_s": round(len(prompts) * args.new_tokens / elapsed, 1)})
    print(json.dumps({"model": "SmolLM2-135M-Instruct (fp32)", "prompts": len(prompts),
                      "new_tokens": args.new_tokens, "results": results}, indent=2))


if __name__ == "__main__":
    main()
