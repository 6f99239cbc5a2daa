"""Kernel review, second round: loop conditions that fail, work bounded per transition,
deadlocks judged by what is still armed, and housekeeping of scopes, signals and weights."""

from __future__ import annotations

import contextlib
import signal
from typing import Any

from casekit import Case, build
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from accord.errors import CaseError, DefinitionError
from accord.kernel import (
    CaseStatus,
    CompleteTask,
    ReceiveSignal,
    ResumeCase,
    StartCase,
    TaskStatus,
    advance,
)
from accord.kernel.state import state_from_json
from accord.model.loader import from_document

# -- 1. a loop or completion condition that cannot be evaluated parks the token -------------------

LOOPED = """
- {id: start, type: start, next: w}
- {id: w, team: ops, loop: {while: "x < 3"}, next: after}
- {id: after, team: ops, next: end}
- {id: end, type: end}
"""


def test_a_loop_condition_that_fails_parks_the_token_until_resumed() -> None:
    c = Case(build(LOOPED))
    c.complete("w")  # `x` is missing: the condition cannot be evaluated
    assert c.s.status is CaseStatus.PAUSED
    assert c.s.incident is not None and "loop condition failed" in c.s.incident["error"]
    assert c.active() == []  # the token did not move on to `after`
    assert c.created("after") == 0
    c.do(ResumeCase(c.now + 1, "operator:o", data={"x": 1}))  # corrected: evaluated again
    assert c.s.status is CaseStatus.RUNNING
    assert c.active() == ["w"]
    c.complete("w", {"x": 5})
    assert c.active() == ["after"]
    c.complete("after")
    assert c.s.status is CaseStatus.COMPLETED


def test_a_loop_condition_that_fails_inside_a_sub_process_holds_it_open() -> None:
    d = build(
        """
        - {id: start, type: start, next: sub}
        - id: sub
          type: subprocess
          next: after
          steps:
            - {id: s0, type: start, next: w}
            - {id: w, team: ops, loop: {while: "x < 3"}, next: s9}
            - {id: s9, type: end}
        - {id: after, team: ops, next: end}
        - {id: end, type: end}
        """
    )
    c = Case(d)
    c.complete("w")
    assert c.s.status is CaseStatus.PAUSED
    assert c.active() == ["sub"]  # the sub-process did not complete around the parked run
    c.do(ResumeCase(c.now + 1, "operator:o", data={"x": 7}))
    assert c.active() == ["after"]


def _until(sequential: bool) -> Any:
    return build(
        f"""
        - {{id: start, type: start, next: w}}
        - {{id: w, team: ops, next: after, multi_instance:
            {{count: "3", sequential: {str(sequential).lower()}, until: "enough"}}}}
        - {{id: after, team: ops, next: end}}
        - {{id: end, type: end}}
        """
    )


def test_a_sequential_completion_condition_that_fails_parks_the_run_until_resumed() -> None:
    c = Case(_until(sequential=True))
    c.complete("w")  # `enough` is missing
    assert c.s.status is CaseStatus.PAUSED
    assert c.s.incident is not None and "completion condition failed" in c.s.incident["error"]
    assert c.active() == []  # no next instance, and the token did not move on
    c.do(ResumeCase(c.now + 1, "operator:o", data={"enough": True}))
    assert c.active() == ["after"]
    assert c.created("w") == 1


def test_a_parallel_completion_condition_that_fails_is_evaluated_again_on_resume() -> None:
    c = Case(_until(sequential=False))
    first = c.tasks("w")[0]
    c.do(CompleteTask(c.now + 1, task_id=first.id))
    assert c.s.status is CaseStatus.PAUSED
    assert c.active() == ["w", "w"]
    c.do(ResumeCase(c.now + 1, "operator:o", data={"enough": True}))
    assert c.active() == ["after"]  # the condition holds now: the other two are withdrawn
    c = Case(_until(sequential=False))
    c.do(CompleteTask(c.now + 1, task_id=c.tasks("w")[0].id))
    c.do(ResumeCase(c.now + 1, "operator:o", data={"enough": False}))
    assert c.active() == ["w", "w"]  # not yet: the others go on
    for t in c.tasks("w"):
        c.do(CompleteTask(c.now + 1, task_id=t.id))
    assert c.active() == ["after"]


