"""The audit of an existing process from its event log: one JSON-ready object.

``audit(log)`` discovers the process (directly-follows graph with frequencies and durations,
variants, start and end activities, case durations), ranks bottlenecks, finds rework loops,
duplicated effort, silos and the handover-of-work network, and the signs that it is time to
change. The CLI prints it (``accord audit LOG --json``) or renders it (``--html``).
"""

from __future__ import annotations

import math
from typing import Any, cast

import polars as pl

from accord.analytics import discovery, findings, trends
from accord.analytics.frame import EventLog

TOP_VARIANTS = 20


def audit(log: EventLog) -> dict[str, Any]:
    """Everything the audit reports about ``log`` (see docs/analytics.md for each key)."""
    df = log.frame
    case_table = discovery.cases(log)
    dfg = discovery.directly_follows(log)
    variants = discovery.variants(case_table)
    starts, ends = discovery.start_end(case_table)
    items = findings.work_items(log)
    hand = findings.handoffs(items)
    network = findings.handover_network(hand)
    silos = findings.silos(items, network)
    rework = findings.rework(items)
    dup = findings.duplication(items)
    per_case = _per_case(case_table, items, hand)
    team_col = "team" if bool(df["team"].is_not_null().any()) else "resource"
    report: dict[str, Any] = {
        "source": log.source,
        "format": log.format,
        "cases": case_table.height,
        "events": df.height,
        "activities": df["activity"].n_unique(),
        "variants": variants.height,
        "resources": int(df["resource"].drop_nulls().n_unique()),
        "teams": int(df["team"].drop_nulls().n_unique()),
        "lifecycle": log.has_lifecycle,
        "intervals": log.has_intervals,
        "period": {"first": float(df["ts"].min()), "last": float(df["ts"].max())},  # type: ignore[arg-type]
        "case_duration_s": discovery.stats(case_table["duration_s"]),
        "case_duration_histogram": discovery.histogram(case_table["duration_s"]),
        "activity_counts": discovery.activity_counts(log),
        "start_activities": starts,
        "end_activities": ends,
        "dfg": [
            {
                "from": r["from"],
                "to": r["to"],
                "count": r["count"],
                "mean_s": r["mean_s"],
                "median_s": r["median_s"],
                "max_s": r["max_s"],
                "sum_s": r["sum_s"],
            }
            for r in dfg.iter_rows(named=True)
        ],
        "top_variants": [
            {
                "activities": r["variant"],
                "count": r["count"],
                "share": r["share"],
                "mean_duration_s": r["mean_duration_s"],
            }
            for r in variants.head(TOP_VARIANTS).iter_rows(named=True)
        ],
        "wait_s": discovery.stats(items["wait_s"].drop_nulls()),
        "work_s": discovery.stats(items["work_s"].drop_nulls()),
        "bottlenecks": findings.bottlenecks(items),
        "rework": rework,
        "duplication": dup,
        "handoffs": {
            "count": hand.height,
            "by": team_col,
            "per_case": hand.height / max(case_table.height, 1),
            "latency_s": discovery.stats(hand["latency_s"].drop_nulls()),
        },
        "handover_network": network[:50],
        "silos": silos,
        "timeline": trends.timeline(case_table),
        "signs": trends.signs(case_table, per_case, silos),
        "warnings": log.warnings(),
    }
    return cast(dict[str, Any], clean(report))


def _per_case(case_table: pl.DataFrame, items: pl.DataFrame, hand: pl.DataFrame) -> pl.DataFrame:
    rework = items.group_by("case").agg((pl.col("visit").max() > 1).cast(pl.Int8).alias("rework"))
    dup = (
        items.filter(pl.col("who").is_not_null())
        .group_by("case", "activity")
        .agg(pl.col("who").n_unique().alias("n"))
        .group_by("case")
        .agg((pl.col("n").max() > 1).cast(pl.Int8).alias("duplication"))
    )
    lat = hand.group_by("case").agg(pl.col("latency_s").mean().alias("handoff_latency_s"))
    return (
        case_table.select("case")
        .join(rework, on="case", how="left")
        .join(dup, on="case", how="left")
        .join(lat, on="case", how="left")
        .with_columns(pl.col("duplication").fill_null(0))
    )


def clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null, tuples become lists, numbers stay numbers."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
