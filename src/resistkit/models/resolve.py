"""One resolver for every model name a recipe, command or scorer accepts.

``resolve_model(name)`` understands, in this order:

- ``tiny``: a Llama built in-process from the recipe's ``model.tiny`` config (training only);
- a built-in name (``builtin:tiny-base``, ``smollm2-135m``, ``builtin:sentiment-judge``, their
  aliases; see ``resistkit.models.builtin``): its local directory, made ready on first use
  where that needs no network;
- a local directory, or a ``.gguf`` file (loaded through transformers' GGUF reader);
- a hub id, optionally pinned as ``OWNER/NAME@REVISION``.

It does no loading and imports no torch; ``resistkit.models.load`` loads what it returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resistkit.errors import ModelError
from resistkit.models import builtin

TINY = "tiny"  # the one name of the in-process model built from a config

# A hub id: NAME or OWNER/NAME of letters, digits, '-', '_', '.' (the hub's own rule).
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def is_tiny(name: str | None) -> bool:
    return name == TINY


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model comes from: what ``from_pretrained`` is given, and what was asked for."""

    name: str  # as written in the recipe or on the command line
    path: str  # local directory or hub id ("" for tiny)
    source: str  # tiny | builtin | local | hub
    revision: str | None = None
    gguf_file: str | None = None
    builtin: str | None = None  # canonical built-in name

    @property
    def is_local(self) -> bool:
        return self.source in ("builtin", "local")

    def record(self) -> dict[str, Any]:
        """What records and reports name: the request and what it resolved to."""
        out: dict[str, Any] = {"name": self.name, "path": self.path, "source": self.source}
        if self.revision:
            out["revision"] = self.revision
        if self.gguf_file:
            out["gguf_file"] = self.gguf_file
        return out


def split_revision(name: str) -> tuple[str, str | None]:
    """``"org/model@rev"`` -> ``("org/model", "rev")``; an existing local path is never split."""
    if Path(name).exists() or "@" not in name:
        return name, None
    path, _, revision = name.rpartition("@")
    return path, revision or None


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1 or "\\" in name


def resolve_model(
    name: str,
    *,
    revision: str | None = None,
    gguf_file: str | None = None,
    cache_dir: str | Path | None = None,
    what: str = "model",
) -> ResolvedModel:
    """Resolve ``name`` (see the module docstring); a name that cannot be is a ModelError.

    ``what="tokenizer"`` accepts a directory that holds only a tokenizer.
    """
    if not isinstance(name, str) or not name.strip():
        raise ModelError(f"empty model name {name!r}; give a directory, a hub id or a built-in "
                         f"name ({', '.join(m.name for m in builtin.BUILTIN_MODELS)})")
    name = name.strip()
    if is_tiny(name):
        return ResolvedModel(name, "", "tiny")
    known = builtin.lookup(name)
    if known is not None:
        path = builtin.locate(known, cache_dir)
        return ResolvedModel(name, str(path), "builtin", builtin=known.name)
    local = Path(name).expanduser()
    if local.is_file():
        if local.suffix.lower() != ".gguf":
            raise ModelError(f"model {name!r} is a file; give its directory (or a .gguf file)")
        return ResolvedModel(name, str(local.parent), "local", gguf_file=local.name)
    if local.is_dir():
        markers = ("config.json", "adapter_config.json", "tokenizer_config.json") \
            if what == "tokenizer" else ("config.json", "adapter_config.json")
        if gguf_file is None and not any((local / m).exists() for m in markers):
            raise ModelError(
                f"{what} directory {name!r} has no {markers[0]}: not a saved {what} (a "
                "training run keeps its models in final/ and slices/)"
            )
        return ResolvedModel(name, str(local), "local", gguf_file=gguf_file)
    hub_id, pinned = split_revision(name)
    if pinned and revision and pinned != revision:
        raise ModelError(f"model {name!r} pins revision {pinned!r} but revision {revision!r} "
                         "is set too; keep one")
    if _looks_like_path(hub_id) or not _HUB_ID.match(hub_id):
        raise ModelError(
            f"model {name!r}: no such directory, and not a hub id or a built-in name "
            f"({', '.join(m.name for m in builtin.BUILTIN_MODELS)})"
        ).unavailable()
    return ResolvedModel(name, hub_id, "hub", revision=pinned or revision, gguf_file=gguf_file)
