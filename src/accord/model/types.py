"""What a process definition is made of. These describe; they never run (see accord.kernel)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from accord.model.expr import Expression


class StepKind(StrEnum):
    """Every kind of node a process graph can hold."""

    START = "start"
    END = "end"
    HUMAN = "human"
    APPROVAL = "approval"
    AUTOMATED = "automated"
    EXCLUSIVE = "exclusive"
    PARALLEL = "parallel"
    INCLUSIVE = "inclusive"
    EVENT_GATEWAY = "event-gateway"
    TIMER = "timer"
    MESSAGE = "message"
    SIGNAL = "signal"
    SUBPROCESS = "subprocess"
    BOUNDARY = "boundary"
    THROW = "throw"

    @property
    def is_gateway(self) -> bool:
        """Gateways route tokens and take no time."""
        return self in (
            StepKind.EXCLUSIVE,
            StepKind.PARALLEL,
            StepKind.INCLUSIVE,
            StepKind.EVENT_GATEWAY,
        )

    @property
    def is_work(self) -> bool:
        """Work is done by a team: a person or a handler."""
        return self in (StepKind.HUMAN, StepKind.APPROVAL, StepKind.AUTOMATED)

    @property
    def is_wait(self) -> bool:
        """A wait state: the step holds a token until a timer, a message or a signal arrives."""
        return self in (StepKind.TIMER, StepKind.MESSAGE, StepKind.SIGNAL)


class Mode(StrEnum):
    """Who runs a process or a step: the hub (``central``) or the owning team (``local``)."""

    CENTRAL = "central"
    LOCAL = "local"


class ErrorAction(StrEnum):
    """What happens when a step fails after its retries are spent."""

    PAUSE = "pause"
    REROUTE = "reroute"


APPROVAL_OUTCOMES = ("approve", "reject", "rework")

TRIGGERS = ("timer", "message", "error", "escalation", "signal")
"""What a boundary event or an event sub-process is started by (the step's ``on``)."""
THROWS = ("error", "escalation", "signal")
"""What an end or throw step throws (the step's ``throw``)."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where an element was written: 1-based line and column."""

    file: str
    line: int
    col: int


NOWHERE = Location("<memory>", 0, 0)


@dataclass(frozen=True, slots=True)
class Member:
    """A person in a team. Roles narrow which tasks they may be given."""

    id: str
    name: str
    roles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Team:
    """A lane: the people who own a set of steps."""

    id: str
    name: str
    members: tuple[Member, ...] = ()
    lead: str | None = None
    wip_limit: int | None = None
    assignment: str = "round-robin"
    loc: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class Retry:
    """Retry policy: up to ``max_attempts`` runs, waiting ``backoff * factor**n`` in between."""

    max_attempts: int = 1
    backoff: float = 60.0
    factor: float = 2.0
    max_backoff: float = 86400.0

    def delay(self, attempt: int) -> float:
        """Delay before attempt number ``attempt + 1`` (attempt counts from 1)."""
        return float(min(self.backoff * self.factor ** max(attempt - 1, 0), self.max_backoff))


@dataclass(frozen=True, slots=True)
class OnError:
    """Error route taken when retries are spent: pause for an operator, or reroute to a step."""

    action: ErrorAction = ErrorAction.PAUSE
    to: str | None = None


@dataclass(frozen=True, slots=True)
class MultiInstance:
    """Run a work step several times for one token: at once (parallel) or one after another.

    ``count`` (an expression, e.g. ``3`` or ``nrOfLoops``) or ``collection`` (a case data field
    holding a list; ``item`` names each element for its instance) says how many; ``until`` ends
    the rest early (their tasks are withdrawn); ``output`` collects each instance's
    ``output_item`` (or its whole completion data) into a list, in instance order.
    """

    sequential: bool = False
    count: Expression | None = None
    collection: str | None = None
    item: str | None = None
    until: Expression | None = None
    output: str | None = None
    output_item: str | None = None


@dataclass(frozen=True, slots=True)
class Loop:
    """Run a work step again while ``condition`` holds (BPMN's standard loop), at most
    ``maximum`` times; ``test_before`` checks the condition before the first run too."""

    condition: Expression | None = None
    maximum: int | None = None
    test_before: bool = False


@dataclass(frozen=True, slots=True)
class Step:
    """A node of the process graph: a task, a gateway, a wait or a start/end event."""

    id: str
    kind: StepKind
    name: str
    team: str | None = None
    role: str | None = None
    handler: str | None = None
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    contract: dict[str, Any] | None = None
    sla: float | None = None
    escalate_to: str | None = None
    retry: Retry = field(default_factory=Retry)
    on_error: OnError = field(default_factory=OnError)
    mode: Mode | None = None
    require_hub_when: Expression | None = None
    wait: float | None = None
    message: str | None = None
    terminate: bool = False
    compliance: bool = False
    outcomes: tuple[str, ...] = ()
    # scopes (see docs/definitions.md#sub-processes-and-events): the sub-process a step is
    # declared in; a boundary's activity; what starts a boundary or an event sub-process
    parent: str | None = None
    attached_to: str | None = None
    on: str | None = None
    interrupting: bool = True
    code: str | None = None  # error or escalation code (None: catch every one)
    signal: str | None = None
    throw: str | None = None
    date: float | None = None  # a timer at a moment (seconds since the epoch)
    repeat: int = 0  # a cycle timer fires this many times in all (-1: while armed; 0: no cycle)
    multi: MultiInstance | None = None  # multi-instance (see docs/definitions.md#loops)
    loop: Loop | None = None  # a standard loop
    loc: Location = NOWHERE
    key_locs: dict[str, Location] = field(default_factory=dict, compare=False, repr=False)

    def at(self, key: str) -> Location:
        """Where ``key`` of this step was written (the step itself if unknown)."""
        return self.key_locs.get(key, self.loc)


@dataclass(frozen=True, slots=True)
class Flow:
    """A sequence flow. ``condition`` is tested in declared order; ``default`` is the fallback."""

    id: str
    source: str
    target: str
    condition: Expression | None = None
    default: bool = False
    loc: Location = NOWHERE
    # a message flow (BPMN collaborations): always taken when its source routes, whatever the
    # conditions; into a message step it carries no share of the case and is kept until the
    # step waits for it (see docs/definitions.md#message-flows)
    message: bool = False


@dataclass(frozen=True, eq=False)
class ProcessDefinition:
    """A whole process: teams, steps and flows, with graph indexes built once at load time.

    Compared and hashed by identity, so per-definition analyses can be cached on it.
    """

    id: str
    version: int
    name: str
    owner: str | None
    mode: Mode
    teams: dict[str, Team]
    steps: dict[str, Step]
    flows: tuple[Flow, ...]
    start: str
    source: str = "<memory>"
    scenario: dict[str, Any] | None = None
    description: str = ""
    outgoing: dict[str, tuple[Flow, ...]] = field(default_factory=dict, repr=False)
    incoming: dict[str, tuple[Flow, ...]] = field(default_factory=dict, repr=False)
    flow_by_id: dict[str, Flow] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        out: dict[str, list[Flow]] = {s: [] for s in self.steps}
        inc: dict[str, list[Flow]] = {s: [] for s in self.steps}
        for f in self.flows:
            out.setdefault(f.source, []).append(f)
            inc.setdefault(f.target, []).append(f)
            self.flow_by_id[f.id] = f
        self.outgoing.update({k: tuple(v) for k, v in out.items()})
        self.incoming.update({k: tuple(v) for k, v in inc.items()})

    @functools.cached_property
    def key(self) -> str:
        """``id@version``, the name events carry (asked several times per transition)."""
        return f"{self.id}@{self.version}"

    def is_join(self, step_id: str) -> bool:
        """A parallel or inclusive gateway with several incoming flows synchronises them
        (message flows never join: a message into a gateway starts a path there)."""
        step = self.steps[step_id]
        return step.kind in (StepKind.PARALLEL, StepKind.INCLUSIVE) and (
            sum(1 for f in self.incoming.get(step_id, ()) if not f.message) > 1
        )

    def team_of(self, step_id: str) -> str | None:
        """The team that owns a step (gateways and events have none)."""
        return self.steps[step_id].team

    def mode_of(self, step_id: str) -> Mode:
        """A step's own mode, else the process mode."""
        return self.steps[step_id].mode or self.mode
