"""Fine-tuning the judge's classifier: a plain torch loop over length-grouped batches.

A plain loop rather than ``transformers.Trainer``: the job is one epoch of a small classifier,
and the loop keeps the order of batches, the length grouping and the single final save
explicit, without Trainer's output directory, intermediate checkpoints or accelerate state.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

WARMUP_RATIO = 0.1
WEIGHT_DECAY = 0.01
MAX_GRAD_NORM = 1.0
# Batches are formed from pools of this many batches sorted by length, so a batch pads to
# similar lengths (less wasted compute) while the order across pools stays random.
_POOL_BATCHES = 50
_LOG_EVERY = 20


def validation_indices(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(kept, validation) row indices: a seeded ``fraction`` of ``n`` training rows set aside.

    The held-out rows are the final test and must not steer any choice of settings; a
    validation set carved from ``train`` can.
    """
    count = round(fraction * n)
    if count == 0:
        return list(range(n)), []
    order = list(range(n))
    random.Random(f"validation-{seed}").shuffle(order)
    held = set(order[:count])
    return [i for i in range(n) if i not in held], sorted(held)


def carve_validation(
    texts: list[str], labels: list[int], fraction: float, seed: int
) -> tuple[list[str], list[int], list[str], list[int]]:
    """Split a seeded ``fraction`` of the training snippets off as a validation set."""
    keep, val = validation_indices(len(texts), fraction, seed)
    if not val:
        return texts, labels, [], []
    return (
        [texts[i] for i in keep],
        [labels[i] for i in keep],
        [texts[i] for i in val],
        [labels[i] for i in val],
    )


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, rng: random.Random
) -> list[list[int]]:
    """Shuffled batches of similar length: shuffle, sort within pools, shuffle the batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * _POOL_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


@dataclass
class TrainedClassifier:
    model: Any
    tokenizer: Any
    num_train: int
    pairs: bool = False  # trained on (prompt, text) pairs
    steps: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def final_loss(self) -> float:
        tail = self.losses[-min(len(self.losses), _LOG_EVERY):]
        return sum(tail) / len(tail)


def _optimizer(model: Any, lr: float, total_steps: int) -> tuple[Any, Any]:
    import torch
    from transformers import get_linear_schedule_with_warmup

    # No weight decay on biases and LayerNorm weights (the usual BERT fine-tuning recipe).
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(param)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0}],
        lr=lr,
    )
    scheduler = get_linear_schedule_with_warmup(
        optimizer, round(WARMUP_RATIO * total_steps), total_steps
    )
    return optimizer, scheduler


def train_classifier(
    base: str, texts: list[str], labels: list[int], id2label: dict[int, str], *, epochs: int,
    lr: float, batch_size: int, max_length: int, seed: int, prompts: list[str] | None = None,
) -> TrainedClassifier:
    """Fine-tune ``base`` with a fresh 2-label head on (texts, labels); float32 throughout
    (bf16 matmuls are 25-50x slower on these CPUs). Steps and loss go to resistkit.progress.

    With ``prompts`` each input is the pair (prompt, text), encoded as the scorers encode it:
    ``[CLS] prompt [SEP] text [SEP]`` with segment ids, the longer segment trimmed first."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

    from resistkit import progress

    started = time.perf_counter()
    set_seed(seed)  # the new head's initialisation, dropout and the batch order
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(id2label), id2label=id2label,
        label2id={v: k for k, v in id2label.items()}, dtype=torch.float32,
    )
    if prompts is None:
        enc = tokenizer(texts, truncation=True, max_length=max_length)
    else:
        enc = tokenizer(prompts, texts, truncation=True, max_length=max_length)
    encoded = enc["input_ids"]
    # BERT marks the second segment with token type 1; scoring passes them, so training must.
    segments = enc.get("token_type_ids") if prompts is not None else None
    lengths = [len(ids) for ids in encoded]
    rng = random.Random(seed)
    total = math.ceil(len(texts) / batch_size) * epochs
    optimizer, scheduler = _optimizer(model, lr, total)
    out = TrainedClassifier(model, tokenizer, len(texts), pairs=prompts is not None)
    reporter = progress.current()
    reporter.start("training the judge", total, "step")
    model.train()
    for _ in range(epochs):
        for idx in length_grouped_batches(lengths, batch_size, rng):
            width = max(lengths[i] for i in idx)
            ids = torch.full((len(idx), width), tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            types = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                ids[row, : lengths[i]] = torch.tensor(encoded[i])
                mask[row, : lengths[i]] = 1
                if segments is not None:
                    types[row, : lengths[i]] = torch.tensor(segments[i])
            target = torch.tensor([labels[i] for i in idx])
            loss = model(input_ids=ids, attention_mask=mask, token_type_ids=types,
                         labels=target).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            out.losses.append(loss.item())
            out.steps += 1
            if out.steps % _LOG_EVERY == 0 or out.steps == total:
                recent = out.losses[-_LOG_EVERY:]
                log.info("step %d/%d  loss %.4f  %.0f s", out.steps, total,
                         sum(recent) / len(recent), time.perf_counter() - started)
            reporter.update(done=out.steps, loss=out.losses[-1])
    model.eval()
    out.seconds = time.perf_counter() - started
    return out
