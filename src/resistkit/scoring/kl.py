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

from resistkit.errors import ScoringError
from resistkit.scoring.lm import input_limit, lm_batches, load_scoring_lm, note_model
from resistkit.scoring.registry import (
    Batch,
    Columns,
    ModelOptions,
    ScoringContext,
    nan_columns,
    register_scorer,
)


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
    model_options=ModelOptions(batch_size=8),
)
def kl(
    batch: Batch, ctx: ScoringContext, run: ModelOptions, *, model: str | None = None,
    ref_model: str | None = None, prompt_special_tokens: bool = True,
) -> Columns:
    import torch

    p_lm = load_scoring_lm(model, "kl", "model", run)
    q_lm = load_scoring_lm(ref_model, "kl", "ref_model", run)
    check_same_tokenizer(p_lm.tokenizer, q_lm.tokenizer, str(model), str(ref_model))
    p_model, q_model = p_lm.model, q_lm.model
    limit = min(input_limit(p_lm, run.max_length), input_limit(q_lm, run.max_length))
    note_model(ctx, "model", p_lm)
    note_model(ctx, "ref_model", q_lm)
    ctx.note("max_length", limit)
    ctx.note("units", "nats per token")

    seqs, batches = lm_batches(p_lm, batch, limit, ctx, prompt_special_tokens, run.batch_size)
    n = len(seqs)
    pq, qp, tokens = nan_columns(n, "kl_model_ref", "kl_ref_model", "tokens")
    with torch.inference_mode():
        for rows, ids, mask, target in batches:
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
            values = zip(
                rows,
                ((kl_pq * weights).sum(dim=1) / counts).tolist(),
                ((kl_qp * weights).sum(dim=1) / counts).tolist(),
                counts.tolist(),
                strict=True,
            )
            for i, a, b, c in values:
                pq[i], qp[i], tokens[i] = a, b, c
            ctx.advance(len(rows))

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
