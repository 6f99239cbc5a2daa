"""Problems found downstream: the hub rules centrally; teams negotiate when choreographed."""

from __future__ import annotations

import pytest
from casekit import Case, build

from accord.buses.memory import MemoryBus
from accord.choreo.node import TeamNode
from accord.choreo.projection import project
from accord.clock import EPOCH, VirtualClock
from accord.errors import ConflictError, NotFound, TaskStateError
from accord.events import EventType as E
from accord.kernel import RaiseIssue, RuleIssue, TimerKind
from accord.kernel.scope import HUB
from accord.stores import open_store

FLOW = """
- {id: a, team: sales, outputs: [n], next: b}
- {id: b, team: ops, next: c}
- {id: c, team: it, next: fin}
- {id: fin, type: end}
"""


def _raised(c: Case, proposal: str = "rework") -> str:
    c.complete("a", {"n": 1})
    tr = c.do(
        RaiseIssue(c.now + 1, "olga", task_id=c.task("b").id, at_fault="a", proposal=proposal)
    )
    (ev,) = [e for e in tr.events if e.type is E.ISSUE_RAISED]
    assert ev.data["to_team"] == HUB and ev.data["at_fault"] == "a"
    assert c.timers(TimerKind.ISSUE)
    return str(ev.data["issue"])


def test_central_hub_rules_rework_and_the_work_goes_back() -> None:
    c = Case(build(FLOW))
    issue = _raised(c)
    tr = c.do(RuleIssue(c.now + 60, "hub", issue=issue, action="rework"))
    assert [e.type for e in tr.events if e.type.value.startswith("issue.")] == [E.ISSUE_RULED]
    assert c.active() == ["a"]  # b withdrawn, a to do again
    assert c.s.issues[issue]["state"] == "resolved"
    assert not c.timers(TimerKind.ISSUE)
    c.complete("a", {"n": 2})
    c.complete("b")
    c.complete("c")
    assert c.s.status.value == "completed"


def test_central_waive_leaves_the_work_where_it_is() -> None:
    c = Case(build(FLOW))
    issue = _raised(c, "waive")
    c.do(RuleIssue(c.now + 60, "hub", issue=issue, action="waive"))
    assert c.active() == ["b"]


def test_central_cancel_ends_the_case() -> None:
    c = Case(build(FLOW))
    issue = _raised(c, "cancel")
    tr = c.do(RuleIssue(c.now + 60, "hub", issue=issue, action="cancel"))
    assert E.CASE_CANCELLED in [e.type for e in tr.events]
    assert c.s.status.value == "cancelled"


def test_an_issue_left_past_its_deadline_is_escalated() -> None:
    c = Case(build(FLOW))
    issue = _raised(c)
    tr = c.fire(c.timer(TimerKind.ISSUE))
    (esc,) = [e for e in tr.events if e.type is E.ISSUE_ESCALATED]
    assert esc.data["issue"] == issue and esc.data["why"] == "deadline"


def test_bad_issues_are_refused() -> None:
    c = Case(build(FLOW))
    c.complete("a", {"n": 1})
    b = c.task("b").id
    with pytest.raises(NotFound):
        c.do(RaiseIssue(c.now + 1, "olga", task_id=b, at_fault="nope"))
    with pytest.raises(ConflictError):
        c.do(RaiseIssue(c.now + 1, "olga", task_id=b, at_fault="a", proposal="shrug"))
    with pytest.raises(NotFound):
        c.do(RuleIssue(c.now + 1, "hub", issue="c1:issue:99", action="rework"))
    c.complete("b")
    with pytest.raises(TaskStateError):
        c.do(RaiseIssue(c.now + 1, "olga", task_id=b, at_fault="a"))


