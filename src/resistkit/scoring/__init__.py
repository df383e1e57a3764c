"""Named scorers for generations and datasets (``resistkit score``).

Importing this package registers the built-in scorers without importing torch; model weights
load on first use and are cached per process.
"""

from resistkit.errors import ScoringError
from resistkit.models import clear_model_cache
from resistkit.scoring import (  # noqa: F401  (imported to register the built-in scorers)
    classifier,
    compression,
    guard,
    kl,
    lexicon,
    refusal,
    reward,
)
from resistkit.scoring.io import Records, load_records, read_jsonl, write_json, write_scores
from resistkit.scoring.registry import (
    SCORERS,
    ScorerSpec,
    ScoringContext,
    get_scorer,
    list_scorers,
    register_scorer,
    score_records,
)
from resistkit.scoring.summary import column_stats, render_table, summarize

__all__ = [
    "SCORERS",
    "Records",
    "ScorerSpec",
    "ScoringContext",
    "ScoringError",
    "clear_model_cache",
    "column_stats",
    "get_scorer",
    "list_scorers",
    "load_records",
    "read_jsonl",
    "register_scorer",
    "render_table",
    "score_records",
    "summarize",
    "write_json",
    "write_scores",
]
