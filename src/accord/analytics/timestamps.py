"""Timestamps from the outside world: ISO 8601 with any offset, and the usual non-ISO layouts.

Real logs carry dates as typed XES ``<date>`` values, as ``<string>`` values in a local layout
(``2019/11/03 01:11:19.000``), or as CSV text in whatever the exporting tool wrote, sometimes
several layouts in one column. Parsing is vectorized (polars): every candidate layout is tried on
the whole column, the layouts that parse most values win, and what no layout parses is counted
so the caller can report it instead of silently dropping it.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

# Tried in this order when they parse equally many values. Day-first before month-first: a
# column where both parse every value (no day above 12) is ambiguous, and ISO-minded Europe is
# the more common source of slash dates in the logs we have seen; the warning says so.
LAYOUTS: tuple[str, ...] = (
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M%#z",
    "%Y-%m-%d %H:%M%#z",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S%.f",
    "%Y/%m/%d %H:%M",
    "%d-%m-%Y %H:%M:%S%.f",
    "%d-%m-%Y %H:%M",
    "%d/%m/%Y %H:%M:%S%.f",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S%.f",
    "%m/%d/%Y %H:%M",
    "%d.%m.%Y %H:%M:%S%.f",
    "%d.%m.%Y %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
)


@dataclass(frozen=True, slots=True)
class ParsedTimes:
    """Seconds since the epoch (UTC; null where unparseable) and how the column was read."""

    seconds: pl.Series
    layouts: tuple[str, ...]
    failed: int
    examples: tuple[str, ...]


def parse_times(values: pl.Series) -> ParsedTimes:
    """Parse a column of timestamps (text, datetimes or epoch numbers) to epoch seconds.

    Naive times are taken as UTC. Numbers are epoch seconds, or milliseconds when they are
    too large to be seconds (after the year 5000).
    """
    name = values.name
    if values.dtype == pl.Datetime:
        dt = values if values.dtype.time_zone else values.dt.replace_time_zone("UTC")  # type: ignore[attr-defined]
        return ParsedTimes(_seconds(dt).alias(name), ("datetime",), 0, ())
    if values.dtype.is_numeric():
        x = values.cast(pl.Float64)
        x = pl.select(pl.when(x.abs() > 1e11).then(x / 1000.0).otherwise(x)).to_series()
        return ParsedTimes(x.alias(name), ("epoch",), 0, ())
    text = values.cast(pl.Utf8).str.strip_chars()
    present = text.is_not_null() & (text != "")
    result = pl.Series(name, [None] * len(text), dtype=pl.Float64)
    missing = present
    used: list[str] = []
    # Rank the layouts on a sample (trying every layout on millions of values costs seconds),
    # then apply them in that order only while values are left unparsed.
    sample = text.filter(present).gather_every(max(1, int(present.sum()) // 2000))
    ranked = sorted(LAYOUTS, key=lambda f: -int(_try(sample, f).is_not_null().sum()))
    for fmt in ranked:
        if not bool(missing.any()):
            break
        parsed = _try(text, fmt)
        take = missing & parsed.is_not_null()
        if not bool(take.any()):
            continue
        used.append(fmt)
        result = pl.select(pl.when(take).then(parsed).otherwise(result)).to_series()
        missing = missing & ~take
    bad = text.filter(missing)
    return ParsedTimes(
        result.alias(name),
        tuple(used),
        len(bad),
        tuple(bad.unique(maintain_order=True).head(3).to_list()),
    )


def _try(text: pl.Series, fmt: str) -> pl.Series:
    try:
        dt = text.str.to_datetime(fmt, strict=False, time_zone="UTC", time_unit="us")
    except pl.exceptions.PolarsError:  # a layout polars cannot use on this column
        return pl.Series([None] * len(text), dtype=pl.Float64)
    return _seconds(dt)


def _seconds(dt: pl.Series) -> pl.Series:
    return dt.dt.epoch("us").cast(pl.Float64) / 1_000_000.0
