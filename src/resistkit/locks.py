"""One writer per directory: a lock file taken before the first write, refused to a second.

``writer_lock(directory)`` holds ``DIRECTORY/.resistkit.lock`` (pid, host, start time, command)
for as long as its block runs. A second writer is refused at once with a ``RunError`` naming
the holder; a lock whose process is gone (same host) is taken over with a warning. The lock
guards any directory: a whole run (`resistkit run`, `report`), or one stage's directory
(`train`, `inverse`, and later a stage run as its own cluster job).

Creation is ``O_CREAT | O_EXCL``, atomic on local file systems and on NFSv3+, so two writers
racing for a free directory cannot both win. A process that holds a lock exports it in
``RESISTKIT_HELD_LOCKS``: the processes it starts (``accelerate launch`` ranks, stages it runs
in-process) are the same writer and pass through the lock instead of being refused by it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from resistkit.errors import RunError

log = logging.getLogger(__name__)

LOCK_FILE = ".resistkit.lock"
HELD_ENV = "RESISTKIT_HELD_LOCKS"
# A lock file still empty this long after its creation was left by a writer killed between
# creating and filling it (filling takes microseconds).
_EMPTY_LOCK_GRACE_S = 10.0


def lock_path(directory: str | Path) -> Path:
    return Path(directory).resolve() / LOCK_FILE


def _held() -> list[str]:
    return [p for p in os.environ.get(HELD_ENV, "").split(os.pathsep) if p]


def _holder_info(note: dict[str, Any] | None = None) -> dict[str, Any]:
    from resistkit.slurm import current_job

    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(["resistkit", *sys.argv[1:]])}
    if current_job():
        info["slurm_job"] = current_job()
    return {**info, **(note or {})}


def holder(directory: str | Path) -> dict[str, Any] | None:
    """Who holds ``directory``'s lock now: None if nobody (no lock, or a stale one)."""
    path = lock_path(directory)
    if not path.is_file():
        return None
    info = _read(path)
    return None if stale(path, info) else (info or {})


def _read(path: Path) -> dict[str, Any] | None:
    """The holder recorded in a lock file; None if it is empty or torn."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and "pid" in info else None


def pid_alive(pid: int) -> bool:
    """Whether a process of this host with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def describe(info: dict[str, Any]) -> str:
    job = f", SLURM job {info['slurm_job']}" if info.get("slurm_job") else ""
    return (f"pid {info.get('pid')} on {info.get('host')}{job}, started {info.get('started')}"
            f" ({info.get('command', 'resistkit')})")


def stale(path: Path, info: dict[str, Any] | None) -> bool:
    """Whether a lock's holder is certainly gone: a dead process on this host, or a lock
    left empty by a writer killed while creating it. A holder on another host cannot be
    checked from here and is never taken to be gone, unless it ran in a SLURM job that the
    queue no longer holds (or that is this very job, requeued)."""
    if info is None:
        try:
            return time.time() - path.stat().st_mtime > _EMPTY_LOCK_GRACE_S
        except OSError:
            return True
    job = info.get("slurm_job")
    if job:
        from resistkit import slurm

        if str(job) == slurm.current_job():
            # Held from within this very job: by another of its processes (a local
            # executor inside an allocation, judged below by host and pid), or by its run
            # before a requeue on another node, which SLURM counts in SLURM_RESTART_COUNT.
            if info.get("host") != socket.gethostname() and \
                    int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0:
                return True
        elif (states := slurm.queue([str(job)])) is not None and (
                str(job) not in states or not states[str(job)].active):
            return True
    if info.get("host") != socket.gethostname():
        return False
    return not pid_alive(int(info["pid"]))


def check_free(directory: str | Path, what: str = "run directory", *,
               below: bool = True) -> None:
    """Refuse at once if another live writer holds ``directory``, a directory above it (a
    stage inside a running run) or one below it (a stage being trained inside the run):
    nothing is written. Commands call it before their slow input checks, so a second
    writer is told first."""
    directory = Path(directory).resolve()
    above = [d / LOCK_FILE for d in directory.parents]
    inside = directory.rglob(LOCK_FILE) if below and directory.is_dir() else iter(())
    for path in [directory / LOCK_FILE, *above, *inside]:
        if str(path) in _held() or not path.is_file():
            continue
        info = _read(path)
        if not stale(path, info):
            _refuse(path.parent, what if path.parent == directory else "directory", info)


def _refuse(directory: str | Path, what: str, info: dict[str, Any] | None) -> None:
    holder = describe(info) if info else "a writer that is still starting"
    raise RunError(f"{directory}: this {what} is in use by {holder}; wait for it to finish, "
                   f"or if that process is gone for good, delete {lock_path(directory)}")


def _create(path: Path, note: dict[str, Any] | None = None) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(_holder_info(note), handle)
    return True


def _take_over(path: Path, info: dict[str, Any] | None) -> None:
    """Move a stale lock aside under a name of our own, so two processes taking over the
    same stale lock cannot both remove it and both create a new one."""
    aside = path.with_name(f"{LOCK_FILE}.stale.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        os.replace(path, aside)
        aside.unlink(missing_ok=True)
        log.warning("took over the lock of %s: its holder (%s) is gone", path.parent,
                    describe(info) if info else "unknown, killed while starting")


@contextlib.contextmanager
def writer_lock(directory: str | Path, what: str = "run directory", *, own: bool = False,
                note: dict[str, Any] | None = None, below: bool = True) -> Iterator[None]:
    """Hold ``directory``'s lock while the block runs (creating the directory if needed);
    re-entrant for this process and the processes it starts. ``own``: take a lock of its
    own even inside a directory whose lock this process holds (a stage run as a job of the
    run's driver); ``note``: more about the holder, recorded in the lock (e.g. that it is an
    executor's driver); ``below=False``: live locks inside the directory (its stages' jobs)
    do not refuse it."""
    path = lock_path(directory)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and int(os.environ.get("RANK", "0")) > 0:
        # A rank of a distributed launch not started by resistkit (`accelerate launch -m
        # resistkit train`): rank 0 holds the lock for all of them.
        yield
        return
    # Held here or inherited from the process that started this one (a run's `accelerate
    # launch` ranks): a lock on this directory or on one above it covers everything inside.
    inside = path.parent.resolve()
    if str(path) in _held() or (not own and any(
            Path(held).parent in inside.parents for held in _held())):
        yield
        return
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise RunError(f"{directory} is a file; give a directory")
    check_free(directory, what, below=below)
    # The directories this call creates (the run's and any missing parents), deepest first.
    created = [d for d in [directory, *directory.parents] if not d.exists()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunError(f"{directory}: cannot create this {what} ({err.strerror}); give a "
                       "directory you can write to") from None
    for _ in range(3):  # a stale lock taken over, then another racer: give up cleanly
        try:
            if _create(path, note):
                break
        except PermissionError:
            raise RunError(f"{directory}: cannot write in this {what} (permission denied); "
                           "give a directory you can write to") from None
        info = _read(path)
        if not stale(path, info):
            _refuse(directory, what, info)
        _take_over(path, info)
    else:
        _refuse(directory, what, _read(path))
    previous = os.environ.get(HELD_ENV)
    os.environ[HELD_ENV] = os.pathsep.join([*_held(), str(path)])
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(HELD_ENV, None)
        else:
            os.environ[HELD_ENV] = previous
        if (_read(path) or {}).get("pid") == os.getpid():
            path.unlink(missing_ok=True)
        # A command refused before its first write leaves nothing behind.
        for made in created:
            try:
                made.rmdir()
            except OSError:
                break
