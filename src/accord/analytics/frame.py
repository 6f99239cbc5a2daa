"""The columnar event log every analysis reads, whatever file or runtime it came from.

An :class:`EventLog` is a polars frame with one row per event and these columns:

=========  =======  ==========================================================================
column     type     meaning
=========  =======  ==========================================================================
case       str      case id (XES ``case:concept:name``)
activity   str      activity name (XES ``concept:name``; accord: the step's name)
ts         f64      when it happened, seconds since the epoch (UTC)
start_ts   f64      when the activity started, for interval logs (else null)
lifecycle  str      ``start`` / ``complete`` / ... (XES ``lifecycle:transition``), or null
resource   str      who did it (XES ``org:resource``; accord: the member), or null
team       str      the resource's group (XES ``org:group``; accord: the team), or null
pos        i64      position in the source, the tie-breaker for equal timestamps
=========  =======  ==========================================================================

Rows are sorted by (case, ts, pos), the order pm4py uses, so directly-follows relations and
variants agree with it. An interval log (one with start timestamps) is sorted by (case, start,
ts, pos) instead, again as pm4py does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from accord.errors import AccordError

SCHEMA: dict[str, Any] = {
    "case": pl.Utf8,
    "activity": pl.Utf8,
    "ts": pl.Float64,
    "start_ts": pl.Float64,
    "lifecycle": pl.Utf8,
    "resource": pl.Utf8,
    "team": pl.Utf8,
    "pos": pl.Int64,
}


class LogError(AccordError):
    """An event log cannot be read: the file, and where and why, are in the message."""


@dataclass
class Skipped:
    """What an import left out and why, so a report can say so with counts."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, reason: str, n: int = 1, example: str | None = None) -> None:
        """Count ``n`` items skipped for ``reason`` (keep the first example for the message)."""
        if n <= 0:
            return
        self.counts[reason] = self.counts.get(reason, 0) + n
        if example is not None and reason not in self.examples:
            self.examples[reason] = example

    def messages(self) -> list[str]:
        """One readable line per reason: count, reason and an example."""
        out = []
        for reason, n in sorted(self.counts.items(), key=lambda kv: -kv[1]):
            ex = self.examples.get(reason)
            out.append(f"{n} skipped: {reason}" + (f" (first: {ex})" if ex else ""))
        return out


@dataclass
class EventLog:
    """An imported or converted event log: the frame, where it came from, what was skipped."""

    frame: pl.DataFrame
    source: str
    format: str
    skipped: Skipped = field(default_factory=Skipped)
    notes: list[str] = field(default_factory=list)

    @property
    def events(self) -> int:
        """Number of events kept."""
        return self.frame.height

    @property
    def has_lifecycle(self) -> bool:
        """Whether events carry start/complete transitions (so work time can be measured)."""
        lc = self.frame["lifecycle"]
        return bool(lc.is_not_null().any()) and bool((lc.str.to_lowercase() == "start").any())

    @property
    def has_intervals(self) -> bool:
        """Whether events carry their own start timestamps (an interval log)."""
        return bool(self.frame["start_ts"].is_not_null().any())

    def warnings(self) -> list[str]:
        """Everything the user should know about how the file was read."""
        return [*self.skipped.messages(), *self.notes]


def build(
    columns: dict[str, pl.Series | list[Any]],
    *,
    source: str,
    fmt: str,
    skipped: Skipped | None = None,
    notes: list[str] | None = None,
) -> EventLog:
    """Make an :class:`EventLog` from raw columns: drop unusable rows (counted), type and sort.

    ``columns`` must hold ``case``, ``activity`` and ``ts`` (epoch seconds) and may hold the
    other columns of :data:`SCHEMA`; ``pos`` defaults to the row order.
    """
    skipped = skipped or Skipped()
    n = len(columns["case"])
    data: dict[str, pl.Series] = {}
    for name, dtype in SCHEMA.items():
        col = columns.get(name)
        if col is None:
            data[name] = (
                pl.int_range(0, n, eager=True).cast(pl.Int64).alias(name)
                if name == "pos"
                else pl.Series(name, [None] * n, dtype=dtype)
            )
        else:
            series = col if isinstance(col, pl.Series) else pl.Series(name, col, strict=False)
            data[name] = series.alias(name).cast(dtype, strict=False)
    df = pl.DataFrame(data)
    for name, reason in (
        ("case", "events without a case id"),
        ("activity", "events without an activity name"),
        ("ts", "events without a usable timestamp"),
    ):
        bad = df[name].is_null()
        if name != "ts":
            bad = bad | (df[name] == "")
        nbad = int(bad.sum())
        if nbad:
            skipped.add(reason, nbad)
            df = df.filter(~bad)
    keys = ["case", "start_ts", "ts", "pos"] if bool(df["start_ts"].is_not_null().any()) else None
    if keys:
        # pm4py sorts interval logs by start then end; a missing start sorts as its end.
        df = df.with_columns(pl.col("start_ts").fill_null(pl.col("ts")))
    df = df.sort(keys or ["case", "ts", "pos"])
    return EventLog(df, source, fmt, skipped, list(notes or []))


def empty_error(log: EventLog) -> LogError:
    """The error for a log with no usable event, naming everything that was skipped."""
    why = "; ".join(log.skipped.messages()) or "the file holds no events"
    return LogError(f"{log.source}: no usable events ({why})")
