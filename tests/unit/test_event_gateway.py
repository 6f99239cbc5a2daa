"""Event-based gateway: wait for the first of several events; the others are withdrawn."""

from __future__ import annotations

import pytest
from casekit import Case, build

from accord.errors import DefinitionError, NotFound
from accord.events import EventType as E
from accord.kernel import ReceiveMessage, TimerKind

RACE = """
- {id: a, team: sales, next: g}
- {id: g, type: event-gateway, next: [reply, wait]}
- {id: reply, type: message, message: answer, next: yes}
- {id: wait, type: timer, wait: PT2H, next: chase}
- {id: yes, team: sales, next: fin}
- {id: chase, team: ops, next: fin}
- {id: fin, type: end}
"""


def test_the_message_wins_and_the_timer_is_withdrawn() -> None:
    c = Case(build(RACE))
    c.complete("a")
    assert sorted(c.active()) == ["reply", "wait"]
    timer = c.timer(TimerKind.WAIT)
    tr = c.do(ReceiveMessage(c.now + 60, "partner", name="answer", data={"ok": True}))
    cancelled = [e for e in tr.events if e.type is E.TASK_CANCELLED]
    assert [e.step for e in cancelled] == ["wait"]
    assert timer.id not in c.s.timers  # the timer's subscription went in the same transition
    assert c.active() == ["yes"]
    c.complete("yes")
    assert c.s.status.value == "completed"


def test_the_timer_wins_and_the_message_is_no_longer_awaited() -> None:
    c = Case(build(RACE))
    c.complete("a")
    c.fire(c.timer(TimerKind.WAIT))
    assert c.active() == ["chase"]
    with pytest.raises(NotFound, match="waits for no message"):
        c.do(ReceiveMessage(c.now + 1, "partner", name="answer"))
    c.complete("chase")
    assert c.s.status.value == "completed"


def test_an_inclusive_join_after_a_race_keeps_waiting_for_it() -> None:
    # a token parked at the event gateway's waits still counts upstream of the join
    c = Case(
        build("""
- {id: s, type: start, next: split}
- id: split
  type: inclusive
  next: [{to: a, when: "true"}, {to: g, when: "true"}]
- {id: a, team: sales, next: j}
- {id: g, type: event-gateway, next: [m, t]}
- {id: m, type: message, message: go, next: j}
- {id: t, type: timer, wait: PT1H, next: j}
- {id: j, type: inclusive, next: after}
- {id: after, team: ops, next: fin}
- {id: fin, type: end}
""")
    )
    c.complete("a")
    assert "after" not in c.active()  # the race has not happened yet
    c.fire(c.timer(TimerKind.WAIT))
    assert c.active() == ["after"]


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            """
- {id: a, team: sales, next: g}
- {id: g, type: event-gateway, next: [b, w]}
- {id: b, team: ops, next: fin}
- {id: w, type: timer, wait: PT1H, next: fin}
- {id: fin, type: end}
""",
            "leads to timer or message steps, not to 'b'",
        ),
        (
            """
- {id: a, team: sales, next: g}
- {id: g, type: event-gateway, next: w}
- {id: w, type: timer, wait: PT1H, next: fin}
- {id: fin, type: end}
""",
            "races at least two events",
        ),
    ],
)
def test_a_malformed_event_gateway_is_refused(steps: str, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        build(steps)
