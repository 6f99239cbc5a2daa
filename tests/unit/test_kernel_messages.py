"""Message flows inside one case (BPMN collaborations): news kept until its message step waits,
messages that start a path, loops, messages never sent or never read, and choreography."""

from __future__ import annotations

from fractions import Fraction

import pytest
from casekit import Case, build

from accord.choreo.projection import project
from accord.errors import DefinitionError
from accord.events import Event, EventType
from accord.kernel import ArriveToken, CaseState, CompleteTask, EndBranch, StartCase, advance
from accord.kernel.state import CaseStatus, state_from_json

# Two pools: sales sends a quote to ops, ops waits for it, works, and replies.
PING_PONG = """
- id: start
  type: start
  next: [quote, prepare]
- id: quote
  team: sales
  next:
    - await-answer
    - {to: quote-received, message: true}
- id: await-answer
  type: message
  message: answer
  team: sales
  next: close
- id: close
  team: sales
  next: done
- id: done
  type: end
- id: prepare
  team: ops
  next: quote-received
- id: quote-received
  type: message
  message: quote
  team: ops
  next: answer
- id: answer
  team: ops
  next:
    - ops-done
    - {to: await-answer, message: true}
- id: ops-done
  type: end
"""


def test_a_message_sent_before_its_step_waits_is_kept_for_it() -> None:
    c = Case(build(PING_PONG))
    assert c.active() == ["prepare", "quote"]
    tr = c.complete("quote")  # ops is not waiting yet: the message is kept
    assert c.s.mailbox == {"quote-received": [["quote->quote-received", "quote"]]}
    assert c.of(EventType.MESSAGE_RECEIVED, tr.events) == []
    assert c.active() == ["await-answer", "prepare"]
    tr = c.complete("prepare")  # now it waits, and takes the message at once
    received = c.of(EventType.MESSAGE_RECEIVED, tr.events)
    assert [(e.step, e.data["from_step"], e.data["name"]) for e in received] == [
        ("quote-received", "quote", "quote")
    ]
    assert c.s.mailbox == {}
    assert c.active() == ["answer", "await-answer"]
    c.complete("answer")
    assert c.active() == ["close"]
    c.complete("close")
    assert c.s.status is CaseStatus.COMPLETED


def test_a_message_to_a_step_that_already_waits_moves_it_on() -> None:
    c = Case(build(PING_PONG))
    c.complete("prepare")
    assert c.active() == ["quote", "quote-received"]
    tr = c.complete("quote")
    assert [e.step for e in c.of(EventType.MESSAGE_RECEIVED, tr.events)] == ["quote-received"]
    assert c.active() == ["answer", "await-answer"]


def test_the_mailbox_round_trips_through_json_and_old_states_load() -> None:
    c = Case(build(PING_PONG))
    c.complete("quote")
    again = state_from_json(c.s.to_json())
    assert again.mailbox == c.s.mailbox
    raw = c.s.to_json().replace(
        b',"mailbox":{"quote-received":[["quote->quote-received","quote"]]}', b""
    )
    assert b"mailbox" not in raw
    assert state_from_json(raw).mailbox == {}


NEVER_READ = """
- id: start
  type: start
  next: [ping, other]
- id: ping
  team: sales
  next:
    - ping-more
    - {to: got-ping, message: true}
- id: ping-more
  type: exclusive
  next:
    - {to: ping, when: "again"}
    - {to: sales-done, default: true}
- id: sales-done
  type: end
- id: other
  team: ops
  next: got-ping
- id: got-ping
  type: message
  message: ping
  team: ops
  next: ops-done
- id: ops-done
  type: end
"""


def test_messages_sent_in_a_loop_queue_up_and_unread_ones_do_not_hold_the_case() -> None:
    c = Case(build(NEVER_READ), {"again": True})
    c.complete("ping")
    c.complete("ping")
    c.s.data["again"] = False
    c.complete("ping")
    assert [m[0] for m in c.s.mailbox["got-ping"]] == ["ping->got-ping"] * 3
    c.complete("other")  # takes the oldest; two are never read
    assert len(c.s.mailbox["got-ping"]) == 2
    assert c.s.status is CaseStatus.COMPLETED
    assert c.created("got-ping") == 1


def test_a_message_that_is_never_sent_leaves_its_step_waiting() -> None:
    d = build(NEVER_READ)
    c = Case(d, {"again": False})
    c.complete("other")
    assert c.active() == ["got-ping", "ping"]
    # ping's message is the only way on; the step waits for it, the case stays open
    assert c.s.status is CaseStatus.RUNNING


STARTS = """
- id: start
  type: start
  next: order
- id: order
  team: sales
  next:
    - {to: more, when: "n < 2"}
    - {to: finish, default: true}
    - {to: bake, message: true}
- id: more
  team: sales
  next: order
- id: finish
  team: sales
  next: sales-end
- id: sales-end
  type: end
- id: bake
  team: ops
  next: ops-end
- id: ops-end
  type: end
"""


