"""Loading what ``resolve_model`` names, with one rule each for dtype, device, padding side,
GGUF files and the per-process cache. torch and transformers are imported inside functions.

- dtype ``auto``: bfloat16 on a GPU that supports it and on a CPU with AMX-BF16 or AVX512-BF16,
  float32 everywhere else (bf16 matmuls run ~50x slower than fp32 on AVX2 CPUs, and GPUs
  without bf16 emulate or refuse it); ``resistkit.hardware`` decides for CPUs;
- device ``auto``: the first GPU when one is visible, else the CPU; training leaves placement
  to the trainer (``device=None``);
- padding: a pad token always exists (EOS, else UNK); the side is the caller's (training and
  scoring pad on the right, generation and DPO prompts on the left);
- cache: scorers load a model once per process (``cache=True``); ``clear_model_cache`` frees
  them between the checkpoints of a pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from resistkit.errors import ModelError
from resistkit.models.resolve import ResolvedModel, is_tiny, resolve_model

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

    from resistkit.recipes import ModelSpec

T = TypeVar("T")
_CACHE: dict[tuple[Any, ...], Any] = {}


def resolve_device(device: str | None = "auto", *, option: str = "device") -> torch.device:
    """The torch device ``device`` names, refused here when this machine has no such device;
    ``option`` is what the user typed it as (a recipe key, or ``--device``), for the message."""
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ModelError(f"{option}={device}: unknown device ({err}); use auto, cpu, cuda or "
                         "cuda:N") from None
    # Checked before any model loads: torch only fails when the first tensor moves there.
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            why = "no CUDA GPU is visible" if torch.version.cuda else \
                "this torch was built without CUDA"
            raise ModelError(f"{option}={device}: {why} on this machine; use {option}=cpu "
                             f"(or {option}=auto: a GPU when there is one)")
        if dev.index is not None and dev.index >= count:
            raise ModelError(f"{option}={device}: this machine has {count} CUDA GPU(s), "
                             f"cuda:0 to cuda:{count - 1}")
    return dev


def resolve_dtype(name: str, device: torch.device | None = None) -> torch.dtype:
    """A torch dtype from its name; ``auto`` is bf16 on a GPU that supports it, bf16 on a CPU
    with AMX-BF16 or AVX512-BF16 (``resistkit.hardware``), else fp32.

    ``device`` is where the model will run (default: a GPU when one is visible).
    """
    import torch

    if name == "auto":
        on_gpu = torch.cuda.is_available() if device is None else device.type == "cuda"
        if on_gpu:
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        if device is None or device.type == "cpu":
            from resistkit.hardware import cpu_precision

            return getattr(torch, cpu_precision("auto").inference)
        return torch.float32
    value = getattr(torch, str(name), None)
    if not isinstance(value, torch.dtype):
        raise ModelError(f"unknown dtype {name!r}; use auto, float32, bfloat16 or float16")
    return value


def cached(key: tuple[Any, ...], load: Callable[[], T]) -> T:
    """Load once per process under ``key``."""
    if key not in _CACHE:
        _CACHE[key] = load()
    return _CACHE[key]


def clear_model_cache() -> None:
    _CACHE.clear()


def _load_error(model: ResolvedModel, what: str, err: Exception) -> ModelError:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if model.source == "hub":
        where = (f"{model.path!r} is not a local directory, and as a hub id it is not in the "
                 "local hub cache (is this machine offline, or the id misspelt?)")
    else:
        where = f"the files in {model.path!r} could not be read"
    error = ModelError(f"cannot load {what} {model.name!r}: {where}: {first}")
    return error.unavailable() if model.source == "hub" else error


def _as_resolved(model: ResolvedModel | str, what: str = "model") -> ResolvedModel:
    return model if isinstance(model, ResolvedModel) else resolve_model(model, what=what)


def load_tokenizer(
    model: ResolvedModel | str, *, padding_side: str = "right", trust_remote_code: bool = False,
    cache: bool = False,
) -> PreTrainedTokenizerBase:
    """The tokenizer of a model (the shipped one for ``tiny``), with a pad token."""
    resolved = _as_resolved(model, "tokenizer")

    def load() -> Any:
        if is_tiny(resolved.name):
            from resistkit.tokenizer import default_tokenizer

            tok = default_tokenizer()
        else:
            from transformers import AutoTokenizer

            from resistkit.models.probe import register

            register()  # AutoTokenizer reads config.json's model type, a probe's included
            kwargs: dict[str, Any] = {"revision": resolved.revision,
                                      "trust_remote_code": trust_remote_code}
            if resolved.gguf_file:
                kwargs["gguf_file"] = resolved.gguf_file
            try:
                tok = AutoTokenizer.from_pretrained(resolved.path, **kwargs)
            except (OSError, ValueError) as err:
                raise _load_error(resolved, "the tokenizer of", err) from err
        if tok.pad_token is None:
            # Padding is always masked out, so any existing token will do as pad.
            tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
        tok.padding_side = padding_side
        return tok

    if cache:
        return cached(("tokenizer", resolved.path, resolved.revision, padding_side), load)
    return load()


def load_pretrained(
    auto_class: Any, model: ResolvedModel | str, *, dtype: str = "auto",
    device: str | None = "auto", cache: bool = False, trust_remote_code: bool = False,
    **kwargs: Any,
) -> tuple[Any, torch.device | None]:
    """``auto_class.from_pretrained`` of a resolved model, in eval mode on ``device``.

    ``device=None`` leaves the model on the CPU in train mode, for a trainer to place.
    """
    resolved = _as_resolved(model)
    if is_tiny(resolved.name):
        raise ModelError("'tiny' is built from a config and has no weights to load; train it "
                         "first and use its run's final/ directory")
    dev = resolve_device(device) if device is not None else None
    torch_dtype = resolve_dtype(dtype, dev)

    def load() -> Any:
        options = {"revision": resolved.revision, "dtype": torch_dtype, **kwargs}
        if trust_remote_code:
            options["trust_remote_code"] = True
        if resolved.gguf_file:
            options["gguf_file"] = resolved.gguf_file
        try:
            loaded = auto_class.from_pretrained(resolved.path, **options)
        except (OSError, ValueError) as err:
            raise _load_error(resolved, f"a {auto_class.__name__} from", err) from err
        if resolved.gguf_file:
            from resistkit.models.gguf import drop_quantizer

            drop_quantizer(loaded)
        return loaded.to(dev).eval() if dev is not None else loaded

    if not cache:
        return load(), dev
    key = (auto_class.__name__, resolved.path, resolved.revision, str(torch_dtype), str(dev),
           tuple(sorted(kwargs.items())))
    return cached(key, load), dev


def load_causal_lm(model: ResolvedModel | str, **options: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM

    return load_pretrained(AutoModelForCausalLM, model, **options)


def load_classifier(model: ResolvedModel | str, **options: Any) -> tuple[Any, Any]:
    """An ``AutoModelForSequenceClassification`` that knows its pad id (decoder heads find
    the last real token through it)."""
    from transformers import AutoModelForSequenceClassification

    from resistkit.models.probe import register

    register()  # so that a pooled-probe judge (judge build sentiment-mpnet) loads like any
    loaded, dev = load_pretrained(AutoModelForSequenceClassification, model, **options)
    if getattr(loaded.config, "pad_token_id", None) is None:
        loaded.config.pad_token_id = load_tokenizer(model, cache=True).pad_token_id
    return loaded, dev


def load_config(model: ResolvedModel | str, *, trust_remote_code: bool = False) -> Any:
    """The model's config (no weights): enough to check a recipe against the model."""
    from transformers import AutoConfig

    resolved = _as_resolved(model)
    kwargs: dict[str, Any] = {"revision": resolved.revision}
    if resolved.gguf_file:
        kwargs["gguf_file"] = resolved.gguf_file
    if trust_remote_code:
        kwargs["trust_remote_code"] = True
    try:
        return AutoConfig.from_pretrained(resolved.path, **kwargs)
    except (OSError, ValueError) as err:
        raise _load_error(resolved, "the config of", err) from err


