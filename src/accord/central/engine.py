"""The central engine: the hub that drives the kernel over a store.

Every public call is one unit of work: load the cases it touches, apply kernel transitions
(plus the hub's own follow-ups, such as assigning a task it just offered), then commit state,
events, queue rows and timers in one transaction before anything is acknowledged. A crash at
any point leaves either all of a unit or none of it. Handlers for automated steps run after the
commit that created their task; their effects are guarded by idempotency keys, because after a
crash a handler may run again (at-least-once delivery, exactly-once effect).

Several engines may share one database (``shared=True``, see accord.central.shared): then
nothing is trusted from memory, work is leased from the store, and a unit that loses a race
with another replica (the store's version check) is retried from fresh state.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from accord.central.jobs import HandlerResult
from accord.central.unit import _Batch
from accord.central.work import WorkRunner
from accord.clock import Clock
from accord.errors import (
    AccordError,
    CaseError,
    ConflictError,
    NotFound,
)
from accord.events import Event
from accord.handlers import HandlerRegistry
from accord.kernel import (
    AnswerIssue,
    AnyAction,
    CancelCase,
    CaseState,
    ClaimTask,
    CompleteTask,
    FailTask,
    PauseCase,
    RaiseIssue,
    ReassignTask,
    ReceiveMessage,
    ReceiveSignal,
    ReleaseTask,
    RerouteCase,
    ResumeCase,
    RetryTask,
    RuleIssue,
    StartCase,
    StartTask,
    Transition,
    advance,
)
from accord.kernel.state import Task, case_of_task
from accord.model.types import ProcessDefinition
from accord.stores.base import CaseRow, TaskRow


class Engine(WorkRunner):
    """A central coordinator over one store. Thread-safe; calls are serialised by a lock.

    With ``shared=True`` other engines (replicas, workers) may write the same store at the same
    time: see accord.central.shared for what changes. ``owner`` names this replica in leases.
    """

    # -- cases ----------------------------------------------------------------------------------

    def start_case(
        self,
        process: str,
        data: dict[str, Any] | None = None,
        *,
        case_id: str | None = None,
        actor: str | None = None,
        decisions: dict[str, list[str]] | None = None,
    ) -> str:
        """Start a case of ``process`` (id or id@version); return its id."""
        d = self.definition(process)
        cid = case_id or f"{d.id}-{uuid.uuid4().hex[:12]}"
        action = StartCase(
            at=self.clock.now(),
            actor=actor,
            case_id=cid,
            data=dict(data or {}),
            decisions=dict(decisions or {}),
        )

        def work(batch: _Batch) -> str:
            if self._state(batch, cid)[0] is not None:
                raise ConflictError(f"case {cid!r} already exists")
            t = advance(d, None, action, self.scope)
            self._record(batch, d, None, None, t)
            return cid

        result: str = self._unit(work)
        return result

    def apply(self, process: str, case_id: str, action: AnyAction) -> Transition:
        """Apply any kernel action as one unit of work: the door for drivers such as team nodes,
        which may hear of a case first through a handoff (so it may not exist here yet)."""

        def work(batch: _Batch) -> Transition:
            state, version = self._state(batch, case_id)
            d = self.definition(state.process if state is not None else process)
            t = advance(d, state, action, self.scope)
            self._record(batch, d, state, version, t)
            return t

        result: Transition = self._unit(work)
        return result

    def apply_many(self, items: list[tuple[str, str, AnyAction]]) -> list[Transition | CaseError]:
        """Apply several (process, case, action) in one unit of work (one commit). A refused
        action changes nothing and is returned as its error; the others stand."""

        def work(batch: _Batch) -> list[Transition | CaseError]:
            out: list[Transition | CaseError] = []
            for process, case_id, action in items:
                state, version = self._state(batch, case_id)
                d = self.definition(state.process if state is not None else process)
                try:
                    t = advance(d, state, action, self.scope)
                except CaseError as exc:
                    out.append(exc)
                    continue
                self._record(batch, d, state, version, t)
                out.append(t)
            return out

        result: list[Transition | CaseError] = self._unit(work)
        return result

    def _case_action(self, case_id: str, action: AnyAction) -> None:
        self._unit(lambda batch: self._apply(batch, case_id, action))

    def pause(self, case_id: str, reason: str = "", actor: str = "operator") -> None:
        """Stop a case from moving until it is resumed."""
        self._case_action(case_id, PauseCase(at=self.clock.now(), actor=actor, reason=reason))

    def resume(
        self, case_id: str, data: dict[str, Any] | None = None, actor: str = "operator"
    ) -> None:
        """Continue a paused case, optionally correcting its data first."""
        self._case_action(
            case_id, ResumeCase(at=self.clock.now(), actor=actor, data=dict(data or {}))
        )

    def cancel(self, case_id: str, reason: str = "", actor: str = "operator") -> None:
        """End a case now, cancelling every open task."""
        self._case_action(case_id, CancelCase(at=self.clock.now(), actor=actor, reason=reason))

    def reroute(
        self,
        case_id: str,
        step: str,
        data: dict[str, Any] | None = None,
        actor: str = "operator",
    ) -> None:
        """Withdraw every open task of a case and continue it at ``step``."""
        self._case_action(
            case_id,
            RerouteCase(at=self.clock.now(), actor=actor, step=step, data=dict(data or {})),
        )

    def send_message(
        self, case_id: str, name: str, data: dict[str, Any] | None = None, actor: str | None = None
    ) -> None:
        """Deliver a named message to the step of ``case_id`` waiting for it."""
        self._case_action(
            case_id,
            ReceiveMessage(at=self.clock.now(), actor=actor, name=name, data=dict(data or {})),
        )

    def send_signal(
        self, case_id: str, name: str, data: dict[str, Any] | None = None, actor: str | None = None
    ) -> None:
        """Broadcast a named signal to ``case_id``: every catcher waiting for it is triggered
        (none waiting is no error)."""
        self._case_action(
            case_id,
            ReceiveSignal(at=self.clock.now(), actor=actor, name=name, data=dict(data or {})),
        )

    # -- tasks ----------------------------------------------------------------------------------

    @staticmethod
    def case_of(task_id: str) -> str:
        """The case a task belongs to (task ids are ``case:step:visit``)."""
        if task_id.count(":") < 2:
            raise NotFound(f"{task_id!r} is not a task id")
        return case_of_task(task_id)

    def claim(self, task_id: str, member: str, actor: str | None = None) -> None:
        """Allocate a ready task to ``member`` (pull by the member, or by the hub/operator)."""
        self._case_action(
            self.case_of(task_id),
            ClaimTask(at=self.clock.now(), actor=actor or member, task_id=task_id, member=member),
        )

    def start(self, task_id: str, actor: str) -> None:
        """The member holding a task begins work on it (ends its waiting time)."""
        self._case_action(
            self.case_of(task_id), StartTask(at=self.clock.now(), actor=actor, task_id=task_id)
        )

    def raise_issue(
        self,
        task_id: str,
        actor: str,
        *,
        at_fault: str,
        proposal: str = "rework",
        evidence: str = "",
        deadline_s: float = 86400.0,
    ) -> None:
        """Report a problem with ``task_id`` caused by step ``at_fault``, proposing an action."""
        action = RaiseIssue(
            at=self.clock.now(),
            actor=actor,
            task_id=task_id,
            at_fault=at_fault,
            proposal=proposal,
            evidence=evidence,
            deadline_s=deadline_s,
        )
        self._case_action(self.case_of(task_id), action)

    def answer_issue(
        self, case_id: str, issue: str, actor: str, accept: bool = True, proposal: str = ""
    ) -> None:
        """Accept the proposal on the table, or counter it."""
        action = AnswerIssue(
            at=self.clock.now(), actor=actor, issue=issue, accept=accept, proposal=proposal
        )
        self._case_action(case_id, action)

    def rule_issue(self, case_id: str, issue: str, actor: str, action: str) -> None:
        """Decide an issue for good (the process owner, or the hub)."""
        self._case_action(
            case_id, RuleIssue(at=self.clock.now(), actor=actor, issue=issue, action=action)
        )

    def release(self, task_id: str, actor: str) -> None:
        """Return a claimed task to its team's queue."""
        self._case_action(
            self.case_of(task_id), ReleaseTask(at=self.clock.now(), actor=actor, task_id=task_id)
        )

    def complete(
        self,
        task_id: str,
        actor: str | None,
        data: dict[str, Any] | None = None,
        *,
        decisions: dict[str, list[str]] | None = None,
    ) -> None:
        """Complete a task with its output data (validated against the step's contract)."""
        action = CompleteTask(
            at=self.clock.now(),
            actor=actor,
            task_id=task_id,
            data=dict(data or {}),
            decisions=dict(decisions or {}),
        )
        self._case_action(self.case_of(task_id), action)

    def fail(
        self,
        task_id: str,
        actor: str | None,
        error: str,
        retryable: bool = True,
        code: str = "",
    ) -> None:
        """Report that a task cannot be done; retries or the step's error route follow. With a
        BPMN error ``code`` the nearest matching error boundary or event sub-process takes it."""
        action = FailTask(
            at=self.clock.now(),
            actor=actor,
            task_id=task_id,
            error=error,
            retryable=retryable,
            code=code,
        )
        self._case_action(self.case_of(task_id), action)

    def reassign(
        self,
        task_id: str,
        member: str | None = None,
        team: str | None = None,
        actor: str = "operator",
    ) -> None:
        """Move a task to another member or team."""
        action = ReassignTask(
            at=self.clock.now(), actor=actor, task_id=task_id, member=member, team=team
        )
        self._case_action(self.case_of(task_id), action)

    def retry(self, task_id: str, actor: str = "operator") -> None:
        """Run a failed task again."""
        self._case_action(
            self.case_of(task_id), RetryTask(at=self.clock.now(), actor=actor, task_id=task_id)
        )

    def act_on_task(
        self, task_id: str, decide: Callable[[CaseState, Task], AnyAction]
    ) -> CaseState:
        """One unit of work on a task, with the caller's checks inside it: ``decide`` is given
        the case as this unit read it and the task, and returns the action to apply, or raises
        to refuse (nothing changes). Return the case's state as committed, the hub's follow-ups
        included. The case is read once, and what the checks saw is what the action applies
        to (a unit that loses a race runs again, ``decide`` included, on fresh state)."""
        case_id = self.case_of(task_id)
        # Shared: read the case before taking the engine's lock, so that other threads' units
        # compute while this one waits for the database. Only the first attempt uses it; a
        # stale read costs a retry (the commit's version check), never a wrong write.
        first = [self.store.load_case(case_id)] if self.shared else []

        def work(batch: _Batch) -> _Batch:
            if first:
                loaded = first.pop()
                if loaded is not None:
                    batch.loaded[case_id] = loaded
            state, _ = self._state(batch, case_id)
            task = state.tasks.get(task_id) if state is not None else None
            if state is None or task is None:
                raise NotFound(f"no task {task_id!r}")
            self._apply(batch, case_id, decide(state, task))
            return batch

        done: _Batch = self._unit(work)
        return done.writes[case_id].state

    # -- queries --------------------------------------------------------------------------------

    def case(self, case_id: str) -> CaseState:
        """The current state of a case."""
        with self._lock:
            cached = self._cache.get(case_id)
            if cached is not None:
                return copy.deepcopy(cached[0])  # the caller's to change, not the engine's
            loaded = self.store.load_case(case_id)
        if loaded is None:
            raise NotFound(f"no case {case_id!r}")
        return loaded[0]

    def cases(self, status: str | None = None, limit: int | None = None) -> list[CaseRow]:
        """Cases, oldest first, optionally of one status."""
        return self.store.cases(status, limit)

    def tasks(
        self,
        *,
        team: str | None = None,
        assignee: str | None = None,
        status: str | None = "ready",
        case_id: str | None = None,
        limit: int | None = None,
    ) -> list[TaskRow]:
        """The task queue, oldest first (default: ready tasks)."""
        return self.store.tasks(
            team=team, assignee=assignee, status=status, case_id=case_id, limit=limit
        )

    def events(self, case_id: str | None = None) -> list[Event]:
        """The event log (of one case, or all), in order."""
        return [e for _, e in self.store.events(case_id)]

    def close(self) -> None:
        """Stop the handler threads and close the store."""
        self._runner.shutdown()
        self.store.close()


def open_engine(
    url: str,
    definitions: Iterable[ProcessDefinition] = (),
    *,
    clock: Clock | None = None,
    handlers: HandlerRegistry | None = None,
) -> Engine:
    """Open an engine on the store a URL names (``sqlite:///x.db``, ``memory://``)."""
    from accord.stores import open_store

    return Engine(open_store(url), definitions, clock=clock, handlers=handlers)


__all__ = ["AccordError", "Engine", "HandlerResult", "open_engine"]
