"""Model and tokenizer loading: hub id or local path, GGUF file, or a tiny Llama from a config."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from resistkit.recipes import ModelSpec, TinyModelConfig

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def resolve_dtype(name: str, device: torch.device | None = None) -> torch.dtype:
    """A torch dtype from its name; ``auto`` is bf16 on a GPU that supports it, else fp32.

    bf16 matmuls run ~50x slower than fp32 on AVX2 CPUs, so CPU always gets fp32, and so do
    GPUs without bf16 (V100, T4), where it is emulated or refused. ``device`` is where the
    model will run (default: a GPU when one is visible).
    """
    import torch

    if name == "auto":
        on_gpu = torch.cuda.is_available() if device is None else device.type == "cuda"
        if on_gpu and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    value = getattr(torch, name, None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"unknown dtype {name!r}; use auto, float32, bfloat16 or float16")
    return value


def resolve_name(name: str) -> str:
    """Named offline models (``builtin:tiny-base``, ``smollm2-135m``) → a local directory."""
    if name == "tiny" or Path(name).exists():
        return name
    from resistkit.zoo import is_zoo_name, resolve_model_name

    return resolve_model_name(name) if is_zoo_name(name) else name


def load_tokenizer(spec: ModelSpec, *, padding_side: str = "right") -> PreTrainedTokenizerBase:
    """The tokenizer of a model, with a pad token and the padding side the caller needs.

    Training pads on the right (TRL's SFT collator expects it); generation and DPO on the left.
    """
    from transformers import AutoTokenizer

    if spec.name_or_path == "tiny" and spec.tokenizer is None:
        from resistkit.tokenizer import default_tokenizer

        tok = default_tokenizer()
    else:
        source = spec.tokenizer or resolve_name(spec.name_or_path)
        kwargs: dict[str, Any] = {
            "revision": spec.revision,
            "trust_remote_code": spec.trust_remote_code,
        }
        if spec.gguf_file and spec.tokenizer is None:
            kwargs["gguf_file"] = spec.gguf_file
        tok = AutoTokenizer.from_pretrained(source, **kwargs)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = padding_side
    return tok


def build_tiny_model(
    config: TinyModelConfig, tokenizer: PreTrainedTokenizerBase, seed: int
) -> PreTrainedModel:
    """A randomly initialised Llama whose vocabulary matches ``tokenizer``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads or config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=config.tie_word_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    # A private generator keeps initialisation independent of any RNG use before it.
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = LlamaForCausalLM(cfg)
    finally:
        torch.random.set_rng_state(state)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def load_model(spec: ModelSpec, tokenizer: PreTrainedTokenizerBase, *, seed: int = 42) -> Any:
    """Load (or build) the causal LM named by ``spec``, in the dtype it asks for."""
    if spec.name_or_path == "tiny":
        assert spec.tiny is not None
        init_seed = spec.init_seed if spec.init_seed is not None else seed
        return build_tiny_model(spec.tiny, tokenizer, init_seed)

    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {
        "revision": spec.revision,
        "trust_remote_code": spec.trust_remote_code,
        "dtype": resolve_dtype(spec.dtype),
    }
    if spec.gguf_file:
        kwargs["gguf_file"] = spec.gguf_file
    model = AutoModelForCausalLM.from_pretrained(resolve_name(spec.name_or_path), **kwargs)
    quantizer = getattr(model, "hf_quantizer", None)
    if spec.gguf_file and quantizer is not None:
        # GGUF weights are dequantised on load, but the leftover quantizer forbids training
        # and saving; dropping it turns the model into an ordinary one.
        quantizer.remove_quantization_config(model)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def is_model_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "config.json").exists()
