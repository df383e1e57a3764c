"""Adapters from the paper's hub data sets to TRL's standard column formats.

Spec: ``hf:OWNER/NAME[:CONFIG][#SELECTOR]``. Known data sets and their selectors (the first one
listed is the default):

=============================  ===========================================================
``stanfordnlp/imdb``           ``#all`` (text, prompt = first 4 words, completion = the rest,
                               label), ``#positive`` (label 1), ``#negative`` (label 0)
``tatsu-lab/alpaca``           ``#all``: prompt = instruction (+ blank line + input),
                               completion = output
``PKU-Alignment/PKU-SafeRLHF`` ``#preference`` (chosen = safer response), ``#better``
                               (chosen = better response), ``#safe`` / ``#unsafe``
                               (prompt/completion, both responses exploded by their flag)
``PKU-Alignment/BeaverTails``  ``#all``, ``#safe``, ``#unsafe`` (prompt/completion, is_safe)
``truthfulqa/truthful_qa``     config ``generation``; ``#all`` (completion = best answer),
                               ``#preference`` (chosen = best answer, rejected = first
                               incorrect answer)
``walledai/AdvBench``          ``#all``: 520 harmful behaviours (prompt, target)
``walledai/HarmBench``         config ``standard``; ``#all``: 200 standard behaviours
                               (prompt, category)
``walledai/StrongREJECT``      ``#all``: 313 forbidden prompts (prompt, category, source)
``walledai/XSTest``            ``#safe`` (250 prompts a model should answer: over-refusal),
                               ``#unsafe`` (200 contrast prompts), ``#all`` (with label)
``PKU-Alignment/BeaverTails-   ``#all``: 700 harmful prompts in 14 categories (prompt,
Evaluation``                   category, category_id)
=============================  ===========================================================

The five safety prompt sets (AdvBench to BeaverTails-Evaluation) are evaluation sets with one
hub split: ``train``, ``heldout`` and ``test`` all read it (see docs/data.md).

Splits: ``train`` and ``heldout`` map to the hub's train and test splits (BeaverTails:
``30k_train`` / ``30k_test``). Alpaca and TruthfulQA publish a single split, so ``heldout`` is a
fixed hash-chosen share of their prompts (2 % and 20 %) and ``train`` the rest. Any other split
name is passed to the hub as is. Other hub ids load without an adapter (no selector).

``data_files=PATH`` (JSON Lines, JSON, CSV or Parquet with the hub's columns) replaces the hub
download; the same adapter, selector and held-out carving run on it, so the adapters are
testable offline. The file stands in for whichever hub split was asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resistkit.data import prompt_sets as ps
from resistkit.data._io import stable_unit
from resistkit.errors import DataSpecError

if TYPE_CHECKING:
    from datasets import Dataset

PROMPT_WORDS = 4  # same split as the built-in review snippets
MIN_WORDS = 6

Batch = dict[str, list[Any]]


# --- row mappers (module-level so datasets can fingerprint and cache them) ---------------------


def _clean_imdb(text: str) -> str:
    # IMDb reviews carry HTML line breaks; a model would learn to emit them.
    return " ".join(text.replace("<br />", " ").replace("<br/>", " ").replace("<br>", " ").split())


def _imdb_rows(batch: Batch) -> Batch:
    out: Batch = {"text": [], "prompt": [], "completion": [], "label": []}
    for text, label in zip(batch["text"], batch["label"], strict=True):
        text = _clean_imdb(text)
        words = text.split(" ")
        if len(words) < MIN_WORDS:
            continue
        prompt = " ".join(words[:PROMPT_WORDS])
        out["text"].append(text)
        out["prompt"].append(prompt)
        out["completion"].append(text[len(prompt):])
        out["label"].append(int(label))
    return out


def _alpaca_rows(batch: Batch) -> Batch:
    out: Batch = {"prompt": [], "completion": []}
    rows = zip(batch["instruction"], batch["input"], batch["output"], strict=True)
    for instruction, extra, output in rows:
        if not output or not output.strip():
            continue
        prompt = instruction.strip()
        if extra and extra.strip():
            prompt += "\n\n" + extra.strip()
        out["prompt"].append(prompt)
        out["completion"].append(output.strip())
    return out


def _saferlhf_preference(batch: Batch, by: str) -> Batch:
    out: Batch = {"prompt": [], "chosen": [], "rejected": [], "chosen_is_safe": [],
                  "rejected_is_safe": []}
    rows = zip(batch["prompt"], batch["response_0"], batch["response_1"],
               batch["is_response_0_safe"], batch["is_response_1_safe"], batch[by], strict=True)
    for prompt, r0, r1, safe0, safe1, pick in rows:
        if pick not in (0, 1) or r0 == r1:
            continue
        responses, flags = (r0, r1), (bool(safe0), bool(safe1))
        out["prompt"].append(prompt)
        out["chosen"].append(responses[pick])
        out["rejected"].append(responses[1 - pick])
        out["chosen_is_safe"].append(flags[pick])
        out["rejected_is_safe"].append(flags[1 - pick])
    return out


def _saferlhf_explode(batch: Batch, want_safe: bool) -> Batch:
    out: Batch = {"prompt": [], "completion": [], "is_safe": []}
    rows = zip(batch["prompt"], batch["response_0"], batch["response_1"],
               batch["is_response_0_safe"], batch["is_response_1_safe"], strict=True)
    for prompt, r0, r1, safe0, safe1 in rows:
        for response, safe in ((r0, safe0), (r1, safe1)):
            if bool(safe) == want_safe and response:
                out["prompt"].append(prompt)
                out["completion"].append(response)
                out["is_safe"].append(bool(safe))
    return out


def _beavertails_rows(batch: Batch, want_safe: bool | None) -> Batch:
    out: Batch = {"prompt": [], "completion": [], "is_safe": []}
    rows = zip(batch["prompt"], batch["response"], batch["is_safe"], strict=True)
    for prompt, response, safe in rows:
        if want_safe is not None and bool(safe) != want_safe:
            continue
        out["prompt"].append(prompt)
        out["completion"].append(response)
        out["is_safe"].append(bool(safe))
    return out


def _truthfulqa_rows(batch: Batch) -> Batch:
    out: Batch = {"prompt": [], "completion": [], "category": []}
    for question, best, category in zip(batch["question"], batch["best_answer"],
                                        batch["category"], strict=True):
        out["prompt"].append(question)
        out["completion"].append(best)
        out["category"].append(category)
    return out


def _truthfulqa_preference(batch: Batch) -> Batch:
    out: Batch = {"prompt": [], "chosen": [], "rejected": [], "category": []}
    rows = zip(batch["question"], batch["best_answer"], batch["incorrect_answers"],
               batch["category"], strict=True)
    for question, best, incorrect, category in rows:
        if not incorrect:
            continue
        out["prompt"].append(question)
        out["chosen"].append(best)
        out["rejected"].append(incorrect[0])
        out["category"].append(category)
    return out


def _label_is(label: int, value: int) -> bool:
    return int(label) == value


def _in_heldout(key: str, namespace: str, fraction: float, heldout: bool) -> bool:
    return (stable_unit(f"{namespace}:{key}") < fraction) == heldout


# --- adapters ----------------------------------------------------------------------------------


Selector = Callable[["Dataset"], "Dataset"]


def _mapped(fn: Callable[..., Batch], **kwargs: Any) -> Selector:
    def run(ds: Dataset) -> Dataset:
        return ds.map(fn, batched=True, remove_columns=ds.column_names, fn_kwargs=kwargs or None)

    return run


def _imdb_label(value: int) -> Selector:
    def run(ds: Dataset) -> Dataset:
        kept = ds.filter(_label_is, input_columns="label", fn_kwargs={"value": value})
        return _mapped(_imdb_rows)(kept)

    return run


@dataclass(frozen=True)
class Adapter:
    """How one hub data set maps onto resistkit's columns and split names."""

    repo_id: str
    selectors: dict[str, Selector]
    default: str
    config: str | None = None
    splits: dict[str, str] = field(default_factory=lambda: {"train": "train", "heldout": "test"})
    carve_from: str | None = None  # the hub's only split, when heldout is carved out of it
    carve_fraction: float = 0.0
    carve_key: str = "prompt"  # raw column whose hash decides the carve
    description: str = ""  # for `resistkit data list`
    licence: str = ""


