"""The errors a user can fix, under one base that the CLI turns into one line and exit status 2.

Every message names what is wrong (the file, key, column, value or model) and, where one is
known, the fix. Anything that is not a ``ResistkitError`` is a bug and keeps its traceback.
"""

from __future__ import annotations


class ResistkitError(Exception):
    """A user-facing error: the message is complete on one line; the CLI exits with status 2."""

    exit_code = 2
    # True when the problem is only an input that is not on this machine (a hub model or data
    # set out of reach, a directory another run has not made yet): a dry run plans past it.
    missing_input = False

    def unavailable(self) -> ResistkitError:
        self.missing_input = True
        return self


class RecipeError(ResistkitError, ValueError):
    """A recipe is wrong; the message names the file, the key path and, if known, a fix."""

    def __init__(self, source: str, key: str, message: str, suggestion: str | None = None):
        self.source, self.key, self.suggestion = source, key, suggestion
        hint = f" (did you mean '{suggestion}'?)" if suggestion else ""
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(f"{where}{message}{hint}")


class DataSpecError(ResistkitError, ValueError):
    """A dataset spec, split, selector, column set or sample count that cannot be honoured.

    The message always names the spec that failed, so an error deep inside a recipe run
    still points at the recipe key to fix.
    """


class ModelError(ResistkitError):
    """A model name that cannot be resolved or loaded here; the message says how to fix it."""


class ScoringError(ResistkitError, ValueError):
    """A problem with the scorer request or its input that the user can fix."""


class RunError(ResistkitError):
    """A run directory, stage output or command-line argument that cannot be used as asked."""


class JudgeError(ModelError):
    """A built-in judge cannot be provided or built; the message says how to fix it."""
