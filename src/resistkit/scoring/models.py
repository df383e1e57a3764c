"""Shared plumbing for model-based scorers: devices, dtypes, the model cache, length batching.

torch and transformers are imported inside the functions so that importing the registry (and
``resistkit --help``) stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from resistkit.scoring.registry import ScoringError

if TYPE_CHECKING:
    import torch

T = TypeVar("T")

_CACHE: dict[tuple[Any, ...], Any] = {}

# Tokenizers report a huge sentinel when they do not know their limit.
_UNKNOWN_MAX_LENGTH = 1_000_000


def split_revision(spec: str) -> tuple[str, str | None]:
    """``"org/model@rev"`` -> ``("org/model", "rev")``; an existing local path is never split."""
    if Path(spec).exists() or "@" not in spec:
        return spec, None
    path, _, revision = spec.rpartition("@")
    return path, revision or None


def resolve_device(device: str = "auto") -> torch.device:
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """:func:`resistkit.models.resolve_dtype`, failing with a ScoringError."""
    from resistkit.models import resolve_dtype as resolve

    try:
        return resolve(dtype, device)
    except ValueError as err:
        raise ScoringError(str(err)) from None


def cached(key: tuple[Any, ...], load: Callable[[], T]) -> T:
    """Load once per process; key is (kind, path, revision, dtype, device)."""
    if key not in _CACHE:
        _CACHE[key] = load()
    return _CACHE[key]


def clear_model_cache() -> None:
    _CACHE.clear()


def _load_error(path: str, what: str, err: Exception) -> ScoringError:
    hint = ""
    if not Path(path).exists():
        hint = (
            " (not a local directory; as a hub id it must already be in the local cache "
            "when the machine is offline)"
        )
    return ScoringError(f"cannot load {what} from {path!r}{hint}: {err}")


def load_tokenizer(path: str, revision: str | None) -> Any:
    from transformers import AutoTokenizer

    def load() -> Any:
        try:
            tok = AutoTokenizer.from_pretrained(path, revision=revision)
        except (OSError, ValueError) as err:
            raise _load_error(path, "a tokenizer", err) from err
        if tok.pad_token_id is None:
            # Padding is always masked out, so any existing token will do as pad.
            tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
        # Every scorer pads on the right: Llama-style models derive positions from the index,
        # so left padding would shift them and change the scores.
        tok.padding_side = "right"
        return tok

    return cached(("tokenizer", path, revision), load)


def load_pretrained(
    auto_class: Any, path: str, revision: str | None, dtype: str, device: str, **kwargs: Any
) -> tuple[Any, torch.device]:
    """Load ``auto_class.from_pretrained`` once per (class, path, revision, dtype, device)."""
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)

    def load() -> Any:
        try:
            model = auto_class.from_pretrained(path, revision=revision, dtype=torch_dtype, **kwargs)
        except (OSError, ValueError) as err:
            raise _load_error(path, f"a {auto_class.__name__}", err) from err
        return model.to(dev).eval()

    key = (auto_class.__name__, path, revision, str(torch_dtype), str(dev), tuple(kwargs.items()))
    return cached(key, load), dev


def describe_model(path: str, revision: str | None, model: Any) -> dict[str, Any]:
    """Model identity for the summary: what was asked for and what was actually loaded."""
    config = getattr(model, "config", None)
    return {
        "path": path,
        "revision": revision,
        "commit": getattr(config, "_commit_hash", None),
        "architecture": (getattr(config, "architectures", None) or [type(model).__name__])[0],
        "parameters": sum(p.numel() for p in model.parameters()),
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
    }


def max_input_length(tokenizer: Any, model: Any, override: int | None) -> int:
    """The longest input we feed: the override, else the smaller of tokenizer and model limits."""
    if override is not None:
        if override < 2:
            raise ScoringError(f"max_length must be at least 2, got {override}")
        return override
    limits = []
    tok_limit = getattr(tokenizer, "model_max_length", None)
    if tok_limit and tok_limit < _UNKNOWN_MAX_LENGTH:
        limits.append(int(tok_limit))
    cfg_limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if cfg_limit:
        limits.append(int(cfg_limit))
    return min(limits) if limits else 512


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first (fail fast on memory)."""
    from resistkit.generate import length_sorted_batches as batches_by_length

    if batch_size < 1:
        raise ScoringError(f"batch_size must be positive, got {batch_size}")
    return batches_by_length(lengths, batch_size)


def pad_right(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token id lists into (input_ids, attention_mask) tensors."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask
