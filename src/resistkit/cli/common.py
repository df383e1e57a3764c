"""What every command shares: the error handler, logging, and the common options.

Every command is registered through ``App``, whose ``command()`` wraps it so that a
``ResistkitError`` (bad input the user can fix) becomes one line on stderr and exit status 2,
and ``-v`` adds the traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import sys
import traceback
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer

from resistkit.errors import ResistkitError

EXPERIMENTS, STAGES, TOOLS = "Experiments", "Stages", "Data, models and tools"

RecipeArg = Annotated[
    str,
    typer.Argument(help="A recipe: a YAML path, or a packaged name such as quickstart or "
                   "tiny/setting2 (resistkit recipes list).", show_default=False),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", "-s",
        help="Override a recipe key: KEY.PATH=VALUE, e.g. seed=7 (repeatable).",
    ),
]
OutOpt = Annotated[
    str | None, typer.Option("--output-dir", "-o", help="Run directory (overrides the recipe).")
]
SCALE_OUT = "Scale out (accelerate)"
AccelOpt = Annotated[
    str | None,
    typer.Option(
        "--accelerate-config",
        help="Train under `accelerate launch` with this config: ddp, zero2, zero3, "
        "zero3_offload, fsdp, or a YAML path.", rich_help_panel=SCALE_OUT,
    ),
]
ProcsOpt = Annotated[
    int | None,
    typer.Option(
        "--num-processes", min=1,
        help="Processes (GPUs) under accelerate (default config: ddp, default count: the "
        "config's).", rich_help_panel=SCALE_OUT,
    ),
]
ResumeOpt = Annotated[
    bool, typer.Option(help="Continue from the last checkpoint in the run directory.")
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Check every input and say what would run; run "
                       "nothing, write nothing.")
]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Log progress; show tracebacks of errors.")
]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error and exit with ``code`` (2: bad input), no traceback."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


class _OnlyResistkit(logging.Filter):
    """Without -v the console shows resistkit's own warnings; libraries' go to run.log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.startswith("resistkit")


def _console_handler() -> logging.Handler:
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, "_resistkit_console", False):
            return handler
    handler = logging.StreamHandler(sys.stderr)
    handler._resistkit_console = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    return handler


def setup_logging(verbose: bool) -> None:
    """Configure logging once per process: INFO and every library with ``-v``; otherwise
    resistkit's warnings only, and the progress bars and notices of datasets, transformers,
    the hub and DeepSpeed off (resistkit reports progress itself; a run logs all to run.log)."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    handler = _console_handler()
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    for old in [f for f in handler.filters if isinstance(f, _OnlyResistkit)]:
        handler.removeFilter(old)
    if not verbose:
        handler.addFilter(_OnlyResistkit())
        quiet_third_party()
    logging.captureWarnings(True)


class _ErrorsOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


def quiet_third_party() -> None:
    """Third-party progress bars and notices off: before those libraries are imported through
    their environment switches, after it through their own functions."""
    import os

    for key in ("HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS",
                "TRANSFORMERS_NO_ADVISORY_WARNINGS", "TQDM_DISABLE"):
        os.environ.setdefault(key, "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DATASETS_VERBOSITY", "error")
    # DeepSpeed prints to stdout through its own handler ("Setting accelerator to CPU"); a
    # filter on its logger outlives the setLevel it does on import.
    deepspeed = logging.getLogger("DeepSpeed")
    if not any(isinstance(f, _ErrorsOnly) for f in deepspeed.filters):
        deepspeed.addFilter(_ErrorsOnly())
    if "datasets" in sys.modules:
        import datasets

        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command with logging set up and user errors reported as one line (exit 2)."""

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        verbose = bool(kwargs.get("verbose", False))
        setup_logging(verbose)
        try:
            return fn(*args, **kwargs)
        except ResistkitError as err:
            if verbose:
                traceback.print_exc(file=sys.stderr)
            fail(str(err), err.exit_code)
        except OSError as err:
            # A full disk (or stdout sent to one, e.g. > /dev/full) is the user's to fix, not a
            # bug; any other OSError keeps its traceback.
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            _quiet_stdout()
            fail(f"cannot write {err.filename or 'the output'}: {err.strerror}")
        except KeyboardInterrupt:
            typer.secho("interrupted: run the same command again to resume", err=True)
            raise typer.Exit(130) from None

    return command


def _quiet_stdout() -> None:
    """Drop what stdout still buffers, so the interpreter's flush at exit does not fail again."""
    import os

    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


class App(typer.Typer):
    """A ``typer.Typer`` whose commands all go through ``handle_errors``."""

    def __init__(self, **kwargs: Any) -> None:
        from resistkit.cli.help import HelpGroup, paragraphs

        kwargs["help"] = paragraphs(kwargs.get("help"))
        kwargs.setdefault("cls", HelpGroup)
        kwargs.setdefault("no_args_is_help", True)
        kwargs.setdefault("pretty_exceptions_enable", False)
        kwargs.setdefault("add_completion", False)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        from resistkit.cli.help import HelpCommand

        kwargs.setdefault("cls", HelpCommand)
        register = super().command(*args, **kwargs)
        return lambda fn: register(handle_errors(fn))


def stage_overrides(overrides: list[str] | None, output_dir: str | None) -> list[str]:
    """``--set`` values plus ``-o`` as the ``output_dir`` override."""
    return [*(overrides or []), *([f"output_dir={output_dir}"] if output_dir else [])]
