"""Processes: deploy a definition (YAML or BPMN), list versions, show one, its status board."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response

from accord.central.engine import Engine
from accord.errors import NotFound
from accord.model.types import ProcessDefinition
from accord.web import policy
from accord.web.accounts import User
from accord.web.api.schemas import (
    PROCESS_PATTERN,
    DeployIn,
    DeployOut,
    MemberOut,
    ProcessDetail,
    ProcessOut,
    StepOut,
    TeamOut,
    when,
)
from accord.web.deps import api_user, get_engine
from accord.web.problems import ProblemError, responses

router = APIRouter(tags=["processes"], responses=responses(401, 403))
ProcessId = Annotated[str, Path(pattern=PROCESS_PATTERN, description="id or id@version")]


def _deploy_info(engine: Engine) -> dict[str, tuple[float, str | None, str]]:
    rows = engine.store.run_sql("SELECT key, deployed_at, deployed_by, source FROM definitions")
    return {str(r[0]): (float(r[1]), r[2], str(r[3])) for r in rows}


def summary(d: ProcessDefinition, info: tuple[float, str | None, str] | None) -> ProcessOut:
    """A version's headline."""
    return ProcessOut(
        id=d.id, version=d.version, key=d.key, name=d.name, owner=d.owner, mode=d.mode.value,
        description=d.description, teams=sorted(d.teams), steps=len(d.steps),
        deployed_at=when(info[0]) if info else None, deployed_by=info[1] if info else None,
    )  # fmt: skip


def detail(d: ProcessDefinition, info: tuple[float, str | None, str] | None) -> ProcessDetail:
    """A version with its teams and steps."""
    teams = [
        TeamOut(id=t.id, name=t.name, lead=t.lead, assignment=t.assignment,
                wip_limit=t.wip_limit,
                members=[MemberOut(id=m.id, name=m.name, roles=list(m.roles))
                         for m in t.members])
        for t in d.teams.values()
    ]  # fmt: skip
    steps = [
        StepOut(id=s.id, name=s.name, kind=s.kind.value, team=s.team, role=s.role,
                outputs=list(s.outputs), outcomes=list(s.outcomes), sla_s=s.sla,
                contract=s.contract, next=[f.target for f in d.outgoing.get(s.id, ())])
        for s in d.steps.values()
    ]  # fmt: skip
    base = summary(d, info).model_dump()
    return ProcessDetail(**base, team_detail=teams, step_detail=steps)


def parse_source(body: DeployIn) -> tuple[ProcessDefinition, str, list[str]]:
    """(definition, YAML to keep, import notes) from a deploy request."""
    from accord.model import loads

    if body.format == "bpmn":
        from accord.bpmn.importer import import_bytes, to_yaml

        imported = import_bytes(body.source.encode(), "upload.bpmn", process=body.process)
        text = to_yaml(imported, "upload.bpmn")
        return loads(text, "upload.bpmn (as YAML)"), text, [str(n) for n in imported.notes]
    return loads(body.source, "upload.yaml"), body.source, []


def deploy(engine: Engine, user: User, body: DeployIn) -> tuple[DeployOut, bool]:
    """Deploy a definition as ``user`` (the pages' upload form uses this too); return the
    result and whether it is new. Deploying the same version again with the same source
    changes nothing; with a different source it is refused: publish a new version instead."""
    d, text, notes = parse_source(body)
    try:
        current: ProcessDefinition | None = engine.definition(d.id)
    except NotFound:
        current = None
    grant = policy.deploy(user, d, current)
    info = _deploy_info(engine)
    known = info.get(d.key)
    if known is not None and known[2]:
        if known[2] != text:
            raise ProblemError(
                409, f"{d.key} is already deployed with another source; raise its version"
            )
        return DeployOut(**summary(d, known).model_dump(), created=False, notes=notes), False
    engine.deploy(d)
    now = time.time()
    engine.store.put_definition(d.key, d.name, text, now)
    engine.store.run_sql(
        "UPDATE definitions SET deployed_by = ? WHERE key = ?", (grant.actor, d.key)
    )
    return DeployOut(**summary(d, (now, grant.actor, text)).model_dump(), created=True,
                     notes=notes), True  # fmt: skip


@router.get("/processes", response_model=list[ProcessOut])
def list_processes(
    user: Annotated[User, Depends(api_user)], engine: Annotated[Engine, Depends(get_engine)]
) -> list[ProcessOut]:
    """Every deployed version of every process, by id then version."""
    info = _deploy_info(engine)
    return [summary(d, info.get(d.key)) for d in engine.deployed()]


@router.post(
    "/processes",
    response_model=DeployOut,
    status_code=201,
    responses={200: {"model": DeployOut, "description": "Already deployed"},
               **responses(409, 422)},
)  # fmt: skip
def deploy_process(
    body: DeployIn,
    user: Annotated[User, Depends(api_user)],
    engine: Annotated[Engine, Depends(get_engine)],
    request: Request,
) -> Response:
    """Deploy a definition (process owners for their processes, admins for any)."""
    out, created = deploy(engine, user, body)
    boards = getattr(request.app.state, "boards", None)
    if created and boards is not None:
        boards.follow(engine.definition(out.key))
    return JSONResponse(out.model_dump(mode="json"), status_code=201 if created else 200)


@router.get("/processes/{process}", response_model=ProcessDetail, responses=responses(404, 422))
def show_process(
    process: ProcessId,
    user: Annotated[User, Depends(api_user)],
    engine: Annotated[Engine, Depends(get_engine)],
) -> ProcessDetail:
    """One version (``id@version``), or the latest (``id``), with its teams and steps."""
    d = engine.definition(process)
    return detail(d, _deploy_info(engine).get(d.key))


@router.get(
    "/processes/{process}/versions",
    response_model=list[ProcessOut],
    responses=responses(404, 422),
)
def list_versions(
    process: Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")],
    user: Annotated[User, Depends(api_user)],
    engine: Annotated[Engine, Depends(get_engine)],
) -> list[ProcessOut]:
    """Every deployed version of one process, oldest first."""
    info = _deploy_info(engine)
    versions = [summary(d, info.get(d.key)) for d in engine.deployed() if d.id == process]
    if not versions:
        raise NotFound(f"no process {process!r} deployed")
    return versions


@router.get(
    "/processes/{process}/bpmn",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}, "description": "BPMN 2.0 XML"},
               **responses(404, 422)},
)  # fmt: skip
def export_process(
    process: ProcessId,
    user: Annotated[User, Depends(api_user)],
    engine: Annotated[Engine, Depends(get_engine)],
) -> Response:
    """The version as BPMN 2.0 with a diagram (for bpmn-js and other modelers)."""
    from accord.bpmn.exporter import export_bpmn

    d = engine.definition(process)
    return Response(export_bpmn(d), media_type="application/xml")


@router.get("/processes/{process}/board", responses=responses(404, 422))
def board(
    process: Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")],
    user: Annotated[User, Depends(api_user)],
    request: Request,
) -> dict[str, object]:
    """The status board of a choreographed process, from its team nodes' events on the bus
    (``accord serve --bus URL``): where each case stands, who holds it, silent cases."""
    boards = request.app.state.boards
    if not boards.attached:
        raise ProblemError(404, "no bus attached: start the server with --bus URL for boards")
    view = boards.view(process)
    if view is None:
        raise ProblemError(404, f"no board for {process!r}: it is not deployed here")
    result: dict[str, object] = view
    return result
