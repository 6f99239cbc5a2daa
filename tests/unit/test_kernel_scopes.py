"""Scopes: sub-processes, boundary events, errors, escalations, signals, event sub-processes.

Each test is one rule of SEMANTICS.md ("Scopes, boundaries and errors") or of BPMN 2.0.2's
chapter 10.5 (events), driven through the kernel alone.
"""

from __future__ import annotations

import pytest
from casekit import Case, build

from accord.errors import DefinitionError, NotFound, TaskStateError
from accord.events import EventType
from accord.kernel import (
    CaseStatus,
    FailTask,
    ReceiveMessage,
    ReceiveSignal,
    RerouteCase,
    ResumeCase,
    TaskStatus,
    TimerKind,
)
from accord.kernel.state import state_from_json

SUB = """
- {id: start, type: start, next: before}
- {id: before, team: sales, next: sub}
- id: sub
  type: subprocess
  next: after
  steps:
    - {id: s0, type: start, next: split}
    - {id: split, type: parallel, next: [a, b]}
    - {id: a, team: ops, next: join}
    - {id: b, team: it, next: join}
    - {id: join, type: parallel, next: s9}
    - {id: s9, type: end}
- {id: after, team: sales, next: end}
- {id: end, type: end}
"""


def test_a_sub_process_runs_its_steps_then_leaves_by_its_own_flows() -> None:
    c = Case(build(SUB))
    c.complete("before")
    assert c.active() == ["a", "b", "sub"]
    sub = c.task("sub")
    assert sub.status is TaskStatus.WAITING
    assert {c.task("a").scope, c.task("b").scope} == {sub.id}
    c.complete("a")
    assert c.active() == ["b", "sub"]  # a token is still inside
    c.complete("b")
    assert c.active() == ["after"]
    assert c.s.tasks[sub.id].status is TaskStatus.COMPLETED
    assert c.task("after").scope is None
    c.complete("after")
    assert c.s.status is CaseStatus.COMPLETED
    assert c.s.joins == {} and c.s.timers == {}


def test_a_sub_process_task_cannot_be_completed_by_hand() -> None:
    c = Case(build(SUB))
    c.complete("before")
    with pytest.raises(TaskStateError, match="sub-process"):
        c.complete("sub")


def test_nested_sub_processes_and_state_round_trips_json() -> None:
    d = build(
        """
        - {id: start, type: start, next: outer}
        - id: outer
          type: subprocess
          next: end
          steps:
            - {id: o0, type: start, next: inner}
            - id: inner
              type: subprocess
              next: o9
              steps:
                - {id: i0, type: start, next: work}
                - {id: work, team: ops, next: i9}
                - {id: i9, type: end}
            - {id: o9, type: end}
        - {id: end, type: end}
        """
    )
    assert d.steps["work"].parent == "inner" and d.steps["inner"].parent == "outer"
    c = Case(d)
    assert c.active() == ["inner", "outer", "work"]
    assert c.task("work").scope == c.task("inner").id
    assert c.task("inner").scope == c.task("outer").id
    restored = state_from_json(c.s.to_json())
    assert restored.to_json() == c.s.to_json()
    c.complete("work")
    assert c.s.status is CaseStatus.COMPLETED
    completed = [e.step for e in c.of(EventType.TASK_COMPLETED)]
    assert completed == ["work", "inner", "outer"]


def test_old_states_without_scopes_still_load() -> None:
    c = Case(build(SUB))
    raw = c.s.to_json().replace(b',"scope":null', b"")
    assert b"scope" not in raw
    assert state_from_json(raw).to_json() == c.s.to_json()


def test_terminate_inside_a_sub_process_ends_only_that_instance() -> None:
    d = build(
        """
        - {id: start, type: start, next: split}
        - {id: split, type: parallel, next: [sub, outside]}
        - {id: outside, team: sales, next: join}
        - id: sub
          type: subprocess
          next: join
          steps:
            - {id: s0, type: start, next: fork}
            - {id: fork, type: parallel, next: [slow, quick]}
            - {id: slow, team: ops, next: s9}
            - {id: quick, team: it, next: kill}
            - {id: kill, type: end, terminate: true}
            - {id: s9, type: end}
        - {id: join, type: parallel, next: after}
        - {id: after, team: sales, next: end}
        - {id: end, type: end}
        """
    )
    c = Case(d)
    assert c.active() == ["outside", "quick", "slow", "sub"]
    c.complete("quick")
    assert c.active() == ["outside"]  # slow withdrawn, the sub-process done, outside goes on
    assert [e.step for e in c.of(EventType.TASK_CANCELLED)] == ["slow"]
    c.complete("outside")
    c.complete("after")
    assert c.s.status is CaseStatus.COMPLETED
    assert not any(e.data.get("terminated") for e in c.of(EventType.CASE_COMPLETED))


