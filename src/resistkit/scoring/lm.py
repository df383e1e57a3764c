"""Token layout shared by the causal-LM scorers (``compression``, ``kl``).

A record becomes ``context + target`` token ids. The context is the tokenised prompt (with
the tokenizer's special tokens unless ``prompt_special_tokens=False``) or, with no prompt, a
single start token (BOS, else EOS as GPT-2 style models use it) so that the first target token
is predicted too. The target is the response tokenised on its own: tokenising prompt and
response separately keeps the split exact, whereas a joint tokenisation can merge characters
across the boundary. Only target tokens are scored; the context is masked out.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from resistkit.scoring.models import length_sorted_batches, pad_right
from resistkit.scoring.registry import ScoringContext, ScoringError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class LMSequence:
    ids: list[int]
    n_context: int  # leading tokens that are conditioned on, not scored
    n_bytes: int  # UTF-8 bytes of the scored target text (after any truncation)
    truncated: bool

    @property
    def n_target(self) -> int:
        return len(self.ids) - self.n_context


def start_ids(tokenizer: Any) -> list[int]:
    for token_id in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return [int(token_id)]
    raise ScoringError(
        "the tokenizer has neither a BOS nor an EOS token, so the first token of a text with "
        "no prompt cannot be conditioned on anything; give records a prompt"
    )


def build_sequences(
    tokenizer: Any,
    prompts: Sequence[str] | None,
    texts: Sequence[str],
    limit: int,
    ctx: ScoringContext | None = None,
    prompt_special_tokens: bool = True,
) -> list[LMSequence | None]:
    """One sequence per record, or None (with the reason counted) when nothing can be scored.

    ``prompt_special_tokens=False`` tokenises prompts without BOS, for generations made that way.
    """
    fast = bool(getattr(tokenizer, "is_fast", False))
    enc = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=fast)
    if prompts is not None:
        prompt_ids = tokenizer(list(prompts), add_special_tokens=prompt_special_tokens)["input_ids"]
    start = None
    out: list[LMSequence | None] = []
    for i, text in enumerate(texts):
        if prompts is not None and prompts[i]:
            context = list(prompt_ids[i])
        else:
            start = start if start is not None else start_ids(tokenizer)
            context = start
        target = list(enc["input_ids"][i])
        if len(context) >= limit:
            if ctx is not None:
                ctx.not_scored("prompt_fills_context")
            out.append(None)
            continue
        if not target:
            if ctx is not None:
                ctx.not_scored("no_tokens")
            out.append(None)
            continue
        room = limit - len(context)
        truncated = len(target) > room
        if truncated:
            target = target[:room]
            if fast:
                end = enc["offset_mapping"][i][room - 1][1]
                n_bytes = len(text[:end].encode("utf-8"))
            else:
                n_bytes = len(tokenizer.decode(target).encode("utf-8"))
        else:
            n_bytes = len(text.encode("utf-8"))
        out.append(LMSequence(context + target, len(context), n_bytes, truncated))
    if ctx is not None:
        ctx.count("truncated", sum(1 for s in out if s is not None and s.truncated))
    return out


def iter_batches(
    seqs: Sequence[LMSequence], batch_size: int, pad_id: int, device: Any
) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield (indices, input_ids, attention_mask, target_mask) in length-sorted batches.

    ``target_mask[b, j]`` is True when token ``j + 1`` is a scored target, i.e. aligned with
    ``logits[:, :-1]`` (the logit at position j predicts token j + 1).
    """
    import torch

    for idx in length_sorted_batches([len(s.ids) for s in seqs], batch_size):
        ids, mask = pad_right([seqs[i].ids for i in idx], pad_id)
        positions = torch.arange(1, ids.shape[1])
        starts = torch.tensor([seqs[i].n_context for i in idx]).unsqueeze(1)
        ends = torch.tensor([len(seqs[i].ids) for i in idx]).unsqueeze(1)
        target = (positions >= starts) & (positions < ends)
        yield idx, ids.to(device), mask.to(device), target.to(device)
