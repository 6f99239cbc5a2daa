"""Behaviour of the pure kernel, one small process per test (see SEMANTICS.md)."""

from __future__ import annotations

import pytest
from casekit import Case, build, steps_of, types

from accord.errors import ConflictError, ContractViolation, NotFound, TaskStateError
from accord.events import EventType as E
from accord.kernel import (
    CancelCase,
    CancelTimer,
    CaseStatus,
    ClaimTask,
    CompleteTask,
    FireTimer,
    OfferTask,
    PauseCase,
    ReassignTask,
    ReceiveMessage,
    ReleaseTask,
    RerouteCase,
    ResumeCase,
    RetryTask,
    RunHandler,
    ScheduleTimer,
    Scope,
    StartCase,
    TaskStatus,
    TimerKind,
    advance,
    replay,
)
from accord.kernel.state import state_from_json

RUNNING, PAUSED = CaseStatus.RUNNING, CaseStatus.PAUSED
COMPLETED, CANCELLED = CaseStatus.COMPLETED, CaseStatus.CANCELLED

# -- sequences --------------------------------------------------------------------------------

SEQUENCE = """
- {id: s, type: start, next: a}
- {id: a, team: sales, outputs: [x], next: b}
- {id: b, team: sales, inputs: [x, nope], next: e}
- {id: e, type: end}
"""


def test_sequential_flow() -> None:
    c = Case(build(SEQUENCE), {"client": "acme"})
    assert types(c.last) == ["case.started", "task.ready"]
    assert c.last.events[0].data == {"data": {"client": "acme"}}
    assert c.active() == ["a"]
    assert c.last.commands == [OfferTask("c1:a:1", "a", "sales", None, True)]

    tr = c.complete("a", {"x": 1}, actor="sam", at=10)
    assert types(tr) == ["task.claimed", "task.completed", "task.ready"]
    assert c.active() == ["b"]
    assert tr.events[-1].data["input"] == {"x": 1}  # declared inputs that exist
    assert c.s.data == {"client": "acme", "x": 1}

    tr = c.complete("b", {"y": 2}, at=25)
    assert types(tr) == ["task.completed", "case.completed"]
    assert c.s.status is COMPLETED
    assert c.s.ended_at == 25
    assert tr.events[-1].data == {"cycle_s": 25, "terminated": False}
    assert c.s.data == {"client": "acme", "x": 1, "y": 2}
    assert c.s.active_tasks() == []


def test_events_are_numbered_and_stamped() -> None:
    c = Case(build(SEQUENCE))
    c.complete("a", {"x": 1}, at=5)
    c.complete("b", at=7)
    assert [e.seq for e in c.events] == list(range(1, len(c.events) + 1))
    assert [e.id for e in c.events] == [f"c1#{n}" for n in range(1, len(c.events) + 1)]
    assert {e.case for e in c.events} == {"c1"}
    assert {e.process for e in c.events} == {"t@1"}
    assert c.events[-1].at == 7


def test_without_a_start_event_the_first_step_starts() -> None:
    d = build("- {id: a, team: sales, next: e}\n- {id: e, type: end}")
    c = Case(d)
    assert c.active() == ["a"]


def test_task_ids_count_visits() -> None:
    c = Case(build(SEQUENCE))
    assert c.task("a").id == "c1:a:1"


def test_replay_reproduces_the_state() -> None:
    c = Case(build(SEQUENCE))
    c.complete("a", {"x": 1})
    again = replay(c.d, c.actions)
    assert again is not None
    assert again.to_json() == c.s.to_json()
    assert state_from_json(c.s.to_json()) == c.s


def test_start_refusals() -> None:
    d = build(SEQUENCE)
    c = Case(d)
    with pytest.raises(ConflictError, match="already exists"):
        advance(d, c.s, StartCase(1, case_id="c1"))
    with pytest.raises(ConflictError, match="case id is required"):
        advance(d, None, StartCase(1))
    with pytest.raises(NotFound):
        advance(d, None, PauseCase(1))
    other = build(SEQUENCE, header="version: 2\n")
    with pytest.raises(ConflictError, match="runs t@1, not t@2"):
        advance(other, c.s, PauseCase(1))


def test_unknown_task_is_not_found() -> None:
    c = Case(build(SEQUENCE))
    with pytest.raises(NotFound, match="no task 'nope'"):
        c.do(CompleteTask(1, task_id="nope"))


# -- exclusive split --------------------------------------------------------------------------

EXCLUSIVE = """
- {id: s, type: start, next: g}
- id: g
  type: exclusive
  next:
    - {to: other, default: true}
    - {to: big, when: "amount > 1000"}
    - {to: medium, when: "amount > 100"}
- {id: big, team: sales, next: e}
- {id: medium, team: sales, next: e}
- {id: other, team: sales, next: e}
- {id: e, type: end}
"""


@pytest.mark.parametrize(
    ("amount", "taken"),
    [(5000, "big"), (1001, "big"), (500, "medium"), (100, "other"), (-1, "other")],
)
def test_exclusive_first_true_in_declared_order_else_default(amount: int, taken: str) -> None:
    c = Case(build(EXCLUSIVE), {"amount": amount})
    assert c.active() == [taken]
    (decided,) = c.of(E.GATEWAY_DECIDED)
    assert decided.step == "g"
    assert decided.data == {"flows": [f"g->{taken}"], "targets": [taken], "explicit": False}


NO_DEFAULT = """
- {id: s, type: start, next: a}
- {id: a, team: sales, next: g}
- id: g
  type: exclusive
  next:
    - {to: big, when: "amount > 1000"}
    - {to: small, when: "amount < 10"}
- {id: big, team: ops, next: e}
- {id: small, team: ops, next: e}
- {id: e, type: end}
"""


def test_exclusive_without_a_true_condition_or_default_raises_an_incident() -> None:
    c = Case(build(NO_DEFAULT))
    tr = c.complete("a", {"amount": 500})
    assert c.s.status is PAUSED
    assert types(tr) == ["task.completed", "case.paused"]
    paused = tr.events[-1]
    assert paused.data["reason"] == "incident"
    assert paused.data["step"] == "g"
    assert "no condition is true and there is no default flow" in paused.data["error"]
    assert "amount > 1000; amount < 10" in paused.data["error"]
    assert c.s.incident is not None
    assert c.s.incident["step"] == "g"
    assert [(node, tok.origin) for node, tok in c.s.parked] == [("g", ("a",))]
    assert c.active() == []  # nothing runs, but the case is not silently complete

    # Resuming without a fix raises the same incident again.
    tr = c.do(ResumeCase(c.now + 1, "operator:o"))
    assert types(tr) == ["case.resumed", "case.paused"]
    assert c.s.status is PAUSED

    # Resuming with corrected data continues from the gateway.
    tr = c.do(ResumeCase(c.now + 1, "operator:o", data={"amount": 5000}))
    assert types(tr) == ["case.resumed", "gateway.decided", "handoff", "task.ready"]
    assert c.s.status is RUNNING
    assert c.s.incident is None
    assert c.s.parked == []
    assert c.s.data["amount"] == 5000
    assert c.active() == ["big"]
    c.complete("big")
    assert c.s.status is COMPLETED


def test_a_condition_that_fails_at_run_time_raises_an_incident() -> None:
    c = Case(build(NO_DEFAULT))
    tr = c.complete("a", {"other": 1})  # 'amount' is missing
    assert c.s.status is PAUSED
    error = tr.events[-1].data["error"]
    assert "condition failed" in error
    assert "unknown name 'amount'" in error
    c.do(ResumeCase(c.now + 1, data={"amount": 1}))
    assert c.active() == ["small"]


