"""The quickstart as a pip user sees it: wall time, time to the first console line, how many
lines it prints and whether any progress bar (a carriage return) leaks into a pipe.

    OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 python benchmarks/bench_console.py [RECIPE]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?", default="quickstart")
    args = parser.parse_args()
    exe = shutil.which("resistkit") or sys.exit("resistkit is not on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        start = time.perf_counter()
        proc = subprocess.Popen([exe, "run", args.recipe, "-o", str(out)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        first_s = time.perf_counter() - start
        rest = proc.stdout.read()
        code = proc.wait()
        wall = time.perf_counter() - start
    text = (first + rest).decode("utf-8", "replace")
    lines = text.splitlines()
    print(f"exit status        {code}")
    print(f"wall time          {wall:.1f} s")
    print(f"first line after   {first_s:.2f} s: {first.decode().strip()[:80]}")
    print(f"console lines      {len(lines)}")
    print(f"carriage returns   {text.count(chr(13))}")


if __name__ == "__main__":
    main()
