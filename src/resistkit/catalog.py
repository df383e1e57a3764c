"""The packaged recipes: found by name, listed, shown and copied (`resistkit recipes ...`).

The recipes live in ``recipes/`` at the top of the repository, which installs as the package
``resistkit.recipe_files``; so ``resistkit run quickstart`` works from a wheel as from a clone.
A path on disk always wins over a packaged name.
"""

from __future__ import annotations

import difflib
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from resistkit.errors import RecipeError, RunError

SUFFIX = ".yaml"


def recipe_root() -> Path:
    return Path(str(resources.files("resistkit.recipe_files")))


def packaged_names() -> list[str]:
    root = recipe_root()
    return sorted(str(p.relative_to(root))[: -len(SUFFIX)] for p in root.rglob(f"*{SUFFIX}"))


def find_recipe(name_or_path: str | Path) -> Path:
    """A recipe file: the path when it exists on disk, else the packaged recipe of that name
    (``quickstart``, ``tiny/setting2``, ``cpu/smollm2_setting2.yaml``,
    ``recipes/setting2.yaml``)."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.exists():
        return path
    name = text.removesuffix(SUFFIX).removeprefix("recipes/")
    packaged = recipe_root() / f"{name}{SUFFIX}"
    if packaged.is_file():
        return packaged
    close = difflib.get_close_matches(name, packaged_names(), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise RecipeError(text, "", f"no such file, and no packaged recipe of that name{hint} "
                      "(`resistkit recipes list` shows them)")


@dataclass(frozen=True)
class RecipeInfo:
    name: str
    kind: str  # setting1 | setting2 | setting3 | train | pretrain
    model: str
    purpose: str
    path: Path


def describe(path: Path, name: str) -> RecipeInfo:
    text = path.read_text(encoding="utf-8")
    raw = yaml.safe_load(text) or {}
    comments = [line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")]
    if "experiment" in raw:
        kind = raw["experiment"]
    elif "max_tokens" in raw:
        kind = "pretrain"
    else:
        kind = f"train ({raw.get('method', 'sft')})"
    model = (raw.get("model") or {}).get("name_or_path", "") if isinstance(raw.get("model"),
                                                                           dict) else ""
    if kind == "setting3":
        model = ", ".join(m["label"] for m in raw.get("setting3", {}).get("models", []))
    if kind == "pretrain":
        model = "from scratch"
    # A recipe's first line is its one-line purpose.
    return RecipeInfo(name, kind, model or "tiny", comments[0] if comments else "", path)


def list_recipes() -> list[RecipeInfo]:
    root = recipe_root()
    return [describe(root / f"{name}{SUFFIX}", name) for name in packaged_names()]


def copy_recipe(name: str, directory: Path) -> Path:
    """Copy a packaged recipe into ``directory`` to start one's own; never overwrites."""
    source = find_recipe(name)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / source.name
    if target.exists():
        raise RunError(f"{target} exists; remove it or copy into another directory")
    shutil.copyfile(source, target)
    return target
