"""GGUF checkpoints: the one place that loads, dequantises and converts them.

transformers reads a GGUF file (with the ``gguf`` package) and dequantises it to the dtype
asked for, but leaves a quantizer on the model that forbids training and saving;
``drop_quantizer`` turns it into an ordinary model. ``convert_gguf`` does that once and saves
a safetensors directory, which loads several times faster than the GGUF afterwards.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

INFO_FILE = "resistkit_model.json"  # written last into a converted directory


def drop_quantizer(model: Any) -> Any:
    """Remove the leftover GGUF quantizer (the weights are already dequantised)."""
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    return model


def convert_gguf(gguf: Path, target: Path, source: dict[str, Any] | None = None) -> Path:
    """Dequantise a GGUF checkpoint to float32 safetensors in ``target``, atomically.

    Written to a private temp directory and renamed, so an interrupted conversion never leaves
    a half-written model and two processes converting at once both end with a complete one.
    """
    import importlib.util

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from resistkit.errors import ModelError
    from resistkit.files import atomic_write_json, install_dir, staging_dir

    if importlib.util.find_spec("gguf") is None:
        raise ModelError("reading a GGUF file needs the 'gguf' package (a dependency of "
                         "resistkit): pip install gguf")
    start = time.perf_counter()
    log.info("converting %s to safetensors in %s (once)", gguf.name, target)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    drop_quantizer(model)
    tmp = staging_dir(target)
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    atomic_write_json(
        tmp / INFO_FILE,
        {
            "gguf_file": gguf.name,
            "gguf_bytes": gguf.stat().st_size,
            "dtype": "float32",
            "convert_s": round(time.perf_counter() - start, 2),
            **(source or {}),
        },
    )
    return install_dir(tmp, target, "config.json")
