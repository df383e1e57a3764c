"""``eval.prompt_sets``: further prompt sets sampled and scored beside ``eval.prompts``.

Their schema is ``schema.PromptSetSpec``; here are the checks of a recipe's sets and the
scorers and options each set's score stages run with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from resistkit.errors import RecipeError
from resistkit.recipes import nearest

if TYPE_CHECKING:
    from resistkit.pipeline.schema import EvalSpec, PromptSetSpec


def check_prompt_sets(ev: EvalSpec, source: str) -> None:
    """Each further prompt set has a unique name, known scorers and options they accept."""
    from resistkit.scoring import SCORERS
    from resistkit.scoring.registry import route_options

    names = [p.name for p in ev.prompt_sets]
    for i, ps in enumerate(ev.prompt_sets):
        key = f"eval.prompt_sets.{i}"
        if names.count(ps.name) > 1:
            raise RecipeError(source, f"{key}.name", f"{ps.name!r} names two prompt sets")
        if ev.prompts is None:
            raise RecipeError(source, key, "needs eval.prompts (the main prompt set) too")
        scorers = ps.scorers if ps.scorers is not None else ev.scorers
        if not scorers:
            raise RecipeError(source, f"{key}.scorers", "is empty: a prompt set with no "
                              "scorer measures nothing")
        for j, name in enumerate(scorers):
            if name not in SCORERS:
                raise RecipeError(source, f"{key}.scorers.{j}", f"unknown scorer {name!r}; "
                                  f"scorers: {', '.join(sorted(SCORERS))}",
                                  nearest(name, SCORERS))
        _, options = prompt_set_scorers(ev, ps)
        try:
            route_options([SCORERS[n] for n in scorers], options)
        except ValueError as err:
            raise RecipeError(source, f"{key}.scorers", str(err)) from None


def prompt_set_scorers(ev: EvalSpec, ps: PromptSetSpec) -> tuple[list[str], dict[str, Any]]:
    """A further prompt set's scorers and the eval.scorer_options they accept."""
    from resistkit.scoring import SCORERS

    scorers = ps.scorers if ps.scorers is not None else ev.scorers
    accepted = {o for name in scorers for o in SCORERS[name].options}
    return scorers, {k: v for k, v in ev.scorer_options.items() if k in accepted}
