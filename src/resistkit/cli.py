"""The `resistkit` command line. Thin: each command parses options and calls one function.

Heavy libraries (torch, transformers, trl) are imported inside the commands, so `--help`
stays fast.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from resistkit.commands import data as data_cmd
from resistkit.commands.score import score as score_cmd

app = typer.Typer(
    name="resistkit",
    help="Measure how language models resist alignment (arXiv 2406.06144): train slices, "
    "generate, fine-tune in the inverse direction, score and report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_cmd.app, name="data", help="Build, list and inspect the built-in datasets.")
app.command("score", help="Score generations or a dataset with one or more named scorers.")(
    score_cmd
)

RecipeArg = Annotated[Path, typer.Argument(help="Recipe YAML file.", show_default=False)]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", "-s",
        help="Override a recipe key, e.g. --set train.learning_rate=2e-5 (repeatable).",
    ),
]
OutOpt = Annotated[
    str | None, typer.Option("--output-dir", "-o", help="Run directory (overrides the recipe).")
]


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _load(recipe: Path, overrides: list[str] | None, output_dir: str | None):  # noqa: ANN202
    from resistkit.recipes import RecipeError, load_recipe

    sets = list(overrides or [])
    if output_dir:
        sets.append(f"output_dir={output_dir}")
    try:
        return load_recipe(recipe, sets)
    except RecipeError as err:
        _fail(str(err))


@app.command()
def train(
    recipe: RecipeArg,
    set_: SetOpt = None,
    output_dir: OutOpt = None,
    resume: Annotated[
        bool, typer.Option(help="Continue from the last checkpoint in the run directory.")
    ] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """SFT or DPO (TRL) on the recipe's data, saving slices at `save_at_samples`.

    The recipe's `train:` keys are TRL's SFTConfig / DPOConfig fields. A killed run started
    again resumes from its last checkpoint; a finished run is not recomputed.
    """
    _setup_logging(verbose)
    rec = _load(recipe, set_, output_dir)
    from resistkit.data import DataSpecError
    from resistkit.train import train as run_train

    try:
        result = run_train(rec, resume=resume)
    except DataSpecError as err:
        _fail(str(err))
    typer.echo(f"final model: {result.final_dir}")
    for n, path in result.slices.items():
        typer.echo(f"slice @ {n} samples: {path}")
    loss = result.metrics.get("train_loss")
    if loss is not None:
        typer.echo(f"mean training loss: {loss:.4f}")


@app.command()
def generate(
    recipe: RecipeArg,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Model directory or hub id (default: the recipe's)."),
    ] = None,
    output: Annotated[
        str | None, typer.Option("--output", help="Output JSONL (default: in the run dir).")
    ] = None,
    set_: SetOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Sample responses to the recipe's `generate.prompts` and write them as JSONL.

    Each line holds the prompt, the response, the model and the decoding parameters.
    """
    _setup_logging(verbose)
    rec = _load(recipe, set_, None)
    from resistkit.data import DataSpecError
    from resistkit.generate import generate_from_recipe

    try:
        path = generate_from_recipe(rec, model=model, output=output)
    except (DataSpecError, ValueError) as err:
        _fail(str(err))
    typer.echo(f"wrote {path}")


@app.command()
def env() -> None:
    """Print the versions and devices that matter for a bug report."""
    from resistkit.runinfo import environment

    info = environment()
    typer.echo(f"python        {info['python']}")
    typer.echo(f"platform      {info['platform']}")
    for name, version in info["packages"].items():
        typer.echo(f"{name:<13} {version or '-'}")
    for key, value in info["device"].items():
        typer.echo(f"{key:<13} {value}")


def main() -> None:  # pragma: no cover - console entry for `python -m resistkit`
    app(prog_name="resistkit")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
