"""Batched, seeded sampling with transformers' ``generate``, resumable batch by batch.

Prompts are sorted by token length so a batch wastes little padding; each batch draws from its
own seed (``seed + batch index``), so the output does not depend on what ran before it and an
interrupted run resumes batch by batch with the same numbers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resistkit.generation.common import DecodingParams, length_sorted_batches, write_generation_rows

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def generate_texts(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    params: DecodingParams,
    *,
    batch_size: int = 32,
    done_batches: set[int] | None = None,
    on_batch: Any = None,
    progress: bool = True,
) -> list[list[str]]:
    """Responses (``num_return_sequences`` per prompt) in prompt order.

    ``on_batch(batch_index, indices, responses)`` is called after each batch, for
    checkpointing; batches in ``done_batches`` are skipped (their entries stay empty).
    """

    from resistkit import progress as report

    tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    lengths = [len(ids) for ids in tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]
    batches = length_sorted_batches(lengths, batch_size)
    out: list[list[str]] = [[] for _ in prompts]
    device = next(model.parameters()).device
    model.eval()
    done_batches = done_batches or set()
    k = params.num_return_sequences
    reporter = report.current() if progress else report.Reporter()
    done = sum(len(batches[b]) for b in done_batches if b < len(batches)) * k
    reporter.start("generating", len(prompts) * k, "seq", done=done)
    for b, idx in enumerate(batches):
        if b in done_batches:
            continue
        enc = tokenizer(
            [prompts[i] for i in idx], return_tensors="pt", padding=True,
            add_special_tokens=False,
        ).to(device)
        new = sample_batch(model, enc["input_ids"], enc["attention_mask"], params,
                           seed=params.seed + b, pad_token_id=tokenizer.pad_token_id)
        texts = tokenizer.batch_decode(new, skip_special_tokens=True)
        batch_responses = [texts[j * k : (j + 1) * k] for j in range(len(idx))]
        for i, resp in zip(idx, batch_responses, strict=True):
            out[i] = resp
        if on_batch is not None:
            on_batch(b, idx, batch_responses)
        reporter.update(advance=len(idx) * k)
    return out


def sample_batch(model: Any, input_ids: Any, attention_mask: Any, params: DecodingParams, *,
                 seed: int, pad_token_id: int) -> Any:
    """The new tokens of one left-padded batch, drawn from ``seed`` (every backend-free sampler
    of resistkit, evaluation and GRPO's rollouts alike, goes through here)."""
    import torch

    torch.manual_seed(seed)
    with torch.inference_mode():
        gen = model.generate(input_ids=input_ids, attention_mask=attention_mask,
                             **params.hf_kwargs(), pad_token_id=pad_token_id)
    return gen[:, input_ids.shape[1]:]


def sample_completions(model: Any, tokenizer: Any, prompt_ids: Sequence[Sequence[int]],
                       params: DecodingParams, *, batch_size: int) -> list[list[int]]:
    """One completion per tokenised prompt (``num_return_sequences`` 1), in prompt order, each
    cut after its first end-of-text token; batches by length, batch b drawn from seed + b."""
    import torch

    assert params.num_return_sequences == 1
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    device = next(model.parameters()).device
    out: list[list[int]] = [[] for _ in prompt_ids]
    for b, idx in enumerate(length_sorted_batches([len(p) for p in prompt_ids], batch_size)):
        width = max(len(prompt_ids[i]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):  # left padding: every prompt ends at the right edge
            n = len(prompt_ids[i])
            ids[row, width - n:] = torch.tensor(list(prompt_ids[i]))
            mask[row, width - n:] = 1
        new = sample_batch(model, ids.to(device), mask.to(device), params, seed=params.seed + b,
                           pad_token_id=pad).tolist()
        for row, i in enumerate(idx):
            tokens = new[row]
            if eos is not None and eos in tokens:
                tokens = tokens[: tokens.index(eos) + 1]
            out[i] = tokens
    return out


def generate_to_file(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    output: str | Path,
    params: DecodingParams,
    *,
    record_model: Any,
    rendered: Sequence[str] | None = None,
    batch_size: int = 32,
    prompt_ids: Sequence[Any] | None = None,
    extra: dict[str, Any] | None = None,
    progress: bool = True,
) -> Path:
    """Generate for ``prompts`` and write one JSON line per (prompt, sample).

    ``record_model`` is what every row names as its model; ``rendered`` are the texts
    actually fed to the model (chat template applied); ``prompts``
    are what is recorded. A ``.partial`` file next to the output holds finished batches, so a
    killed run resumes where it stopped; the final file appears only when complete.
    """
    from resistkit.runinfo import package_versions

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    rendered = list(rendered) if rendered is not None else list(prompts)
    ids = list(prompt_ids) if prompt_ids is not None else list(range(len(prompts)))

    partial = output.with_name(output.name + ".partial")
    done: dict[int, dict[int, list[str]]] = {}
    if partial.exists():
        for line in partial.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut by the kill: everything after it is redone
            done[row["batch"]] = {int(k): v for k, v in row["responses"].items()}

    def save_batch(b: int, idx: list[int], responses: list[list[str]]) -> None:
        with open(partial, "a", encoding="utf-8") as fh:
            done_now = dict(zip(idx, responses, strict=True))
            fh.write(json.dumps({"batch": b, "responses": done_now}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    # Rewrite the partial file without any torn trailing line before appending to it.
    if partial.exists():
        with open(partial, "w", encoding="utf-8") as fh:
            for b, resp in done.items():
                fh.write(json.dumps({"batch": b, "responses": resp}) + "\n")

    responses = generate_texts(
        model, tokenizer, rendered, params, batch_size=batch_size,
        done_batches=set(done), on_batch=save_batch, progress=progress,
    )
    for resp in done.values():
        for i, r in resp.items():
            responses[i] = r

    versions = package_versions()
    meta = {"torch": versions["torch"], "transformers": versions["transformers"]}
    write_generation_rows(output, record_model, prompts, responses, ids,
                          asdict(params) | {"batch_size": batch_size}, meta, extra)
    partial.unlink(missing_ok=True)
    return output
