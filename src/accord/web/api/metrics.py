"""Metrics: the run measures of accord.analytics over the event log, plus the live load.

``summary`` is :func:`accord.analytics.metrics.summarize` (the headline numbers ``accord run``
prints); ``measures`` is :func:`accord.analytics.measures.measure` (cycle time distribution,
wait and work per step and team, handoff latency and error rate, rework, SLA breaches,
throughput over time, hub load, team satisfaction from task feedback); ``load`` is read from the
task queue now: per team, how many tasks are ready, claimed, waiting and failed, and how long
the oldest ready one has waited.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from accord.analytics.audit import clean
from accord.analytics.measures import measure
from accord.analytics.metrics import summarize
from accord.central.engine import Engine
from accord.events import Event
from accord.web.accounts import User
from accord.web.api.schemas import PROCESS_PATTERN
from accord.web.deps import api_user, get_engine
from accord.web.problems import responses

router = APIRouter(tags=["metrics"], responses=responses(401, 422))


class TeamLoad(BaseModel):
    ready: int = 0
    claimed: int = 0
    waiting: int = 0
    failed: int = 0
    oldest_ready_s: float | None = None


class MetricsOut(BaseModel):
    process: str | None
    cases: dict[str, int]
    load: dict[str, TeamLoad]
    summary: dict[str, Any]
    measures: dict[str, Any]


def _events(
    engine: Engine, process: str | None, since: float | None, until: float | None
) -> list[Event]:
    out = []
    for _, e in engine.store.events():
        if process is not None:
            name = e.process if "@" in process else e.process.split("@", 1)[0]
            if name != process:
                continue
        if since is not None and e.at < since:
            continue
        if until is not None and e.at >= until:
            continue
        out.append(e)
    return out


def team_load(engine: Engine, process: str | None = None) -> dict[str, TeamLoad]:
    """Open tasks per team, now."""
    now = time.time()
    loads: dict[str, TeamLoad] = {}
    for status in ("ready", "claimed", "waiting", "failed"):
        for row in engine.tasks(status=status):
            if process is not None and row.process.split("@", 1)[0] != process.split("@")[0]:
                continue
            load = loads.setdefault(row.team or "(none)", TeamLoad())
            setattr(load, status, getattr(load, status) + 1)
            if status == "ready":
                age = max(0.0, now - row.ready_at)
                load.oldest_ready_s = max(load.oldest_ready_s or 0.0, round(age, 3))
    return dict(sorted(loads.items()))


def case_counts(engine: Engine, process: str | None = None) -> dict[str, int]:
    """Cases per status (of one process: ``id`` for every version, or ``id@version``)."""
    if process is None:
        return engine.store.count_cases()
    if "@" in process:
        where, args = "process = ?", [process]
    else:
        where, args = "substr(process, 1, ?) = ?", [str(len(process) + 1), process + "@"]
    rows = engine.store.run_sql(
        f"SELECT status, count(*) FROM cases WHERE {where} GROUP BY status", args
    )
    return {str(r[0]): int(r[1]) for r in rows}


@router.get("/metrics", response_model=MetricsOut)
def metrics(
    user: Annotated[User, Depends(api_user)],
    engine: Annotated[Engine, Depends(get_engine)],
    process: Annotated[str | None, Query(pattern=PROCESS_PATTERN)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> MetricsOut:
    """Measures of the cases' events (of one process, within a time window), and the load."""
    events = _events(
        engine,
        process,
        since.timestamp() if since is not None else None,
        until.timestamp() if until is not None else None,
    )
    counts = dict.fromkeys(("running", "paused", "completed", "cancelled"), 0)
    counts.update(case_counts(engine, process))
    return MetricsOut(
        process=process,
        cases=counts,
        load=team_load(engine, process),
        summary=clean(summarize(events)),
        measures=clean(measure(events)),
    )
