"""A run directory belongs to one experiment, and resistkit overwrites only files it wrote.

resistkit records the SHA-256 of each top-level file it writes into a run directory
(``experiment.yaml``, ``env.json``, ``plan.json``) in ``.resistkit-written.json``. A file
there whose content no longer matches its record, or that was never recorded, is the user's
(a commented recipe, an edited copy) and is never replaced. Run directories made before the
record existed are recognised by their files being in exactly the form resistkit writes them
(``yaml.safe_dump`` / indented, sorted JSON), which a hand-written or commented file is not.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import yaml

from resistkit.errors import RunError
from resistkit.files import atomic_write_json, atomic_write_text
from resistkit.pipeline import layout

log = logging.getLogger(__name__)

WRITTEN_FILE = ".resistkit-written.json"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _record(run_dir: Path) -> dict[str, list[str]] | None:
    try:
        data = json.loads((run_dir / WRITTEN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _canonical(name: str, text: str) -> bool:
    """Whether ``text`` is exactly what resistkit's writer makes of its own parse."""
    try:
        if name.endswith(".json"):
            return json.dumps(json.loads(text), indent=2, sort_keys=True, default=str) \
                + "\n" == text
        data = yaml.safe_load(text)
        return isinstance(data, dict) and yaml.safe_dump(data, sort_keys=False) == text
    except (ValueError, yaml.YAMLError):
        return False


def written_by_resistkit(run_dir: Path, name: str) -> bool:
    path = run_dir / name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    record = _record(run_dir)
    if record is not None and name in record:
        return _sha(text) in record[name]
    return _canonical(name, text)


def check_claim(run_dir: Path, experiment: str, files: dict[str, str], *,
                force: bool = False) -> None:
    """Refuse (writing nothing) to replace a file resistkit did not write, or, without
    ``force``, to put ``experiment`` into a directory that holds another experiment's run."""
    for name, text in files.items():
        path = run_dir / name
        if path.exists() and not written_by_resistkit(run_dir, name):
            if path.read_bytes() == text.encode("utf-8"):
                continue  # writing it again changes nothing
            raise RunError(f"{path} was not written by resistkit (or was edited since), and "
                           "resistkit never overwrites a file it did not write: run your "
                           "recipe into another directory (-o), or move the file out of "
                           f"{run_dir}")
    before = previous_experiment(run_dir)
    if before is not None and before != experiment and not force:
        raise RunError(f"{run_dir} holds a {before} run, not {experiment}: a run directory "
                       "belongs to one experiment; give another -o, or --force to start "
                       f"{experiment} there (the old report is removed)")


def previous_experiment(run_dir: Path) -> str | None:
    path = run_dir / layout.EXPERIMENT_FILE
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return data.get("experiment") if isinstance(data, dict) else None


def claim(run_dir: Path, experiment: str, files: dict[str, Any], *, force: bool) -> None:
    """Write the run's top-level files (text, or JSON-able data) after ``check_claim``;
    an experiment that replaces another loses the other's report, so none of it is read
    as this one's."""
    texts = {name: _text(name, value) for name, value in files.items()}
    check_claim(run_dir, experiment, texts, force=force)
    before = previous_experiment(run_dir)
    if before is not None and before != experiment:
        log.warning("%s held a %s run: its report is removed", run_dir, before)
        shutil.rmtree(run_dir / layout.REPORT_DIR, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    record = _record(run_dir) or {}
    for name, text in texts.items():
        # Recorded before the write, and beside the hash of the file it replaces: a kill
        # between the two leaves either file recognised as resistkit's.
        record[name] = [*record.get(name, [])[-1:], _sha(text)]
        atomic_write_json(run_dir / WRITTEN_FILE, record)
        atomic_write_text(run_dir / name, text)


def _text(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, sort_keys=True, default=str) + "\n"
