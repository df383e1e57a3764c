"""Numbers to text: Markdown tables, CSV, and the intervals the report states."""

from __future__ import annotations

import csv
import io
import math
import statistics
from pathlib import Path
from typing import Any


def t_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean, sample std and the 95 % Student-t interval half-width (n-1 degrees of freedom)."""
    from resistkit.scoring.summary import t_quantile

    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return mean, math.nan, math.nan
    sd = statistics.stdev(values)
    return mean, sd, t_quantile(0.975, n - 1) * sd / math.sqrt(n)


def paired_interval(a: dict, b: dict) -> tuple[float, float, int]:
    """Mean and 95 % half-width of b - a over the keys (record ids) both have."""
    diffs = [b[k] - a[k] for k in a.keys() & b.keys()]
    if len(diffs) < 2:
        return math.nan, math.nan, len(diffs)
    mean, _, half = t_interval(diffs)
    return mean, half, len(diffs)


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def markdown_table(rows: list[dict], cols: list[str]) -> str:
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(out)


def table_section(title: str, text: str, rows: list[dict], cols: list[str],
                  csv_path: Path | None = None) -> list[str]:
    """A Markdown heading, a paragraph and a table, as report lines; with ``csv_path`` every
    column of ``rows`` is written there too."""
    if csv_path is not None:
        from resistkit.files import atomic_write_text

        atomic_write_text(csv_path, csv_text(rows))
    return [title, "", text, "", markdown_table(rows, cols), ""]


def csv_text(rows: list[dict]) -> str:
    """CSV of every public column (keys starting with ``_`` hold working data, not results)."""
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols and not c.startswith("_")]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
