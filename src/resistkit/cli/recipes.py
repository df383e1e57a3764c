"""`resistkit recipes`: the packaged recipes, to list, read and copy to start one's own."""

from __future__ import annotations

from typing import Annotated

import typer

from resistkit.cli.common import App, VerboseOpt

app = App(help="List, show and copy the packaged recipes (resistkit run NAME runs one).")


@app.command("list")
def list_(
    names: Annotated[bool, typer.Option("--names", help="Only the names, one per line.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Every packaged recipe: its name (for `resistkit run NAME`), setting, model and purpose."""
    from resistkit.catalog import list_recipes
    from resistkit.cli.listing import Entry, print_entries

    recipes = list_recipes()
    if names:
        for info in recipes:
            typer.echo(info.name)
        return
    print_entries("packaged recipes (resistkit run NAME; resistkit recipes copy NAME):",
                  [Entry(info.name, f"{info.kind}, {info.model}", [info.purpose])
                   for info in recipes])


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="A packaged recipe name, e.g. tiny/setting2.")],
    verbose: VerboseOpt = False,
) -> None:
    """Print a recipe (its YAML, comments included)."""
    from resistkit.catalog import find_recipe, read_recipe_text

    path = find_recipe(name)
    text = read_recipe_text(path)
    typer.echo(f"# {path}")
    typer.echo(text, nl=False)


@app.command("copy")
def copy(
    name: Annotated[str, typer.Argument(help="A packaged recipe name, e.g. quickstart.")],
    destination: Annotated[str, typer.Argument(
        help="A new file ending in .yaml, or a directory to copy into: one that exists, or a "
        "new one written with a trailing / (default: here).")] = ".",
    verbose: VerboseOpt = False,
) -> None:
    """Copy a packaged recipe to DESTINATION to start one's own; never overwrites a file.

    resistkit recipes copy quickstart my-run.yaml writes my-run.yaml; resistkit recipes copy
    quickstart experiments/ writes experiments/quickstart.yaml. A name that is neither (an
    existing file, or a new name without .yaml or a trailing /) is refused.
    """
    from resistkit.catalog import copy_recipe

    typer.echo(f"wrote {copy_recipe(name, destination)}")
