"""Run `resistkit ARGS...` and SIGKILL the process at one chosen point (used by
tests/test_reliability.py; not a test module).

    python tests/_kill_harness.py POINT N -- resistkit-args...

POINT is train | generate | score | compression | report; the process kills itself the Nth
time that point is reached, as a kill -9 from outside would: no cleanup, no flush.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

point, nth = sys.argv[1], int(sys.argv[2])
args = sys.argv[sys.argv.index("--") + 1:]
seen = {"n": 0}


def reached() -> None:
    seen["n"] += 1
    if seen["n"] == nth:
        os.kill(os.getpid(), signal.SIGKILL)


if point == "train":  # in the middle of a training stage, after a logged step
    from resistkit.training import callbacks

    make = callbacks.jsonl_log_callback

    def logging_then_kill(*a: Any, **kw: Any) -> Any:
        cb = make(*a, **kw)
        on_log = cb.on_log

        def on_log_and_maybe_die(*b: Any, **kb: Any) -> None:
            on_log(*b, **kb)
            reached()

        cb.on_log = on_log_and_maybe_die
        return cb

    callbacks.jsonl_log_callback = logging_then_kill
    import resistkit.training.train as train_module

    train_module.jsonl_log_callback = logging_then_kill
elif point == "generate":  # after a batch of a generate stage reached its .partial file
    from resistkit.generation import hf

    generate_texts = hf.generate_texts

    def generate_and_maybe_die(*a: Any, on_batch: Any = None, **kw: Any) -> Any:
        def saved(*b: Any) -> None:
            on_batch(*b)
            reached()

        return generate_texts(*a, on_batch=saved if on_batch else None, **kw)

    hf.generate_texts = generate_and_maybe_die
elif point == "score":  # scored, about to write the scores file
    from resistkit.scoring import io, stage

    write_scores = io.write_scores

    def write_or_die(*a: Any, **kw: Any) -> Any:
        reached()
        return write_scores(*a, **kw)

    stage.write_scores = write_or_die
elif point == "compression":  # between two compression sets of one checkpoint
    from resistkit.scoring import stage

    run_score = stage.run_score

    def measure_or_die(source: Any, scorers: Any, **kw: Any) -> Any:
        result = run_score(source, scorers, **kw)
        if list(scorers) == ["compression"]:
            reached()
        return result

    stage.run_score = measure_or_die
elif point == "report":  # after the report wrote some of its files
    from resistkit import files

    write = files.atomic_write_lines

    def write_or_die(path: Any, lines: Any) -> None:
        write(path, lines)
        # The report is built in report.tmp/ and swapped in whole; a kill lands mid-build.
        if "/report.tmp/" in str(path) or "/report/" in str(path):
            reached()

    files.atomic_write_lines = write_or_die
else:
    raise SystemExit(f"unknown point {point!r}")

from resistkit.cli import main  # noqa: E402

sys.argv = ["resistkit", *args]
main()