def test_conditional_flows_out_of_a_task_take_every_true_flow_like_bpmn() -> None:
    d = build(
        """
        - {id: s, type: start, next: a}
        - id: a
          team: sales
          next:
            - {to: x, when: "n > 0"}
            - {to: y, when: "n > -10"}
            - {to: z, default: true}
        - {id: x, team: sales, next: e}
        - {id: y, team: sales, next: e}
        - {id: z, team: sales, next: e}
        - {id: e, type: end}
        """
    )
    for n, expected in [(5, ["x", "y"]), (-5, ["y"]), (-50, ["z"])]:
        c = Case(d)
        c.complete("a", {"n": n})
        assert c.active() == expected
        for step in expected:
            c.complete(step)
        assert c.s.status is COMPLETED


def test_conditional_flows_out_of_a_start_event_are_inclusive_like_camunda() -> None:
    d = build(
        """
        - id: s
          type: start
          next:
            - {id: f1, to: partial_gw, when: "input <= 1"}
            - {id: f2, to: partial_gw, when: "input <= 2"}
            - {id: f3, to: partial_task, when: "input <= 3"}
        - {id: partial_gw, type: inclusive, next: full_gw}
        - {id: partial_task, team: sales, next: full_gw}
        - {id: full_gw, type: inclusive, next: the_task}
        - {id: the_task, team: sales, next: e}
        - {id: e, type: end}
        """
    )
    c = Case(d, {"input": 2})
    assert c.active() == ["partial_task"]
    c.complete("partial_task")
    assert c.active() == ["the_task"]


def test_explicit_decision_overrides_conditions() -> None:
    d = build(
        """
        - {id: s, type: start, next: a}
        - {id: a, team: sales, next: g}
        - id: g
          type: exclusive
          next:
            - {to: x, when: "true"}
            - {to: y, default: true}
        - {id: x, team: sales, next: e}
        - {id: y, team: sales, next: e}
        - {id: e, type: end}
        """
    )
    c = Case(d)
    tr = c.complete("a", decisions={"g": ["y"]})
    assert c.active() == ["y"]
    (decided,) = [e for e in tr.events if e.type is E.GATEWAY_DECIDED]
    assert decided.data["explicit"] is True
    c2 = Case(d)
    before = c2.snapshot()
    with pytest.raises(ConflictError, match="not among its flows"):
        c2.complete("a", decisions={"g": ["nowhere"]})
    assert c2.s == before


# -- inclusive split and join -----------------------------------------------------------------

INCLUSIVE = """
- {id: s, type: start, next: split}
- id: split
  type: inclusive
  next:
    - {to: a, when: "'a' in pick"}
    - {to: b, when: "'b' in pick"}
    - {to: c, when: "'c' in pick"}
    - {to: none, default: true}
- {id: a, team: sales, next: a2}
- {id: a2, team: sales, next: join}
- {id: b, team: ops, next: join}
- {id: c, team: it, next: join}
- {id: none, team: sales, next: join}
- {id: join, type: inclusive, next: after}
- {id: after, team: sales, next: e}
- {id: e, type: end}
"""


def test_inclusive_only_activated_branches_are_awaited() -> None:
    c = Case(build(INCLUSIVE), {"pick": ["b", "c"]})
    assert c.active() == ["b", "c"]
    (decided,) = c.of(E.GATEWAY_DECIDED)
    assert decided.data["targets"] == ["b", "c"]
    c.complete("c")
    assert c.active() == ["b"]  # the join waits for b only: a was never activated
    c.complete("b")
    assert c.active() == ["after"]
    assert c.s.joins == {}
    c.complete("after")
    assert c.s.status is COMPLETED
    assert c.created("after") == 1


def test_inclusive_default_when_no_condition_is_true() -> None:
    c = Case(build(INCLUSIVE), {"pick": []})
    assert c.active() == ["none"]
    c.complete("none")
    assert c.active() == ["after"]


def test_inclusive_without_true_condition_or_default_raises_an_incident() -> None:
    d = build(
        INCLUSIVE.replace("    - {to: none, default: true}\n", "").replace(
            "- {id: none, team: sales, next: join}\n", ""
        )
    )
    c = Case(d, {"pick": []})
    assert c.s.status is PAUSED
    assert c.of(E.CASE_PAUSED)[0].data["reason"] == "incident"
    c.do(ResumeCase(1, data={"pick": ["a"]}))
    assert c.active() == ["a"]


def test_inclusive_join_fires_once_when_the_last_activated_branch_arrives() -> None:
    c = Case(build(INCLUSIVE), {"pick": ["a", "b", "c"]})
    c.complete("b")
    c.complete("c")
    assert c.active() == ["a"]
    assert c.created("after") == 0
    c.complete("a")
    assert c.active() == ["a2"]
    assert c.created("after") == 0
    c.complete("a2")
    assert c.active() == ["after"]
    assert c.created("after") == 1
    # The merged token remembers every branch it came from.
    assert set(c.task("after").origin) == {"a2", "b", "c"}


def test_inclusive_join_waits_while_an_upstream_token_can_still_reach_it() -> None:
    c = Case(build(INCLUSIVE), {"pick": ["a", "b"]})
    c.complete("b")
    assert _origins(c.s.joins) == {"join": {"b->join": [("b",)]}}
    c.complete("a")  # the token moved to a2: still upstream of the empty flow
    assert c.active() == ["a2"]
    assert "join" in c.s.joins
    c.complete("a2")
    assert c.active() == ["after"]


def test_inclusive_join_waits_for_a_message_wait_upstream() -> None:
    # Camunda InclusiveGatewayTest.testJoinAfterEventBasedGateway, with a message step
    # standing in for the event-based gateway: a token parked at a wait state still counts.
    d = build(
        """
        - {id: s, type: start, next: split}
        - id: split
          type: inclusive
          next:
            - {to: the_task, when: "true"}
            - {to: foo, when: "true"}
        - {id: the_task, team: sales, next: join}
        - {id: foo, type: message, message: foo, next: join}
        - {id: join, type: inclusive, next: task_after_join}
        - {id: task_after_join, team: sales, next: e}
        - {id: e, type: end}
        """
    )
    c = Case(d)
    c.complete("the_task")
    assert c.active() == ["foo"]
    c.do(ReceiveMessage(5, name="foo"))
    assert c.active() == ["task_after_join"]


@pytest.mark.parametrize(
    ("value", "expected"), [(1, ["t1", "t2", "t3"]), (2, ["t2", "t3"]), (3, ["t3"])]
)
def test_diverging_inclusive_gateway_like_camunda(value: int, expected: list[str]) -> None:
    d = build(
        """
        - {id: s, type: start, next: g}
        - id: g
          type: inclusive
          next:
            - {to: t1, when: "input <= 1"}
            - {to: t2, when: "input <= 2"}
            - {to: t3, when: "input <= 3"}
        - {id: t1, team: sales, next: e}
        - {id: t2, team: sales, next: e}
        - {id: t3, team: sales, next: e}
        - {id: e, type: end}
        """
    )
    c = Case(d, {"input": value})
    assert c.active() == expected
    for step in expected:
        c.complete(step)
    assert c.s.status is COMPLETED


def test_partial_merging_inclusive_gateway_like_camunda() -> None:
    d = build(
        """
        - {id: s, type: start, next: split}
        - id: split
          type: inclusive
          next:
            - {id: f1, to: partial_gw, when: "input <= 1"}
            - {id: f2, to: partial_gw, when: "input <= 2"}
            - {id: f3, to: partial_task, when: "input <= 3"}
        - {id: partial_gw, type: inclusive, next: full_gw}
        - {id: partial_task, team: sales, next: full_gw}
        - {id: full_gw, type: inclusive, next: the_task}
        - {id: the_task, team: sales, next: e}
        - {id: e, type: end}
        """
    )
    c = Case(d, {"input": 2})
    assert c.active() == ["partial_task"]
    c.complete("partial_task")
    assert c.active() == ["the_task"]
    c.complete("the_task")
    assert c.s.status is COMPLETED


