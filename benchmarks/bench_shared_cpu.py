"""Wall and CPU seconds of one small `resistkit run` with OpenMP spinning (ACTIVE, what torch
does when nobody sets OMP_WAIT_POLICY) and passive (resistkit's default), alone and beside
busy-loop processes that stand for other work on a shared machine.

    python benchmarks/bench_shared_cpu.py [--busy 2] [--repeats 1]

Each condition runs the same micro Setting II (tiny base, 10 stages) into a fresh directory;
the conditions alternate so that drift in the machine hits both. Prints one row per run and
the ratios ACTIVE / PASSIVE.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETS = ["setting2.q1=[16]", "setting2.q2=[0,16]", "eval.prompts.num_samples=8"]


def _busy() -> None:
    while True:
        pass


def _one(policy: str, out: Path) -> tuple[float, float]:
    env = {**os.environ, "OMP_WAIT_POLICY": policy, "HF_HUB_OFFLINE": "1"}
    argv = [sys.executable, "-m", "resistkit", "run", "tiny/setting2", "-o", str(out),
            *[a for s in SETS for a in ("--set", s)]]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=2, help="busy-loop processes beside")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(f"cores available: {len(os.sched_getaffinity(0))}, busy processes: {args.busy}")
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for load in ("alone", "shared"):
                busy = [mp.Process(target=_busy, daemon=True)
                        for _ in range(args.busy if load == "shared" else 0)]
                for proc in busy:
                    proc.start()
                try:
                    for policy in ("ACTIVE", "PASSIVE"):
                        wall, cpu = _one(policy, Path(tmp) / f"{load}-{policy}-{rep}")
                        results.setdefault((load, policy), []).append((wall, cpu))
                        print(f"{load:6s} {policy:7s} wall {wall:6.1f} s  cpu {cpu:6.1f} s",
                              flush=True)
                finally:
                    for proc in busy:
                        proc.kill()
    for load in ("alone", "shared"):
        act = results[(load, "ACTIVE")]
        pas = results[(load, "PASSIVE")]
        wall = sum(w for w, _ in act) / sum(w for w, _ in pas)
        cpu = sum(c for _, c in act) / sum(c for _, c in pas)
        print(f"{load}: ACTIVE / PASSIVE  wall {wall:.2f}x  cpu {cpu:.2f}x")


if __name__ == "__main__":
    main()
