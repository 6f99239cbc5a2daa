"""Operator actions: pause, resume, cancel, reroute."""

from __future__ import annotations

from accord.errors import (
    NotFound,
    TaskStateError,
)
from accord.events import EventType
from accord.kernel.actions import (
    CancelCase,
    PauseCase,
    RerouteCase,
    ResumeCase,
)
from accord.kernel.state import (
    CaseStatus,
    TaskStatus,
    Token,
)
from accord.kernel.stepbase import (
    IN_FLIGHT,
    _Base,
    check_data,
)
from accord.model.types import (
    StepKind,
)


class _Operators(_Base):
    """Part of the kernel's _Step: pause, resume, cancel, reroute."""

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
            flow = self.d.flow_by_id.get(node[len(IN_FLIGHT) :]) if node[:1] == IN_FLIGHT else None
            if flow is not None:  # stopped on its flow by the step budget (tokens.overrun)
                self.propagate([(flow, tok)])
            else:
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
        target = self.d.steps[a.step]
        if target.parent is not None or target.kind is StepKind.BOUNDARY or target.on:
            raise TaskStateError(
                f"reroute to a step of the process itself: {a.step!r} "
                + (
                    f"is inside sub-process {target.parent!r}"
                    if target.parent
                    else "starts on an event"
                )
            )
        check_data(a.data, "reroute data")
        withdrawn = [t.step for t in self.s.active_tasks()]
        # an interrupting event sub-process of the process took it over (its timers went):
        # the process runs again from here, so its timer event sub-processes listen again
        taken = any(
            t.scope is None and self.d.steps[t.step].on is not None
            and self.d.steps[t.step].interrupting and t.kind is StepKind.SUBPROCESS
            for t in self.s.active_tasks()
        )  # fmt: skip
        weight = self.held_weight()
        # the process goes on: its timer event sub-processes still listen
        keep = {k: v for k, v in self.s.timers.items() if v.task == self.s.case_id}
        held = [k for k in self.s.deferred if k in keep]
        for k in keep:
            del self.s.timers[k]
        self.withdraw_all()
        self.s.timers.update(keep)
        if taken and self.scope is None:
            self.arm_scope(None, self.s.case_id)
        self.write(a.data)
        self.s.status = CaseStatus.RUNNING
        self.emit(
            EventType.CASE_REROUTED, data={"from": withdrawn, "to": a.step, "data": dict(a.data)}
        )
        self.propagate([], enter=[(a.step, Token((), weight))])
        for tid in held:  # fell due while the case was paused: they happen now
            timer = self.s.timers.pop(tid, None)
            if timer is not None and self.s.status is CaseStatus.RUNNING:
                self._fire(timer)
            elif timer is not None:
                self.s.timers[tid] = timer
                self.s.deferred.append(tid)
