"""`resistkit recipes`: the packaged recipes, to list, read and copy to start one's own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from resistkit.cli.common import App, VerboseOpt

app = App(help="List, show and copy the packaged recipes (resistkit run NAME runs one).")


@app.command("list")
def list_(
    names: Annotated[bool, typer.Option("--names", help="Only the names, one per line.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Every packaged recipe: name (for `resistkit run NAME`), setting, model, purpose."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from resistkit.catalog import list_recipes

    if names:
        for info in list_recipes():
            typer.echo(info.name)
        return
    table = Table(title="packaged recipes (resistkit run NAME, resistkit recipes copy NAME)")
    for col in ("name", "setting", "model", "purpose"):
        table.add_column(col, overflow="fold", no_wrap=col == "name")
    for info in list_recipes():
        table.add_row(*(escape(v) for v in (info.name, info.kind, info.model, info.purpose)))
    Console().print(table)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="A packaged recipe name, e.g. tiny/setting2.")],
    verbose: VerboseOpt = False,
) -> None:
    """Print a recipe (its YAML, comments included)."""
    from resistkit.catalog import find_recipe

    path = find_recipe(name)
    typer.echo(f"# {path}")
    typer.echo(path.read_text(encoding="utf-8"), nl=False)


@app.command("copy")
def copy(
    name: Annotated[str, typer.Argument(help="A packaged recipe name, e.g. quickstart.")],
    directory: Annotated[Path, typer.Argument(help="Where to put the copy.")] = Path("."),
    verbose: VerboseOpt = False,
) -> None:
    """Copy a packaged recipe into DIRECTORY (default: here) to start one's own."""
    from resistkit.catalog import copy_recipe

    typer.echo(f"wrote {copy_recipe(name, directory)}")
