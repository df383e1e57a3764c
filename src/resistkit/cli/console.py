"""What a command shows while it works: a live view on a terminal, plain lines in a pipe.

On a terminal (rich): the plan's progress (stages done / total, elapsed, ETA) and the current
piece of work in its own units (training steps with loss and samples/s, generated sequences,
scored records). In a pipe or CI log: plain lines only, no carriage returns. Either way, one
line per finished training stage and per evaluated checkpoint, with its time and key number.
Everything else a run logs (third-party warnings included) goes to RUN/run.log.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

from resistkit.progress import Reporter

RUN_LOG = "run.log"


def seconds_text(s: float) -> str:
    """1.5 s, 2 min 05 s, 1 h 07 min."""
    if s < 60:
        return f"{s:.1f} s"
    minutes, sec = divmod(int(round(s)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class Console(Reporter):
    """Progress and result lines on stderr (a live view when stderr is a terminal)."""

    def __init__(self, *, live: bool | None = None, header: str | None = None) -> None:
        from rich.console import Console as RichConsole

        # Printed before the first thing shown, so a command refused before any work prints
        # its one error line and nothing else.
        self.header = header
        self.live = sys.stderr.isatty() if live is None else live
        self.out = RichConsole(stderr=True, highlight=False, soft_wrap=not self.live)
        self.started = time.time()
        self.bar: Any = None
        self.overall: Any = None
        self.task: Any = None
        if self.live:
            self._start_bars()

    def _start_bars(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(bar_width=24),
                            MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                            TimeElapsedColumn(), TimeRemainingColumn(), console=self.out,
                            transient=True)
        self.bar.start()

    # -- lines ---------------------------------------------------------------------------
    def line(self, text: str) -> None:
        """A finished thing: printed above the live view, or as a plain line."""
        self._header()
        self.out.print(text, markup=False)

    def _header(self) -> None:
        if self.header is not None:
            header, self.header = self.header, None
            self.out.print(header, markup=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    # -- resistkit.progress.Reporter ------------------------------------------------------
    def start(self, what: str, total: int | None, unit: str, done: int = 0) -> None:
        self._header()
        if self.bar is None:
            return
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.task = self.bar.add_task(f"  {what} ({unit}s)", total=total, completed=done,
                                      info="")

    def update(self, done: int | None = None, advance: int = 0, **fields: Any) -> None:
        if self.bar is None or self.task is None:
            return
        info = "  ".join(f"{k.replace('_', ' ')} {v:.4g}" if isinstance(v, float) else
                         f"{k.replace('_', ' ')} {v}" for k, v in fields.items() if v is not None)
        if done is not None:
            self.bar.update(self.task, completed=done, info=info)
        else:
            self.bar.update(self.task, advance=advance, info=info)

    def note(self, message: str) -> None:
        self.line(f"  {message}")

    # -- a pipeline run -----------------------------------------------------------------
    def overall_start(self, total: int, done: int) -> None:
        if self.bar is not None:
            self.overall = self.bar.add_task("stages", total=total, completed=done, info="")

    def overall_advance(self, description: str) -> None:
        if self.bar is not None and self.overall is not None:
            self.bar.update(self.overall, advance=1, description=description)

    def elapsed(self) -> str:
        return seconds_text(time.time() - self.started)


def with_console(header: str | None, work: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``work`` with its progress shown (a live bar on a terminal, lines in a pipe);
    ``header`` is the first line (None: show nothing, e.g. on other ranks of a launch)."""
    from resistkit import progress

    if header is None:
        return work(*args, **kwargs)
    console = Console(header=header)
    try:
        with progress.reporting(console):
            return work(*args, **kwargs)
    finally:
        console.close()


def precision_line(dtype: str) -> str:
    """What a recipe's ``model.dtype`` resolves to on this machine, and why."""
    import torch

    if torch.cuda.is_available():
        return f"dtype {dtype} on GPU"
    from resistkit.hardware import cpu_precision

    return cpu_precision(dtype).reason


run_log = logging.getLogger("resistkit.run")


