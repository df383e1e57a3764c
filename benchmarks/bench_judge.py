"""Judge scoring throughput: the batched ``sentiment-classifier`` scorer vs a naive loop.

The naive loop is what one would write first: tokenise one text, one forward pass, softmax,
next text. The scorer sorts texts by length, pads within batches and runs under
``torch.inference_mode``. Target (issue 7): batched >= 2x the naive loop in texts/s.

Texts are the 600 held-out review snippets (mean ~28 word pieces). The model is the built
judge (``builtin:sentiment-judge``) when it exists, else ``--judge PATH``, else the
all-MiniLM-L6-v2 base with a fresh 2-label head (speed does not depend on the weights). Both
paths are checked to give the same probabilities.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_judge.py [--quick] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pick_model(explicit: str | None, scratch: Path) -> tuple[str, str]:
    """(path, what it is): the given judge, the built one, or the base with a random head."""
    from resistkit.errors import ModelError
    from resistkit.judge import base_model_dir
    from resistkit.models import resolve_model

    if explicit:
        return resolve_model(explicit).path, "given"
    try:
        return resolve_model("builtin:sentiment-judge").path, "built judge"
    except ModelError:
        pass
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base = base_model_dir()
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=2)
    model.save_pretrained(scratch)
    AutoTokenizer.from_pretrained(base).save_pretrained(scratch)
    return str(scratch), "base all-MiniLM-L6-v2 with a random head"


def naive_scores(path: str, texts: list[str]) -> tuple[list[float], float]:
    """One text per forward pass; returns the scores and the seconds taken (model loaded)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32).eval()
    out: list[float] = []
    start = time.perf_counter()
    with torch.no_grad():
        for text in texts:
            enc = tokenizer(text, truncation=True, max_length=512, return_tensors="pt")
            out.append(float(torch.softmax(model(**enc).logits, dim=-1)[0, 1]))
    return out, time.perf_counter() - start


def batched_scores(path: str, texts: list[str], batch_size: int) -> tuple[list[float], float]:
    from resistkit.scoring import score_records

    start = time.perf_counter()
    cols = score_records(
        {"response": texts}, ["sentiment-classifier"], classifier=path, batch_size=batch_size
    )
    return cols["sentiment_classifier"], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--judge", help="judge directory (default: builtin:sentiment-judge)")
    parser.add_argument("--quick", action="store_true", help="120 texts, 40 for the naive loop")
    parser.add_argument("--naive-n", type=int, default=200, help="texts for the naive loop")
    parser.add_argument("--batch-sizes", default="32,64")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()

    import torch

    from resistkit.data import load_data

    texts = list(load_data("builtin:reviews/all", split="heldout")["text"])
    naive_n = args.naive_n
    if args.quick:
        texts, naive_n = texts[:120], 40
    naive_n = min(naive_n, len(texts))
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory() as scratch:
        path, what = pick_model(args.judge, Path(scratch))
        batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
        batched_scores(path, texts[:16], batch_sizes[0])  # load and warm up outside the timing
        results: dict[str, Any] = {"batched": {}}
        reference: list[float] = []
        for bs in batch_sizes:
            scores, secs = batched_scores(path, texts, bs)
            reference = reference or scores
            results["batched"][bs] = {"texts": len(texts), "s": round(secs, 2),
                                      "texts_per_s": round(len(texts) / secs, 1)}
        naive, secs = naive_scores(path, texts[:naive_n])
        results["naive"] = {"texts": naive_n, "s": round(secs, 2),
                            "texts_per_s": round(naive_n / secs, 1)}
        max_diff = max(abs(a - b) for a, b in zip(naive, reference[:naive_n], strict=True))

    best = max(v["texts_per_s"] for v in results["batched"].values())
    results.update(
        model=what,
        speedup=round(best / results["naive"]["texts_per_s"], 2),
        max_abs_score_diff_naive_vs_batched=max_diff,
        target_met=best >= 2 * results["naive"]["texts_per_s"],
        threads=torch.get_num_threads(),
        load_average_before=[round(x, 2) for x in load_before],
        load_average_after=[round(x, 2) for x in os.getloadavg()],
        machine=platform.machine(),
        torch=torch.__version__,
    )
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
