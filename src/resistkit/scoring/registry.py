"""Registry of named scorers and the function that maps them over records.

A scorer is a function over a batch of records (a dict of equal-length lists with at least
``response`` and usually ``prompt``) that returns named score columns (dict of lists of floats):

    @register_scorer("refusal", columns={"refusal": "1 = refusal"})
    def refusal(batch, ctx, *, phrases=None): ...

``score_records`` validates the input once for every scorer: records whose response is empty,
not a string or not encodable as UTF-8 never reach a scorer and get NaN, and the reason is counted
in the run info, so an unscorable record is never reported as a neutral 0.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from resistkit.errors import ScoringError

Batch = dict[str, list[Any]]
Columns = dict[str, list[float]]
ScorerFn = Callable[..., Columns]

NAN = float("nan")


def nan_columns(n: int, *names: str) -> list[list[float]]:
    """One list of ``n`` NaNs per name: every record starts unscored."""
    return [[NAN] * n for _ in names]


@dataclass(frozen=True)
class ModelOptions:
    """The options every model-based scorer takes: one place for their names and defaults.

    A scorer registered with ``model_options=ModelOptions(batch_size=8)`` receives them as its
    third argument; its own options stay keyword-only parameters.
    """

    batch_size: int = 16  # records per forward pass
    max_length: int | None = None  # truncate inputs (default: the model's limit)
    device: str = "auto"  # auto, cpu, cuda, cuda:1 ...
    dtype: str = "auto"  # auto (fp32 on CPU, bf16 on a GPU with bf16), float32, bfloat16


MODEL_OPTION_NAMES = tuple(f.name for f in fields(ModelOptions))


@dataclass(frozen=True)
class ScorerSpec:
    """What the registry knows about one scorer."""

    name: str
    fn: ScorerFn
    columns: dict[str, str]  # column name -> meaning, including which direction is "more"
    description: str
    requires: tuple[str, ...] = ("response",)
    uses_prompt: bool = False
    # Bookkeeping columns (token counts, totals): written and summarised, left out of the table.
    auxiliary: tuple[str, ...] = ()
    # 0/1 columns whose mean is a rate (a harmful or refusal rate): reports give them a
    # binomial (Wilson) interval instead of a t interval.
    rates: tuple[str, ...] = ()
    # Columns in [0, 1] that a Setting II report computes samples to break from, with the way
    # they move as alignment breaks: "falls" (the aligned behaviour's share, as the refusal
    # rate) or "rises" (a harmful rate or score). See ``resistkit.report.behaviour``.
    breaks: dict[str, str] = field(default_factory=dict)
    model_options: ModelOptions | None = None  # this scorer's defaults of the shared options
    # Options that name a judge model: a built-in judge there (or as their default) may be
    # built on first use by a pipeline (``resistkit.judge.ensure_judges``).
    judge_options: tuple[str, ...] = ()

    @property
    def options(self) -> dict[str, Any]:
        """Options the scorer accepts (its keyword-only parameters and any shared model
        options), with their defaults."""
        params = inspect.signature(self.fn).parameters.values()
        own = {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
        shared = asdict(self.model_options) if self.model_options is not None else {}
        return {**own, **shared}

    def call(self, batch: Batch, ctx: Any, opts: Mapping[str, Any]) -> Columns:
        if self.model_options is None:
            return self.fn(batch, ctx, **opts)
        shared = {k: v for k, v in opts.items() if k in MODEL_OPTION_NAMES}
        own = {k: v for k, v in opts.items() if k not in MODEL_OPTION_NAMES}
        return self.fn(batch, ctx, replace(self.model_options, **shared), **own)


SCORERS: dict[str, ScorerSpec] = {}
BREAK_WAYS = ("falls", "rises")


def register_scorer(
    name: str,
    *,
    columns: Mapping[str, str],
    description: str = "",
    requires: Sequence[str] = ("response",),
    uses_prompt: bool = False,
    auxiliary: Sequence[str] = (),
    rates: Sequence[str] = (),
    breaks: Mapping[str, str] | None = None,
    model_options: ModelOptions | None = None,
    judge_options: Sequence[str] = (),
) -> Callable[[ScorerFn], ScorerFn]:
    """Register ``fn(batch, ctx, *, option=default, ...) -> {column: [float, ...]}`` as ``name``.

    Options must be keyword-only so the registry can route ``score_records(**options)`` to the
    scorers that declare them and record their effective values in the summary. A scorer that
    loads a model takes ``model_options`` (``fn(batch, ctx, run: ModelOptions, *, ...)``).
    """

    def decorate(fn: ScorerFn) -> ScorerFn:
        if name in SCORERS and SCORERS[name].fn is not fn:
            raise ValueError(f"scorer {name!r} is already registered")
        odd = {c: w for c, w in (breaks or {}).items() if w not in BREAK_WAYS or c not in columns}
        if odd:
            raise ValueError(f"scorer {name!r}: breaks {odd} must name its own columns, each "
                             f"with one of {BREAK_WAYS}")
        SCORERS[name] = ScorerSpec(
            name=name,
            fn=fn,
            columns=dict(columns),
            description=description or (inspect.getdoc(fn) or "").split("\n")[0],
            requires=tuple(requires),
            uses_prompt=uses_prompt,
            auxiliary=tuple(auxiliary),
            rates=tuple(rates),
            breaks=dict(breaks or {}),
            model_options=model_options,
            judge_options=tuple(judge_options),
        )
        return fn

    return decorate


def get_scorer(name: str) -> ScorerSpec:
    try:
        return SCORERS[name]
    except KeyError:
        known = ", ".join(sorted(SCORERS)) or "(none registered)"
        raise ScoringError(f"unknown scorer {name!r}; available: {known}") from None


def rate_columns() -> frozenset[str]:
    """Every registered scorer's 0/1 rate columns."""
    return frozenset(c for spec in SCORERS.values() for c in spec.rates)


