"""Tasks: the queues (by team, by assignee), and claim, release, complete, fail, reassign,
retry. Each action is recorded by the engine with the signed-in user as its actor.

Claim, release, complete and fail are one unit of work each (:mod:`accord.web.taskacts`, shared
with the pages' forms): the case is read once, the policy decides on the task as that unit sees
it, and the answer is built from the state the unit committed, without reading the task or the
case again."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from accord.central.engine import Engine
from accord.errors import NotFound
from accord.kernel import (
    CaseState,
)
from accord.stores.base import TaskRow
from accord.web import policy, taskacts
from accord.web.accounts import User
from accord.web.api.schemas import (
    CASE_ID_PATTERN,
    NAME_PATTERN,
    TASK_ID_PATTERN,
    CompleteIn,
    FailIn,
    ReassignIn,
    TaskDetail,
    TaskOut,
)
from accord.web.deps import api_user, engine_dep
from accord.web.problems import responses
from accord.web.taskacts import row_of

router = APIRouter(tags=["tasks"], responses=responses(401, 403, 422))
TaskId = Annotated[str, Path(pattern=TASK_ID_PATTERN, description="case:step:visit")]
TaskStatusName = Literal["ready", "claimed", "waiting", "failed", "completed", "cancelled"]
_ACT = responses(404, 409)


def find_task(engine: Engine, task_id: str) -> TaskRow:
    """A task's queue row; NotFound if there is none."""
    for row in engine.tasks(case_id=engine.case_of(task_id), status=None):
        if row.id == task_id:
            return row
    raise NotFound(f"no task {task_id!r}")


def task_detail(engine: Engine, task_id: str) -> TaskDetail:
    """A task with its step's outputs and contract and the case data it reads."""
    row = find_task(engine, task_id)
    return _detail(engine, row, engine.case(row.case_id).data)


def detail_of(engine: Engine, state: CaseState, task_id: str) -> TaskDetail:
    """:func:`task_detail` from a case state already at hand (no reads)."""
    return _detail(engine, row_of(state, state.tasks[task_id]), state.data)


def _answer(engine: Engine, state: CaseState, task_id: str) -> Response:
    """The answer to an action: the task as the unit committed it, serialised here once (the
    route's ``response_model`` still documents it; FastAPI would validate it again, on a second
    trip through the thread pool)."""
    body = detail_of(engine, state, task_id).model_dump_json()
    return Response(body, media_type="application/json")


def _detail(engine: Engine, row: TaskRow, data: dict[str, Any]) -> TaskDetail:
    d = engine.definition(row.process)
    step = d.steps[row.step]
    wanted = step.inputs or tuple(data)
    return TaskDetail(
        **TaskOut.of(row).model_dump(), step_name=step.name, outputs=list(step.outputs),
        outcomes=list(step.outcomes), contract=step.contract,
        input={k: data[k] for k in wanted if k in data},
    )  # fmt: skip


@router.get("/tasks", response_model=list[TaskOut])
def list_tasks(
    *,
    user: Annotated[User, Depends(api_user)],
    engine: Annotated[Engine, Depends(engine_dep)],
    team: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    assignee: Annotated[
        str | None, Query(pattern=NAME_PATTERN, description="a member id, or `me`")
    ] = None,
    status: TaskStatusName | None = None,
    case: Annotated[str | None, Query(pattern=CASE_ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[TaskOut]:
    """Tasks, oldest ready first: a team's queue (``team=...&status=ready``), someone's work
    (``assignee=me&status=claimed``), a case's tasks."""
    who = user.id if assignee == "me" else assignee
    rows = engine.tasks(team=team, assignee=who, status=status, case_id=case, limit=limit)
    return [TaskOut.of(r) for r in rows]


@router.get("/tasks/{task_id}", response_model=TaskDetail, responses=responses(404))
def get_task(
    task_id: TaskId,
    user: Annotated[User, Depends(api_user)],
    engine: Annotated[Engine, Depends(engine_dep)],
) -> TaskDetail:
    """A task with what its step asks for."""
    return task_detail(engine, task_id)


@router.post("/tasks/{task_id}/claim", response_model=TaskDetail, responses=_ACT)
def claim(
    task_id: TaskId,
    user: Annotated[User, Depends(api_user)],
    engine: Annotated[Engine, Depends(engine_dep)],
) -> Response:
    """Take a ready task of one of your teams (a claim is exclusive)."""
    return _answer(engine, taskacts.claim(engine, user, task_id), task_id)


@router.post("/tasks/{task_id}/release", response_model=TaskDetail, responses=_ACT)
def release(
    task_id: TaskId,
    user: Annotated[User, Depends(api_user)],
    engine: Annotated[Engine, Depends(engine_dep)],
) -> Response:
    """Give a claimed task back to its team (the holder, or a lead of the team)."""
    return _answer(engine, taskacts.release(engine, user, task_id), task_id)


@router.post("/tasks/{task_id}/complete", response_model=TaskDetail, responses=_ACT)
def complete(
    task_id: TaskId,
    body: CompleteIn,
    user: Annotated[User, Depends(api_user)],
    engine: Annotated[Engine, Depends(engine_dep)],
) -> Response:
    """Complete a task with its output data, optionally rating the work 1-5 (kept with the
    output as ``feedback``, which the metrics read as team satisfaction)."""
    data = dict(body.data)
    if body.feedback is not None:
        data["feedback"] = body.feedback.model_dump()
    return _answer(engine, taskacts.complete(engine, user, task_id, data), task_id)


@router.post("/tasks/{task_id}/fail", response_model=TaskDetail, responses=_ACT)
def fail(
    task_id: TaskId,
    body: FailIn,
    user: Annotated[User, Depends(api_user)],
    engine: Annotated[Engine, Depends(engine_dep)],
) -> Response:
    """Report that a task cannot be done; the step's retries or error route follow."""
    state = taskacts.fail(
        engine, user, task_id, body.error, retryable=body.retryable, code=body.code
    )
    return _answer(engine, state, task_id)


@router.post("/tasks/{task_id}/reassign", response_model=TaskDetail, responses=_ACT)
def reassign(
    task_id: TaskId,
    body: ReassignIn,
    user: Annotated[User, Depends(api_user)],
    engine: Annotated[Engine, Depends(engine_dep)],
) -> TaskDetail:
    """Move a task to another member and/or team (a lead within their teams, operators)."""
    row = find_task(engine, task_id)
    grant = policy.reassign(user, row, engine.definition(row.process), body.team)
    engine.reassign(task_id, member=body.member, team=body.team, actor=grant.actor)
    return task_detail(engine, task_id)


@router.post("/tasks/{task_id}/retry", response_model=TaskDetail, responses=_ACT)
def retry(
    task_id: TaskId,
    user: Annotated[User, Depends(api_user)],
    engine: Annotated[Engine, Depends(engine_dep)],
) -> TaskDetail:
    """Run a failed task again (a lead of its team, operators)."""
    row = find_task(engine, task_id)
    grant = policy.retry(user, row, engine.definition(row.process))
    engine.retry(task_id, actor=grant.actor)
    return task_detail(engine, task_id)
