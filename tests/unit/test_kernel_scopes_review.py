"""Scopes, reviewed: cases found wrong in review, each pinned by a test.

Boundaries on multi-instance steps (BPMN 2.0.2, 13.3.7: a boundary is attached to the activity
as a whole, the multi-instance body), timers left behind, errors thrown by an error handler,
interrupting event sub-processes and the boundaries of their scope.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from fractions import Fraction
from typing import Any

import pytest
from casekit import Case, build
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.errors import NotFound as NotFoundError
from accord.events import EventType
from accord.kernel import (
    AnyAction,
    CancelTimer,
    CaseState,
    CaseStatus,
    CompleteTask,
    FailTask,
    FireTimer,
    PauseCase,
    ReceiveMessage,
    ReceiveSignal,
    RerouteCase,
    ResumeCase,
    RetryTask,
    ScheduleTimer,
    StartCase,
    TaskStatus,
    TimerKind,
    advance,
)
from accord.kernel.state import state_from_json
from accord.model import StepKind
from accord.model.loader import from_document

MI_BOUNDARY = """
- {id: start, type: start, next: work}
- {id: work, team: ops, next: end, multi_instance: {count: "3", SEQ}}
- {id: late, type: boundary, attached_to: work, on: timer, wait: PT1H, INTERRUPTING next: chase}
- {id: chase, team: ops, next: end2}
- {id: end, type: end}
- {id: end2, type: end}
"""


def _mi(sequential: bool = False, interrupting: bool = True) -> Case:
    return Case(
        build(
            MI_BOUNDARY.replace("SEQ", f"sequential: {str(sequential).lower()}").replace(
                "INTERRUPTING", "" if interrupting else "interrupting: false,"
            )
        )
    )


def test_a_timer_boundary_on_a_multi_instance_step_is_one_timer_for_the_whole_step() -> None:
    c = _mi()
    assert len(c.tasks("work")) == 3
    (timer,) = c.timers(TimerKind.EVENT)
    c.fire(timer)
    # interrupting: every instance is cancelled, one token leaves by the boundary
    assert c.active() == ["chase"]
    assert c.s.loops == {}
    c.complete("chase")
    assert c.s.status is CaseStatus.COMPLETED
    assert len(c.of(EventType.TASK_CANCELLED)) == 3


def test_a_sequential_multi_instance_keeps_one_timer_across_its_instances() -> None:
    c = _mi(sequential=True)
    (timer,) = c.timers(TimerKind.EVENT)
    c.complete("work", at=600)
    assert c.timers(TimerKind.EVENT) == [timer]  # not restarted by the next instance
    c.fire(timer)
    assert c.active() == ["chase"]
    assert c.s.loops == {}


def test_the_boundary_timer_of_a_multi_instance_step_ends_with_the_run() -> None:
    c = _mi()
    for t in c.tasks("work"):
        c.do(CompleteTask(c.now + 1, task_id=t.id))
    assert c.s.status is CaseStatus.COMPLETED
    assert c.s.timers == {}


def test_a_non_interrupting_signal_boundary_on_a_multi_instance_step_fires_once() -> None:
    d = build(
        """
        - {id: start, type: start, next: work}
        - {id: work, team: ops, next: end, multi_instance: {count: "3"}}
        - {id: sig, type: boundary, attached_to: work, on: signal, signal: go,
           interrupting: false, next: chase}
        - {id: chase, team: ops, next: end2}
        - {id: end, type: end}
        - {id: end2, type: end}
        """
    )
    c = Case(d)
    c.do(ReceiveSignal(c.now + 1, name="go"))
    assert c.active() == ["chase", "work", "work", "work"]
    for t in c.tasks():
        c.do(CompleteTask(c.now + 1, task_id=t.id))
    assert c.s.status is CaseStatus.COMPLETED


def test_an_error_caught_on_a_multi_instance_step_ends_every_instance() -> None:
    d = build(
        """
        - {id: start, type: start, next: work}
        - {id: work, type: automated, team: it, handler: "x:y", next: end,
           multi_instance: {count: "2"}}
        - {id: bad, type: boundary, attached_to: work, on: error, next: mop}
        - {id: mop, team: ops, next: end}
        - {id: end, type: end}
        """
    )
    c = Case(d)
    first = c.tasks("work")[0]
    c.do(FailTask(c.now + 1, "worker:w", task_id=first.id, error="no", code="E"))
    assert c.active() == ["mop"]
    assert c.s.loops == {}
    c.complete("mop")
    assert c.s.status is CaseStatus.COMPLETED


def test_an_interrupting_event_sub_process_leaves_its_scope_boundaries_armed() -> None:
    d = build(
        """
        - {id: start, type: start, next: sub}
        - id: sub
          type: subprocess
          next: end
          steps:
            - {id: s0, type: start, next: work}
            - {id: work, team: ops, next: s9}
            - {id: s9, type: end}
            - id: esp
              type: subprocess
              on: message
              message: upd
              steps:
                - {id: e0, type: start, next: handle}
                - {id: handle, team: sales, next: e9}
                - {id: e9, type: end}
        - {id: late, type: boundary, attached_to: sub, on: timer, wait: PT1H, next: chase}
        - {id: chase, team: ops, next: end2}
        - {id: end, type: end}
        - {id: end2, type: end}
        """
    )
    c = Case(d)
    c.do(ReceiveMessage(c.now + 1, name="upd"))
    assert c.active() == ["esp", "handle", "sub"]
    (timer,) = c.timers(TimerKind.EVENT)  # the sub-process still runs: its boundary watches
    c.fire(timer)
    assert c.active() == ["chase"]


ERROR_IN_HANDLER = """
- {id: start, type: start, next: work}
- {id: work, team: ops, next: end}
- {id: end, type: end}
- id: onerr
  type: subprocess
  on: error
  steps:
    - {id: e0, type: start, next: mop}
    - {id: mop, team: sales, next: e9}
    - {id: e9, type: end, throw: error, code: E}