def test_an_empty_sub_process_completes_at_once() -> None:
    d = build(
        """
        - {id: start, type: start, next: sub}
        - {id: sub, type: subprocess, next: after}
        - {id: after, team: sales}
        """
    )
    c = Case(d)
    assert c.active() == ["after"]


# -- boundary events ---------------------------------------------------------------------------

TIMER_BOUNDARY = """
- {id: start, type: start, next: review}
- {id: review, team: sales, next: end}
- {id: late, type: boundary, attached_to: review, on: timer, wait: PT1H,
   interrupting: INTERRUPTING, next: chase}
- {id: chase, team: ops, next: end2}
- {id: end, type: end}
- {id: end2, type: end}
"""


def test_an_interrupting_timer_boundary_cancels_the_task_and_leaves_by_its_flow() -> None:
    c = Case(build(TIMER_BOUNDARY.replace("INTERRUPTING", "true")))
    (timer,) = c.timers(TimerKind.EVENT)
    assert timer.due == 3600 and timer.step == "late"
    c.fire(timer)
    assert c.active() == ["chase"]
    assert c.s.tasks["c1:review:1"].status is TaskStatus.CANCELLED
    (fired,) = c.of(EventType.BOUNDARY_FIRED)
    assert fired.step == "late" and fired.data["interrupting"] is True
    c.complete("chase")
    assert c.s.status is CaseStatus.COMPLETED


def test_a_boundary_timer_is_cancelled_when_the_activity_ends_first() -> None:
    c = Case(build(TIMER_BOUNDARY.replace("INTERRUPTING", "true")))
    (timer,) = c.timers(TimerKind.EVENT)
    tr = c.complete("review")
    assert any(getattr(cmd, "timer_id", None) == timer.id for cmd in tr.commands)
    assert c.s.status is CaseStatus.COMPLETED
    c.fire(timer.id, at=7200)  # a stale delivery is harmless
    assert c.of(EventType.BOUNDARY_FIRED) == []


def test_a_non_interrupting_timer_boundary_adds_a_token_and_the_task_goes_on() -> None:
    c = Case(build(TIMER_BOUNDARY.replace("INTERRUPTING", "false")))
    c.fire(c.timers(TimerKind.EVENT)[0])
    assert c.active() == ["chase", "review"]
    assert c.task("review").weight == "1/2" and c.task("chase").weight == "1/2"
    c.complete("chase")
    assert c.active() == ["review"]
    c.complete("review")
    assert c.s.status is CaseStatus.COMPLETED


def test_a_cycle_boundary_fires_as_often_as_it_says_while_the_task_lives() -> None:
    d = build(
        """
        - {id: start, type: start, next: review}
        - {id: review, team: sales, next: end}
        - {id: nag, type: boundary, attached_to: review, on: timer, cycle: R2/PT10M,
           interrupting: false, next: remind}
        - {id: remind, type: automated, team: it, handler: "x:y", next: end2}
        - {id: end, type: end}
        - {id: end2, type: end}
        """
    )
    c = Case(d)
    c.fire(c.timers(TimerKind.EVENT)[0])
    (again,) = c.timers(TimerKind.EVENT)
    assert again.due == 1200 and again.fired == 1
    c.fire(again)
    assert c.timers(TimerKind.EVENT) == []  # R2: twice, then no more
    assert c.created("remind") == 2


def test_a_timer_boundary_at_a_date_waits_for_that_moment() -> None:
    d = build(
        """
        - {id: start, type: start, next: review}
        - {id: review, team: sales, next: end}
        - {id: deadline, type: boundary, attached_to: review, on: timer,
           date: "1970-01-02T00:00:00Z", next: end}
        - {id: end, type: end}
        """
    )
    c = Case(d)
    assert c.timers(TimerKind.EVENT)[0].due == 86400


