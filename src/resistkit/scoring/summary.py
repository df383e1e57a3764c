"""Summary statistics of score columns and their rich table.

Per column: n (scored records), mean, sample std (ddof=1), a 95 % confidence interval of the
mean from Student's t with n-1 degrees of freedom (exact for normal scores, conservative
against the normal approximation for small n), and the NaN count. The t quantile is computed
here (regularised incomplete beta + bisection) to avoid a scipy dependency.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

CI_LEVEL = 0.95
CI_METHOD = "Student t, n-1 degrees of freedom: mean ± t(0.975, n-1) · std / sqrt(n)"


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    # The continued fraction converges fast only on this side of the mean.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """Inverse CDF of Student's t (bisection; accurate to ~1e-10)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


def column_stats(values: Sequence[float | None]) -> dict[str, Any]:
    """n, mean, std, 95 % t interval and NaN count of one column (NaN/None = not scored)."""
    finite = [float(v) for v in values if v is not None and not math.isnan(v)]
    n = len(finite)
    stats: dict[str, Any] = {
        "n": n,
        "nan": len(values) - n,
        "mean": None,
        "std": None,
        "ci95": None,
    }
    if n == 0:
        return stats
    mean = math.fsum(finite) / n
    stats["mean"] = mean
    if n >= 2:
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (n - 1))
        half = t_quantile(0.5 + CI_LEVEL / 2.0, n - 1) * std / math.sqrt(n)
        stats["std"] = std
        stats["ci95"] = [mean - half, mean + half]
    return stats


def summarize(
    columns: Mapping[str, Sequence[float]],
    info: Mapping[str, Mapping[str, Any]],
    descriptions: Mapping[str, str],
    column_scorer: Mapping[str, str],
    auxiliary: Collection[str] = (),
    **extra: Any,
) -> dict[str, Any]:
    """The summary JSON: per-column stats, per-scorer settings/models/counts, and ``extra``."""
    return {
        **extra,
        "ci": {"level": CI_LEVEL, "method": CI_METHOD},
        "nan_means": "record not scored (empty, unreadable or over-long input); never a 0",
        "columns": {
            name: {
                "scorer": column_scorer.get(name),
                "meaning": descriptions.get(name, ""),
                "auxiliary": name in auxiliary,
                **column_stats(values),
            }
            for name, values in columns.items()
        },
        "scorers": {name: dict(details) for name, details in info.items()},
    }


def _fmt(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def render_table(summary: Mapping[str, Any], title: str | None = None) -> Any:
    """A rich Table of the summary's score columns (auxiliary count columns left out).

    Compact enough for 80 columns: the interval is shown as mean ± half-width; std and the
    interval bounds are in the summary JSON.
    """
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    # Names and numbers never wrap; only the free-text meaning folds on narrow terminals.
    table.add_column("score", no_wrap=True)
    table.add_column("n", justify="right", no_wrap=True)
    table.add_column("NaN", justify="right", no_wrap=True)
    table.add_column("mean ± 95% CI (t)", justify="right", no_wrap=True)
    table.add_column("meaning", overflow="fold")
    for name, col in summary["columns"].items():
        if col.get("auxiliary"):
            continue
        ci = col["ci95"]
        mean = _fmt(col["mean"])
        if ci is not None:
            mean += f" ± {_fmt((ci[1] - ci[0]) / 2, 2)}"
        table.add_row(
            name,
            str(col["n"]),
            str(col["nan"]) if not col["nan"] else f"[yellow]{col['nan']}[/]",
            mean,
            col["meaning"],
        )
    return table