"""


def test_an_error_thrown_by_the_process_error_handler_is_not_caught_by_itself() -> None:
    c = Case(build(ERROR_IN_HANDLER))
    c.do(FailTask(c.now + 1, "worker:w", task_id=c.task("work").id, error="x", code="E"))
    assert c.active() == ["mop", "onerr"]
    c.complete("mop")
    # the process was interrupted by its handler: nothing inside it catches the handler's error
    assert c.created("onerr") == 1
    assert c.s.status is CaseStatus.PAUSED
    assert c.s.incident is not None and c.s.incident["code"] == "E"


def test_an_error_thrown_by_an_error_handler_goes_to_the_boundary_of_its_scope() -> None:
    d = build(
        """
        - {id: start, type: start, next: sub}
        - id: sub
          type: subprocess
          next: end
          steps:
            - {id: s0, type: start, next: w}
            - {id: w, team: ops, next: s9}
            - {id: s9, type: end, throw: error, code: E}
            - id: onerr
              type: subprocess
              on: error
              steps:
                - {id: e0, type: start, next: e9}
                - {id: e9, type: end, throw: error, code: E}
        - {id: caught, type: boundary, attached_to: sub, on: error, code: E, next: h}
        - {id: h, team: ops, next: end}
        - {id: end, type: end}
        """
    )
    c = Case(d)
    c.complete("w")  # used to loop for ever: the handler's error restarted the handler
    assert c.active() == ["h"]
    assert c.created("onerr") == 1


TIMED_TASK = """
- {id: start, type: start, next: work}
- {id: work, type: automated, team: it, handler: "x:y", next: end, retry: {max_attempts: 1}}
- {id: late, type: boundary, attached_to: work, on: timer, wait: PT1H, next: chase}
- {id: chase, team: ops, next: end2}
- {id: end, type: end}
- {id: end2, type: end}
"""


def test_a_failed_task_keeps_its_boundary_timer_through_the_incident_and_retry() -> None:
    c = Case(build(TIMED_TASK))
    (timer,) = c.timers(TimerKind.EVENT)
    c.fail("work", retryable=False)
    assert c.s.status is CaseStatus.PAUSED
    c.do(RetryTask(c.now + 1, "operator:o", task_id=c.task("work").id))
    assert c.timers(TimerKind.EVENT) == [timer]  # the activity never ended
    c.fire(timer)
    assert c.active() == ["chase"]
    assert c.s.tasks["c1:work:1"].status is TaskStatus.CANCELLED


def test_a_reroute_keeps_the_process_event_sub_process_timers() -> None:
    d = build(
        """
        - {id: start, type: start, next: a}
        - {id: a, team: ops, next: b}
        - {id: b, team: ops, next: end}
        - {id: end, type: end}
        - id: remind
          type: subprocess
          on: timer
          wait: PT1H
          interrupting: false
          steps:
            - {id: r0, type: start, next: r}
            - {id: r, team: sales, next: r9}
            - {id: r9, type: end}
        """
    )
    c = Case(d)
    (timer,) = c.timers(TimerKind.EVENT)
    c.do(RerouteCase(c.now + 1, "operator:o", step="b"))
    assert c.timers(TimerKind.EVENT) == [timer]  # the process still runs: its listeners too
    c.fire(timer)
    assert c.active() == ["b", "r", "remind"]
    # one that fell due while the case was paused happens with the reroute
    c = Case(d)
    c.do(PauseCase(c.now + 1, "operator:o"))
    c.fire(c.timers(TimerKind.EVENT)[0])
    assert c.s.deferred
    c.do(RerouteCase(c.now + 1, "operator:o", step="b"))
    assert c.active() == ["b", "r", "remind"]
    assert c.s.deferred == []


def test_an_uncaught_error_end_at_the_top_level_pauses_the_case_instead_of_completing_it() -> None:
    d = build(
        """
        - {id: start, type: start, next: w}
        - {id: w, team: ops, next: boom}
        - {id: boom, type: end, throw: error, code: E}
        """
    )
    c = Case(d)
    c.complete("w")
    assert c.s.status is CaseStatus.PAUSED  # was: case.paused, then case.completed at once
    assert c.of(EventType.CASE_COMPLETED) == []
    c.do(ResumeCase(c.now + 1, "operator:o"))  # the operator accepts the error
    assert c.s.status is CaseStatus.COMPLETED
    assert c.s.incident is None


def test_an_uncaught_error_inside_a_sub_process_holds_it_open_until_resumed() -> None:
    d = build(
        """
        - {id: start, type: start, next: sub}
        - id: sub
          type: subprocess
          next: after
          steps:
            - {id: s0, type: start, next: w}
            - {id: w, team: ops, next: boom}
            - {id: boom, type: end, throw: error, code: E}
        - {id: after, team: sales, next: end}
        - {id: end, type: end}
        """
    )
    c = Case(d)
    c.complete("w")
    assert c.s.status is CaseStatus.PAUSED
    assert c.active() == ["sub"]  # nothing moves on past the error while the incident is open
    c.do(ResumeCase(c.now + 1, "operator:o"))
    assert c.active() == ["after"]


# -- a property: sub-processes, boundaries of every kind, random orders --------------------------


# a boundary: (on, interrupting); timers non-interrupting repeat (R2)
BOUNDARY = st.sampled_from(
    [
        None,
        ("timer", True),
        ("timer", False),
        ("message", True),
        ("message", False),
        ("signal", True),
        ("signal", False),
        ("error", True),
        ("escalation", True),
        ("escalation", False),
    ]
)
# an event sub-process inside a sub-process: (on, interrupting)
ESP = st.sampled_from(
    [None, ("message", False), ("message", True), ("error", True), ("escalation", False)]
)
# how a sub-process's path ends: plainly, terminating it, or throwing
END = st.sampled_from([{}, {"terminate": True}, {"throw": "error"}, {"throw": "escalation"}])
LEAF = st.tuples(st.just("task"), st.sampled_from(["human", "automated", "mi", "seqmi"]), BOUNDARY)


def _grow(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.tuples(st.just("seq"), children, children),
        st.tuples(st.just("par"), children, children),
        st.tuples(st.just("sub"), children, BOUNDARY, ESP, END, st.sampled_from(["", "mi"])),
    )


SCOPED = st.recursive(LEAF, _grow, max_leaves=6)


class _Model:
    def __init__(self) -> None:
        self.n = 0
        self.top: list[dict[str, Any]] = []
        self.stack: list[list[dict[str, Any]]] = [self.top]

    def new(self, prefix: str, **body: Any) -> dict[str, Any]:
        self.n += 1
        step = {"id": f"{prefix}{self.n}", **body}
        self.stack[-1].append(step)
        return step

    def boundary(self, on_: Any, target: str) -> None:
        if on_ is None:
            return
        on, interrupting = on_
        b = self.new("b", type="boundary", attached_to=target, on=on, interrupting=interrupting)
        if on == "timer":
            b.update({"cycle": "R2/PT20M"} if not interrupting else {"wait": "PT30M"})
        elif on == "message":
            b["message"] = "m"
        elif on == "signal":
            b["signal"] = "s"
        h = self.new("h", team="red")
        b["next"] = h["id"]
        h["next"] = self.new("he", type="end")["id"]

    def block(self, blk: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Compile a block in the current scope: (entry step, exit step)."""
        kind = blk[0]
        if kind == "task":
            _, what, on_ = blk
            body: dict[str, Any] = {"team": "blue"}
            if what == "automated":
                body.update(type="automated", handler="x:y", retry={"max_attempts": 1})
            elif what in ("mi", "seqmi"):
                body["multi_instance"] = {"count": "2", "sequential": what == "seqmi"}
            step = self.new("t", **body)
            self.boundary(on_, step["id"])
            return step, step
        if kind == "seq":
            a_in, a_out = self.block(blk[1])
            b_in, b_out = self.block(blk[2])
            a_out["next"] = b_in["id"]
            return a_in, b_out
        if kind == "par":
            split = self.new("p", type="parallel")
            a_in, a_out = self.block(blk[1])
            b_in, b_out = self.block(blk[2])
            join = self.new("j", type="parallel")
            split["next"] = [a_in["id"], b_in["id"]]
            a_out["next"] = b_out["next"] = join["id"]
            return split, join
        _, inner, on_, esp, end, mi = blk
        sub = self.new("sub", type="subprocess", steps=[])
        if mi:  # a multi-instance sub-process: two instances at once
            sub["multi_instance"] = {"count": "2"}
        self.stack.append(sub["steps"])
        start = self.new("s", type="start")
        i_in, i_out = self.block(inner)
        start["next"] = i_in["id"]
        i_out["next"] = self.new("e", type="end", **end)["id"]
        if esp:  # a listener inside
            e = self.new("esp", type="subprocess", on=esp[0], interrupting=esp[1], steps=[])
            if esp[0] == "message":
                e["message"] = "m2"
            self.stack.append(e["steps"])
            e0 = self.new("s", type="start")
            x = self.new("x", team="green")
            e0["next"] = x["id"]
            x["next"] = self.new("e", type="end")["id"]
            self.stack.pop()
        self.stack.pop()
        self.boundary(on_, sub["id"])
        return sub, sub


