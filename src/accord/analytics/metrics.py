"""The run summary: cycle time, wait vs work, handoff latency, throughput, SLA breaches, load.

It reads nothing but events, so a central run, a choreographed run and a simulated run are
measured by the same code with the same vocabulary.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

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


def _pop_handoffs(handoff_at: dict[Any, list[float]], e: Event) -> list[float]:
    """Handoffs that led to this task: by its id, else by its case and step."""
    found = handoff_at.pop(e.task, [])
    found += handoff_at.pop((e.case, e.step), [])
    return found


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def summarize(events: Iterable[Event], mode: str = "central") -> dict[str, Any]:
    """One summary object of a run (the keys `accord run --json` prints)."""
    started: dict[str, float] = {}
    ended: dict[str, float] = {}
    cancelled = 0
    ready_at: dict[str, float] = {}
    claimed_at: dict[str, float] = {}
    started_at: dict[str, float] = {}
    wait_done: set[str] = set()
    step_of: dict[str, str] = {}
    team_of: dict[str, str | None] = {}
    waits: dict[str, list[float]] = defaultdict(list)
    works: dict[str, list[float]] = defaultdict(list)
    completed: dict[str, int] = defaultdict(int)
    # a handoff names the task it leads to (central), or only the case and step (a team node
    # hands off before the next team has created its task)
    handoff_at: dict[Any, list[float]] = defaultdict(list)
    hub_assignments = 0
    gateway_decisions = 0
    handoff_latency: list[float] = []
    handoffs = 0
    team_tasks: dict[str, int] = defaultdict(int)
    team_work: dict[str, float] = defaultdict(float)
    team_wait: dict[str, list[float]] = defaultdict(list)
    sla = 0
    escalations = 0
    failures = 0
    incidents = 0
    n_events = 0
    first = last = None
    for e in events:
        n_events += 1
        first = e.at if first is None else min(first, e.at)
        last = e.at if last is None else max(last, e.at)
        t = e.type
        if t is EventType.CASE_STARTED:
            started[e.case] = e.at
        elif t is EventType.CASE_COMPLETED:
            ended[e.case] = e.at
        elif t is EventType.CASE_CANCELLED:
            cancelled += 1
        elif t is EventType.TASK_READY and e.task:
            if e.data.get("kind") == "automated" or e.task not in ready_at or e.data.get("retry"):
                ready_at[e.task] = e.at
                wait_done.discard(e.task)
            step_of[e.task] = e.step or ""
            team_of[e.task] = e.team
        elif t is EventType.TASK_CLAIMED and e.task:
            claimed_at[e.task] = e.at
            if e.actor and e.actor.startswith("hub"):
                hub_assignments += 1
        elif t is EventType.TASK_STARTED and e.task:
            # waiting ends when work starts (a task allocated to a busy member still waits)
            started_at[e.task] = e.at
        ends_wait = t in (EventType.TASK_STARTED, EventType.TASK_COMPLETED, EventType.TASK_FAILED)
        if ends_wait and e.task and e.task in ready_at and e.task not in wait_done:
            wait_done.add(e.task)
            ready = ready_at[e.task]
            held = e.task in claimed_at and claimed_at[e.task] >= ready
            if t is EventType.TASK_STARTED:
                until = e.at
            elif held:
                until = claimed_at[e.task]  # no start reported: the claim is the best evidence
            else:
                until = ready  # nobody held it (a handler): all of it was work
            w = until - ready
            waits[step_of.get(e.task, e.step or "")].append(w)
            team = team_of.get(e.task) or e.team
            if team and (held or t is EventType.TASK_STARTED):
                team_wait[team].append(w)
            # a handoff is picked up when someone starts on it (a handler: when it is done)
            picked = until if (held or t is EventType.TASK_STARTED) else e.at
            for h in _pop_handoffs(handoff_at, e):
                handoff_latency.append(picked - h)
        if t is EventType.TASK_COMPLETED and e.task:
            step = e.step or ""
            completed[step] += 1
            begin = started_at.get(e.task, claimed_at.get(e.task, ready_at.get(e.task, e.at)))
            works[step].append(e.at - begin)
            if e.team:
                team_tasks[e.team] += 1
                team_work[e.team] += e.at - begin
        elif t is EventType.HANDOFF:
            handoffs += 1
            key = e.task if e.task else (e.case, e.data.get("to_step") or e.step)
            handoff_at[key].append(e.at)
        elif t is EventType.GATEWAY_DECIDED:
            gateway_decisions += 1
        elif t is EventType.SLA_BREACHED:
            sla += 1
        elif t is EventType.TASK_ESCALATED:
            escalations += 1
        elif t is EventType.TASK_FAILED:
            failures += 1
        elif t is EventType.CASE_PAUSED and e.data.get("reason") == "incident":
            incidents += 1
    cycles = [ended[c] - started[c] for c in ended if c in started]
    span = (max(ended.values()) - min(started.values())) if ended and started else 0.0
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
    return {
        "mode": mode,
        "cases_started": len(started),
        "cases_completed": len(ended),
        "cases_cancelled": cancelled,
        "cases_open": len(started) - len(ended) - cancelled,
        "cycle_time_p50_s": _r(quantile(cycles, 0.5)),
        "cycle_time_p95_s": _r(quantile(cycles, 0.95)),
        "cycle_time_mean_s": _r(sum(cycles) / len(cycles)) if cycles else None,
        "handoffs": handoffs,
        "hub_assignments": hub_assignments,
        "gateway_decisions": gateway_decisions,
        "handoff_latency_p50_s": _r(quantile(handoff_latency, 0.5)),
        "handoff_latency_p95_s": _r(quantile(handoff_latency, 0.95)),
        "throughput_per_day": round(len(ended) / span * 86400.0, 3) if span > 0 else None,
        "sla_breaches": sla,
        "escalations": escalations,
        "task_failures": failures,
        "incidents": incidents,
        "events": n_events,
        "span_days": round(((last or 0.0) - (first or 0.0)) / 86400.0, 3),
        "steps": steps,
        "teams": teams,
    }