def test_a_message_boundary_on_a_sub_process_interrupts_everything_inside() -> None:
    d = build(
        """
        - {id: start, type: start, next: sub}
        - id: sub
          type: subprocess
          next: normal
          steps:
            - {id: s0, type: start, next: inner}
            - {id: inner, team: ops, next: wait}
            - {id: wait, type: timer, wait: PT1H, next: s9}
            - {id: s9, type: end}
        - {id: cancelled, type: boundary, attached_to: sub, on: message, message: cancel,
           next: handle}
        - {id: handle, team: sales, next: end}
        - {id: normal, team: sales, next: end}
        - {id: end, type: end}
        """
    )
    c = Case(d)
    c.complete("inner")
    assert c.active() == ["sub", "wait"]
    c.do(ReceiveMessage(c.now + 1, name="cancel", data={"why": "customer"}))
    assert c.active() == ["handle"]
    assert c.s.timers == {}  # the inner wait's timer went with it
    assert c.s.data["why"] == "customer"
    with pytest.raises(NotFound):
        c.do(ReceiveMessage(c.now + 1, name="cancel"))  # nothing listens any more


def test_a_non_interrupting_message_boundary_keeps_the_sub_process_running() -> None:
    d = build(
        """
        - {id: start, type: start, next: sub}
        - id: sub
          type: subprocess
          next: end
          steps:
            - {id: s0, type: start, next: inner}
            - {id: inner, team: ops, next: s9}
            - {id: s9, type: end}
        - {id: note, type: boundary, attached_to: sub, on: message, message: ping,
           interrupting: false, next: answer}
        - {id: answer, team: sales, next: end}
        - {id: end, type: end}
        """
    )
    c = Case(d)
    c.do(ReceiveMessage(c.now + 1, name="ping"))
    c.do(ReceiveMessage(c.now + 1, name="ping"))  # again: another token
    assert c.active() == ["answer", "answer", "inner", "sub"]
    c.complete("inner")
    assert c.active() == ["answer", "answer"]
    for t in c.tasks("answer"):
        c.do(
            __import__("accord.kernel", fromlist=["CompleteTask"]).CompleteTask(
                c.now + 1, task_id=t.id
            )
        )
    assert c.s.status is CaseStatus.COMPLETED


# -- errors ------------------------------------------------------------------------------------

ERRORS = """
- {id: start, type: start, next: sub}
- id: sub
  type: subprocess
  next: happy
  steps:
    - {id: s0, type: start, next: check}
    - {id: check, team: ops, next: [{to: bad, when: "not ok"}, {to: s9, default: true}]}
    - {id: bad, type: end, throw: error, code: CODE}
    - {id: s9, type: end}
- {id: caught, type: boundary, attached_to: sub, on: error, CATCH next: fix}
- {id: fix, team: sales, next: end}
- {id: happy, team: sales, next: end}
- {id: end, type: end}
"""


@pytest.mark.parametrize("catch", ["code: CODE,", ""])
def test_an_error_end_is_caught_by_the_sub_process_boundary(catch: str) -> None:
    c = Case(build(ERRORS.replace("CATCH", catch)))
    c.complete("check", {"ok": False})
    assert c.active() == ["fix"]
    (thrown,) = c.of(EventType.ERROR_THROWN)
    assert thrown.data == {"code": "CODE", "caught_by": "caught"}


def test_a_boundary_for_another_code_does_not_catch_and_the_case_pauses() -> None:
    c = Case(build(ERRORS.replace("CATCH", "code: OTHER,")))
    c.complete("check", {"ok": False})
    assert c.s.status is CaseStatus.PAUSED
    assert c.s.incident is not None and c.s.incident["code"] == "CODE"
    assert "CODE" in c.s.incident["error"]
    assert c.of(EventType.CASE_PAUSED)[-1].data["reason"] == "incident"
    c.do(ResumeCase(c.now + 1, "operator:o"))  # the operator accepts: the sub-process is done
    assert c.active() == ["happy"]


