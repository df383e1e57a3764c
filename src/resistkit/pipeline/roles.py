"""The role of each compression set of a Setting II experiment: pre-training text (`pretrain`),
the alignment set (`align`), the perturbation set (`perturb`) or `other`. Hooke's law and the
compression figure read the roles; a recipe may state them, older recipes get them guessed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from resistkit.errors import RecipeError
from resistkit.recipes import DataSpec

if TYPE_CHECKING:
    from resistkit.pipeline.schema import ExperimentRecipe


def guess_role(spec: DataSpec, forward: DataSpec, inverse: DataSpec) -> str:
    """The role of a compression set that does not state one (recipes written before roles)."""
    if spec.dataset == forward.dataset:
        return "align"
    if spec.dataset == inverse.dataset:
        return "perturb"
    return "pretrain" if "pretrain" in spec.dataset else "other"


def assign_roles(recipe: ExperimentRecipe) -> None:
    """Give every compression set a role, so the resolved experiment.yaml states it."""
    s2 = recipe.setting2
    assert s2 is not None
    forward, inverse = (s2.negative, s2.positive) if s2.reverse else (s2.positive, s2.negative)
    for spec in recipe.eval.compression:
        if spec.role is None:
            spec.role = guess_role(spec, forward, inverse)  # type: ignore[assignment]


def check_roles(recipe: ExperimentRecipe, source: str) -> None:
    seen: dict[str, int] = {}
    for i, spec in enumerate(recipe.eval.compression):
        if spec.role in ("pretrain", "align", "perturb") and spec.role in seen:
            raise RecipeError(source, f"eval.compression.{i}.role",
                              f"{spec.role!r} is already the role of eval.compression."
                              f"{seen[spec.role]}; each of pretrain/align/perturb names one set")
        seen[spec.role or "other"] = i
