"""The status board: a passive observer of every team's events. It commands nothing.

Nobody owns a choreographed case end to end, so the board must: for each case it shows where
the case stands, who holds it, how long it has waited, the steps still expected (derived from
the definition), open negotiations, and it flags cases silent for longer than their SLA.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from accord.events import Event, EventType
from accord.model.types import ProcessDefinition

DEFAULT_SILENCE_S = 86400.0  # a case with no news for a day is flagged when no SLA applies


@dataclass
class CaseView:
    """What the board knows of one case."""

    case: str
    status: str = "running"
    started_at: float | None = None
    last_event_at: float = 0.0
    open: dict[str, dict[str, Any]] = field(default_factory=dict)
    done: list[str] = field(default_factory=list)
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: int = 0


class StatusBoard:
    """Aggregates events into an end-to-end view of each case."""

    def __init__(self, d: ProcessDefinition) -> None:
        self.d = d
        self.cases: dict[str, CaseView] = {}
        self.seen: set[str] = set()

    def observe(self, e: Event) -> None:
        """Take in one event (duplicates are ignored)."""
        if e.id in self.seen or e.type is EventType.CASE_REQUESTED:
            return
        self.seen.add(e.id)
        v = self.cases.setdefault(e.case, CaseView(e.case))
        v.events += 1
        v.last_event_at = max(v.last_event_at, e.at)
        t = e.type
        if t is EventType.CASE_STARTED:
            v.started_at = e.at
        elif t is EventType.CASE_COMPLETED:
            v.status = "completed"
            v.open.clear()
        elif t is EventType.CASE_CANCELLED:
            v.status = "cancelled"
            v.open.clear()
        elif t is EventType.TASK_READY and e.task:
            v.open[e.task] = {"step": e.step, "team": e.team, "since": e.at, "holder": None}
        elif t is EventType.TASK_CLAIMED and e.task and e.task in v.open:
            v.open[e.task]["holder"] = e.data.get("assignee")
        elif t in (EventType.TASK_COMPLETED, EventType.TASK_CANCELLED) and e.task:
            v.open.pop(e.task, None)
            if t is EventType.TASK_COMPLETED and e.step:
                v.done.append(e.step)
        elif t is EventType.ISSUE_RAISED:
            key = str(e.data.get("issue") or e.id)
            v.issues[key] = {"raised_at": e.at, "step": e.data.get("at_fault"), "state": "open"}
        elif t in (EventType.ISSUE_RESOLVED, EventType.ISSUE_RULED):
            v.issues.pop(str(e.data.get("issue") or ""), None)
        elif t is EventType.ISSUE_ESCALATED:
            issue = v.issues.get(str(e.data.get("issue") or ""))
            if issue is not None:
                issue["state"] = "escalated"

    def expected(self, v: CaseView) -> list[str]:
        """Work steps still ahead of an open case: reachable from where its tasks stand."""
        if v.status != "running":
            return []
        starts = [o["step"] for o in v.open.values() if o["step"]]
        if not starts and v.started_at is not None:
            starts = [self.d.start]  # between teams: in flight on the bus
        seen: set[str] = set()
        queue = deque(starts)
        ahead: list[str] = []
        while queue:
            node = queue.popleft()
            if node in seen:
                continue
            seen.add(node)
            if self.d.steps[node].kind.is_work:
                ahead.append(node)
            queue.extend(f.target for f in self.d.outgoing.get(node, ()))
        return ahead

    def view(self, now: float) -> list[dict[str, Any]]:
        """Every case, as plain data (what `accord board --json` prints)."""
        out = []
        for v in self.cases.values():
            waiting = [now - o["since"] for o in v.open.values()]
            silence = now - v.last_event_at
            slas = [
                self.d.steps[o["step"]].sla or DEFAULT_SILENCE_S
                for o in v.open.values()
                if o["step"] in self.d.steps
            ]
            limit = min(slas) if slas else DEFAULT_SILENCE_S
            out.append(
                {
                    "case": v.case,
                    "status": v.status,
                    "at": sorted({str(o["step"]) for o in v.open.values()}),
                    "held_by": sorted({str(o["holder"]) for o in v.open.values() if o["holder"]}),
                    "teams": sorted({str(o["team"]) for o in v.open.values() if o["team"]}),
                    "waiting_s": round(max(waiting), 3) if waiting else 0.0,
                    "steps_done": len(v.done),
                    "expected": self.expected(v),
                    "open_issues": [
                        {"issue": k, "age_s": round(now - i["raised_at"], 3), **i}
                        for k, i in v.issues.items()
                    ],
                    "silent": v.status == "running" and silence > limit,
                    "events": v.events,
                }
            )
        return out

    def counts(self) -> dict[str, int]:
        """Cases per status."""
        out: dict[str, int] = {}
        for v in self.cases.values():
            out[v.status] = out.get(v.status, 0) + 1
        return out
