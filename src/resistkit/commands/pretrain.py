"""``resistkit pretrain``: a tokenizer and a tiny Llama from scratch, with token checkpoints.

Only typer is imported at module level; torch, transformers and TRL are imported inside the
command so ``resistkit --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def pretrain(
    recipe: Annotated[Path, typer.Argument(help="Pre-training recipe YAML.", show_default=False)],
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", "-s",
            help="Override a recipe key, e.g. --set max_tokens=2000000 (repeatable).",
        ),
    ] = None,
    output_dir: Annotated[
        str | None, typer.Option("--output-dir", "-o", help="Run directory (overrides the recipe).")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue from the last checkpoint in the run directory.")
    ] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Pre-train a byte-level BPE tokenizer and a Llama-style model from scratch.

    Saves complete models (config + tokenizer + safetensors) at each `save_at_tokens` count
    and at the end, with held-out bits/token, in RUN/pretrain_manifest.json. A killed run
    started again resumes from its last checkpoint; a finished run is not recomputed.
    """
    import logging

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from resistkit.data import DataSpecError
    from resistkit.pretrain import load_pretrain_recipe
    from resistkit.pretrain import pretrain as run_pretrain
    from resistkit.recipes import RecipeError

    sets = list(set_ or [])
    if output_dir:
        sets.append(f"output_dir={output_dir}")
    try:
        rec = load_pretrain_recipe(recipe, sets)
        result = run_pretrain(rec, resume=resume)
    except (RecipeError, DataSpecError) as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None

    manifest = result.manifest
    unigram = manifest.get("unigram_bits_per_token")
    baseline = f", unigram baseline {unigram:.3f} bits/token" if unigram is not None else ""
    typer.echo(f"{manifest['parameters'] / 1e6:.2f}M parameters{baseline}")
    for row in [*manifest["checkpoints"], manifest["final"]]:
        bits = row.get("heldout_bits_per_token")
        shown = f"held-out {bits:.3f} bits/token, " if bits is not None else ""
        speed = f"{row['tokens_per_s']} tokens/s"
        typer.echo(f"{row['tokens_seen']:>12,} tokens: {shown}{speed} -> {row['dir']}")
