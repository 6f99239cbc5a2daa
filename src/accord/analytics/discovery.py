"""Process discovery on an :class:`~accord.analytics.frame.EventLog`: all vectorized (polars).

Definitions follow pm4py's, so numbers can be checked against it:

- the **directly-follows graph** counts, for every pair of consecutive events of a case (in
  (case, time, position) order), the pair of their activities; its **performance** is the time
  from the first event to the second (to the second's *start* in an interval log);
- a **variant** is a case's sequence of activities; cases with the same sequence share it;
- a **case's duration** is the time from its first to its last event's timestamp, in log order.
"""

from __future__ import annotations

import polars as pl

from accord.analytics.frame import EventLog

SEP = "\x1f"  # joins activity names into one variant key; never in an activity name we keep


def directly_follows(log: EventLog) -> pl.DataFrame:
    """The DFG: one row per (from, to) with count and duration statistics in seconds.

    Columns: ``from``, ``to``, ``count``, ``mean_s``, ``median_s``, ``min_s``, ``max_s``,
    ``sum_s``, ``stdev_s``; sorted by count (descending), then names.
    """
    df = log.frame
    begin = pl.col("start_ts") if log.has_intervals else pl.col("ts")
    pairs = (
        df.lazy()
        .select(
            pl.col("activity").alias("from"),
            pl.col("activity").shift(-1).alias("to"),
            (begin.shift(-1) - pl.col("ts")).alias("d"),
            (pl.col("case") == pl.col("case").shift(-1)).alias("same"),
        )
        .filter(pl.col("same"))
    )
    return (
        pairs.group_by("from", "to")
        .agg(
            pl.len().alias("count"),
            pl.col("d").mean().alias("mean_s"),
            pl.col("d").median().alias("median_s"),
            pl.col("d").min().alias("min_s"),
            pl.col("d").max().alias("max_s"),
            pl.col("d").sum().alias("sum_s"),
            pl.col("d").std().alias("stdev_s"),
        )
        .sort(["count", "from", "to"], descending=[True, False, False])
        .collect()
    )


def cases(log: EventLog) -> pl.DataFrame:
    """One row per case: ``case``, ``start``, ``end``, ``duration_s``, ``events``, ``variant``.

    ``variant`` is the activity sequence joined with :data:`SEP`.
    """
    return (
        log.frame.lazy()
        .group_by("case", maintain_order=True)
        .agg(
            # first and last in log order (pm4py's definition; in an interval log, ordered by
            # start, the last event to start may end before another)
            pl.col("ts").first().alias("start"),
            pl.col("ts").last().alias("end"),
            pl.len().alias("events"),
            pl.col("activity").str.join(SEP).alias("variant"),
            pl.col("activity").first().alias("first"),
            pl.col("activity").last().alias("last"),
        )
        .with_columns((pl.col("end") - pl.col("start")).alias("duration_s"))
        .collect()
    )


def variants(case_table: pl.DataFrame) -> pl.DataFrame:
    """Variants by frequency: ``variant`` (list of activities), ``count``, ``share``,
    ``mean_duration_s``."""
    total = max(case_table.height, 1)
    return (
        case_table.group_by("variant")
        .agg(pl.len().alias("count"), pl.col("duration_s").mean().alias("mean_duration_s"))
        .sort(["count", "variant"], descending=[True, False])
        .with_columns(
            pl.col("variant").str.split(SEP).alias("variant"),
            (pl.col("count") / total).alias("share"),
        )
    )


def start_end(case_table: pl.DataFrame) -> tuple[dict[str, int], dict[str, int]]:
    """How many cases start, and end, with each activity."""
    starts = case_table.group_by("first").len().sort(["len", "first"], descending=[True, False])
    ends = case_table.group_by("last").len().sort(["len", "last"], descending=[True, False])
    return (
        {str(a): int(n) for a, n in starts.iter_rows()},
        {str(a): int(n) for a, n in ends.iter_rows()},
    )


def stats(values: pl.Series) -> dict[str, float | None]:
    """mean, median, p90, p95, min and max of a series of seconds (None when empty)."""
    if values.len() == 0:
        return dict.fromkeys(("mean", "median", "p90", "p95", "min", "max"))
    row = values.to_frame("x").select(
        pl.col("x").mean().alias("mean"),
        pl.col("x").median().alias("median"),
        pl.col("x").quantile(0.9, "linear").alias("p90"),
        pl.col("x").quantile(0.95, "linear").alias("p95"),
        pl.col("x").min().alias("min"),
        pl.col("x").max().alias("max"),
    )
    return {k: (None if v is None else float(v)) for k, v in row.row(0, named=True).items()}


def histogram(values: pl.Series, bins: int = 30) -> dict[str, list[float] | list[int]]:
    """Equal-width bins from 0 to the 99th percentile, plus one bin for everything above."""
    x = values.drop_nulls()
    if x.len() == 0:
        return {"edges": [], "counts": []}
    hi = float(x.quantile(0.99, "linear") or 0.0)
    top = float(x.max())  # type: ignore[arg-type]
    if hi <= 0:
        hi = top or 1.0
    width = hi / bins
    idx = (x / width).floor().clip(0, bins).cast(pl.Int64)
    counts = idx.value_counts().sort(idx.name)
    table = dict(zip(counts[idx.name].to_list(), counts["count"].to_list(), strict=True))
    edges = [i * width for i in range(bins + 1)]
    out = [int(table.get(i, 0)) for i in range(bins + 1)]
    if out[-1] == 0:
        out.pop()
    else:
        edges.append(top)
    return {"edges": edges, "counts": out}


def activity_counts(log: EventLog) -> list[dict[str, object]]:
    """Per activity: how many events and how many cases hold it, most frequent first."""
    return (
        log.frame.group_by("activity")
        .agg(pl.len().alias("events"), pl.col("case").n_unique().alias("cases"))
        .sort(["events", "activity"], descending=[True, False])
        .to_dicts()
    )
