"""What a process definition is made of. These describe; they never run (see accord.kernel)."""

from __future__ import annotations

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
        """A wait state: the step holds a token until a timer or a message arrives."""
        return self in (StepKind.TIMER, StepKind.MESSAGE)


class Mode(StrEnum):
    """Who runs a process or a step: the hub (``central``) or the owning team (``local``)."""

    CENTRAL = "central"
    LOCAL = "local"


class ErrorAction(StrEnum):
    """What happens when a step fails after its retries are spent."""

    PAUSE = "pause"
    REROUTE = "reroute"


APPROVAL_OUTCOMES = ("approve", "reject", "rework")


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

    @property
    def key(self) -> str:
        """``id@version``, the name events carry."""
        return f"{self.id}@{self.version}"

    def is_join(self, step_id: str) -> bool:
        """A parallel or inclusive gateway with several incoming flows synchronises them."""
        step = self.steps[step_id]
        return step.kind in (StepKind.PARALLEL, StepKind.INCLUSIVE) and (
            len(self.incoming.get(step_id, ())) > 1
        )

    def team_of(self, step_id: str) -> str | None:
        """The team that owns a step (gateways and events have none)."""
        return self.steps[step_id].team

    def mode_of(self, step_id: str) -> Mode:
        """A step's own mode, else the process mode."""
        return self.steps[step_id].mode or self.mode
