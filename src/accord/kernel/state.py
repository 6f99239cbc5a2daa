"""The running side: a case's state, its tasks and timers. Explicit state enums, no I/O."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from operator import attrgetter
from typing import Any

import orjson

from accord.fastinit import fast_init
from accord.model.types import StepKind


class CaseStatus(StrEnum):
    """Where a case stands. Only RUNNING cases accept work; PAUSED waits for an operator."""

    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    # Ended cases accept nothing more. A plain attribute of each member, set below, rather
    # than a property: it is asked a dozen times per transition.
    ended: bool


for _status in CaseStatus:
    _status.ended = _status in (CaseStatus.COMPLETED, CaseStatus.CANCELLED)


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

    # Active tasks hold a token: the case cannot end while one exists (set below, as
    # CaseStatus.ended is).
    active: bool


ACTIVE = frozenset({TaskStatus.READY, TaskStatus.CLAIMED, TaskStatus.WAITING, TaskStatus.FAILED})
for _task_status in TaskStatus:
    _task_status.active = _task_status in ACTIVE


class TimerKind(StrEnum):
    """Why a timer exists."""

    SLA = "sla"
    RETRY = "retry"
    WAIT = "wait"
    ISSUE = "issue"  # a negotiation's deadline; `task` holds the issue id
    # a boundary timer (`task`: the activity) or an event sub-process's timer (`task`: the
    # sub-process instance listening, or the case id at the top level); `step` says which
    EVENT = "event"


@fast_init
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
    # the sub-process instance (its task id) the token moves in; None at the top level.
    # Inside a sub-process instance weights are shares of that instance, not of the case.
    scope: str | None = None


def case_of_task(task_id: str) -> str:
    """The case a task belongs to: task ids are ``case:step:visit`` (see create_task), and a
    case id may itself hold colons."""
    return task_id.rsplit(":", 2)[0]


@fast_init
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
    # the sub-process instance this task runs in (see Token.scope)
    scope: str | None = None
    # a multi-instance or loop step's run this task is one instance of (CaseState.loops), and
    # which instance (0, 1, ...)
    loop: str | None = None
    instance: int = 0

    def evolve(self, **changes: Any) -> Task:
        """``dataclasses.replace(self, **changes)``, five times faster (it runs on every
        completion): every field read in one call, the changed ones replaced, and the result
        built by the positional ``__init__`` (see accord.fastinit)."""
        values = list(_TASK_FIELDS_OF(self))
        for name, value in changes.items():
            i = _TASK_INDEX.get(name)
            if i is None:
                raise TypeError(f"Task has no field {name}")
            values[i] = value
        return Task(*values)


@dataclass(frozen=True, slots=True)
class Timer:
    """A timer is data: the driver fires it by sending FireTimer when ``due`` is reached."""

    id: str
    due: float
    kind: TimerKind
    task: str
    step: str | None = None  # EVENT timers: the boundary or event sub-process it starts
    fired: int = 0  # EVENT cycle timers: how often it fired already


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
    # Messages that arrived along a message flow before their message step waited for them,
    # oldest first, per step: each is [flow id, sending step] (see Flow.message).
    mailbox: dict[str, list[list[str]]] = field(default_factory=dict)
    # Multi-instance and loop steps running: per run, its step, the token it holds, how many
    # instances there are and how many completed (see accord.kernel.loops).
    loops: dict[str, dict[str, Any]] = field(default_factory=dict)

    def copy(self) -> CaseState:
        """A copy whose containers may be changed without touching this one.

        It runs on every transition, so it sets the slots directly: ``dataclasses.replace`` and
        even ``__init__`` (22 keyword arguments, a default factory each) cost two to four times
        as much. Nested containers that are empty are not walked. Every field must be set here:
        ``_COPIED`` below is checked against the class when this module is imported.
        """
        n: CaseState = _new(CaseState)
        n.case_id = self.case_id
        n.process = self.process
        n.status = self.status
        n.started_at = self.started_at
        n.data = self.data  # shared, as before: the kernel replaces it, never changes it
        n.tasks = dict(self.tasks)
        joins = self.joins
        n.joins = (
            {g: {f: list(v) for f, v in fl.items()} for g, fl in joins.items()} if joins else {}
        )
        n.timers = dict(self.timers)
        n.visits = dict(self.visits)
        n.parked = list(self.parked)
        n.deferred = list(self.deferred)
        n.incident = self.incident
        n.seq = self.seq
        n.counter = self.counter
        n.ended_at = self.ended_at
        expect = self.expect
        n.expect = {g: [list(x) for x in v] for g, v in expect.items()} if expect else {}
        n.consumed = list(self.consumed)
        n.ended_weight = self.ended_weight  # immutable text
        issues = self.issues
        n.issues = {k: dict(v) for k, v in issues.items()} if issues else {}
        n.versions = dict(self.versions)
        mailbox = self.mailbox
        n.mailbox = {k: [list(m) for m in v] for k, v in mailbox.items()} if mailbox else {}
        loops = self.loops
        n.loops = (
            {k: {**v, "outputs": list(v.get("outputs", []))} for k, v in loops.items()}
            if loops
            else {}
        )
        return n

    def active_tasks(self) -> list[Task]:
        """Tasks that still hold a token, in creation order."""
        return [t for t in self.tasks.values() if t.status in ACTIVE]

    def to_json(self) -> bytes:
        """Serialise for a store (see :func:`state_from_json`).

        The same bytes as ``orjson.dumps(self)``, but each task's JSON is remembered (see
        :func:`_task_json`): a case is written on every transition, and most of its tasks are
        the very objects the previous write serialised.
        """
        tasks = self.tasks
        if not tasks:
            return orjson.dumps(self)
        if self.status.ended:
            # no transition follows (or hardly any): let go of its tasks' JSON
            for tid in tasks:
                _TASK_JSON.pop(tid, None)
            return orjson.dumps(self)
        doc = {name: getattr(self, name) for name in _FIELD_NAMES}
        doc["tasks"] = {tid: _task_json(t) for tid, t in tasks.items()}
        return orjson.dumps(doc)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, for APIs."""
        return asdict(self)


