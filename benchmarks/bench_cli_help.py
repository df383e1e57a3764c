"""Wall time of `resistkit --help` (target < 1 s): the CLI must not import torch/trl eagerly."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def main() -> None:
    times = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "resistkit", "--help"], check=True,
                       capture_output=True)
        times.append(time.perf_counter() - start)
    print(f"resistkit --help: median {statistics.median(times):.3f} s, "
          f"min {min(times):.3f} s over {len(times)} runs")


if __name__ == "__main__":
    main()
