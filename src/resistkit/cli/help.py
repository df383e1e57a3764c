"""How `--help` reads: click's and TRL's metavars (RECIPE, TEXT, INTEGER), whole paragraphs.

The installed typer labels each value by its Python type (`<str>`, `<list[str]>`, `<int
range>`), gives flags a `<bool>` (`--help <bool>`) and a required argument braces in the usage
line (`{recipe}`); it also keeps the line breaks of a docstring's later paragraphs, so they wrap
raggedly. ``HelpCommand`` (every resistkit command's class, set by ``common.App``) shows the
classic names instead and lets each paragraph wrap at the terminal's width.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperGroup

# Python type -> the metavar click has always shown for it.
METAVARS: dict[Any, str] = {str: "TEXT", int: "INTEGER", float: "FLOAT", Path: "PATH"}


def _metavar(param: Any) -> str | None:
    described = getattr(param, "type_descriptor", None)
    if described is None or getattr(param, "is_flag", False):
        return "" if getattr(param, "is_flag", False) else None  # a flag takes no value
    annotation = described.annotation
    if described.is_list:
        annotation = getattr(annotation, "__args__", (str,))[0]
    name = METAVARS.get(annotation)
    if name is None:
        return None  # typer's own label for anything else (choices, tuples, dates)
    return f"{name} RANGE" if described.is_ranged else name


def paragraphs(text: str | None) -> str | None:
    """Each paragraph on one line (the terminal wraps it); a paragraph that starts with \\b
    (click's "keep as written" mark) keeps its line breaks."""
    if not text:
        return text
    parts = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in parts)


class _Argument(TyperArgument):
    """An argument shown as NAME and its value type (RECIPE  TEXT), as click shows it."""

    type_label: str | None = None

    def display_type_rich(self, ctx: Any) -> str | None:
        return self.type_label if self.type_label is not None else super().display_type_rich(ctx)


def _quiet_help_option(option: Any) -> Any:
    if option is not None:
        option.metavar = ""  # --help is a flag: no `<bool>` after it
    return option


class HelpGroup(TyperGroup):
    def get_help_option(self, ctx: Any) -> Any:
        return _quiet_help_option(super().get_help_option(ctx))


class HelpCommand(TyperCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["help"] = paragraphs(kwargs.get("help"))
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, TyperArgument):
                param.metavar = param.metavar or (param.name or "").upper()
                param.__class__ = _Argument  # typer builds the instance; only display differs
                param.type_label = _metavar(param)
            elif param.metavar is None:
                param.metavar = _metavar(param)

    def get_help_option(self, ctx: Any) -> Any:
        return _quiet_help_option(super().get_help_option(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """`[OPTIONS] RECIPE [DIRECTORY]`: required arguments bare, optional ones bracketed."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar or (param.name or "").upper()
                name = name if param.required else f"[{name}]"
                pieces.append(name + ("..." if param.nargs != 1 else ""))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces
