"""The run summary: cycle time, wait vs work, handoff latency, throughput, SLA breaches, load.

It reads nothing but events, so a central run, a choreographed run and a simulated run are
measured by the same code with the same vocabulary.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from accord.analytics.tally import Tally, tally
from accord.events import Event, EventType


def quantile(values: list[float], q: float) -> float | None:
    """Linear-interpolated quantile (numpy's default method); None for no data."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def summarize(events: Iterable[Event], mode: str = "central") -> dict[str, Any]:
    """One summary object of a run (the keys `accord run --json` prints).

    Wait, work, handoff latency and team load are those of :mod:`accord.analytics.tally`, the
    same numbers ``accord audit`` and ``accord compare`` report.
    """
    return summary_of(tally(events), mode)


def summary_of(tl: Tally, mode: str = "central") -> dict[str, Any]:
    """:func:`summarize` of an already tallied run."""
    waits: dict[str, list[float]] = defaultdict(list)
    works: dict[str, list[float]] = defaultdict(list)
    completed: dict[str, int] = defaultdict(int)
    team_tasks: dict[str, int] = defaultdict(int)
    team_work: dict[str, float] = defaultdict(float)
    team_wait: dict[str, list[float]] = defaultdict(list)
    for row in tl.attempts:
        _task, _case, step, team, _hub, first, _ready, _taken, _end, done, wait, work = row[:12]
        if wait is not None:
            waits[step].append(wait)
            if team:
                team_wait[team].append(wait)
        if done:
            completed[step] += 1
            works[step].append(work)
            if team:
                team_work[team] += work
        if team and first:
            team_tasks[team] += 1
    started, ended = tl.started, tl.ended
    cycles = [ended[c] - started[c] for c in ended if c in started]
    span = (max(ended.values()) - min(started.values())) if ended and started else 0.0
    latency = [x for x in tl.handoffs["latency_s"] if x is not None]
    steps = {
        s: {
            "completed": completed.get(s, 0),
            "wait_p50_s": _r(quantile(waits.get(s, []), 0.5)),
            "wait_p95_s": _r(quantile(waits.get(s, []), 0.95)),
            "work_p50_s": _r(quantile(works.get(s, []), 0.5)),
            "work_p95_s": _r(quantile(works.get(s, []), 0.95)),
        }
        for s in sorted(set(completed) | set(waits))
    }
    teams = {
        tm: {
            "tasks": team_tasks[tm],
            "work_h": round(team_work[tm] / 3600.0, 2),
            "wait_p50_s": _r(quantile(team_wait.get(tm, []), 0.5)),
        }
        for tm in sorted(set(team_tasks) | set(team_wait))
    }
    E = EventType
    return {
        "mode": mode,
        "cases_started": len(started),
        "cases_completed": len(ended),
        "cases_cancelled": tl.count(E.CASE_CANCELLED),
        "cases_open": len(started) - len(ended) - tl.count(E.CASE_CANCELLED),
        "cycle_time_p50_s": _r(quantile(cycles, 0.5)),
        "cycle_time_p95_s": _r(quantile(cycles, 0.95)),
        "cycle_time_mean_s": _r(sum(cycles) / len(cycles)) if cycles else None,
        "handoffs": len(tl.handoffs["at"]),
        "hub_assignments": tl.hub_assignments,
        "gateway_decisions": tl.count(E.GATEWAY_DECIDED),
        "handoff_latency_p50_s": _r(quantile(latency, 0.5)),
        "handoff_latency_p95_s": _r(quantile(latency, 0.95)),
        "throughput_per_day": round(len(ended) / span * 86400.0, 3) if span > 0 else None,
        "sla_breaches": tl.count(E.SLA_BREACHED),
        "escalations": tl.count(E.TASK_ESCALATED),
        "task_failures": tl.count(E.TASK_FAILED),
        "incidents": tl.incidents,
        "events": tl.events,
        "span_days": round(((tl.last or 0.0) - (tl.first or 0.0)) / 86400.0, 3),
        "steps": steps,
        "teams": teams,
    }
