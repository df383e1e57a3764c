"""``eval.prompt_sets``: further prompt sets sampled and scored beside ``eval.prompts``.

Their schema (``PromptSetSpec``), the checks of a recipe's sets, and the scorers and options
each set's score stages run with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field

from resistkit.errors import RecipeError
from resistkit.recipes import DataSpec, nearest


class PromptSetSpec(DataSpec):
    """A further prompt set sampled and scored at the same points as ``eval.prompts``, with its
    own scorers; its columns are reported as NAME_COLUMN (``xstest_safe_refusal`` is the
    over-refusal rate on XSTest's safe prompts)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Prefix of its columns.")
    scorers: list[str] | None = Field(None, description="Its scorers (default: eval.scorers);"
                                      " options come from eval.scorer_options.")


def check_prompt_sets(prompt_sets: Sequence[PromptSetSpec], *, has_prompts: bool,
                      scorers: list[str], scorer_options: Mapping[str, Any],
                      source: str) -> None:
    """Each further prompt set (eval.prompt_sets) has a unique name, known scorers and options
    they accept; ``scorers`` and ``scorer_options`` are eval's, ``has_prompts`` whether
    eval.prompts is set."""
    from resistkit.scoring import SCORERS
    from resistkit.scoring.registry import route_options

    names = [p.name for p in prompt_sets]
    for i, ps in enumerate(prompt_sets):
        key = f"eval.prompt_sets.{i}"
        if names.count(ps.name) > 1:
            raise RecipeError(source, f"{key}.name", f"{ps.name!r} names two prompt sets")
        if not has_prompts:
            raise RecipeError(source, key, "needs eval.prompts (the main prompt set) too")
        own, options = prompt_set_scorers(ps, scorers, scorer_options)
        if not own:
            raise RecipeError(source, f"{key}.scorers", "is empty: a prompt set with no "
                              "scorer measures nothing")
        for j, name in enumerate(own):
            if name not in SCORERS:
                raise RecipeError(source, f"{key}.scorers.{j}", f"unknown scorer {name!r}; "
                                  f"scorers: {', '.join(sorted(SCORERS))}",
                                  nearest(name, SCORERS))
        try:
            route_options([SCORERS[n] for n in own], options)
        except ValueError as err:
            raise RecipeError(source, f"{key}.scorers", str(err)) from None


def prompt_set_scorers(ps: PromptSetSpec, scorers: list[str],
                       scorer_options: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """A further prompt set's scorers (its own, else eval's ``scorers``) and the options of
    ``scorer_options`` (eval's) they accept; an unknown scorer accepts none."""
    from resistkit.scoring import SCORERS

    own = ps.scorers if ps.scorers is not None else scorers
    accepted = {o for name in own if name in SCORERS for o in SCORERS[name].options}
    return own, {k: v for k, v in scorer_options.items() if k in accepted}
