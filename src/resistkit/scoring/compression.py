"""``compression``: cross-entropy of a causal LM on the text, in bits per token and per byte.

This is the empirical compression rate of the paper's theory (an LM with loss L compresses
text to L bits per token under arithmetic coding). With a prompt, only response tokens are
scored (the prompt is conditioned on); without one, the whole text. Per-record columns are
written, and the corpus total is token-weighted (total bits / total tokens, not a mean of
per-record means) because that is the rate at which the corpus as a whole is compressed.
"""

from __future__ import annotations

import math

from resistkit.scoring.lm import input_limit, lm_batches, load_scoring_lm, note_model
from resistkit.scoring.registry import (
    Batch,
    Columns,
    ModelOptions,
    ScoringContext,
    nan_columns,
    register_scorer,
)

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
    model_options=ModelOptions(batch_size=16),
)
def compression(
    batch: Batch, ctx: ScoringContext, run: ModelOptions, *, model: str | None = None,
    prompt_special_tokens: bool = True,
) -> Columns:
    import torch
    import torch.nn.functional as F

    scoring = load_scoring_lm(model, "compression", "model", run)
    lm = scoring.model
    limit = input_limit(scoring, run.max_length)
    note_model(ctx, "model", scoring)
    ctx.note("max_length", limit)

    seqs, batches = lm_batches(scoring, batch, limit, ctx, prompt_special_tokens, run.batch_size)
    n = len(seqs)
    bits, tokens, nbytes = nan_columns(n, "bits", "tokens", "bytes")
    with torch.inference_mode():
        for rows, ids, mask, target in batches:
            logits = lm(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            labels = ids[:, 1:].masked_fill(~target, -100)
            nats = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none"
            ).view(labels.shape)
            totals = (nats.sum(dim=1) / LN2).tolist()
            for i, total in zip(rows, totals, strict=True):
                seq = seqs[i]
                assert seq is not None
                bits[i] = total
                tokens[i] = float(seq.n_target)
                nbytes[i] = float(seq.n_bytes)
            ctx.advance(len(rows))

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
