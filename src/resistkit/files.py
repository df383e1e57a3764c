"""Files resistkit writes and reads: atomic writes, JSON readers that name a damaged file, and
content identity (what a file or model directory *is*, not only where it lives).

Atomic: every output is written to a temporary sibling and renamed over its target, with the
permissions an ordinary new file gets (0666 minus the umask), so a kill never leaves half a
file and outputs are as readable as their siblings.

Identity: ``file_sha256`` hashes a file once and remembers the digest under its path, size,
modification and change times and inode in ``$RESISTKIT_CACHE/hashes.json``; a file whose
identity changed is hashed again (an edit whose size and mtime were put back still moves its
ctime). Fingerprints use it, so replacing a model's weights or a data file at the same
path makes the stages that read it stale.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from resistkit.errors import ResistkitError, RunError

_UMASK: int | None = None


def _file_mode() -> int:
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0)
        os.umask(_UMASK)
    return 0o666 & ~_UMASK


def atomic_write_lines(path: str | Path, lines: Iterable[str]) -> None:
    """Write ``lines`` to a temp file beside ``path`` and rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for line in lines:
                handle.write(line)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_lines(path, [text])


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def staging_dir(target: Path) -> Path:
    """An empty sibling of ``target`` (this process's own) to build a directory in before
    ``install_dir`` moves it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    return tmp


def install_dir(tmp: Path, target: Path, marker: str) -> Path:
    """Replace ``target`` (stale or forced) by the finished ``tmp``. When another process
    finished first (``target`` is a non-empty directory again), keep its copy if it holds
    ``marker``; a kill mid-way never leaves half a directory at ``target``."""
    if target.exists():
        shutil.rmtree(target, ignore_errors=True)
    try:
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / marker).exists():
            raise
    return target


def read_json(path: str | Path) -> Any:
    """A JSON file; a torn or unreadable one is an error that names it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise RunError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}); the file is "
                       "damaged: delete it and run again") from None
    except UnicodeDecodeError:
        raise RunError(f"{path}: not UTF-8 text; the file is damaged") from None


def read_jsonl(path: str | Path, error: type[ResistkitError] = RunError) -> list[dict[str, Any]]:
    """Objects of a JSONL file; errors name the file and the 1-based line number."""
    path = Path(path)
    rows: list[dict[str, Any]] = []
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise error(
                    f"{path}:{lineno}: not valid UTF-8 (byte 0x{raw[err.start]:02x} at column "
                    f"{err.start + 1}); re-encode the file as UTF-8"
                ) from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise error(f"{path}:{lineno}: invalid JSON: {err.msg}") from None
            if not isinstance(row, dict):
                raise error(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            rows.append(row)
    return rows


def truncate_jsonl_log(path: str | Path, last_step: int) -> None:
    """After a resume, drop log lines from steps the checkpoint did not keep, and a last line
    torn by a kill mid-write (its step is past the checkpoint's, so it is logged again)."""
    path = Path(path)
    if not path.exists():
        return
    lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
             if line.strip()]
    kept = []
    for lineno, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if lineno == len(lines):
                break  # torn by a kill: only the last line can be
            raise RunError(f"{path}:{lineno}: not valid JSON in the middle of the training "
                           "log; the file is damaged: train again from scratch (--force)") from None
        if row.get("step", 0) <= last_step:
            kept.append(line)
    atomic_write_text(path, "".join(line + "\n" for line in kept))


# --------------------------------------------------------------------------------------------
# Content identity


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """Where resistkit keeps converted and built models and file digests: ``cache_dir``,
    ``$RESISTKIT_CACHE`` or ``~/.cache/resistkit``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("RESISTKIT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "resistkit"


def _hash_cache_path() -> Path:
    return cache_root() / "hashes.json"


_HASHES: dict[str, dict[str, Any]] | None = None


def _hashes() -> dict[str, dict[str, Any]]:
    global _HASHES
    if _HASHES is None:
        path = _hash_cache_path()
        try:
            _HASHES = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        except (OSError, json.JSONDecodeError):
            _HASHES = {}  # a damaged cache only costs hashing again
    return _HASHES


def sha256_of(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks, never cached (``file_sha256``
    caches)."""
    path = Path(path)
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _identity(stat: os.stat_result) -> dict[str, int]:
    """What the digest cache trusts a file by. The ctime is set by the kernel on every write
    and rename and cannot be set back (``touch``/``os.utime`` restore the mtime, not the
    ctime), and the inode changes when a file is replaced, so an edit cannot keep them."""
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns,
            "inode": stat.st_ino, "device": stat.st_dev}


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file, hashed again whenever its identity (size, mtime, ctime, inode)
    changed."""
    path = Path(path).resolve()
    identity = _identity(path.stat())
    key = str(path)
    known = _hashes().get(key)
    if known and all(known.get(k) == v for k, v in identity.items()):
        return known["sha256"]
    sha = sha256_of(path)
    _hashes()[key] = {**identity, "sha256": sha}
    with contextlib.suppress(OSError):  # a read-only cache only costs hashing again
        atomic_write_json(_hash_cache_path(), _hashes())
    return sha


def dir_identity(path: str | Path) -> str:
    """One digest for the files directly in a directory (a saved model: config, tokenizer,
    weights), by name and content."""
    path = Path(path)
    digest = hashlib.sha256()
    for child in sorted(p for p in path.iterdir() if p.is_file()):
        digest.update(f"{child.name}\0{file_sha256(child)}\n".encode())
    return digest.hexdigest()[:32]


def record_file(path: Path) -> dict[str, Any]:
    """What a manifest keeps of an output file to tell later whether it is still the same."""
    stat = path.stat()
    # Hashed directly, not through the digest cache: the manifest is this file's record.
    record: dict[str, Any] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                              "ctime_ns": stat.st_ctime_ns, "sha256": sha256_of(path)}
    if path.suffix == ".jsonl":
        with path.open("rb") as handle:
            record["lines"] = sum(1 for _ in handle)
    return record


def unchanged(path: Path, record: dict[str, Any]) -> bool:
    """Whether ``path`` still holds what ``record`` describes (hashing only when its size
    matches but its mtime or ctime moved: an edit can put the mtime back, not the ctime)."""
    try:
        stat = path.stat()
    except OSError:
        return False
    if stat.st_size != record["size"]:
        return False
    if stat.st_mtime_ns == record["mtime_ns"] and \
            stat.st_ctime_ns == record.get("ctime_ns", stat.st_ctime_ns):
        return True
    return sha256_of(path) == record["sha256"]