class _Net:
    """Three team nodes on an in-process bus (immediate delivery)."""

    def __init__(self) -> None:
        d = build(FLOW)
        self.d = d
        p = project(d)
        self.clock = VirtualClock(EPOCH)
        self.bus = MemoryBus()
        self.nodes = {t: TeamNode(p, t, open_store("memory://"), clock=self.clock) for t in p.parts}
        for n in self.nodes.values():
            n.attach(self.bus)

    def task(self, team: str, step: str) -> str:
        rows = [r for r in self.nodes[team].engine.tasks(status=None) if r.step == step]
        open_rows = [r for r in rows if r.status in ("ready", "claimed")]
        assert len(open_rows) == 1, rows
        return open_rows[0].id

    def done(self, team: str, step: str, data: dict[str, int] | None = None) -> None:
        self.clock.advance(60)
        self.nodes[team].engine.complete(self.task(team, step), None, data or {})

    def issue(self, team: str) -> str:
        (iid,) = self.nodes[team].engine.case("c1").issues
        return iid

    def close(self) -> None:
        for n in self.nodes.values():
            n.close()


@pytest.fixture
def net() -> _Net:
    n = _Net()
    n.nodes["sales"].start_case("c1")
    n.done("sales", "a", {"n": 1})
    yield n  # type: ignore[misc]
    n.close()


def test_choreo_accept_sends_the_work_back_to_the_team_at_fault(net: _Net) -> None:
    ops = net.nodes["ops"].engine
    ops.raise_issue(net.task("ops", "b"), "olga", at_fault="a", proposal="rework")
    issue = net.issue("ops")
    assert net.nodes["sales"].engine.case("c1").issues[issue]["role"] == "respond"
    net.nodes["sales"].engine.answer_issue("c1", issue, "sam", accept=True)
    # ops carried it out: b withdrawn there, a to do again at sales
    assert ops.case("c1").issues[issue]["state"] == "resolved"
    assert net.task("sales", "a")
    net.done("sales", "a", {"n": 2})
    net.done("ops", "b")
    net.done("it", "c")
    assert net.nodes["sales"].engine.case("c1").status.value == "completed"


def test_choreo_counter_then_agreement(net: _Net) -> None:
    ops = net.nodes["ops"].engine
    ops.raise_issue(net.task("ops", "b"), "olga", at_fault="a", proposal="rework")
    issue = net.issue("ops")
    net.nodes["sales"].engine.answer_issue("c1", issue, "sam", accept=False, proposal="waive")
    assert ops.case("c1").issues[issue]["state"] == "countered"
    ops.answer_issue("c1", issue, "olga", accept=True)  # take the counter: waive
    assert ops.case("c1").issues[issue]["state"] == "resolved"
    net.done("ops", "b")  # the held work carries on
    net.done("it", "c")
    assert net.nodes["sales"].engine.case("c1").status.value == "completed"


def test_choreo_no_agreement_goes_to_the_owner_whose_ruling_is_final(net: _Net) -> None:
    ops = net.nodes["ops"].engine
    sales = net.nodes["sales"].engine
    ops.raise_issue(net.task("ops", "b"), "olga", at_fault="a", proposal="rework")
    issue = net.issue("ops")
    for _ in range(3):  # rounds: sales counters, ops insists, ...
        sales.answer_issue("c1", issue, "sam", accept=False, proposal="waive")
        if ops.case("c1").issues[issue]["state"] == "escalated":
            break
        ops.answer_issue("c1", issue, "olga", accept=False, proposal="rework")
    assert ops.case("c1").issues[issue]["state"] == "escalated"
    owner = net.nodes[net.nodes["sales"].projection.initiator].engine  # no owner: initiator
    assert owner.case("c1").issues[issue]["role"] == "rule"
    owner.rule_issue("c1", issue, "sam", "rework")
    assert ops.case("c1").issues[issue]["state"] == "resolved"
    assert net.task("sales", "a")
    events = [e.type for n in net.nodes.values() for e in n.engine.events("c1")]
    for kind in (E.ISSUE_RAISED, E.ISSUE_COUNTERED, E.ISSUE_ESCALATED, E.ISSUE_RULED,
                 E.ISSUE_RESOLVED):  # fmt: skip
        assert kind in events  # every message of the negotiation is an event
