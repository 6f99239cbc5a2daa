"""Claim, release, complete and fail a task for a signed-in user.

Each is one unit of work (``Engine.act_on_task``): the case is read once, :mod:`accord.web.policy`
decides on the task as that unit sees it, and the action applies to exactly what the policy saw
(a unit that loses a race runs again, the decision included). A refusal (``policy.Denied``)
changes nothing. The HTTP API and the pages' forms both act through here, so a check can never
be made on one reading of a task and the action applied to another.
"""

from __future__ import annotations

from typing import Any

from accord.central.engine import Engine
from accord.kernel import (
    AnyAction,
    CaseState,
    ClaimTask,
    CompleteTask,
    FailTask,
    ReleaseTask,
    Task,
)
from accord.stores.base import TaskRow
from accord.web import policy
from accord.web.accounts import User


def row_of(state: CaseState, task: Task) -> TaskRow:
    """A task of a case state as its queue row (what the store writes for it)."""
    return TaskRow(task.id, state.case_id, state.process, task.step, task.kind.value, task.team,
                   task.role, task.status.value, task.assignee, task.ready_at, task.claimed_at,
                   task.attempt, task.hub)  # fmt: skip


def claim(engine: Engine, user: User, task_id: str) -> CaseState:
    """Take a ready task of one of the user's teams."""

    def decide(state: CaseState, task: Task) -> AnyAction:
        grant = policy.work(user, row_of(state, task), "claim")
        return ClaimTask(at=engine.clock.now(), actor=grant.actor, task_id=task_id,
                         member=grant.actor)  # fmt: skip

    return engine.act_on_task(task_id, decide)


def release(engine: Engine, user: User, task_id: str) -> CaseState:
    """Give a claimed task back to its team (the holder, or a lead of the team)."""

    def decide(state: CaseState, task: Task) -> AnyAction:
        grant = policy.release(user, row_of(state, task))
        return ReleaseTask(at=engine.clock.now(), actor=grant.actor, task_id=task_id)

    return engine.act_on_task(task_id, decide)


def complete(engine: Engine, user: User, task_id: str, data: dict[str, Any]) -> CaseState:
    """Complete a task with its output data (checked against the step's contract)."""

    def decide(state: CaseState, task: Task) -> AnyAction:
        grant = policy.work(user, row_of(state, task), "complete")
        return CompleteTask(at=engine.clock.now(), actor=grant.actor, task_id=task_id,
                            data=dict(data))  # fmt: skip

    return engine.act_on_task(task_id, decide)


def fail(
    engine: Engine, user: User, task_id: str, error: str, *, retryable: bool, code: str = ""
) -> CaseState:
    """Report that a task cannot be done; the step's retries or error route follow."""

    def decide(state: CaseState, task: Task) -> AnyAction:
        grant = policy.work(user, row_of(state, task), "fail")
        return FailTask(at=engine.clock.now(), actor=grant.actor, task_id=task_id,
                        error=error, retryable=retryable, code=code)  # fmt: skip

    return engine.act_on_task(task_id, decide)