def _definition(blk: Any) -> Any:
    m = _Model()
    start = m.new("start", type="start")
    b_in, b_out = m.block(blk)
    start["next"] = b_in["id"]
    b_out["next"] = m.new("end", type="end")["id"]
    teams = {t: {"members": [f"{t}1"]} for t in ("red", "blue", "green")}
    return from_document({"process": "scoped", "teams": teams, "steps": m.top})


def _check_weights(s: CaseState) -> None:
    """Per scope instance (the process, each running sub-process), the shares held add up to
    at most 1 (paths that ended took theirs), and to more than nothing while it runs."""
    held: dict[str | None, Fraction] = defaultdict(Fraction)
    for t in s.active_tasks():
        # (an event sub-process instance takes no share beside its scope's tokens, and the
        # whole of it when it interrupts: it counts like any task)
        held[t.scope] += Fraction(t.weight)
    for slots in s.joins.values():
        for toks in slots.values():
            for tok in toks:
                held[tok.scope] += Fraction(tok.weight)
    for _, tok in s.parked:
        held[tok.scope] += Fraction(tok.weight)
    # a multi-instance run holds its share in its instances (parallel: split between them)
    scopes = [None] + [t.id for t in s.active_tasks() if t.kind is StepKind.SUBPROCESS]
    for sc in scopes:
        # (a path that ended took its share with it: never more than the whole)
        assert held[sc] <= 1, f"scope {sc}: shares add up to {held[sc]}"
        if sc is not None:  # a sub-process instance runs while something is inside it
            inside = [t.scope for t in s.active_tasks()] + [tok.scope for _, tok in s.parked]
            inside += [tok.scope for fl in s.joins.values() for v in fl.values() for tok in v]
            assert sc in inside, f"{sc} is empty"


