"""Accuracy of a judge and of its weight-free baseline on the task's held-out examples.

Both go through the scorers the pipelines use (the task's scorer and its baseline scorer), so
the figures are exactly those a score run would give.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from resistkit.errors import JudgeError
from resistkit.judge.examples import Examples
from resistkit.judge.tasks import SENTIMENT, JudgeTask

Z95 = 1.959964


def wilson_interval(hits: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion: unlike the normal approximation it stays
    inside [0, 1] near 100 %, where a good judge's accuracy sits."""
    if n == 0:
        return (0.0, 1.0)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def accuracy(scores: Sequence[float], labels: Sequence[int], threshold: float,
             id2label: dict[int, str]) -> dict[str, Any]:
    """Accuracy with ``score >= threshold`` meaning label 1, overall and per class, its 95 %
    interval and the confusion matrix (``confusion[true][predicted]`` by label name)."""
    predicted = [int(s >= threshold) for s in scores]
    hits = [p == y for p, y in zip(predicted, labels, strict=True)]
    out: dict[str, Any] = {"accuracy": sum(hits) / len(hits),
                           "accuracy_ci95": list(wilson_interval(sum(hits), len(hits)))}
    for cls, label in id2label.items():
        members = [i for i, y in enumerate(labels) if y == cls]
        out[f"accuracy_{label}"] = sum(hits[i] for i in members) / max(len(members), 1)
        out[f"mean_score_{label}"] = sum(scores[i] for i in members) / max(len(members), 1)
    out["confusion"] = {
        id2label[t]: {id2label[p]: sum(1 for y, q in zip(labels, predicted, strict=True)
                                       if (y, q) == (t, p)) for p in id2label}
        for t in id2label
    }
    return out


def judge_scores(path: str | Path, examples: Examples, batch_size: int,
                 task: JudgeTask = SENTIMENT) -> list[float]:
    """P(label 1) for each example, through the task's scorer."""
    from resistkit.scoring import score_records

    cols = score_records(examples.records(), [task.scorer], batch_size=batch_size,
                         **{task.judge_option: str(path)}, **task.scorer_options)
    return cols[task.score_column]


def evaluate_judge(
    judge: str | Path, *, batch_size: int = 64, num_eval: int | None = None, seed: int = 42,
    task: JudgeTask = SENTIMENT,
) -> dict[str, Any]:
    """Accuracy of a sequence classifier and of the task's baseline on its held-out examples,
    and how often the two agree.

    Label 1 means P(label 1) >= 0.5 for the judge; a baseline score >= 0.5 means the task's
    ``baseline_means`` label (VADER compound >= 0 is positive; a refusal is safe).
    ``num_eval`` scores a seeded subset (for tests).
    """
    from resistkit.models import resolve_model
    from resistkit.scoring import score_records

    path = resolve_model(str(judge)).path
    heldout = task.examples("heldout").sample(num_eval, seed)
    cols = score_records(
        heldout.records(), [task.scorer, task.baseline_scorer], batch_size=batch_size,
        **{task.judge_option: path}, **task.scorer_options,
    )
    judged = cols[task.score_column]
    raw = cols[task.baseline_column]
    if any(math.isnan(s) for s in judged + raw):
        raise JudgeError("some held-out texts were not scored; the data set looks damaged")
    # The baseline as a score of label 1, whichever label its own 1 stands for.
    baseline = raw if task.baseline_means == 1 else [1.0 - s for s in raw]
    base = accuracy(baseline, heldout.labels, 0.5, task.id2label)
    if task.baseline_neutral is not None:
        # VADER's exact zero is its "no sentiment words found"; it counts as positive above.
        base["share_exactly_neutral"] = (sum(s == task.baseline_neutral for s in raw)
                                         / len(raw))
    agree = sum((j >= 0.5) == (b >= 0.5) for j, b in zip(judged, baseline, strict=True))
    return {
        "judge_path": path,
        "n": len(heldout),
        "threshold": {"judge": f"P({task.positive}) >= 0.5",
                      "baseline": f"{task.baseline_scorer} >= 0.5 means "
                                  f"{task.id2label[task.baseline_means]}"},
        "judge": accuracy(judged, heldout.labels, 0.5, task.id2label),
        task.baseline_key: base,
        "agreement": {"with": task.baseline_scorer, "share": agree / len(judged),
                      "ci95": list(wilson_interval(agree, len(judged)))},
        "scores": judged,
    }
