"""``compression``: cross-entropy of a causal LM on the text, in bits per token and per byte.

This is the empirical compression rate of the paper's theory (an LM with loss L compresses
text to L bits per token under arithmetic coding). With a prompt, only response tokens are
scored (the prompt is conditioned on); without one, the whole text. Per-record columns are
written, and the corpus total is token-weighted (total bits / total tokens, not a mean of
per-record means) because that is the rate at which the corpus as a whole is compressed.
"""

from __future__ import annotations

import math

from resistkit.scoring.lm import build_sequences, iter_batches
from resistkit.scoring.models import (
    describe_model,
    load_pretrained,
    load_tokenizer,
    max_input_length,
    split_revision,
)
from resistkit.scoring.registry import Batch, Columns, ScoringContext, ScoringError, register_scorer

LN2 = math.log(2.0)


@register_scorer(
    "compression",
    columns={
        "compression_bits_per_token": "bits/token; lower = better compressed",
        "compression_bits_per_byte": "bits/UTF-8 byte; lower = better compressed",
        "compression_bits": "total bits of the scored text",
        "compression_tokens": "scored tokens",
        "compression_bytes": "UTF-8 bytes of the scored text",
    },
    auxiliary=("compression_bits", "compression_tokens", "compression_bytes"),
    description="causal-LM bits per token / per byte (response tokens when there is a prompt)",
    uses_prompt=True,
)
def compression(
    batch: Batch,
    ctx: ScoringContext,
    *,
    model: str | None = None,
    batch_size: int = 16,
    max_length: int | None = None,
    prompt_special_tokens: bool = True,
    device: str = "auto",
    dtype: str = "auto",
) -> Columns:
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM

    if not model:
        raise ScoringError("compression needs a causal LM: pass model= (--model) a path or hub id")
    path, revision = split_revision(model)
    tokenizer = load_tokenizer(path, revision)
    lm, dev = load_pretrained(AutoModelForCausalLM, path, revision, dtype, device)
    limit = max_input_length(tokenizer, lm, max_length)
    ctx.note("model", describe_model(path, revision, lm))
    ctx.note("max_length", limit)

    seqs = build_sequences(
        tokenizer, batch.get("prompt"), batch["response"], limit, ctx, prompt_special_tokens
    )
    live = [i for i, s in enumerate(seqs) if s is not None]
    n = len(seqs)
    bits = [math.nan] * n
    tokens = [math.nan] * n
    nbytes = [math.nan] * n
    ctx.advance(n - len(live))
    with torch.inference_mode():
        for idx, ids, mask, target in iter_batches(
            [seqs[i] for i in live], batch_size, tokenizer.pad_token_id, dev
        ):
            logits = lm(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            labels = ids[:, 1:].masked_fill(~target, -100)
            nats = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none"
            ).view(labels.shape)
            totals = (nats.sum(dim=1) / LN2).tolist()
            for j, total in zip(idx, totals, strict=True):
                seq = seqs[live[j]]
                bits[live[j]] = total
                tokens[live[j]] = float(seq.n_target)
                nbytes[live[j]] = float(seq.n_bytes)
            ctx.advance(len(idx))

    per_token = [b / t for b, t in zip(bits, tokens, strict=True)]
    per_byte = [b / y if y else math.nan for b, y in zip(bits, nbytes, strict=True)]
    scored = [i for i in range(n) if not math.isnan(bits[i])]
    total_bits = sum(bits[i] for i in scored)
    total_tokens = int(sum(tokens[i] for i in scored))
    total_bytes = int(sum(nbytes[i] for i in scored))
    ctx.note(
        "corpus",
        {
            "bits_per_token": total_bits / total_tokens if total_tokens else None,
            "bits_per_byte": total_bits / total_bytes if total_bytes else None,
            "bits": total_bits,
            "tokens": total_tokens,
            "bytes": total_bytes,
            "records": len(scored),
            "weighting": "token-weighted: total bits / total tokens (and / total bytes)",
        },
    )
    return {
        "compression_bits_per_token": per_token,
        "compression_bits_per_byte": per_byte,
        "compression_bits": bits,
        "compression_tokens": tokens,
        "compression_bytes": nbytes,
    }
