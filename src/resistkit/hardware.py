"""What this machine's CPU can do fast, and what ``dtype: auto`` becomes on it: one place.

Measured on machines of this kind (1024² matmuls, fp32 vs bf16): Intel with AMX-BF16 150 vs
1,144 GFLOP/s (7.6x); AMD EPYC with AVX512-BF16, no AMX, 187 vs 412 (2.2x); AVX2-only 131 vs
~1 (bf16 ~50x *slower*); an Intel Xeon with AVX512 but neither flag ran a SmolLM2
compression stage 2.1x *slower* with bf16 weights (benchmarks/bench_dtype.py). On SmolLM2 a bf16
forward pass changed bits/token by 0.04 %.

So on a CPU with AMX-BF16 or AVX512-BF16, ``auto`` runs inference stages (scoring,
compression, KL, generation) with bf16 weights and training with bf16 autocast over fp32
master weights; on every other CPU, fp32 as before. ``float32`` forces the old path. On a GPU
the rule is unchanged (bf16 where the GPU supports it, TRL's own precision defaults).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Flags in /proc/cpuinfo, fastest first.
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
_SPEEDUP = {"amx_bf16": "~7x", "avx512_bf16": "~2x"}


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags the kernel reports (empty where /proc/cpuinfo is absent)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_bf16(flags: frozenset[str] | None = None) -> str | None:
    """The CPU's fast bf16 instruction set (``amx_bf16`` / ``avx512_bf16``), or None."""
    have = cpu_flags() if flags is None else flags
    return next((f for f in BF16_FLAGS if f in have), None)


@dataclass(frozen=True)
class CpuPrecision:
    """What ``dtype`` means for the stages that run on the CPU."""

    inference: str  # weights dtype of scoring, compression, KL and generation
    train_autocast: bool  # bf16 autocast over fp32 master weights in training
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cpu_precision(dtype: str = "auto", flags: frozenset[str] | None = None) -> CpuPrecision:
    """The precision ``dtype`` (a recipe's ``model.dtype``) resolves to on this CPU."""
    if dtype != "auto":
        # An explicit dtype keeps its old meaning: the weights of inference stages; training
        # precision is then TRL's own `bf16` field of `train:`.
        return CpuPrecision(dtype, False, f"dtype {dtype} set in the recipe")
    kind = cpu_bf16(flags)
    if kind is None:
        return CpuPrecision("float32", False, "auto: this CPU has no AMX-BF16 or AVX512-BF16 "
                            "(bf16 would be slower than fp32: ~2x with AVX512, ~50x with "
                            "AVX2 only), so fp32")
    return CpuPrecision("bfloat16", True, f"auto: this CPU has {kind.upper()} (bf16 matmuls "
                        f"{_SPEEDUP[kind]} faster), so bf16 weights for inference and bf16 "
                        "autocast over fp32 master weights for training")


def fingerprint_precision(dtype: str = "auto", on_cpu: bool = True) -> dict[str, Any]:
    """The part of a stage's fingerprint that the CPU precision decides: empty for the fp32
    path (so stages measured before ``auto`` chose bf16 keep their fingerprints), else what
    changed the numbers."""
    if not on_cpu:
        return {}
    chosen = cpu_precision(dtype)
    if dtype != "auto" or (chosen.inference == "float32" and not chosen.train_autocast):
        return {}  # explicit dtypes are in the model's own settings already
    return {"cpu_precision": {"inference": chosen.inference,
                              "train_autocast": chosen.train_autocast}}
