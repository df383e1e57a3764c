"""The role of each compression set of a Setting II experiment: pre-training text (`pretrain`),
the alignment set (`align`), the perturbation set (`perturb`) or `other`. Hooke's law and the
compression figure read the roles; a recipe may state them, older recipes get them guessed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from resistkit.errors import RecipeError
from resistkit.recipes import DataSpec


class CompressionSpec(DataSpec):
    """A data set whose bits/token is measured at every checkpoint, and what it stands for in
    the theory: held-out pre-training text (``pretrain``), the forward alignment data
    (``align``), the inverse (perturbation) data (``perturb``), or ``other``."""

    role: Literal["pretrain", "align", "perturb", "other"] | None = Field(
        None, description="Role in Hooke's law; default: guessed from the data set (see docs)."
    )
    column: str | None = Field(
        None, description="The column whose text is measured (the rest of the record is "
        "context): one side of a preference set, `chosen` or `rejected`, so both sides of "
        "the same prompts form two sets; default: response, completion or text."
    )

    @property
    def key(self) -> str:
        """Its name in a compression stage's outputs and in ``eval.margin``:
        DATASET:SPLIT, or DATASET:SPLIT:COLUMN for one column of a data set."""
        base = f"{self.dataset}:{self.split}"
        return f"{base}:{self.column}" if self.column else base


def guess_role(spec: DataSpec, forward: DataSpec, inverse: DataSpec) -> str:
    """The role of a compression set that does not state one (recipes written before roles)."""
    if spec.dataset == forward.dataset:
        return "align"
    if spec.dataset == inverse.dataset:
        return "perturb"
    return "pretrain" if "pretrain" in spec.dataset else "other"


def assign_roles(compression: Sequence[CompressionSpec], forward: DataSpec,
                 inverse: DataSpec) -> None:
    """Give every compression set a role, so the resolved experiment.yaml states it."""
    for spec in compression:
        if spec.role is None:
            spec.role = guess_role(spec, forward, inverse)  # type: ignore[assignment]


def check_roles(compression: Sequence[CompressionSpec], source: str) -> None:
    """Each of pretrain / align / perturb names at most one set (eval.compression)."""
    seen: dict[str, int] = {}
    for i, spec in enumerate(compression):
        if spec.role in ("pretrain", "align", "perturb") and spec.role in seen:
            raise RecipeError(source, f"eval.compression.{i}.role",
                              f"{spec.role!r} is already the role of eval.compression."
                              f"{seen[spec.role]}; each of pretrain/align/perturb names one set")
        seen[spec.role or "other"] = i
