"""What can happen to a case: the inputs of :func:`accord.kernel.advance`.

Each action is one small frozen dataclass, so adding a field breaks no caller. ``at`` is the
driver's clock reading; the kernel never reads a clock itself. ``actor`` is who acts: a member
id, ``hub`` for the central assigner, ``worker:<name>`` for a handler worker, ``operator:<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from accord.fastinit import fast_init


@dataclass(frozen=True, slots=True)
class Action:
    """Common fields of every action."""

    at: float
    actor: str | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class StartCase(Action):
    """Start a new case with initial data."""

    case_id: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    decisions: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClaimTask(Action):
    """Allocate a ready task to a member (pull) or by the hub to a member (push)."""

    task_id: str = ""
    member: str = ""


@dataclass(frozen=True, slots=True)
class StartTask(Action):
    """The member holding a task begins work on it (allocated is not started: a member may hold
    work in a queue; waiting ends when work starts)."""

    task_id: str = ""


@dataclass(frozen=True, slots=True)
class ReleaseTask(Action):
    """Give a claimed task back to its team's queue."""

    task_id: str = ""


@dataclass(frozen=True, slots=True)
class ReassignTask(Action):
    """Move a task to another member (claimed) or another team (ready)."""

    task_id: str = ""
    member: str | None = None
    team: str | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class CompleteTask(Action):
    """Finish a task with its output data. ``decisions`` optionally chooses gateway flows.

    ``decisions`` maps a gateway (or this step, when it splits) to the flow ids to take; it is
    how a person or a scenario picks a branch explicitly instead of through conditions.
    """

    task_id: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    decisions: dict[str, list[str]] = field(default_factory=dict)


@fast_init
@dataclass(frozen=True, slots=True)
class FailTask(Action):
    """Report that a task could not be done (a handler raised, a person gave up)."""

    task_id: str = ""
    error: str = ""
    retryable: bool = True
    # a BPMN error code: the failure is a business error, caught by the nearest error
    # boundary or event sub-process that matches it (no retries); uncaught, an incident
    code: str = ""


@dataclass(frozen=True, slots=True)
class FireTimer(Action):
    """A timer's due time was reached. Stale timers are ignored."""

    timer_id: str = ""


@dataclass(frozen=True, slots=True)
class ReceiveMessage(Action):
    """A named message for this case arrived (completes the message step waiting for it)."""

    name: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReceiveSignal(Action):
    """A named signal reached this case: every signal catch, signal boundary and signal event
    sub-process waiting for it now is triggered (a broadcast; none waiting is no error)."""

    name: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PauseCase(Action):
    """Operator: stop the case from moving until resumed."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class ResumeCase(Action):
    """Operator: continue a paused case, optionally correcting its data first."""

    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CancelCase(Action):
    """Operator: end the case now; every open task is cancelled."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class RerouteCase(Action):
    """Operator: withdraw every open task and continue the case at ``step``."""

    step: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RetryTask(Action):
    """Operator: run a failed task again."""

    task_id: str = ""


@fast_init
@dataclass(frozen=True, slots=True)
class ArriveToken(Action):
    """Choreography: a handoff from another team puts a token on ``flow`` at this team.

    ``data`` is the case data as the sender knew it; ``weight`` the share of the case the token
    carries. The case need not exist here yet: a team node first hears of a case this way.
    """

    case_id: str = ""
    flow: str = ""
    origin: tuple[str, ...] = ()
    weight: str = "1"
    data: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, list[Any]] = field(default_factory=dict)
    msg_id: str = ""


@dataclass(frozen=True, slots=True)
class Announce(Action):
    """Choreography: the team that decided an inclusive split tells the team owning its join
    which of the join's incoming flows will carry a token (all others will not)."""

    case_id: str = ""
    join: str = ""
    flows: tuple[str, ...] = ()
    msg_id: str = ""


@dataclass(frozen=True, slots=True)
class RejectHandoff(Action):
    """Choreography: a handoff failed the receiving team's checks (its data contract); record
    the refusal so the sender hears of it. Nothing moves here."""

    case_id: str = ""
    flow: str = ""
    from_team: str = ""
    from_step: str = ""
    weight: str = "1"
    errors: tuple[str, ...] = ()
    msg_id: str = ""


@dataclass(frozen=True, slots=True)
class ReturnToken(Action):
    """Choreography: a handoff this team sent was refused; the work comes back to ``step``
    (a bounced task) so that someone can correct it."""

    step: str = ""
    weight: str = "1"
    reason: str = ""
    flow: str = ""
    msg_id: str = ""


@fast_init
@dataclass(frozen=True, slots=True)
class EndBranch(Action):
    """Choreography, at the initiating team: another team reports a branch that ended.

    When the ended shares add up to the whole case (or a branch ended at a terminate end), the
    case is complete."""

    weight: str = "1"
    terminate: bool = False
    team: str = ""
    msg_id: str = ""


@fast_init
@dataclass(frozen=True, slots=True)
class CloseCase(Action):
    """Choreography: the case ended elsewhere (completed or cancelled); withdraw what is here."""

    outcome: str = "completed"
    reason: str = ""
    msg_id: str = ""


@dataclass(frozen=True, slots=True)
class RaiseIssue(Action):
    """A team working on ``task_id`` found a problem caused by step ``at_fault`` and proposes
    what to do: ``rework`` (send the work back there), ``waive`` (carry on) or ``cancel``."""

    task_id: str = ""
    at_fault: str = ""
    proposal: str = "rework"
    evidence: str = ""
    deadline_s: float = 86400.0
    max_rounds: int = 3


@dataclass(frozen=True, slots=True)
class NoteIssue(Action):
    """Choreography: an issue this team must answer (``respond``) or decide (``rule``)."""

    case_id: str = ""
    issue: str = ""
    role: str = "respond"
    raised_by: str = ""
    step: str = ""
    at_fault: str = ""
    proposal: str = "rework"
    round: int = 1
    msg_id: str = ""


@dataclass(frozen=True, slots=True)
class AnswerIssue(Action):
    """Accept the proposal on the table, or counter it with another."""

    issue: str = ""
    accept: bool = True
    proposal: str = ""


@dataclass(frozen=True, slots=True)
class RuleIssue(Action):
    """The final word (the process owner after an escalation, or the hub): do ``action``."""

    issue: str = ""
    action: str = "rework"


@dataclass(frozen=True, slots=True)
class IssueReply(Action):
    """Choreography, at the raising team: the other side accepted, countered, or ruled."""

    issue: str = ""
    reply: str = "accepted"
    proposal: str = ""
    round: int = 1
    msg_id: str = ""


AnyAction = (
    StartCase
    | ClaimTask
    | StartTask
    | ReleaseTask
    | ReassignTask
    | CompleteTask
    | FailTask
    | FireTimer
    | ReceiveMessage
    | ReceiveSignal
    | PauseCase
    | ResumeCase
    | CancelCase
    | RerouteCase
    | RetryTask
    | ArriveToken
    | Announce
    | RejectHandoff
    | ReturnToken
    | EndBranch
    | RaiseIssue
    | NoteIssue
    | AnswerIssue
    | RuleIssue
    | IssueReply
    | CloseCase
)
