"""The offline judges, built on built-in data (``resistkit judge``).

VADER, the only sentiment judge that needs no weights, is weak on review text (~67 % accuracy
on the held-out snippets, exactly neutral on many of them), and no harm classifier can be
downloaded here. So resistkit builds its judges (``build``): ``builtin:sentiment-judge``
(P(positive)) and ``builtin:safety-judge`` (request + answer -> P(harmful)), all-MiniLM-L6-v2
fine-tuned; and ``builtin:sentiment-judge-mpnet``, a logistic probe on the frozen
all-mpnet-base-v2 encoder. The scorers load
them by these built-in names, which ``resistkit.models`` resolves like any other model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from resistkit.errors import JudgeError
from resistkit.judge.build import base_model_dir, build_judge, check_buildable, is_complete
from resistkit.judge.evaluate import evaluate_judge
from resistkit.judge.examples import Examples, normalise_prompt, safety_judge_split
from resistkit.judge.tasks import (
    BUILD_COMMAND,
    SAFETY,
    SENTIMENT,
    SENTIMENT_MPNET,
    TASKS,
    JudgeTask,
    task_for,
)

__all__ = [
    "BUILD_COMMAND",
    "SAFETY",
    "SENTIMENT",
    "SENTIMENT_MPNET",
    "TASKS",
    "Examples",
    "JudgeError",
    "JudgeTask",
    "base_model_dir",
    "build_judge",
    "check_buildable",
    "ensure_judge",
    "ensure_judges",
    "evaluate_judge",
    "is_complete",
    "normalise_prompt",
    "safety_judge_split",
    "task_for",
]


def ensure_judge(name: str, cache_dir: str | Path | None = None) -> str:
    """``name`` as a model name a scorer can load, building a missing built-in judge first
    (a few minutes on CPU; pipelines do this, `resistkit score` alone never does)."""
    task = task_for(name)
    if task is None:
        return name
    target = task.directory(cache_dir)
    if not is_complete(target):
        build_judge(target, task=task)
    return str(target)


def ensure_judges(scorers: Sequence[str], options: Mapping[str, Any],
                  cache_dir: str | Path | None = None) -> dict[str, Any]:
    """``options`` with every built-in judge the ``scorers`` will load built on first use.

    A scorer declares which of its options name a judge (``judge_options``); the judge is the
    option's value, or the scorer's default when unset (``safety-judge`` loads
    ``builtin:safety-judge`` by default). Pipelines call this before scoring.
    """
    from resistkit.scoring import get_scorer

    out = dict(options)
    for name in scorers:
        spec = get_scorer(name)
        for option in spec.judge_options:
            value = out.get(option) or spec.options.get(option)
            if value and task_for(str(value)) is not None:
                out[option] = ensure_judge(str(value), cache_dir)
    return out
