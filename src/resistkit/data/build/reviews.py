"""Builds ``reviews.jsonl.gz``: labelled movie-review snippets from the ``vaderSentiment`` sdist,
with a prompt/completion split and held-out generation prompts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from resistkit.data._io import stable_order, stable_unit
from resistkit.data.build.choices import (
    PRETRAIN_HELDOUT,
    REVIEW_HELDOUT_PER_LABEL,
    REVIEW_MIN_WORDS,
    REVIEW_NEGATIVE_MAX,
    REVIEW_POSITIVE_MIN,
    REVIEW_PROMPT_WORDS,
)
from resistkit.data.build.sources import _tar_member
from resistkit.data.build.text import normalise_snippet

# --- reviews -----------------------------------------------------------------------------------


def build_reviews(vader_sdist: Path) -> list[dict[str, Any]]:
    """Labelled movie-review snippets with a prompt/completion split and held-out prompts."""
    inner = _tar_member(vader_sdist, "additional_resources/hutto_ICWSM_2014.tar.gz")
    raw = _tar_member(inner, "movieReviewSnippets_GroundTruth.txt")
    lines = raw.decode("utf-8").splitlines()  # UTF-8 with CRLF line ends, checked at build time
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for line in lines:
        if not line.strip():
            continue
        ident, rating_s, text = line.split("\t")
        text = normalise_snippet(text)
        rating = float(rating_s)
        words = text.split(" ")
        if len(words) < REVIEW_MIN_WORDS or text.lower() in seen:
            continue
        if rating >= REVIEW_POSITIVE_MIN:
            label = 1
        elif rating <= REVIEW_NEGATIVE_MAX:
            label = 0
        else:
            continue
        seen.add(text.lower())
        prompt = " ".join(words[:REVIEW_PROMPT_WORDS])
        # The completion is not stored: it is text[len(prompt):] (the loader rebuilds it),
        # which keeps the committed file ~100 kB smaller.
        rows.append({
            "id": int(ident),
            "text": text,
            "prompt": prompt,
            "rating": round(rating, 4),
            "label": label,
        })
    _assign_review_splits(rows)
    rows.sort(key=lambda r: r["id"])
    return rows


def _assign_review_splits(rows: list[dict[str, Any]]) -> None:
    """Pick ~300 + ~300 held-out snippets whose prompts no training snippet shares.

    Only prompts that occur once in the corpus are candidates, so taking a snippet out of
    training can never leave its prompt behind in another one; the hash order makes the choice
    a reproducible random sample.
    """
    by_prompt: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_prompt[row["prompt"].lower()].append(row)
    taken: Counter[int] = Counter()
    for key in sorted(by_prompt, key=lambda k: stable_order("reviews-heldout:" + k)):
        group = by_prompt[key]
        label = group[0]["label"]
        if len(group) == 1 and taken[label] < REVIEW_HELDOUT_PER_LABEL:
            taken[label] += 1
            group[0]["split"] = "heldout"
    for row in rows:
        row.setdefault("split", "train")
        if row["split"] == "train":
            # Training snippets also feed the pre-training mix, which has its own held-out part.
            held = stable_unit(f"pretrain:review:{row['id']}") < PRETRAIN_HELDOUT
            row["pretrain_split"] = "heldout" if held else "train"
        else:
            row["pretrain_split"] = None  # generation prompts never reach pre-training
