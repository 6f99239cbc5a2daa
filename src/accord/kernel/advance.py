"""The process semantics: ``advance(definition, state, action) -> Transition``.

A pure function. It never reads a clock, draws a random number or performs I/O: time comes in
on the action (``at``), and everything the outside world must do (fire a timer later, run a
handler, offer a task) goes out as a command. The same definition, state and action always give
the same transition, which is what lets the central engine, team nodes and the simulator share
it, and lets a recorded history be replayed to prove nothing changed.

Token rules follow BPMN 2.0 (see SEMANTICS.md): a token on a flow either starts a task, passes
through a gateway (which chooses flows), waits at a join, or ends at an end step. Joins are
settled after every other token has moved, so an inclusive join sees the whole case.
"""

from __future__ import annotations

from collections.abc import Callable

from accord.errors import (
    ConflictError,
    NotFound,
    TaskStateError,
)
from accord.events import EventType
from accord.kernel.actions import (
    Announce,
    AnswerIssue,
    AnyAction,
    ArriveToken,
    CancelCase,
    ClaimTask,
    CloseCase,
    CompleteTask,
    EndBranch,
    FailTask,
    FireTimer,
    IssueReply,
    NoteIssue,
    PauseCase,
    RaiseIssue,
    ReassignTask,
    ReceiveMessage,
    ReceiveSignal,
    RejectHandoff,
    ReleaseTask,
    RerouteCase,
    ResumeCase,
    RetryTask,
    ReturnToken,
    RuleIssue,
    StartCase,
    StartTask,
)
from accord.kernel.choreography import _Choreography
from accord.kernel.loops import _Loops
from accord.kernel.negotiation import _Negotiation
from accord.kernel.operators import _Operators
from accord.kernel.scope import Scope
from accord.kernel.scopes import _Scopes
from accord.kernel.state import (
    CaseState,
    CaseStatus,
    Token,
)
from accord.kernel.stepbase import (
    Transition,
    check_data,
)
from accord.kernel.tokens import _Tokens
from accord.kernel.work import _WorkItems
from accord.model.types import (
    ProcessDefinition,
    StepKind,
)


def advance(
    d: ProcessDefinition,
    state: CaseState | None,
    action: AnyAction,
    scope: Scope | None = None,
) -> Transition:
    """Apply one action to a case. Raise a CaseError (and change nothing) if it is refused.

    With a ``scope`` the kernel runs one team's part of the process (choreography).
    """
    if isinstance(action, StartCase):
        if state is not None:
            raise ConflictError(f"case {action.case_id!r} already exists")
        return _Step(d, _new_state(d, action), action, scope).start()
    if (
        state is None
        and isinstance(action, ArriveToken | Announce | RejectHandoff | NoteIssue)
        and (scope)
    ):
        # a team node first hears of a case through a handoff or an announcement
        check_data(getattr(action, "data", {}), "handoff data")
        state = CaseState(action.case_id, d.key, CaseStatus.RUNNING, action.at)
    if state is None:
        raise NotFound("no such case")
    if state.process != d.key:
        raise ConflictError(f"case {state.case_id} runs {state.process}, not {d.key}")
    msg_id = getattr(action, "msg_id", "")
    if msg_id and msg_id in state.consumed:
        return Transition(state, [], [])  # delivered again: acted on once already
    step = _Step(d, state.copy(), action, scope)
    if msg_id:
        step.s.consumed.append(msg_id)
    return step.run()


def replay(d: ProcessDefinition, actions: list[AnyAction]) -> CaseState | None:
    """Fold actions from nothing; the result depends on nothing but the arguments."""
    state: CaseState | None = None
    for a in actions:
        state = advance(d, state, a).state
    return state


def _new_state(d: ProcessDefinition, a: StartCase) -> CaseState:
    if not a.case_id:
        raise ConflictError("a case id is required")
    check_data(a.data, "start data")
    return CaseState(a.case_id, d.key, CaseStatus.RUNNING, a.at, dict(a.data))


class _Step(_WorkItems, _Operators, _Choreography, _Negotiation, _Scopes, _Loops, _Tokens):
    """Working memory for one advance() call."""

    def start(self) -> Transition:
        a = self.a
        assert isinstance(a, StartCase)
        unknown = [n for n in a.decisions if n not in self.d.steps]
        if unknown:
            raise NotFound(f"decisions name no step of {self.d.key}: {', '.join(unknown)}")
        self.decisions = dict(a.decisions)
        self.emit(EventType.CASE_STARTED, data={"data": dict(a.data)})
        start = self.d.steps[self.d.start]
        if self.scope is None:
            self.arm_scope(None, self.s.case_id)  # the process's timer event sub-processes
        if start.kind is StepKind.START:
            self.propagate(self.route(start.id, Token()))
        else:
            self.propagate([], enter=[(start.id, Token())])
        self.settle()
        return self.done()

    def run(self) -> Transition:
        a = self.a
        if self.s.status.ended and isinstance(a, FireTimer):
            return self.done()  # a stale timer of an ended case: harmless, as promised
        if self.s.status.ended and not isinstance(a, CompleteTask):
            raise TaskStateError(f"case {self.s.case_id} has {self.s.status.value}")
        _HANDLERS[type(a)](self)
        if self.s.status in (CaseStatus.RUNNING, CaseStatus.PAUSED):
            self.settle()
        return self.done()


# what each action does, looked up once per transition (not rebuilt as bound methods)
_HANDLERS: dict[type, Callable[[_Step], None]] = {
    ClaimTask: _Step.claim,
    StartTask: _Step.start_work,
    ReleaseTask: _Step.release,
    ReassignTask: _Step.reassign,
    CompleteTask: _Step.complete,
    FailTask: _Step.fail,
    FireTimer: _Step.fire_timer,
    ReceiveMessage: _Step.receive,
    ReceiveSignal: _Step.receive_signal,
    PauseCase: _Step.pause,
    ResumeCase: _Step.resume,
    CancelCase: _Step.cancel,
    RerouteCase: _Step.reroute,
    RetryTask: _Step.retry,
    ArriveToken: _Step.arrive,
    Announce: _Step.announce,
    CloseCase: _Step.close,
    EndBranch: _Step.end_branch,
    RejectHandoff: _Step.reject_handoff,
    RaiseIssue: _Step.raise_issue,
    NoteIssue: _Step.note_issue,
    AnswerIssue: _Step.answer_issue,
    RuleIssue: _Step.rule_issue,
    IssueReply: _Step.issue_reply,
    ReturnToken: _Step.return_token,
}