class RunView:
    """The console of `resistkit run`: a line per training stage and per evaluated point.
    Every line it prints, and every stage it starts and finishes, also goes to RUN/run.log
    (INFO), so the log says what the run is doing while a stage takes minutes."""

    def __init__(self, console: Console, exp: Any) -> None:
        self.console, self.exp = console, exp
        self.plan: Any = None
        self.point_of: dict[str, Any] = {}
        self.point_seconds: dict[int, float] = {}
        self.points_said: set[int] = set()
        self.skipped = 0

    def ready(self, plan: Any, summary: dict[str, Any]) -> None:
        """The plan is checked and about to run: log to RUN/run.log, say what will happen."""
        self.plan = plan
        attach_run_log(plan.run_dir)
        for point in plan.points:
            for name in point.stages.values():
                self.point_of[name] = point
        done = sum(1 for row in summary["stages"] if row["status"] == "done")
        total = len(summary["stages"])
        todo = f"{total - done} of {total} stages to run ({done} already done, kept)" if done \
            else f"{total} stages to run"
        self.say(f"{todo}; everything is logged in {plan.run_dir / RUN_LOG}")
        # Said once, after the checks: what `dtype` became here and why (also in env.json).
        self.say(f"  precision: {precision_line(self.exp.model.dtype)}")
        for note in summary.get("notes", []):
            self.say(f"  note: {note}")
        self.console.overall_start(total, done)

    def say(self, text: str) -> None:
        self.console.line(text)
        run_log.info(text.strip())

    def started(self, stage: Any, status: str) -> None:
        if status == "done":
            return
        if status == "stale":
            why = self.plan.check(stage)[1] if self.plan is not None else ""
            self.say(f"  rerun  {stage.name}: {why}")
        run_log.info("start %s (%s)", stage.name, stage.kind)
        self.console.overall_advance(f"{stage.kind} {stage.name}")

    def finished(self, stage: Any, outputs: dict[str, Any], seconds: float) -> None:
        run_log.info("done %s in %.1f s", stage.name, seconds)
        point = self.point_of.get(stage.name)
        if point is None:
            self.say(self._stage_line(stage, outputs, seconds))
            return
        key = id(point)
        self.point_seconds[key] = self.point_seconds.get(key, 0.0) + seconds
        # Once all its eval stages are done: in plan order sequentially, in any order (and
        # several at once) when stages run as jobs.
        if key not in self.points_said and all(self.plan.done(n)
                                               for n in point.stages.values()):
            self.points_said.add(key)
            self.say(self._point_line(point, self.point_seconds.pop(key)))

    def _stage_line(self, stage: Any, outputs: dict[str, Any], seconds: float) -> str:
        if stage.kind == "train":
            loss = outputs.get("train_loss")
            tokens = outputs.get("tokens_at_samples") or {}
            samples = max((int(k) for k in tokens), default=stage.train_samples)
            shown = f"loss {loss:.4f}" if isinstance(loss, float) else ""
            return f"  train  {stage.name}  {samples} samples  {shown}  {seconds_text(seconds)}"
        rows = outputs.get("rows")
        extra = f"{rows} rows  " if rows is not None else ""
        return f"  {stage.kind:<5}  {stage.name}  {extra}{seconds_text(seconds)}"

    def _point_line(self, point: Any, seconds: float) -> str:
        label = point.label
        where = "base" if label["q1"] < 0 else f"q1={label['q1']} q2={label['q2']}"
        model = f"{label['model']} " if self.exp.setting3 is not None else ""
        parts = [f"  point  {model}seed {label['seed']} {where}"]
        score = point.stages.get("score")
        if score and self.plan.done(score):
            columns = self.plan.outputs(score)["columns"]
            metric = self.exp.eval.metric or next(iter(columns), None)
            mean = (columns.get(metric) or {}).get("mean")
            if mean is not None:
                parts.append(f"{metric} {mean:.3f}")
        comp = point.stages.get("compression")
        if comp and self.plan.done(comp):
            sets = self.plan.outputs(comp)["compression"]
            # By set name, in the recipe's order: the manifest's keys are sorted, not ordered.
            bits = [sets[c.key]["bits_per_token"] if c.key in sets else None
                    for c in self.exp.eval.compression]
            if bits and bits[0] is not None:
                parts.append(f"bits/token {bits[0]:.3f}")
            if self.exp.eval.margin is not None:
                from resistkit.pipeline.schema import margin_sets

                plus, minus = margin_sets(self.exp)
                if bits[plus] is not None and bits[minus] is not None:
                    parts.append(f"{self.exp.eval.margin.name} {bits[minus] - bits[plus]:+.4f}")
        kl = point.stages.get("kl")
        if kl and self.plan.done(kl):
            parts.append(f"KL {self.plan.outputs(kl)['kl']:.4f}")
        parts.append(seconds_text(seconds))
        return "  ".join(parts)


def attach_run_log(run_dir: Path) -> None:
    """Everything the process logs from now on also goes to RUN/run.log: resistkit at INFO,
    and the warnings of transformers, datasets and Python, routed there instead of the
    console."""
    root = logging.getLogger()
    target = str((Path(run_dir) / RUN_LOG).resolve())
    if any(getattr(h, "baseFilename", None) == target for h in root.handlers):
        return
    for h in [h for h in root.handlers if getattr(h, "_resistkit_run_log", False)]:
        root.removeHandler(h)  # one run per process at a time (tests run several)
        h.close()
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(target, encoding="utf-8")
    handler._resistkit_run_log = True  # type: ignore[attr-defined]
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_default_handler()
        hf_logging.enable_propagation()
        hf_logging.set_verbosity_warning()
    if "datasets" in sys.modules:
        import datasets

        datasets.logging.set_verbosity_warning()