def test_an_error_with_a_specific_catcher_wins_over_a_catch_all() -> None:
    d = build(
        ERRORS.replace("CATCH", "")
        + "- {id: specific, type: boundary, attached_to: sub, on: error, code: CODE,"
        " next: end}\n"
    )
    c = Case(d)
    c.complete("check", {"ok": False})
    assert c.of(EventType.ERROR_THROWN)[0].data["caught_by"] == "specific"
    assert c.s.status is CaseStatus.COMPLETED


def test_errors_propagate_outwards_through_nested_scopes() -> None:
    d = build(
        """
        - {id: start, type: start, next: outer}
        - id: outer
          type: subprocess
          next: end
          steps:
            - {id: o0, type: start, next: inner}
            - id: inner
              type: subprocess
              next: o9
              steps:
                - {id: i0, type: start, next: [w, boom]}
                - {id: w, team: ops, next: i9}
                - {id: boom, type: end, throw: error, code: E1}
                - {id: i9, type: end}
            - {id: o9, type: end}
        - {id: on-error, type: boundary, attached_to: outer, on: error, code: E1, next: fix}
        - {id: fix, team: sales, next: end}
        - {id: end, type: end}
        """
    )
    c = Case(d)
    assert c.active() == ["fix"]  # w, inner and outer were all withdrawn at once
    cancelled = {e.step for e in c.of(EventType.TASK_CANCELLED)}
    assert cancelled == {"w", "inner", "outer"}


def test_a_failing_task_with_an_error_code_is_caught_by_its_boundary_without_retries() -> None:
    d = build(
        """
        - {id: start, type: start, next: charge}
        - {id: charge, type: automated, team: it, handler: "pay:charge", retry: 3, next: end}
        - {id: declined, type: boundary, attached_to: charge, on: error, code: DECLINED,
           next: tell}
        - {id: tell, team: sales, next: end}
        - {id: end, type: end}
        """
    )
    c = Case(d)
    t = c.task("charge")
    c.do(FailTask(1, "worker:w", task_id=t.id, error="card declined", code="DECLINED"))
    assert c.active() == ["tell"]
    assert c.s.tasks[t.id].status is TaskStatus.CANCELLED
    assert c.timers(TimerKind.RETRY) == []
    # without a code it is an ordinary failure: retried
    c2 = Case(d)
    c2.fail("charge")
    assert c2.timers(TimerKind.RETRY)


def test_an_uncaught_task_error_code_is_an_incident_naming_the_code() -> None:
    d = build(
        """
        - {id: start, type: start, next: review}
        - {id: review, team: sales, next: end}
        - {id: end, type: end}
        """
    )
    c = Case(d)
    t = c.task("review")
    c.do(FailTask(1, "sam", task_id=t.id, error="no papers", code="MISSING"))
    assert c.s.status is CaseStatus.PAUSED
    assert c.s.incident == {"task": t.id, "step": "review", "error": "no papers", "code": "MISSING"}


# -- escalations -------------------------------------------------------------------------------


def test_escalation_innermost_non_interrupting_catcher_wins() -> None:
    d = build(
        """
        - {id: start, type: start, next: outer}
        - id: outer
          type: subprocess
          next: end
          steps:
            - {id: o0, type: start, next: inner}
            - id: inner
              type: subprocess
              next: o9
              steps:
                - {id: i0, type: start, next: raise}
                - {id: raise, type: throw, throw: escalation, code: up, next: work}
                - {id: work, team: ops, next: i9}
                - {id: i9, type: end}
            - {id: near, type: boundary, attached_to: inner, on: escalation, code: up,
               interrupting: false, next: nearby}
            - {id: nearby, team: sales, next: o9}
            - {id: o9, type: end}
        - {id: far, type: boundary, attached_to: outer, on: escalation, next: end}
        - {id: end, type: end}
        """
    )
    c = Case(d)
    assert c.active() == ["inner", "nearby", "outer", "work"]
    (thrown,) = c.of(EventType.ESCALATION_THROWN)
    assert thrown.data["caught_by"] == "near"