def test_a_message_to_a_work_step_starts_a_path_each_time_it_is_sent() -> None:
    d = build(STARTS)
    c = Case(d, {"n": 0})
    tr = c.complete("order")  # n < 2: more, and the message starts bake
    assert c.active() == ["bake", "more"]
    # the decision is about the sequence flows; the message is sent whatever it is
    assert [e.data["flows"] for e in c.of(EventType.GATEWAY_DECIDED, tr.events)] == [
        ["order->more"]
    ]
    c.complete("more", {"n": 5})
    c.complete("order")  # default: finish, and a second bake
    assert c.active() == ["bake", "bake", "finish"]
    for t in c.tasks("bake"):
        c.do(CompleteTask(c.now + 1, None, task_id=t.id))
    c.complete("finish")
    assert c.s.status is CaseStatus.COMPLETED


def test_validation_of_message_flows() -> None:
    with pytest.raises(DefinitionError, match="a message flow is always taken"):
        build(
            """
            - id: a
              team: sales
              next: [{to: b, message: true, when: "x"}]
            - id: b
              type: message
              message: m
            """
        )
    with pytest.raises(DefinitionError, match="cannot leave exclusive gateway"):
        build(
            """
            - id: a
              team: sales
              next: g
            - id: g
              type: exclusive
              next:
                - {to: b, when: "x"}
                - {to: c, default: true}
                - {to: w, message: true}
            - id: b
              team: sales
            - id: c
              team: sales
            - id: w
              type: message
              message: m
            """
        )


def test_choreographed_messages_carry_no_share_and_the_ledger_adds_up() -> None:
    d = build(PING_PONG)
    proj = project(d)
    handoffs = {(h.flow, h.from_team, h.to_team) for h in proj.handoffs}
    assert ("quote->quote-received", "sales", "ops") in handoffs
    assert ("answer->await-answer", "ops", "sales") in handoffs
    # drive both nodes by hand, delivering handoffs and ended branches as the bus would
    states: dict[str, CaseState | None] = {"sales": None, "ops": None}
    inbox: list[tuple[str, Event]] = []
    clock = [0.0]

    def apply(team: str, action: object) -> None:
        clock[0] += 1
        tr = advance(d, states[team], action, proj.parts[team].scope)  # type: ignore[arg-type]
        states[team] = tr.state
        for e in tr.events:
            if e.type is EventType.HANDOFF:
                inbox.append((str(e.data["to_team"]), e))
            if e.type is EventType.BRANCH_ENDED and team != proj.initiator:
                inbox.append((proj.initiator, e))

    def pump() -> None:
        while inbox:
            team, e = inbox.pop(0)
            if e.type is EventType.BRANCH_ENDED:
                apply(team, EndBranch(clock[0], msg_id=e.id, weight=e.data["weight"]))
                continue
            apply(
                team,
                ArriveToken(
                    clock[0],
                    case_id="c1",
                    msg_id=e.id,
                    flow=e.data["flow"],
                    origin=tuple(e.data["origin"]),
                    weight=e.data["weight"],
                    data=e.data["case_data"],
                    versions=e.data["versions"],
                ),
            )

    def complete(team: str, step: str) -> None:
        s = states[team]
        assert s is not None
        (task,) = [x for x in s.active_tasks() if x.step == step]
        apply(team, CompleteTask(clock[0], None, task_id=task.id))
        pump()

    apply(proj.initiator, StartCase(0.0, case_id="c1"))
    pump()
    complete("sales", "quote")
    ops = states["ops"]
    assert ops is not None
    assert ops.mailbox == {"quote-received": [["quote->quote-received", "quote"]]}
    complete("ops", "prepare")
    complete("ops", "answer")
    complete("sales", "close")
    sales = states["sales"]
    assert sales is not None and sales.status is CaseStatus.COMPLETED
    assert Fraction(sales.ended_weight) == 1


BOUNDARY = """
- id: start
  type: start
  next: [work, nudge]
- id: work
  team: ops
  next: ops-done
- id: hurry
  type: boundary
  attached_to: work
  on: message
  message: hurry
  interrupting: false
  next: explain
- id: explain
  team: ops
  next: ops-done-2
- id: ops-done-2
  type: end
- id: ops-done
  type: end
- id: nudge
  team: sales
  next:
    - sales-done
    - {to: hurry, message: true}
- id: sales-done
  type: end
"""


def test_a_message_flow_fires_a_message_boundary_while_its_activity_runs() -> None:
    c = Case(build(BOUNDARY))
    tr = c.complete("nudge")
    assert [e.step for e in c.of(EventType.MESSAGE_RECEIVED, tr.events)] == ["hurry"]
    assert c.active() == ["explain", "work"]  # not interrupting: the work goes on
    c.complete("explain")
    c.complete("work")
    assert c.s.status is CaseStatus.COMPLETED


def test_a_message_to_a_boundary_whose_activity_is_done_is_lost() -> None:
    c = Case(build(BOUNDARY))
    c.complete("work")
    tr = c.complete("nudge")
    assert c.of(EventType.MESSAGE_RECEIVED, tr.events) == []
    assert c.s.mailbox == {}
    assert c.s.status is CaseStatus.COMPLETED
