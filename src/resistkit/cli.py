"""The `resistkit` command line. Thin: each command parses options and calls one function.

Heavy libraries (torch, transformers, trl) are imported inside the commands, so `--help`
stays fast.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from resistkit.commands import data as data_cmd
from resistkit.commands import fail as _fail
from resistkit.commands import judge as judge_cmd
from resistkit.commands.pretrain import pretrain as pretrain_cmd
from resistkit.commands.score import score as score_cmd

app = typer.Typer(
    name="resistkit",
    help="Measure how language models resist alignment (arXiv 2406.06144): train slices, "
    "generate, fine-tune in the inverse direction, score and report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
EXPERIMENTS, STAGES, TOOLS = "Experiments", "Stages", "Data, models and tools"

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
AccelOpt = Annotated[
    str | None,
    typer.Option(
        "--accelerate-config",
        help="Train under `accelerate launch` with this config: ddp, zero2, zero3, "
        "zero3_offload, fsdp, or a YAML path.",
    ),
]
ProcsOpt = Annotated[
    int | None,
    typer.Option(
        "--num-processes", min=1,
        help="Processes (GPUs) under accelerate (default config: ddp, default count: the "
        "config's).",
    ),
]


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


@app.command(rich_help_panel=EXPERIMENTS)
def run(
    recipe: RecipeArg,
    set_: SetOpt = None,
    output_dir: OutOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and training volumes; run nothing.")
    ] = False,
    accelerate_config: AccelOpt = None,
    num_processes: ProcsOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run an experiment (Setting I, II or III): train, slices, generate, inverse, score, report.

    Finished stages are skipped; an interrupted stage resumes from its last checkpoint; a
    changed setting re-runs only the stages that depend on it. With --accelerate-config every
    training stage runs under `accelerate launch` (multi-GPU); generation and scoring do not.
    """
    _setup_logging(verbose)
    from resistkit.pipeline import load_experiment, run_experiment
    from resistkit.recipes import RecipeError

    sets = list(set_ or [])
    if output_dir:
        sets.append(f"output_dir={output_dir}")
    if accelerate_config is not None:
        sets.append(f"launch.accelerate_config={accelerate_config}")
    if num_processes is not None:
        sets.append(f"launch.num_processes={num_processes}")  # config: the recipe's, or ddp
    try:
        exp = load_experiment(str(recipe), sets)
    except RecipeError as err:
        _fail(str(err))
    from rich.console import Console

    console = Console(stderr=True)

    def announce(stage, status: str) -> None:  # noqa: ANN001
        mark = {"done": "[green]done[/]", "partial": "[yellow]resume[/]",
                "stale": "[yellow]rerun[/]"}.get(status, "[cyan]run[/]")
        console.print(f"{mark:>8}  {stage.kind:<9} {stage.name}")

    from resistkit.data import DataSpecError

    try:
        summary = run_experiment(exp, dry_run=dry_run, on_stage=announce)
    except DataSpecError as err:
        _fail(str(err))
    if dry_run:
        _print_plan(summary)
        return
    typer.echo(f"report: {summary['report']}")


def _print_plan(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"plan for {summary['run_dir']}")
    for col in ("stage", "kind", "status", "model", "train samples"):
        table.add_column(col, overflow="fold")
    for row in summary["stages"]:
        table.add_row(row["stage"], row["kind"], row["status"], row["model"],
                      str(row["train_samples"] or ""))
    console = Console(width=max(Console().width, 140))
    console.print(table)
    total = sum(r["train_samples"] for r in summary["stages"])
    console.print(f"training samples in this plan: {total}")
    for key in ("nested", "nested_reason", "train_samples_nested", "train_samples_naive"):
        if key in summary:
            console.print(f"{key}: {summary[key]}")
    for label, info in summary.get("models", {}).items():
        console.print(f"{label}: nested={info['nested']} "
                      f"({info['train_samples_nested']} vs naive {info['train_samples_naive']})")


@app.command(rich_help_panel=EXPERIMENTS)
def report(
    run_dir: Annotated[Path, typer.Argument(help="A `resistkit run` directory.")],
) -> None:
    """Regenerate the Markdown report, figures and CSV from a run directory alone."""
    from resistkit.report import write_report

    if not (run_dir / "experiment.yaml").exists():
        _fail(f"{run_dir} is not a resistkit run directory (no experiment.yaml)")
    typer.echo(f"wrote {write_report(run_dir)}")


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


