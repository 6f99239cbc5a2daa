"""The HTTP API's request and response bodies (they make the OpenAPI document).

Input is checked before it reaches the engine, so that a request the store or the event log
could not hold is a 422 with a precise detail, never a 500: text must be valid UTF-8 without
NUL characters (PostgreSQL refuses both), numbers must fit JSON and 64 bits, and case data is
nested at most 32 deep.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from accord.events import Event
from accord.stores.base import CaseRow, TaskRow

_MAX_DEPTH = 32
_INT_RANGE = (-(2**63), 2**64 - 1)


def _text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid UTF-8 (no lone surrogates)") from None
    return value


def _json(value: Any, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        raise ValueError(f"data may be nested at most {_MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        for k, v in value.items():
            _text(str(k))
            _json(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _json(v, depth + 1)
    elif isinstance(value, str):
        _text(value)
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int) and not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
        raise ValueError("integers must fit in 64 bits")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite")
    return value


def _object(value: dict[str, Any]) -> dict[str, Any]:
    _json(value)
    return value


Text = Annotated[str, AfterValidator(_text)]
Data = Annotated[dict[str, Any], AfterValidator(_object)]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$"
CASE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
TASK_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}:[A-Za-z0-9_.@-]{1,128}:[0-9]{1,9}$"
PROCESS_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}(@[0-9]{1,9})?$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]


def when(t: float | None) -> datetime | None:
    """Seconds since the epoch as an aware UTC datetime."""
    return None if t is None else datetime.fromtimestamp(t, UTC)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- processes ----------------------------------------------------------------------------------


class ProcessOut(_Out):
    """One deployed version of a process."""

    id: str
    version: int
    key: str = Field(description="id@version, as events name it")
    name: str
    owner: str | None
    mode: str
    description: str
    teams: list[str]
    steps: int
    deployed_at: datetime | None = None
    deployed_by: str | None = None


class MemberOut(_Out):
    id: str
    name: str
    roles: list[str]


class TeamOut(_Out):
    id: str
    name: str
    lead: str | None
    assignment: str
    wip_limit: int | None
    members: list[MemberOut]


class StepOut(_Out):
    id: str
    name: str
    kind: str
    team: str | None
    role: str | None
    outputs: list[str]
    outcomes: list[str]
    sla_s: float | None
    contract: dict[str, Any] | None
    next: list[str]


class ProcessDetail(ProcessOut):
    """A version with its teams and steps (the flows are each step's ``next``)."""

    team_detail: list[TeamOut]
    step_detail: list[StepOut]


class DeployIn(BaseModel):
    """A definition to deploy: accord YAML, or BPMN 2.0 XML (imported, then kept as YAML)."""

    source: Annotated[Text, Field(min_length=1, max_length=2_000_000)]
    format: Literal["yaml", "bpmn"] = "yaml"
    process: Annotated[Text | None, Field(max_length=200)] = Field(
        None, description="BPMN only: which process or pool to import, if the file holds several"
    )


class DeployOut(ProcessOut):
    created: bool = Field(description="false when this exact version was already deployed")
    notes: list[str] = Field(default_factory=list, description="What a BPMN import left out")


# -- cases --------------------------------------------------------------------------------------


class CaseIn(BaseModel):
    """Start a case."""

    process: Annotated[str, Field(pattern=PROCESS_PATTERN, description="id or id@version")]
    data: Data = Field(default_factory=dict)
    id: Annotated[str | None, Field(pattern=CASE_ID_PATTERN)] = Field(
        None, description="Case id to use (starting an existing id again is a 409)"
    )


class CaseOut(_Out):
    id: str
    process: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    updated_at: datetime | None
    incident: str | None

    @classmethod
    def of(cls, r: CaseRow) -> CaseOut:
        return cls(id=r.id, process=r.process, status=r.status, started_at=when(r.started_at),
                   ended_at=when(r.ended_at), updated_at=when(r.updated_at),
                   incident=r.incident)  # fmt: skip


class TaskOut(_Out):
    id: str
    case_id: str
    process: str
    step: str
    kind: str
    team: str | None
    role: str | None
    status: str
    assignee: str | None
    ready_at: datetime | None
    claimed_at: datetime | None
    attempt: int
    hub: bool

    @classmethod
    def of(cls, r: TaskRow) -> TaskOut:
        return cls(id=r.id, case_id=r.case_id, process=r.process, step=r.step, kind=r.kind,
                   team=r.team, role=r.role, status=r.status, assignee=r.assignee,
                   ready_at=when(r.ready_at), claimed_at=when(r.claimed_at), attempt=r.attempt,
                   hub=r.hub)  # fmt: skip


class TaskDetail(TaskOut):
    """A task with what its step asks for and the case data it reads."""

    step_name: str
    outputs: list[str]
    outcomes: list[str]
    contract: dict[str, Any] | None
    input: dict[str, Any]


class EventOut(_Out):
    pos: int | None = Field(None, description="Position in the whole log (Last-Event-ID)")
    id: str
    type: str
    case: str
    process: str
    at: datetime
    seq: int
    step: str | None
    team: str | None
    actor: str | None
    task: str | None
    data: dict[str, Any]
    causation: str | None
    source: str

    @classmethod
    def of(cls, e: Event, pos: int | None = None) -> EventOut:
        return cls(pos=pos, id=e.id, type=e.type.value, case=e.case, process=e.process,
                   at=datetime.fromtimestamp(e.at, UTC), seq=e.seq, step=e.step, team=e.team,
                   actor=e.actor, task=e.task, data=e.data, causation=e.causation,
                   source=e.source)  # fmt: skip


class CaseDetail(CaseOut):
    data: dict[str, Any]
    tasks: list[TaskOut]
    events: list[EventOut]
    incident_detail: dict[str, Any] | None


class Reason(BaseModel):
    reason: Annotated[Text, Field(max_length=2000)] = ""


class ResumeIn(BaseModel):
    data: Data = Field(default_factory=dict, description="Corrections to the case data")


class RerouteIn(BaseModel):
    step: Annotated[Text, Field(min_length=1, max_length=200)]
    data: Data = Field(default_factory=dict)


# -- tasks --------------------------------------------------------------------------------------


class Feedback(BaseModel):
    """How the work went, from the person who did it (team satisfaction in the metrics)."""

    rating: Annotated[int, Field(ge=1, le=5)]
    comment: Annotated[Text, Field(max_length=2000)] = ""


class CompleteIn(BaseModel):
    data: Data = Field(default_factory=dict, description="The task's output data")
    feedback: Feedback | None = None


class FailIn(BaseModel):
    error: Annotated[Text, Field(min_length=1, max_length=2000)]
    retryable: bool = True
    code: Annotated[Text, Field(max_length=200)] = Field(
        "", description="A BPMN error code: the matching error boundary or sub-process takes it"
    )


class ReassignIn(BaseModel):
    member: Annotated[str | None, Field(pattern=NAME_PATTERN)] = None
    team: Annotated[str | None, Field(pattern=NAME_PATTERN)] = None


# -- users --------------------------------------------------------------------------------------

Role = Literal["member", "lead", "owner", "admin"]


class UserOut(_Out):
    id: str
    name: str
    teams: list[str]
    roles: list[str]


class UserIn(BaseModel):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")]
    name: Annotated[Text | None, Field(max_length=200)] = None
    password: Annotated[Text | None, Field(min_length=8, max_length=1000)] = None
    teams: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")]] = Field(
        default_factory=list, max_length=100
    )
    roles: list[Role] = Field(default_factory=lambda: list[Role](["member"]), min_length=1)


class TokenIn(BaseModel):
    name: Annotated[Text, Field(min_length=1, max_length=100)] = "api"


class TokenOut(_Out):
    id: str
    user_id: str
    name: str
    created_at: datetime | None
    last_used_at: datetime | None


class NewToken(TokenOut):
    token: str = Field(description="The bearer token; shown this once, stored only hashed")
