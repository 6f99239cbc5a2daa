"""Change over time: throughput, work in progress, and the signs that it is time to change.

The log's span is cut into periods (days, weeks or months, whichever gives a readable number
of points). A **sign** is a measure that moved the wrong way across the log: handoff delays
rising, rework or duplicated effort growing, cases slowing down. A sign is reported only when
the trend is both statistically clear (Kendall's tau against case start time, p < 0.01) and
large enough to matter (the last period at least 20% worse than the first).
"""

from __future__ import annotations

from typing import Any

import polars as pl
from scipy import stats  # type: ignore[import-untyped]

DAY = 86400.0


def period_length(span_s: float) -> tuple[float, str]:
    """A period for a log spanning ``span_s`` seconds: about 8 to 60 points on a chart."""
    for length, name in ((3600.0, "hour"), (DAY, "day"), (7 * DAY, "week"), (30 * DAY, "month")):
        if span_s / length <= 60:
            return length, name
    return 365 * DAY, "year"


def timeline(case_table: pl.DataFrame) -> dict[str, Any]:
    """Throughput (cases completed) and WIP (cases open) per period."""
    if case_table.height == 0:
        return {"period": None, "points": []}
    t0 = float(case_table["start"].min())  # type: ignore[arg-type]
    t1 = float(case_table["end"].max())  # type: ignore[arg-type]
    length, name = period_length(max(t1 - t0, 1.0))
    n = int((t1 - t0) // length) + 1
    done = (
        case_table.select(((pl.col("end") - t0) // length).cast(pl.Int64).alias("p"))
        .group_by("p")
        .len()
    )
    delta = pl.concat(
        [
            case_table.select(
                ((pl.col("start") - t0) // length).cast(pl.Int64).alias("p"), pl.lit(1).alias("d")
            ),
            case_table.select(
                ((pl.col("end") - t0) // length).cast(pl.Int64).alias("p"), pl.lit(-1).alias("d")
            ),
        ]
    )
    grid = pl.DataFrame({"p": pl.int_range(0, n, eager=True).cast(pl.Int64)})
    table = (
        grid.join(done, on="p", how="left")
        .join(delta.group_by("p").agg(pl.col("d").sum()), on="p", how="left")
        .sort("p")
        .with_columns(pl.col("len").fill_null(0), pl.col("d").fill_null(0).cum_sum().alias("wip"))
    )
    points = [
        {"start": t0 + p * length, "completed": int(c), "wip_end": int(w)}
        for p, c, _d, w in table.iter_rows()
    ]
    return {"period": name, "period_s": length, "points": points}


def signs(
    case_table: pl.DataFrame,
    per_case: pl.DataFrame,
    silo_findings: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The "signs it is time to change", each with its evidence.

    ``per_case`` has ``case`` and any of ``handoff_latency_s`` (mean per case), ``rework``
    and ``duplication`` (0/1).
    """
    df = case_table.select("case", "start", "duration_s").join(per_case, on="case", how="left")
    out: list[dict[str, Any]] = []
    checks = (
        ("handoff_latency_s", "handoff delays are rising", "mean handoff latency"),
        ("rework", "rework is growing", "share of cases with rework"),
        ("duplication", "duplicated effort is growing", "share of cases with duplicated work"),
        ("duration_s", "cases are slowing down", "case duration"),
    )
    for column, sign, what in checks:
        if column not in df.columns:
            continue
        d = df.select("start", column).drop_nulls()
        if d.height < 20 or d[column].n_unique() < 2:
            continue
        if d.height > 50_000:  # the trend test needs a sample, not every case of a huge log
            d = d.sort("start").gather_every(d.height // 50_000 + 1)
        tau = stats.kendalltau(d["start"].to_numpy(), d[column].to_numpy())
        p = float(tau.pvalue)
        if not (p < 0.01 and float(tau.statistic) > 0):
            continue
        ordered = d.sort("start")
        k = max(ordered.height // 4, 1)
        first = float(ordered.head(k)[column].mean())  # type: ignore[arg-type]
        last = float(ordered.tail(k)[column].mean())  # type: ignore[arg-type]
        if last <= first * 1.2 or last == 0:
            continue
        out.append(
            {
                "sign": sign,
                "metric": column,
                "first_quarter": first,
                "last_quarter": last,
                "change": (last - first) / first if first else None,
                "kendall_tau": float(tau.statistic),
                "p_value": p,
                "evidence": f"{what}: {_fmt(column, first)} in the first quarter of cases, "
                f"{_fmt(column, last)} in the last "
                f"(Kendall tau {float(tau.statistic):.2f}, p={p:.1g})",
            }
        )
    if silo_findings:
        out.append(
            {
                "sign": "silos",
                "metric": "handoffs",
                "evidence": "; ".join(s["evidence"] for s in silo_findings[:3]),
            }
        )
    return out


def _fmt(column: str, x: float) -> str:
    if column.endswith("_s"):
        return human_seconds(x)
    return f"{x:.1%}"


def human_seconds(s: float | None) -> str:
    """``42s``, ``3.5m``, ``2.1h``, ``4.0d``."""
    if s is None:
        return "-"
    a = abs(s)
    if a < 120:
        return f"{s:.0f}s"
    if a < 7200:
        return f"{s / 60:.1f}m"
    if a < 172800:
        return f"{s / 3600:.1f}h"
    return f"{s / 86400:.1f}d"
