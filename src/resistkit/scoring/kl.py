"""``kl``: mean per-token KL divergence between a model and a reference model, both directions.

At every scored (response) position t both models predict the next token from the same
context; with p = model and q = reference:

    KL(p||q)_t = sum_v p_t(v) (log p_t(v) - log q_t(v))      (column kl_model_ref)
    KL(q||p)_t = sum_v q_t(v) (log q_t(v) - log p_t(v))      (column kl_ref_model)

averaged over the record's response tokens (the whole text when there is no prompt), in nats.
Both models must share one tokenizer, otherwise per-token distributions are not comparable.
"""

from __future__ import annotations

import math
from typing import Any

from resistkit.scoring.lm import build_sequences, iter_batches
from resistkit.scoring.models import (
    describe_model,
    load_pretrained,
    load_tokenizer,
    max_input_length,
    split_revision,
)
from resistkit.scoring.registry import Batch, Columns, ScoringContext, ScoringError, register_scorer


def check_same_tokenizer(a: Any, b: Any, name_a: str, name_b: str) -> None:
    problems = []
    if a.get_vocab() != b.get_vocab():
        problems.append(f"vocabularies differ ({len(a)} vs {len(b)} tokens)")
    for attr in ("bos_token_id", "eos_token_id"):
        if getattr(a, attr) != getattr(b, attr):
            problems.append(f"{attr} {getattr(a, attr)} vs {getattr(b, attr)}")
    if problems:
        raise ScoringError(
            f"kl needs the model and the reference to share a tokenizer, but {name_a!r} and "
            f"{name_b!r} do not: {'; '.join(problems)}"
        )


@register_scorer(
    "kl",
    columns={
        "kl_model_ref": "KL(model||ref), nats/token; 0 = same",
        "kl_ref_model": "KL(ref||model), nats/token; 0 = same",
        "kl_tokens": "scored tokens",
    },
    auxiliary=("kl_tokens",),
    description="per-token KL between a model and a reference model, both directions",
    uses_prompt=True,
)
def kl(
    batch: Batch,
    ctx: ScoringContext,
    *,
    model: str | None = None,
    ref_model: str | None = None,
    batch_size: int = 8,
    max_length: int | None = None,
    prompt_special_tokens: bool = True,
    device: str = "auto",
    dtype: str = "auto",
) -> Columns:
    import torch
    from transformers import AutoModelForCausalLM

    if not model or not ref_model:
        raise ScoringError("kl needs model= (--model) and ref_model= (--ref-model)")
    path, revision = split_revision(model)
    ref_path, ref_revision = split_revision(ref_model)
    tokenizer = load_tokenizer(path, revision)
    check_same_tokenizer(tokenizer, load_tokenizer(ref_path, ref_revision), model, ref_model)
    p_model, dev = load_pretrained(AutoModelForCausalLM, path, revision, dtype, device)
    q_model, _ = load_pretrained(AutoModelForCausalLM, ref_path, ref_revision, dtype, device)
    limit = min(
        max_input_length(tokenizer, p_model, max_length),
        max_input_length(tokenizer, q_model, max_length),
    )
    ctx.note("model", describe_model(path, revision, p_model))
    ctx.note("ref_model", describe_model(ref_path, ref_revision, q_model))
    ctx.note("max_length", limit)
    ctx.note("units", "nats per token")

    seqs = build_sequences(
        tokenizer, batch.get("prompt"), batch["response"], limit, ctx, prompt_special_tokens
    )
    live = [i for i, s in enumerate(seqs) if s is not None]
    n = len(seqs)
    pq = [math.nan] * n
    qp = [math.nan] * n
    tokens = [math.nan] * n
    ctx.advance(n - len(live))
    with torch.inference_mode():
        for idx, ids, mask, target in iter_batches(
            [seqs[i] for i in live], batch_size, tokenizer.pad_token_id, dev
        ):
            logp = p_model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            logq = q_model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            if logp.shape[-1] != logq.shape[-1]:
                raise ScoringError(
                    f"kl: {model!r} predicts {logp.shape[-1]} token ids but {ref_model!r} "
                    f"predicts {logq.shape[-1]}; the output vocabularies must match"
                )
            logp = torch.log_softmax(logp, dim=-1)
            logq = torch.log_softmax(logq, dim=-1)
            diff = logp - logq
            kl_pq = (logp.exp() * diff).sum(dim=-1)
            kl_qp = (logq.exp() * -diff).sum(dim=-1)
            weights = target.float()
            counts = weights.sum(dim=1)
            rows = zip(
                idx,
                ((kl_pq * weights).sum(dim=1) / counts).tolist(),
                ((kl_qp * weights).sum(dim=1) / counts).tolist(),
                counts.tolist(),
                strict=True,
            )
            for j, a, b, c in rows:
                pq[live[j]], qp[live[j]], tokens[live[j]] = a, b, c
            ctx.advance(len(idx))

    scored = [i for i in range(n) if not math.isnan(pq[i])]
    total_tokens = sum(tokens[i] for i in scored)
    ctx.note(
        "corpus",
        {
            "kl_model_ref": (
                sum(pq[i] * tokens[i] for i in scored) / total_tokens if total_tokens else None
            ),
            "kl_ref_model": (
                sum(qp[i] * tokens[i] for i in scored) / total_tokens if total_tokens else None
            ),
            "tokens": int(total_tokens),
            "records": len(scored),
            "weighting": "token-weighted mean over all scored tokens (nats per token)",
        },
    )
    return {"kl_model_ref": pq, "kl_ref_model": qp, "kl_tokens": tokens}
