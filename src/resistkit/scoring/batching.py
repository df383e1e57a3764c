"""Input limits and length-sorted batches for the model-based scorers.

Models themselves are resolved and loaded by ``resistkit.models`` (one resolver, one cache);
what is left here is how scorers feed them text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from resistkit.errors import ScoringError

if TYPE_CHECKING:
    import torch

# Tokenizers report a huge sentinel when they do not know their limit.
_UNKNOWN_MAX_LENGTH = 1_000_000


def max_input_length(tokenizer: Any, model: Any, override: int | None) -> int:
    """The longest input we feed: the override, else the smaller of tokenizer and model limits."""
    if override is not None:
        if override < 2:
            raise ScoringError(f"max_length must be at least 2, got {override}")
        return override
    limits = []
    tok_limit = getattr(tokenizer, "model_max_length", None)
    if tok_limit and tok_limit < _UNKNOWN_MAX_LENGTH:
        limits.append(int(tok_limit))
    cfg_limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if cfg_limit:
        limits.append(int(cfg_limit))
    return min(limits) if limits else 512


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first (fail fast on memory)."""
    from resistkit.generation.common import length_sorted_batches as batches_by_length

    if batch_size < 1:
        raise ScoringError(f"batch_size must be positive, got {batch_size}")
    return batches_by_length(lengths, batch_size)


def encoded_batches(tokenizer: Any, texts: Sequence[str], batch_size: int, limit: int,
                    device: Any, ctx: Any = None, add_special_tokens: bool = True,
                    prompts: Sequence[str] | None = None) -> Any:
    """Yield (indices, encoding on ``device``) over length-sorted batches of ``texts``,
    truncated to ``limit`` tokens; the truncations are counted in the scorer's info.

    With ``prompts`` each input is the text pair (prompt, text), as a judge trained on pairs
    reads it; truncation trims the longer of the two first (the tokenizer's default)."""

    def encode(idx: Sequence[int], **kwargs: Any) -> Any:
        first = [prompts[i] for i in idx] if prompts is not None else [texts[i] for i in idx]
        second = [texts[i] for i in idx] if prompts is not None else None
        return tokenizer(first, second, add_special_tokens=add_special_tokens, **kwargs)

    lengths = [len(ids) for ids in encode(range(len(texts)))["input_ids"]]
    if ctx is not None:
        ctx.count("truncated", sum(n > limit for n in lengths))
    for idx in length_sorted_batches(lengths, batch_size):
        enc = encode(idx, truncation=True, max_length=limit, padding=True, return_tensors="pt")
        yield idx, enc.to(device)


def pad_right(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token id lists into (input_ids, attention_mask) tensors."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask
