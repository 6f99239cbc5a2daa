"""Compare modes on one seeded workload: every number from the runs' own events.

Each mode runs the same arrivals, the same synthetic people and the same scenario; only who
coordinates differs. The report names the mechanism behind each difference: hub queueing
(decisions waiting for the coordinating team), message hops (handoffs travelling on the bus),
pull versus push (a free member claims, or the hub allocates).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from accord.analytics.metrics import quantile
from accord.analytics.tally import tally
from accord.events import Event, EventType
from accord.sim.session import simulate


def _hours(seconds: float) -> str:
    return f"{float(seconds) / 3600:.1f}h"


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def coordination(events: Iterable[Event], mode: str) -> dict[str, Any]:
    """The comparison's own measures, from one run's events.

    Waits, coordination messages and rework come from :mod:`accord.analytics.tally`, as in
    ``accord run`` and ``accord audit``: in a central run the hub runs every task, so its
    handoffs and decisions are its own bookkeeping, not messages.
    """
    events = events if isinstance(events, list) else list(events)
    tl = tally(events)
    waits: list[float] = []
    first_taken: dict[str, float] = {}
    rework = 0
    completions: dict[tuple[str, str], list[tuple[float, float, str]]] = defaultdict(list)
    for row in tl.attempts:
        task, case, step, _team, _hub, first, _ready, taken, end, done, wait = row[:11]
        if wait is not None:
            waits.append(wait)
        if taken is not None and (case not in first_taken or taken < first_taken[case]):
            first_taken[case] = taken  # work on the case has begun
        if first and task.rsplit(":", 1)[-1] not in ("1", task):
            rework += 1  # a later visit of the step, not a retry
        if done:
            completions[(case, step)].append((end if taken is None else taken, end, row[12] or ""))
    started = tl.started
    initiation = [first_taken[c] - started[c] for c in first_taken if c in started]
    duplicated = 0
    for runs in completions.values():
        runs.sort()
        for (_b1, e1, w1), (b2, _e2, w2) in itertools.pairwise(runs):
            if b2 < e1 and w1 != w2:
                duplicated += 1  # two people on the same step of the same case at once
    handoffs = len(tl.handoffs["at"])
    rejected = tl.count(EventType.HANDOFF_REJECTED)
    messages = sum(tl.messages(central=mode == "central").values())
    resolutions = _resolutions(events)
    return {
        "initiation_latency_p50_s": _r(quantile(initiation, 0.5)),
        "assignment_wait_p50_s": _r(quantile(waits, 0.5)),
        "assignment_wait_p95_s": _r(quantile(waits, 0.95)),
        "error_resolution_p50_s": _r(quantile(resolutions, 0.5)),
        "errors_resolved": len(resolutions),
        "coordination_messages_per_case": round(messages / max(len(started), 1), 3),
        "handoff_error_rate": round((rejected + rework) / handoffs, 4) if handoffs else 0.0,
        "rework_tasks": rework,
        "duplicated_work": duplicated,
        "issues_raised": tl.count(EventType.ISSUE_RAISED),
        "negotiation_counters": tl.count(EventType.ISSUE_COUNTERED),
        "issues_escalated": tl.count(EventType.ISSUE_ESCALATED),
    }


def _resolutions(events: list[Event]) -> list[float]:
    """How long each incident (pause -> resume, reroute or cancel) and issue (raised ->
    resolved or ruled) took to settle."""
    paused: dict[str, float] = {}
    raised: dict[str, float] = {}
    out: list[float] = []
    pause, raise_ = EventType.CASE_PAUSED, EventType.ISSUE_RAISED
    settle = frozenset({EventType.CASE_RESUMED, EventType.CASE_REROUTED, EventType.CASE_CANCELLED})
    settle_issue = frozenset({EventType.ISSUE_RESOLVED, EventType.ISSUE_RULED})
    for e in events:
        t = e.type
        if t is pause and e.data.get("reason") == "incident":
            paused.setdefault(e.case, e.at)
        elif t in settle:
            if e.case in paused:
                out.append(e.at - paused.pop(e.case))
        elif t is raise_:
            raised[str(e.data.get("issue") or e.id)] = e.at
        elif t in settle_issue:
            key = str(e.data.get("issue") or "")
            if key in raised:
                out.append(e.at - raised.pop(key))
    return out


ROWS = [
    ("cases_completed", "cases completed", ""),
    ("initiation_latency_p50_s", "initiation latency p50", "s"),
    ("assignment_wait_p50_s", "task assignment wait p50", "s"),
    ("handoff_latency_p50_s", "handoff latency p50", "s"),
    ("error_resolution_p50_s", "error resolution p50", "s"),
    ("status_freshness_s", "status freshness (lag of the global view)", "s"),
    ("cycle_time_p50_s", "cycle time p50", "s"),
    ("cycle_time_p95_s", "cycle time p95", "s"),
    ("throughput_per_day", "throughput (cases/day)", ""),
    ("coordination_messages_per_case", "coordination messages per case", ""),
    ("hub_decisions_per_case", "hub decisions per case", ""),
    ("handoff_error_rate", "handoff error rate", ""),
    ("duplicated_work", "duplicated work (tasks)", ""),
]


def compare(
    file: str | Path,
    modes: list[str],
    cases: int,
    *,
    seed: int = 0,
    scenario: str | Path | None = None,
    per_day: float | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run each mode on the same seeded workload; return {mode: summary + comparison}."""
    overrides = {"arrivals": {"per_day": per_day}} if per_day else None
    out: dict[str, dict[str, Any]] = {}
    for mode in modes:
        events: list[Event] = []

        def tick(done: int, total: int, m: str = mode) -> None:
            if progress is not None:
                progress(m, done, total)

        summary = simulate(
            file,
            cases,
            mode=mode,
            seed=seed,
            scenario=scenario,
            progress=tick,
            overrides=overrides,
            keep_events=events,
        )
        summary.update(coordination(events, mode))
        out[mode] = summary
    return out


