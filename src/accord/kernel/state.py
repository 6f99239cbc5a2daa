"""The running side: a case's state, its tasks and timers. Explicit state enums, no I/O."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

import orjson

from accord.model.types import StepKind


class CaseStatus(StrEnum):
    """Where a case stands. Only RUNNING cases accept work; PAUSED waits for an operator."""

    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        """Ended cases accept nothing more."""
        return self in (CaseStatus.COMPLETED, CaseStatus.CANCELLED)


class TaskStatus(StrEnum):
    """Lifecycle of one activity instance (a work item for people, a job for handlers).

    READY (offered to the team) -> CLAIMED (allocated to a member or worker) -> COMPLETED.
    WAITING holds timers, messages and retry back-off; FAILED waits for an operator.
    """

    READY = "ready"
    CLAIMED = "claimed"
    WAITING = "waiting"
    FAILED = "failed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        """Active tasks hold a token: the case cannot end while one exists."""
        return self in ACTIVE


ACTIVE = frozenset({TaskStatus.READY, TaskStatus.CLAIMED, TaskStatus.WAITING, TaskStatus.FAILED})


class TimerKind(StrEnum):
    """Why a timer exists."""

    SLA = "sla"
    RETRY = "retry"
    WAIT = "wait"
    ISSUE = "issue"  # a negotiation's deadline; `task` holds the issue id


@dataclass(frozen=True, slots=True)
class Token:
    """A token in flight or waiting at a join.

    ``origin`` names the work steps it comes from (to see a handoff between teams);
    ``weight`` is the share of the case it carries, a fraction written ``p/q``: a split divides
    it, a join adds it up, and when the weights that reached an end add up to 1 the case is over.
    The central engine can see that directly; choreographed teams need the weights, because no
    one of them sees every token.
    """

    origin: tuple[str, ...] = ()
    weight: str = "1"


@dataclass(frozen=True, slots=True)
class Task:
    """One activity instance. Replaced, never mutated, when it changes."""

    id: str
    step: str
    kind: StepKind
    status: TaskStatus
    team: str | None
    ready_at: float
    role: str | None = None
    assignee: str | None = None
    attempt: int = 1
    claimed_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    digest: str | None = None
    origin: tuple[str, ...] = ()
    error: str | None = None
    escalated: bool = False
    hub: bool = True
    weight: str = "1"
    # a task re-created because its handoff was refused: on completion it sends its token
    # along this flow again, instead of routing anew (which could repeat a split)
    resend: str | None = None
    # waits started together by an event-based gateway: the first to happen withdraws the rest
    race: str | None = None


@dataclass(frozen=True, slots=True)
class Timer:
    """A timer is data: the driver fires it by sending FireTimer when ``due`` is reached."""

    id: str
    due: float
    kind: TimerKind
    task: str


@dataclass(slots=True)
class CaseState:
    """Everything the kernel knows about one case. Treated as a value: advance() copies it."""

    case_id: str
    process: str
    status: CaseStatus
    started_at: float
    data: dict[str, Any] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    joins: dict[str, dict[str, list[Token]]] = field(default_factory=dict)
    timers: dict[str, Timer] = field(default_factory=dict)
    visits: dict[str, int] = field(default_factory=dict)
    parked: list[tuple[str, Token]] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    incident: dict[str, Any] | None = None
    seq: int = 0
    counter: int = 0
    ended_at: float | None = None
    # Choreography only: the incoming flows each inclusive join was told to expect, oldest first
    # (announced by the team that decided the matching split).
    expect: dict[str, list[list[str]]] = field(default_factory=dict)
    # Choreography only: ids of the events this team already acted on (its inbox), kept in the
    # case's own row so that acting on an event and remembering it commit together.
    consumed: list[str] = field(default_factory=list)
    # Choreography, initiating team only: the share of the case whose branches have ended.
    ended_weight: str = "0"
    # Problems raised about this case's work and where their negotiation stands.
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    # When each data field was last written, as [time, team, seq]: merging case data that
    # arrives from other teams keeps the newest write of each field, whatever order it comes in.
    versions: dict[str, list[Any]] = field(default_factory=dict)

    def copy(self) -> CaseState:
        """A copy whose containers may be changed without touching this one."""
        return replace(
            self,
            tasks=dict(self.tasks),
            joins={g: {f: list(v) for f, v in fl.items()} for g, fl in self.joins.items()},
            timers=dict(self.timers),
            visits=dict(self.visits),
            parked=list(self.parked),
            deferred=list(self.deferred),
            expect={g: [list(x) for x in v] for g, v in self.expect.items()},
            consumed=list(self.consumed),
            issues={k: dict(v) for k, v in self.issues.items()},
            versions=dict(self.versions),
        )  # ended_weight is immutable text: replace() keeps it

    def active_tasks(self) -> list[Task]:
        """Tasks that still hold a token, in creation order."""
        return [t for t in self.tasks.values() if t.status in ACTIVE]

    def to_json(self) -> bytes:
        """Serialise for a store (see :func:`state_from_json`)."""
        return orjson.dumps(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, for APIs."""
        return asdict(self)


def state_from_json(raw: bytes | str) -> CaseState:
    """Inverse of :meth:`CaseState.to_json`."""
    d = orjson.loads(raw)
    tasks = {}
    for tid, t in d["tasks"].items():
        t["kind"] = StepKind(t["kind"])
        t["status"] = TaskStatus(t["status"])
        t["origin"] = tuple(t["origin"])
        tasks[tid] = Task(**t)
    timers = {
        k: Timer(v["id"], v["due"], TimerKind(v["kind"]), v["task"]) for k, v in d["timers"].items()
    }
    joins = {
        g: {f: [_token(t) for t in toks] for f, toks in fl.items()} for g, fl in d["joins"].items()
    }
    return CaseState(
        case_id=d["case_id"],
        process=d["process"],
        status=CaseStatus(d["status"]),
        started_at=d["started_at"],
        data=d["data"],
        tasks=tasks,
        joins=joins,
        timers=timers,
        visits=d["visits"],
        parked=[(p[0], _token(p[1])) for p in d["parked"]],
        deferred=list(d["deferred"]),
        incident=d["incident"],
        seq=d["seq"],
        counter=d["counter"],
        ended_at=d["ended_at"],
        expect=d.get("expect") or {},
        consumed=d.get("consumed") or [],
        ended_weight=d.get("ended_weight") or "0",
        issues=d.get("issues") or {},
        versions=d.get("versions") or {},
    )


def _token(raw: dict[str, Any]) -> Token:
    return Token(tuple(raw["origin"]), raw["weight"])
