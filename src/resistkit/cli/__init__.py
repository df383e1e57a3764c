"""The `resistkit` command line: every command on one screen, grouped as `--help` shows them.

Thin: each command parses options and calls one library function (``cli.experiments``,
``cli.stages``, ``cli.score``, ``cli.tools``, and the ``data`` / ``judge`` groups). Heavy
libraries (torch, transformers, trl) are imported inside the commands, so `--help` stays fast;
errors a user can fix are one line and exit status 2 (``cli.common``).
"""

from __future__ import annotations

import sys

from resistkit.threads import settle

settle()  # before torch (imported inside the commands) reads OMP_* variables

from resistkit.cli import (  # noqa: E402
    data,
    experiments,
    judge,
    models,
    recipes,
    score,
    stages,
    tools,
)
from resistkit.cli.common import EXPERIMENTS, STAGES, TOOLS, App  # noqa: E402

app = App(
    name="resistkit",
    help="Measure how language models resist alignment (arXiv 2406.06144): train slices, "
    "generate, fine-tune in the inverse direction, score and report.",
)

app.command(rich_help_panel=EXPERIMENTS)(experiments.run)
app.command(rich_help_panel=EXPERIMENTS)(experiments.report)
app.command(rich_help_panel=EXPERIMENTS)(experiments.status)
app.command(rich_help_panel=STAGES)(stages.train)
app.command(rich_help_panel=STAGES)(stages.generate)
app.command(rich_help_panel=STAGES)(stages.inverse)
app.command("score", help="Score generations or a dataset with one or more named scorers.",
            rich_help_panel=STAGES)(score.score)
app.command(
    "pretrain",
    help="Pre-train a BPE tokenizer and a tiny Llama from scratch; complete checkpoints at "
    "token counts.",
    rich_help_panel=TOOLS,
)(tools.pretrain)
app.command(rich_help_panel=TOOLS)(tools.env)
app.add_typer(recipes.app, name="recipes", help="List, show and copy the packaged recipes.",
              rich_help_panel=EXPERIMENTS)
app.add_typer(models.app, name="models", help="List the built-in models; download SmolLM2.",
              rich_help_panel=TOOLS)
app.add_typer(data.app, name="data", help="Build, list and inspect the built-in datasets.",
              rich_help_panel=TOOLS)
app.add_typer(judge.app, name="judge", help="Build and evaluate the offline judges.",
              rich_help_panel=TOOLS)


def main() -> None:  # pragma: no cover - console entry for `python -m resistkit`
    app(prog_name="resistkit")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