@app.command(rich_help_panel=STAGES)
def train(
    recipe: RecipeArg,
    set_: SetOpt = None,
    output_dir: OutOpt = None,
    resume: Annotated[
        bool, typer.Option(help="Continue from the last checkpoint in the run directory.")
    ] = True,
    accelerate_config: AccelOpt = None,
    num_processes: ProcsOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """SFT or DPO (TRL) on the recipe's data, saving slices at `save_at_samples`.

    The recipe's `train:` keys are TRL's SFTConfig / DPOConfig fields. A killed run started
    again resumes from its last checkpoint; a finished run is not recomputed.
    """
    _setup_logging(verbose)
    rec = _load(recipe, set_, output_dir)
    if accelerate_config is not None or num_processes is not None:
        # Re-run this command under `accelerate launch`; the recipe was validated above.
        from resistkit.launch import launch_train

        sets = [*(set_ or []), *([f"output_dir={output_dir}"] if output_dir else [])]
        try:
            code = launch_train(recipe, accelerate_config=accelerate_config or "ddp",
                                num_processes=num_processes, overrides=sets,
                                train_args=[] if resume else ["--no-resume"])
        except ValueError as err:
            _fail(str(err))
        raise typer.Exit(code)
    from resistkit.data import DataSpecError
    from resistkit.train import train as run_train

    try:
        result = run_train(rec, resume=resume)
    except DataSpecError as err:
        _fail(str(err))
    _close_process_group()
    if int(os.environ.get("RANK", "0")) != 0:
        return  # under accelerate launch, rank 0 alone reports
    typer.echo(f"final model: {result.final_dir}")
    for n, path in result.slices.items():
        typer.echo(f"slice @ {n} samples: {path}")
    loss = result.metrics.get("train_loss")
    if loss is not None:
        typer.echo(f"mean training loss: {loss:.4f}")


@app.command(rich_help_panel=STAGES)
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


@app.command(rich_help_panel=STAGES)
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
        Path | None, typer.Option("--recipe", "-r", help="Recipe with `train:` settings.")
    ] = None,
    method: Annotated[str, typer.Option(help="sft, or dpo with preference data.")] = "sft",
    set_: SetOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Fine-tune an (aligned) model in the inverse direction, saving slices along the way.

    The paper's inverse step on its own: e.g. a positive-SFT slice trained on negative
    reviews, with checkpoints at each Q2 volume. Hyper-parameters come from --recipe (its
    `train:`) and --set.
    """
    _setup_logging(verbose)
    from resistkit.recipes import RecipeError, load_recipe, validate_recipe

    volumes = [int(v) for v in save_at.split(",") if v.strip()]
    sets = [f"model.name_or_path={model}", f"data.dataset={data}", f"method={method}",
            f"save_at_samples={volumes}", f"output_dir={output_dir}", *(set_ or [])]
    try:
        if recipe is not None:
            rec = load_recipe(recipe, sets)
        else:
            from resistkit.recipes import apply_override

            raw: dict = {}
            for item in sets:
                apply_override(raw, item)
            rec = validate_recipe(raw, "resistkit inverse")
    except RecipeError as err:
        _fail(str(err))
    from resistkit.data import DataSpecError
    from resistkit.train import train as run_train

    try:
        result = run_train(rec)
    except DataSpecError as err:
        _fail(str(err))
    for n, path in result.slices.items():
        typer.echo(f"slice @ {n} inverse samples: {path}")


@app.command(rich_help_panel=TOOLS)
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


app.add_typer(data_cmd.app, name="data", help="Build, list and inspect the built-in datasets.",
              rich_help_panel=TOOLS)
app.add_typer(judge_cmd.app, name="judge", help="Build and evaluate the offline sentiment judge.",
              rich_help_panel=TOOLS)
app.command(
    "score", help="Score generations or a dataset with one or more named scorers.",
    rich_help_panel=STAGES,
)(score_cmd)
app.command(
    "pretrain",
    help="Pre-train a BPE tokenizer and a tiny Llama from scratch; complete checkpoints at "
    "token counts.",
    rich_help_panel=TOOLS,
)(pretrain_cmd)


def main() -> None:  # pragma: no cover - console entry for `python -m resistkit`
    app(prog_name="resistkit")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
