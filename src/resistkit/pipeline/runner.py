"""Stages with fingerprints and manifests: finished work is never recomputed, and an output is
never reused once its inputs changed or it was damaged.

A stage's fingerprint hashes its own settings (including the content identity of the models
and data files it reads from outside the run) and its dependencies' fingerprints, so changing
one setting invalidates exactly that stage and what depends on it. A stage writes
``manifest.json`` (via a temp file and rename) only when it is complete, recording the size,
hash (and line count) of every file it wrote and the digest of each dependency's outputs it
read. A stage is done only while its fingerprint matches, its files are intact, its
dependencies are done and their outputs are the ones it read; a directory without a manifest
is an interrupted stage, resumed if its ``pending.json`` fingerprint still matches.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resistkit.errors import ResistkitError
from resistkit.files import atomic_write_json, read_json, record_file, unchanged

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
PENDING = "pending.json"
FAILED = "failed.json"


@dataclass
class Stage:
    name: str  # relative directory under the run, e.g. "seed-42/train/positive"
    kind: str  # train | generate | score | data | eval
    config: dict[str, Any]  # everything that determines the output (JSON-able)
    run: Callable[[Path], dict[str, Any]]  # does the work in its directory, returns outputs
    deps: list[str] = field(default_factory=list)
    train_samples: int = 0  # for the plan: samples this stage trains on
    fingerprint: str = ""


@dataclass(frozen=True)
class Point:
    """One evaluated checkpoint of Setting II / III, as the report reads it.

    ``label`` is what the point is (``model``, ``seed``, ``q1``, ``q2``; the base has q1 =
    q2 = -1); ``stages`` names its eval stages by kind (``layout.GENERATE`` ...);
    ``forward`` is the forward training stage whose first ``q1`` samples aligned it, and
    ``base`` the base model name or path (for its pre-training volume).
    """

    label: dict[str, Any]
    stages: dict[str, str]
    forward: str | None = None
    base: str | None = None


@dataclass(frozen=True)
class PairRun:
    """One training run of Setting I: θ_src trained on D_dst, ``direction`` forward/inverse."""

    label: dict[str, Any]  # seed, direction, k, l (k < l), src, dst
    stage: str


def _hash(obj: Any, run_dir: Path | None = None) -> str:
    text = json.dumps(obj, sort_keys=True, default=str)
    if run_dir is not None:
        # Files inside the run (e.g. DPO pairs) enter as "{run_dir}/...": their content is
        # covered by the producing stage's fingerprint, and a moved run keeps its fingerprints.
        text = text.replace(f"{run_dir}/", "{run_dir}/")
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Plan:
    """Stages in dependency order (each stage only depends on earlier ones)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.stages: dict[str, Stage] = {}
        self.points: list[Point] = []
        self.pairs: list[PairRun] = []
        self._checked: dict[str, tuple[str, str]] = {}

    def add(self, stage: Stage) -> Stage:
        if stage.name in self.stages:
            return self.stages[stage.name]  # shared stage (e.g. the base model's baseline)
        for dep in stage.deps:
            if dep not in self.stages:
                raise ValueError(f"stage {stage.name} depends on unknown stage {dep}")
        stage.fingerprint = _hash(
            {"config": stage.config, "deps": [self.stages[d].fingerprint for d in stage.deps]},
            self.run_dir,
        )
        self.stages[stage.name] = stage
        return stage

    def dir(self, name: str) -> Path:
        return self.run_dir / name

    def outputs(self, name: str) -> dict[str, Any]:
        return read_json(self.dir(name) / MANIFEST)["outputs"]

    def done(self, name: str) -> bool:
        """The stage is in the plan and its output matches the plan (not stale, not missing)."""
        return name in self.stages and self.status(self.stages[name]) == "done"

    def status(self, stage: Stage) -> str:
        """done | stale (inputs, settings or outputs changed) | partial (interrupted) | todo."""
        return self.check(stage)[0]

    def check(self, stage: Stage) -> tuple[str, str]:
        """The status of a stage and why (empty for done and todo)."""
        if stage.name not in self._checked:
            self._checked[stage.name] = self._check(stage)
        return self._checked[stage.name]

    def _check(self, stage: Stage) -> tuple[str, str]:
        path = self.dir(stage.name)
        if not (path / MANIFEST).exists():
            if not (path / PENDING).exists():
                return "todo", ""
            try:
                same = read_json(path / PENDING)["fingerprint"] == stage.fingerprint
            except (ResistkitError, KeyError):
                return "stale", "pending.json is damaged"
            return ("partial", "interrupted") if same else ("stale", "settings changed")
        try:
            manifest = read_json(path / MANIFEST)
            recorded = manifest["fingerprint"], manifest["files"], manifest["dep_digests"]
        except (ResistkitError, KeyError):
            return "stale", "manifest.json is damaged or from an older resistkit"
        if recorded[0] != stage.fingerprint:
            return "stale", "settings or inputs changed"
        for dep in stage.deps:
            if self.status(self.stages[dep]) != "done":
                return "stale", f"waits for {dep}"
            if recorded[2].get(dep) != self.digest(dep):
                return "stale", f"{dep} was recomputed with other outputs"
        for rel, record in recorded[1].items():
            if not unchanged(path / rel, record):
                return "stale", f"output {rel} changed or is missing"
        return "done", ""

    def digest(self, name: str) -> str | None:
        """The digest of a finished stage's output files, as its manifest records it."""
        try:
            return read_json(self.dir(name) / MANIFEST).get("digest")
        except ResistkitError:
            return None

    def run(self, *, on_stage: Callable[[Stage, str], None] | None = None,
            on_done: Callable[[Stage, dict[str, Any], float], None] | None = None) -> None:
        """Run every stage that is not done, in order; ``on_stage(stage, status)`` is told
        before each, ``on_done(stage, outputs, seconds)`` after each that ran."""
        for stage in self.stages.values():
            status, _ = self.check(stage)
            if on_stage is not None:
                on_stage(stage, status)
            if status == "done":
                continue
            outputs, seconds = self.run_one(stage)
            if on_done is not None:
                on_done(stage, outputs, seconds)

    def run_one(self, stage: Stage) -> tuple[dict[str, Any], float]:
        """Run one stage that is not done (its dependencies must be): start over if stale,
        resume if interrupted; returns its outputs and seconds. The caller holds the lock."""
        status, why = self.check(stage)
        waiting = [dep for dep in stage.deps if self.status(self.stages[dep]) != "done"]
        if waiting:
            raise ResistkitError(f"stage {stage.name} cannot run yet: {waiting[0]} is not done")
        path = self.dir(stage.name)
        if status == "stale":
            log.info("recomputing %s: %s", stage.name, why)
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path / PENDING, {"fingerprint": stage.fingerprint,
                                           "config": stage.config})
        start = time.time()
        try:
            outputs = stage.run(path)
        except BaseException as err:
            _record_failure(path, err)
            raise
        files = outputs_of(path)
        atomic_write_json(path / MANIFEST, {
            "stage": stage.name,
            "kind": stage.kind,
            "fingerprint": stage.fingerprint,
            "config": stage.config,
            "deps": stage.deps,
            "dep_digests": {dep: self.digest(dep) for dep in stage.deps},
            "outputs": outputs,
            "files": files,
            "digest": _hash({k: v["sha256"] for k, v in files.items()}),
            "seconds": round(time.time() - start, 2),
        })
        (path / PENDING).unlink(missing_ok=True)
        (path / FAILED).unlink(missing_ok=True)
        self._checked.clear()  # what depends on this stage is judged afresh
        return outputs, time.time() - start

    def forget(self) -> None:
        """Judge every stage afresh (another process may have finished some)."""
        self._checked.clear()


def _record_failure(path: Path, err: BaseException) -> None:
    """``failed.json`` beside ``pending.json``: `resistkit status` tells a crash from a kill."""
    if isinstance(err, KeyboardInterrupt):
        return
    atomic_write_json(path / FAILED, {"error": f"{type(err).__name__}: {err}"[:2000],
                                      "time": time.strftime("%Y-%m-%dT%H:%M:%S")})


def outputs_of(stage_dir: Path) -> dict[str, dict[str, Any]]:
    """A record of every file a stage wrote (its manifest and pending marker aside)."""
    return {str(f.relative_to(stage_dir)): record_file(f)
            for f in sorted(stage_dir.rglob("*"))
            if f.is_file() and f.name not in (MANIFEST, PENDING, FAILED)}
