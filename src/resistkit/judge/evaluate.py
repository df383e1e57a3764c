"""Accuracy of a judge and of its weight-free baseline on the task's held-out split.

Both go through the scorers the pipelines use (``sentiment-classifier`` and the baseline
scorer), so the figures are exactly those a score run would give.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from resistkit.errors import JudgeError
from resistkit.judge.tasks import SENTIMENT, JudgeTask


def accuracy(scores: Sequence[float], labels: Sequence[int], threshold: float,
             id2label: dict[int, str]) -> dict[str, Any]:
    """Accuracy with ``score >= threshold`` meaning label 1, overall and per class."""
    hits = [(s >= threshold) == bool(y) for s, y in zip(scores, labels, strict=True)]
    out: dict[str, Any] = {"accuracy": sum(hits) / len(hits)}
    for cls, label in id2label.items():
        members = [i for i, y in enumerate(labels) if y == cls]
        out[f"accuracy_{label}"] = sum(hits[i] for i in members) / max(len(members), 1)
        out[f"mean_score_{label}"] = sum(scores[i] for i in members) / max(len(members), 1)
    return out


def judge_scores(path: str | Path, texts: list[str], batch_size: int,
                 task: JudgeTask = SENTIMENT) -> list[float]:
    """P(label 1) for each text, through the ``sentiment-classifier`` scorer."""
    from resistkit.scoring import score_records

    cols = score_records({"response": texts}, ["sentiment-classifier"], classifier=str(path),
                         positive_label=task.positive, batch_size=batch_size)
    return cols["sentiment_classifier"]


def evaluate_judge(
    judge: str | Path, *, batch_size: int = 64, num_eval: int | None = None, seed: int = 42,
    task: JudgeTask = SENTIMENT,
) -> dict[str, Any]:
    """Accuracy of a sequence classifier and of the task's baseline on its held-out split.

    Label 1 means P(label 1) >= 0.5 for the judge and a baseline score >= 0.5 (VADER compound
    >= 0) for the baseline. ``num_eval`` scores a seeded subset (for tests).
    """
    from resistkit.data import load_data
    from resistkit.models import resolve_model
    from resistkit.scoring import score_records

    path = resolve_model(str(judge)).path
    heldout = load_data(task.data, split="heldout", num_samples=num_eval, seed=seed)
    texts = list(heldout["text"])
    labels = [int(x) for x in heldout["label"]]
    cols = score_records(
        {"response": texts}, ["sentiment-classifier", task.baseline_scorer],
        classifier=path, positive_label=task.positive, batch_size=batch_size,
    )
    judged = cols["sentiment_classifier"]
    baseline = cols[task.baseline_column]
    if any(math.isnan(s) for s in judged + baseline):
        raise JudgeError("some held-out texts were not scored; the data set looks damaged")
    base = accuracy(baseline, labels, 0.5, task.id2label)
    # VADER's exact zero is its "no sentiment words found"; it counts as positive above.
    base["share_exactly_neutral"] = sum(s == 0.5 for s in baseline) / len(baseline)
    return {
        "judge_path": path,
        "n": len(texts),
        "threshold": {"judge": f"P({task.positive}) >= 0.5",
                      "baseline": f"{task.baseline_scorer} >= 0.5"},
        "judge": accuracy(judged, labels, 0.5, task.id2label),
        task.baseline_key: base,
    }
