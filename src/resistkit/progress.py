"""Progress of long work (training steps, generated sequences, scored records), reported to
whoever listens: the command line installs a console (``cli.console``); without one, every
call is a no-op. Library code reports in its own units and never prints.

    progress.current().start("training", total=128, unit="step", done=64)   # resumed
    progress.current().update(done=65, loss=4.31)
    progress.current().note("resumed from step 64")
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Reporter:
    """The interface (and the silent default): a console overrides what it shows."""

    def start(self, what: str, total: int | None, unit: str, done: int = 0) -> None:
        """A new piece of work of ``total`` units (``done`` already, after a resume)."""

    def update(self, done: int | None = None, advance: int = 0, **fields: Any) -> None:
        """Units done so far (or ``advance`` by some); ``fields`` such as loss=4.3."""

    def note(self, message: str) -> None:
        """A one-line fact worth showing (e.g. where a run resumed)."""


_SILENT = Reporter()
_current: list[Reporter] = [_SILENT]


def current() -> Reporter:
    return _current[-1]


@contextmanager
def reporting(reporter: Reporter) -> Iterator[Reporter]:
    """Send progress to ``reporter`` inside the block."""
    _current.append(reporter)
    try:
        yield reporter
    finally:
        _current.pop()
