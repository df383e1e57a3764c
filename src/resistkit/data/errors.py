"""The one error type of the data layer, so callers can turn bad specs into clean CLI messages."""

from __future__ import annotations


class DataSpecError(ValueError):
    """A dataset spec, split, selector, column set or sample count that cannot be honoured.

    The message always names the spec that failed, so an error deep inside a recipe run
    still points at the recipe key to fix.
    """
