"""What every generation backend shares: decoding parameters, batching by length, and the
JSONL rows they all write (prompt, response, model, decoding parameters, versions)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DecodingParams:
    max_new_tokens: int = 32
    do_sample: bool = True
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    num_return_sequences: int = 1
    seed: int = 42

    @classmethod
    def from_spec(cls, gen: Any, seed: int) -> DecodingParams:
        """The decoding part of a recipe's ``GenerationSpec``, with the seed to use."""
        return cls(
            max_new_tokens=gen.max_new_tokens, do_sample=gen.do_sample,
            temperature=gen.temperature, top_p=gen.top_p, top_k=gen.top_k,
            num_return_sequences=gen.num_return_sequences, seed=seed,
        )

    def hf_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": self.do_sample,
            "num_return_sequences": self.num_return_sequences,
        }
        if self.do_sample:
            kw.update(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k)
        else:
            # Unset sampling knobs so transformers does not warn about ignored values.
            kw.update(temperature=None, top_p=None, top_k=None)
        return kw


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first (fails fast on OOM)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def write_generation_rows(
    output: Path,
    model: dict[str, Any] | str,
    prompts: Sequence[str],
    responses: Sequence[Sequence[str]],
    ids: Sequence[Any],
    record_params: dict[str, Any],
    versions: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> None:
    """One JSON line per (prompt, sample), written atomically; shared by every backend."""
    from resistkit.files import atomic_write_lines

    def lines() -> Any:
        for i, prompt in enumerate(prompts):
            for s, response in enumerate(responses[i]):
                row = {
                    "id": f"{ids[i]}-{s}",
                    "prompt_id": ids[i],
                    "sample": s,
                    "prompt": prompt,
                    "response": response,
                    "model": model if isinstance(model, dict) else str(model),
                    "params": record_params,
                    "versions": versions,
                    **(extra or {}),
                }
                yield json.dumps(row, ensure_ascii=False) + "\n"

    atomic_write_lines(output, lines())