NESTED_PARALLEL_IN_INCLUSIVE = """
- {id: s, type: start, next: split}
- id: split
  type: inclusive
  next:
    - {to: fork, when: "true"}
    - {to: t3, when: "true"}
- {id: fork, type: parallel, next: [t1, t2]}
- {id: t1, team: sales, next: pjoin}
- {id: t2, team: sales, next: pjoin}
- {id: pjoin, type: parallel, next: x}
- {id: x, team: sales, next: ijoin}
- {id: t3, team: sales, next: ijoin}
- {id: ijoin, type: inclusive, next: after}
- {id: after, team: sales, next: e}
- {id: e, type: end}
"""


def test_inclusive_join_waits_for_a_nested_parallel_block_completed_last() -> None:
    c = Case(build(NESTED_PARALLEL_IN_INCLUSIVE))
    c.complete("t3")
    c.complete("t1")
    c.complete("t2")
    assert c.active() == ["x"]
    c.complete("x")
    assert c.active() == ["after"]


def test_inclusive_join_is_not_fooled_by_a_join_firing_in_the_same_pass() -> None:
    c = Case(build(NESTED_PARALLEL_IN_INCLUSIVE))
    c.complete("t1")  # pjoin now holds a token (and is first in the joins table)
    c.complete("t3")  # ijoin holds a token, waiting: t2 and pjoin are upstream
    c.complete("t2")  # pjoin fires; its token heads for x, still upstream of ijoin
    assert c.active() == ["x"]
    c.complete("x")
    assert c.active() == ["after"]
    assert c.created("after") == 1


def test_outer_inclusive_join_waits_for_an_inner_inclusive_join() -> None:
    d = build(
        """
        - {id: s, type: start, next: outer}
        - id: outer
          type: inclusive
          next:
            - {to: inner, when: "true"}
            - {to: c, when: "true"}
        - id: inner
          type: inclusive
          next:
            - {to: a, when: "true"}
            - {to: b, when: "true"}
        - {id: a, team: sales, next: inner_join}
        - {id: b, team: sales, next: inner_join}
        - {id: inner_join, type: inclusive, next: mid}
        - {id: mid, team: sales, next: outer_join}
        - {id: c, team: sales, next: outer_join}
        - {id: outer_join, type: inclusive, next: after}
        - {id: after, team: sales, next: e}
        - {id: e, type: end}
        """
    )
    c = Case(d)
    c.complete("a")  # inner_join first in the joins table
    c.complete("c")  # outer_join waits
    c.complete("b")  # inner_join fires; its token is on its way to mid
    assert c.active() == ["mid"]


INCLUSIVE_IN_PARALLEL_IN_LOOP = """
- {id: s, type: start, next: m}
- {id: m, type: exclusive, next: fork}
- {id: fork, type: parallel, next: [w, split]}
- {id: w, team: sales, next: pjoin}
- id: split
  type: inclusive
  next:
    - {to: x, when: "'x' in pick"}
    - {to: y, when: "'y' in pick"}
- {id: x, team: sales, next: ojoin}
- {id: y, team: sales, next: ojoin}
- {id: ojoin, type: inclusive, next: pjoin}
- {id: pjoin, type: parallel, next: check}
- id: check
  team: sales
  next:
    - {to: m, when: again}
    - {to: e, default: true}
- {id: e, type: end}
"""


def test_inclusive_join_in_a_loop_with_every_branch_activated() -> None:
    c = Case(build(INCLUSIVE_IN_PARALLEL_IN_LOOP), {"pick": ["x", "y"], "again": False})
    for step in ["x", "w", "y"]:
        c.complete(step)
    assert c.active() == ["check"]


@pytest.mark.parametrize("order", [["x", "w"], ["w", "x"]])
def test_inclusive_join_in_a_loop_with_some_branches_activated(order: list[str]) -> None:
    c = Case(build(INCLUSIVE_IN_PARALLEL_IN_LOOP), {"pick": ["x"], "again": False})
    for step in order:
        c.complete(step)
    assert c.s.status is RUNNING
    assert c.active() == ["check"]


# -- parallel split and join ------------------------------------------------------------------

PARALLEL = """
- {id: s, type: start, next: fork}
- {id: fork, type: parallel, next: [a, b, c]}
- {id: a, team: sales, next: join}
- {id: b, team: ops, next: join}
- {id: c, team: it, next: join}
- {id: join, type: parallel, next: after}
- {id: after, team: sales, next: e}
- {id: e, type: end}
"""


@pytest.mark.parametrize("order", [("a", "b", "c"), ("c", "b", "a"), ("b", "a", "c")])
def test_parallel_join_waits_for_every_branch(order: tuple[str, ...]) -> None:
    c = Case(build(PARALLEL))
    assert c.active() == ["a", "b", "c"]
    (decided,) = c.of(E.GATEWAY_DECIDED)
    assert decided.data["targets"] == ["a", "b", "c"]
    for step in order[:-1]:
        c.complete(step)
        assert c.created("after") == 0
    c.complete(order[-1])
    assert c.active() == ["after"]
    assert c.s.joins == {}
    c.complete("after")
    assert c.s.status is COMPLETED


def test_a_task_with_several_plain_flows_forks() -> None:
    d = build(
        """
        - {id: s, type: start, next: a}
        - {id: a, team: sales, next: [b, c]}
        - {id: b, team: sales, next: j}
        - {id: c, team: sales, next: j}
        - {id: j, type: parallel, next: e}
        - {id: e, type: end}
        """
    )
    c = Case(d)
    c.complete("a")
    assert c.active() == ["b", "c"]


def test_unbalanced_fork_join_like_camunda() -> None:
    d = build(
        """
        - {id: the_start, type: start, next: fork}
        - {id: fork, type: parallel, next: [task1, task2, task3]}
        - {id: task1, team: sales, next: first_join}
        - {id: task2, team: sales, next: first_join}
        - {id: task3, team: sales, next: second_join}
        - {id: first_join, type: parallel, next: task4}
        - {id: task4, team: sales, next: second_join}
        - {id: second_join, type: parallel, next: the_end}
        - {id: the_end, type: end}
        """
    )
    c = Case(d)
    assert c.active() == ["task1", "task2", "task3"]
    c.complete("task1")
    c.complete("task2")
    assert c.active() == ["task3", "task4"]
    c.complete("task4")
    assert c.active() == ["task3"]
    c.complete("task3")
    assert c.s.status is COMPLETED


def test_unstructured_concurrency_two_forks_like_camunda() -> None:
    d = build(
        """
        - {id: the_start, type: start, next: fork1}
        - {id: fork1, type: parallel, next: [task1, task2, fork2]}
        - {id: fork2, type: parallel, next: [task3, task4]}
        - {id: task1, team: sales, next: join}
        - {id: task2, team: sales, next: join}
        - {id: task3, team: sales, next: join}
        - {id: task4, team: sales, next: join}
        - {id: join, type: parallel, next: the_end}
        - {id: the_end, type: end}
        """
    )
    c = Case(d)
    assert c.active() == ["task1", "task2", "task3", "task4"]
    for step in ["task3", "task1", "task4", "task2"]:
        c.complete(step)
    assert c.s.status is COMPLETED


