"""``sentiment-lexicon``: VADER compound polarity mapped to [0, 1]; needs no model weights."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from resistkit.scoring.registry import Batch, Columns, ScoringContext, register_scorer

_CHUNK = 256  # records per progress update


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_positive(text: str) -> float:
    """(compound + 1) / 2, so 0.5 is neutral; callers must not pass empty text (VADER says 0)."""
    return (_analyzer().polarity_scores(text)["compound"] + 1.0) / 2.0


def scored_text(batch: Batch, with_prompt: bool) -> list[str]:
    """The text a text-only judge sees: the response, or prompt + response."""
    if with_prompt and "prompt" in batch:
        return [p + r for p, r in zip(batch["prompt"], batch["response"], strict=True)]
    return list(batch["response"])


@register_scorer(
    "sentiment-lexicon",
    columns={"sentiment_lexicon": "(VADER+1)/2; higher = more positive"},
    description="VADER lexicon sentiment, offline, no weights",
    uses_prompt=True,
)
def sentiment_lexicon(batch: Batch, ctx: ScoringContext, *, with_prompt: bool = False) -> Columns:
    texts = scored_text(batch, with_prompt)
    scores: list[float] = []
    for start in range(0, len(texts), _CHUNK):
        chunk = texts[start : start + _CHUNK]
        scores.extend(vader_positive(t) for t in chunk)
        ctx.advance(len(chunk))
    return {"sentiment_lexicon": scores}