def test_an_uncaught_escalation_is_recorded_and_the_flow_goes_on() -> None:
    d = build(
        """
        - {id: start, type: start, next: raise}
        - {id: raise, type: throw, throw: escalation, code: esc-1, next: work}
        - {id: work, team: ops, next: end}
        - {id: end, type: end, throw: escalation, code: esc-2}
        """
    )
    c = Case(d)
    assert c.active() == ["work"]
    c.complete("work")
    assert c.s.status is CaseStatus.COMPLETED
    thrown = c.of(EventType.ESCALATION_THROWN)
    assert [(e.data["code"], e.data["caught_by"]) for e in thrown] == [
        ("esc-1", None),
        ("esc-2", None),
    ]


def test_an_interrupting_escalation_boundary_stops_the_thrower_too() -> None:
    d = build(
        """
        - {id: start, type: start, next: sub}
        - id: sub
          type: subprocess
          next: end
          steps:
            - {id: s0, type: start, next: raise}
            - {id: raise, type: throw, throw: escalation, next: never}
            - {id: never, team: ops, next: s9}
            - {id: s9, type: end}
        - {id: up, type: boundary, attached_to: sub, on: escalation, next: handle}
        - {id: handle, team: sales, next: end}
        - {id: end, type: end}
        """
    )
    c = Case(d)
    assert c.active() == ["handle"]
    assert c.created("never") == 0


# -- signals -----------------------------------------------------------------------------------

SIGNALS = """
- {id: start, type: start, next: split}
- {id: split, type: parallel, next: [wait, work, thrower]}
- {id: wait, type: signal, signal: go, next: j}
- {id: work, team: ops, next: j}
- {id: stop, type: boundary, attached_to: work, on: signal, signal: go, next: j}
- {id: thrower, team: sales, next: shout}
- {id: shout, type: throw, throw: signal, signal: go, next: j}
- {id: j, type: inclusive, next: end}
- {id: end, type: end}
"""


def test_a_thrown_signal_reaches_every_catcher_waiting_now() -> None:
    c = Case(build(SIGNALS))
    assert c.active() == ["thrower", "wait", "work"]
    c.complete("thrower")
    assert c.s.status is CaseStatus.COMPLETED
    (sig,) = c.of(EventType.SIGNAL_THROWN)
    assert sig.data == {"name": "go", "from": "shout"}
    assert c.s.tasks["c1:work:1"].status is TaskStatus.CANCELLED


def test_a_signal_from_outside_and_one_nobody_waits_for() -> None:
    c = Case(build(SIGNALS))
    c.do(ReceiveSignal(c.now + 1, name="other"))  # a broadcast nobody hears is no error
    assert c.active() == ["thrower", "wait", "work"]
    c.do(ReceiveSignal(c.now + 1, name="go", data={"x": 1}))
    assert c.active() == ["thrower"]
    assert c.s.data == {"x": 1}


# -- event sub-processes -----------------------------------------------------------------------

EVENT_SUB = """
- {id: start, type: start, next: sub}
- id: sub
  type: subprocess
  next: after
  steps:
    - {id: s0, type: start, next: work}
    - {id: work, team: ops, next: s9}
    - {id: s9, type: end}
    - id: on-msg
      type: subprocess
      on: message
      message: update
      interrupting: INTERRUPTING
      steps:
        - {id: e0, type: start, next: handle}
        - {id: handle, team: sales, next: e9}
        - {id: e9, type: end}
- {id: after, team: sales, next: end}
- {id: end, type: end}
"""


def test_an_interrupting_event_sub_process_replaces_its_scope_content() -> None:
    c = Case(build(EVENT_SUB.replace("INTERRUPTING", "true")))
    c.do(ReceiveMessage(c.now + 1, name="update"))
    assert c.active() == ["handle", "on-msg", "sub"]
    c.complete("handle")
    assert c.active() == ["after"]  # the scope completes, and leaves normally


def test_a_non_interrupting_event_sub_process_runs_beside_its_scope() -> None:
    c = Case(build(EVENT_SUB.replace("INTERRUPTING", "false")))
    c.do(ReceiveMessage(c.now + 1, name="update"))
    c.do(ReceiveMessage(c.now + 1, name="update"))
    assert c.active() == ["handle", "handle", "on-msg", "on-msg", "sub", "work"]
    c.complete("work")
    assert "after" not in c.active()  # the scope waits for its event sub-processes
    for t in c.tasks("handle"):
        from accord.kernel import CompleteTask

        c.do(CompleteTask(c.now + 1, task_id=t.id))
    assert c.active() == ["after"]