GENERATIONS = """
- {id: s, type: start, next: fork}
- {id: fork, type: parallel, next: [p, q]}
- {id: p, team: sales, next: ps}
- {id: ps, type: parallel, next: [join, pl]}
- id: pl
  team: sales
  next:
    - {to: p, when: "pn < 2"}
    - {to: pend, default: true}
- {id: pend, type: end}
- {id: q, team: ops, next: qs}
- {id: qs, type: parallel, next: [join, ql]}
- id: ql
  team: ops
  next:
    - {to: q, when: "qn < 2"}
    - {to: qend, default: true}
- {id: qend, type: end}
- {id: join, type: parallel, next: after}
- {id: after, team: it, next: e}
- {id: e, type: end}
"""


def test_parallel_join_in_a_loop_fires_once_per_generation() -> None:
    c = Case(build(GENERATIONS))
    # Branch p runs ahead: two tokens wait on the p side of the join.
    c.complete("p")
    c.complete("pl", {"pn": 1})
    c.complete("p")
    c.complete("pl", {"pn": 2})
    assert _origins(c.s.joins) == {"join": {"ps->join": [("p",), ("p",)]}}
    assert c.created("after") == 0
    c.complete("q")  # first generation: consumes one token from each side
    assert c.created("after") == 1
    assert _origins(c.s.joins) == {"join": {"ps->join": [("p",)]}}
    c.complete("ql", {"qn": 1})
    c.complete("q")  # second generation
    assert c.created("after") == 2
    assert c.s.joins == {}
    c.complete("ql", {"qn": 2})
    assert c.active() == ["after", "after"]
    for t in c.tasks("after"):
        c.do(CompleteTask(c.now + 1, task_id=t.id))
    assert c.s.status is COMPLETED


def test_parallel_join_that_can_never_fire_is_a_deadlock_incident() -> None:
    d = build(
        """
        - {id: s, type: start, next: [a, g]}
        - {id: a, team: sales, next: join}
        - id: g
          type: exclusive
          next:
            - {to: b, when: "go"}
            - {to: skip, default: true}
        - {id: b, team: sales, next: join}
        - {id: skip, team: sales, next: e2}
        - {id: join, type: parallel, next: e}
        - {id: e, type: end}
        - {id: e2, type: end}
        """
    )
    c = Case(d, {"go": False})
    assert c.active() == ["a", "skip"]
    c.complete("a")
    assert c.s.status is RUNNING  # skip is still running: no verdict yet
    tr = c.complete("skip")
    assert c.s.status is PAUSED
    paused = tr.events[-1]
    assert paused.type is E.CASE_PAUSED
    assert paused.data["reason"] == "incident"
    assert "deadlock" in paused.data["error"]
    assert "join" in paused.data["error"]
    assert c.s.status is not COMPLETED
    # An operator can reroute the stuck case.
    c.do(RerouteCase(c.now + 1, "operator:o", step="e"))
    assert c.s.status is COMPLETED


# -- approvals and rework ---------------------------------------------------------------------

APPROVAL = """
- {id: s, type: start, next: request}
- {id: request, team: sales, role: rep, outputs: [amount], next: review}
- id: review
  type: approval
  team: ops
  next: {approve: done_task, rework: request, reject: rejected}
- {id: done_task, team: it, next: done}
- {id: done, type: end}
- {id: rejected, type: end}
"""


def test_rework_loop_via_approval_outcome() -> None:
    c = Case(build(APPROVAL))
    c.complete("request", {"amount": 10})
    c.complete("review", {"outcome": "rework", "note": "amount too low"})
    assert c.active() == ["request"]
    assert c.task("request").id == "c1:request:2"
    assert c.s.visits["request"] == 2
    tr = c.complete("request", {"amount": 20})
    assert c.task("review").id == "c1:review:2"
    handoff = [e for e in tr.events if e.type is E.HANDOFF]
    assert len(handoff) == 1
    c.complete("review", {"outcome": "approve"})
    assert c.active() == ["done_task"]
    c.complete("done_task")
    assert c.s.status is COMPLETED
    completed = [e.task for e in c.of(E.TASK_COMPLETED)]
    assert len(completed) == len(set(completed)) == 5


def test_reject_ends_the_case() -> None:
    c = Case(build(APPROVAL))
    c.complete("request", {"amount": 10})
    c.complete("review", {"outcome": "reject"})
    assert c.s.status is COMPLETED
    assert c.created("done_task") == 0


# -- claims and completion --------------------------------------------------------------------

CLAIMS = """
- {id: s, type: start, next: a}
- {id: a, team: sales, role: rep, next: b}
- {id: b, team: sales, next: e}
- {id: e, type: end}
"""


def test_claim_is_exclusive() -> None:
    c = Case(build(CLAIMS))
    tr = c.claim("a", "sam", at=30)
    assert types(tr) == ["task.claimed"]
    assert tr.events[0].data == {"assignee": "sam", "waited_s": 30}
    t = c.task("a")
    assert (t.status, t.assignee, t.claimed_at) == (TaskStatus.CLAIMED, "sam", 30)
    before = c.snapshot()
    with pytest.raises(TaskStateError, match="claimed by sam"):
        c.claim("a", "ana")
    assert c.s == before


def test_holder_reclaim_is_a_no_op() -> None:
    c = Case(build(CLAIMS))
    c.claim("a", "sam")
    before = c.snapshot()
    tr = c.claim("a", "sam")
    assert tr.events == []
    assert tr.commands == []
    assert c.s == before


@pytest.mark.parametrize("member", ["ivan", "olga", "nobody"])
def test_a_non_member_cannot_claim(member: str) -> None:
    c = Case(build(CLAIMS))
    with pytest.raises(TaskStateError, match="not in team 'sales'"):
        c.claim("a", member)
    assert c.task("a").status is TaskStatus.READY


def test_role_is_enforced() -> None:
    c = Case(build(CLAIMS))
    with pytest.raises(TaskStateError, match="with role 'rep'"):
        c.claim("a", "raj")  # in sales, but not a rep
    c.claim("a", "ana")
    assert c.task("a").assignee == "ana"


def test_a_claim_names_a_member() -> None:
    c = Case(build(CLAIMS))
    with pytest.raises(TaskStateError, match="names the member"):
        c.do(ClaimTask(1, task_id=c.task("a").id, member=""))


def test_release_then_another_member_claims() -> None:
    c = Case(build(CLAIMS))
    c.claim("a", "sam")
    with pytest.raises(TaskStateError, match="claimed by sam; ana cannot release"):
        c.do(ReleaseTask(5, "ana", task_id=c.task("a").id))
    tr = c.do(ReleaseTask(5, "sam", task_id=c.task("a").id))
    assert types(tr) == ["task.released"]
    assert isinstance(tr.commands[0], OfferTask)
    assert c.task("a").status is TaskStatus.READY
    assert c.do(ReleaseTask(6, "sam", task_id=c.task("a").id)).events == []
    c.claim("a", "ana")
    assert c.task("a").assignee == "ana"


def test_completing_another_members_claimed_task_is_refused() -> None:
    c = Case(build(CLAIMS))
    c.claim("a", "sam")
    before = c.snapshot()
    with pytest.raises(TaskStateError, match="claimed by sam; ana cannot complete"):
        c.complete("a", actor="ana")
    assert c.s == before
    c.complete("a", actor="operator:olivia")  # operators may act on anyone's task
    assert c.active() == ["b"]


def test_completing_a_ready_task_claims_it_implicitly() -> None:
    c = Case(build(CLAIMS))
    tr = c.complete("a", actor="ana")
    assert types(tr)[:2] == ["task.claimed", "task.completed"]
    assert c.s.tasks["c1:a:1"].assignee == "ana"


def test_a_non_member_cannot_complete_a_ready_task() -> None:
    c = Case(build(CLAIMS))
    with pytest.raises(TaskStateError, match="not in team"):
        c.complete("a", actor="ivan")
    with pytest.raises(TaskStateError, match="not in team"):
        c.complete("a", actor="raj")  # wrong role