def _one_split(name: str) -> dict[str, str]:
    """An evaluation set published as one split: every split name reads it."""
    return {"train": name, "heldout": name, "test": name}


ADAPTERS: dict[str, Adapter] = {a.repo_id.lower(): a for a in (
    Adapter(
        "stanfordnlp/imdb",
        {"all": _mapped(_imdb_rows), "positive": _imdb_label(1), "negative": _imdb_label(0)},
        "all",
    ),
    Adapter(
        "tatsu-lab/alpaca", {"all": _mapped(_alpaca_rows)}, "all",
        carve_from="train", carve_fraction=0.02, carve_key="instruction",
    ),
    Adapter(
        "PKU-Alignment/PKU-SafeRLHF",
        {
            "preference": _mapped(_saferlhf_preference, by="safer_response_id"),
            "better": _mapped(_saferlhf_preference, by="better_response_id"),
            "safe": _mapped(_saferlhf_explode, want_safe=True),
            "unsafe": _mapped(_saferlhf_explode, want_safe=False),
        },
        "preference",
    ),
    Adapter(
        "PKU-Alignment/BeaverTails",
        {
            "all": _mapped(_beavertails_rows, want_safe=None),
            "safe": _mapped(_beavertails_rows, want_safe=True),
            "unsafe": _mapped(_beavertails_rows, want_safe=False),
        },
        "all",
        splits={"train": "30k_train", "heldout": "30k_test", "test": "30k_test"},
    ),
    Adapter(
        "truthfulqa/truthful_qa",
        {"all": _mapped(_truthfulqa_rows), "preference": _mapped(_truthfulqa_preference)},
        "all", config="generation",
        carve_from="validation", carve_fraction=0.2, carve_key="question",
    ),
    Adapter(
        "walledai/AdvBench", {"all": _mapped(ps.advbench_rows)}, "all",
        splits=_one_split("train"), licence="MIT (llm-attacks)",
        description="AdvBench harmful behaviours (Zou et al. 2023), 520 prompts",
    ),
    Adapter(
        "walledai/HarmBench", {"all": _mapped(ps.harmbench_rows, functional="standard")},
        "all", config="standard", splits=_one_split("train"), licence="MIT (HarmBench)",
        description="HarmBench standard behaviours (Mazeika et al. 2024), 200 prompts",
    ),
    Adapter(
        "walledai/StrongREJECT", {"all": _mapped(ps.strongreject_rows)}, "all",
        splits=_one_split("train"), licence="MIT (StrongREJECT)",
        description="StrongREJECT forbidden prompts (Souly et al. 2024), 313 prompts",
    ),
    Adapter(
        "walledai/XSTest",
        {"safe": _mapped(ps.xstest_rows, label="safe"),
         "unsafe": _mapped(ps.xstest_rows, label="unsafe"),
         "all": _mapped(ps.xstest_rows, label=None)},
        "safe", splits=_one_split("test"), licence="CC BY 4.0",
        description="XSTest (Röttger et al. 2024): 250 safe prompts (over-refusal), "
                    "200 unsafe contrast prompts",
    ),
    Adapter(
        "PKU-Alignment/BeaverTails-Evaluation", {"all": _mapped(ps.beavertails_eval_rows)},
        "all", splits=_one_split("test"), licence="CC BY-NC 4.0",
        description="BeaverTails-Evaluation (Ji et al. 2023), 700 prompts in 14 categories",
    ),
)}
# Older canonical ids that still resolve on the hub.
ALIASES = {"imdb": "stanfordnlp/imdb", "truthful_qa": "truthfulqa/truthful_qa"}