def test_event_sub_processes_listen_only_while_their_scope_runs() -> None:
    c = Case(build(EVENT_SUB.replace("INTERRUPTING", "true")))
    c.complete("work")
    with pytest.raises(NotFound):
        c.do(ReceiveMessage(c.now + 1, name="update"))


def test_process_level_error_and_timer_event_sub_processes() -> None:
    d = build(
        """
        - {id: start, type: start, next: work}
        - {id: work, team: ops, next: boom}
        - {id: boom, type: end, throw: error, code: E}
        - id: on-error
          type: subprocess
          on: error
          steps:
            - {id: e0, type: start, next: mop}
            - {id: mop, team: sales, next: e9}
            - {id: e9, type: end}
        - id: reminder
          type: subprocess
          on: timer
          wait: PT1H
          interrupting: false
          steps:
            - {id: r0, type: start, next: remind}
            - {id: remind, team: sales, next: r9}
            - {id: r9, type: end}
        """
    )
    c = Case(d)
    (timer,) = c.timers(TimerKind.EVENT)
    assert timer.task == "c1" and timer.step == "reminder"
    c.fire(timer)
    assert c.active() == ["remind", "reminder", "work"]
    c.complete("work")
    # the error interrupts the process: everything else stops, the handler runs
    assert c.active() == ["mop", "on-error"]
    c.complete("mop")
    assert c.s.status is CaseStatus.COMPLETED


def test_reroute_into_a_sub_process_is_refused() -> None:
    c = Case(build(SUB))
    with pytest.raises(TaskStateError, match="inside sub-process"):
        c.do(RerouteCase(c.now + 1, "operator:o", step="a"))


# -- definitions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            """
            - {id: start, type: start, next: sub}
            - id: sub
              type: subprocess
              next: x
              steps:
                - {id: s0, type: start, next: x}
            - {id: x, team: sales}
            """,
            "crosses a sub-process's border",
        ),
        (
            """
            - {id: start, type: start, next: x}
            - {id: x, team: sales}
            - {id: b, type: boundary, attached_to: y, on: timer, wait: PT1H}
            """,
            "attached_to unknown step 'y'",
        ),
        (
            """
            - {id: start, type: start, next: x}
            - {id: x, team: sales}
            - {id: b, type: boundary, attached_to: x, on: error, interrupting: false}
            """,
            "an error always interrupts",
        ),
        (
            """
            - {id: start, type: start, next: x}
            - {id: x, team: sales}
            - {id: b, type: boundary, attached_to: x, on: timer}
            """,
            "a timer event needs 'wait', 'date' or 'cycle'",
        ),
        (
            """
            - {id: start, type: start, next: x}
            - {id: x, team: sales, steps: []}
            """,
            "only sub-processes hold steps",
        ),
        (
            """
            - {id: start, type: start, next: x}
            - {id: x, team: sales}
            - {id: b, type: boundary, attached_to: x, on: thunder}
            """,
            "on must be one of timer, message, error, escalation, signal",
        ),
    ],
)
def test_scope_definitions_are_checked(steps: str, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        build(steps)


# -- properties: random block-structured processes with sub-processes -------------------------

import random  # noqa: E402
from dataclasses import replace as _replace  # noqa: E402
from typing import Any  # noqa: E402

import test_kernel_properties as props  # noqa: E402
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from accord.model import StepKind  # noqa: E402


def _extend_scoped(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The property tests' blocks, plus sub-processes (some with a non-interrupting timer
    boundary that sends an extra token to an end of its own)."""
    return st.one_of(
        props._extend(children),
        st.tuples(children, st.booleans()).map(lambda t: ("sub", t[0], t[1])),
    )


SCOPED_BLOCKS = _extend_scoped(st.recursive(props.LEAVES, _extend_scoped, max_leaves=10))


