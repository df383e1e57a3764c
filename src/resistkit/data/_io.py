"""Small helpers shared by the build step and the loaders (no heavy imports here)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def stable_unit(key: str) -> float:
    """A number in [0, 1) fixed by ``key`` alone.

    Python's ``hash()`` is salted per process, so splits decided with it would change between
    runs; SHA-256 gives the same held-out sets on every machine and Python version.
    """
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def stable_order(key: str) -> str:
    """A sort key that shuffles items reproducibly (used to pick held-out sets)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def jsonl_bytes(rows: Iterable[dict[str, Any]]) -> bytes:
    """Canonical JSON Lines: sorted keys and fixed separators make the bytes reproducible."""
    out = io.StringIO()
    for row in rows:
        out.write(json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":")))
        out.write("\n")
    return out.getvalue().encode("utf-8")


def write_jsonl_gz(path: Path, rows: Iterable[dict[str, Any]]) -> tuple[int, str]:
    """Write gzip'd JSONL with no timestamp or file name in the header.

    Returns (rows, sha256 of the uncompressed bytes). The uncompressed hash is what the
    manifest records: gzip output can differ between zlib builds even for equal input.
    """
    rows = list(rows)
    raw = jsonl_bytes(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    # mtime=0 and an empty filename keep the gzip header free of build-time facts.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)
    return len(rows), hashlib.sha256(raw).hexdigest()


def read_jsonl_gz(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)