def _check_timers(s: CaseState) -> None:
    """Every timer belongs to something that still runs: no timer outlives its activity."""
    live = {t.id for t in s.active_tasks()} | set(s.loops)
    if not s.status.ended:
        live.add(s.case_id)
    for tm in s.timers.values():
        assert tm.task in live, f"timer {tm.id} ({tm.step}) outlived {tm.task}"


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(SCOPED, st.integers(0, 2**32))
def test_random_scoped_processes_conserve_shares_and_leave_no_timer(blk: Any, seed: int) -> None:
    d = _definition(blk)
    rnd = random.Random(seed)
    actions: list[AnyAction] = []
    pending: dict[str, float] = {}
    state: CaseState | None = None
    clock = 0.0
    completed: Counter[str] = Counter()

    def do(a: AnyAction) -> None:
        nonlocal state
        tr = advance(d, state, a)
        raw = tr.state.to_json()
        assert state_from_json(raw) == tr.state
        state = state_from_json(raw)
        actions.append(a)
        for cmd in tr.commands:
            if isinstance(cmd, ScheduleTimer):
                pending[cmd.timer_id] = cmd.due
            elif isinstance(cmd, CancelTimer):
                pending.pop(cmd.timer_id, None)
        for e in tr.events:
            if e.type is EventType.TASK_COMPLETED and e.task:
                completed[e.task] += 1
        assert set(state.timers) <= set(pending), "a timer the driver was never told of"
        _check_timers(state)
        if state.status is CaseStatus.RUNNING:
            _check_weights(state)

    do(StartCase(0.0, case_id="k1"))
    for _ in range(150):
        s = state
        assert s is not None
        if s.status.ended:
            break
        clock += rnd.choice([0, 1, 60, 900])
        if s.status is CaseStatus.PAUSED:
            failed = [t for t in s.active_tasks() if t.status is TaskStatus.FAILED]
            if failed:
                do(RetryTask(clock, "operator:o", task_id=failed[0].id))
            else:
                do(ResumeCase(clock, "operator:o"))
            continue
        ready = [t for t in s.active_tasks() if t.status is TaskStatus.READY]
        roll = rnd.random()
        try:
            if roll < 0.1:
                do(ReceiveMessage(clock, name=rnd.choice(["m", "m2"])))
            elif roll < 0.15:
                do(ReceiveSignal(clock, name="s"))
            elif roll < 0.22 and ready:
                t = rnd.choice(ready)
                do(FailTask(clock, "worker:w", task_id=t.id, error="x", code="E"))
            elif pending and (roll < 0.4 or not ready):
                tid = min(pending, key=lambda k: (pending[k], k))
                clock = max(clock, pending.pop(tid))
                do(FireTimer(clock, timer_id=tid))
            elif ready:
                do(CompleteTask(clock, task_id=rnd.choice(ready).id))
            else:
                break
        except NotFoundError:
            pass  # a message nobody waits for
    s = state
    assert s is not None
    assert all(n == 1 for n in completed.values()), completed
    if s.status.ended:
        assert s.timers == {} and s.active_tasks() == [] and s.joins == {}
        assert s.loops == {}, "a multi-instance run outlived the case"
    elif s.status is CaseStatus.RUNNING:
        assert s.active_tasks(), "a running case with nothing to do"
    # replay gives the same state
    again: CaseState | None = None
    for a in actions:
        again = advance(d, again, a).state
    assert again is not None and again.to_json() == s.to_json()


