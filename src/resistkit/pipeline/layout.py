"""The run-directory contract of `resistkit run`: every stage path and every file name.

    RUN/experiment.yaml  env.json  plan.json        the resolved recipe, versions, the plan
    RUN/[models/LABEL/]seed-S/                      one seed (of one base, in Setting III)
        train/control                               domain control SFT (optional)
        train/forward | train/forward-q1-Q          forward SFT (nested: one run, a slice per Q1)
        train/inverse-q1-Q | inverse-q1-Q-q2-R      inverse step from the Q1 slice
        data/inverse-pairs/pairs.jsonl              preference pairs of a DPO/SimPO/ORPO inverse
        data/inverse-unpaired/pairs.jsonl           KTO's alternating desirable/undesirable rows
        points/base | points/q1-Q/q2-R              one evaluated checkpoint:
            generate/generations.jsonl  score/{scores.jsonl,summary.json}
            generate-NAME/ score-NAME/              the same for eval.prompt_sets NAME
            compression/compression-I.{scores.jsonl,summary.json}
            kl/kl.{scores.jsonl,summary.json}       KL(point ‖ θ0) on eval.kl
    RUN/seed-S/train/slices                         Setting I: slices θ1..θn
        responses/theta-K/{generate,data}           D_K: θK's responses, as training data
        pairs/{forward,inverse}-K-to-L              θK trained on D_L (forward) and back
    RUN/report/                                     report.md, figures, CSVs
    RUN/jobs/STAGE/                                 --executor local/slurm: the stage's job
                                                    record and lock (``pipeline.jobs``)

Each stage directory holds ``manifest.json`` once complete (``pipeline.runner``). The report
and the elasticity estimates find stages through the plan (``Plan.points``, ``Plan.pairs``),
never by parsing these names back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from resistkit.training.layout import FINAL_DIR, slice_dir

EXPERIMENT_FILE = "experiment.yaml"
ENV_FILE = "env.json"
PLAN_FILE = "plan.json"
REPORT_DIR = "report"

GENERATIONS = "generations.jsonl"
SCORES = "scores.jsonl"
SUMMARY = "summary.json"
PAIRS = "pairs.jsonl"
RESPONSES = "dataset.jsonl"

# The three stages that evaluate one checkpoint, by kind: the stage directory names under a
# point and the `kind` recorded in their manifests.
GENERATE, SCORE, COMPRESSION, KL = "generate", "score", "compression", "kl"
KL_SCORES, KL_SUMMARY = "kl.scores.jsonl", "kl.summary.json"


def compression_scores(index: int) -> str:
    return f"compression-{index}.scores.jsonl"


def compression_summary(index: int) -> str:
    return f"compression-{index}.summary.json"


def slice_of(stage: str, samples: int) -> str:
    """A training stage's slice after ``samples`` samples, relative to the run."""
    return str(slice_dir(Path(stage), samples))


def final_of(stage: str) -> str:
    return f"{stage}/{FINAL_DIR}"


@dataclass(frozen=True)
class SeedLayout:
    """Stage names under one seed (and, in Setting III, one base model label)."""

    seed: int
    model: str = ""

    @property
    def root(self) -> str:
        prefix = f"models/{self.model}/" if self.model else ""
        return f"{prefix}seed-{self.seed}"

    # Setting II / III
    def control(self) -> str:
        return f"{self.root}/train/control"

    def forward(self, q1: int | None = None) -> str:
        """The nested forward run (``q1=None``), or the separate run for one Q1."""
        return f"{self.root}/train/forward" if q1 is None else f"{self.root}/train/forward-q1-{q1}"

    def inverse(self, q1: int, q2: int | None = None) -> str:
        """The nested inverse run from the Q1 slice (``q2=None``), or one for one Q2."""
        name = f"{self.root}/train/inverse-q1-{q1}"
        return name if q2 is None else f"{name}-q2-{q2}"

    def inverse_pairs(self, unpaired: bool = False) -> str:
        return f"{self.root}/data/inverse-{'unpaired' if unpaired else 'pairs'}"

    def point(self, q1: int | None = None, q2: int | None = None) -> str:
        """The evaluated checkpoint: the base (``q1=None``) or the (Q1, Q2) point."""
        return f"{self.root}/points/base" if q1 is None else f"{self.root}/points/q1-{q1}/q2-{q2}"

    # Setting I
    def slices(self) -> str:
        return f"{self.root}/train/slices"

    def responses(self, k: int) -> str:
        return f"{self.root}/responses/theta-{k}"

    def pair(self, direction: str, src: int, dst: int) -> str:
        return f"{self.root}/pairs/{direction}-{src}-to-{dst}"


def prompt_set_kinds(name: str) -> tuple[str, str]:
    """The generate and score kinds of a further prompt set (``eval.prompt_sets``)."""
    return f"{GENERATE}-{name}", f"{SCORE}-{name}"


def prompt_set_of(kind: str) -> str | None:
    """The prompt set a score kind belongs to: None for eval.prompts' own ``score``."""
    return kind.removeprefix(f"{SCORE}-") if kind.startswith(f"{SCORE}-") else None


def eval_stage(point: str, kind: str) -> str:
    """``POINT/generate``, ``POINT/score`` or ``POINT/compression``."""
    return f"{point}/{kind}"
