"""Tool commands: `pretrain` (a base model from scratch) and `env` (versions for bug reports)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from resistkit.cli.common import OutOpt, ResumeOpt, SetOpt, VerboseOpt, stage_overrides


def pretrain(
    recipe: Annotated[Path, typer.Argument(help="Pre-training recipe YAML.", show_default=False)],
    set_: SetOpt = None,
    output_dir: OutOpt = None,
    resume: ResumeOpt = True,
    verbose: VerboseOpt = False,
) -> None:
    """Pre-train a byte-level BPE tokenizer and a Llama-style model from scratch.

    Saves complete models (config + tokenizer + safetensors) at each `save_at_tokens` count
    and at the end, with held-out bits/token, in RUN/pretrain_manifest.json. A killed run
    started again resumes from its last checkpoint; a finished run is not recomputed.
    """
    from resistkit.training.pretrain import load_pretrain_recipe
    from resistkit.training.pretrain import pretrain as run_pretrain

    rec = load_pretrain_recipe(recipe, stage_overrides(set_, output_dir))
    manifest = run_pretrain(rec, resume=resume).manifest
    unigram = manifest.get("unigram_bits_per_token")
    baseline = f", unigram baseline {unigram:.3f} bits/token" if unigram is not None else ""
    typer.echo(f"{manifest['parameters'] / 1e6:.2f}M parameters{baseline}")
    for row in [*manifest["checkpoints"], manifest["final"]]:
        bits = row.get("heldout_bits_per_token")
        shown = f"held-out {bits:.3f} bits/token, " if bits is not None else ""
        speed = f"{row['tokens_per_s']} tokens/s"
        typer.echo(f"{row['tokens_seen']:>12,} tokens: {shown}{speed} -> {row['dir']}")


def env(verbose: VerboseOpt = False) -> None:
    """Print the versions and devices that matter for a bug report."""
    from resistkit.runinfo import environment

    info = environment()
    typer.echo(f"python        {info['python']}")
    typer.echo(f"platform      {info['platform']}")
    for name, version in info["packages"].items():
        typer.echo(f"{name:<13} {version or '-'}")
    for key, value in info["device"].items():
        typer.echo(f"{key:<13} {value}")
