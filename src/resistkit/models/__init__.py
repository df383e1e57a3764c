"""Models: one resolver for every name (``resolve_model``) and one loader (``load``).

Importing this package is cheap: torch and transformers load inside the loading functions.
"""

from resistkit.models.builtin import BUILTIN_MODELS, cache_root
from resistkit.models.load import (
    clear_model_cache,
    describe_model,
    load_causal_lm,
    load_classifier,
    load_config,
    load_pretrained,
    load_tokenizer,
    model_identity,
    resolve_device,
    resolve_dtype,
    resolve_spec,
    spec_model,
    spec_tokenizer,
)
from resistkit.models.resolve import TINY, ResolvedModel, is_tiny, resolve_model, split_revision

__all__ = [
    "BUILTIN_MODELS",
    "TINY",
    "ResolvedModel",
    "cache_root",
    "clear_model_cache",
    "describe_model",
    "is_tiny",
    "load_causal_lm",
    "load_classifier",
    "load_config",
    "load_pretrained",
    "load_tokenizer",
    "model_identity",
    "resolve_device",
    "resolve_dtype",
    "resolve_model",
    "resolve_spec",
    "spec_model",
    "spec_tokenizer",
    "split_revision",
]