def test_reassign_to_a_member_and_to_a_team() -> None:
    c = Case(build(CLAIMS))
    tid = c.task("a").id
    tr = c.do(ReassignTask(3, "operator:o", task_id=tid, member="raj"))
    assert types(tr) == ["task.reassigned"]
    assert (c.task("a").assignee, c.task("a").status) == ("raj", TaskStatus.CLAIMED)
    tr = c.do(ReassignTask(4, "operator:o", task_id=tid, team="ops"))
    assert (c.task("a").team, c.task("a").status) == ("ops", TaskStatus.READY)
    assert tr.commands == [OfferTask(tid, "a", "ops", "rep", True)]
    with pytest.raises(NotFound):
        c.do(ReassignTask(5, "operator:o", task_id=tid, team="nope"))
    with pytest.raises(TaskStateError):
        c.do(ReassignTask(5, "operator:o", task_id=tid, member="sam"))  # sam is not in ops


def test_complete_twice_with_same_data_is_a_no_op() -> None:
    c = Case(build(CLAIMS))
    c.complete("a", {"x": 1}, actor="sam")
    tid = "c1:a:1"
    before = c.snapshot()
    tr = c.do(CompleteTask(50, "sam", task_id=tid, data={"x": 1}))
    assert tr.events == []
    assert tr.commands == []
    assert c.s == before


def test_complete_twice_with_different_data_is_a_conflict() -> None:
    c = Case(build(CLAIMS))
    c.complete("a", {"x": 1}, actor="sam")
    before = c.snapshot()
    with pytest.raises(ConflictError, match="already completed with different data"):
        c.do(CompleteTask(50, "sam", task_id="c1:a:1", data={"x": 2}))
    assert c.s == before


def test_repeated_completion_after_the_case_ended() -> None:
    c = Case(build(SEQUENCE))
    c.complete("a", {"x": 1})
    c.complete("b", {"y": 1})
    assert c.s.status is COMPLETED
    assert c.do(CompleteTask(99, task_id="c1:b:1", data={"y": 1})).events == []
    with pytest.raises(ConflictError):
        c.do(CompleteTask(99, task_id="c1:b:1", data={"y": 2}))


def test_data_digest_ignores_key_order() -> None:
    c = Case(build(CLAIMS))
    c.complete("a", {"x": 1, "y": 2})
    assert c.do(CompleteTask(9, task_id="c1:a:1", data={"y": 2, "x": 1})).events == []


# -- contracts --------------------------------------------------------------------------------

CONTRACT = """
- {id: s, type: start, next: a}
- id: a
  team: sales
  outputs: [client, amount]
  contract:
    type: object
    required: [client]
    properties:
      client: {type: string, minLength: 1}
      amount: {type: number, minimum: 0}
  next: r
- {id: r, type: approval, team: ops, next: {approve: e, reject: e2}}
- {id: e, type: end}
- {id: e2, type: end}
"""


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        ({"client": "acme", "amount": -5}, ["amount: -5 is less than the minimum of 0"]),
        ({"client": "", "amount": 5}, ["client: '' should be non-empty"]),
        ({"client": "acme"}, ["missing output amount"]),
        ({}, ["missing output client, amount", "(root): 'client' is a required property"]),
        ({"client": 7, "amount": "x"}, ["client: 7 is not of type 'string'", "amount: 'x'"]),
    ],
)
def test_contract_violation_changes_nothing(data: dict[str, object], fragments: list[str]) -> None:
    c = Case(build(CONTRACT))
    before = c.snapshot()
    raw = c.s.to_json()
    with pytest.raises(ContractViolation) as info:
        c.complete("a", data, actor="sam")
    assert info.value.step == "a"
    for fragment in fragments:
        assert any(fragment in err for err in info.value.errors), info.value.errors
    assert c.s == before  # the state handed in is untouched
    assert c.s.to_json() == raw
    assert c.task("a").status is TaskStatus.READY  # not even claimed


@pytest.mark.parametrize("outcome", [None, "maybe", "APPROVE"])
def test_approval_needs_a_valid_outcome(outcome: str | None) -> None:
    c = Case(build(CONTRACT))
    c.complete("a", {"client": "acme", "amount": 1})
    before = c.snapshot()
    data = {} if outcome is None else {"outcome": outcome}
    # only the outcomes the approval routes may be given (here: approve and reject)
    with pytest.raises(ContractViolation, match="outcome must be one of approve, reject, not"):
        c.complete("r", data)
    assert c.s == before


# -- retries and errors -----------------------------------------------------------------------

RETRY = """
- {id: s, type: start, next: job}
- id: job
  type: automated
  team: it
  handler: "pkg.mod:run"
  retry: {max_attempts: 3, backoff: PT1M, factor: 2}
  next: after
- {id: after, team: sales, next: e}
- {id: e, type: end}
"""


def test_failure_schedules_a_retry_with_backoff() -> None:
    c = Case(build(RETRY), {"k": 1})
    (run,) = c.last.commands
    assert run == RunHandler("c1:job:1", "job", "pkg.mod:run", "c1:job:1", 1, {"k": 1})

    tr = c.fail("job", "timeout", at=100)
    assert types(tr) == ["task.failed"]
    assert tr.events[0].data == {"error": "timeout", "attempt": 1, "retry_at": 160}
    t = c.task("job")
    assert (t.status, t.error) == (TaskStatus.WAITING, "timeout")
    retry = c.timer(TimerKind.RETRY)
    assert tr.commands == [ScheduleTimer(retry.id, 160)]

    tr = c.fire(retry)
    assert types(tr) == ["task.ready"]
    assert tr.events[0].data["attempt"] == 2
    assert c.task("job").status is TaskStatus.READY
    assert c.task("job").attempt == 2
    (run,) = tr.commands
    assert isinstance(run, RunHandler)
    assert run.attempt == 2
    assert run.key == "c1:job:1"  # same idempotency key across attempts

    tr = c.fail("job", at=200)
    assert tr.events[0].data["retry_at"] == 200 + 120  # backoff doubles
    c.fire(c.timer(TimerKind.RETRY))
    assert c.task("job").attempt == 3
    c.complete("job", {"done": True})
    assert c.active() == ["after"]


def test_exhausted_retries_pause_the_case_with_an_incident() -> None:
    c = Case(build(RETRY))
    for _ in range(2):
        c.fail("job")
        c.fire(c.timer(TimerKind.RETRY))
    tr = c.fail("job", "still broken")
    assert types(tr) == ["task.failed", "case.paused"]
    assert tr.events[0].data["retry_at"] is None
    assert tr.events[1].data == {
        "reason": "incident",
        "task": "c1:job:1",
        "step": "job",
        "error": "still broken",
    }
    assert c.s.status is PAUSED
    assert c.task("job").status is TaskStatus.FAILED
    assert c.timers() == []
    with pytest.raises(TaskStateError, match="failed; an operator must retry"):
        c.complete("job")

    tr = c.do(RetryTask(c.now + 1, "operator:o", task_id="c1:job:1"))
    assert types(tr) == ["case.resumed", "task.ready"]
    assert c.s.status is RUNNING
    assert c.task("job").attempt == 4
    c.complete("job")
    assert c.active() == ["after"]


def test_non_retryable_failure_skips_the_retries() -> None:
    c = Case(build(RETRY))
    c.fail("job", retryable=False)
    assert c.s.status is PAUSED
    assert c.task("job").status is TaskStatus.FAILED