def test_a_scope_taken_over_by_its_interrupting_event_sub_process_hears_no_more_events() -> None:
    d = build(
        """
        - {id: start, type: start, next: work}
        - {id: work, team: ops, next: end}
        - {id: end, type: end}
        - id: on-update
          type: subprocess
          on: message
          message: update
          steps:
            - {id: u0, type: start, next: handle}
            - {id: handle, team: sales, next: u9}
            - {id: u9, type: end}
        - id: on-note
          type: subprocess
          on: signal
          signal: note
          interrupting: false
          steps:
            - {id: n0, type: start, next: jot}
            - {id: jot, team: sales, next: n9}
            - {id: n9, type: end}
        """
    )
    c = Case(d)
    c.do(ReceiveMessage(c.now + 1, name="update"))
    assert c.active() == ["handle", "on-update"]
    with pytest.raises(NotFoundError):  # it used to restart the handler, losing its work
        c.do(ReceiveMessage(c.now + 1, name="update"))
    c.do(ReceiveSignal(c.now + 1, name="note"))
    assert c.active() == ["handle", "on-update"]
    c.complete("handle")
    assert c.s.status is CaseStatus.COMPLETED


def test_an_inclusive_join_waits_only_for_tokens_of_its_own_sub_process_instance() -> None:
    d = build(
        """
        - {id: start, type: start, next: split}
        - {id: split, type: parallel, next: [a, b]}
        - {id: a, team: ops, next: sub}
        - {id: b, team: ops, next: sub}
        - id: sub
          type: subprocess
          next: end
          steps:
            - {id: s0, type: start, next: w}
            - {id: w, team: ops, next: pick}
            - id: pick
              type: inclusive
              next: [{to: p, when: "true"}, {to: q, when: "false"}]
            - {id: p, team: ops, next: both}
            - {id: q, team: ops, next: both}
            - {id: both, type: inclusive, next: after}
            - {id: after, team: ops, next: s9}
            - {id: s9, type: end}
        - {id: end, type: end}
        """
    )
    c = Case(d)
    c.complete("a")
    c.complete("w")  # the first instance takes p
    c.complete("b")
    first, second = c.tasks("sub")
    c.complete("w", decisions={"pick": ["q"]})  # the second takes q only
    assert [t.scope for t in c.tasks("q")] == [second.id]
    c.complete("p")
    # nothing in the first instance can still reach its join: the token at `q` is the second
    # instance's, and never comes to the first's join
    assert [t.scope for t in c.tasks("after")] == [first.id]


