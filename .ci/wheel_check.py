"""The product as a pip user gets it: build the wheel, install it into a fresh virtual
environment outside the checkout, and from an empty directory run the quickstart by its
packaged name and a dry run of every packaged recipe.

    python .ci/wheel_check.py        (run by .ci/run after the tests)
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, **kw)  # type: ignore[arg-type]


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="resistkit-wheel-"))
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"),
         str(REPO)])
    wheel = next((work / "dist").glob("resistkit-*.whl"))
    run([sys.executable, "-m", "venv", str(work / "venv")])
    bin_dir = work / "venv" / "bin"
    run([str(bin_dir / "pip"), "install", "-q", "torch==2.13.0", str(wheel)])
    empty = work / "empty"
    empty.mkdir()
    env = {**os.environ, "RESISTKIT_CACHE": str(work / "cache")}
    resistkit = str(bin_dir / "resistkit")
    start = time.time()
    done = run([resistkit, "run", "quickstart"], cwd=empty, env=env, capture_output=True,
               text=True)
    console = (done.stdout + done.stderr).splitlines()
    print("\n".join(console))
    print(f"quickstart from the wheel: {time.time() - start:.0f} s, {len(console)} console "
          "lines", flush=True)
    assert len(console) <= 40, "the piped quickstart console is over 40 lines"
    assert not any("\r" in line or "it/s]" in line for line in console), "a progress bar"
    # The quickstart's own report, checked here rather than by a second run in the tests:
    # base + Q1 x Q2 rows, 128 prompts x 2 samples each (a few may be empty), its figures.
    report = empty / "runs/quickstart/report"
    assert (report / "report.md").exists()
    with (report / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 + 3 * 5, len(rows)
    assert all(int(r["n"]) > 200 for r in rows), [r["n"] for r in rows]
    assert (report / "rebound.png").stat().st_size > 10_000
    assert (report / "hooke.csv").exists()
    listing = run([str(bin_dir / "python"), "-c",
                   "from resistkit.catalog import list_recipes\n"
                   "for r in list_recipes(): print(r.kind.split()[0], r.name)"],
                  capture_output=True, text=True, cwd=empty).stdout.split("\n")
    for line in filter(None, listing):
        kind, name = line.split()
        command = {"pretrain": "pretrain", "train": "train"}.get(kind, "run")
        run([resistkit, command, name, "--dry-run"], cwd=empty, env=env,
            stdout=subprocess.DEVNULL)
    print(f"dry runs of {len(list(filter(None, listing)))} packaged recipes: ok")


if __name__ == "__main__":
    main()
