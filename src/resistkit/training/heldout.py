"""Held-out evaluation of a pre-training run: the text laid out as training sees it, bits
per token under the model, and the unigram floor a model must beat to have learnt context."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase


def heldout_blocks(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], block: int, max_tokens: int | None
) -> torch.Tensor:
    """Held-out documents laid out exactly as training sees them: text + EOS, concatenated,
    cut into `block`-token rows (the remainder shorter than a block is dropped)."""
    import torch

    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for enc in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        ids.extend(enc)
        if eos is not None:
            ids.append(eos)
        if max_tokens is not None and len(ids) >= max_tokens:
            break
    if max_tokens is not None:
        ids = ids[:max_tokens]
    rows = len(ids) // block
    if rows == 0:  # less than one block of held-out text: one short row
        return torch.tensor([ids], dtype=torch.long)
    return torch.tensor(ids[: rows * block], dtype=torch.long).view(rows, block)


def bits_per_token(model: Any, blocks: torch.Tensor, batch_size: int = 16) -> float:
    """Mean next-token cross-entropy in bits over every position but each row's first."""
    import torch
    import torch.nn.functional as F

    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            for i in range(0, len(blocks), batch_size):
                x = blocks[i : i + batch_size].to(device)
                logits = model(input_ids=x, use_cache=False).logits[:, :-1].float()
                target = x[:, 1:]
                total += F.cross_entropy(
                    logits.reshape(-1, logits.size(-1)), target.reshape(-1), reduction="sum"
                ).item()
                count += target.numel()
    finally:
        model.train(was_training)
    return total / max(count, 1) / math.log(2)


def unigram_bits_per_token(train_ids: Any, blocks: torch.Tensor, vocab_size: int) -> float:
    """Bits/token on the held-out positions of a unigram model of the training tokens
    (add-one smoothing): the floor a language model must beat to have learnt any context."""
    import numpy as np

    counts = np.bincount(np.asarray(train_ids, dtype=np.int64), minlength=vocab_size)
    logp = np.log2((counts + 1.0) / (counts.sum() + len(counts)))
    targets = blocks[:, 1:].reshape(-1).numpy()
    return float(-logp[targets].mean())


def packed_token_ids(dataset: Dataset) -> Any:
    """All token ids of a packed (tokenized) dataset, as one flat array, without Python lists."""
    column = dataset.data.column("input_ids").combine_chunks()
    return column.flatten().to_numpy()
