"""The packaged recipes: found by name, listed, shown and copied (`resistkit recipes ...`).

The recipes live in ``recipes/`` at the top of the repository, which installs as the package
``resistkit.recipe_files``; so ``resistkit run quickstart`` works from a wheel as from a clone.
A path on disk always wins over a packaged name.
"""

from __future__ import annotations

import contextlib
import difflib
import re
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
    text = read_recipe_text(path)
    raw = yaml.safe_load(text) or {}
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
    return RecipeInfo(name, kind, model or "tiny", purpose(text), path)


def purpose(text: str) -> str:
    """A recipe's purpose: the first sentence of its opening comment, which may run over
    several lines; an indented comment line (a command to type) ends the paragraph."""
    words: list[str] = []
    for line in text.splitlines():
        if not line.startswith("#") or line.startswith("#  ") or not line.strip("# "):
            break
        words.append(line.lstrip("#").strip())
    paragraph = " ".join(words)
    end = re.search(r"[.!?](?=\s|$)", paragraph)
    return paragraph[: end.end()] if end else paragraph


def list_recipes() -> list[RecipeInfo]:
    root = recipe_root()
    return [describe(root / f"{name}{SUFFIX}", name) for name in packaged_names()]


RECIPE_SUFFIXES = (".yaml", ".yml")


def read_recipe_text(path: Path) -> str:
    """A recipe file's text; a directory, an unreadable or a non-UTF-8 file is a RecipeError."""
    if path.is_dir():
        raise RecipeError(str(path), "", "is a directory, not a recipe file (packaged names: "
                          "resistkit recipes list)")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise RecipeError(str(path), "", f"is not UTF-8 text ({err.reason} at byte "
                          f"{err.start})") from None
    except OSError as err:
        raise RecipeError(str(path), "", f"cannot be read: {err.strerror}") from None


def copy_target(source: Path, where: str) -> Path:
    """Where `recipes copy` writes: a name ending in .yaml/.yml is the file itself; an existing
    directory, or a new one written with a trailing '/', receives SOURCE's file name. Anything
    else is refused, so a mistyped file name never becomes a directory."""
    path = Path(where).expanduser()
    if where.endswith(RECIPE_SUFFIXES):
        if path.is_dir():
            raise RunError(f"{where} is a directory; name a new .yaml file, or copy into the "
                           "directory as " + where.rstrip("/") + "/")
        target = path
    elif path.is_dir() or where.endswith(("/", "\\")):
        target = path / source.name
    elif path.exists():
        raise RunError(f"{where} exists and is not a directory; resistkit never overwrites a "
                       "file: name a new .yaml file or a directory")
    else:
        raise RunError(f"{where} does not exist: name a new file ending in .yaml, an existing "
                       f"directory, or a new directory ending in '/' (e.g. {where}/)")
    if target.exists() or target.is_symlink():
        raise RunError(f"{target} exists; resistkit never overwrites a file: remove it or "
                       "name another file")
    above = next(d for d in target.parents if d.exists())
    if not above.is_dir():
        raise RunError(f"cannot write {target}: {above} is a file, not a directory")
    return target


def copy_recipe(name: str, where: str | Path = ".") -> Path:
    """Copy a packaged recipe to ``where`` (see ``copy_target``) to start one's own. Never
    overwrites, and on any failure leaves nothing behind (no half file, no new directory)."""
    source = find_recipe(name)
    text = read_recipe_text(source)
    target = copy_target(source, str(where))
    made = [d for d in (target.parent, *target.parent.parents) if not d.exists()]
    created = False
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("x", encoding="utf-8") as out:  # "x": a file made meanwhile is kept
            created = True
            out.write(text)
    except OSError as err:
        if created:  # our own partial file (a full disk)
            target.unlink(missing_ok=True)
        for directory in made:  # innermost first; only the directories this call made
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise RunError(f"cannot write {target}: {err.strerror or err}") from None
    return target