class _ScopedCompiler(props._Compiler):
    def __init__(self) -> None:
        super().__init__()
        self.scopes: list[str] = []
        self.parent: dict[str, str] = {}

    def new(self, prefix: str, **body: Any) -> str:
        sid = super().new(prefix, **body)
        if self.scopes:
            self.parent[sid] = self.scopes[-1]
        return sid

    def compile(self, block: Any) -> tuple[str, tuple[str, dict[str, Any]]]:
        if block[0] != "sub":
            return super().compile(block)
        sub = self.new("sub", type="subprocess")
        self.scopes.append(sub)
        start = self.new("s0", type="start")
        entry, exit_ = self.compile(block[1])
        self.link((start, {}), entry)
        self.link(exit_, self.new("s9", type="end"))
        self.scopes.pop()
        if block[2]:
            b = self.new(
                "late", type="boundary", attached_to=sub, on="timer", wait="PT45M",
                interrupting=False,
            )  # fmt: skip
            self.link((b, {}), self.new("lateend", type="end"))
        return sub, (sub, {})


def compile_scoped(block: Any) -> props.Compiled:
    c = _ScopedCompiler()
    start = c.new("start", type="start")
    entry, exit_ = c.compile(block)
    c.link((start, {}), entry)
    c.link(exit_, c.new("end", type="end"))
    bodies = {
        sid: {k: v for k, v in body.items() if k != "next" or v} for sid, body in c.steps.items()
    }
    top: list[dict[str, Any]] = []
    for sid, body in bodies.items():
        parent = c.parent.get(sid)
        (top if parent is None else bodies[parent].setdefault("steps", [])).append(body)
    c.out.doc = {"process": "random", "teams": props.TEAMS, "steps": top}
    return c.out


class _ScopedRun(props.Run):
    def check_live(self) -> None:
        # a sub-process instance waits on the tokens inside it, not on a timer
        s = self.state
        assert s is not None
        inside = {t.id for t in s.active_tasks() if t.kind is StepKind.SUBPROCESS}
        for t in s.active_tasks():
            if t.kind is StepKind.SUBPROCESS:
                assert any(o.scope == t.id for o in s.active_tasks()), f"{t.id} is empty"
        self.state = _replace(s, tasks={k: v for k, v in s.tasks.items() if k not in inside})
        try:
            super().check_live()
        finally:
            self.state = s


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(SCOPED_BLOCKS, st.integers(0, 2**32))
def test_random_processes_with_sub_processes_complete_conserve_tokens_and_replay(
    block: Any, seed: int
) -> None:
    comp = compile_scoped(block)
    subs = str(comp.doc).count("'subprocess'")
    event(f"sub-processes: {min(subs, 3)}{'+' if subs >= 3 else ''}")
    saved = props.Run
    props.Run = _ScopedRun  # type: ignore[misc]
    try:
        run = props.drive(comp, random.Random(seed))
    finally:
        props.Run = saved  # type: ignore[misc]
    props.check_run(run)
    props.check_replay(run)
    s = run.state
    assert s is not None
    if s.status is CaseStatus.COMPLETED:
        # every sub-process instance completed, after everything inside it
        for t in s.tasks.values():
            if t.kind is StepKind.SUBPROCESS:
                assert t.status is TaskStatus.COMPLETED
                inner = [o for o in s.tasks.values() if o.scope == t.id]
                assert all((o.ended_at or 0) <= (t.ended_at or 0) for o in inner)


def test_projection_refuses_a_sub_process_spanning_teams_naming_its_steps() -> None:
    from accord.choreo.projection import project

    with pytest.raises(DefinitionError, match=r"spanning teams it, ops \(steps a, b\)"):
        project(build(SUB))
    owned = build(SUB.replace("  type: subprocess\n", "  type: subprocess\n  team: ops\n"))
    parts = project(owned)
    assert parts.part("ops")  # the ops node runs the whole sub-process


def test_a_join_stuck_inside_a_sub_process_is_an_incident_not_a_silent_stop() -> None:
    d = build(
        """
        - {id: start, type: start, next: sub}
        - id: sub
          type: subprocess
          next: end
          steps:
            - {id: s0, type: start, next: pick}
            - id: pick
              type: exclusive
              next: [{to: a, when: "x == 1"}, {to: b, default: true}]
            - {id: a, team: ops, next: both}
            - {id: b, team: it, next: both}
            - {id: both, type: parallel, next: s9}
            - {id: s9, type: end}
        - {id: end, type: end}
        """
    )
    c = Case(d, {"x": 1})
    c.complete("a")
    assert c.s.status is CaseStatus.PAUSED
    assert c.s.incident is not None and "deadlock" in c.s.incident["error"]