def break_columns() -> dict[str, str]:
    """Every registered scorer's samples-to-break columns: name -> "falls" or "rises"."""
    return {c: way for spec in SCORERS.values() for c, way in spec.breaks.items()}


def list_scorers() -> list[ScorerSpec]:
    return [SCORERS[n] for n in sorted(SCORERS)]


@dataclass
class ScoringContext:
    """Per-run state handed to every scorer.

    ``info`` collects what the summary must report per scorer (settings, model ids, truncation
    counts, corpus totals); ``advance`` moves the progress bar by a number of records.
    """

    source: str = "records"
    progress: bool = False
    info: dict[str, dict[str, Any]] = field(default_factory=dict)
    _current: str | None = None
    _advance: Callable[[int], None] = field(default=lambda n: None, repr=False)

    def advance(self, n: int) -> None:
        self._advance(n)

    def note(self, key: str, value: Any) -> None:
        """Record ``key: value`` in the info of the scorer that is running."""
        if self._current is None:
            raise RuntimeError("note() called outside a scorer")
        self.info[self._current][key] = value

    def count(self, key: str, n: int = 1) -> None:
        """Add ``n`` to a counter (e.g. truncations) in the running scorer's info."""
        if self._current is None:
            raise RuntimeError("count() called outside a scorer")
        counters = self.info[self._current].setdefault("counts", {})
        counters[key] = counters.get(key, 0) + n

    def not_scored(self, reason: str, n: int = 1) -> None:
        """Count records the running scorer returned NaN for, by reason."""
        if self._current is None:
            raise RuntimeError("not_scored() called outside a scorer")
        reasons = self.info[self._current]["not_scored"]
        reasons[reason] = reasons.get(reason, 0) + n


def as_columns(records: Any) -> Batch:
    """Accept a dict of lists, a list of dicts or a ``datasets.Dataset``; return a dict of lists."""
    if isinstance(records, Mapping):
        cols = {k: list(v) for k, v in records.items()}
    elif hasattr(records, "column_names") and hasattr(records, "to_dict"):
        cols = records.to_dict()
    elif isinstance(records, Sequence) and not isinstance(records, str):
        keys: dict[str, None] = {}
        for row in records:
            keys.update(dict.fromkeys(row))
        cols = {k: [row.get(k) for row in records] for k in keys}
    else:
        raise TypeError(f"cannot score records of type {type(records).__name__}")
    lengths = {len(v) for v in cols.values()}
    if len(lengths) > 1:
        raise ScoringError(f"columns of {type(records).__name__} have unequal lengths: {lengths}")
    return cols


def _n_rows(cols: Batch) -> int:
    return len(next(iter(cols.values()))) if cols else 0


def invalid_reason(text: Any) -> str | None:
    """Why a response cannot be scored, or None when it can."""
    if not isinstance(text, str):
        return "missing" if text is None else "not_text"
    if not text.strip():
        return "empty"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates survive json.loads("\\ud800")
        return "not_utf8"
    return None


def _prompt_reason(prompt: Any) -> str | None:
    """A missing or blank prompt is fine (the text is scored on its own); garbage is not."""
    if prompt is None:
        return None
    if not isinstance(prompt, str):
        return "bad_prompt"
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError:
        return "bad_prompt"
    return None


