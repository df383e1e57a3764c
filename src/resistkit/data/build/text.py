"""Text clean-up shared by every source: Unicode normalisation and review-snippet quoting."""

from __future__ import annotations

import re
import unicodedata

# --- text clean-up -----------------------------------------------------------------------------


def _normalise(text: str) -> str:
    """NFC, every Unicode space as a plain space, invisible format characters removed.

    No-break and thin spaces, and word joiners, would otherwise become rare byte sequences that
    waste tokenizer vocabulary on layout rather than language.
    """
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    chars = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Zs" or ch == "\t":
            chars.append(" ")
        elif cat == "Cf" or (cat == "Cc" and ch != "\n"):
            continue
        else:
            chars.append(ch)
    lines = [re.sub(r" {2,}", " ", line).strip() for line in "".join(chars).split("\n")]
    return "\n".join(lines).strip()


def normalise_snippet(text: str) -> str:
    """One review snippet on one line, with the corpus' tokenised quotes made ordinary.

    The snippets use LaTeX-style quoting (``''Conan''``, ```Memento'``); a model trained on them
    would learn that quirk, so doubled apostrophes become '"' and backticks "'".
    """
    text = text.replace("``", '"').replace("''", '"').replace("`", "'")
    return " ".join(_normalise(text).split())
