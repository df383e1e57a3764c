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

from resistkit.errors import ScoringError
from resistkit.scoring.batching import length_sorted_batches, max_input_length, pad_right
from resistkit.scoring.registry import ScoringContext

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ScoringLM:
    """A causal LM loaded for scoring: its resolved name, tokenizer, weights and device."""

    resolved: Any
    tokenizer: Any
    model: Any
    device: Any


def load_scoring_lm(name: str | None, scorer: str, option: str, run: Any) -> ScoringLM:
    """Resolve and load (once per process) the causal LM a scorer option names."""
    from resistkit.models import load_causal_lm, load_tokenizer, resolve_model

    if not name:
        flag = "--" + option.replace("_", "-")
        raise ScoringError(f"{scorer} needs a causal LM: pass {option}= ({flag}) a path, hub id "
                           "or built-in name")
    resolved = resolve_model(name)
    tokenizer = load_tokenizer(resolved, padding_side="right", cache=True)
    model, dev = load_causal_lm(resolved, dtype=run.dtype, device=run.device, cache=True)
    return ScoringLM(resolved, tokenizer, model, dev)


def note_model(ctx: ScoringContext, key: str, lm: ScoringLM) -> None:
    from resistkit.models import describe_model

    ctx.note(key, describe_model(lm.resolved, lm.model))


def input_limit(lm: ScoringLM, max_length: int | None) -> int:
    return max_input_length(lm.tokenizer, lm.model, max_length)


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


def lm_batches(
    lm: ScoringLM, batch: dict[str, list[Any]], limit: int, ctx: ScoringContext,
    prompt_special_tokens: bool, batch_size: int,
) -> tuple[list[LMSequence | None], Iterator[tuple[list[int], Any, Any, Any]]]:
    """The records as sequences (None: not scorable, counted) and their length-sorted batches
    as (record indices, input_ids, attention_mask, target_mask)."""
    seqs = build_sequences(lm.tokenizer, batch.get("prompt"), batch["response"], limit, ctx,
                           prompt_special_tokens)
    live = [i for i, s in enumerate(seqs) if s is not None]
    ctx.advance(len(seqs) - len(live))

    def batches() -> Iterator[tuple[list[int], Any, Any, Any]]:
        for idx, ids, mask, target in iter_batches([seqs[i] for i in live], batch_size,
                                                   lm.tokenizer.pad_token_id, lm.device):
            yield [live[j] for j in idx], ids, mask, target

    return seqs, batches()
