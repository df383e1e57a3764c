"""Scorer throughput: lexicon and a MiniLM-sized classifier (batched vs one record at a time),
and the ``compression`` scorer on 1,000 records of 128 tokens.

Target: compression over 1,000 x 128 tokens with a ~2M-parameter Llama (hidden 128, 4 layers,
vocab 4096) in under 10 s on 2 CPU cores. Models are randomly initialised (speed does not depend
on the weights); the tokenizer is the package's when it exists, else a BPE trained here.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_scoring.py [--quick]
"""

from __future__ import annotations

import argparse
import inspect
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


def corpus_texts() -> list[str]:
    """Real English text: built-in reviews and Wikipedia when present, else stdlib docstrings."""
    try:
        from resistkit.data import load_data

        texts = list(load_data("builtin:reviews/all", split="train")["text"])
        texts += list(load_data("builtin:pretrain/wiki", split="train")["text"])
        if len(texts) > 1000:
            return texts
    except Exception:  # noqa: BLE001 - any failure means "no built-in data yet"
        pass
    import collections
    import email
    import http.client
    import json as json_mod
    import logging
    import pathlib
    import typing
    import unittest

    texts = []
    for module in (collections, email, http.client, json_mod, logging, pathlib, typing, unittest):
        for _, obj in inspect.getmembers(module):
            doc = inspect.getdoc(obj)
            if doc:
                texts.extend(p.replace("\n", " ") for p in doc.split("\n\n") if len(p) > 40)
    return texts


def make_tokenizer(texts: list[str]) -> Any:
    try:
        from resistkit.tokenizer import default_tokenizer

        return default_tokenizer()
    except (ImportError, OSError):  # module or its shipped asset not there yet
        pass
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=4096,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


def timed(fn: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def bench_lexicon(texts: list[str], n_single: int) -> dict[str, Any]:
    from resistkit.scoring import score_records

    score_records({"response": texts[:5]}, ["sentiment-lexicon"])  # load the lexicon
    _, t_batch = timed(lambda: score_records({"response": texts}, ["sentiment-lexicon"]))
    single = texts[:n_single]
    _, t_single = timed(
        lambda: [score_records({"response": [t]}, ["sentiment-lexicon"]) for t in single]
    )
    return {
        "records": len(texts),
        "batched_records_per_s": round(len(texts) / t_batch, 1),
        "one_at_a_time_records_per_s": round(n_single / t_single, 1),
    }


def bench_classifier(tok: Any, texts: list[str], n_single: int, root: Path) -> dict[str, Any]:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from resistkit.scoring import score_records

    torch.manual_seed(0)
    # all-MiniLM-L6-v2 shape: hidden 384, 6 layers, 12 heads, FFN 1536.
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=384,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=1536,
        max_position_embeddings=512,
        num_labels=2,
        pad_token_id=tok.pad_token_id,
    )
    path = root / "minilm"
    BertForSequenceClassification(config).save_pretrained(path)
    tok.save_pretrained(path)
    params = sum(p.numel() for p in BertForSequenceClassification(config).parameters())

    def run(records: list[str], batch_size: int) -> Any:
        return score_records(
            {"response": records},
            ["sentiment-classifier"],
            classifier=str(path),
            batch_size=batch_size,
            max_length=128,
        )

    run(texts[:4], 4)  # load once, outside the timings
    _, t_batch = timed(lambda: run(texts, 32))
    single = texts[:n_single]
    _, t_single = timed(lambda: run(single, 1))
    lengths = [len(ids) for ids in tok(texts)["input_ids"]]
    return {
        "parameters": params,
        "records": len(texts),
        "mean_tokens": round(sum(min(n, 128) for n in lengths) / len(lengths), 1),
        "batched_records_per_s (batch 32)": round(len(texts) / t_batch, 1),
        "one_at_a_time_records_per_s": round(n_single / t_single, 1),
    }


def bench_compression(tok: Any, texts: list[str], n_records: int, root: Path) -> dict[str, Any]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from resistkit.scoring import ScoringContext, clear_model_cache, score_records

    # 128-token windows of running text, decoded back to strings.
    stream: list[int] = []
    for ids in tok(texts, add_special_tokens=False)["input_ids"]:
        stream.extend(ids)
        if len(stream) >= 128 * n_records:
            break
    windows = [stream[i * 128 : (i + 1) * 128] for i in range(len(stream) // 128)][:n_records]
    records = [tok.decode(w) for w in windows]

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        intermediate_size=384,
        max_position_embeddings=256,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    path = root / "llama"
    model.save_pretrained(path)
    tok.save_pretrained(path)

    clear_model_cache()
    _, t_load = timed(
        lambda: score_records({"response": records[:2]}, ["compression"], model=str(path))
    )
    out: dict[str, Any] = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "records": len(records),
        "first_call_incl_load_s": round(t_load, 3),
    }
    for batch_size in (16, 32, 64):
        ctx = ScoringContext()
        result, elapsed = timed(
            lambda bs=batch_size, c=ctx: score_records(
                {"response": records}, ["compression"], model=str(path), batch_size=bs, context=c
            )
        )
        tokens = sum(result["compression_tokens"])
        out[f"batch {batch_size}"] = {
            "seconds": round(elapsed, 3),
            "records_per_s": round(len(records) / elapsed, 1),
            "tokens_per_s": round(tokens / elapsed, 1),
            "mean_tokens": round(tokens / len(records), 1),
            "corpus_bits_per_token": round(ctx.info["compression"]["corpus"]["bits_per_token"], 4),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()

    import torch

    texts = [t for t in corpus_texts() if t.strip()]
    tok = make_tokenizer(texts)
    short = [t[:400] for t in texts]  # review/snippet-sized records
    n_lex, n_clf, n_comp = (400, 64, 100) if args.quick else (4000, 512, 1000)
    with tempfile.TemporaryDirectory(prefix="bench-score-") as tmp:
        root = Path(tmp)
        report = {
            "machine": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "cpus": os.cpu_count(),
            },
            "sentiment-lexicon": bench_lexicon((short * 4)[:n_lex], n_single=min(n_lex, 500)),
            "sentiment-classifier": bench_classifier(
                tok, (short * 4)[:n_clf], n_single=min(n_clf, 64), root=root
            ),
            "compression": bench_compression(tok, texts * 4, n_comp, root),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
