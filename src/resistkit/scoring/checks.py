"""Recipe references into the scorer registry, checked where both are known: the experiment
schema (``pipeline.schema``) and the training preflight call these; the recipe schema
(``resistkit.recipes``) sits below the scorers and does not import them."""

from __future__ import annotations

from typing import Any

from resistkit.errors import RecipeError


def check_reward_scorer(reward: Any, source: str, key: str) -> None:
    """A reward (``RewardSpec``) names a scorer, one of its score columns (filled in when left
    out) and options that scorer takes."""
    from resistkit.recipes import nearest
    from resistkit.scoring import SCORERS
    from resistkit.scoring.registry import route_options

    spec = SCORERS.get(reward.scorer)
    if spec is None:
        raise RecipeError(source, f"{key}.scorer", f"unknown scorer {reward.scorer!r}; "
                          f"scorers: {', '.join(sorted(SCORERS))}",
                          nearest(reward.scorer, SCORERS))
    columns = [c for c in spec.columns if c not in spec.auxiliary]
    if reward.column is None:
        reward.column = columns[0]
    elif reward.column not in columns:
        raise RecipeError(source, f"{key}.column", f"{reward.column!r} is not a column "
                          f"of {spec.name}; columns: {', '.join(columns)}",
                          nearest(reward.column, columns))
    try:
        route_options([spec], reward.options)
    except ValueError as err:
        raise RecipeError(source, f"{key}.options", str(err)) from None
