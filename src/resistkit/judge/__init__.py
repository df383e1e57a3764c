"""The offline judges: all-MiniLM-L6-v2 fine-tuned on built-in data (``resistkit judge``).

VADER, the only sentiment judge that needs no weights, is weak on review text (~67 % accuracy
on the held-out snippets, exactly neutral on many of them). A better judge cannot be
downloaded here, so resistkit builds one (``build``) and the scorers load it by its built-in
name (``builtin:sentiment-judge``), which ``resistkit.models`` resolves like any other model.
"""

from __future__ import annotations

from pathlib import Path

from resistkit.errors import JudgeError
from resistkit.judge.build import base_model_dir, build_judge, is_complete
from resistkit.judge.evaluate import evaluate_judge
from resistkit.judge.tasks import BUILD_COMMAND, SENTIMENT, TASKS, JudgeTask, task_for

__all__ = [
    "BUILD_COMMAND",
    "SENTIMENT",
    "TASKS",
    "JudgeError",
    "JudgeTask",
    "base_model_dir",
    "build_judge",
    "ensure_judge",
    "evaluate_judge",
    "is_complete",
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