# -- 2. the work of one transition is bounded: a model that goes round without waiting ------------

RETHROW = """
- {id: start, type: start, next: w}
- {id: w, team: ops, next: shout}
- {id: shout, type: throw, throw: escalation, code: UP, next: end}
- {id: end, type: end}
- id: on-up
  type: subprocess
  on: escalation
  code: UP
  interrupting: false
  steps:
    - {id: u0, type: start, next: again}
    - {id: again, type: throw, throw: escalation, code: UP, next: u9}
    - {id: u9, type: end}
"""

RESIGNAL = """
- {id: start, type: start, next: w}
- {id: w, team: ops, next: end}
- {id: end, type: end}
- id: on-ping
  type: subprocess
  on: signal
  signal: ping
  interrupting: false
  steps:
    - {id: p0, type: start, next: again}
    - {id: again, type: throw, throw: signal, signal: ping, next: p9}
    - {id: p9, type: end}
"""

SPIN = """
- {id: start, type: start, next: g}
- {id: g, type: exclusive, next: h}
- id: h
  type: exclusive
  next: [{to: g, when: "spin"}, {to: w, default: true}]
- {id: w, team: ops, next: end}
- {id: end, type: end}
"""


def _overran(c: Case, *steps: str) -> None:
    assert c.s.status is CaseStatus.PAUSED
    assert c.s.incident is not None
    error = c.s.incident["error"]
    assert "without waiting" in error, error
    for step in steps:
        assert step in c.s.incident["steps"], c.s.incident


def test_an_event_sub_process_that_rethrows_its_own_escalation_is_an_incident_not_a_hang() -> None:
    c = Case(build(RETHROW))
    c.complete("w")
    _overran(c, "on-up", "again")


def test_an_event_sub_process_that_rethrows_its_own_signal_is_an_incident_not_a_hang() -> None:
    c = Case(build(RESIGNAL))
    c.do(ReceiveSignal(c.now + 1, name="ping"))
    _overran(c, "on-ping", "again")


def test_a_cycle_of_gateways_is_an_incident_and_resuming_with_new_data_goes_on() -> None:
    c = Case(build(SPIN), {"spin": True})
    _overran(c, "g", "h")
    c.do(ResumeCase(c.now + 1, "operator:o", data={"spin": False}))
    assert c.s.status is CaseStatus.RUNNING
    assert c.active() == ["w"]
    c.complete("w")
    assert c.s.status is CaseStatus.COMPLETED