def test_exhausted_retries_reroute() -> None:
    d = build(
        RETRY.replace(
            "retry: {max_attempts: 3, backoff: PT1M, factor: 2}",
            "retry: 2\n  on_error: {reroute: fix}",
        )
        + "- {id: fix, team: ops, next: e}\n"
    )
    c = Case(d)
    c.fail("job")
    c.fire(c.timer(TimerKind.RETRY))
    tr = c.fail("job", "bad input")
    assert types(tr) == ["task.failed", "case.rerouted", "handoff", "task.ready"]
    assert tr.events[1].data == {"from": ["job"], "to": "fix", "reason": "bad input"}
    assert c.s.tasks["c1:job:1"].status is TaskStatus.CANCELLED
    assert c.s.status is RUNNING
    assert c.active() == ["fix"]
    c.complete("fix")
    assert c.s.status is COMPLETED


def test_only_ready_or_claimed_tasks_can_fail() -> None:
    c = Case(build(RETRY))
    c.fail("job")
    with pytest.raises(TaskStateError, match="waiting; it cannot fail"):
        c.fail("job")
    with pytest.raises(TaskStateError, match="only failed tasks retry"):
        c.do(RetryTask(9, task_id="c1:job:1"))


# -- SLA --------------------------------------------------------------------------------------

SLA = """
- {id: s, type: start, next: a}
- {id: a, team: sales, sla: PT1H, escalate_to: olga, next: b}
- {id: b, team: sales, sla: PT2H, escalate_to: ops, next: c}
- {id: c, team: sales, sla: PT30M, next: e}
- {id: e, type: end}
"""


def test_sla_breach_escalates_a_ready_task_to_a_member() -> None:
    c = Case(build(SLA), at=1000)
    sla = c.timer(TimerKind.SLA)
    assert sla.due == 1000 + 3600
    assert ScheduleTimer(sla.id, 4600) in c.last.commands
    tr = c.fire(sla)
    assert types(tr) == ["sla.breached", "task.escalated"]
    assert tr.events[0].data == {"sla_s": 3600, "assignee": None}
    assert tr.events[1].data["to"] == "olga"
    assert tr.events[1].data["notify"] is False
    t = c.task("a")
    assert (t.status, t.assignee, t.escalated) == (TaskStatus.CLAIMED, "olga", True)
    with pytest.raises(TaskStateError):
        c.complete("a", actor="sam")
    c.complete("a", actor="olga")  # olga is in ops, but the task was escalated to her
    assert c.active() == ["b"]


def test_sla_breach_on_a_claimed_task_notifies_and_leaves_the_work_in_place() -> None:
    c = Case(build(SLA))
    c.claim("a", "sam")
    tr = c.fire(c.timer(TimerKind.SLA))
    assert types(tr) == ["sla.breached", "task.escalated"]
    assert tr.events[0].data == {"sla_s": 3600, "assignee": "sam"}
    assert tr.events[1].data == {"to": "olga", "from": "sam", "from_team": "sales", "notify": True}
    t = c.task("a")
    assert (t.status, t.assignee) == (TaskStatus.CLAIMED, "sam")
    c.complete("a", actor="sam")


def test_sla_breach_escalates_a_ready_task_to_a_team() -> None:
    c = Case(build(SLA))
    c.complete("a")
    tr = c.fire(c.timer(TimerKind.SLA))
    assert types(tr) == ["sla.breached", "task.escalated"]
    assert tr.events[1].team == "ops"
    t = c.task("b")
    assert (t.team, t.status, t.assignee, t.escalated) == ("ops", TaskStatus.READY, None, True)
    assert tr.commands == [OfferTask(t.id, "b", "ops", None, True)]
    with pytest.raises(TaskStateError):
        c.claim("b", "sam")  # sales no longer holds it
    c.claim("b", "oscar")
    c.complete("b", actor="oscar")


def test_sla_breach_without_escalation_only_records_it() -> None:
    c = Case(build(SLA))
    c.complete("a")
    c.complete("b")
    tr = c.fire(c.timer(TimerKind.SLA))
    assert types(tr) == ["sla.breached"]
    assert c.task("c").status is TaskStatus.READY


def test_sla_timer_is_cancelled_when_the_task_completes_and_stale_firing_is_ignored() -> None:
    c = Case(build(SLA))
    sla = c.timer(TimerKind.SLA)
    tr = c.complete("a")
    assert CancelTimer(sla.id) in tr.commands
    assert sla.id not in c.s.timers
    before = c.snapshot()
    tr = c.do(FireTimer(99999, timer_id=sla.id))
    assert tr.events == []
    assert tr.commands == []
    assert c.s == before


def test_unknown_timer_is_ignored() -> None:
    c = Case(build(SLA))
    before = c.snapshot()
    assert c.do(FireTimer(5, timer_id="c1:sla:999")).events == []
    assert c.s == before


def test_a_timer_fired_after_the_case_ended_is_ignored() -> None:
    c = Case(build(SLA))
    sla = c.timer(TimerKind.SLA)
    c.do(CancelCase(5, "operator:o"))
    assert c.do(FireTimer(3600, timer_id=sla.id)).events == []


# -- wait steps -------------------------------------------------------------------------------

WAITS = """
- {id: s, type: start, next: cool_off}
- {id: cool_off, type: timer, wait: PT2H, next: confirm}
- {id: confirm, type: message, message: signed, next: a}
- {id: a, team: sales, next: e}
- {id: e, type: end}
"""


def test_timer_step() -> None:
    c = Case(build(WAITS), at=100)
    t = c.task("cool_off")
    assert t.status is TaskStatus.WAITING
    wait = c.timer(TimerKind.WAIT)
    assert wait.due == 100 + 7200
    assert c.last.commands == [ScheduleTimer(wait.id, 7300)]  # no offer for a wait
    tr = c.fire(wait)
    assert types(tr) == ["task.completed", "task.ready"]
    assert c.active() == ["confirm"]


def test_message_step() -> None:
    c = Case(build(WAITS))
    c.fire(c.timer(TimerKind.WAIT))
    assert c.task("confirm").status is TaskStatus.WAITING
    with pytest.raises(NotFound, match="waits for no message 'other'"):
        c.do(ReceiveMessage(c.now + 1, name="other"))
    tr = c.do(ReceiveMessage(c.now + 1, name="signed", data={"by": "client"}))
    assert types(tr) == ["message.received", "task.completed", "task.ready"]
    assert tr.events[0].data == {"name": "signed", "data": {"by": "client"}}
    assert c.s.data["by"] == "client"
    assert c.active() == ["a"]
    with pytest.raises(NotFound):
        c.do(ReceiveMessage(c.now + 1, name="signed"))  # nothing waits for it any more


def test_message_while_paused_is_refused() -> None:
    c = Case(build(WAITS))
    c.fire(c.timer(TimerKind.WAIT))
    c.do(PauseCase(c.now + 1))
    with pytest.raises(TaskStateError, match="paused"):
        c.do(ReceiveMessage(c.now + 1, name="signed"))


def test_a_wait_step_cannot_be_completed_by_hand() -> None:
    c = Case(build(WAITS))
    with pytest.raises(TaskStateError):
        c.complete("cool_off", actor="ivan")


# -- terminate --------------------------------------------------------------------------------


def test_terminate_end_cancels_every_other_task() -> None:
    d = build(
        """
        - {id: s, type: start, next: fork}
        - {id: fork, type: parallel, next: [a, b, w]}
        - {id: a, team: sales, next: stop}
        - {id: b, team: ops, sla: PT1H, next: join}
        - {id: w, type: timer, wait: P1D, next: join}
        - {id: join, type: parallel, next: e}
        - {id: stop, type: end, terminate: true}
        - {id: e, type: end}
        """
    )
    c = Case(d)
    c.fire(c.timer(TimerKind.WAIT))  # w reaches the join and waits there
    assert c.s.joins
    timers = {t.id for t in c.timers()}
    tr = c.complete("a")
    assert c.s.status is COMPLETED
    assert tr.events[-1].type is E.CASE_COMPLETED
    assert tr.events[-1].data["terminated"] is True
    assert steps_of(tr, E.TASK_CANCELLED) == ["b"]
    assert {cmd.timer_id for cmd in tr.commands if isinstance(cmd, CancelTimer)} == timers
    assert c.s.timers == {}
    assert c.s.joins == {}
    assert c.s.active_tasks() == []


