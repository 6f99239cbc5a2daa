"""Work items: claims, starts, completions, failures, retries, timers, messages."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from accord.errors import (
    ConflictError,
    ContractViolation,
    NotFound,
    TaskStateError,
)
from accord.events import EventType
from accord.kernel.actions import (
    ClaimTask,
    CompleteTask,
    FailTask,
    FireTimer,
    ReassignTask,
    ReceiveMessage,
    ReleaseTask,
    RetryTask,
    StartTask,
)
from accord.kernel.commands import CancelTimer
from accord.kernel.graph import graph_of
from accord.kernel.state import (
    ACTIVE,
    CaseStatus,
    Task,
    TaskStatus,
    Timer,
    TimerKind,
    Token,
)
from accord.kernel.stepbase import (
    _Base,
    check_data,
    digest,
)
from accord.model.types import (
    APPROVAL_OUTCOMES,
    ErrorAction,
    StepKind,
)


class _WorkItems(_Base):
    """Part of the kernel's _Step: claims, completions, failures, retries, timers."""

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
        self.put(t.evolve(status=TaskStatus.CLAIMED, assignee=a.member, claimed_at=self.at))
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
        self.put(t.evolve(started_at=self.at))
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
        self.put(t.evolve(status=TaskStatus.READY, assignee=None, claimed_at=None, started_at=None))
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
        moved = t.evolve(team=team)
        if a.member:
            if not self.may_hold(moved.evolve(escalated=True), a.member):
                raise TaskStateError(f"{a.member} is not in team {team!r}")
            moved = moved.evolve(
                status=TaskStatus.CLAIMED, assignee=a.member, claimed_at=self.at, started_at=None
            )
        else:
            moved = moved.evolve(
                status=TaskStatus.READY, assignee=None, claimed_at=None, started_at=None
            )
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
        if t.kind is StepKind.SUBPROCESS:
            raise TaskStateError(
                f"task {t.id} is a sub-process; it completes when no token is left inside it"
            )
        self.require_running("complete a task")
        self._check_holder(t, "complete")
        self.check_output(t, a.data)
        actor = a.actor
        if t.status is TaskStatus.READY and actor and t.kind is not StepKind.AUTOMATED:
            if not self.may_hold(t, actor):
                raise TaskStateError(f"{actor} is not in team {t.team!r}; cannot complete {t.id}")
            t = self.put(t.evolve(status=TaskStatus.CLAIMED, assignee=actor, claimed_at=self.at))
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
        self.put(t.evolve(status=TaskStatus.COMPLETED, ended_at=self.at, digest=digest(data)))
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
        if t.loop is not None and t.loop in self.s.loops:
            moves = self.loop_done(t.loop, t.instance, data)  # one instance of several
            if moves is not None:
                self.propagate(moves)
            return
        weight = t.weight
        if t.race is not None:
            # an event-based gateway's race: this event won; the other waits are withdrawn in
            # the same transition, and their share of the case goes on with the winner
            for other in self.s.active_tasks():
                if other.race == t.race and other.id != t.id:
                    self.cancel_task(other, f"{t.step} happened first")
                    weight = str(Fraction(weight) + Fraction(other.weight))
        # a wait step has no team: the handoff it relays is from whoever came before it
        origin = (t.step,) if t.team is not None else t.origin
        if t.resend is not None:
            # corrected after a refused handoff: send it again on that flow only
            self.propagate([(self.d.flow_by_id[t.resend], Token(origin, weight, t.scope))])
            return
        self.propagate(self.route(t.step, Token(origin, weight, t.scope)))

    def fail(self) -> None:
        a = self.a
        assert isinstance(a, FailTask)
        t = self.task(a.task_id)
        if t.status not in (TaskStatus.READY, TaskStatus.CLAIMED):
            raise TaskStateError(f"task {t.id} is {t.status.value}; it cannot fail")
        self.require_running("fail a task")
        self._check_holder(t, "fail")
        step = self.d.steps[t.step]
        # a BPMN error (with a code) is a business outcome, not a fault: no retries
        retry = a.retryable and t.attempt < step.retry.max_attempts and not a.code
        if retry:
            due = self.at + step.retry.delay(t.attempt)
            self.put(t.evolve(status=TaskStatus.WAITING, error=a.error, assignee=None))
            self.emit(
                EventType.TASK_FAILED,
                step=t.step,
                team=t.team,
                task=t.id,
                data={"error": a.error, "attempt": t.attempt, "retry_at": due},
            )
            self.schedule(TimerKind.RETRY, t.id, due)
            return
        failed = self.put(t.evolve(status=TaskStatus.FAILED, error=a.error, ended_at=self.at))
        self.emit(
            EventType.TASK_FAILED,
            step=t.step,
            team=t.team,
            task=t.id,
            data={
                "error": a.error,
                "attempt": t.attempt,
                "retry_at": None,
                **({"code": a.code} if a.code else {}),
            },
        )
        if a.code and self.fail_with_code(failed, a.code, a.error):
            return  # caught: an error boundary or event sub-process took it
        if step.on_error.action is ErrorAction.REROUTE and step.on_error.to:
            self.cancel_timers(t.id)
            self.put(failed.evolve(status=TaskStatus.CANCELLED))
            self.emit(
                EventType.CASE_REROUTED,
                step=t.step,
                data={"from": [t.step], "to": step.on_error.to, "reason": a.error},
            )
            self.propagate([], enter=[(step.on_error.to, Token((t.step,), t.weight, t.scope))])
        else:
            # the activity has not ended (an operator retries it, reroutes or cancels the
            # case): its boundary timers still watch it; its SLA restarts with a retry
            for tid, tm in list(self.s.timers.items()):
                if tm.task == t.id and tm.kind is not TimerKind.EVENT:
                    del self.s.timers[tid]
                    self.commands.append(CancelTimer(tid))
            incident = {"task": t.id, "step": t.step, "error": a.error}
            self.incident({**incident, "code": a.code} if a.code else incident)

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
            t.evolve(status=TaskStatus.READY, attempt=t.attempt + 1, ended_at=None, error=None)
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
        if timer.kind is TimerKind.EVENT:
            self.fire_event_timer(timer)
            return
        t = self.s.tasks.get(timer.task)
        if t is None or t.status not in ACTIVE:
            return
        step = self.d.steps[t.step]
        if timer.kind is TimerKind.WAIT:
            self.finish(t, {})
        elif timer.kind is TimerKind.RETRY:
            again = self.put(t.evolve(status=TaskStatus.READY, attempt=t.attempt + 1))
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
                moved = t.evolve(team=target, escalated=True)
            else:
                moved = t.evolve(
                    status=TaskStatus.CLAIMED, assignee=target, claimed_at=self.at, escalated=True
                )
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
        if self.receive_by_event(a.name, dict(a.data)):
            return
        raise NotFound(f"case {self.s.case_id} waits for no message {a.name!r}")