def _random_model(shape: list[tuple[str, int, int]], esps: list[tuple[str, bool, str]]) -> Any:
    """A flat process of gateways, throws and tasks wired at random (cycles included), with
    event sub-processes of the process that may throw what they catch."""
    n = len(shape)
    steps: list[dict[str, Any]] = [{"id": "start", "type": "start", "next": "n0"}]

    def to(i: int) -> str:
        return f"n{i}" if i < n else "end"

    for i, (kind, _, anywhere) in enumerate(shape):
        # the first flow leads on (every step is reached, and an end), the second anywhere
        a, b = i + 1, anywhere % (n + 1)
        if b == a:
            b = (a + 1) % (n + 1)
        sid = f"n{i}"
        if kind in ("exclusive", "inclusive"):
            nxt: Any = [{"to": to(a), "when": f"f{i % 3}"}, {"to": to(b), "default": True}]
            steps.append({"id": sid, "type": kind, "next": nxt})
        elif kind == "parallel":
            steps.append({"id": sid, "type": "parallel", "next": [to(a), to(b)]})
        elif kind == "signal":
            steps.append(
                {"id": sid, "type": "throw", "throw": "signal", "signal": "s", "next": to(a)}
            )
        elif kind == "escalation":
            steps.append(
                {"id": sid, "type": "throw", "throw": "escalation", "code": "UP", "next": to(a)}
            )
        else:
            steps.append({"id": sid, "team": "ops", "next": to(a)})
    steps.append({"id": "end", "type": "end"})
    for k, (on, interrupting, inner) in enumerate(esps):
        esp: dict[str, Any] = {
            "id": f"esp{k}",
            "type": "subprocess",
            "on": on,
            "interrupting": interrupting,
        }
        esp.update({"signal": "s"} if on == "signal" else {"code": "UP"})
        body: dict[str, Any] = {"id": f"x{k}", "next": f"x{k}e"}
        if inner == "signal":
            body.update(type="throw", throw="signal", signal="s")
        elif inner == "escalation":
            body.update(type="throw", throw="escalation", code="UP")
        else:
            body["team"] = "ops"
        esp["steps"] = [
            {"id": f"x{k}s", "type": "start", "next": f"x{k}"},
            body,
            {"id": f"x{k}e", "type": "end"},
        ]
        steps.append(esp)
    return from_document(
        {"process": "spin", "teams": {"ops": {"members": ["olga"]}}, "steps": steps}
    )


@contextlib.contextmanager
def _within(seconds: float) -> Any:
    def hung(*_: Any) -> None:
        raise AssertionError(f"advance() ran for more than {seconds}s")

    old = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


SHAPE = st.lists(
    st.tuples(
        st.sampled_from(["exclusive", "inclusive", "parallel", "signal", "escalation", "task"]),
        st.integers(0, 20),
        st.integers(0, 20),
    ),
    min_size=1,
    max_size=7,
)
ESPS = st.lists(
    st.tuples(
        st.sampled_from(["signal", "escalation"]),
        st.booleans(),
        st.sampled_from(["signal", "escalation", "task"]),
    ),
    max_size=2,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SHAPE, ESPS, st.fixed_dictionaries({f"f{i}": st.booleans() for i in range(3)}), st.randoms())
def test_random_models_never_hang_advance(
    shape: list[tuple[str, int, int]], esps: list[tuple[str, bool, str]], data: Any, rnd: Any
) -> None:
    try:
        d = _random_model(shape, esps)
    except DefinitionError:
        assume(False)
        return
    state = None
    with _within(20):
        state = advance(d, None, StartCase(0.0, case_id="k", data=data)).state
    resumed = 0
    for i in range(8):
        if state.status.ended:
            return
        at = float(i + 1)
        if state.status is CaseStatus.PAUSED:
            if resumed:  # (a cycle that splits halves its weights each round: do not go on)
                return
            resumed += 1
            action: Any = ResumeCase(at, "operator:o", data={"f0": rnd.random() < 0.5})
        else:
            ready = [t for t in state.active_tasks() if t.status is TaskStatus.READY]
            if ready and rnd.random() < 0.7:
                action = CompleteTask(at, task_id=rnd.choice(ready).id)
            else:
                action = ReceiveSignal(at, name="s")
        with _within(20):
            try:
                state = advance(d, state, action).state
            except CaseError:
                continue
        assert state_from_json(state.to_json()) == state


# -- 3. a join is a deadlock only when nothing armed can bring a token to it or withdraw it -------

STUCK = """
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
INNER
- {id: end, type: end}
- {id: chased, team: ops, next: end2}
- {id: end2, type: end}
OUTER
"""


def _stuck(inner: str = "", outer: str = "") -> Any:
    return build(STUCK.replace("INNER", inner).replace("OUTER", outer))