# -- operator actions -------------------------------------------------------------------------


def test_pause_and_resume() -> None:
    c = Case(build(CLAIMS))
    tr = c.do(PauseCase(5, "operator:o", reason="audit"))
    assert types(tr) == ["case.paused"]
    assert tr.events[0].data == {"reason": "audit"}
    assert c.s.status is PAUSED
    assert c.do(PauseCase(6)).events == []  # already paused
    with pytest.raises(TaskStateError, match="paused"):
        c.complete("a", actor="sam")
    with pytest.raises(TaskStateError, match="paused"):
        c.claim("a", "sam")
    tr = c.do(ResumeCase(7, "operator:o"))
    assert types(tr) == ["case.resumed"]
    with pytest.raises(TaskStateError, match="not paused"):
        c.do(ResumeCase(8))
    c.complete("a", actor="sam")
    assert c.active() == ["b"]


def test_cancel() -> None:
    c = Case(build(SLA))
    tr = c.do(CancelCase(5, "operator:o", reason="client left"))
    assert types(tr) == ["task.cancelled", "case.cancelled"]
    assert tr.events[-1].data == {"reason": "client left"}
    assert any(isinstance(cmd, CancelTimer) for cmd in tr.commands)
    assert c.s.status is CANCELLED
    assert c.s.ended_at == 5
    assert c.s.timers == {}
    assert c.s.tasks["c1:a:1"].status is TaskStatus.CANCELLED
    with pytest.raises(TaskStateError, match="cancelled"):
        c.do(CompleteTask(6, task_id="c1:a:1"))
    for action in (PauseCase(6), ResumeCase(6), CancelCase(6), RerouteCase(6, step="b")):
        with pytest.raises(TaskStateError):
            c.do(action)


def test_cancel_a_paused_case() -> None:
    c = Case(build(NO_DEFAULT))
    c.complete("a", {"amount": 500})
    c.do(CancelCase(9))
    assert c.s.status is CANCELLED
    assert c.s.parked == []
    assert c.s.incident is None


def test_reroute() -> None:
    c = Case(build(SLA))
    c.complete("a")
    tr = c.do(RerouteCase(50, "operator:o", step="a", data={"fixed": True}))
    assert types(tr) == ["task.cancelled", "case.rerouted", "task.ready"]
    assert tr.events[1].data == {"from": ["b"], "to": "a", "data": {"fixed": True}}
    assert c.active() == ["a"]
    assert c.task("a").id == "c1:a:2"
    assert c.s.data["fixed"] is True
    with pytest.raises(NotFound):
        c.do(RerouteCase(51, step="nope"))
    with pytest.raises(TaskStateError, match="not to the start event"):
        c.do(RerouteCase(51, step="s"))


def test_reroute_continues_a_paused_case() -> None:
    c = Case(build(NO_DEFAULT))
    c.complete("a", {"amount": 500})
    c.do(RerouteCase(c.now + 1, "operator:o", step="small"))
    assert c.s.status is RUNNING
    assert c.s.incident is None
    assert c.s.parked == []
    assert c.active() == ["small"]


def test_a_timer_fired_while_paused_is_deferred_to_resume() -> None:
    c = Case(build(WAITS))
    wait = c.timer(TimerKind.WAIT)
    c.do(PauseCase(10))
    tr = c.fire(wait)
    assert tr.events == []
    assert c.s.deferred == [wait.id]
    assert c.task("cool_off").status is TaskStatus.WAITING
    c.fire(wait)  # delivered twice: still deferred once
    assert c.s.deferred == [wait.id]
    tr = c.do(ResumeCase(c.now + 1))
    assert types(tr) == ["case.resumed", "task.completed", "task.ready"]
    assert c.active() == ["confirm"]
    assert c.s.deferred == []
    assert c.s.timers == {}


def test_an_sla_fired_while_paused_breaches_on_resume() -> None:
    c = Case(build(SLA))
    c.do(PauseCase(1))
    c.fire(c.timer(TimerKind.SLA))
    tr = c.do(ResumeCase(c.now + 1))
    assert types(tr) == ["case.resumed", "sla.breached", "task.escalated"]
    assert c.task("a").assignee == "olga"


def test_a_retry_timer_for_a_withdrawn_task_is_ignored() -> None:
    c = Case(build(RETRY))
    c.fail("job")
    retry = c.timer(TimerKind.RETRY)
    c.do(RerouteCase(c.now + 1, "operator:o", step="after"))
    before = c.snapshot()
    assert c.do(FireTimer(c.now + 1000, timer_id=retry.id)).events == []
    assert c.s == before


DEFER_AND_INCIDENT = """
- {id: s, type: start, next: fork}
- {id: fork, type: parallel, next: [w, a]}
- {id: w, type: timer, wait: PT1H, next: e1}
- {id: a, team: sales, next: g}
- id: g
  type: exclusive
  next:
    - {to: x, when: "n == 1"}
    - {to: y, when: "n == 2"}
- {id: x, team: sales, next: e2}
- {id: y, team: sales, next: e2}
- {id: e1, type: end}
- {id: e2, type: end}
"""


def test_a_deferred_timer_survives_a_resume_that_pauses_again() -> None:
    c = Case(build(DEFER_AND_INCIDENT))
    wait = c.timer(TimerKind.WAIT)
    c.complete("a", {"n": 0})
    assert c.s.status is PAUSED
    c.fire(wait)
    c.do(ResumeCase(c.now + 1))  # not fixed: paused again
    assert c.s.status is PAUSED
    c.do(ResumeCase(c.now + 1, data={"n": 1}))
    assert c.active() == ["x"]  # the wait, fired long ago, has been applied


def test_retry_that_resumes_a_case_applies_deferred_timers() -> None:
    d = build(
        """
        - {id: s, type: start, next: fork}
        - {id: fork, type: parallel, next: [w, job]}
        - {id: w, type: timer, wait: PT1H, next: e1}
        - {id: job, type: automated, team: it, handler: "m:f", next: e2}
        - {id: e1, type: end}
        - {id: e2, type: end}
        """
    )
    c = Case(d)
    wait = c.timer(TimerKind.WAIT)
    c.fail("job")
    assert c.s.status is PAUSED
    c.fire(wait)
    c.do(RetryTask(c.now + 1, "operator:o", task_id=c.task("job").id))
    assert c.s.status is RUNNING
    assert c.tasks("w") == []  # the deferred wait was applied


# -- handoffs ---------------------------------------------------------------------------------

HANDOFFS = """
- {id: s, type: start, next: a1}
- {id: a1, team: sales, next: a2}
- {id: a2, team: sales, next: g}
- id: g
  type: exclusive
  next:
    - {to: b1, when: "route == 'ops'"}
    - {to: a3, default: true}
- {id: b1, team: ops, next: merge}
- {id: a3, team: sales, next: merge}
- {id: merge, type: exclusive, next: fork}
- {id: fork, type: parallel, next: [b2, c1]}
- {id: b2, team: ops, next: join}
- {id: c1, team: it, next: join}
- {id: join, type: parallel, next: b3}
- {id: b3, team: ops, next: e}
- {id: e, type: end}
"""


def run_handoffs(route: str) -> Case:
    c = Case(build(HANDOFFS), {"route": route})
    for step in ["a1", "a2", "b1" if route == "ops" else "a3", "b2", "c1", "b3"]:
        c.complete(step)
    assert c.s.status is COMPLETED
    return c


