"""Which files of ``report/`` resistkit wrote: a record (``files.json``, name -> sha256) kept
with the report, so a new report replaces exactly its own earlier files and never a user's."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from resistkit.files import sha256_of

RECORD = "files.json"



def foreign_files(report_dir: Path) -> list[str]:
    """Files in ``report_dir`` that resistkit did not write, or that changed since it did."""
    if not report_dir.is_dir():
        return []
    record_path = report_dir / RECORD
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = None
    names = sorted(p.name for p in report_dir.iterdir() if p.name != RECORD)
    if record is None:
        # A report written before the record existed: its files are the ones resistkit
        # writes (Markdown, figures, CSVs); anything else is someone else's.
        return [n for n in names if not n.endswith((".md", ".png", ".csv"))]
    return [n for n in names if n not in record or n == PLAN_KEY or not (report_dir / n).is_file()
            or sha256_of(report_dir / n) != record[n]]


def fresh_dir(report_dir: Path) -> Path:
    """An empty sibling directory to build the new report in (a leftover of a killed report
    is removed first: only resistkit writes there)."""
    tmp = report_dir.with_name(report_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


PLAN_KEY = "_plan"  # the plan the report was written from (not a file name)


def plan_digest(plan: Any) -> str:
    """One digest of every planned stage's fingerprint: the report is current only while the
    plan it was written from is the run's plan."""
    text = json.dumps(sorted((s.name, s.fingerprint) for s in plan.stages.values()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_current(report_dir: Path, plan: Any) -> bool:
    """Whether ``report_dir`` holds a report written, to the end, from this ``plan``."""
    try:
        record = json.loads((report_dir / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get(PLAN_KEY) == plan_digest(plan) and \
        (report_dir / "report.md").is_file()


def swap_in(built: Path, report_dir: Path, plan: Any) -> None:
    """Record the built report's files, then replace ``report_dir`` with it (two renames; a
    kill in between leaves the old report under ``.old``, removed by the next report)."""
    record: dict[str, str] = {p.name: sha256_of(p) for p in sorted(built.iterdir()) if p.is_file()}
    record[PLAN_KEY] = plan_digest(plan)
    (built / RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n",
                                encoding="utf-8")
    old = report_dir.with_name(report_dir.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if report_dir.exists():
        os.replace(report_dir, old)
    os.replace(built, report_dir)
    if old.exists():
        shutil.rmtree(old)
