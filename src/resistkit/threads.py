"""The threading every resistkit process starts with, set before torch reads it."""

from __future__ import annotations

import os


def settle() -> None:
    """Passive OpenMP waiting and no more threads than this process's cores (values the user
    set are kept). OpenMP's default spin-waiting burns idle cores, 4.7x the CPU time on a
    shared 2-core machine; torch counts the machine's cores, which in a container, under
    `taskset` or in a SLURM job are more than it gets, and surplus threads wait."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if hasattr(os, "sched_getaffinity"):
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0)))))
