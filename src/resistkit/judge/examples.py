"""The labelled examples a judge is trained and scored on, per task and split.

A sentiment judge reads a text; a safety judge reads a request and its answer together (the
tokenizer's text pair, ``[CLS] prompt [SEP] answer [SEP]``), because whether an answer is harmful
depends on what was asked. ``Examples.prompts`` carries the first segment when there is one, and
training, evaluation and the scorers all feed it the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

SAFE, HARMFUL = 0, 1
SAFETY_SAFE = "builtin:safety/safe"
SAFETY_HARMFUL = "builtin:safety/harmful"
SAFETY_PREFERENCE = "builtin:safety/preference"


@dataclass(frozen=True)
class Examples:
    """Texts with 0/1 labels; ``prompts`` (same length) when the judge reads text pairs."""

    texts: list[str]
    labels: list[int]
    prompts: list[str] | None = None
    # How the rows were chosen (counts of dropped rows...), recorded in judge.json.
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def select(self, indices: Sequence[int]) -> Examples:
        return Examples([self.texts[i] for i in indices], [self.labels[i] for i in indices],
                        None if self.prompts is None else [self.prompts[i] for i in indices],
                        self.info)

    def sample(self, num: int | None, seed: int) -> Examples:
        """A seeded subset of ``num`` rows, the permutation ``load_data`` uses (tests)."""
        if num is None:
            return self
        from resistkit.data.registry import sample_indices

        return self.select(sample_indices(len(self), num, seed, True))

    def records(self) -> dict[str, list[str]]:
        """The rows as scorer records (``response`` and, for pairs, ``prompt``)."""
        out = {"response": self.texts}
        if self.prompts is not None:
            out["prompt"] = self.prompts
        return out


def labelled_texts(spec: str, split: str) -> Examples:
    """A data set with ``text`` and a 0/1 ``label`` column, in stored order."""
    from resistkit.data import load_data

    ds = load_data(spec, split=split, shuffle=False)
    return Examples(list(ds["text"]), [int(x) for x in ds["label"]])


def normalise_prompt(text: str) -> str:
    """The form in which two prompts count as the same: lower case, whitespace collapsed."""
    return re.sub(r"\s+", " ", text).strip().lower()


def safety_judge_split(split: str) -> Examples:
    """The safety judge's ``train`` or ``heldout`` examples, prompt-disjoint.

    held-out: the ``heldout`` rows of safety/safe (label 0) and safety/harmful (label 1).
    train: the ``train`` rows of those two sets plus safety/preference ``train`` pairs
    (chosen = 0, rejected = 1), de-duplicated, minus every row whose normalised prompt is a
    held-out prompt or a prompt of safety/preference ``heldout``. The first keeps the held-out
    accuracy a measure of unseen requests (an answer to a seen request could be recognised by
    its request); the second keeps the preference set's held-out split, the test set of the
    likelihood-margin metric, entirely out of the judge's training.
    """
    from resistkit.data import load_data

    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")

    def rows(spec: str, part: str, label: int, column: str = "completion") -> list[tuple]:
        ds = load_data(spec, split=part, shuffle=False)
        return [(p, r, label) for p, r in zip(ds["prompt"], ds[column], strict=True)]

    heldout = rows(SAFETY_SAFE, "heldout", SAFE) + rows(SAFETY_HARMFUL, "heldout", HARMFUL)
    if split == "heldout":
        return _examples(heldout, {"sources": [f"{SAFETY_SAFE}:heldout",
                                               f"{SAFETY_HARMFUL}:heldout"]})
    reserved = {normalise_prompt(p) for p, _, _ in heldout}
    reserved |= {normalise_prompt(p) for p in load_data(SAFETY_PREFERENCE, split="heldout",
                                                         shuffle=False)["prompt"]}
    candidates = (rows(SAFETY_SAFE, "train", SAFE) + rows(SAFETY_HARMFUL, "train", HARMFUL)
                  + rows(SAFETY_PREFERENCE, "train", SAFE, "chosen")
                  + rows(SAFETY_PREFERENCE, "train", HARMFUL, "rejected"))
    kept: list[tuple] = []
    seen: set[tuple[str, str]] = set()
    dropped = {"shares_a_heldout_prompt": 0, "duplicate": 0}
    for prompt, response, label in candidates:
        key = (normalise_prompt(prompt), normalise_prompt(response))
        if key[0] in reserved:
            dropped["shares_a_heldout_prompt"] += 1
        elif key in seen:
            # The preference pairs reuse many safe/harmful answers; one copy is enough.
            dropped["duplicate"] += 1
        else:
            seen.add(key)
            kept.append((prompt, response, label))
    return _examples(kept, {"sources": [f"{SAFETY_SAFE}:train", f"{SAFETY_HARMFUL}:train",
                                        f"{SAFETY_PREFERENCE}:train"],
                            "candidates": len(candidates), "dropped": dropped})


def _examples(rows: list[tuple], info: dict[str, Any]) -> Examples:
    return Examples([r for _, r, _ in rows], [y for _, _, y in rows], [p for p, _, _ in rows],
                    info)
