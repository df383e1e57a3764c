"""`resistkit score`: run named scorers over generations or a dataset.

Only typer is imported at module level; the scoring package (and through it torch and
transformers, on first use of a model) is imported inside the command so ``--help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from resistkit.cli.common import VerboseOpt, fail

_SCORERS = (
    "sentiment-lexicon, sentiment-classifier, reward-model, cost-model, refusal, compression, "
    "kl, llama-guard, harmbench-cls, strongreject"
)


_IN, _MODELS, _TEXT, _RUN = "Input", "Scorers and their models", "Text layout", "Output and run"


def score(
    input: Annotated[
        str,
        typer.Argument(
            help="Generations JSONL (lines with prompt/response, as `resistkit generate` "
            "writes) or a dataset spec such as builtin:reviews/positive.",
            show_default=False,
        ),
    ],
    scorer: Annotated[
        list[str],
        typer.Option("--scorer", "-s", help=f"Scorer to run (repeatable): {_SCORERS}.",
                     show_default=False, rich_help_panel=_MODELS),
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Scores JSONL (default: <stem>.scores.jsonl "
                     "beside the input).", rich_help_panel=_RUN),
    ] = None,
    summary: Annotated[
        Path | None,
        typer.Option(help="Summary JSON (default: <stem>.summary.json beside the scores).",
                     rich_help_panel=_RUN),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Causal LM for compression and kl: a path, hub "
                     "id or built-in name.", rich_help_panel=_MODELS),
    ] = None,
    ref_model: Annotated[
        str | None, typer.Option(help="Reference causal LM for kl (same tokenizer as "
                                 "--model).", rich_help_panel=_MODELS)
    ] = None,
    classifier: Annotated[
        str | None,
        typer.Option(help="Sequence classifier for sentiment-classifier, e.g. "
                     "builtin:sentiment-judge.", rich_help_panel=_MODELS),
    ] = None,
    positive_label: Annotated[
        str | None,
        typer.Option(help="Classifier output meaning positive: index or label name "
                     "(default: positive, pos or LABEL_1).", rich_help_panel=_MODELS),
    ] = None,
    reward_model: Annotated[
        str | None,
        typer.Option(help="Reward model, HF num_labels=1 or safe-rlhf (default: PKU-Alignment's "
                     "beaver-7b-v1.0-reward); ID@REVISION pins a revision.",
                     rich_help_panel=_MODELS),
    ] = None,
    cost_model: Annotated[
        str | None,
        typer.Option(help="Cost model, higher = more harmful (default: PKU-Alignment's "
                     "beaver-7b-v1.0-cost).", rich_help_panel=_MODELS),
    ] = None,
    judge_model: Annotated[
        list[str] | None,
        typer.Option(help="Model of a generative judge (llama-guard, harmbench-cls, "
                     "strongreject): a path or hub id (default: the preset's); with several "
                     "judges selected, repeat as SCORER=MODEL.", show_default=False,
                     rich_help_panel=_MODELS),
    ] = None,
    judge_template: Annotated[
        list[str] | None,
        typer.Option(help="Prompt of a generative judge (default auto: the judge's own; "
                     "llama-guard-3 = the llama-cookbook prompt, llama2 / mistral = "
                     "HarmBench's two); SCORER=NAME with several judges.", show_default=False,
                     rich_help_panel=_TEXT),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(help="Reward/cost text layout: auto, chat, plain or safe-rlhf.",
                     rich_help_panel=_TEXT),
    ] = None,
    append_eos: Annotated[
        bool | None,
        typer.Option("--append-eos/--no-append-eos", help="Append EOS before reward/cost "
                     "scoring (default: only for safe-rlhf).", show_default=False,
                     rich_help_panel=_TEXT),
    ] = None,
    prompt_special_tokens: Annotated[
        bool | None,
        typer.Option("--special-tokens/--no-special-tokens",
                     help="compression/kl: tokenise prompts with BOS etc. (default: yes).",
                     show_default=False, rich_help_panel=_TEXT),
    ] = None,
    with_prompt: Annotated[
        bool,
        typer.Option(help="Lexicon/classifier judge prompt + response, not the response.",
                     rich_help_panel=_TEXT),
    ] = False,
    max_length: Annotated[
        int | None,
        typer.Option(min=1, help="Truncate inputs to this many tokens (default: the model's).",
                     rich_help_panel=_TEXT),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Records per forward pass (default: per scorer).",
                                 rich_help_panel=_RUN)
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:1, ...",
                                               rich_help_panel=_RUN)] = None,
    dtype: Annotated[
        str | None, typer.Option(help="auto (fp32 on CPU, bf16 on GPU), float32, bfloat16.",
                                 rich_help_panel=_RUN)
    ] = None,
    response_column: Annotated[
        str | None,
        typer.Option(help="Column to score (default: response, completion or text).",
                     rich_help_panel=_IN),
    ] = None,
    prompt_column: Annotated[
        str | None, typer.Option(help="Prompt column (default: prompt, when present).",
                                 rich_help_panel=_IN)
    ] = None,
    split: Annotated[str, typer.Option(help="Dataset split, for dataset specs.",
                                       rich_help_panel=_IN)] = "train",
    num_samples: Annotated[
        int | None,
        typer.Option(min=1, help="Score only this many records (a JSONL file: its first "
                     "lines).", rich_help_panel=_IN),
    ] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed, for dataset specs.",
                                      rich_help_panel=_IN)] = 42,
    progress: Annotated[bool, typer.Option(help="Show progress bars.",
                                           rich_help_panel=_RUN)] = True,
    verbose: VerboseOpt = False,
) -> None:
    """Score generations or a dataset with one or more named scorers.

    Writes the input's records with the score columns added (NaN written as null: a record
    that could not be scored) and a summary JSON with n, mean, std, 95 % t interval and NaN
    count per column, the scorer settings and the model ids; prints the summary as a table.
    """
    from rich.console import Console

    from resistkit.scoring import render_table
    from resistkit.scoring.stage import run_score

    if device is not None:  # a device this machine lacks is refused before any input is read
        from resistkit.models.load import resolve_device

        resolve_device(device, option="--device")
    given: dict[str, Any] = {
        "model": model,
        "ref_model": ref_model,
        "classifier": classifier,
        "positive_label": positive_label,
        "reward_model": reward_model,
        "cost_model": cost_model,
        "template": template,
        "append_eos": append_eos,
        "prompt_special_tokens": prompt_special_tokens,
        "with_prompt": with_prompt or None,
        "batch_size": batch_size,
        "max_length": max_length,
        "device": device,
        "dtype": dtype,
    }
    # Only options the user set are passed, so each scorer keeps its own defaults and an
    # option that no selected scorer uses is reported instead of silently ignored.
    options = {k: v for k, v in given.items() if v is not None}
    options.update(judge_options(scorer, judge_model or [], "model", "--judge-model"))
    options.update(judge_options(scorer, judge_template or [], "template", "--judge-template"))
    run = run_score(
        input, scorer, output=output, summary_output=summary, split=split,
        num_samples=num_samples, seed=seed, response_column=response_column,
        prompt_column=prompt_column, progress=progress, **options,
    )

    console = Console()
    console.print(render_table(run.summary, title=f"{run.summary['n_records']} records: {input}"))
    for name, details in run.summary["scorers"].items():
        notes = []
        skipped = sum(details.get("not_scored", {}).values())
        if skipped:
            notes.append(f"not scored: {details['not_scored']}")
        truncated = details.get("counts", {}).get("truncated")
        if truncated:
            notes.append(f"truncated: {truncated}")
        if "corpus" in details:
            corpus = ", ".join(
                f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                for k, v in details["corpus"].items()
                if k != "weighting" and v is not None
            )
            notes.append(f"corpus, token-weighted: {corpus}")
        if notes:
            console.print(f"[bold]{name}[/]: " + "; ".join(notes))
    console.print(f"scores:  {run.scores_path}\nsummary: {run.summary_path}")


def judge_options(scorers: list[str], values: list[str], kind: str, flag: str) -> dict[str, str]:
    """``--judge-model`` / ``--judge-template`` as the options of the selected judge scorers
    (``llama_guard_model`` ...): a bare value goes to the one judge selected, ``SCORER=VALUE``
    to that judge."""
    from resistkit.scoring.guard import PRESETS

    judges = [s for s in scorers if s in PRESETS]
    out: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if sep and name in PRESETS:
            target, value = name, rest
        elif len(judges) == 1:
            target = judges[0]
        else:
            fail(f"{flag} {value}: select exactly one judge ({', '.join(PRESETS)}) with -s, "
                 f"or write {flag} SCORER=VALUE" + (f" (selected: {', '.join(judges)})"
                                                    if judges else ""))
        if target not in judges:
            fail(f"{flag} {target}=...: scorer {target!r} is not selected; add -s {target}")
        out[f"{PRESETS[target].column}_{kind}"] = value
    return out
