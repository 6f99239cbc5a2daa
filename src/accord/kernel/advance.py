"""The process semantics: ``advance(definition, state, action) -> Transition``.

A pure function. It never reads a clock, draws a random number or performs I/O: time comes in
on the action (``at``), and everything the outside world must do (fire a timer later, run a
handler, offer a task) goes out as a command. The same definition, state and action always give
the same transition, which is what lets the central engine, team nodes and the simulator share
it, and lets a recorded history be replayed to prove nothing changed.

Token rules follow BPMN 2.0 (see SEMANTICS.md): a token on a flow either starts a task, passes
through a gateway (which chooses flows), waits at a join, or ends at an end step. Joins are
settled after every other token has moved, so an inclusive join sees the whole case.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import orjson

from accord.errors import (
    ConflictError,
    ContractViolation,
    ExpressionError,
    NotFound,
    TaskStateError,
)
from accord.events import Event, EventType
from accord.kernel.actions import (
    Announce,
    AnswerIssue,
    AnyAction,
    ArriveToken,
    CancelCase,
    ClaimTask,
    CloseCase,
    CompleteTask,
    EndBranch,
    FailTask,
    FireTimer,
    IssueReply,
    NoteIssue,
    PauseCase,
    RaiseIssue,
    ReassignTask,
    ReceiveMessage,
    RejectHandoff,
    ReleaseTask,
    RerouteCase,
    ResumeCase,
    RetryTask,
    ReturnToken,
    RuleIssue,
    StartCase,
    StartTask,
)
from accord.kernel.commands import (
    CancelTimer,
    Command,
    OfferTask,
    RunHandler,
    ScheduleTimer,
)
from accord.kernel.graph import graph_of
from accord.kernel.scope import HUB, Scope
from accord.kernel.state import (
    ACTIVE,
    CaseState,
    CaseStatus,
    Task,
    TaskStatus,
    Timer,
    TimerKind,
    Token,
)
from accord.model.types import (
    APPROVAL_OUTCOMES,
    ErrorAction,
    Flow,
    ProcessDefinition,
    StepKind,
)

Move = tuple[Flow, Token]
ISSUE_ACTIONS = ("rework", "waive", "cancel")
# what a team node may first hear of a case through
_OPENS_A_CASE_HERE = (ArriveToken, Announce, RejectHandoff, NoteIssue)


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
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:20]


def _share(weight: str) -> str:
    """A token's weight from a message: a fraction in (0, 1], else the message is refused."""
    try:
        w = Fraction(weight)
    except (ValueError, ZeroDivisionError, TypeError):
        raise ContractViolation("handoff", [f"weight {weight!r} is not a fraction"]) from None
    if not 0 < w <= 1:
        raise ContractViolation("handoff", [f"weight {weight!r} is not within (0, 1]"])
    return str(w)


def check_data(data: Any, what: str) -> None:
    """Case data must survive the store unchanged: JSON values, finite numbers, text keys."""
    try:
        raw = orjson.dumps(data)
    except TypeError as exc:
        raise ContractViolation(what, [f"not JSON data: {exc}"]) from None
    if orjson.loads(raw) != data or not isinstance(data, dict):
        raise ContractViolation(
            what, ["data must be a JSON object of finite numbers, text, lists and objects"]
        )


def advance(
    d: ProcessDefinition,
    state: CaseState | None,
    action: AnyAction,
    scope: Scope | None = None,
) -> Transition:
    """Apply one action to a case. Raise a CaseError (and change nothing) if it is refused.

    With a ``scope`` the kernel runs one team's part of the process (choreography).
    """
    if isinstance(action, StartCase):
        if state is not None:
            raise ConflictError(f"case {action.case_id!r} already exists")
        return _Step(d, _new_state(d, action), action, scope).start()
    if (
        state is None
        and isinstance(action, ArriveToken | Announce | RejectHandoff | NoteIssue)
        and (scope)
    ):
        # a team node first hears of a case through a handoff or an announcement
        check_data(getattr(action, "data", {}), "handoff data")
        state = CaseState(action.case_id, d.key, CaseStatus.RUNNING, action.at)
    if state is None:
        raise NotFound("no such case")
    if state.process != d.key:
        raise ConflictError(f"case {state.case_id} runs {state.process}, not {d.key}")
    msg_id = getattr(action, "msg_id", "")
    if msg_id and msg_id in state.consumed:
        return Transition(state, [], [])  # delivered again: acted on once already
    step = _Step(d, state.copy(), action, scope)
    if msg_id:
        step.s.consumed.append(msg_id)
    return step.run()


def replay(d: ProcessDefinition, actions: list[AnyAction]) -> CaseState | None:
    """Fold actions from nothing; the result depends on nothing but the arguments."""
    state: CaseState | None = None
    for a in actions:
        state = advance(d, state, a).state
    return state


def _new_state(d: ProcessDefinition, a: StartCase) -> CaseState:
    if not a.case_id:
        raise ConflictError("a case id is required")
    check_data(a.data, "start data")
    return CaseState(a.case_id, d.key, CaseStatus.RUNNING, a.at, dict(a.data))