def test_a_stuck_join_waits_while_a_message_boundary_of_its_sub_process_can_release_it() -> None:
    from accord.kernel import ReceiveMessage

    b = "- {id: cancel, type: boundary, attached_to: sub, on: message, message: stop, next: chased}"
    c = Case(_stuck(outer=b), {"x": 1})
    c.complete("a")
    assert c.s.status is CaseStatus.RUNNING and c.s.incident is None  # not a deadlock (yet)
    c.do(ReceiveMessage(c.now + 1, name="stop"))
    assert c.active() == ["chased"]


def test_a_stuck_join_waits_while_an_interrupting_event_sub_process_can_release_it() -> None:
    esp = """    - id: on-stop
      type: subprocess
      on: signal
      signal: stop
      steps:
        - {id: t0, type: start, next: tidy}
        - {id: tidy, team: ops, next: t9}
        - {id: t9, type: end}"""
    err = "- {id: never, type: boundary, attached_to: sub, on: error, code: NO, next: chased}"
    c = Case(_stuck(inner=esp, outer=err), {"x": 1})
    c.complete("a")
    assert c.s.status is CaseStatus.RUNNING and c.s.incident is None
    c.do(ReceiveSignal(c.now + 1, name="stop"))
    assert c.active() == ["on-stop", "sub", "tidy"]
    c.complete("tidy")
    assert c.s.status is CaseStatus.COMPLETED


def test_a_stuck_top_level_join_waits_for_an_interrupting_message_event_sub_process() -> None:
    from accord.kernel import ReceiveMessage

    d = build(
        """
        - {id: start, type: start, next: pick}
        - id: pick
          type: exclusive
          next: [{to: a, when: "x == 1"}, {to: b, default: true}]
        - {id: a, team: ops, next: both}
        - {id: b, team: it, next: both}
        - {id: both, type: parallel, next: end}
        - {id: end, type: end}
        - id: on-stop
          type: subprocess
          on: message
          message: stop
          steps:
            - {id: t0, type: start, next: tidy}
            - {id: tidy, team: ops, next: t9}
            - {id: t9, type: end}
        """
    )
    c = Case(d, {"x": 1})
    c.complete("a")
    assert c.s.status is CaseStatus.RUNNING and c.s.incident is None
    c.do(ReceiveMessage(c.now + 1, name="stop"))
    assert c.active() == ["on-stop", "tidy"]


def test_a_stuck_join_is_a_deadlock_when_only_useless_timers_are_left() -> None:
    # a reminder on the sub-process and a reminder of the process: neither brings a token to
    # the join nor withdraws it
    nag = (
        "- {id: nag, type: boundary, attached_to: sub, on: timer, cycle: R/PT1H,"
        " interrupting: false, next: chased}\n"
        "- id: remind\n  type: subprocess\n  on: timer\n  cycle: R/PT4H\n"
        "  interrupting: false\n  steps:\n"
        "    - {id: r0, type: start, next: r}\n"
        "    - {id: r, team: ops, next: r9}\n"
        "    - {id: r9, type: end}"
    )
    c = Case(_stuck(outer=nag), {"x": 1})
    c.complete("a")
    assert c.s.status is CaseStatus.PAUSED
    assert c.s.incident is not None and "deadlock" in c.s.incident["error"]


def test_a_stuck_join_waits_for_an_armed_interrupting_timer_of_its_sub_process() -> None:
    late = "- {id: late, type: boundary, attached_to: sub, on: timer, wait: PT1H, next: chased}"
    c = Case(_stuck(outer=late), {"x": 1})
    c.complete("a")
    assert c.s.status is CaseStatus.RUNNING and c.s.incident is None
    (timer,) = c.timers()
    c.fire(timer)
    assert c.active() == ["chased"]


# -- 4. housekeeping ------------------------------------------------------------------------------