def test_a_throw_step_whose_catcher_interrupts_its_scope_goes_no_further() -> None:
    d = build(
        """
        - {id: start, type: start, next: sub}
        - id: sub
          type: subprocess
          next: end
          steps:
            - {id: s0, type: start, next: w}
            - {id: w, team: ops, next: shout}
            - {id: shout, type: throw, throw: escalation, code: UP,
               next: [{to: x, when: "missing > 1"}]}
            - {id: x, team: ops, next: s9}
            - {id: s9, type: end}
        - {id: up, type: boundary, attached_to: sub, on: escalation, code: UP, next: h}
        - {id: h, team: sales, next: end}
        - {id: end, type: end}
        """
    )
    c = Case(d)
    c.complete("w")
    # the sub-process was interrupted: its thrower's flows are not even looked at (a condition
    # that cannot be evaluated there used to pause the case on a token that no longer exists)
    assert c.s.status is CaseStatus.RUNNING and c.s.incident is None
    assert c.active() == ["h"]
    assert c.s.parked == []


def test_choreography_hands_off_along_a_boundary_flow_from_the_activity_owner() -> None:
    from accord.choreo.projection import project

    d = build(
        """
        - {id: start, type: start, next: a}
        - {id: a, team: ops, next: b}
        - {id: late, type: boundary, attached_to: a, on: timer, wait: PT15M, next: chase}
        - {id: chase, team: sales, next: end}
        - {id: b, team: sales, next: end}
        - {id: end, type: end}
        """
    )
    parts = project(d)
    crossing = {(h.flow, h.from_team, h.to_team) for h in parts.handoffs}
    # the boundary fires at the node running `a` (ops): its token goes to sales from there;
    # without this handoff the sales node refused it and the case never ended
    assert ("late->chase", "ops", "sales") in crossing
    assert parts.owner["late"] == "ops"