class _Step:
    """Working memory for one advance() call."""

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

    # -- output helpers -------------------------------------------------------------------------

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
        eid = f"{self.s.case_id}#{self.s.seq}"
        if self.scope is not None:
            eid = f"{self.s.case_id}#{self.scope.team}#{self.s.seq}"  # each team numbers its own
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

    # -- entry points ---------------------------------------------------------------------------

    def start(self) -> Transition:
        a = self.a
        assert isinstance(a, StartCase)
        unknown = [n for n in a.decisions if n not in self.d.steps]
        if unknown:
            raise NotFound(f"decisions name no step of {self.d.key}: {', '.join(unknown)}")
        self.decisions = dict(a.decisions)
        self.emit(EventType.CASE_STARTED, data={"data": dict(a.data)})
        start = self.d.steps[self.d.start]
        if start.kind is StepKind.START:
            self.propagate(self.route(start.id, Token()))
        else:
            self.propagate([], enter=[(start.id, Token())])
        self.settle()
        return self.done()

    def run(self) -> Transition:
        a = self.a
        if self.s.status.ended and isinstance(a, FireTimer):
            return self.done()  # a stale timer of an ended case: harmless, as promised
        if self.s.status.ended and not isinstance(a, CompleteTask):
            raise TaskStateError(f"case {self.s.case_id} has {self.s.status.value}")
        handler = {
            ClaimTask: self.claim,
            StartTask: self.start_work,
            ReleaseTask: self.release,
            ReassignTask: self.reassign,
            CompleteTask: self.complete,
            FailTask: self.fail,
            FireTimer: self.fire_timer,
            ReceiveMessage: self.receive,
            PauseCase: self.pause,
            ResumeCase: self.resume,
            CancelCase: self.cancel,
            RerouteCase: self.reroute,
            RetryTask: self.retry,
            ArriveToken: self.arrive,
            Announce: self.announce,
            CloseCase: self.close,
            EndBranch: self.end_branch,
            RejectHandoff: self.reject_handoff,
            RaiseIssue: self.raise_issue,
            NoteIssue: self.note_issue,
            AnswerIssue: self.answer_issue,
            RuleIssue: self.rule_issue,
            IssueReply: self.issue_reply,
            ReturnToken: self.return_token,
        }[type(a)]
        handler()
        if self.s.status in (CaseStatus.RUNNING, CaseStatus.PAUSED):
            self.settle()
        return self.done()

    # -- work items -----------------------------------------------------------------------------

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

    def claim(self) -> None:
        a = self.a
        assert isinstance(a, ClaimTask)
        t = self.task(a.task_id)
        if t.status is TaskStatus.CLAIMED and t.assignee == a.member:
            return  # a repeated claim by the holder: acknowledged, nothing changes
        self.require_running("claim")
        if t.status is not TaskStatus.READY:
            holder = f" by {t.assignee}" if t.assignee else ""
            raise TaskStateError(f"task {t.id} is {t.status.value}{holder}; it cannot be claimed")
        if not a.member:
            raise TaskStateError("a claim names the member who takes the task")
        if not self.may_hold(t, a.member):
            raise TaskStateError(
                f"{a.member} is not in team {t.team!r}"
                + (f" with role {t.role!r}" if t.role else "")
                + f"; cannot claim {t.id}"
            )
        self.put(replace(t, status=TaskStatus.CLAIMED, assignee=a.member, claimed_at=self.at))
        self.emit(
            EventType.TASK_CLAIMED,
            step=t.step,
            team=t.team,
            task=t.id,
            data={"assignee": a.member, "waited_s": self.at - t.ready_at},
        )

    def start_work(self) -> None:
        a = self.a
        assert isinstance(a, StartTask)
        t = self.task(a.task_id)
        if t.status is TaskStatus.CLAIMED and t.started_at is not None:
            return  # already started: acknowledged
        self.require_running("start work")
        if t.status is not TaskStatus.CLAIMED:
            raise TaskStateError(f"task {t.id} is {t.status.value}; claim it before starting")
        self._check_holder(t, "start")
        self.put(replace(t, started_at=self.at))
        since = t.claimed_at if t.claimed_at is not None else t.ready_at
        self.emit(
            EventType.TASK_STARTED,
            step=t.step,
            team=t.team,
            task=t.id,
            data={"assignee": t.assignee, "queued_s": self.at - since},
        )

    def release(self) -> None:
        a = self.a
        assert isinstance(a, ReleaseTask)
        t = self.task(a.task_id)
        if t.status is TaskStatus.READY:
            return
        if t.status is not TaskStatus.CLAIMED:
            raise TaskStateError(f"task {t.id} is {t.status.value}; only claimed tasks release")
        self._check_holder(t, "release")
        self.put(
            replace(t, status=TaskStatus.READY, assignee=None, claimed_at=None, started_at=None)
        )
        self.emit(EventType.TASK_RELEASED, step=t.step, team=t.team, task=t.id)
        self.offer(self.s.tasks[t.id])

    def reassign(self) -> None:
        a = self.a
        assert isinstance(a, ReassignTask)
        t = self.task(a.task_id)
        if t.status not in (TaskStatus.READY, TaskStatus.CLAIMED):
            raise TaskStateError(f"task {t.id} is {t.status.value}; it cannot be reassigned")
        if a.team is not None and a.team not in self.d.teams:
            raise NotFound(f"no team {a.team!r}")
        team = a.team or t.team
        moved = replace(t, team=team)
        if a.member:
            if not self.may_hold(replace(moved, escalated=True), a.member):
                raise TaskStateError(f"{a.member} is not in team {team!r}")
            moved = replace(moved, status=TaskStatus.CLAIMED, assignee=a.member, claimed_at=self.at)
            moved = replace(moved, started_at=None)
        else:
            moved = replace(moved, status=TaskStatus.READY, assignee=None, claimed_at=None)
            moved = replace(moved, started_at=None)
        self.put(moved)
        self.emit(
            EventType.TASK_REASSIGNED,
            step=t.step,
            team=team,
            task=t.id,
            data={"from": t.assignee, "from_team": t.team, "to": a.member, "to_team": team},
        )
        if moved.status is TaskStatus.READY:
            self.offer(moved)

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

    def complete(self) -> None:
        a = self.a
        assert isinstance(a, CompleteTask)
        t = self.task(a.task_id)
        check_data(a.data, t.step)
        if t.status is TaskStatus.COMPLETED:
            if t.digest == digest(a.data):
                return  # the same completion again: acknowledged without a second effect
            raise ConflictError(f"task {t.id} was already completed with different data")
        if self.s.status.ended:
            raise TaskStateError(f"case {self.s.case_id} has {self.s.status.value}")
        if t.status is TaskStatus.CANCELLED:
            raise TaskStateError(f"task {t.id} was cancelled")
        if t.status is TaskStatus.FAILED:
            raise TaskStateError(f"task {t.id} failed; an operator must retry or reroute it")
        if t.kind.is_wait:
            raise TaskStateError(f"task {t.id} waits for a {t.kind.value}; it completes by itself")
        self.require_running("complete a task")
        self._check_holder(t, "complete")
        self.check_output(t, a.data)
        actor = a.actor
        if t.status is TaskStatus.READY and actor and t.kind is not StepKind.AUTOMATED:
            if not self.may_hold(t, actor):
                raise TaskStateError(f"{actor} is not in team {t.team!r}; cannot complete {t.id}")
            t = self.put(replace(t, status=TaskStatus.CLAIMED, assignee=actor, claimed_at=self.at))
            self.emit(
                EventType.TASK_CLAIMED,
                step=t.step,
                team=t.team,
                task=t.id,
                data={"assignee": actor, "waited_s": 0.0},
            )
        unknown = [n for n in a.decisions if n not in self.d.steps]
        if unknown:
            raise NotFound(f"decisions name no step of {self.d.key}: {', '.join(unknown)}")
        self.decisions = dict(a.decisions)
        self.finish(t, a.data)

    def check_output(self, t: Task, data: dict[str, Any]) -> None:
        step = self.d.steps[t.step]
        problems: list[str] = []
        missing = [k for k in step.outputs if k not in data]
        if missing:
            problems.append(f"missing output {', '.join(missing)}")
        allowed = step.outcomes or APPROVAL_OUTCOMES
        if step.kind is StepKind.APPROVAL and data.get("outcome") not in allowed:
            problems.append(
                f"outcome must be one of {', '.join(allowed)}, not {data.get('outcome')!r}"
            )
        validator = graph_of(self.d).validators.get(t.step)
        if validator is not None:
            for err in validator.iter_errors(data):
                path = "/".join(str(p) for p in err.absolute_path) or "(root)"
                problems.append(f"{path}: {err.message}")
        if problems:
            raise ContractViolation(t.step, problems)

    def finish(self, t: Task, data: dict[str, Any]) -> None:
        """Complete a task and move its token on."""
        self.cancel_timers(t.id)
        self.put(replace(t, status=TaskStatus.COMPLETED, ended_at=self.at, digest=digest(data)))
        self.write(data)
        began = t.started_at if t.started_at is not None else t.claimed_at
        work_s = self.at - (began if began is not None else t.ready_at)
        self.emit(
            EventType.TASK_COMPLETED,
            step=t.step,
            team=t.team,
            task=t.id,
            data={"data": data, "attempt": t.attempt, "work_s": work_s},
            actor=self.a.actor or t.assignee,
        )
        # a wait step has no team: the handoff it relays is from whoever came before it
        origin = (t.step,) if t.team is not None else t.origin
        if t.resend is not None:
            # corrected after a refused handoff: send it again on that flow only
            self.propagate([(self.d.flow_by_id[t.resend], Token(origin, t.weight))])
            return
        self.propagate(self.route(t.step, Token(origin, t.weight)))

    def fail(self) -> None:
        a = self.a
        assert isinstance(a, FailTask)
        t = self.task(a.task_id)
        if t.status not in (TaskStatus.READY, TaskStatus.CLAIMED):
            raise TaskStateError(f"task {t.id} is {t.status.value}; it cannot fail")
        self.require_running("fail a task")
        self._check_holder(t, "fail")
        step = self.d.steps[t.step]
        retry = a.retryable and t.attempt < step.retry.max_attempts
        if retry:
            due = self.at + step.retry.delay(t.attempt)
            self.put(replace(t, status=TaskStatus.WAITING, error=a.error, assignee=None))
            self.emit(
                EventType.TASK_FAILED,
                step=t.step,
                team=t.team,
                task=t.id,
                data={"error": a.error, "attempt": t.attempt, "retry_at": due},
            )
            self.schedule(TimerKind.RETRY, t.id, due)
            return
        self.cancel_timers(t.id)
        failed = self.put(replace(t, status=TaskStatus.FAILED, error=a.error, ended_at=self.at))
        self.emit(
            EventType.TASK_FAILED,
            step=t.step,
            team=t.team,
            task=t.id,
            data={"error": a.error, "attempt": t.attempt, "retry_at": None},
        )
        if step.on_error.action is ErrorAction.REROUTE and step.on_error.to:
            self.put(replace(failed, status=TaskStatus.CANCELLED))
            self.emit(
                EventType.CASE_REROUTED,
                step=t.step,
                data={"from": [t.step], "to": step.on_error.to, "reason": a.error},
            )
            self.propagate([], enter=[(step.on_error.to, Token((t.step,), t.weight))])
        else:
            self.incident({"task": t.id, "step": t.step, "error": a.error})

    def retry(self) -> None:
        a = self.a
        assert isinstance(a, RetryTask)
        t = self.task(a.task_id)
        if t.status is not TaskStatus.FAILED:
            raise TaskStateError(f"task {t.id} is {t.status.value}; only failed tasks retry")
        resumes = self.s.status is CaseStatus.PAUSED and (self.s.incident or {}).get("task") == t.id
        if resumes:
            self.s.status = CaseStatus.RUNNING
            self.s.incident = None
            self.emit(EventType.CASE_RESUMED, data={"by": "retry", "task": t.id})
        again = self.put(
            replace(t, status=TaskStatus.READY, attempt=t.attempt + 1, ended_at=None, error=None)
        )
        self.emit(
            EventType.TASK_READY,
            step=t.step,
            team=t.team,
            task=t.id,
            data={"attempt": again.attempt, "retry": True, "hub": again.hub},
        )
        step = self.d.steps[t.step]
        if step.sla is not None and step.kind.is_work:
            self.schedule(TimerKind.SLA, t.id, self.at + step.sla)
        if resumes:
            self.carry_on()  # hands out `again` with every other ready task
        else:
            self.dispatch(again)

    def fire_timer(self) -> None:
        a = self.a
        assert isinstance(a, FireTimer)
        timer = self.s.timers.get(a.timer_id)
        if timer is None:
            return  # cancelled or already fired: harmless
        if self.s.status is CaseStatus.PAUSED:
            if a.timer_id not in self.s.deferred:
                self.s.deferred.append(a.timer_id)
            return
        del self.s.timers[a.timer_id]
        self._fire(timer)

    def _fire(self, timer: Timer) -> None:
        if timer.kind is TimerKind.ISSUE:
            self.escalate_issue(timer.task, "deadline")
            return
        t = self.s.tasks.get(timer.task)
        if t is None or t.status not in ACTIVE:
            return
        step = self.d.steps[t.step]
        if timer.kind is TimerKind.WAIT:
            self.finish(t, {})
        elif timer.kind is TimerKind.RETRY:
            again = self.put(replace(t, status=TaskStatus.READY, attempt=t.attempt + 1))
            self.emit(
                EventType.TASK_READY,
                step=t.step,
                team=t.team,
                task=t.id,
                data={"attempt": again.attempt, "retry": True, "hub": again.hub},
            )
            self.dispatch(again)
        elif timer.kind is TimerKind.SLA and t.status in (TaskStatus.READY, TaskStatus.CLAIMED):
            self.emit(
                EventType.SLA_BREACHED,
                step=t.step,
                team=t.team,
                task=t.id,
                data={"sla_s": step.sla, "assignee": t.assignee},
            )
            target = step.escalate_to
            if target is None:
                return
            if t.status is TaskStatus.CLAIMED:
                # Work in progress is not taken away: the escalation target is told, and acts.
                self.emit(
                    EventType.TASK_ESCALATED,
                    step=t.step,
                    team=t.team,
                    task=t.id,
                    data={"to": target, "from": t.assignee, "from_team": t.team, "notify": True},
                )
                return
            if target in self.d.teams:
                moved = replace(t, team=target, escalated=True)
            else:
                moved = replace(t, status=TaskStatus.CLAIMED, assignee=target, claimed_at=self.at)
                moved = replace(moved, escalated=True)
            self.put(moved)
            self.emit(
                EventType.TASK_ESCALATED,
                step=t.step,
                team=moved.team,
                task=t.id,
                data={"to": target, "from": None, "from_team": t.team, "notify": False},
            )
            if moved.status is TaskStatus.READY:
                self.offer(moved)

    def receive(self) -> None:
        a = self.a
        assert isinstance(a, ReceiveMessage)
        self.require_running("receive a message")
        check_data(a.data, f"message {a.name}")
        for t in self.s.tasks.values():
            waiting = t.status is TaskStatus.WAITING and t.kind is StepKind.MESSAGE
            if waiting and self.d.steps[t.step].message == a.name:
                self.emit(
                    EventType.MESSAGE_RECEIVED,
                    step=t.step,
                    task=t.id,
                    data={"name": a.name, "data": a.data},
                )
                self.finish(t, dict(a.data))
                return
        raise NotFound(f"case {self.s.case_id} waits for no message {a.name!r}")

    # -- choreography ---------------------------------------------------------------------------

    def arrive(self) -> None:
        a = self.a
        assert isinstance(a, ArriveToken)
        flow = self.d.flow_by_id.get(a.flow)
        if flow is None:
            raise NotFound(f"{self.d.key} has no flow {a.flow!r}")
        if self.scope is not None and self.scope.elsewhere(
            flow.target, self.owner_of(flow.target, a.data or self.s.data)
        ):
            owner = self.owner_of(flow.target, a.data or self.s.data)
            raise TaskStateError(
                f"a handoff to {flow.target!r} belongs to team {owner!r}, not {self.scope.team!r}"
            )
        self.require_running("take a handoff")
        check_data(a.data, "handoff data")
        weight = _share(a.weight)
        self.merge(a.data, a.versions)
        self.propagate([(flow, Token(tuple(a.origin), weight))])

    def announce(self) -> None:
        a = self.a
        assert isinstance(a, Announce)
        if not self.d.is_join(a.join):
            raise NotFound(f"{a.join!r} is not a join of {self.d.key}")
        known = {f.id for f in self.d.incoming[a.join]}
        if not set(a.flows) <= known:
            raise NotFound(f"{a.join!r} has no incoming flows {sorted(set(a.flows) - known)}")
        self.s.expect.setdefault(a.join, []).append(sorted(a.flows))
        self.propagate([])

    def reject_handoff(self) -> None:
        a = self.a
        assert isinstance(a, RejectHandoff)
        self.emit(
            EventType.HANDOFF_REJECTED,
            step=a.from_step or None,
            team=a.from_team,
            data={
                "flow": a.flow,
                "from_team": a.from_team,
                "from_step": a.from_step,
                "by_team": self.scope.team if self.scope else None,
                "weight": a.weight,
                "errors": list(a.errors),
            },
        )

    def return_token(self) -> None:
        a = self.a
        assert isinstance(a, ReturnToken)
        if a.step not in self.d.steps:
            raise NotFound(f"no step {a.step!r} in {self.d.key}")
        self.require_running("take back a refused handoff")
        if a.flow and a.flow not in self.d.flow_by_id:
            raise NotFound(f"{self.d.key} has no flow {a.flow!r}")
        step = self.d.steps[a.step]
        tok = Token((), _share(a.weight))
        if a.flow and step.kind.is_work:
            self.create_task(a.step, tok, resend=a.flow)
        else:
            self.propagate([], enter=[(a.step, tok)])

    # -- negotiation ----------------------------------------------------------------------------

    def issue(self, issue_id: str) -> dict[str, Any]:
        found = self.s.issues.get(issue_id)
        if found is None:
            raise NotFound(f"no issue {issue_id!r} in case {self.s.case_id}")
        return found

    def owner_team(self) -> str | None:
        """Who has the final word: the process owner's team (the hub when there is no scope)."""
        if self.scope is None:
            return HUB
        for team in self.d.teams.values():
            if any(m.id == self.d.owner for m in team.members) or team.id == self.d.owner:
                return team.id
        return self.scope.initiator

    def raise_issue(self) -> None:
        a = self.a
        assert isinstance(a, RaiseIssue)
        t = self.task(a.task_id)
        if t.status not in (TaskStatus.READY, TaskStatus.CLAIMED):
            raise TaskStateError(f"task {t.id} is {t.status.value}; raise issues on open work")
        if a.at_fault not in self.d.steps:
            raise NotFound(f"no step {a.at_fault!r} in {self.d.key}")
        if a.proposal not in ISSUE_ACTIONS:
            raise ConflictError(f"proposal must be one of {', '.join(ISSUE_ACTIONS)}")
        self.require_running("raise an issue")
        self.s.counter += 1
        iid = f"{self.s.case_id}:issue:{self.s.counter}"
        to_team = HUB if self.scope is None else self.owner_of(a.at_fault, self.s.data)
        self.s.issues[iid] = {
            "role": "raiser",
            "task": t.id,
            "step": t.step,
            "at_fault": a.at_fault,
            "proposal": a.proposal,
            "round": 1,
            "max_rounds": a.max_rounds,
            "state": "open",
            "to_team": to_team,
            "raised_at": self.at,
        }
        self.emit(
            EventType.ISSUE_RAISED,
            step=t.step,
            team=t.team,
            task=t.id,
            data={
                "issue": iid,
                "at_fault": a.at_fault,
                "to_team": to_team,
                "from_team": self.scope.team if self.scope else t.team,
                "proposal": a.proposal,
                "evidence": a.evidence,
                "round": 1,
                "by": "raiser",
            },
        )
        self.schedule(TimerKind.ISSUE, iid, self.at + a.deadline_s)

    def note_issue(self) -> None:
        a = self.a
        assert isinstance(a, NoteIssue)
        self.s.issues[a.issue] = {
            "role": a.role,
            "raised_by": a.raised_by,
            "step": a.step,
            "at_fault": a.at_fault,
            "proposal": a.proposal,
            "round": a.round,
            "state": "to answer" if a.role == "respond" else "to rule",
        }

    def answer_issue(self) -> None:
        a = self.a
        assert isinstance(a, AnswerIssue)
        issue = self.issue(a.issue)
        if issue["state"] in ("resolved", "answered"):
            raise TaskStateError(f"issue {a.issue} is {issue['state']}")
        if issue["role"] == "raiser":
            # the other side countered and this team decides: take it, or counter again
            if a.accept:
                self.settle_issue(a.issue, issue["proposal"], EventType.ISSUE_RESOLVED)
                return
            issue["round"] += 1
            if issue["round"] > issue.get("max_rounds", 3):
                self.escalate_issue(a.issue, "no agreement")
                return
            issue["proposal"] = a.proposal or issue["proposal"]
            issue["state"] = "open"
            self.emit(
                EventType.ISSUE_COUNTERED,
                step=issue["step"],
                data={
                    "issue": a.issue,
                    "proposal": issue["proposal"],
                    "round": issue["round"],
                    "to_team": issue["to_team"],
                    "by": "raiser",
                },
            )
            return
        issue["state"] = "answered"
        etype = EventType.ISSUE_ACCEPTED if a.accept else EventType.ISSUE_COUNTERED
        proposal = issue["proposal"] if a.accept else (a.proposal or "waive")
        self.emit(
            etype,
            step=issue["at_fault"],
            data={
                "issue": a.issue,
                "proposal": proposal,
                "round": issue["round"],
                "to_team": issue["raised_by"],
                "by": "respondent",
            },
        )

    def rule_issue(self) -> None:
        a = self.a
        assert isinstance(a, RuleIssue)
        if a.action not in ISSUE_ACTIONS:
            raise ConflictError(f"a ruling is one of {', '.join(ISSUE_ACTIONS)}")
        issue = self.issue(a.issue)
        if issue["role"] == "raiser":  # the hub rules on its own case (central)
            self.settle_issue(a.issue, a.action, EventType.ISSUE_RULED)
            return
        issue["state"] = "ruled"
        self.emit(
            EventType.ISSUE_RULED,
            step=issue["at_fault"],
            data={"issue": a.issue, "action": a.action, "to_team": issue["raised_by"]},
        )

    def issue_reply(self) -> None:
        a = self.a
        assert isinstance(a, IssueReply)
        issue = self.issue(a.issue)
        if issue["state"] == "resolved":
            return
        if a.reply == "accepted":
            self.settle_issue(a.issue, issue["proposal"], EventType.ISSUE_RESOLVED)
        elif a.reply == "ruled":
            self.settle_issue(a.issue, a.proposal, None)
        else:
            issue["proposal"] = a.proposal or issue["proposal"]
            issue["round"] = a.round
            issue["state"] = "countered"

    def escalate_issue(self, issue_id: str, why: str) -> None:
        issue = self.s.issues.get(issue_id)
        if issue is None or issue["state"] in ("resolved", "escalated"):
            return
        issue["state"] = "escalated"
        self.emit(
            EventType.ISSUE_ESCALATED,
            step=issue["step"],
            data={
                "issue": issue_id,
                "why": why,
                "proposal": issue["proposal"],
                "round": issue["round"],
                "at_fault": issue["at_fault"],
                "to_team": self.owner_team(),
                "from_team": self.scope.team if self.scope else None,
            },
        )

    def settle_issue(self, issue_id: str, action: str, etype: EventType | None) -> None:
        """The raising team carries out what was agreed (or ruled)."""
        issue = self.issue(issue_id)
        issue["state"] = "resolved"
        self.cancel_timers(issue_id)
        task = self.s.tasks.get(issue["task"])
        weight = task.weight if task is not None else "0"
        to_team = self.owner_of(issue["at_fault"], self.s.data) if self.scope is not None else None
        self.emit(
            etype or EventType.ISSUE_RESOLVED,
            step=issue["step"],
            data={
                "issue": issue_id,
                "action": action,
                "at_fault": issue["at_fault"],
                "to_team": to_team,
                "weight": weight,
                "rounds": issue["round"],
            },
        )
        if action == "cancel":
            self.withdraw_all()
            self.s.status = CaseStatus.CANCELLED
            self.s.ended_at = self.at
            self.emit(EventType.CASE_CANCELLED, data={"reason": f"issue {issue_id}"})
        elif action == "rework" and task is not None and task.status in ACTIVE:
            self.cancel_timers(task.id)
            self.put(replace(task, status=TaskStatus.CANCELLED, ended_at=self.at))
            self.emit(EventType.TASK_CANCELLED, step=task.step, team=task.team, task=task.id)
            if self.scope is None or not self.scope.elsewhere(issue["at_fault"], to_team):
                self.propagate([], enter=[(issue["at_fault"], Token((), weight))])
            # else: the team at fault takes it from the resolved event (ReturnToken)

    def end_branch(self) -> None:
        a = self.a
        assert isinstance(a, EndBranch)
        if self.scope is None or not self.scope.keeps_ledger:
            raise TaskStateError("only the initiating team keeps the ledger of ended branches")
        if a.terminate:
            self.withdraw_all()
            self.terminated = True
        self.tally(a.weight, a.terminate)

    def tally(self, weight: str, terminate: bool) -> None:
        """Add an ended branch to the ledger; the whole case ended when the shares reach 1."""
        total = Fraction(self.s.ended_weight) + Fraction(weight)
        self.s.ended_weight = str(total)
        if (total >= 1 or terminate) and not self.s.status.ended:
            self.s.status = CaseStatus.COMPLETED
            self.s.ended_at = self.at
            self.emit(
                EventType.CASE_COMPLETED,
                data={"cycle_s": self.at - self.s.started_at, "terminated": terminate},
            )

    def close(self) -> None:
        a = self.a
        assert isinstance(a, CloseCase)
        self.withdraw_all()
        self.s.status = CaseStatus.CANCELLED if a.outcome == "cancelled" else CaseStatus.COMPLETED
        self.s.ended_at = self.at

    # -- operator actions -----------------------------------------------------------------------

    def pause(self) -> None:
        a = self.a
        assert isinstance(a, PauseCase)
        if self.s.status is CaseStatus.PAUSED:
            return
        self.require_running("pause")
        self.s.status = CaseStatus.PAUSED
        self.emit(EventType.CASE_PAUSED, data={"reason": a.reason or "operator"})

    def resume(self) -> None:
        a = self.a
        assert isinstance(a, ResumeCase)
        if self.s.status is not CaseStatus.PAUSED:
            raise TaskStateError(f"case {self.s.case_id} is {self.s.status.value}, not paused")
        failed = (self.s.incident or {}).get("task")
        if failed and self.s.tasks[failed].status is TaskStatus.FAILED:
            raise TaskStateError(
                f"case {self.s.case_id} is paused because task {failed} failed: "
                "retry it, reroute the case or cancel it"
            )
        check_data(a.data, "resume data")
        self.write(a.data)
        self.s.status = CaseStatus.RUNNING
        self.s.incident = None
        self.emit(EventType.CASE_RESUMED, data={"data": dict(a.data)})
        self.carry_on()

    def carry_on(self) -> None:
        """After a pause: hand out ready work again (results that arrived while paused were
        refused), move parked tokens on, then apply the timers that fell due meanwhile --
        keeping the rest deferred if the case pauses again on the way."""
        for t in list(self.s.tasks.values()):
            if t.status is TaskStatus.READY:
                self.dispatch(t)
        parked, self.s.parked = self.s.parked, []
        for node, tok in parked:
            self.propagate(self.route(node, tok))
        deferred, self.s.deferred = self.s.deferred, []
        for i, tid in enumerate(deferred):
            if self.s.status is not CaseStatus.RUNNING:
                self.s.deferred.extend(deferred[i:])
                break
            timer = self.s.timers.pop(tid, None)
            if timer is not None:
                self._fire(timer)

    def cancel(self) -> None:
        a = self.a
        assert isinstance(a, CancelCase)
        self.withdraw_all()
        self.s.status = CaseStatus.CANCELLED
        self.s.ended_at = self.at
        self.emit(EventType.CASE_CANCELLED, data={"reason": a.reason})

    def reroute(self) -> None:
        a = self.a
        assert isinstance(a, RerouteCase)
        if a.step not in self.d.steps:
            raise NotFound(f"no step {a.step!r} in {self.d.key}")
        if a.step == self.d.start and self.d.steps[a.step].kind is StepKind.START:
            raise TaskStateError("reroute to a step, not to the start event")
        check_data(a.data, "reroute data")
        withdrawn = [t.step for t in self.s.active_tasks()]
        weight = self.held_weight()
        self.withdraw_all()
        self.write(a.data)
        self.s.status = CaseStatus.RUNNING
        self.emit(
            EventType.CASE_REROUTED, data={"from": withdrawn, "to": a.step, "data": dict(a.data)}
        )
        self.propagate([], enter=[(a.step, Token((), weight))])

    def held_weight(self) -> str:
        """The share of the case whose tokens are here (all of it, unless choreographed)."""
        if self.scope is None:
            return "1"
        total = sum((Fraction(t.weight) for t in self.s.active_tasks()), Fraction(0))
        for slots in self.s.joins.values():
            total += sum((Fraction(t.weight) for toks in slots.values() for t in toks), Fraction(0))
        total += sum((Fraction(t.weight) for _, t in self.s.parked), Fraction(0))
        return str(total)

    def withdraw_all(self) -> None:
        for t in self.s.active_tasks():
            self.cancel_timers(t.id)
            self.put(replace(t, status=TaskStatus.CANCELLED, ended_at=self.at))
            self.emit(EventType.TASK_CANCELLED, step=t.step, team=t.team, task=t.id)
        for tid in list(self.s.timers):
            del self.s.timers[tid]
            self.commands.append(CancelTimer(tid))
        self.s.joins.clear()
        self.s.parked.clear()
        self.s.deferred.clear()
        self.s.incident = None

    def incident(self, detail: dict[str, Any]) -> None:
        if self.s.status is CaseStatus.RUNNING:
            self.s.status = CaseStatus.PAUSED
        self.s.incident = detail
        self.emit(EventType.CASE_PAUSED, data={"reason": "incident", **detail})

    # -- tokens ---------------------------------------------------------------------------------

    def route(self, node: str, tok: Token) -> list[Move]:
        """Choose the flows a token leaving ``node`` takes (splitting its weight between them);
        park it on an incident."""
        try:
            flows = self.decide(node)
        except _Incident as inc:
            self.s.parked.append((node, tok))
            self.incident({"step": node, "error": inc.message})
            return []
        if len(flows) == 1:
            return [(flows[0], tok)]
        share = str(Fraction(tok.weight) / len(flows)) if flows else tok.weight
        return [(f, Token(tok.origin, share)) for f in flows]

    def decide(self, node: str) -> list[Flow]:
        out = self.d.outgoing.get(node, ())
        if not out:
            return []
        step = self.d.steps[node]
        explicit = self.decisions.get(node)
        if explicit is not None and step.kind is StepKind.PARALLEL:
            raise ConflictError(f"{node!r} is a parallel gateway: it takes every flow, by rule")
        if explicit is not None:
            chosen = [f for f in out if f.id in explicit or f.target in explicit]
            unknown = set(explicit) - {f.id for f in out} - {f.target for f in out}
            if unknown or not chosen:
                raise ConflictError(
                    f"decision for {node!r} names {sorted(unknown) or explicit}, "
                    f"not among its flows {[f.id for f in out]}"
                )
            if step.kind is StepKind.EXCLUSIVE:
                chosen = chosen[:1]
            self.gateway_decided(
                node, chosen, explicit=True, announce=self.announcement(node, chosen)
            )
            return chosen
        if step.kind is StepKind.PARALLEL or all(
            f.condition is None and not f.default for f in out
        ):
            if len(out) > 1:
                self.gateway_decided(node, list(out))
            return list(out)
        data = self.s.data
        try:
            taken = []
            for f in out:
                if not f.default and (f.condition is None or f.condition.test(data)):
                    taken.append(f)
                    if step.kind is StepKind.EXCLUSIVE:
                        break  # the first true condition in declared order wins
                    # inclusive gateways, and (as in BPMN) conditional flows out of any other
                    # step, take every flow whose condition holds
        except ExpressionError as exc:
            raise _Incident(node, f"condition failed: {exc}") from None
        if not taken:
            taken = [f for f in out if f.default]
        if not taken:
            conds = "; ".join(f.condition.source for f in out if f.condition is not None)
            raise _Incident(node, f"no condition is true and there is no default flow ({conds})")
        self.gateway_decided(node, taken, announce=self.announcement(node, taken))
        return taken

    def announcement(self, node: str, taken: list[Flow]) -> dict[str, Any] | None:
        """Choreography: which incoming flows of its join an inclusive split's choice fills."""
        if self.scope is None or node not in self.scope.matches:
            return None
        join, branch_to_flow = self.scope.matches[node]
        expect = sorted({branch_to_flow[f.id] for f in taken if f.id in branch_to_flow})
        if self.scope.owner.get(join) == self.scope.team:
            self.s.expect.setdefault(join, []).append(expect)
        return {"join": join, "expect": expect, "to_team": self.scope.owner.get(join)}

    def gateway_decided(
        self,
        node: str,
        flows: list[Flow],
        explicit: bool = False,
        announce: dict[str, Any] | None = None,
    ) -> None:
        data: dict[str, Any] = {
            "flows": [f.id for f in flows],
            "targets": [f.target for f in flows],
            "explicit": explicit,
        }
        if announce is not None:
            data["announce"] = announce
        self.emit(
            EventType.GATEWAY_DECIDED,
            step=node,
            team=self.d.steps[node].team or (self.scope.team if self.scope else None),
            data=data,
        )

    def propagate(self, flows: list[Move], enter: list[tuple[str, Token]] | None = None) -> None:
        """Move tokens until every one rests at a task, a join, an incident or an end -- or,
        for a team node, leaves the team as a handoff."""
        work: deque[Move] = deque(flows)
        for node, tok in enter or ():
            self.enter(node, tok, work)
        while True:
            while work and not self.terminated:
                flow, tok = work.popleft()
                if self.scope is not None and self.scope.elsewhere(
                    flow.target, self.owner_of(flow.target, self.s.data)
                ):
                    self.hand_off(flow, tok)
                elif self.d.is_join(flow.target):
                    slots = self.s.joins.setdefault(flow.target, {})
                    slots.setdefault(flow.id, []).append(tok)
                else:
                    self.enter(flow.target, tok, work)
            if self.terminated or not self.fire_joins(work):
                return

    def enter(self, node: str, tok: Token, work: deque[Move]) -> None:
        step = self.d.steps[node]
        if step.kind.is_gateway or step.kind is StepKind.START:
            work.extend(self.route(node, tok))
        elif step.kind is StepKind.END:
            if self.scope is not None:
                # a team cannot see the whole case: it reports the share of it that ended here
                self.emit(
                    EventType.BRANCH_ENDED,
                    step=node,
                    team=self.scope.team,
                    data={"weight": tok.weight, "terminate": step.terminate},
                )
            if step.terminate:
                self.withdraw_all()
                self.terminated = True
            if self.scope is not None and self.scope.keeps_ledger:
                self.tally(tok.weight, step.terminate)
        else:
            self.create_task(node, tok)

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

    def hand_off(self, flow: Flow, tok: Token) -> None:
        """Choreography: the token leaves this team; the event is the message to the next."""
        assert self.scope is not None
        to_team = self.owner_of(flow.target, self.s.data)
        from_steps = [o for o in tok.origin if o in self.d.steps]
        self.emit(
            EventType.HANDOFF,
            step=self.scope.work_after.get(flow.target, flow.target),
            team=to_team,
            data={
                "flow": flow.id,
                "from_step": from_steps[-1] if from_steps else None,
                "from_team": self.scope.team,
                "to_step": self.scope.work_after.get(flow.target, flow.target),
                "to_node": flow.target,
                "to_team": to_team,
                "origin": list(tok.origin),
                "weight": tok.weight,
                "case_data": self.s.data,
                "versions": self.s.versions,
            },
        )

    def fire_joins(self, work: deque[Move]) -> bool:
        """Fire the first join that can fire, once. The caller moves its token on before asking
        again, so no inclusive join is judged while another join's output is still in flight."""
        for gid in list(self.s.joins):
            slots = self.s.joins[gid]
            incoming = self.d.incoming[gid]
            taking: list[str] = []
            if self.d.steps[gid].kind is StepKind.PARALLEL:
                if all(slots.get(f.id) for f in incoming):
                    taking = [f.id for f in incoming]
            elif self.scope is not None:
                taking = self.announced(gid, slots)
            elif any(slots.get(f.id) for f in incoming) and self.inclusive_ready(gid, slots):
                taking = [f.id for f in incoming if slots.get(f.id)]
            taken = [slots[fid].pop(0) for fid in taking]
            for fid in [k for k, v in slots.items() if not v]:
                del slots[fid]
            if not slots:
                del self.s.joins[gid]
            if taken:
                origin = tuple(dict.fromkeys(o for t in taken for o in t.origin))
                weight = str(sum((Fraction(t.weight) for t in taken), Fraction(0)))
                work.extend(self.route(gid, Token(origin, weight)))
                return True
        return False

    def announced(self, gid: str, slots: dict[str, list[Token]]) -> list[str]:
        """Choreography's inclusive join: no team can see every token, so the join waits for
        exactly the branches the deciding team announced, oldest announcement first."""
        queue = self.s.expect.get(gid)
        if not queue or not all(slots.get(fid) for fid in queue[0]):
            return []
        flows = queue.pop(0)
        if not queue:
            del self.s.expect[gid]
        return flows

    def inclusive_ready(self, gid: str, slots: dict[str, list[Token]]) -> bool:
        """BPMN 2.0.2, 13.4.3: the join fires when, for each empty incoming flow, no token has
        a path to it -- except a path through the join itself, or one that passes a node from
        which a flow that already holds a token can be reached."""
        positions = {t.step for t in self.s.tasks.values() if t.status in ACTIVE}
        positions.update(g for g, fl in self.s.joins.items() if g != gid and any(fl.values()))
        positions.update(node for node, _ in self.s.parked)
        if not positions:
            return True
        g = graph_of(self.d)
        upstream = g.upstream[gid]
        filled = [f for f in self.d.incoming[gid] if slots.get(f.id)]
        feeds_filled: set[str] = set().union(*(upstream[f.id] for f in filled))
        for f in self.d.incoming[gid]:
            if slots.get(f.id) or not positions & upstream[f.id]:
                continue
            if f.source in feeds_filled or f.source == gid:
                continue
            # nodes that reach this empty flow without passing the join or a node that feeds
            # a filled flow: a token on one of them can still come, so the join must wait
            seen = {f.source}
            queue = deque(seen)
            while queue:
                for p in g.pred[queue.popleft()]:
                    if p != gid and p not in feeds_filled and p not in seen:
                        seen.add(p)
                        queue.append(p)
            if positions & seen:
                return False
        return True

    def create_task(self, node: str, tok: Token, resend: str | None = None) -> None:
        step = self.d.steps[node]
        visit = self.s.visits.get(node, 0) + 1
        self.s.visits[node] = visit
        tid = f"{self.s.case_id}:{node}:{visit}"
        # Without a scope the hub runs everything. A team node sends a step to the hub only
        # in hybrid runs: steps marked central, and steps whose hub criteria hold now.
        hub = self.scope is None or node in self.scope.hub_steps or self.scope.team == HUB
        criteria = step.require_hub_when
        if not hub and self.scope is not None and self.scope.hybrid and criteria is not None:
            try:
                hub = criteria.test(self.s.data)
            except ExpressionError:
                hub = True  # cannot tell: the hub is the safe place for it
        origin = tok.origin
        for src in origin if self.scope is None else ():  # a team node announced it on sending
            src_team = self.d.steps[src].team if src in self.d.steps else None
            if src_team and step.team and src_team != step.team:
                self.emit(
                    EventType.HANDOFF,
                    step=node,
                    team=step.team,
                    task=tid,
                    data={
                        "from_step": src,
                        "from_team": src_team,
                        "to_step": node,
                        "to_team": step.team,
                    },
                )
        status = TaskStatus.WAITING if step.kind.is_wait else TaskStatus.READY
        task = self.put(
            Task(
                tid,
                node,
                step.kind,
                status,
                step.team,
                self.at,
                step.role,
                origin=origin,
                hub=hub,
                weight=tok.weight,
                resend=resend,
            )
        )
        inputs = {k: self.s.data[k] for k in step.inputs if k in self.s.data}
        self.emit(
            EventType.TASK_READY,
            step=node,
            team=step.team,
            task=tid,
            data={"attempt": 1, "hub": hub, "kind": step.kind.value, "input": inputs},
        )
        if step.kind is StepKind.TIMER and step.wait is not None:
            self.schedule(TimerKind.WAIT, tid, self.at + step.wait)
            return
        if step.sla is not None and step.kind.is_work:
            self.schedule(TimerKind.SLA, tid, self.at + step.sla)
        self.dispatch(task)

    def dispatch(self, t: Task) -> None:
        step = self.d.steps[t.step]
        if t.kind is StepKind.AUTOMATED and step.handler:
            self.commands.append(
                RunHandler(t.id, t.step, step.handler, t.id, t.attempt, dict(self.s.data))
            )
        elif t.kind.is_work:
            self.offer(t)

    def offer(self, t: Task) -> None:
        self.commands.append(OfferTask(t.id, t.step, t.team, t.role, t.hub))

    def settle(self) -> None:
        """End the case when nothing is left to do; report a join that can never fire."""
        if self.s.status.ended or self.scope is not None:
            return  # a team sees only its part: the case ends when every branch.ended adds up
        if any(t.status in ACTIVE for t in self.s.tasks.values()) or self.s.parked:
            return
        if self.s.joins and not self.terminated:
            if self.s.incident is None:
                stuck = {g: sorted(fl) for g, fl in self.s.joins.items()}
                self.incident(
                    {"error": f"deadlock: joins {stuck} wait for tokens that cannot come"}
                )
            return
        for tid in list(self.s.timers):
            del self.s.timers[tid]
            self.commands.append(CancelTimer(tid))
        self.s.status = CaseStatus.COMPLETED
        self.s.ended_at = self.at
        self.emit(
            EventType.CASE_COMPLETED,
            data={"cycle_s": self.at - self.s.started_at, "terminated": self.terminated},
        )
