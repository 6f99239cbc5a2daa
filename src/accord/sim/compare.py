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
from accord.events import Event, EventType
from accord.sim.session import simulate

COORDINATION = frozenset(
    {
        EventType.HANDOFF,
        EventType.HANDOFF_REJECTED,
        EventType.BRANCH_ENDED,
        EventType.ISSUE_RAISED,
        EventType.ISSUE_ACCEPTED,
        EventType.ISSUE_COUNTERED,
        EventType.ISSUE_RESOLVED,
        EventType.ISSUE_ESCALATED,
        EventType.ISSUE_RULED,
    }
)


def _hours(seconds: float) -> str:
    return f"{float(seconds) / 3600:.1f}h"


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def coordination(events: Iterable[Event], mode: str) -> dict[str, Any]:
    """The comparison's own measures, from one run's events.

    "Coordination messages" here count what crosses between coordinators: hub <-> member
    exchanges (assignments and completion reports) for hub-run tasks, and the bus messages that
    one team's node acts on for another (handoffs, announcements, ledger reports, negotiation).
    accord.analytics.measures counts a broader set for audits (offers, releases, escalations
    too); the two are not the same number, by design, and should be merged into one module with
    both definitions named.
    """
    started: dict[str, float] = {}
    first_claim: dict[str, float] = {}
    ready: dict[str, float] = {}
    waits: list[float] = []
    paused: dict[str, float] = {}
    resolutions: list[float] = []
    raised: dict[str, float] = {}
    messages = 0
    handoffs = 0
    issue_counts = {"raised": 0, "countered": 0, "escalated": 0}
    rejected = 0
    rework = 0
    completions: dict[tuple[str, str], list[tuple[float, float, str]]] = defaultdict(list)
    claimed: dict[str, tuple[float, str]] = {}
    for e in events:
        t = e.type
        if t is EventType.CASE_STARTED:
            started[e.case] = e.at
        elif t is EventType.TASK_READY and e.task:
            ready[e.task] = e.at
            if e.task.rsplit(":", 1)[-1] != "1" and not e.data.get("retry"):
                rework += 1
        elif t is EventType.TASK_STARTED and e.task:
            first_claim.setdefault(e.case, e.at)  # work on the case has begun
            if e.task in ready:
                waits.append(e.at - ready[e.task])
            claimed[e.task] = (e.at, str(e.data.get("assignee") or ""))
        elif t is EventType.TASK_CLAIMED and e.task:
            if mode == "central":
                messages += 1  # the hub tells the member (or hears the member's claim)
        elif t is EventType.TASK_COMPLETED and e.task:
            if mode == "central":
                messages += 1  # the member reports back to the hub
            begin, who = claimed.get(e.task, (e.at, str(e.actor or "")))
            completions[(e.case, str(e.step))].append((begin, e.at, who))
        elif t is EventType.CASE_PAUSED and e.data.get("reason") == "incident":
            paused.setdefault(e.case, e.at)
        elif t in (EventType.CASE_RESUMED, EventType.CASE_REROUTED, EventType.CASE_CANCELLED):
            if e.case in paused:
                resolutions.append(e.at - paused.pop(e.case))
        elif t is EventType.ISSUE_RAISED:
            raised[str(e.data.get("issue") or e.id)] = e.at
            issue_counts["raised"] += 1
        elif t is EventType.ISSUE_COUNTERED:
            issue_counts["countered"] += 1
        elif t is EventType.ISSUE_ESCALATED:
            issue_counts["escalated"] += 1
        elif t in (EventType.ISSUE_RESOLVED, EventType.ISSUE_RULED):
            key = str(e.data.get("issue") or "")
            if key in raised:
                resolutions.append(e.at - raised.pop(key))
        if t is EventType.HANDOFF:
            handoffs += 1
        elif t is EventType.HANDOFF_REJECTED:
            rejected += 1
        if mode != "central" and (
            t in COORDINATION or (t is EventType.GATEWAY_DECIDED and "announce" in e.data)
        ):
            messages += 1
    cases = max(len(started), 1)
    initiation = [first_claim[c] - started[c] for c in first_claim if c in started]
    duplicated = 0
    for runs in completions.values():
        runs.sort()
        for (_b1, e1, w1), (b2, _e2, w2) in itertools.pairwise(runs):
            if b2 < e1 and w1 != w2:
                duplicated += 1  # two people on the same step of the same case at once
    return {
        "initiation_latency_p50_s": _r(quantile(initiation, 0.5)),
        "assignment_wait_p50_s": _r(quantile(waits, 0.5)),
        "assignment_wait_p95_s": _r(quantile(waits, 0.95)),
        "error_resolution_p50_s": _r(quantile(resolutions, 0.5)),
        "errors_resolved": len(resolutions),
        "coordination_messages_per_case": round(messages / cases, 3),
        "handoff_error_rate": round((rejected + rework) / handoffs, 4) if handoffs else 0.0,
        "rework_tasks": rework,
        "duplicated_work": duplicated,
        "issues_raised": issue_counts["raised"],
        "negotiation_counters": issue_counts["countered"],
        "issues_escalated": issue_counts["escalated"],
    }


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
