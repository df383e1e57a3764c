"""Reading records to score and writing scores atomically.

Input is either a generations JSONL (``resistkit generate`` writes ``id``, ``prompt``,
``response``, ``model``, ``params``) or a dataset spec for ``resistkit.data.load_data``. Files
are decoded as strict UTF-8 so that a corrupt line is reported with its number instead of being
scored as mangled text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resistkit.errors import ScoringError
from resistkit.files import atomic_write_lines

# Response columns tried in order when none is named: generations, prompt/completion data,
# plain-text data.
RESPONSE_COLUMNS = ("response", "completion", "text")
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")


@dataclass
class Records:
    """Rows as read (written back unchanged) plus the prompt/response view the scorers use."""

    rows: list[dict[str, Any]]
    source: str
    path: Path | None
    response_column: str
    prompt_column: str | None

    def for_scoring(self) -> dict[str, list[Any]]:
        cols: dict[str, list[Any]] = {
            "response": [row.get(self.response_column) for row in self.rows]
        }
        if self.prompt_column is not None:
            cols["prompt"] = [row.get(self.prompt_column) for row in self.rows]
        return cols

    def model_ids(self) -> list[str]:
        """The models the rows name (generations record a dict with the model's name)."""
        names = (row["model"]["name"] if isinstance(row["model"], dict) else str(row["model"])
                 for row in self.rows if row.get("model") is not None)
        return sorted(set(names))


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Objects of a JSONL file; errors name the file and the 1-based line number."""
    from resistkit.files import read_jsonl as read

    return read(path, ScoringError)


def pick_columns(
    columns: Sequence[str],
    source: str,
    response_column: str | None = None,
    prompt_column: str | None = None,
) -> tuple[str, str | None]:
    """Which column is the response and which the prompt; clear errors when undecidable."""
    available = ", ".join(columns) or "none"
    if response_column is not None:
        if response_column not in columns:
            raise ScoringError(
                f"response column {response_column!r} not found in {source} (columns: {available})"
            )
    elif "chosen" in columns and "rejected" in columns and "response" not in columns:
        raise ScoringError(
            f"{source} is preference data (columns 'chosen'/'rejected'): say which answer to "
            "score with --response-column chosen or --response-column rejected"
        )
    else:
        response_column = next((c for c in RESPONSE_COLUMNS if c in columns), None)
        if response_column is None:
            raise ScoringError(
                f"missing column 'response' in {source} (columns: {available}); generations "
                "from `resistkit generate` have one, otherwise name it with --response-column"
            )
    if prompt_column is not None:
        if prompt_column not in columns:
            raise ScoringError(
                f"prompt column {prompt_column!r} not found in {source} (columns: {available})"
            )
    elif "prompt" in columns:
        prompt_column = "prompt"
    return response_column, prompt_column


def load_records(
    source: str | Path,
    *,
    split: str = "train",
    num_samples: int | None = None,
    seed: int = 42,
    response_column: str | None = None,
    prompt_column: str | None = None,
) -> Records:
    """Read a JSONL file (first ``num_samples`` lines) or a dataset spec via resistkit.data."""
    path = Path(source)
    is_spec = str(source).startswith(("json:", "csv:", "builtin:", "hf:"))
    if not is_spec and (path.is_file() or path.suffix in JSONL_SUFFIXES):
        if not path.is_file():
            raise ScoringError(f"input file {path} does not exist")
        rows = read_jsonl(path)
        if num_samples is not None:
            rows = rows[:num_samples]
        name, file_path = str(path), path
    else:
        try:
            from resistkit.data import load_data
        except ImportError as err:
            raise ScoringError(
                f"{source!r} is not a file, and dataset specs need resistkit.data: {err}"
            ) from err
        dataset = load_data(str(source), split=split, num_samples=num_samples, seed=seed)
        rows = dataset.to_list()
        name, file_path = f"dataset {source!r} (split {split!r})", None
    if not rows:
        raise ScoringError(f"{name} has no records")
    columns = list(dict.fromkeys(k for row in rows for k in row))
    response, prompt = pick_columns(columns, name, response_column, prompt_column)
    return Records(rows, name, file_path, response, prompt)


def default_paths(records: Records, source: str | Path) -> tuple[Path, Path]:
    """``<stem>.scores.jsonl`` and ``<stem>.summary.json`` next to the input file; for a
    dataset spec, in the working directory under a name derived from the spec."""
    if records.path is not None:
        base = records.path.with_suffix("")
    else:
        base = Path(re.sub(r"[^A-Za-z0-9._-]+", "_", str(source)).strip("_") or "dataset")
    return base.with_name(base.name + ".scores.jsonl"), base.with_name(base.name + ".summary.json")


def _json_safe(value: Any) -> Any:
    """NaN/inf become null: JSON has no NaN and strict parsers (jq, JSON.parse) reject it."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_scores(
    path: str | Path, rows: Sequence[Mapping[str, Any]], columns: Mapping[str, Sequence[float]]
) -> None:
    """Each input row with the score columns added; NaN is written as null."""
    names = list(columns)

    def lines() -> Iterable[str]:
        for i, row in enumerate(rows):
            merged = {**row, **{name: columns[name][i] for name in names}}
            yield json.dumps(_json_safe(merged), ensure_ascii=False, allow_nan=False) + "\n"

    atomic_write_lines(path, lines())


def write_json(path: str | Path, obj: Any) -> None:
    text = json.dumps(_json_safe(obj), indent=2, ensure_ascii=False, allow_nan=False, default=str)
    atomic_write_lines(path, [text + "\n"])