def test_handoffs_exactly_where_the_flow_crosses_teams() -> None:
    c = run_handoffs("ops")
    pairs = [(e.data["from_step"], e.data["to_step"]) for e in c.of(E.HANDOFF)]
    # a1->a2 stays in sales; a2->b1 crosses (through the gateway); b1->b2 stays in ops;
    # b1->c1 crosses; c1->b3 crosses through the join, b2->b3 does not.
    assert pairs == [("a2", "b1"), ("b1", "c1"), ("c1", "b3")]
    first = c.of(E.HANDOFF)[0]
    assert first.data == {
        "from_step": "a2",
        "from_team": "sales",
        "to_step": "b1",
        "to_team": "ops",
    }
    assert first.team == "ops"
    assert first.task == "c1:b1:1"


def test_handoffs_on_the_other_route() -> None:
    c = run_handoffs("sales")
    pairs = [(e.data["from_step"], e.data["to_step"]) for e in c.of(E.HANDOFF)]
    assert pairs == [("a3", "b2"), ("a3", "c1"), ("c1", "b3")]


def test_handoff_precedes_the_ready_task() -> None:
    c = Case(build(HANDOFFS), {"route": "ops"})
    c.complete("a1")
    tr = c.complete("a2")
    assert types(tr) == ["task.completed", "gateway.decided", "handoff", "task.ready"]


# -- hub involvement --------------------------------------------------------------------------

HUB = """
- {id: s, type: start, next: a}
- {id: a, team: sales, next: b}
- {id: b, team: ops, mode: local, require_hub_when: "amount > 10000", next: c}
- {id: c, team: ops, mode: local, next: d}
- {id: d, team: it, mode: central, next: e}
- {id: e, type: end}
"""


def test_without_a_scope_the_hub_runs_every_step() -> None:
    # `accord run --mode central`: the engine is the hub for every step, whatever its mark
    c = Case(build(HUB, header="mode: local\n"), {"amount": 1})
    for step in ["a", "b", "c"]:
        assert c.task(step).hub is True
        c.complete(step)
    assert c.task("d").hub is True


def _hybrid(data: dict[str, int]) -> list[bool]:
    """Run the HUB process as one team's node in a hybrid run; return each task's hub flag."""
    d = build(HUB)
    scope = Scope("ops", initiator="ops", hub_steps=frozenset({"d"}), hybrid=True)
    state = advance(d, None, StartCase(0.0, "x", "c1", dict(data)), scope).state
    flags = []
    for step in ["a", "b", "c", "d"]:
        task = state.tasks[f"c1:{step}:1"]
        flags.append(task.hub)
        state = advance(d, state, CompleteTask(1.0, None, task.id, {}), scope).state
    return flags


@pytest.mark.parametrize(
    ("data", "b_hub"),
    [({"amount": 20000}, True), ({"amount": 500}, False), ({}, True)],
)
def test_hub_criteria_in_a_hybrid_run(data: dict[str, int], b_hub: bool) -> None:
    # a: local; b: local unless its criteria hold (or cannot be told); c: local; d: marked central
    assert _hybrid(data) == [False, b_hub, False, True]


def test_require_hub_when_sees_data_written_by_earlier_steps() -> None:
    d = build(HUB)
    scope = Scope("ops", initiator="ops", hybrid=True)
    state = advance(d, None, StartCase(0.0, "x", "c1", {}), scope).state
    state = advance(d, state, CompleteTask(1.0, None, "c1:a:1", {"amount": 50000}), scope).state
    assert state.tasks["c1:b:1"].hub is True


# -- the input state is never changed ---------------------------------------------------------


def test_advance_never_mutates_its_input_state() -> None:
    d = build(HANDOFFS)
    c = Case(d, {"route": "ops"})
    for step in ["a1", "a2", "b1", "b2"]:
        before = c.snapshot()
        previous = c.s
        c.complete(step)
        assert previous == before
        assert previous is not c.s


def test_two_approval_outcomes_to_the_same_step() -> None:
    d = build(
        """
        - {id: s, type: start, next: r}
        - {id: r, type: approval, team: ops, next: {approve: notify, reject: notify}}
        - {id: notify, team: sales, next: e}
        - {id: e, type: end}
        """
    )
    for outcome, flow in [("approve", "r->notify"), ("reject", "r->notify[reject]")]:
        c = Case(d)
        tr = c.complete("r", {"outcome": outcome})
        assert c.active() == ["notify"]
        (decided,) = [e for e in tr.events if e.type is E.GATEWAY_DECIDED]
        assert decided.data["flows"] == [flow]


# -- who did it, and what caused what ---------------------------------------------------------


def test_actor_belongs_to_the_acts_and_consequences_point_at_their_cause() -> None:
    c = Case(build(HANDOFFS), {"route": "ops"})
    c.complete("a1", actor="sam")
    tr = c.complete("a2", actor="ana")
    first, *rest = tr.events
    assert (first.type, first.actor, first.causation) == (E.TASK_CLAIMED, "ana", None)
    assert [e.type for e in rest] == [
        E.TASK_COMPLETED,
        E.GATEWAY_DECIDED,
        E.HANDOFF,
        E.TASK_READY,
    ]
    assert all(e.causation == first.id for e in rest)
    assert rest[0].actor == "ana"  # the completion is ana's act
    assert [e.actor for e in rest[1:]] == [None, None, None]  # the rest merely follows


def test_a_driver_completion_is_attributed_to_the_assignee() -> None:
    c = Case(build(CLAIMS))
    c.claim("a", "sam")
    tr = c.complete("a")  # no actor: the driver reports sam's work
    assert tr.events[0].type is E.TASK_COMPLETED
    assert tr.events[0].actor == "sam"


def test_resume_hands_out_ready_work_again() -> None:
    d = build(
        """
        - {id: s, type: start, next: [a, job]}
        - {id: a, team: sales, next: e}
        - {id: job, type: automated, team: it, handler: "m:f", next: e}
        - {id: e, type: end}
        """
    )
    c = Case(d)
    c.do(PauseCase(1))
    tr = c.do(ResumeCase(2))
    kinds = sorted(type(cmd).__name__ for cmd in tr.commands)
    assert kinds == ["OfferTask", "RunHandler"]


# -- refusing what cannot be right ------------------------------------------------------------

FORK_AFTER_TASK = """
- {id: s, type: start, next: a}
- {id: a, team: sales, next: fork}
- {id: fork, type: parallel, next: [x, y]}
- {id: x, team: sales, next: j}
- {id: y, team: sales, next: j}
- {id: j, type: parallel, next: e}
- {id: e, type: end}
"""


def test_an_explicit_decision_cannot_skip_a_parallel_branch() -> None:
    c = Case(build(FORK_AFTER_TASK))
    before = c.snapshot()
    with pytest.raises(ConflictError):
        c.complete("a", decisions={"fork": ["x"]})
    assert c.s == before


def test_completion_data_that_cannot_be_stored_is_refused_as_a_case_error() -> None:
    from accord.errors import CaseError

    c = Case(build(SEQUENCE))
    with pytest.raises(CaseError):
        c.complete("a", {"x": {1, 2}})


def test_non_finite_numbers_survive_the_store_or_are_refused() -> None:
    from accord.errors import CaseError

    c = Case(build(SEQUENCE))
    try:
        c.complete("a", {"x": float("inf")})
    except CaseError:
        return
    assert state_from_json(c.s.to_json()) == c.s


def _origins(joins: dict) -> dict:
    """Join slots as origins only (weights are checked by the property tests)."""
    return {g: {f: [t.origin for t in toks] for f, toks in fl.items()} for g, fl in joins.items()}
