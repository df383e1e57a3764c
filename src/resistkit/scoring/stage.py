"""The score stage as a Python function: read, score, write scores + summary."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resistkit.errors import ScoringError
from resistkit.scoring.io import default_paths, load_records, write_json, write_scores
from resistkit.scoring.registry import ScoringContext, get_scorer, score_records
from resistkit.scoring.summary import summarize


@dataclass
class ScoreRun:
    scores_path: Path
    summary_path: Path
    summary: dict[str, Any]


def output_paths(records: Any, source: str | Path, output: str | Path | None,
                 summary_output: str | Path | None) -> tuple[Path, Path]:
    """Where scores and summary go: ``-o`` and the summary beside it, else beside the input.

    Refused before any scoring: an output that is the input file (it would be overwritten), one
    path for both outputs, and an output that is a directory.
    """
    default_scores, default_summary = default_paths(records, source)
    scores = Path(output) if output is not None else default_scores
    if summary_output is not None:
        summary = Path(summary_output)
    elif output is not None:
        summary = scores.with_name(scores.name.removesuffix(".jsonl").removesuffix(".scores")
                                   + ".summary.json")
    else:
        summary = default_summary
    for flag, path in (("--output", scores), ("--summary", summary)):
        if path.is_dir():
            raise ScoringError(f"{flag} {path} is a directory; give a file name")
        if records.path is not None and path.resolve() == records.path.resolve():
            raise ScoringError(f"{flag} {path} is the input file; refusing to overwrite it "
                               "(give another output path)")
    if scores.resolve() == summary.resolve():
        raise ScoringError(f"--output and --summary are both {scores}; give two files")
    return scores, summary


def run_score(
    source: str | Path,
    scorers: Sequence[str],
    *,
    output: str | Path | None = None,
    summary_output: str | Path | None = None,
    split: str = "train",
    num_samples: int | None = None,
    seed: int = 42,
    response_column: str | None = None,
    prompt_column: str | None = None,
    progress: bool = False,
    render_prompt: Callable[[str], str] | None = None,
    **options: Any,
) -> ScoreRun:
    """Score a generations JSONL or dataset spec with ``scorers``; write
    ``<stem>.scores.jsonl`` (input fields + score columns, NaN as null) and ``<stem>.summary.json``.

    ``render_prompt`` turns each record's prompt into the text the model saw in training (a
    chat template, say) before scoring; the written rows keep the prompt as stored.
    """
    from resistkit import __version__

    specs = [get_scorer(name) for name in scorers]  # unknown names fail before any reading
    records = load_records(
        source,
        split=split,
        num_samples=num_samples,
        seed=seed,
        response_column=response_column,
        prompt_column=prompt_column,
    )
    scores_path, summary_path = output_paths(records, source, output, summary_output)
    ctx = ScoringContext(source=records.source, progress=progress)
    batch = records.for_scoring()
    if render_prompt is not None and "prompt" in batch:
        batch["prompt"] = [render_prompt(p) if p else p for p in batch["prompt"]]
    columns = score_records(batch, list(scorers), context=ctx, **options)
    clashes = sorted(set(columns) & {k for row in records.rows for k in row})
    write_scores(scores_path, records.rows, columns)

    descriptions = {col: text for spec in specs for col, text in spec.columns.items()}
    owner = {col: spec.name for spec in specs for col in spec.columns}
    auxiliary = {col for spec in specs for col in spec.auxiliary}
    summary = summarize(
        columns,
        ctx.info,
        descriptions,
        owner,
        auxiliary,
        input=str(source),
        scores_file=str(scores_path),
        n_records=len(records.rows),
        response_column=records.response_column,
        prompt_column=records.prompt_column,
        models_in_input=records.model_ids(),
        overwritten_input_fields=clashes,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        resistkit_version=__version__,
    )
    write_json(summary_path, summary)
    return ScoreRun(scores_path, summary_path, summary)
