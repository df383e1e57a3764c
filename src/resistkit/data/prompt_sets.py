"""Row mappers of the safety prompt sets the field reports on, in each hub data set's schema.

Every set maps to a ``prompt`` column (what the model answers) plus the set's own labels, so
any of them can be ``eval.prompts`` or an ``eval.prompt_sets`` entry. ``resistkit.data.hub``
wraps these in adapters; docs/data.md gives each set's size, licence and columns.

Where a set is also published as its authors' CSV (llm-attacks' ``harmful_behaviors.csv``,
HarmBench's ``harmbench_behaviors_text_all.csv``, StrongREJECT's ``strongreject_dataset.csv``),
that schema is read too, so a local copy of the original file works as ``data_files=``.
"""

from __future__ import annotations

from typing import Any

Batch = dict[str, list[Any]]


def _first(batch: Batch, *names: str) -> list[Any]:
    for name in names:
        if name in batch:
            return batch[name]
    raise KeyError(" or ".join(repr(n) for n in names))


def _optional(batch: Batch, name: str, n: int, missing: Any = "") -> list[Any]:
    """A column some copies of a set lack (the authors' CSV, a hub mirror): ``missing`` each."""
    return list(batch.get(name) or [missing] * n)


def advbench_rows(batch: Batch) -> Batch:
    """walledai/AdvBench (prompt, target) or llm-attacks' CSV (goal, target)."""
    prompts = _first(batch, "prompt", "goal")
    return {"prompt": list(prompts), "target": _optional(batch, "target", len(prompts))}


def harmbench_rows(batch: Batch, functional: str) -> Batch:
    """walledai/HarmBench's ``standard`` config (prompt, category), or HarmBench's own CSV
    (Behavior, FunctionalCategory, SemanticCategory), kept to one functional category.

    Contextual behaviours are left out: their prompt is a context string plus the behaviour,
    which a ``prompt`` column alone does not carry."""
    if "Behavior" in batch:
        rows = zip(batch["Behavior"], batch["FunctionalCategory"], batch["SemanticCategory"],
                   strict=True)
        kept = [(b, s) for b, f, s in rows if f == functional]
        return {"prompt": [b for b, _ in kept], "category": [s for _, s in kept]}
    prompts = batch["prompt"]
    return {"prompt": list(prompts), "category": _optional(batch, "category", len(prompts))}


def strongreject_rows(batch: Batch) -> Batch:
    """walledai/StrongREJECT (prompt, category, source) or the authors' CSV
    (category, source, forbidden_prompt)."""
    prompts = _first(batch, "prompt", "forbidden_prompt")
    n = len(prompts)
    return {"prompt": list(prompts), "category": _optional(batch, "category", n),
            "source": _optional(batch, "source", n)}


def xstest_rows(batch: Batch, label: str | None) -> Batch:
    """walledai/XSTest (prompt, focus, type, note, label): ``label`` is "safe" for the 250
    prompts a well-calibrated model should answer and "unsafe" for the 200 contrast prompts.
    ``label=None`` keeps both, with the label column."""
    out: Batch = {"prompt": [], "label": [], "type": [], "focus": []}
    n = len(batch["prompt"])
    rows = zip(batch["prompt"], batch["label"], _optional(batch, "type", n),
               _optional(batch, "focus", n), strict=True)
    for prompt, lab, kind, focus in rows:
        if label is not None and str(lab).strip().lower() != label:
            continue
        out["prompt"].append(prompt)
        out["label"].append(str(lab).strip().lower())
        out["type"].append(kind)
        out["focus"].append(focus)
    return out


def beavertails_eval_rows(batch: Batch) -> Batch:
    """PKU-Alignment/BeaverTails-Evaluation (prompt, category, category_id)."""
    prompts = batch["prompt"]
    n = len(prompts)
    return {"prompt": list(prompts), "category": _optional(batch, "category", n),
            "category_id": [-1 if c is None else int(c)
                            for c in _optional(batch, "category_id", n, None)]}
