"""`resistkit generate`: batched, seeded sampling from any model or slice.

Prompts are sorted by token length so a batch wastes little padding; each batch draws from its
own seed (``seed + batch index``), so the output does not depend on what ran before it and an
interrupted run resumes batch by batch with the same numbers.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from resistkit.recipes import DataSpec, GenerationSpec, ModelSpec

log = logging.getLogger(__name__)


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
    model_path: str,
    prompts: Sequence[str],
    output: str | Path,
    params: DecodingParams,
    *,
    rendered: Sequence[str] | None = None,
    batch_size: int = 32,
    prompt_ids: Sequence[Any] | None = None,
    extra: dict[str, Any] | None = None,
    model: Any = None,
    tokenizer: Any = None,
    progress: bool = True,
) -> Path:
    """Generate for ``prompts`` and write one JSON line per (prompt, sample).

    ``rendered`` are the texts actually fed to the model (chat template applied); ``prompts``
    are what is recorded. A ``.partial`` file next to the output holds finished batches, so a
    killed run resumes where it stopped; the final file appears only when complete.
    """
    from resistkit.runinfo import package_versions

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if model is None or tokenizer is None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from resistkit.models import resolve_dtype

        tokenizer = AutoTokenizer.from_pretrained(model_path)
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=resolve_dtype("auto"))
        if __import__("torch").cuda.is_available():
            model = model.to("cuda")
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
    write_generation_rows(output, model_path, prompts, responses, ids,
                          asdict(params) | {"batch_size": batch_size}, meta, extra)
    partial.unlink(missing_ok=True)
    return output


def write_generation_rows(
    output: Path,
    model_path: str,
    prompts: Sequence[str],
    responses: Sequence[Sequence[str]],
    ids: Sequence[Any],
    record_params: dict[str, Any],
    versions: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> None:
    """One JSON line per (prompt, sample), written atomically; shared by every backend."""
    tmp = output.with_name(f".{output.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for i, prompt in enumerate(prompts):
            for s, response in enumerate(responses[i]):
                row = {
                    "id": f"{ids[i]}-{s}",
                    "prompt_id": ids[i],
                    "sample": s,
                    "prompt": prompt,
                    "response": response,
                    "model": str(model_path),
                    "params": record_params,
                    "versions": versions,
                    **(extra or {}),
                }
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, output)


def generate_prompt_set(
    spec: ModelSpec,
    prompt_set: DataSpec,
    gen: GenerationSpec,
    out: str | Path,
    *,
    prompt_format: str,
    prompt_template: str | None,
    decode_seed: int,
    data_seed: int,
    record_model: str,
    progress: bool = True,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Sample with ``gen``'s settings on every prompt of ``prompt_set``.

    The one road from a model spec and a prompt set to a generations file, shared by
    `resistkit generate` and the pipelines' generate stages: load the prompts (the set must
    have a ``prompt`` column), render them in ``prompt_format``, then decode with transformers
    or vLLM. ``data_seed`` picks a ``num_samples`` subset; ``decode_seed`` seeds sampling.
    """
    from resistkit.data import DataSpecError, load_data
    from resistkit.models import load_model, load_tokenizer
    from resistkit.prompts import render_prompt

    ds = load_data(
        prompt_set.dataset, split=prompt_set.split, num_samples=prompt_set.num_samples,
        seed=prompt_set.seed if prompt_set.seed is not None else data_seed,
        data_files=prompt_set.data_files,
    )
    if "prompt" not in ds.column_names:
        raise DataSpecError(
            f"dataset '{prompt_set.dataset}' has no column 'prompt' "
            f"(columns: {', '.join(ds.column_names)})"
        )
    tokenizer = load_tokenizer(spec, padding_side="left")
    prompts = list(ds["prompt"])
    rendered = [render_prompt(p, prompt_format, tokenizer, prompt_template) for p in prompts]
    params = DecodingParams.from_spec(gen, decode_seed)
    extra = {"prompt_format": prompt_format, "dataset": prompt_set.dataset, **(extra or {})}
    if gen.backend == "vllm":  # vLLM loads the model itself; no transformers copy in memory
        from resistkit.vllm_backend import generate_to_file_vllm

        return generate_to_file_vllm(
            spec.name_or_path, prompts, Path(out), params, rendered=rendered,
            tokenizer=tokenizer, tensor_parallel_size=gen.tensor_parallel_size, extra=extra,
            record_model=record_model,
        )
    lm = load_model(spec, tokenizer, seed=decode_seed)
    import torch

    if torch.cuda.is_available():
        lm = lm.to("cuda")
    return generate_to_file(
        record_model, prompts, Path(out), params, rendered=rendered, batch_size=gen.batch_size,
        model=lm, tokenizer=tokenizer, progress=progress, extra=extra,
    )


def generate_from_recipe(
    recipe: Any, *, model: str | None = None, output: str | None = None
) -> Path:
    """The `generate:` section of a recipe, on ``model`` (a path or id) or the recipe's model."""
    from resistkit.recipes import GenerationSpec

    gen = recipe.generate or GenerationSpec()
    if gen.prompts is None:
        raise ValueError("the recipe's `generate.prompts` names no prompt set")
    spec = recipe.model
    if model is not None:
        spec = spec.model_copy(update={"name_or_path": model, "gguf_file": None, "tokenizer": None})
    if spec.name_or_path == "tiny":
        raise ValueError("generate needs a trained model: pass --model PATH (a slice or final/)")
    out = output or gen.output or Path(recipe.output_dir) / "generations.jsonl"
    return generate_prompt_set(
        spec, gen.prompts, gen, out,
        prompt_format=recipe.prompt_format, prompt_template=recipe.prompt_template,
        decode_seed=gen.seed if gen.seed is not None else recipe.seed, data_seed=recipe.seed,
        record_model=spec.name_or_path, extra={"revision": spec.revision},
    )