def route_options(specs: Sequence[ScorerSpec], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Split ``options`` per scorer; an option no selected scorer accepts is an error."""
    accepted = {name for spec in specs for name in spec.options}
    unknown = sorted(set(options) - accepted)
    if unknown:
        names = ", ".join(s.name for s in specs)
        raise ScoringError(
            f"option(s) {', '.join(unknown)} not used by the selected scorer(s) {names}; "
            f"they accept: {', '.join(sorted(accepted)) or 'no options'}"
        )
    return [{k: v for k, v in options.items() if k in spec.options} for spec in specs]


def score_records(
    records: Any,
    names: Sequence[str],
    *,
    context: ScoringContext | None = None,
    **options: Any,
) -> Columns:
    """Run the scorers ``names`` over ``records`` and return their score columns.

    ``records``: dict of lists, list of dicts or ``datasets.Dataset`` with a ``response`` column
    (and ``prompt`` for scorers that use it). ``options`` go to every selected scorer that
    declares them (e.g. ``model=``, ``batch_size=``). Pass a ``ScoringContext`` to get per-scorer
    info (settings, counts of NaN reasons and truncations, corpus totals) and a progress bar.
    """
    if isinstance(names, str):
        names = [names]
    if not names:
        raise ScoringError("no scorer selected")
    if len(set(names)) != len(names):
        raise ScoringError(f"scorer listed twice: {list(names)}")
    ctx = context or ScoringContext()
    cols = as_columns(records)
    n = _n_rows(cols)
    specs = [get_scorer(name) for name in names]
    per_spec = route_options(specs, options)

    for spec in specs:
        missing = [c for c in spec.requires if c not in cols]
        if missing:
            raise ScoringError(
                f"scorer {spec.name!r} needs column(s) {', '.join(map(repr, missing))}, "
                f"but {ctx.source} has: {', '.join(sorted(cols)) or 'no columns'}"
            )

    out: Columns = {}
    for spec, opts in zip(specs, per_spec, strict=True):
        keep, batch = _scorable(spec, cols, ctx, opts)
        result = _run_scorer(spec, batch, len(keep), opts, ctx)
        for col, values in result.items():
            if len(values) != len(keep):
                raise RuntimeError(
                    f"scorer {spec.name!r} returned {len(values)} values for column "
                    f"{col!r}, expected {len(keep)}"
                )
            if col in out:
                raise ScoringError(f"two scorers produce column {col!r}")
            full = [NAN] * n
            for i, v in zip(keep, values, strict=True):
                full[i] = NAN if v is None else float(v)
            out[col] = full
        if not result and keep:
            raise RuntimeError(f"scorer {spec.name!r} returned no columns")
    return out


def _scorable(spec: ScorerSpec, cols: Batch, ctx: ScoringContext,
              opts: Mapping[str, Any]) -> tuple[list[int], Batch]:
    """The indices of the records ``spec`` can score and their batch; the reasons for the
    others are counted in its info."""
    reasons: dict[str, int] = {}
    keep: list[int] = []
    prompts = cols.get("prompt")
    for i, text in enumerate(cols["response"]):
        reason = invalid_reason(text)
        if reason is None and spec.uses_prompt and prompts is not None:
            reason = _prompt_reason(prompts[i])
        if reason is None:
            keep.append(i)
        else:
            reasons[reason] = reasons.get(reason, 0) + 1
    batch: Batch = {"response": [cols["response"][i] for i in keep]}
    if spec.uses_prompt and prompts is not None:
        batch["prompt"] = [prompts[i] or "" for i in keep]
    ctx.info[spec.name] = {"settings": {**spec.options, **opts}, "not_scored": reasons}
    return keep, batch


def _run_scorer(spec: ScorerSpec, batch: Batch, count: int, opts: Mapping[str, Any],
                ctx: ScoringContext) -> Columns:
    from resistkit import progress

    ctx._current = spec.name
    if ctx.progress:
        reporter = progress.current()
        reporter.start(f"scoring ({spec.name})", count, "record")
        ctx._advance = lambda k: reporter.update(advance=k)
    start = time.perf_counter()
    try:
        result = spec.call(batch, ctx, opts) if count else {c: [] for c in spec.columns}
    finally:
        ctx._current = None
        ctx._advance = lambda k: None
    elapsed = time.perf_counter() - start
    ctx.info[spec.name]["elapsed_s"] = round(elapsed, 3)
    ctx.info[spec.name]["records_per_s"] = round(count / elapsed, 1) if elapsed > 0 and count \
        else None
    return result
