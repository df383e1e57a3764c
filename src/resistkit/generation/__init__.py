"""Generation: from a model and a prompt set to a JSONL file of responses.

``generate_prompt_set`` is the one road, shared by `resistkit generate` and the pipelines'
generate stages; ``hf`` (transformers) and ``vllm`` are the backends, ``common`` what they share.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from resistkit.generation.common import DecodingParams

if TYPE_CHECKING:
    from resistkit.recipes import DataSpec, GenerationSpec, ModelSpec

__all__ = ["DecodingParams", "generate_from_recipe", "generate_prompt_set"]


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
    from resistkit.models import resolve_spec, spec_model, spec_tokenizer
    from resistkit.prompts import render_prompt

    check_output(Path(out), prompt_set)
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
    tokenizer = spec_tokenizer(spec, padding_side="left")
    prompts = list(ds["prompt"])
    rendered = [render_prompt(p, prompt_format, tokenizer, prompt_template) for p in prompts]
    params = DecodingParams.from_spec(gen, decode_seed)
    extra = {"prompt_format": prompt_format, "dataset": prompt_set.dataset, **(extra or {})}
    named = model_record(spec, record_model)
    if gen.backend == "vllm":  # vLLM loads the model itself; no transformers copy in memory
        from resistkit.generation.vllm import generate_to_file_vllm

        return generate_to_file_vllm(
            resolve_spec(spec).path, prompts, Path(out), params, rendered=rendered,
            tokenizer=tokenizer, tensor_parallel_size=gen.tensor_parallel_size, extra=extra,
            record_model=named,
        )
    from resistkit.generation.hf import generate_to_file

    lm = spec_model(spec, tokenizer, seed=decode_seed, device="auto")
    return generate_to_file(
        lm, tokenizer, prompts, Path(out), params, record_model=named,
        rendered=rendered, batch_size=gen.batch_size, progress=progress, extra=extra,
    )


def model_record(spec: ModelSpec, name: str) -> dict[str, Any]:
    """What every generated row says of its model: the name it was asked for, the directory or
    hub id it resolved to, and the identity of its weights."""
    from resistkit.models import model_identity, resolve_spec

    resolved = resolve_spec(spec)
    path = str(Path(resolved.path).resolve()) if resolved.is_local else resolved.path
    return {"name": name, "path": path, "source": resolved.source,
            "identity": model_identity(resolved)}


def check_output(out: Path, prompt_set: DataSpec) -> None:
    """Refuse, before any work, an output that is a directory or the prompt file itself."""
    from resistkit.errors import RunError

    if out.is_dir():
        raise RunError(f"output {out} is a directory; give a .jsonl file name")
    source = prompt_set.dataset.partition(":")[2] if ":" in prompt_set.dataset \
        else prompt_set.dataset
    for candidate in (source, prompt_set.data_files):
        if candidate and Path(candidate).expanduser().resolve() == out.resolve():
            raise RunError(f"output {out} is the prompt file; refusing to overwrite it")


def generate_from_recipe(
    recipe: Any, *, model: str | None = None, output: str | None = None
) -> Path:
    """The `generate:` section of a recipe, on ``model`` (a path or id) or the recipe's model."""
    from resistkit.errors import RecipeError
    from resistkit.models import is_tiny
    from resistkit.recipes import GenerationSpec

    gen = recipe.generate or GenerationSpec()
    if gen.prompts is None:
        raise RecipeError(recipe.output_dir, "generate.prompts", "names no prompt set")
    spec = recipe.model
    if model is not None:
        spec = spec.model_copy(update={"name_or_path": model, "gguf_file": None, "tokenizer": None})
    if is_tiny(spec.name_or_path):
        raise RecipeError(recipe.output_dir, "model.name_or_path",
                          "'tiny' is untrained: pass --model PATH (a slice or final/)")
    out = output or gen.output or Path(recipe.output_dir) / "generations.jsonl"
    return generate_prompt_set(
        spec, gen.prompts, gen, out,
        prompt_format=recipe.prompt_format, prompt_template=recipe.prompt_template,
        decode_seed=gen.seed if gen.seed is not None else recipe.seed, data_seed=recipe.seed,
        record_model=spec.name_or_path, extra={"revision": spec.revision},
    )
