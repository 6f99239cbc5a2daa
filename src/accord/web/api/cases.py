"""Cases: start, list and filter, show with tasks and events; operator actions on a case."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from accord.central.engine import Engine
from accord.errors import NotFound
from accord.model.types import ProcessDefinition
from accord.stores.base import CaseRow
from accord.web import policy
from accord.web.accounts import User
from accord.web.api.schemas import (
    CASE_ID_PATTERN,
    PROCESS_PATTERN,
    CaseDetail,
    CaseIn,
    CaseOut,
    EventOut,
    Reason,
    RerouteIn,
    ResumeIn,
    TaskOut,
)
from accord.web.deps import api_user, get_engine
from accord.web.problems import responses

router = APIRouter(tags=["cases"], responses=responses(401, 403, 422))
CaseId = Annotated[str, Path(pattern=CASE_ID_PATTERN)]
CaseStatusName = Literal["running", "paused", "completed", "cancelled"]


def case_row(engine: Engine, case_id: str) -> CaseRow:
    """A case's headline; NotFound if there is none."""
    rows = engine.store.run_sql(
        "SELECT id, process, status, started_at, ended_at, updated_at, incident FROM cases "
        "WHERE id = ?",
        (case_id,),
    )
    if not rows:
        raise NotFound(f"no case {case_id!r}")
    return CaseRow(*rows[0])


def definition_of(engine: Engine, case_id: str) -> ProcessDefinition:
    """The definition (the exact version) a case runs on."""
    return engine.definition(case_row(engine, case_id).process)


def show(engine: Engine, case_id: str) -> CaseDetail:
    """A case with its data, every task and its whole history."""
    row = case_row(engine, case_id)
    state = engine.case(case_id)
    tasks = engine.tasks(case_id=case_id, status=None)
    events = [EventOut.of(e, pos) for pos, e in engine.store.events(case_id)]
    return CaseDetail(
        **CaseOut.of(row).model_dump(), data=state.data, incident_detail=state.incident,
        tasks=[TaskOut.of(t) for t in tasks], events=events,
    )  # fmt: skip


@router.post("/cases", response_model=CaseDetail, status_code=201, responses=responses(404, 409))
def start_case(
    body: CaseIn,
    user: Annotated[User, Depends(api_user)],
    engine: Annotated[Engine, Depends(get_engine)],
) -> CaseDetail:
    """Start a case of a process (``id`` for the latest version, or ``id@version``)."""
    d = engine.definition(body.process)
    grant = policy.start(user, d)
    case_id = engine.start_case(d.key, body.data, case_id=body.id, actor=grant.actor)
    return show(engine, case_id)


@router.get("/cases", response_model=list[CaseOut])
def list_cases(
    *,
    user: Annotated[User, Depends(api_user)],
    engine: Annotated[Engine, Depends(get_engine)],
    status: CaseStatusName | None = None,
    process: Annotated[
        str | None, Query(pattern=PROCESS_PATTERN, description="id (any version) or id@version")
    ] = None,
    started_after: datetime | None = None,
    started_before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[CaseOut]:
    """Cases, newest first, filtered by status, process and start time."""
    where: list[str] = []
    args: list[object] = []
    if status is not None:
        where.append("status = ?")
        args.append(status)
    if process is not None:
        if "@" in process:
            where.append("process = ?")
            args.append(process)
        else:
            where.append("substr(process, 1, ?) = ?")
            args.extend([len(process) + 1, process + "@"])
    if started_after is not None:
        where.append("started_at >= ?")
        args.append(started_after.timestamp())
    if started_before is not None:
        where.append("started_at < ?")
        args.append(started_before.timestamp())
    sql = "SELECT id, process, status, started_at, ended_at, updated_at, incident FROM cases"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY started_at DESC, id LIMIT ? OFFSET ?"
    rows = engine.store.run_sql(sql, [*args, limit, offset])
    return [CaseOut.of(CaseRow(*r)) for r in rows]


@router.get("/cases/{case_id}", response_model=CaseDetail, responses=responses(404))
def get_case(
    case_id: CaseId,
    user: Annotated[User, Depends(api_user)],
    engine: Annotated[Engine, Depends(get_engine)],
) -> CaseDetail:
    """A case with its data, tasks and events."""
    return show(engine, case_id)


@router.get("/cases/{case_id}/events", response_model=list[EventOut], responses=responses(404))
def case_events(
    case_id: CaseId,
    user: Annotated[User, Depends(api_user)],
    engine: Annotated[Engine, Depends(get_engine)],
) -> list[EventOut]:
    """A case's history, in order."""
    case_row(engine, case_id)
    return [EventOut.of(e, pos) for pos, e in engine.store.events(case_id)]


_ACT = responses(404, 409)


@router.post("/cases/{case_id}/pause", response_model=CaseDetail, responses=_ACT)
def pause(
    case_id: CaseId,
    body: Reason,
    user: Annotated[User, Depends(api_user)],
    engine: Annotated[Engine, Depends(get_engine)],
) -> CaseDetail:
    """Stop a running case (leads of a team in the process, operators)."""
    grant = policy.pause_resume(user, definition_of(engine, case_id), "pause")
    engine.pause(case_id, body.reason, actor=grant.actor)
    return show(engine, case_id)


@router.post("/cases/{case_id}/resume", response_model=CaseDetail, responses=_ACT)
def resume(
    case_id: CaseId,
    body: ResumeIn,
    user: Annotated[User, Depends(api_user)],
    engine: Annotated[Engine, Depends(get_engine)],
) -> CaseDetail:
    """Continue a paused case, optionally correcting its data first."""
    grant = policy.pause_resume(user, definition_of(engine, case_id), "resume")
    engine.resume(case_id, body.data, actor=grant.actor)
    return show(engine, case_id)


@router.post("/cases/{case_id}/cancel", response_model=CaseDetail, responses=_ACT)
def cancel(
    case_id: CaseId,
    body: Reason,
    user: Annotated[User, Depends(api_user)],
    engine: Annotated[Engine, Depends(get_engine)],
) -> CaseDetail:
    """End a case now, cancelling every open task (operators only)."""
    grant = policy.cancel_reroute(user, definition_of(engine, case_id), "cancel")
    engine.cancel(case_id, body.reason, actor=grant.actor)
    return show(engine, case_id)


@router.post("/cases/{case_id}/reroute", response_model=CaseDetail, responses=_ACT)
def reroute(
    case_id: CaseId,
    body: RerouteIn,
    user: Annotated[User, Depends(api_user)],
    engine: Annotated[Engine, Depends(get_engine)],
) -> CaseDetail:
    """Withdraw every open task and continue at ``step`` (operators only)."""
    grant = policy.cancel_reroute(user, definition_of(engine, case_id), "reroute")
    engine.reroute(case_id, body.step, body.data, actor=grant.actor)
    return show(engine, case_id)