_new = object.__new__
# what Task.evolve reads and replaces
_TASK_FIELDS = tuple(f.name for f in fields(Task))
_TASK_FIELDS_OF = attrgetter(*_TASK_FIELDS)  # every field of a task, in order, in one call
_TASK_INDEX = {name: i for i, name in enumerate(_TASK_FIELDS)}
# the fields CaseState.copy() sets: a field added to CaseState must be copied there too
_COPIED = frozenset((
    "case_id", "process", "status", "started_at", "data", "tasks", "joins", "timers", "visits",
    "parked", "deferred", "incident", "seq", "counter", "ended_at", "expect", "consumed",
    "ended_weight", "issues", "versions", "mailbox", "loops",
))  # fmt: skip
if {f.name for f in fields(CaseState)} != _COPIED:
    raise TypeError("CaseState.copy() does not set exactly the fields of CaseState")
_FIELD_NAMES = tuple(f.name for f in fields(CaseState))  # in order, as orjson writes them

# The JSON of the tasks of open cases, by task id. Tasks are never changed, only replaced, so a
# task's JSON is that of the object: an entry holds the task itself and is used for that very
# object only (a replaced task's entry is overwritten; an ended case's entries are dropped, see
# CaseState.to_json). So it holds about one entry per task of each open case, as the engine's
# case cache does, and it is cleared when full (a dict's clear is atomic: threads may share it).
_TASK_JSON: dict[str, tuple[Task, orjson.Fragment]] = {}
_TASK_JSON_MAX = 20_000  # as many cases as the engine caches, at one task each


def _task_json(t: Task) -> orjson.Fragment:
    hit = _TASK_JSON.get(t.id)
    if hit is not None and hit[0] is t:
        return hit[1]
    # as text: the bytes orjson returns keep its whole output buffer (about 8 KB, whatever
    # the length; tracemalloc shows it), the text is the JSON's own size
    frag = orjson.Fragment(orjson.dumps(t).decode())
    if len(_TASK_JSON) >= _TASK_JSON_MAX:
        _TASK_JSON.clear()
    _TASK_JSON[t.id] = (t, frag)
    return frag


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
        k: Timer(
            v["id"], v["due"], TimerKind(v["kind"]), v["task"], v.get("step"), v.get("fired", 0)
        )
        for k, v in d["timers"].items()
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
        mailbox=d.get("mailbox") or {},
        loops=d.get("loops") or {},
    )


def _token(raw: dict[str, Any]) -> Token:
    return Token(tuple(raw["origin"]), raw["weight"], raw.get("scope"))
