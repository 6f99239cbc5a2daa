"""The working memory of one advance() call, and the helpers every part of it uses.

`_Step` (accord.kernel.advance) is put together from parts, one module each: work items
(work.py), operator actions (operators.py), choreography (choreography.py), negotiation
(negotiation.py) and token routing (tokens.py). They share this base.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import orjson

from accord.errors import (
    ContractViolation,
    ExpressionError,
    NotFound,
    TaskStateError,
)
from accord.events import Event, EventType
from accord.fastinit import fast_init
from accord.kernel.actions import (
    Announce,
    AnyAction,
    ArriveToken,
    NoteIssue,
    RejectHandoff,
)
from accord.kernel.commands import (
    CancelTimer,
    Command,
    ScheduleTimer,
)
from accord.kernel.scope import HUB, Scope
from accord.kernel.state import (
    CaseState,
    CaseStatus,
    Task,
    TaskStatus,
    Timer,
    TimerKind,
    Token,
)
from accord.model.types import (
    Flow,
    ProcessDefinition,
    Step,
    StepKind,
)

Move = tuple[Flow, Token]
STEP_BUDGET = 10_000
"""At most this much work in one advance(), counted in token moves (a signal counts a tenth of a
move per catcher it looks at; each instance a multi-instance step starts adds to the budget): a
model that goes round without waiting (a cycle of gateways and throws, an event sub-process
that re-throws its own trigger) raises an incident instead of running for ever."""
IN_FLIGHT = "\u2192"
"""A parked token stopped on a flow by the step budget is kept as (IN_FLIGHT + flow id, token)."""
ISSUE_ACTIONS = ("rework", "waive", "cancel")
# what a team node may first hear of a case through
_OPENS_A_CASE_HERE = (ArriveToken, Announce, RejectHandoff, NoteIssue)


@fast_init
@dataclass(frozen=True, slots=True)
class Transition:
    """The new state, the events that record what happened, and the commands for the driver."""

    state: CaseState
    events: list[Event]
    commands: list[Command]


# Events that record what the action's actor did, wherever they fall in a transition. Every
# other event carries the actor only when it is the transition's first; the rest follow from the
# first event and carry it as their causation.
_DIRECT = frozenset(
    {
        EventType.TASK_CLAIMED,
        EventType.TASK_STARTED,
        EventType.TASK_RELEASED,
        EventType.TASK_COMPLETED,
        EventType.TASK_FAILED,
        EventType.TASK_REASSIGNED,
        EventType.MESSAGE_RECEIVED,
    }
)


class _Incident(Exception):
    def __init__(self, node: str, message: str) -> None:
        self.node = node
        self.message = message
        super().__init__(message)


def digest(data: dict[str, Any]) -> str:
    """A stable fingerprint of completion data, used to recognise a repeated completion."""
    if not data:
        return _EMPTY_DIGEST  # most completions carry no data: the same hash every time
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:20]


_EMPTY_DIGEST = hashlib.sha256(orjson.dumps({}, option=orjson.OPT_SORT_KEYS)).hexdigest()[:20]


def _share(weight: str) -> str:
    """A token's weight from a message: a fraction in (0, 1], else the message is refused."""
    if weight == "1":
        return weight  # the whole case, by far the most common: no Fraction needed
    try:
        w = Fraction(weight)
    except (ValueError, ZeroDivisionError, TypeError):
        raise ContractViolation("handoff", [f"weight {weight!r} is not a fraction"]) from None
    if not 0 < w <= 1:
        raise ContractViolation("handoff", [f"weight {weight!r} is not within (0, 1]"])
    return str(w)


def check_data(data: Any, what: str) -> None:
    """Case data must survive the store unchanged: JSON values, finite numbers, text keys."""
    if type(data) is dict and not data:
        return  # nothing to check (most completions and handoffs carry no data)
    try:
        raw = orjson.dumps(data)
    except TypeError as exc:
        raise ContractViolation(what, [f"not JSON data: {exc}"]) from None
    if orjson.loads(raw) != data or not isinstance(data, dict):
        raise ContractViolation(
            what, ["data must be a JSON object of finite numbers, text, lists and objects"]
        )


