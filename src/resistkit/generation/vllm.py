"""`generate.backend: vllm`: the same sampling and JSONL rows as the transformers path, on vLLM.

A thin typed mapping: resistkit's ``DecodingParams`` become vLLM ``SamplingParams`` keyword
arguments, prompts become token-id prompts (tokenised exactly as the HF path does, without
special tokens), and vLLM's outputs become the rows ``generate_to_file`` writes. Only
``run_vllm`` imports vLLM (``pip install "resistkit[vllm]"``, GPUs); the rest is pure.

vLLM draws from its own random streams, so its samples are not the HF backend's samples: the
two backends agree in distribution, not token for token. Each prompt gets its own seed
(``seed + prompt index``), so a prompt's samples do not depend on which prompts run beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from resistkit.generation.common import DecodingParams, write_generation_rows


@dataclass(frozen=True)
class VllmRequest:
    """One prompt for ``LLM.generate``: the prompt input and its SamplingParams kwargs."""

    prompt: dict[str, Any]  # {"prompt_token_ids": [...]} or {"prompt": text}
    sampling: dict[str, Any]


def sampling_kwargs(params: DecodingParams, index: int = 0) -> dict[str, Any]:
    """``SamplingParams(**kwargs)`` equivalent to ``params`` for the prompt at ``index``."""
    if not params.do_sample and params.num_return_sequences > 1:
        # Greedy decoding has one answer; HF's generate refuses this combination too.
        raise ValueError("greedy decoding (do_sample: false) needs num_return_sequences: 1")
    sampled = params.do_sample
    return {
        "n": params.num_return_sequences,
        # vLLM's greedy is temperature 0; its "no filtering" values are top_p 1, top_k -1.
        "temperature": params.temperature if sampled else 0.0,
        "top_p": params.top_p if sampled else 1.0,
        "top_k": params.top_k if sampled and params.top_k > 0 else -1,
        "max_tokens": params.max_new_tokens,
        "seed": params.seed + index,
        "skip_special_tokens": True,  # as tokenizer.batch_decode(skip_special_tokens=True)
    }


def build_requests(
    rendered: Sequence[str], params: DecodingParams, tokenizer: Any = None
) -> list[VllmRequest]:
    """One request per rendered prompt, token ids without special tokens when a tokenizer is
    given (the HF path feeds ``add_special_tokens=False`` ids; vLLM would add a BOS)."""
    if tokenizer is not None:
        ids = tokenizer(list(rendered), add_special_tokens=False)["input_ids"]
        prompts: list[dict[str, Any]] = [{"prompt_token_ids": list(x)} for x in ids]
    else:
        prompts = [{"prompt": text} for text in rendered]
    return [VllmRequest(p, sampling_kwargs(params, i)) for i, p in enumerate(prompts)]


def responses_from_outputs(outputs: Sequence[Any], n: int) -> list[list[str]]:
    """vLLM ``RequestOutput``s (in request order) → ``n`` response texts per prompt."""
    out: list[list[str]] = []
    for request in outputs:
        texts = [completion.text for completion in request.outputs]
        if len(texts) != n:
            raise RuntimeError(f"vLLM returned {len(texts)} samples for a prompt, expected {n}")
        out.append(texts)
    return out


def record_params(params: DecodingParams, tensor_parallel_size: int) -> dict[str, Any]:
    """What each row records as ``params``: the HF rows' keys plus the backend."""
    return asdict(params) | {"batch_size": None, "backend": "vllm",
                             "tensor_parallel_size": tensor_parallel_size}


def run_vllm(
    model_path: str,
    requests: Sequence[VllmRequest],
    *,
    tensor_parallel_size: int = 1,
    seed: int = 42,
    tokenizer_path: str | None = None,
    dtype: str = "auto",
    trust_remote_code: bool = False,
    llm_kwargs: dict[str, Any] | None = None,
) -> list[Any]:
    """Load ``model_path`` in vLLM and run every request; returns vLLM's RequestOutputs."""
    try:
        from vllm import LLM, SamplingParams
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "generate.backend=vllm needs vLLM: pip install 'resistkit[vllm]' (Linux + GPU)"
        ) from err
    llm = LLM(
        model=model_path, tokenizer=tokenizer_path or model_path,
        tensor_parallel_size=tensor_parallel_size, seed=seed, dtype=dtype,
        trust_remote_code=trust_remote_code, **(llm_kwargs or {}),
    )
    try:
        return llm.generate(
            [r.prompt for r in requests], [SamplingParams(**r.sampling) for r in requests],
            use_tqdm=False,
        )
    finally:
        # vLLM reserves most of the GPU memory; a pipeline trains next (often in launched
        # subprocesses that need that memory), so give it back before returning.
        del llm
        _release_vllm_memory()


def _release_vllm_memory() -> None:
    import contextlib
    import gc

    with contextlib.suppress(Exception):  # the helpers moved between vLLM versions
        from vllm.distributed.parallel_state import (
            destroy_distributed_environment,
            destroy_model_parallel,
        )

        destroy_model_parallel()
        destroy_distributed_environment()
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def generate_to_file_vllm(
    model_path: str,
    prompts: Sequence[str],
    output: str | Path,
    params: DecodingParams,
    *,
    rendered: Sequence[str] | None = None,
    tokenizer: Any = None,
    tensor_parallel_size: int = 1,
    prompt_ids: Sequence[Any] | None = None,
    extra: dict[str, Any] | None = None,
    record_model: str | None = None,
    llm_kwargs: dict[str, Any] | None = None,
) -> Path:
    """``generate_to_file`` on vLLM: same rows, one file written when complete.

    vLLM schedules all prompts at once, so there is no batch-by-batch resume: a killed run
    starts again (it is fast). ``record_model`` is the name written in rows (default: path).
    """
    from resistkit.runinfo import package_versions

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    rendered = list(rendered) if rendered is not None else list(prompts)
    ids = list(prompt_ids) if prompt_ids is not None else list(range(len(prompts)))
    requests = build_requests(rendered, params, tokenizer)
    outputs = run_vllm(model_path, requests, tensor_parallel_size=tensor_parallel_size,
                       seed=params.seed, llm_kwargs=llm_kwargs)
    responses = responses_from_outputs(outputs, params.num_return_sequences)
    versions = package_versions()
    meta = {k: versions.get(k) for k in ("torch", "transformers", "vllm")}
    write_generation_rows(output, record_model or model_path, prompts, responses, ids,
                          record_params(params, tensor_parallel_size), meta, extra)
    return output

