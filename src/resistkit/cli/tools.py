"""Tool commands: `pretrain` (a base model from scratch) and `env` (versions for bug reports)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from resistkit.cli.common import DryRunOpt, OutOpt, ResumeOpt, SetOpt, VerboseOpt, stage_overrides


def pretrain(
    recipe: Annotated[str, typer.Argument(help="Pre-training recipe: a YAML path or a packaged "
                                          "name (pretrain/micro).", show_default=False)],
    set_: SetOpt = None,
    output_dir: OutOpt = None,
    resume: ResumeOpt = True,
    dry_run: DryRunOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Pre-train a byte-level BPE tokenizer and a Llama-style model from scratch.

    Saves complete models (config + tokenizer + safetensors) at each `save_at_tokens` count
    and at the end, with held-out bits/token, in RUN/pretrain_manifest.json. A killed run
    started again resumes from its last checkpoint; a finished run is not recomputed.
    """
    from resistkit.catalog import find_recipe
    from resistkit.cli.console import with_console
    from resistkit.training.pretrain import load_pretrain_recipe
    from resistkit.training.pretrain import pretrain as run_pretrain

    rec = load_pretrain_recipe(find_recipe(recipe), stage_overrides(set_, output_dir))
    if dry_run:
        _pretrain_plan(rec)
        return
    manifest = with_console(f"resistkit pretrain {recipe} -> {rec.output_dir} "
                             f"({rec.max_tokens:,} tokens)", run_pretrain, rec,
                             resume=resume).manifest
    unigram = manifest.get("unigram_bits_per_token")
    baseline = f", unigram baseline {unigram:.3f} bits/token" if unigram is not None else ""
    typer.echo(f"{manifest['parameters'] / 1e6:.2f}M parameters{baseline}")
    for row in [*manifest["checkpoints"], manifest["final"]]:
        bits = row.get("heldout_bits_per_token")
        shown = f"held-out {bits:.3f} bits/token, " if bits is not None else ""
        speed = f"{row['tokens_per_s']} tokens/s"
        typer.echo(f"{row['tokens_seen']:>12,} tokens: {shown}{speed} -> {row['dir']}")


def _pretrain_plan(rec: Any) -> None:
    """What `pretrain` would do: the data it reads, the steps, the checkpoints."""
    import math

    from resistkit.data import load_data
    from resistkit.errors import RecipeError, ResistkitError
    from resistkit.training.pretrain_recipe import PRETRAIN_DEFAULTS, tokens_per_step_of

    try:
        docs = len(load_data(rec.data.dataset, split=rec.data.split,
                             num_samples=rec.data.num_samples, seed=rec.seed,
                             data_files=rec.data.data_files))
    except ResistkitError as err:
        raise RecipeError(rec.origin, "data", str(err)) from None
    per_step = tokens_per_step_of({**PRETRAIN_DEFAULTS, **rec.train}, 1)
    saves = ", ".join(f"{n:,}" for n in rec.save_at_tokens) or "none"
    typer.echo(f"would pre-train a {rec.model.hidden_size}-wide, {rec.model.num_hidden_layers}"
               f"-layer Llama on {docs:,} documents of {rec.data.dataset}: {rec.max_tokens:,} "
               f"tokens in {math.ceil(rec.max_tokens / per_step):,} steps of {per_step:,}; "
               f"complete models at {saves} tokens; into {rec.output_dir}")


def env(verbose: VerboseOpt = False) -> None:
    """Print the versions and devices that matter for a bug report."""
    from resistkit.runinfo import environment
    from resistkit.training.methods import METHODS

    info = environment()
    rows: list[tuple[str, Any]] = [("python", info["python"]), ("platform", info["platform"])]
    rows += [(name, version or "-") for name, version in info["packages"].items()]
    rows += list(info["device"].items())
    for m in METHODS.values():
        where = m.trainer_path.partition(":")[0]
        note = "  (experimental TRL API: may change between TRL releases)" if m.experimental \
            else ""
        rows.append((f"method {m.name}", f"{where}.{m.trainer_path.partition(':')[2]}{note}"))
    width = max(len(key) for key, _ in rows) + 2  # one column for every key, however long
    for key, value in rows:
        typer.echo(f"{key:<{width}}{value}")