def test_choreography_refuses_a_process_event_sub_process_even_for_one_team() -> None:
    from accord.choreo.projection import project
    from accord.errors import DefinitionError

    d = build(
        """
        - {id: start, type: start, next: a}
        - {id: a, team: ops, next: end}
        - {id: end, type: end}
        - id: tick
          type: subprocess
          on: timer
          wait: PT10M
          interrupting: false
          steps:
            - {id: t0, type: start, next: tk}
            - {id: tk, team: ops, next: t9}
            - {id: t9, type: end}
        """,
        teams="teams:\n  ops:\n    members: [olga]\n",
    )
    # a team node never arms the process's own listeners: it used to accept, then never run it
    with pytest.raises(DefinitionError, match="tick: an event sub-process of the whole process"):
        project(d)


def test_a_called_process_whose_start_event_is_not_its_first_element_is_inlined(
    tmp_path: Any,
) -> None:
    from accord.bpmn.importer import import_bpmn

    ns = 'xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" targetNamespace="x"'
    (tmp_path / "main.bpmn").write_text(
        f"""<definitions {ns} id="d1"><process id="main" isExecutable="true">
        <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="call"/>
        <callActivity id="call" calledElement="child"/>
        <sequenceFlow id="f2" sourceRef="call" targetRef="e"/><endEvent id="e"/>
        </process></definitions>"""
    )
    (tmp_path / "child.bpmn").write_text(
        f"""<definitions {ns} id="d2"><process id="child" isExecutable="true">
        <userTask id="t" name="Child task"/>
        <sequenceFlow id="g2" sourceRef="t" targetRef="ce"/><endEvent id="ce"/>
        <startEvent id="cs"/><sequenceFlow id="g1" sourceRef="cs" targetRef="t"/>
        </process></definitions>"""
    )
    # its start was taken for missing, and a second one added: "exactly one start, not 2"
    imported = import_bpmn(tmp_path / "main.bpmn")
    d = getattr(imported, "definition", imported)
    starts = [s.id for s in d.steps.values() if s.kind is StepKind.START and s.parent == "call"]
    assert starts == ["call/cs"]
    c = Case(d)
    assert c.active() == ["call", "call/t"]


def test_one_signal_starts_one_interrupting_event_sub_process_per_scope() -> None:
    d = build(
        """
        - {id: start, type: start, next: work}
        - {id: work, team: ops, next: end}
        - {id: end, type: end}
        - id: first
          type: subprocess
          on: signal
          signal: stop
          steps:
            - {id: f0, type: start, next: f}
            - {id: f, team: sales, next: f9}
            - {id: f9, type: end}
        - id: second
          type: subprocess
          on: signal
          signal: stop
          steps:
            - {id: g0, type: start, next: g}
            - {id: g, team: sales, next: g9}
            - {id: g9, type: end}
        """
    )
    c = Case(d)
    c.do(ReceiveSignal(c.now + 1, name="stop"))
    assert c.active() == ["f", "first"]  # the second no longer cancels the first
