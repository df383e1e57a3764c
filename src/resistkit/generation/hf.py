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
    import torch
    from rich.progress import Progress

    tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    lengths = [len(ids) for ids in tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]
    batches = length_sorted_batches(lengths, batch_size)
    out: list[list[str]] = [[] for _ in prompts]
    device = next(model.parameters()).device
    model.eval()
    done_batches = done_batches or set()
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("generating", total=len(batches))
        for b, idx in enumerate(batches):
            if b in done_batches:
                bar.advance(task)
                continue
            enc = tokenizer(
                [prompts[i] for i in idx], return_tensors="pt", padding=True,
                add_special_tokens=False,
            ).to(device)
            torch.manual_seed(params.seed + b)
            with torch.inference_mode():
                gen = model.generate(
                    **enc, **params.hf_kwargs(), pad_token_id=tokenizer.pad_token_id
                )
            new = gen[:, enc["input_ids"].shape[1] :]
            texts = tokenizer.batch_decode(new, skip_special_tokens=True)
            k = params.num_return_sequences
            batch_responses = [texts[j * k : (j + 1) * k] for j in range(len(idx))]
            for i, resp in zip(idx, batch_responses, strict=True):
                out[i] = resp
            if on_batch is not None:
                on_batch(b, idx, batch_responses)
            bar.advance(task)
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
