"""Run measures over accord's own event log, whatever mode produced it (columnar, polars).

Where :func:`accord.analytics.metrics.summarize` gives ``accord run`` its headline numbers,
:func:`measure` gives the full picture, with quantiles everywhere:

- **cycle time** per case; **wait** (ready -> work began: started, else claimed) and **work**
  (work began -> completed) per step and per team, over task attempts;
- **handoffs**: latency (the handoff -> the receiving task picked up) per team pair, and the
  **handoff error rate**: handoffs whose work was rejected or sent back for rework by the
  receiving step, bounced straight back to the sending team, or reassigned to another team,
  over all handoffs;
- **rework** per step (visits after the first), **SLA breaches** per step;
- **throughput** and **WIP** over time; per team **utilisation** (work time over members x
  span) and **queue length** (mean and peak number of tasks waiting for the team);
- **hub load** (what the hub did: assignments, hub-run tasks, peak per hour) and
  **coordination messages per case**;
- **team satisfaction** from task feedback (``{"feedback": {"rating": 1-5, "comment": ...}}``
  in a completion's data), when any was given.

Wait, work, handoff latency, team load and coordination messages come from
:mod:`accord.analytics.tally`, as in ``accord run`` and ``accord compare``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import polars as pl

from accord.analytics import discovery, trends
from accord.analytics.tally import ATTEMPT_COLUMNS, SENT_BACK, Tally, by_hub, tally
from accord.events import Event, EventType

_ATTEMPT_SCHEMA = dict.fromkeys(ATTEMPT_COLUMNS, pl.Utf8) | dict.fromkeys(
    ("ready", "taken", "ended", "wait_s", "work_s", "rating"), pl.Float64
) | dict.fromkeys(("hub", "first", "completed"), pl.Boolean)  # fmt: skip


def frame(events: Iterable[Event]) -> pl.DataFrame:
    """accord events as a frame: one row per event with the fields the measures use."""
    cols: dict[str, list[Any]] = {
        k: [] for k in ("type", "case", "at", "seq", "step", "actor", "by_hub", "hub")
    }
    ready = EventType.TASK_READY
    for e in events:
        cols["type"].append(e.type.value)
        cols["case"].append(e.case)
        cols["at"].append(e.at)
        cols["seq"].append(e.seq)
        cols["step"].append(e.step)
        cols["actor"].append(e.actor)
        cols["by_hub"].append(by_hub(e.actor))
        cols["hub"].append(e.data.get("hub") if e.type is ready else None)
    schema = {"at": pl.Float64, "seq": pl.Int64, "hub": pl.Boolean, "by_hub": pl.Boolean}
    return pl.DataFrame(
        {k: pl.Series(k, v, dtype=schema.get(k, pl.Utf8), strict=False) for k, v in cols.items()}
    ).sort(["case", "seq"])


def _q(col: str) -> list[pl.Expr]:
    return [
        pl.col(col).median().alias(f"{col}_p50"),
        pl.col(col).quantile(0.9, "linear").alias(f"{col}_p90"),
        pl.col(col).quantile(0.95, "linear").alias(f"{col}_p95"),
        pl.col(col).mean().alias(f"{col}_mean"),
    ]


def tasks(tl: Tally) -> pl.DataFrame:
    """One row per task attempt (:data:`accord.analytics.tally.ATTEMPT_COLUMNS`: ready, taken,
    ended, wait_s, work_s, ...) and its ``visit`` of the step."""
    return pl.DataFrame(tl.attempts, schema=_ATTEMPT_SCHEMA, orient="row").with_columns(
        pl.col("task").str.split(":").list.last().cast(pl.Int64, strict=False).alias("visit")
    )


def measure(events: Iterable[Event]) -> dict[str, Any]:
    """Every run measure of an accord event log (see the module docstring)."""
    events = events if isinstance(events, list) else list(events)
    df = frame(events)
    if df.height == 0:
        return {"events": 0}
    tl = tally(events)
    tk = tasks(tl)
    offers = tk.filter(pl.col("first"))  # one row per task
    t = pl.col("type")
    span = float(df.select(pl.col("at").max() - pl.col("at").min()).item() or 0.0) or 1.0
    cases = (
        df.group_by("case")
        .agg(
            pl.col("at").filter(t == "case.started").first().alias("start"),
            pl.col("at").filter(t == "case.completed").first().alias("end"),
        )
        .with_columns((pl.col("end") - pl.col("start")).alias("duration_s"))
    )
    done = cases.filter(pl.col("duration_s").is_not_null())
    per_step = (
        tk.group_by("step")
        .agg(
            pl.col("first").sum().alias("tasks"),
            pl.col("completed").sum().alias("completed"),
            ((pl.col("visit") > 1) & pl.col("first")).sum().alias("rework"),
            *_q("wait_s"),
            *_q("work_s"),
        )
        .with_columns((pl.col("rework") / pl.col("tasks")).alias("rework_rate"))
        .join(
            df.filter(t == "sla.breached").group_by("step").len().rename({"len": "sla_breaches"}),
            on="step",
            how="left",
        )
        .with_columns(pl.col("sla_breaches").fill_null(0))
        .sort("step")
    )
    return {
        "events": df.height,
        "cases": cases.height,
        "cases_completed": done.height,
        "cycle_time_s": discovery.stats(done["duration_s"]),
        "wait_s": discovery.stats(tk["wait_s"].drop_nulls()),
        "work_s": discovery.stats(tk["work_s"].drop_nulls()),
        "steps": {r.pop("step"): r for r in per_step.to_dicts()},
        "teams": _teams(tk, span),
        "handoffs": _handoffs(tl, tk),
        "rework_rate": float((offers["visit"] > 1).mean() or 0.0),  # type: ignore[arg-type]
        "sla_breaches": int((df["type"] == "sla.breached").sum()),
        "timeline": trends.timeline(done.select("case", "start", "end")),
        "wip_mean": float(done["duration_s"].sum()) / span,
        "hub": _hub(df, span, tl.hub_assignments),
        "coordination_per_case": discovery.stats(
            pl.Series(list(tl.messages().values()), dtype=pl.Float64)
        ),
        "satisfaction": _satisfaction(tk),
    }


def _teams(tk: pl.DataFrame, span: float) -> dict[str, Any]:
    members = (
        tk.filter(pl.col("assignee").is_not_null())
        .group_by("team")
        .agg(pl.col("assignee").n_unique().alias("members"))
    )
    # queue length: +1 when a task is offered to the team, -1 when work on it begins (or it
    # ends untaken), so the peak counts what the waits measure
    moves = pl.concat([
        tk.select("team", pl.col("ready").alias("at"), pl.lit(1).alias("d")),
        tk.filter(pl.col("ready").is_not_null())
        .select("team", pl.coalesce("taken", "ended").alias("at"), pl.lit(-1).alias("d")),
    ]).drop_nulls()  # fmt: skip
    peaks = (
        moves.sort(["team", "at", "d"])
        .with_columns(pl.col("d").cum_sum().over("team").alias("q"))
        .group_by("team")
        .agg(pl.col("q").max().alias("queue_peak"))
    )
    out = (
        tk.group_by("team")
        .agg(
            pl.col("first").sum().alias("tasks"),
            pl.col("work_s").sum().alias("work_total_s"),
            pl.col("wait_s").sum().alias("wait_total_s"),
            *_q("wait_s"),
            *_q("work_s"),
        )
        .join(members, on="team", how="left")
        .join(peaks, on="team", how="left")
        .with_columns(
            (pl.col("work_total_s") / (pl.col("members").fill_null(1) * span)).alias("utilisation"),
            (pl.col("wait_total_s") / span).alias("queue_mean"),
        )
        .filter(pl.col("team").is_not_null())
        .sort("team")
    )
    return {r.pop("team"): r for r in out.to_dicts()}


def _handoffs(tl: Tally, tk: pl.DataFrame) -> dict[str, Any]:
    hand = pl.DataFrame(
        tl.handoffs,
        schema={"case": pl.Utf8, "seq": pl.Int64, "at": pl.Float64, "from_team": pl.Utf8,
                "to_team": pl.Utf8, "task": pl.Utf8, "latency_s": pl.Float64},
    ).rename({"from_team": "from", "to_team": "to"})  # fmt: skip
    if hand.height == 0:
        return {"count": 0, "error_rate": None, "latency_s": discovery.stats(pl.Series([]))}
    final = tk.group_by("task").agg(
        pl.col("outcome").filter(pl.col("completed")).last(),
        pl.col("team").last().alias("final_team"),
    )
    hand = hand.join(final, on="task", how="left").with_columns(
        pl.col("outcome").is_in(SENT_BACK).fill_null(False).alias("sent_back"),
        (pl.col("final_team").is_not_null() & (pl.col("final_team") != pl.col("to"))).alias(
            "reassigned"
        ),
    )
    hand = hand.sort(["case", "at", "seq"]).with_columns(
        (
            (pl.col("from").shift(-1).over("case") == pl.col("to"))
            & (pl.col("to").shift(-1).over("case") == pl.col("from"))
            & pl.col("sent_back")
        ).alias("bounced")
    )
    bad = hand["sent_back"] | hand["reassigned"] | hand["bounced"].fill_null(False)
    pairs = (
        hand.group_by("from", "to")
        .agg(
            pl.len().alias("count"), *_q("latency_s"), pl.col("sent_back").sum().alias("sent_back")
        )
        .sort(["count", "from", "to"], descending=[True, False, False])
    )
    return {
        "count": hand.height,
        "latency_s": discovery.stats(hand["latency_s"].drop_nulls()),
        "errors": int(bad.sum()),
        "error_rate": float(bad.mean() or 0.0),  # type: ignore[arg-type]
        "sent_back": int(hand["sent_back"].sum()),
        "reassigned": int(hand["reassigned"].sum()),
        "pairs": pairs.to_dicts(),
    }


def _hub(df: pl.DataFrame, span: float, assignments: int) -> dict[str, Any]:
    hub_rows = df.filter(pl.col("by_hub") | pl.col("hub").fill_null(False))
    per_hour = hub_rows.group_by((pl.col("at") // 3600).alias("h")).len()
    ready = df.filter(pl.col("type") == "task.ready")
    return {
        "events": hub_rows.height,
        "assignments": assignments,
        "tasks_on_hub": int(ready["hub"].fill_null(False).sum()),
        "tasks_local": int((~ready["hub"].fill_null(True)).sum()),
        "per_hour_mean": hub_rows.height / (span / 3600.0) if span else None,
        "per_hour_peak": int(per_hour["len"].max() or 0) if per_hour.height else 0,  # type: ignore[arg-type]
        "share_of_events": hub_rows.height / df.height,
    }


def _satisfaction(tk: pl.DataFrame) -> dict[str, Any] | None:
    rated = tk.filter(pl.col("rating").is_between(1, 5))
    if rated.height == 0:
        return None
    by = {
        name: {r.pop(name): r for r in rated.group_by(name).agg(
            pl.len().alias("ratings"), pl.col("rating").mean().alias("mean")
        ).sort(name).to_dicts()}
        for name in ("team", "step")
    }  # fmt: skip
    dist = rated.group_by(pl.col("rating").round(0).cast(pl.Int64)).len().sort("rating")
    comments = rated.filter(pl.col("comment").is_not_null() & (pl.col("comment") != ""))
    return {
        "ratings": rated.height,
        "mean": float(rated["rating"].mean()),  # type: ignore[arg-type]
        "distribution": {str(r): n for r, n in dist.iter_rows()},
        "by_team": by["team"],
        "by_step": by["step"],
        "comments": comments.height,
        "lowest": comments.sort("rating").head(5).select("step", "team", "rating", "comment")
        .to_dicts(),
    }  # fmt: skip
