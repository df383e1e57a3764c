"""How the list commands print: whole names, whole sentences and whole paths at any width.

A table squeezed into 80 columns splits words across cells (``SmolLM2-135M-I│nstruct``) and
paths across lines, so `recipes list` and `models list` print one block per entry instead: a
heading line (the name, then its short facts) and indented lines wrapped only between words.
A path or any other single word longer than the line is printed whole, for the terminal to wrap.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

import typer

INDENT = "  "


@dataclass(frozen=True)
class Entry:
    name: str
    facts: str = ""  # on the name's line when it fits, else on its own line below
    lines: Sequence[str] = field(default_factory=tuple)  # each wrapped between words


def width() -> int:
    """The terminal's width (COLUMNS when set, as typer and rich read it), at least 40."""
    return max(40, shutil.get_terminal_size((100, 24)).columns)


def wrap(text: str, columns: int, indent: str = INDENT) -> list[str]:
    # No break inside a word or at its hyphens: names such as SmolLM2-135M-Instruct stay whole.
    return textwrap.wrap(text, columns, initial_indent=indent, subsequent_indent=indent,
                         break_long_words=False, break_on_hyphens=False) or [indent]


def print_entries(title: str, entries: Sequence[Entry], name_width: int | None = None) -> None:
    """``title``, then each entry as a heading line and its wrapped, indented lines."""
    columns = width()
    pad = name_width if name_width is not None else max(len(e.name) for e in entries) + 2
    typer.echo(title)
    for entry in entries:
        heading = f"{entry.name:<{pad}}{entry.facts}".rstrip()
        if len(heading) <= columns:
            typer.echo(heading)
        else:
            typer.echo(entry.name)
            typer.echo("\n".join(wrap(entry.facts, columns)))
        for line in entry.lines:
            typer.echo("\n".join(wrap(line, columns)))
