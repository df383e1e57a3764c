"""Stage commands: `train`, `generate`, `inverse` (`score` lives in ``cli.score``).

Each parses its options and calls one function of the library; torch, transformers and TRL
are imported inside the commands so that ``resistkit --help`` stays fast.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from resistkit.cli.common import (
    AccelOpt,
    DryRunOpt,
    OutOpt,
    ProcsOpt,
    RecipeArg,
    ResumeOpt,
    SetOpt,
    VerboseOpt,
    stage_overrides,
)


def _train_plan(rec: Any) -> None:
    """What `train` would do, after every check it makes before training."""
    from resistkit.training.common import samples_per_step
    from resistkit.training.preflight import preflight_train

    for note in preflight_train(rec, rec.origin):
        typer.echo(f"note: {note}")
    assert rec.data is not None
    rows = rec.data.num_samples or (rec.save_at_samples[-1] if rec.save_at_samples else None)
    per_step = samples_per_step(rec.train)
    epochs = rec.train.get("num_train_epochs", 1)
    volume = f"{rows} rows x {epochs} epoch(s), {per_step} samples per step" if rows else \
        f"all rows of {rec.data.dataset}, {epochs} epoch(s)"
    slices = ", ".join(map(str, rec.save_at_samples)) or "none"
    typer.echo(f"would train {rec.method} on {rec.model.name_or_path}: {volume}; slices at "
               f"{slices} samples; into {rec.output_dir}")


def _close_process_group() -> None:
    """End a launched run's process group before the interpreter exits.

    Left to interpreter teardown, gloo/DeepSpeed threads are sometimes destroyed while still
    joinable, and a rank aborts ("terminate called without an active exception") after all
    its work is saved; the launcher then reports the whole run as failed.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def train(
    recipe: RecipeArg,
    set_: SetOpt = None,
    output_dir: OutOpt = None,
    resume: ResumeOpt = True,
    force: Annotated[
        bool, typer.Option("--force", help="Train again from scratch in a run directory that "
                           "holds a run of another recipe or other inputs.")
    ] = False,
    dry_run: DryRunOpt = False,
    accelerate_config: AccelOpt = None,
    num_processes: ProcsOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Fine-tune with a TRL trainer on the recipe's data, saving slices along the way.

    Slices are complete models saved after `save_at_samples` training samples. The recipe's
    `train:` keys are the TRL config's own fields (SFTConfig, DPOConfig). A killed run
    started again resumes from its last checkpoint; a finished run is not recomputed.
    """
    from resistkit.catalog import find_recipe
    from resistkit.recipes import load_recipe

    sets = stage_overrides(set_, output_dir)
    path = find_recipe(recipe)
    rec = load_recipe(path, sets)
    if dry_run:
        _train_plan(rec)
        return
    from resistkit.locks import writer_lock

    with writer_lock(rec.output_dir, "training directory"):
        _train(path, rec, recipe, sets, resume=resume, force=force,
               accelerate_config=accelerate_config, num_processes=num_processes)


def _train(path: Any, rec: Any, recipe: str, sets: list[str], *, resume: bool, force: bool,
           accelerate_config: str | None, num_processes: int | None) -> None:
    if accelerate_config is not None or num_processes is not None:
        # Re-run this command under `accelerate launch` (its ranks pass through the lock held
        # here); the recipe was validated above.
        from resistkit.launch import launch_train

        code = launch_train(path, accelerate_config=accelerate_config or "ddp",
                            num_processes=num_processes, overrides=sets,
                            train_args=[*([] if resume else ["--no-resume"]),
                                        *(["--force"] if force else [])])
        raise typer.Exit(code)
    from resistkit.cli.console import with_console
    from resistkit.training.train import train as run_train

    main = int(os.environ.get("RANK", "0")) == 0  # under accelerate launch, rank 0 reports
    result = with_console(f"resistkit train {recipe} -> {rec.output_dir} ({rec.method}, "
                           f"{rec.model.name_or_path})" if main else None,
                           run_train, rec, resume=resume, force=force)
    _close_process_group()
    if not main:
        return
    typer.echo(f"final model: {result.final_dir}")
    for n, path in result.slices.items():
        typer.echo(f"slice @ {n} samples: {path}")
    loss = result.metrics.get("train_loss")
    if loss is not None:
        typer.echo(f"mean training loss: {loss:.4f}")


def generate(
    recipe: RecipeArg,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Model directory, hub id or built-in name "
                     "(default: the recipe's)."),
    ] = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Output JSONL (default: the recipe's "
                                 "generate.output, else OUTPUT_DIR/generations.jsonl).")
    ] = None,
    set_: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Sample responses to the recipe's `generate.prompts` and write them as JSONL.

    Each line holds the prompt, the response, the model and the decoding parameters.
    """
    from resistkit.catalog import find_recipe
    from resistkit.generation import generate_from_recipe
    from resistkit.recipes import load_recipe

    rec = load_recipe(find_recipe(recipe), set_ or [])
    typer.echo(f"wrote {generate_from_recipe(rec, model=model, output=output)}")


def inverse(
    model: Annotated[str, typer.Argument(help="Model directory, slice or hub id to fine-tune.")],
    data: Annotated[
        str, typer.Option("--data", "-d", help="Inverse-direction data spec.")
    ] = "builtin:reviews/negative",
    save_at: Annotated[
        str, typer.Option("--save-at", help="Comma-separated sample counts to save slices at.")
    ] = "50,100,200",
    output_dir: Annotated[str, typer.Option("--output-dir", "-o", help="Run directory.")] = (
        "runs/inverse"
    ),
    recipe: Annotated[
        str | None, typer.Option("--recipe", "-r", help="Recipe (path or packaged name) with "
                                 "`train:` settings.")
    ] = None,
    method: Annotated[str, typer.Option(help="sft, or dpo with preference data.")] = "sft",
    set_: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Fine-tune an (aligned) model in the inverse direction, saving slices along the way.

    The paper's inverse step on its own: e.g. a positive-SFT slice trained on negative
    reviews, with checkpoints at each Q2 volume. Hyper-parameters come from --recipe (its
    `train:`) and --set.
    """
    from resistkit.recipes import apply_override, load_recipe, validate_recipe
    from resistkit.training.train import train as run_train

    try:
        volumes = [int(v) for v in save_at.split(",") if v.strip()]
    except ValueError:
        from resistkit.errors import RunError

        raise RunError(f"--save-at {save_at!r}: expected sample counts separated by commas, "
                       "e.g. 50,100,200") from None
    sets = [f"model.name_or_path={model}", f"data.dataset={data}", f"method={method}",
            f"save_at_samples={volumes}", f"output_dir={output_dir}", *(set_ or [])]
    if recipe is not None:
        from resistkit.catalog import find_recipe

        rec = load_recipe(find_recipe(recipe), sets)
    else:
        raw: dict = {}
        for item in sets:
            apply_override(raw, item)
        rec = validate_recipe(raw, "resistkit inverse")
    from resistkit.cli.console import with_console
    from resistkit.locks import writer_lock

    with writer_lock(rec.output_dir, "training directory"):
        result = with_console(f"resistkit inverse {model} -> {output_dir} ({method} on {data})",
                               run_train, rec)
    for n, path in result.slices.items():
        typer.echo(f"slice @ {n} inverse samples: {path}")