def mechanisms(results: dict[str, dict[str, Any]]) -> list[str]:
    """Sentences naming the mechanism behind each large difference."""
    notes: list[str] = []
    c, h = results.get("central"), results.get("choreo")
    if c is None or h is None:
        return notes

    def ratio(key: str) -> float | None:
        a, b = c.get(key), h.get(key)
        if not a or not b:
            return None
        return float(a) / float(b)

    r = ratio("cycle_time_p50_s")
    if r is not None and r > 1.1:
        peak = c.get("hub_queue_peak")
        queue = f" (the coordinators' queue peaked at {peak} decisions)" if peak else ""
        notes.append(
            f"Central cycle time p50 is {r:.1f}x choreo's: every assignment waits for the hub"
            f"{queue} -- hub queueing."
        )
    elif r is not None and r < 0.9:
        notes.append(
            f"Choreo cycle time p50 is {1 / r:.1f}x central's: members pull only when free and "
            "each handoff travels on the bus, while the hub allocates the moment a task is ready."
        )
    if (h.get("coordination_messages_per_case") or 0) > (
        c.get("coordination_messages_per_case") or 0
    ):
        notes.append(
            f"Choreo sends {h['coordination_messages_per_case']} coordination messages per case "
            f"against the hub's {c['coordination_messages_per_case']}: handoffs, join "
            "announcements and ledger reports are message hops instead of one hub's bookkeeping."
        )
    if (
        h.get("issues_raised")
        and c.get("error_resolution_p50_s")
        and h.get("error_resolution_p50_s")
    ):
        notes.append(
            f"Problems found downstream took {_hours(h['error_resolution_p50_s'])} (p50) to settle "
            f"by negotiation ({h['negotiation_counters']} counter-proposals and "
            f"{h['issues_escalated']} escalations to the owner for {h['issues_raised']} issues) "
            f"against {_hours(c['error_resolution_p50_s'])} when the hub rules -- negotiation "
            "rounds."
        )
    notes.append(
        f"The hub made {c.get('hub_decisions_per_case')} decisions per case; choreography made "
        f"none centrally, and its status board lags by {h.get('status_freshness_s')} s "
        "(one bus hop) -- the price of having no single end-to-end view."
    )
    return notes


def sweep(
    file: str | Path,
    rates: list[float],
    cases: int,
    *,
    seed: int = 0,
    scenario: str | Path | None = None,
) -> dict[str, Any]:
    """Raise the arrival rate; report how each mode's cycle time grows (hub saturation)."""
    rows = []
    for rate in rates:
        res = compare(
            file, ["central", "choreo"], cases, seed=seed, scenario=scenario, per_day=rate
        )
        rows.append(
            {
                "per_day": rate,
                "central_cycle_p50_s": res["central"]["cycle_time_p50_s"],
                "choreo_cycle_p50_s": res["choreo"]["cycle_time_p50_s"],
                "central_hub_queue_peak": res["central"].get("hub_queue_peak"),
            }
        )
    verdict = ""
    if len(rows) >= 2:
        c0, c1 = rows[0]["central_cycle_p50_s"], rows[-1]["central_cycle_p50_s"]
        h0, h1 = rows[0]["choreo_cycle_p50_s"], rows[-1]["choreo_cycle_p50_s"]
        if c0 and c1 and h0 and h1:
            gc, gh = c1 / c0, h1 / h0
            if gc > gh:
                verdict = (
                    f"From {rows[0]['per_day']} to {rows[-1]['per_day']} cases/day central cycle "
                    f"time grew {gc:.2f}x against choreo's {gh:.2f}x: the hub saturates (its "
                    f"decision queue peaked at {rows[-1]['central_hub_queue_peak']})."
                )
            else:
                verdict = (
                    f"From {rows[0]['per_day']} to {rows[-1]['per_day']} cases/day central cycle "
                    f"time grew {gc:.2f}x and choreo's {gh:.2f}x: the hub did not saturate at "
                    "these rates."
                )
    return {"rows": rows, "verdict": verdict}