def list_adapters() -> list[dict[str, Any]]:
    """The hub data sets with adapters: id, selectors (default first), config, licence."""
    return [{"name": f"hf:{a.repo_id}", "selectors": [a.default] + sorted(
                set(a.selectors) - {a.default}),
             "config": a.config, "licence": a.licence, "description": a.description}
            for a in ADAPTERS.values()]


def parse_hub_spec(rest: str) -> tuple[str, str | None, str | None]:
    """``ID[:CONFIG][#SELECTOR]`` -> (id, config, selector)."""
    left, _, selector = rest.partition("#")
    repo_id, _, config = left.partition(":")
    return repo_id.strip(), (config.strip() or None), (selector.strip() or None)


def _builder_for(path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in (".json", ".jsonl"):
        return "json"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix == ".parquet":
        return "parquet"
    raise DataSpecError(
        f"data_files {path!r}: expected a .jsonl, .json, .csv or .parquet file"
    )


def _load_raw(repo_id: str, config: str | None, hub_split: str, data_files: str | None,
              spec: str) -> Dataset:
    from datasets import load_dataset

    if data_files is not None:
        if not Path(data_files).expanduser().exists():
            raise DataSpecError(f"dataset {spec!r}: data_files {data_files!r} does not exist")
        builder = _builder_for(data_files)
        try:
            return load_dataset(builder, data_files=str(Path(data_files).expanduser()),
                                split="train")
        except Exception as err:  # malformed local file: many exception types
            raise DataSpecError(f"dataset {spec!r}: could not read {data_files}: {err}") from err
    try:
        return load_dataset(repo_id, config, split=hub_split)
    except Exception as err:  # offline, gated, missing split...: report them all the same way
        raise DataSpecError(
            f"dataset {spec!r}: could not load {repo_id!r} (config {config!r}, split "
            f"{hub_split!r}) from the hub: {err}. Without hub access, pass data_files= with a "
            f"local copy in the hub's schema."
        ).unavailable() from err


def load_hub(rest: str, *, split: str = "train", data_files: str | None = None,
             spec: str | None = None) -> Dataset:
    """Load ``hf:`` data (``rest`` is the part after ``hf:``) through its adapter."""
    spec = spec or f"hf:{rest}"
    repo_id, config, selector = parse_hub_spec(rest)
    if not repo_id:
        raise DataSpecError(f"dataset spec {spec!r} names no hub id")
    adapter = ADAPTERS.get(ALIASES.get(repo_id.lower(), repo_id).lower())

    if adapter is None:
        if selector is not None:
            raise DataSpecError(
                f"dataset {spec!r}: no adapter for {repo_id!r}, so selectors are not available; "
                f"adapted data sets: {', '.join(a.repo_id for a in ADAPTERS.values())}"
            )
        return _load_raw(repo_id, config, split, data_files, spec)

    name = selector or adapter.default
    if name not in adapter.selectors:
        raise DataSpecError(
            f"dataset {spec!r}: unknown selector {name!r} for {adapter.repo_id}; "
            f"selectors: {', '.join('#' + s for s in adapter.selectors)}"
        )
    carve = adapter.carve_from is not None and split in ("train", "heldout")
    hub_split = adapter.carve_from if carve else adapter.splits.get(split, split)
    assert hub_split is not None
    raw = _load_raw(adapter.repo_id, config or adapter.config, hub_split, data_files, spec)
    if carve:
        if adapter.carve_key not in raw.column_names:
            raise DataSpecError(
                f"dataset {spec!r}: column {adapter.carve_key!r} missing; columns present: "
                f"{', '.join(raw.column_names)}"
            )
        raw = raw.filter(
            _in_heldout, input_columns=adapter.carve_key,
            fn_kwargs={"namespace": adapter.repo_id.lower(), "fraction": adapter.carve_fraction,
                       "heldout": split == "heldout"},
        )
    try:
        return adapter.selectors[name](raw)
    except KeyError as err:
        raise DataSpecError(
            f"dataset {spec!r}: the {adapter.repo_id} adapter needs column {err}; columns "
            f"present: {', '.join(raw.column_names)}"
        ) from err
