"""What an audit looks for: where waiting accumulates, rework, duplicated effort, handoffs, silos.

Everything here works on **work items** (activity instances): one row per execution of an
activity in a case, with when it became ready, started and ended, and who did it.

- In a log with lifecycle transitions, the n-th ``start`` of an activity in a case is paired
  with its n-th ``complete``; an interval log carries the start on the event itself.
- An item is *ready* when the case's previous item ended (or the case began). Its **wait** is
  ready -> start and its **work** is start -> end. With only completion times the start is
  unknown, and the wait is the whole time since the previous event (wait and work together),
  as is usual in process mining.
- A **handoff** is two consecutive items of a case done by different teams (by different
  resources when the log names no teams); its **latency** is from the first item's end to the
  second's start (or end, when starts are unknown).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from accord.analytics.frame import EventLog


def work_items(log: EventLog) -> pl.DataFrame:
    """One row per activity instance, ordered by case and end time.

    Columns: ``case``, ``activity``, ``resource``, ``team``, ``who`` (team, else resource),
    ``start`` (null when unknown), ``end``, ``ready``, ``wait_s``, ``work_s``, ``visit``
    (1 for the first execution of this activity in the case, 2 for the second...).
    """
    df = log.frame
    if log.has_lifecycle:
        lc = pl.col("lifecycle").str.to_lowercase()
        ends = df.filter(lc.is_null() | (lc == "complete")).with_columns(
            pl.int_range(pl.len()).over("case", "activity").alias("k")
        )
        starts = (
            df.filter(lc == "start")
            .with_columns(pl.int_range(pl.len()).over("case", "activity").alias("k"))
            .select(
                "case",
                "activity",
                "k",
                pl.col("ts").alias("start"),
                pl.col("resource").alias("start_resource"),
            )
        )
        items = ends.join(starts, on=["case", "activity", "k"], how="left").with_columns(
            pl.col("resource").fill_null(pl.col("start_resource"))
        )
    elif log.has_intervals:
        items = df.with_columns(pl.col("start_ts").alias("start"))
    else:
        items = df.with_columns(pl.lit(None, dtype=pl.Float64).alias("start"))
    return (
        items.lazy()
        .select(
            "case",
            "activity",
            "resource",
            "team",
            pl.coalesce("team", "resource").alias("who"),
            "start",
            pl.col("ts").alias("end"),
            "pos",
        )
        .sort(["case", "end", "pos"])
        .with_columns(
            pl.col("end").shift(1).over("case").alias("prev_end"),
            pl.col("start").min().over("case").alias("case_start"),
            pl.col("end").min().over("case").alias("case_first_end"),
        )
        .with_columns(
            pl.coalesce("prev_end", "case_start", "case_first_end").alias("ready"),
        )
        .with_columns(
            (pl.coalesce("start", "end") - pl.col("ready")).clip(lower_bound=0.0).alias("wait_s"),
            (pl.col("end") - pl.col("start")).alias("work_s"),
            pl.int_range(1, pl.len() + 1).over("case", "activity").alias("visit"),
        )
        .drop("prev_end", "case_start", "case_first_end", "pos")
        .collect()
    )


def bottlenecks(items: pl.DataFrame, top: int = 10) -> list[dict[str, Any]]:
    """Activities ranked by the total time work waited before them (where waiting accumulates)."""
    total = float(items["wait_s"].sum() or 0.0)
    ranked = (
        items.group_by("activity")
        .agg(
            pl.len().alias("items"),
            pl.col("wait_s").sum().alias("wait_total_s"),
            pl.col("wait_s").mean().alias("wait_mean_s"),
            pl.col("wait_s").median().alias("wait_median_s"),
            pl.col("wait_s").quantile(0.95, "linear").alias("wait_p95_s"),
            pl.col("work_s").median().alias("work_median_s"),
        )
        .sort(["wait_total_s", "activity"], descending=[True, False])
        .head(top)
    )
    out = []
    for rank, row in enumerate(ranked.iter_rows(named=True), 1):
        row["rank"] = rank
        row["share"] = row["wait_total_s"] / total if total else 0.0
        out.append(row)
    return out


def rework(items: pl.DataFrame, top: int = 10) -> dict[str, Any]:
    """Activities done more than once in a case, and the loops that bring work back."""
    cases = max(items["case"].n_unique(), 1)
    per = (
        items.group_by("activity")
        .agg(
            pl.col("case").n_unique().alias("cases"),
            pl.col("case").filter(pl.col("visit") > 1).n_unique().alias("rework_cases"),
            (pl.col("visit") > 1).sum().alias("extra_runs"),
        )
        .filter(pl.col("rework_cases") > 0)
        .with_columns((pl.col("rework_cases") / pl.col("cases")).alias("rate"))
        .sort(["rework_cases", "activity"], descending=[True, False])
    )
    cases_with = items.filter(pl.col("visit") > 1)["case"].n_unique()
    return {
        "cases_with_rework": cases_with,
        "rate": cases_with / cases,
        "activities": per.head(top).to_dicts(),
        "loops": loops(items, top),
    }


def loops(items: pl.DataFrame, top: int = 10) -> list[dict[str, Any]]:
    """The most frequent loops ``a -> ... -> a``: the path work took before coming back.

    Counted once per distinct sequence of work items and weighted by how many cases share it,
    so the Python loop runs over variants, not cases.
    """
    seqs = (
        items.group_by("case", maintain_order=True)
        .agg(pl.col("activity"))
        .filter(pl.col("activity").list.len() > pl.col("activity").list.n_unique())
        .group_by(pl.col("activity").list.join("\x1f").alias("seq"))
        .len()
    )
    counts: dict[tuple[str, ...], int] = {}
    for seq, n in seqs.iter_rows():
        acts = seq.split("\x1f")
        last: dict[str, int] = {}
        seen: set[tuple[str, ...]] = set()
        for j, a in enumerate(acts):
            i = last.get(a)
            if i is not None:
                loop = tuple(acts[i : j + 1])
                if loop not in seen:  # count a loop once per case
                    seen.add(loop)
                    counts[loop] = counts.get(loop, 0) + n
            last[a] = j
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [{"loop": list(loop), "cases": n} for loop, n in ranked]


def duplication(items: pl.DataFrame, top: int = 10) -> dict[str, Any]:
    """The same activity done more than once in a case by different teams (or resources)."""
    cases = max(items["case"].n_unique(), 1)
    groups = (
        items.filter(pl.col("who").is_not_null())
        .group_by("case", "activity")
        .agg(pl.col("who").n_unique().alias("whos"), pl.col("who").unique().alias("by"))
        .filter(pl.col("whos") > 1)
    )
    per = (
        groups.group_by("activity")
        .agg(pl.len().alias("cases"))
        .sort(["cases", "activity"], descending=[True, False])
    )
    dup_cases = groups["case"].n_unique()
    return {
        "cases_with_duplication": dup_cases,
        "rate": dup_cases / cases,
        "activities": per.head(top).to_dicts(),
    }


def handoffs(items: pl.DataFrame) -> pl.DataFrame:
    """Every handoff: ``case``, ``from``, ``to`` (teams), ``from_activity``, ``to_activity``,
    ``at`` (when the work was handed over) and ``latency_s``."""
    return (
        items.lazy()
        .with_columns(
            pl.col("who").shift(-1).over("case").alias("to"),
            pl.col("activity").shift(-1).over("case").alias("to_activity"),
            (
                pl.coalesce(pl.col("start").shift(-1), pl.col("end").shift(-1)).over("case")
                - pl.col("end")
            ).alias("latency_s"),
        )
        .filter(
            pl.col("to").is_not_null()
            & pl.col("who").is_not_null()
            & (pl.col("to") != pl.col("who"))
        )
        .select(
            "case",
            pl.col("who").alias("from"),
            "to",
            pl.col("activity").alias("from_activity"),
            "to_activity",
            pl.col("end").alias("at"),
            pl.col("latency_s").clip(lower_bound=0.0),
        )
        .collect()
    )


def handover_network(hand: pl.DataFrame) -> list[dict[str, Any]]:
    """The handover-of-work network: for each (from, to), how often and how slowly."""
    return (
        hand.group_by("from", "to")
        .agg(
            pl.len().alias("count"),
            pl.col("latency_s").mean().alias("mean_s"),
            pl.col("latency_s").median().alias("median_s"),
            pl.col("latency_s").quantile(0.95, "linear").alias("p95_s"),
        )
        .sort(["count", "from", "to"], descending=[True, False, False])
        .to_dicts()
    )


def silos(items: pl.DataFrame, network: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Team pairs that hand work over far more slowly than the rest, and pairs that share many
    cases but never hand over directly (work goes round through others)."""
    out: list[dict[str, Any]] = []
    meds = sorted(float(e["median_s"]) for e in network if e["median_s"] is not None)
    if len(meds) >= 3:
        typical = meds[len(meds) // 2]
        for e in network:
            slow = e["median_s"] is not None and float(e["median_s"]) > 3 * typical
            if slow and e["count"] >= 5 and typical > 0:
                out.append(
                    {
                        "kind": "slow handoffs",
                        "teams": [e["from"], e["to"]],
                        "count": e["count"],
                        "median_s": e["median_s"],
                        "typical_median_s": typical,
                        "evidence": f"{e['from']} -> {e['to']}: median handoff "
                        f"{e['median_s'] / typical:.1f}x the typical pair's "
                        f"({e['count']} handoffs)",
                    }
                )
    direct = {(e["from"], e["to"]) for e in network} | {(e["to"], e["from"]) for e in network}
    who_cases = items.filter(pl.col("who").is_not_null()).select("case", "who").unique()
    cases = max(items["case"].n_unique(), 1)
    pairs = (
        who_cases.join(who_cases, on="case", suffix="_b")
        .filter(pl.col("who") < pl.col("who_b"))
        .group_by("who", "who_b")
        .len()
        .filter(pl.col("len") >= 0.2 * cases)
        .sort(["len", "who", "who_b"], descending=[True, False, False])
    )
    if len({w for w, _ in direct}) >= 2 and pairs.height <= 200:
        for a, b, n in pairs.iter_rows():
            if (a, b) not in direct:
                out.append(
                    {
                        "kind": "no direct handoffs",
                        "teams": [a, b],
                        "shared_cases": n,
                        "evidence": f"{a} and {b} work on {n / cases:.0%} of the same cases "
                        "but never hand work to each other directly",
                    }
                )
    return out