class _Base:
    """Working memory for one advance() call: a copy of the state, and what happened."""

    def __init__(
        self, d: ProcessDefinition, state: CaseState, action: AnyAction, scope: Scope | None
    ) -> None:
        self.d = d
        self.scope = scope
        self.s = state
        self.a = action
        self.at = action.at
        self.events: list[Event] = []
        self.commands: list[Command] = []
        self.decisions: dict[str, list[str]] = {}
        self.terminated = False
        # sub-process instances withdrawn in this transition ("" for the process itself):
        # their tokens still in flight stop where they are
        self.dead_scopes: set[str] = set()
        self.moving: deque[Move] | None = None  # the tokens propagate() is moving now
        self.step_budget = STEP_BUDGET
        self.budget = STEP_BUDGET  # token moves left in this transition (see _Tokens.overrun)
        self.overran = False
        self.recent: deque[str] = deque(maxlen=1000)  # the steps entered last

    def emit(
        self,
        etype: EventType,
        *,
        step: str | None = None,
        team: str | None = None,
        task: str | None = None,
        data: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> None:
        self.s.seq += 1
        if self.scope is not None:
            eid = f"{self.s.case_id}#{self.scope.team}#{self.s.seq}"  # each team numbers its own
        else:
            eid = f"{self.s.case_id}#{self.s.seq}"
        if actor is None and (etype in _DIRECT or not self.events):
            actor = self.a.actor
        self.events.append(
            Event(
                id=eid,
                type=etype,
                case=self.s.case_id,
                process=self.s.process,
                at=self.at,
                seq=self.s.seq,
                step=step,
                team=team,
                actor=actor,
                task=task,
                data=data or {},
                # consequences (a handoff, the next task ready, the case completing) point at
                # the event that caused them; the actor belongs to that first event only
                causation=None if not self.events else self.events[0].id,
            )
        )

    def schedule(self, kind: TimerKind, task: str, due: float) -> None:
        self.s.counter += 1
        tid = f"{self.s.case_id}:{kind.value}:{self.s.counter}"
        self.s.timers[tid] = Timer(tid, due, kind, task)
        self.commands.append(ScheduleTimer(tid, due))

    def cancel_timers(self, task_id: str) -> None:
        for tid in [k for k, t in self.s.timers.items() if t.task == task_id]:
            del self.s.timers[tid]
            self.commands.append(CancelTimer(tid))

    def put(self, task: Task) -> Task:
        self.s.tasks[task.id] = task
        return task

    def cancel_task(self, t: Task, reason: str | None = None) -> None:
        """Withdraw one open task: its timers go, it ends cancelled, and the log says why."""
        self.cancel_timers(t.id)
        self.put(t.evolve(status=TaskStatus.CANCELLED, ended_at=self.at))
        data = {"reason": reason} if reason is not None else None
        self.emit(EventType.TASK_CANCELLED, step=t.step, team=t.team, task=t.id, data=data)

    def task(self, task_id: str) -> Task:
        t = self.s.tasks.get(task_id)
        if t is None:
            raise NotFound(f"no task {task_id!r} in case {self.s.case_id}")
        return t

    def require_running(self, what: str) -> None:
        if self.s.status is not CaseStatus.RUNNING:
            raise TaskStateError(f"cannot {what}: case {self.s.case_id} is {self.s.status.value}")

    def done(self) -> Transition:
        return Transition(self.s, self.events, self.commands)

    def write(self, data: dict[str, Any]) -> None:
        """Merge data written here, stamping each field with when and by whom."""
        if not data:
            return
        self.s.data = {**self.s.data, **data}
        stamp = [self.at, self.scope.team if self.scope else "", self.s.seq]
        self.s.versions = {**self.s.versions, **dict.fromkeys(data, stamp)}

    def merge(self, data: dict[str, Any], versions: dict[str, list[Any]]) -> None:
        """Merge data from another team: per field, the newest write wins (last-writer-wins
        registers), so branches arriving out of order cannot restore a stale value."""
        if not data:
            return
        merged = dict(self.s.data)
        stamps = dict(self.s.versions)
        for key, value in data.items():
            theirs = versions.get(key)
            mine = stamps.get(key)
            if key not in merged or (theirs is not None and (mine is None or theirs > mine)):
                merged[key] = value
                if theirs is not None:
                    stamps[key] = list(theirs)
        self.s.data = merged
        self.s.versions = stamps

    def owner_of(self, node: str, data: dict[str, Any]) -> str | None:
        """Who takes a token at ``node`` now: its owner, or the hub when the step's
        hub-involvement criteria hold on the case data (or cannot be evaluated)."""
        assert self.scope is not None
        owner = self.scope.owner.get(node)
        if self.scope.hybrid and node in self.scope.criteria:
            criteria = self.d.steps[node].require_hub_when
            try:
                if criteria is None or criteria.test(data):
                    return HUB
            except ExpressionError:
                return HUB  # cannot tell: the hub is the safe place for it
        return owner

    def held_weight(self) -> str:
        """The share of the case whose tokens are here (all of it, unless choreographed)."""
        if self.scope is None:
            return "1"
        # tokens inside a sub-process instance carry shares of it, not of the case: its task
        # holds the instance's share
        total = sum(
            (Fraction(t.weight) for t in self.s.active_tasks() if t.scope is None), Fraction(0)
        )
        for slots in self.s.joins.values():
            total += sum(
                (Fraction(t.weight) for toks in slots.values() for t in toks if t.scope is None),
                Fraction(0),
            )
        total += sum((Fraction(t.weight) for _, t in self.s.parked if t.scope is None), Fraction(0))
        return str(total)

    def withdraw_all(self) -> None:
        for t in self.s.active_tasks():
            self.cancel_task(t)
        for tid in list(self.s.timers):
            del self.s.timers[tid]
            self.commands.append(CancelTimer(tid))
        self.s.joins.clear()
        self.s.mailbox.clear()
        self.s.loops.clear()
        self.s.parked.clear()
        self.s.deferred.clear()
        self.s.incident = None

    def incident(self, detail: dict[str, Any]) -> None:
        if self.s.status is CaseStatus.RUNNING:
            self.s.status = CaseStatus.PAUSED
        self.s.incident = detail
        self.emit(EventType.CASE_PAUSED, data={"reason": "incident", **detail})

    def may_hold(self, task: Task, member: str) -> bool:
        if task.kind is StepKind.AUTOMATED or member.startswith(("worker", "operator")):
            return True
        step = self.d.steps[task.step]
        if member == step.escalate_to:
            return True
        team = self.d.teams.get(task.team or "")
        if team is None or not team.members:
            return True
        for m in team.members:
            if m.id == member:
                return task.role is None or task.role in m.roles or task.escalated
        return False

    def _check_holder(self, t: Task, what: str) -> None:
        actor = self.a.actor
        if (
            t.assignee is not None
            and actor is not None
            and actor != t.assignee
            and not actor.startswith(("operator", "hub"))
        ):
            raise TaskStateError(
                f"task {t.id} is claimed by {t.assignee}; {actor} cannot {what} it"
            )

    if TYPE_CHECKING:  # provided by the other parts of _Step (work, tokens, ...)

        def claim(self) -> None: ...

        def start_work(self) -> None: ...

        def release(self) -> None: ...

        def reassign(self) -> None: ...

        def complete(self) -> None: ...

        def check_output(self, t: Task, data: dict[str, Any]) -> None: ...

        def finish(self, t: Task, data: dict[str, Any]) -> None: ...

        def fail(self) -> None: ...

        def retry(self) -> None: ...

        def fire_timer(self) -> None: ...

        def _fire(self, timer: Timer) -> None: ...

        def receive(self) -> None: ...

        def pause(self) -> None: ...

        def resume(self) -> None: ...

        def carry_on(self) -> None: ...

        def cancel(self) -> None: ...

        def reroute(self) -> None: ...

        def arrive(self) -> None: ...

        def announce(self) -> None: ...

        def reject_handoff(self) -> None: ...

        def return_token(self) -> None: ...

        def end_branch(self) -> None: ...

        def tally(self, weight: str, terminate: bool) -> None: ...

        def close(self) -> None: ...

        def issue(self, issue_id: str) -> dict[str, Any]: ...

        def owner_team(self) -> str | None: ...

        def raise_issue(self) -> None: ...

        def note_issue(self) -> None: ...

        def answer_issue(self) -> None: ...

        def rule_issue(self) -> None: ...

        def issue_reply(self) -> None: ...

        def escalate_issue(self, issue_id: str, why: str) -> None: ...

        def settle_issue(self, issue_id: str, action: str, etype: EventType | None) -> None: ...

        def route(self, node: str, tok: Token) -> list[Move]: ...

        def implicit_end(self, node: str, tok: Token) -> None: ...

        def post(self, flow: Flow, tok: Token) -> None: ...

        def deliver(self) -> bool: ...

        def decide(self, node: str) -> list[Flow]: ...

        def announcement(self, node: str, taken: list[Flow]) -> dict[str, Any] | None: ...

        def gateway_decided(
            self,
            node: str,
            flows: list[Flow],
            explicit: bool = False,
            announce: dict[str, Any] | None = None,
        ) -> None: ...

        def propagate(
            self, flows: list[Move], enter: list[tuple[str, Token]] | None = None
        ) -> None: ...

        def enter(self, node: str, tok: Token, work: deque[Move]) -> None: ...

        def hand_off(self, flow: Flow, tok: Token) -> None: ...

        def fire_joins(self, work: deque[Move]) -> bool: ...

        def announced(self, gid: str, slots: dict[str, list[Token]]) -> list[str]: ...

        def inclusive_ready(self, gid: str, slots: dict[str, list[Token]]) -> bool: ...

        def create_task(
            self,
            node: str,
            tok: Token,
            resend: str | None = None,
            race: str | None = None,
            *,
            loop: str | None = None,
            instance: int = 0,
        ) -> Task: ...

        def begin_loop(self, node: str, tok: Token) -> list[Move]: ...

        def resume_loop(self, node: str, tok: Token) -> list[Move] | None: ...

        def instance_vars(self, run: str, instance: int) -> dict[str, Any]: ...

        def instance_of(self, t: Task) -> dict[str, Any]: ...

        def loop_done(self, run: str, instance: int, data: dict[str, Any]) -> list[Move] | None: ...

        def enter_subprocess(self, task: Task, work: deque[Move]) -> None: ...

        def arm(self, t: Task) -> None: ...

        def arm_scope(self, scope_step: str | None, owner: str) -> None: ...

        def close_scopes(self, work: deque[Move]) -> bool: ...

        def withdraw_scope(self, scope_id: str, reason: str) -> None: ...

        def forget_mail(self, top: bool = False) -> None: ...

        def throw(self, step: Step, tok: Token) -> None: ...

        def fire_event_timer(self, timer: Timer) -> None: ...

        def fail_with_code(self, t: Task, code: str, error: str) -> bool: ...

        def receive_by_event(self, name: str, data: dict[str, Any]) -> bool: ...

        def receive_signal(self) -> None: ...

        def fire_boundary(self, b: Step, t: Task, data: dict[str, Any] | None = None) -> None: ...

        def start_event_sub(
            self, sub: Step, scope: str | None, data: dict[str, Any] | None
        ) -> None: ...

        def dispatch(self, t: Task) -> None: ...

        def offer(self, t: Task) -> None: ...

        def running_scopes(self) -> list[tuple[str | None, str | None]]: ...

        def settle(self) -> None: ...