MAIL = """
- {id: start, type: start, next: sub}
- id: sub
  type: subprocess
  next: again
  steps:
    - {id: s0, type: start, next: split}
    - {id: split, type: parallel, next: [snd, w]}
    - {id: snd, team: ops, next: [s8, {to: m, message: true}]}
    - {id: s8, type: end}
    - id: w
      team: ops
      next: [{to: m, when: "wait"}, {to: s9, default: true}]
    - {id: m, type: message, message: ping, next: s9}
    - {id: s9, type: end}
- {id: stop, type: boundary, attached_to: sub, on: message, message: stop, next: end}
- id: again
  type: exclusive
  next: [{to: sub, when: "more"}, {to: end, default: true}]
- {id: end, type: end}
"""


def test_mail_for_a_message_step_of_a_withdrawn_sub_process_goes_with_it() -> None:
    from accord.kernel import ReceiveMessage

    c = Case(build(MAIL), {"wait": True, "more": False})
    c.complete("snd")
    assert c.s.mailbox  # `m` does not wait yet: the message is kept for it
    c.do(ReceiveMessage(c.now + 1, name="stop"))
    assert c.s.mailbox == {}


def test_mail_left_in_a_completed_sub_process_is_not_taken_by_its_next_instance() -> None:
    c = Case(build(MAIL), {"wait": False, "more": True})
    c.complete("snd")
    c.complete("w", {"more": True})  # `m` is passed by: the sub-process completes, then again
    assert c.s.mailbox == {}
    c.complete("w", {"wait": True, "more": False})
    assert c.active() == ["m", "snd", "sub"]  # waits for a message of its own instance
    c.complete("snd")
    assert c.s.status is CaseStatus.COMPLETED


def test_a_signal_nobody_catches_has_no_effect_on_the_case_data() -> None:
    c = Case(build(LOOPED), {"x": 1})
    c.do(ReceiveSignal(c.now + 1, name="nobody", data={"x": 99, "y": 1}))
    assert c.s.data == {"x": 1}
    assert "y" not in c.s.versions


def test_a_caught_signal_writes_its_data_before_its_catcher_moves() -> None:
    c = Case(build(RESIGNAL.replace("type: throw, throw: signal, signal: ping", "team: ops")))
    c.do(ReceiveSignal(c.now + 1, name="ping", data={"y": 1}))
    assert c.s.data == {"y": 1}


REMINDED = """
- {id: start, type: start, next: a}
- {id: a, team: ops, next: end}
- {id: end, type: end}
- id: remind
  type: subprocess
  on: timer
  cycle: R/PT1H
  interrupting: false
  steps:
    - {id: r0, type: start, next: r}
    - {id: r, team: sales, next: r9}
    - {id: r9, type: end}
- id: on-stop
  type: subprocess
  on: message
  message: stop
  steps:
    - {id: t0, type: start, next: tidy}
    - {id: tidy, team: ops, next: t9}
    - {id: t9, type: end}
"""


def test_rerouting_out_of_an_interrupting_event_sub_process_rearms_the_process_timers() -> None:
    from accord.kernel import ReceiveMessage, RerouteCase, TimerKind

    c = Case(build(REMINDED))
    c.do(ReceiveMessage(c.now + 1, name="stop"))
    assert c.timers(TimerKind.EVENT) == []  # taken over: the process hears nothing else
    c.do(RerouteCase(c.now + 1, "operator:o", step="a"))
    assert c.active() == ["a"]
    (timer,) = c.timers(TimerKind.EVENT)  # the process runs again: its reminder listens
    assert timer.step == "remind"
    c.fire(timer)
    assert c.active() == ["a", "r", "remind"]


def test_an_event_sub_process_takes_no_share_unless_it_interrupts() -> None:
    from fractions import Fraction

    from accord.kernel import ReceiveMessage

    d = build(REMINDED)
    c = Case(d)
    c.fire(c.timers()[0])
    held = sum(Fraction(t.weight) for t in c.tasks() if t.scope is None)
    assert held == 1  # `a` holds the whole case; the reminder runs beside it
    assert c.task("remind").weight == "0"
    c.do(ReceiveMessage(c.now + 1, name="stop"))
    assert c.task("on-stop").weight == "1"  # it took the process over: the whole of it
