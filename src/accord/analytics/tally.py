"""One pass over a run's events: the task attempts, handoffs and coordination messages that
every run measure is computed from.

``accord run`` (:func:`accord.analytics.metrics.summarize`), the audit's run measures
(:func:`accord.analytics.measures.measure`) and ``accord compare``
(:func:`accord.sim.compare.coordination`) all read wait, work, handoff latency, team load and
coordination messages from the :class:`Tally` built here, so one log gives one number for each,
whichever command prints it. The definitions (docs/analytics.md, "Definitions"):

- An **attempt** is one offer of a task: its first ``task.ready``, or a retry's. It is *taken*
  when work begins: its last ``task.started`` before it ended, else its last ``task.claimed``
  (a release or a reassignment to nobody puts it back). **Wait** is ready -> taken; a task that
  nobody took (a handler's, a timer's) has no wait. **Work** is taken -> completed, or
  ready -> completed when nobody took it.
- A **handoff** is picked up when the receiving task's first attempt is taken, or ended (a
  handler's result); its **latency** is the handoff event -> that moment. A handoff names its
  task, or (from a team node, before the receiving team created it) only the case and step.
- A task belongs to the **team** that held it last (the completion's team, else the latest
  team named by its events).
- **Coordination messages** are what one party sends another only to coordinate the work:
  the hub's assignment (or a claim it hears) and the report back (``task.claimed``,
  ``task.completed``) for each task the hub runs (every task in a central run); handoffs,
  refused handoffs, ended branches and join announcements between team nodes (in central the
  hub does those inside itself); negotiation (``issue.*``); and work moved to someone new
  (``task.reassigned``, ``task.escalated``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from accord.events import Event, EventType

# sent between team nodes: a message only when the run has them (in central the hub does it)
BETWEEN_NODES = frozenset({EventType.HANDOFF, EventType.HANDOFF_REJECTED, EventType.BRANCH_ENDED})
# a message in every mode: negotiation, and work moved to someone new
ALWAYS = frozenset(
    {
        EventType.ISSUE_RAISED,
        EventType.ISSUE_ACCEPTED,
        EventType.ISSUE_COUNTERED,
        EventType.ISSUE_RESOLVED,
        EventType.ISSUE_ESCALATED,
        EventType.ISSUE_RULED,
        EventType.TASK_REASSIGNED,
        EventType.TASK_ESCALATED,
    }
)
SENT_BACK = ("reject", "rework")


def by_hub(actor: str | None) -> bool:
    """Whether the hub acted: ``hub``, or ``hub:REPLICA`` when engine replicas share the work."""
    return actor is not None and (actor == "hub" or actor.startswith("hub:"))


ATTEMPT_COLUMNS = (
    "task", "case", "step", "team", "hub", "first", "ready", "taken", "ended", "completed",
    "wait_s", "work_s", "assignee", "outcome", "rating", "comment",
)  # fmt: skip
HANDOFF_COLUMNS = ("case", "seq", "at", "from_team", "to_team", "task", "latency_s")


class Attempt:
    """One offer of a task while it is open (see the module docstring)."""

    __slots__ = (
        "assignee", "case", "claimed", "comment", "completed", "ended", "failed", "first",
        "handoffs", "hub", "outcome", "rating", "ready", "started", "step", "task", "team",
    )  # fmt: skip

    def __init__(self, e: Event, ready: float | None, hub: bool | None, first: bool) -> None:
        self.task: str = e.task or ""
        self.case = e.case
        self.step = e.step or ""
        self.team = e.team
        self.ready = ready
        self.hub = hub
        self.first = first  # the task's first offer in the log (not a retry)
        self.claimed: float | None = None
        self.started: float | None = None
        self.failed: float | None = None
        self.ended: float | None = None  # completed, failed or withdrawn
        self.completed = False
        self.assignee: str | None = None
        self.outcome: str | None = None
        self.rating: float | None = None
        self.comment: str | None = None
        # the handoffs into it (row numbers), taken at its first claim, start or end; a retry
        # takes none
        self.handoffs: list[int] | None = None if first else []


@dataclass
class Tally:
    """What one pass over a run's events found (see the module docstring).

    Attempts are rows of ``ATTEMPT_COLUMNS`` and handoffs columns of ``HANDOFF_COLUMNS``, tuples
    and lists of numbers and strings: a large log gives the garbage collector almost nothing to
    walk (objects per attempt made the run summary twice as slow on a 200k-event log).
    """

    attempts: list[tuple[Any, ...]] = field(default_factory=list)  # rows of ATTEMPT_COLUMNS
    handoffs: dict[str, list[Any]] = field(default_factory=lambda: {c: [] for c in HANDOFF_COLUMNS})
    started: dict[str, float] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)
    counts: dict[EventType, int] = field(default_factory=dict)
    hub_assignments: int = 0
    incidents: int = 0  # cases paused by an incident
    events: int = 0
    first: float | None = None
    last: float | None = None
    # per case: hub exchanges of hub tasks, of tasks whose ready did not say, messages between
    # nodes, and messages in every mode
    hub_msgs: dict[str, int] = field(default_factory=dict)
    unknown_msgs: dict[str, int] = field(default_factory=dict)
    node_msgs: dict[str, int] = field(default_factory=dict)
    other_msgs: dict[str, int] = field(default_factory=dict)
    distributed: bool = False  # some task ran in a team's node (``task.ready`` with hub false)

    def count(self, t: EventType) -> int:
        """How many events of type ``t``."""
        return self.counts.get(t, 0)

    def messages(self, central: bool | None = None) -> dict[str, int]:
        """Coordination messages per case started. ``central``: whether the hub ran the whole
        case (None: central unless some task ran in a team's node)."""
        if central is None:
            central = not self.distributed
        out = dict.fromkeys(self.started, 0)
        parts = [self.hub_msgs, self.other_msgs]
        parts.append(self.unknown_msgs if central else self.node_msgs)
        for part in parts:
            for case, n in part.items():
                if case in out:
                    out[case] += n
        return out

    def close(self, a: Attempt) -> None:
        """Add an attempt that ended (or is still open at the end of the log) to the columns."""
        taken = a.started if a.started is not None else a.claimed
        ready = a.ready
        if a.ended is None and a.failed is not None:
            a.ended = a.failed  # a failed attempt ends when it fails (a retry is a new offer)
        work = None
        if a.completed and a.ended is not None:
            begin = taken if taken is not None else ready if ready is not None else a.ended
            work = a.ended - begin
        self.attempts.append(
            (a.task, a.case, a.step, a.team, a.hub, a.first, ready, taken, a.ended, a.completed,
             None if taken is None or ready is None else taken - ready, work, a.assignee,
             a.outcome, a.rating, a.comment)
        )  # fmt: skip
        if a.handoffs:
            # picked up when taken; a handler's task when it first ended
            picked = taken if taken is not None else a.failed if a.failed is not None else a.ended
            hand = self.handoffs
            for i in a.handoffs:
                hand["task"][i] = a.task
                if picked is not None:
                    hand["latency_s"][i] = picked - hand["at"][i]


def tally(events: Iterable[Event]) -> Tally:
    """Read the events once (in log order) into a :class:`Tally`."""
    READY, CLAIMED, STARTED = EventType.TASK_READY, EventType.TASK_CLAIMED, EventType.TASK_STARTED
    COMPLETED, FAILED = EventType.TASK_COMPLETED, EventType.TASK_FAILED
    RELEASED, REASSIGNED = EventType.TASK_RELEASED, EventType.TASK_REASSIGNED
    CANCELLED, HANDOFF = EventType.TASK_CANCELLED, EventType.HANDOFF
    C_STARTED, C_COMPLETED = EventType.CASE_STARTED, EventType.CASE_COMPLETED
    DECIDED, PAUSED = EventType.GATEWAY_DECIDED, EventType.CASE_PAUSED
    TASK_EVENTS = frozenset({READY, CLAIMED, STARTED, COMPLETED, FAILED, RELEASED, REASSIGNED,
                             CANCELLED})  # fmt: skip
    TAKING = frozenset({CLAIMED, STARTED, COMPLETED, FAILED})
    out = Tally()
    close = out.close
    hand = out.handoffs
    h_case, h_seq, h_at = hand["case"], hand["seq"], hand["at"]
    h_from, h_to = hand["from_team"], hand["to_team"]
    h_task, h_lat = hand["task"], hand["latency_s"]
    started, ended = out.started, out.ended
    counts: dict[EventType, int] = defaultdict(int)
    hub_msgs: dict[str, int] = defaultdict(int)
    unknown_msgs: dict[str, int] = defaultdict(int)
    node_msgs: dict[str, int] = defaultdict(int)
    other_msgs: dict[str, int] = defaultdict(int)
    open_: dict[str, Attempt] = {}
    # handoffs not picked up yet (row numbers), by the task they name, else by (case, step)
    waiting: dict[Any, list[int]] = {}
    hub_assignments = incidents = 0
    n = 0
    first = last = None
    for e in events:
        n += 1
        at = e.at
        if first is None or at < first:
            first = at
        if last is None or at > last:
            last = at
        t = e.type
        counts[t] += 1
        task = e.task
        if t in TASK_EVENTS and task:
            a = open_.get(task)
            if t is READY:
                retry = bool(e.data.get("retry"))
                if a is not None and not retry:
                    continue  # offered again while open: the wait runs from the first offer
                if a is not None:
                    close(a)
                hub = e.data.get("hub")
                if hub is False:
                    out.distributed = True
                a = open_[task] = Attempt(e, at, hub if isinstance(hub, bool) else None, not retry)
                continue
            if a is None:
                if t is CANCELLED:
                    continue
                # offered before the log begins (a window, a fragment): its wait is unknown
                # and it is not counted as a task offered here
                a = open_[task] = Attempt(e, None, None, False)
            if e.team:
                a.team = e.team
            if a.handoffs is None and t in TAKING:
                a.handoffs = waiting.pop(task, []) + waiting.pop((e.case, a.step), [])
            if t is CLAIMED:
                a.claimed = at
                a.assignee = e.data.get("assignee") or e.actor
                if by_hub(e.actor):
                    hub_assignments += 1
                if a.hub:
                    hub_msgs[e.case] += 1
                elif a.hub is None:
                    unknown_msgs[e.case] += 1
            elif t is STARTED:
                a.started = at
                a.assignee = e.data.get("assignee") or a.assignee or e.actor
            elif t is COMPLETED:
                a.ended = at
                a.completed = True
                _completion(a, e.data)
                if a.hub:
                    hub_msgs[e.case] += 1
                elif a.hub is None:
                    unknown_msgs[e.case] += 1
                close(open_.pop(task))
            elif t is FAILED:
                if a.failed is None:
                    a.failed = at
            elif t is CANCELLED:
                a.ended = at
                close(open_.pop(task))
            elif t is RELEASED:
                a.claimed = a.started = None
            else:  # reassigned: to a member (held from now) or to a team's board
                a.team = e.data.get("to_team") or a.team
                to = e.data.get("to")
                a.started = None
                a.claimed = at if to else None
                a.assignee = to or None
                other_msgs[e.case] += 1
        elif t is HANDOFF:
            key: Any = task if task else (e.case, e.data.get("to_step") or e.step)
            waiting.setdefault(key, []).append(len(h_case))
            h_case.append(e.case)
            h_seq.append(e.seq)
            h_at.append(at)
            h_from.append(e.data.get("from_team"))
            h_to.append(e.data.get("to_team"))
            h_task.append(task)
            h_lat.append(None)
            node_msgs[e.case] += 1
        elif t is C_STARTED:
            started[e.case] = at
        elif t is C_COMPLETED:
            ended[e.case] = at
        elif t in ALWAYS:
            other_msgs[e.case] += 1
        elif t in BETWEEN_NODES or (t is DECIDED and "announce" in e.data):
            node_msgs[e.case] += 1
        elif t is PAUSED and e.data.get("reason") == "incident":
            incidents += 1
    for a in open_.values():
        close(a)
    out.counts = dict(counts)
    out.hub_msgs, out.unknown_msgs = dict(hub_msgs), dict(unknown_msgs)
    out.node_msgs, out.other_msgs = dict(node_msgs), dict(other_msgs)
    out.hub_assignments, out.incidents = hub_assignments, incidents
    out.events, out.first, out.last = n, first, last
    return out


def _completion(a: Attempt, d: dict[str, Any]) -> None:
    """The outcome and feedback a completion carries (in its data, or its output's)."""
    inner = d.get("data")
    output = inner if isinstance(inner, dict) else {}
    outcome = output.get("outcome")
    a.outcome = outcome if isinstance(outcome, str) else None
    fb = d.get("feedback") or output.get("feedback")
    if isinstance(fb, dict):
        rating = fb.get("rating")
        a.rating = float(rating) if isinstance(rating, int | float) else None
        comment = fb.get("comment")
        a.comment = comment if isinstance(comment, str) else None
