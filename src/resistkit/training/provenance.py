"""What a training run directory was made from, so it is never reused for something else.

``train_provenance.json`` holds the resolved recipe and the content identity of the model and
data it trained on. `resistkit train` into a directory that holds a finished or interrupted run
of anything else stops and names the differences (``--force`` trains again from scratch), so a
finished run is never returned for a changed recipe and a resume never mixes two settings.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from resistkit.errors import ResistkitError, RunError
from resistkit.files import atomic_write_json, read_json
from resistkit.training.layout import BASE_DIR, CHECKPOINTS_DIR, FINAL_DIR, SLICES_DIR

PROVENANCE = "train_provenance.json"
# Files and directories a training run owns (what --force removes).
_OWNED = (FINAL_DIR, SLICES_DIR, CHECKPOINTS_DIR, BASE_DIR, PROVENANCE, "train_recipe.yaml",
          "train_env.json", "train_log.jsonl", "train_manifest.json", "trainer_state.json")


def inputs_identity(recipe: Any) -> dict[str, Any]:
    """Content identity of the model and the data a recipe trains on."""
    from resistkit.data import data_identity
    from resistkit.models import model_identity, resolve_spec

    data = None
    if recipe.data is not None:
        data = data_identity(recipe.data.dataset, recipe.data.data_files)
    return {"model": model_identity(resolve_spec(recipe.model)), "data": data}


def provenance(recipe: Any) -> dict[str, Any]:
    # output_dir is where the run lives, not what it is: a moved run is the same run.
    return {"recipe": recipe.model_dump(mode="json", exclude={"output_dir"}),
            "inputs": inputs_identity(recipe)}


def differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """``key: old -> new`` for every leaf that differs between two JSON-like values."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            out += differences(old.get(key), new.get(key), path)
        return out
    return [] if old == new else [f"{prefix}: {old!r} -> {new!r}"]


def _started(run_dir: Path) -> bool:
    return any((run_dir / name).exists() for name in (FINAL_DIR, CHECKPOINTS_DIR, PROVENANCE,
                                                       "train_recipe.yaml"))


def check_provenance(recipe: Any, run_dir: Path, *, force: bool) -> dict[str, Any]:
    """Refuse (or, with ``force``, clear) a run directory made from another recipe or other
    inputs; return the provenance of this one."""
    current = provenance(recipe)
    if not _started(run_dir):
        return current
    path = run_dir / PROVENANCE
    if path.exists():
        try:
            changed = differences(read_json(path), current)
        except ResistkitError:
            changed = [f"{PROVENANCE}: damaged"]
    else:
        changed = ["(no train_provenance.json: made by another resistkit version)"]
    if not changed:
        return current
    if not force:
        shown = "; ".join(changed[:6]) + (f"; and {len(changed) - 6} more" if len(changed) > 6
                                           else "")
        raise RunError(f"{run_dir} holds a training run of another recipe or other inputs "
                       f"({shown}); choose another --output-dir, or pass --force to train "
                       "again from scratch there")
    clear_run(run_dir)
    return current


def clear_run(run_dir: Path) -> None:
    """Remove what a training run wrote (and nothing else) from ``run_dir``."""
    for name in _OWNED:
        target = run_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def write_provenance(run_dir: Path, record: dict[str, Any]) -> None:
    atomic_write_json(run_dir / PROVENANCE, record)