def model_identity(model: ResolvedModel) -> Any:
    """What the model *is*, for fingerprints: a digest of a local directory's files (config,
    tokenizer, weights) or of its GGUF file; a hub id with its revision (unpinned hub ids are
    not content-checked: pin them as ID@REVISION); None for ``tiny`` (its config defines it)."""
    from pathlib import Path

    from resistkit.files import dir_identity, file_sha256

    if model.source == "tiny":
        return None
    if model.source == "hub":
        return {"hub": model.path, "revision": model.revision}
    if model.gguf_file:
        return file_sha256(Path(model.path) / model.gguf_file)[:32]
    return dir_identity(model.path)


def describe_model(model: ResolvedModel, loaded: Any) -> dict[str, Any]:
    """Model identity for summaries: what was asked for and what was actually loaded."""
    config = getattr(loaded, "config", None)
    return {
        **model.record(),
        "commit": getattr(config, "_commit_hash", None),
        "architecture": (getattr(config, "architectures", None) or [type(loaded).__name__])[0],
        "parameters": sum(p.numel() for p in loaded.parameters()),
        "dtype": str(next(loaded.parameters()).dtype).removeprefix("torch."),
    }


# --------------------------------------------------------------------------------------------
# A recipe's `model:` section


def resolve_spec(spec: ModelSpec) -> ResolvedModel:
    return resolve_model(spec.name_or_path, revision=spec.revision, gguf_file=spec.gguf_file)


def spec_tokenizer(spec: ModelSpec, *, padding_side: str = "right") -> PreTrainedTokenizerBase:
    """The tokenizer a recipe's model uses: ``model.tokenizer`` when set, else the model's."""
    source: ResolvedModel | str = spec.tokenizer if spec.tokenizer else resolve_spec(spec)
    return load_tokenizer(source, padding_side=padding_side,
                          trust_remote_code=spec.trust_remote_code)


def spec_model(spec: ModelSpec, tokenizer: Any, *, seed: int = 42,
               device: str | None = None) -> Any:
    """Load (or, for ``tiny``, build) the causal LM of a recipe's ``model:`` section."""
    if is_tiny(spec.name_or_path):
        from resistkit.models.tiny import build_tiny_model

        assert spec.tiny is not None
        init_seed = spec.init_seed if spec.init_seed is not None else seed
        return build_tiny_model(spec.tiny, tokenizer, init_seed)
    lm, _ = load_causal_lm(resolve_spec(spec), dtype=spec.dtype, device=device,
                           trust_remote_code=spec.trust_remote_code)
    if lm.generation_config.pad_token_id is None:
        lm.generation_config.pad_token_id = tokenizer.pad_token_id
    return lm
