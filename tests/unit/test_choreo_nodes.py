"""Team nodes on a bus: a choreographed case from start to end with no hub and no global state.

Every node here is a real ``TeamNode`` (an engine in its team's scope, its own in-memory store,
its event log as the outbox) on a bus the test controls: ``TestBus`` holds every publication
until the test delivers it, so a test can deliver in order (as ``MemoryBus`` does), twice, in a
shuffled order, or hold one kind of message back. People are simulated by claiming and completing
tasks on the node that holds them.
"""

from __future__ import annotations

import logging
import random
import textwrap
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import orjson
import pytest
from casekit import TEAMS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.buses.base import Handler, Message, matches, subject_for
from accord.buses.memory import MemoryBus
from accord.choreo import wire
from accord.choreo.node import TeamNode
from accord.choreo.projection import project
from accord.clock import EPOCH, VirtualClock
from accord.errors import TaskStateError
from accord.events import Event, EventType
from accord.kernel import CaseStatus, TaskStatus
from accord.model import ProcessDefinition, loads
from accord.model.loader import from_document
from accord.stores import open_store

MEMBER = {"sales": "sam", "ops": "olga", "it": "ivan"}


def build(steps: str) -> ProcessDefinition:
    body = textwrap.indent(textwrap.dedent(steps).strip("\n"), "  ")
    return loads(f"process: t\n{TEAMS}steps:\n{body}\n")


class TestBus:
    """A bus that holds every publication until the test delivers it.

    ``copies`` queues each message that many times (redelivery); ``rnd`` picks the next delivery
    at random from everything queued (out of order, across cases and senders); ``hold`` keeps
    matching messages aside until ``release``.
    """

    __test__ = False  # not a test class, despite its name

    def __init__(
        self,
        rnd: random.Random | None = None,
        copies: int = 1,
        hold: Callable[[Message], bool] | None = None,
    ) -> None:
        self.url = "test://"
        self.rnd = rnd
        self.copies = copies
        self.hold = hold
        self.subs: list[tuple[str, Handler]] = []
        self.queue: list[Message] = []
        self.held: list[Message] = []
        self.log: list[Message] = []
        self.delivered = 0
        self.fail_next = 0  # how many publish_many calls fail (a broker that is down)

    def publish(self, subject: str, data: bytes, msg_id: str) -> None:
        msg = Message(subject, data, msg_id)
        self.log.append(msg)
        self.queue.extend([msg] * self.copies)

    def publish_many(self, items: list[tuple[str, bytes, str]]) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("broker unavailable")
        for subject, data, msg_id in items:
            self.publish(subject, data, msg_id)

    def subscribe(
        self, subject: str, durable: str, handler: Handler, batch_handler: Any = None
    ) -> None:
        self.subs.append((subject, handler))

    def close(self) -> None:
        self.subs.clear()

    def deliver(self, msg: Message) -> None:
        self.delivered += 1
        for pattern, handler in list(self.subs):
            if matches(pattern, msg.subject):
                handler(msg)

    def step(self) -> None:
        i = self.rnd.randrange(len(self.queue)) if self.rnd is not None else 0
        msg = self.queue.pop(i)
        if self.hold is not None and self.hold(msg):
            self.held.append(msg)
        else:
            self.deliver(msg)

    def drain(self) -> None:
        while self.queue:
            self.step()

    def release(self) -> None:
        self.queue.extend(self.held)
        self.held.clear()
        self.hold = None


class Network:
    """One node per team, each with its own store, all on one bus and one virtual clock."""

    def __init__(self, d: ProcessDefinition, bus: Any) -> None:
        self.d = d
        self.projection = project(d)
        self.clock = VirtualClock(EPOCH)
        self.bus = bus
        self.nodes: dict[str, TeamNode] = {}
        for team in self.projection.parts:
            node = TeamNode(self.projection, team, open_store("memory://"), clock=self.clock)
            node.attach(bus)
            # publish what each unit of work committed (as the simulator's worlds do)
            node.engine.listeners.append(lambda _events, n=node: n.relay())
            self.nodes[team] = node
        self.initiator = self.nodes[self.projection.initiator]

    def close(self) -> None:
        for node in self.nodes.values():
            node.close()

    def start(self, case_id: str, data: dict[str, Any] | None = None) -> None:
        self.initiator.start_case(case_id, data or {})

    def ready(self) -> list[tuple[str, str, str]]:
        """(team, task id, step) of every ready task, team by team."""
        return [
            (team, row.id, row.step)
            for team, node in self.nodes.items()
            for row in node.engine.tasks(status="ready")
        ]

    def work(self, team: str, task_id: str, data: dict[str, Any]) -> None:
        """A member of the team pulls the task from the board and completes it."""
        engine = self.nodes[team].engine
        self.clock.advance(60)
        engine.claim(task_id, MEMBER[team])
        engine.start(task_id, MEMBER[team])
        self.clock.advance(60)
        engine.complete(task_id, MEMBER[team], data)

    def do(self, step: str, data: dict[str, Any] | None = None) -> str:
        """Complete the one ready task of ``step``."""
        found = [(team, tid) for team, tid, s in self.ready() if s == step]
        assert len(found) == 1, f"expected one ready {step!r}, got {self.ready()}"
        team, tid = found[0]
        self.work(team, tid, data or {})
        return tid

    def events(self) -> list[Event]:
        return [e for node in self.nodes.values() for e in node.engine.events()]

    def of_type(self, etype: EventType, case_id: str | None = None) -> list[Event]:
        return [e for e in self.events() if e.type is etype and case_id in (None, e.case)]

    def tasks(self) -> dict[str, list[tuple[str, str, str | None]]]:
        """Every task row, node by node: (id, status, team)."""
        return {
            team: sorted((r.id, r.status, r.team) for r in node.engine.tasks(status=None))
            for team, node in self.nodes.items()
        }

    def snapshot(self) -> dict[str, Any]:
        """Everything each node holds: case rows and states, tasks, event count, cursor."""
        out: dict[str, Any] = {}
        for team, node in self.nodes.items():
            store = node.engine.store
            rows = store.cases()
            out[team] = (
                [(r.id, r.status) for r in rows],
                [node.engine.case(r.id).to_json() for r in rows],
                sorted((r.id, r.status) for r in store.tasks(status=None)),
                len(list(store.events())),
                node.cursor,
            )
        return out


@contextmanager
def network(d: ProcessDefinition, bus: Any) -> Iterator[Network]:
    net = Network(d, bus)
    try:
        yield net
    finally:
        net.close()


def ended_weight_sum(net: Network, case_id: str) -> Fraction:
    return sum(
        (Fraction(e.data["weight"]) for e in net.of_type(EventType.BRANCH_ENDED, case_id)),
        Fraction(0),
    )


def assert_closed_everywhere(net: Network, case_id: str) -> None:
    """The case ended at every node that took part, with nothing left open there."""
    took_part = 0
    for team, node in net.nodes.items():
        if node.engine.store.load_case(case_id) is None:
            continue
        took_part += 1
        s = node.engine.case(case_id)
        assert s.status.ended, (team, s.status)
        assert s.active_tasks() == [], team
        assert s.joins == {} and s.expect == {} and s.parked == [], team
    assert took_part >= 1


# -- a small three-team process ---------------------------------------------------------------

THREE = """
- id: a
  team: sales
  outputs: [n]
  contract: {type: object, required: [n], properties: {n: {type: integer, minimum: 0}}}
  next: P
- {id: P, type: parallel, next: [b, c]}
- {id: b, team: ops, outputs: [xb], next: J}
- {id: c, team: it, outputs: [xc], next: J}
- {id: J, type: parallel, next: d}
- {id: d, type: approval, team: sales, next: {approve: fin, rework: a}}
- {id: fin, type: end}
"""


def data_for(step: str, task_id: str) -> dict[str, Any]:
    visit = int(task_id.rsplit(":", 1)[1])
    return {
        "a": {"n": visit},
        "b": {"xb": visit},
        "c": {"xc": visit},
        "d": {"outcome": "rework" if visit == 1 else "approve"},
    }[step]


def test_case_completes_once_at_the_initiator_and_closes_everywhere() -> None:
    with network(build(THREE), MemoryBus()) as net:
        assert net.projection.initiator == "sales"
        net.start("c1", {"client": "acme"})
        for step in ["a", "b", "c", "d", "a", "c", "b", "d"]:
            net.do(step, data_for(step, _ready_id(net, step)))
        with pytest.raises(AssertionError):
            net.do("a")  # nothing left
        completed = net.of_type(EventType.CASE_COMPLETED)
        assert len(completed) == 1
        assert completed[0].id.startswith("c1#sales#")  # written by the initiating team
        assert net.initiator.engine.case("c1").status is CaseStatus.COMPLETED
        assert net.initiator.engine.case("c1").ended_weight == "1"
        assert_closed_everywhere(net, "c1")
        assert ended_weight_sum(net, "c1") == 1
        # the data travelled with the handoffs: the last team knows every field the others
        # produced (which generation's value wins is test_loop_join_keeps_this_generations_data)
        data = net.initiator.engine.case("c1").data
        assert set(data) == {"client", "n", "xb", "xc", "outcome"}
        assert (data["client"], data["n"], data["outcome"]) == ("acme", 2, "approve")


def test_no_node_holds_global_state() -> None:
    with network(build(THREE), MemoryBus()) as net:
        net.start("c1")
        for step in ["a", "b", "c", "d", "a", "b", "c", "d"]:
            net.do(step, data_for(step, _ready_id(net, step)))
        for team, node in net.nodes.items():
            rows = node.engine.tasks(status=None)
            assert rows, team
            assert {r.team for r in rows} == {team}
            steps = {r.step for r in rows}
            assert steps <= set(net.projection.part(team).steps)
            # its own event log: every event id is numbered by this team
            assert all(e.id.split("#")[1] == team for e in node.engine.events())
            # and its case row holds only its own tasks
            assert {t.team for t in node.engine.case("c1").tasks.values()} == {team}
        assert net.tasks() == {
            "sales": [
                ("c1:a:1", "completed", "sales"),
                ("c1:a:2", "completed", "sales"),
                ("c1:d:1", "completed", "sales"),
                ("c1:d:2", "completed", "sales"),
            ],
            "ops": [("c1:b:1", "completed", "ops"), ("c1:b:2", "completed", "ops")],
            "it": [("c1:c:1", "completed", "it"), ("c1:c:2", "completed", "it")],
        }


def _ready_id(net: Network, step: str) -> str:
    (tid,) = [tid for _team, tid, s in net.ready() if s == step]
    return tid


def test_relay_publishes_the_event_log_past_a_persisted_cursor() -> None:
    bus = TestBus()
    with network(build(THREE), bus) as net:
        net.start("c1")
        sales = net.initiator
        logged = [e.id for e in sales.engine.events()]
        assert carried(bus.log) == logged  # the outbox is the event log
        assert sales.cursor == len(logged)
        assert sales.engine.store.get_meta("relay:sales") == str(sales.cursor)
        assert sales.relay() == 0  # nothing new past the cursor
        # a node restarted on the same store resumes publishing where it stopped
        again = TeamNode(net.projection, "sales", sales.engine.store, clock=net.clock)
        assert again.cursor == sales.cursor


def test_relay_publishes_again_after_the_bus_failed() -> None:
    """The cursor moves only once the bus has the batch (a regression: it used to move first,
    so a failed publish was skipped for good by the next relay)."""
    bus = TestBus()
    with network(build(THREE), bus) as net:
        sales = net.initiator
        sales.engine.listeners.clear()  # relay by hand
        sales.engine.start_case("t", {}, case_id="c1")  # committed, not yet published
        bus.fail_next = 1
        with pytest.raises(ConnectionError):
            sales.relay()
        assert bus.log == []
        assert sales.engine.store.get_meta("relay:sales") in (None, "0")
        sales.relay()  # the broker is back
        assert carried(bus.log) == [e.id for e in sales.engine.events()]


def carried(msgs: list[Message]) -> list[str]:
    """The ids of the events the messages carry (one each, or a node's bundle), in order."""
    return [e.id for m in msgs for e in wire.decode(m.data) if isinstance(e, Event)]


def test_the_relay_bundles_a_batch_per_addressee() -> None:
    """One message per addressee for each batch read from the log; a lone event goes as
    itself, with its own id (so the broker's duplicate window still applies to it)."""
    bus = TestBus()
    with network(build(THREE), bus) as net:
        sales = net.initiator
        sales.engine.listeners.clear()  # relay by hand: both cases in one batch
        sales.engine.start_case("t", {}, case_id="c1")
        sales.engine.start_case("t", {}, case_id="c2")
        sales.relay()
        assert carried(bus.log) == [e.id for e in sales.engine.events()]
        (msg,) = bus.log  # observers' events only: one bundle
        assert orjson.loads(msg.data)[0]["id"] == "c1#sales#1"
        assert msg.id == "c1#sales#1..c2#sales#2"
        sales.bundle = False
        sales.engine.start_case("t", {}, case_id="c3")
        sales.relay()
        assert [m.id for m in bus.log[1:]] == [e.id for e in sales.engine.events("c3")]


# -- exactly-once under redelivery and reordering ---------------------------------------------


def drive(net: Network, cases: list[str], rnd: random.Random | None) -> None:
    """Start the cases and work until nothing is ready and nothing is in flight.

    With ``rnd`` the driver interleaves deliveries and completions at random: a message (or its
    duplicate) may arrive long after later work; several tasks complete before anything moves.
    """
    bus: TestBus = net.bus
    for cid in cases:
        net.start(cid)
    while True:
        ready = net.ready()
        if not ready and not bus.queue:
            return
        if rnd is None:
            if bus.queue:
                bus.drain()
                continue
            team, tid, step = ready[0]
            net.work(team, tid, data_for(step, tid))
            continue
        if bus.queue and (not ready or rnd.random() < 0.6):
            for _ in range(rnd.randint(1, 4)):
                if bus.queue:
                    bus.step()
        else:
            team, tid, step = rnd.choice(ready)
            net.work(team, tid, data_for(step, tid))


def outcome(net: Network, cases: list[str]) -> dict[str, Any]:
    ready = Counter((e.case, e.step) for e in net.of_type(EventType.TASK_READY))
    return {
        "tasks": net.tasks(),
        "ready": dict(ready),
        "completed": Counter(e.case for e in net.of_type(EventType.CASE_COMPLETED)),
        "weights": {c: ended_weight_sum(net, c) for c in cases},
        "status": {
            (team, c): node.engine.case(c).status for team, node in net.nodes.items() for c in cases
        },
        # not the case data: which branch's copy wins at a join depends on arrival order
        # (see test_loop_join_keeps_this_generations_data)
        "fields": {c: sorted(net.initiator.engine.case(c).data) for c in cases},
    }


CASES = ["c1", "c2", "c3"]


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    """The outcome with in-order, exactly-once delivery."""
    with network(build(THREE), TestBus()) as net:
        drive(net, CASES, None)
        return outcome(net, CASES)


def test_reference_run_fires_the_join_once_per_generation(reference: dict[str, Any]) -> None:
    for c in CASES:
        # two generations (d asks for rework once): every step twice, the join's d twice
        assert {s: n for (case, s), n in reference["ready"].items() if case == c} == {
            "a": 2,
            "b": 2,
            "c": 2,
            "d": 2,
        }
        assert reference["completed"][c] == 1
        assert reference["weights"][c] == 1
    assert set(reference["status"].values()) == {CaseStatus.COMPLETED}


@pytest.mark.parametrize("seed", range(6))
def test_redelivered_and_shuffled_messages_change_nothing(
    seed: int, reference: dict[str, Any]
) -> None:
    rnd = random.Random(seed)
    bus = TestBus(rnd=rnd, copies=2)
    with network(build(THREE), bus) as net:
        drive(net, CASES, rnd)
        assert bus.delivered == 2 * len(bus.log)  # every message arrived twice
        got = outcome(net, CASES)
        assert got == reference
        for node in net.nodes.values():
            for c in CASES:
                consumed = node.engine.case(c).consumed
                assert len(consumed) == len(set(consumed))  # each event acted on once
        for c in CASES:
            assert_closed_everywhere(net, c)


def test_a_message_delivered_again_later_is_ignored() -> None:
    bus = TestBus()
    with network(build(THREE), bus) as net:
        drive(net, ["c1"], None)
        before = net.snapshot()
        for msg in list(bus.log):
            bus.deliver(msg)
        assert net.snapshot() == before


# -- what a node refuses: logged, no crash, no change ------------------------------------------


def envelope(d: ProcessDefinition, eid: str, etype: EventType, case: str, **data: Any) -> bytes:
    e = Event(id=eid, type=etype, case=case, process=d.key, at=EPOCH, seq=1, data=data)
    return orjson.dumps(e.to_cloudevent())


def send(bus: Any, d: ProcessDefinition, raw: bytes, etype: str, msg_id: str) -> None:
    # addressed to every node, so each of them has to deal with it
    bus.publish(subject_for(d.key, etype, "all"), raw, msg_id)


@pytest.fixture
def midway() -> Iterator[Network]:
    """Case c1 waiting at b (ops) and c (it); the bus delivers at once, in order."""
    with network(build(THREE), MemoryBus()) as net:
        net.start("c1")
        net.do("a", {"n": 1})
        yield net


def test_malformed_messages_are_logged_and_skipped(
    midway: Network, caplog: pytest.LogCaptureFixture
) -> None:
    net, d = midway, midway.d
    before = net.snapshot()
    with caplog.at_level(logging.INFO, logger="accord.node"):
        send(net.bus, d, b"not json at all", "handoff", "x1")
        send(net.bus, d, b'{"hello": 1}', "handoff", "x2")
        send(net.bus, d, b"[1, 2]", "handoff", "x3")
        bad_type = orjson.loads(envelope(d, "c1#ops#90", EventType.HANDOFF, "c1"))
        bad_type["type"] = "accord.nonsense"
        send(net.bus, d, orjson.dumps(bad_type), "nonsense", "x4")
        no_time = orjson.loads(envelope(d, "c1#ops#91", EventType.HANDOFF, "c1"))
        del no_time["time"]
        send(net.bus, d, orjson.dumps(no_time), "handoff", "x5")
    assert net.snapshot() == before
    malformed = [r for r in caplog.records if "malformed message" in r.getMessage()]
    assert {r.getMessage().split()[3] for r in malformed} == {"x1", "x2", "x3", "x4", "x5"}
    assert len(malformed) == 5 * len(net.nodes)  # every node saw and skipped each
    assert all(r.levelno == logging.WARNING for r in malformed)


def test_events_for_unknown_cases_and_steps_change_nothing(
    midway: Network, caplog: pytest.LogCaptureFixture
) -> None:
    net, d = midway, midway.d
    before = net.snapshot()
    handoff = EventType.HANDOFF
    msgs = [
        # a handoff to a flow the process does not have: no case appears at ops
        envelope(
            d,
            "ghost#sales#1",
            handoff,
            "ghost",
            flow="nope",
            to_team="ops",
            from_team="sales",
            case_data={},
        ),
        # the same for a case ops does know
        envelope(
            d,
            "c1#sales#90",
            handoff,
            "c1",
            flow="nope",
            to_team="ops",
            from_team="sales",
            case_data={"n": 1},
        ),
        # a branch that ended in a case the initiator never started
        envelope(d, "ghost#ops#2", EventType.BRANCH_ENDED, "ghost", weight="1"),
        # a refusal of a handoff the initiator never sent
        envelope(
            d,
            "ghost#ops#3",
            EventType.HANDOFF_REJECTED,
            "ghost",
            from_team="sales",
            from_step="a",
            errors=["x"],
        ),
        # an announcement for a step that is not a join
        envelope(
            d,
            "c1#ops#91",
            EventType.GATEWAY_DECIDED,
            "c1",
            announce={"join": "d", "expect": ["J->d"], "to_team": "sales"},
        ),
        # the end of a case a node never took part in
        envelope(d, "ghost#sales#4", EventType.CASE_COMPLETED, "ghost"),
        # a refusal for a step that does not exist, in a real case
        envelope(
            d,
            "c1#ops#92",
            EventType.HANDOFF_REJECTED,
            "c1",
            from_team="sales",
            from_step="nope",
            errors=["x"],
        ),
    ]
    with caplog.at_level(logging.INFO, logger="accord.node"):
        for raw in msgs:
            etype = orjson.loads(raw)["type"].removeprefix("accord.")
            send(net.bus, d, raw, etype, orjson.loads(raw)["id"])
    assert net.snapshot() == before
    for node in net.nodes.values():
        assert node.engine.store.load_case("ghost") is None
    not_applied = [r.getMessage() for r in caplog.records if "not applied" in r.getMessage()]
    # a handoff on a flow the process does not have is refused before it reaches the kernel
    refused = [
        r.getMessage() for r in caplog.records if "not one the process has" in r.getMessage()
    ]
    assert any("ghost#sales#1" in m and "'nope'" in m for m in refused)
    assert any("c1#sales#90" in m for m in refused)
    assert any("ghost#ops#2" in m and "no such case" in m for m in not_applied)
    assert any("ghost#ops#3" in m for m in not_applied)
    assert any("c1#ops#91" in m and "is not a join" in m for m in not_applied)
    assert any("c1#ops#92" in m and "no step 'nope'" in m for m in not_applied)


def test_a_handoff_for_a_step_another_team_owns_is_refused(
    midway: Network, caplog: pytest.LogCaptureFixture
) -> None:
    net, d = midway, midway.d
    before = net.snapshot()
    # addressed to ops, but the flow leads to c, which it owns
    raw = envelope(
        d,
        "c1#sales#93",
        EventType.HANDOFF,
        "c1",
        flow="P->c",
        to_team="ops",
        from_team="sales",
        from_step="a",
        weight="1/2",
        case_data={"n": 1},
    )
    with caplog.at_level(logging.INFO, logger="accord.node"):
        send(net.bus, d, raw, "handoff", "c1#sales#93")
    assert net.snapshot() == before
    # sales never sends P->c to ops: the projection says so, and the node refuses it
    assert any(
        "c1#sales#93" in r.getMessage() and "not one the process has" in r.getMessage()
        for r in caplog.records
    )


def test_a_handoff_from_a_team_that_does_not_own_the_source_is_refused(
    midway: Network,
) -> None:
    net, d = midway, midway.d
    before = net.snapshot()
    raw = envelope(
        d,
        "c1#it#93",
        EventType.HANDOFF,
        "c1",
        flow="P->b",
        to_team="ops",
        from_team="it",
        from_step="c",
        weight="1/2",
        case_data={"n": 1},
    )
    send(net.bus, d, raw, "handoff", "c1#it#93")
    assert net.snapshot() == before


def test_a_handoff_with_a_malformed_weight_is_logged_not_raised(midway: Network) -> None:
    net, d = midway, midway.d
    net.do("c", {"xc": 1})  # c's real token waits at the join (sales)
    raw = envelope(
        d,
        "c1#ops#94",
        EventType.HANDOFF,
        "c1",
        flow="b->J",
        to_team="sales",
        from_team="ops",
        from_step="b",
        weight="abc",
        case_data={"n": 1},
    )
    send(net.bus, d, raw, "handoff", "c1#ops#94")  # must not raise


# -- data contracts on handoffs ---------------------------------------------------------------

CONTRACT = (
    "contract: {type: object, required: [n], "
    "properties: {n: {type: integer}, note: {type: string}}}"
)

BOUNCE_SEQ = f"""
- id: a
  team: sales
  outputs: [n]
  {CONTRACT}
  next: b
- {{id: b, team: ops, next: fin}}
- {{id: fin, type: end}}
"""


def test_a_handoff_violating_the_source_contract_bounces_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with network(build(BOUNCE_SEQ), MemoryBus()) as net:
        # the case data carries a note that a's contract forbids; a's own output is fine
        net.start("c1", {"note": 5})
        net.do("a", {"n": 1})
        ops, sales = net.nodes["ops"], net.nodes["sales"]
        assert ops.rejected == 1
        assert ops.engine.tasks(status=None) == []  # nothing was created at ops
        (rej,) = net.of_type(EventType.HANDOFF_REJECTED)
        assert rej.id.startswith("c1#ops#")
        assert rej.data["flow"] == "a->b"
        assert rej.data["from_team"] == "sales" and rej.data["by_team"] == "ops"
        assert rej.data["from_step"] == "a"
        assert rej.data["errors"] == ["a: note: 5 is not of type 'string'"]
        # the work comes back to the sender: a is ready again, with the whole share of the case
        (row,) = sales.engine.tasks(status="ready")
        assert (row.id, row.step) == ("c1:a:2", "a")
        assert sales.engine.case("c1").tasks["c1:a:2"].weight == "1"
        # corrected, it goes through once
        net.do("a", {"n": 1, "note": "checked"})
        assert ops.rejected == 1
        net.do("b")
        assert len(net.of_type(EventType.CASE_COMPLETED)) == 1
        assert_closed_everywhere(net, "c1")


BOUNCE_PAR = f"""
- id: a
  team: sales
  outputs: [n]
  {CONTRACT}
  next: P
- {{id: P, type: parallel, next: [b, c]}}
- {{id: b, team: ops, next: J}}
- {{id: c, team: it, next: J}}
- {{id: J, type: parallel, next: e}}
- {{id: e, team: sales, next: fin}}
- {{id: fin, type: end}}
"""


def test_bounced_parallel_handoffs_do_not_duplicate_work() -> None:
    with network(build(BOUNCE_PAR), MemoryBus()) as net:
        net.start("c1", {"note": 5})
        net.do("a", {"n": 1})
        while net.ready():
            team, tid, step = net.ready()[0]
            fix = {"n": 1, "note": "checked"} if step == "a" else {}
            net.work(team, tid, fix)
        assert len(net.of_type(EventType.CASE_COMPLETED)) == 1
        ready = Counter(e.step for e in net.of_type(EventType.TASK_READY))
        assert (ready["b"], ready["c"], ready["e"]) == (1, 1, 1)


# -- joins across teams -----------------------------------------------------------------------

PAR3 = """
- {id: a, team: sales, next: P}
- {id: P, type: parallel, next: [b, c]}
- {id: b, team: ops, outputs: [xb], next: J}
- {id: c, team: it, outputs: [xc], next: J}
- {id: J, type: parallel, next: e}
- {id: e, team: sales, next: fin}
- {id: fin, type: end}
"""


@pytest.mark.parametrize("first", ["b", "c"])
def test_parallel_split_across_teams_joins_once_at_a_third_team(first: str) -> None:
    bus = TestBus()
    with network(build(PAR3), bus) as net:
        assert net.projection.owner["J"] == "sales"
        net.start("c1")
        bus.drain()
        net.do("a")
        bus.drain()
        second = "c" if first == "b" else "b"
        net.do(first, {f"x{first}": 1})
        bus.drain()
        assert [s for _t, _id, s in net.ready()] == [second]  # the join waits
        net.do(second, {f"x{second}": 2})
        # the two arrivals at the join, each delivered three times
        for msg in [m for m in bus.log if m.subject.endswith(".handoff")]:
            bus.queue.extend([msg, msg])
        bus.drain()
        assert [(t, s) for t, _id, s in net.ready()] == [("sales", "e")]
        net.do("e")
        bus.drain()
        assert Counter(e.step for e in net.of_type(EventType.TASK_READY))["e"] == 1
        assert len(net.of_type(EventType.CASE_COMPLETED)) == 1
        sales_case = net.initiator.engine.case("c1")
        assert sales_case.data["xb"] in (1, 2) and sales_case.data["xc"] in (1, 2)
        assert ended_weight_sum(net, "c1") == 1
        assert_closed_everywhere(net, "c1")


def test_a_join_keeps_the_newest_value_written_on_a_branch() -> None:
    text = """
    - {id: a, team: sales, outputs: [x], next: P}
    - {id: P, type: parallel, next: [b, c]}
    - {id: b, team: ops, outputs: [x], next: J}
    - {id: c, team: it, next: J}
    - {id: J, type: parallel, next: e}
    - {id: e, team: sales, next: fin}
    - {id: fin, type: end}
    """
    with network(build(text), MemoryBus()) as net:
        net.start("c1")
        net.do("a", {"x": 1})
        net.do("b", {"x": 2})
        net.do("c")
        assert net.initiator.engine.case("c1").data["x"] == 2


def test_loop_join_keeps_this_generations_data() -> None:
    with network(build(THREE), MemoryBus()) as net:
        net.start("c1")
        for step in ["a", "b", "c", "d", "a", "c", "b", "d"]:
            net.do(step, data_for(step, _ready_id(net, step)))
        data = net.initiator.engine.case("c1").data
        assert (data["xb"], data["xc"]) == (2, 2)


INCLUSIVE3 = """
- {id: a, team: sales, next: S}
- id: S
  type: inclusive
  next:
    - {to: b, when: "'b' in pick"}
    - {to: c, when: "'c' in pick"}
    - {id: none, to: J, default: true}
- {id: b, team: ops, next: J}
- {id: c, team: sales, next: J}
- {id: J, type: inclusive, next: e}
- {id: e, team: it, next: fin}
- {id: fin, type: end}
"""


def is_announcement(msg: Message) -> bool:
    return msg.subject.endswith(".gateway.decided") and b'"announce"' in msg.data


@pytest.mark.parametrize(
    ("pick", "announce_last"),
    [(["b", "c"], True), (["b", "c"], False), (["b"], True), (["c"], True), ([], True)],
)
def test_inclusive_join_waits_for_exactly_the_announced_branches(
    pick: list[str], announce_last: bool
) -> None:
    bus = TestBus(hold=is_announcement if announce_last else None)
    with network(build(INCLUSIVE3), bus) as net:
        for node in net.nodes.values():
            node.bundle = False  # one message per event, so the announcement can be held back
        p = net.projection
        assert p.owner["J"] == "it"
        assert p.part("sales").announces_to == ("it",)
        net.start("c1", {"pick": pick})
        bus.drain()
        net.do("a")
        bus.drain()
        it_node = net.nodes["it"]
        chosen = sorted(pick) or []
        # work every chosen branch, one by one: the join fires only after the last one arrives
        # and (when held back) only after the announcement arrives too
        for i, step in enumerate(chosen):
            assert it_node.engine.tasks(status=None) == []
            net.do(step)
            bus.drain()
            if not announce_last and i < len(chosen) - 1:
                assert it_node.engine.tasks(status=None) == []
        if announce_last:
            assert it_node.engine.tasks(status=None) == []  # tokens here, not told what to expect
            assert len(bus.held) == 1
            expect = orjson.loads(bus.held[0].data)["data"]["announce"]["expect"]
            want = [f"{s}->J" for s in chosen] or ["none"]
            assert expect == want
            bus.release()
            bus.queue.extend(list(bus.log))  # and everything once more, for good measure
            bus.drain()
        assert [(t, s) for t, _id, s in net.ready()] == [("it", "e")]
        assert it_node.engine.case("c1").expect == {}
        net.do("e")
        bus.drain()
        assert len(net.of_type(EventType.CASE_COMPLETED)) == 1
        assert ended_weight_sum(net, "c1") == 1
        assert_closed_everywhere(net, "c1")


# -- terminate --------------------------------------------------------------------------------


@pytest.mark.parametrize("killer", ["it", "sales"])
def test_terminate_end_in_one_team_closes_the_case_everywhere(killer: str) -> None:
    text = f"""
    - {{id: a, team: sales, next: P}}
    - {{id: P, type: parallel, next: [b, c, k]}}
    - {{id: b, team: ops, next: fin}}
    - {{id: c, team: sales, next: fin}}
    - {{id: k, team: {killer}, next: kill}}
    - {{id: kill, type: end, terminate: true}}
    - {{id: fin, type: end}}
    """
    with network(build(text), MemoryBus()) as net:
        net.start("c1")
        net.do("a")
        assert sorted(s for _t, _id, s in net.ready()) == ["b", "c", "k"]
        net.do("k")
        (done,) = net.of_type(EventType.CASE_COMPLETED)
        assert done.id.startswith("c1#sales#") and done.data["terminated"] is True
        ended = net.of_type(EventType.BRANCH_ENDED)
        assert [(e.data["terminate"], e.data["weight"]) for e in ended] == [(True, "1/3")]
        assert net.ready() == []
        b_task = net.nodes["ops"].engine.case("c1").tasks["c1:b:1"]
        assert b_task.status is TaskStatus.CANCELLED
        assert net.initiator.engine.case("c1").tasks["c1:c:1"].status is TaskStatus.CANCELLED
        assert_closed_everywhere(net, "c1")
        with pytest.raises(TaskStateError):
            net.nodes["ops"].engine.complete("c1:b:1", "olga", {})


# -- weights: random structured processes, random orders --------------------------------------

TEAM_IDS = ["sales", "ops", "it"]
TEAMS_DOC = {team: {"members": [m]} for team, m in MEMBER.items()}

Block = tuple[Any, ...]
LEAF = st.sampled_from(TEAM_IDS).map(lambda t: ("step", t))


def _extend(children: st.SearchStrategy[Block]) -> st.SearchStrategy[Block]:
    many = st.lists(children, min_size=2, max_size=3)
    return st.one_of(
        many.map(lambda bs: ("seq", bs)),
        many.map(lambda bs: ("par", bs)),
        many.map(lambda bs: ("xor", bs)),
        many.map(lambda bs: ("or", bs)),
    )


BLOCKS = st.recursive(LEAF, _extend, max_leaves=8)


@dataclass
class Compiled:
    doc: dict[str, Any]
    data: dict[str, Any]


class _Compiler:
    def __init__(self, rnd: random.Random) -> None:
        self.steps: dict[str, dict[str, Any]] = {}
        self.n = 0
        self.rnd = rnd
        self.data: dict[str, Any] = {}

    def new(self, prefix: str, **body: Any) -> str:
        self.n += 1
        sid = f"{prefix}{self.n}"
        self.steps[sid] = {"id": sid, **body, "next": []}
        return sid

    def link(self, source: str, target: str, **template: Any) -> None:
        self.steps[source]["next"].append({**template, "to": target})

    def compile(self, block: Block, in_or: bool = False) -> tuple[str, str]:
        kind = block[0]
        if kind == "step":
            sid = self.new("task", team=block[1])
            return sid, sid
        if kind == "seq":
            entry, exit_ = self.compile(block[1][0], in_or)
            for child in block[1][1:]:
                e, x = self.compile(child, in_or)
                self.link(exit_, e)
                exit_ = x
            return entry, exit_
        children = block[1]
        if kind == "xor":
            split = self.new("xor", type="exclusive")
            merge = self.new("merge", type="exclusive")
            field = f"d{split}"
            self.data[field] = self.rnd.randrange(len(children))
            for i, child in enumerate(children):
                entry, exit_ = self.compile(child, in_or)
                last = i == len(children) - 1
                cond = {"default": True} if last else {"when": f"{field} == {i}"}
                self.link(split, entry, **cond)
                self.link(exit_, merge)
            return split, merge
        # nested inclusive blocks are refused by the projection (see test_projection.py)
        gw = "inclusive" if kind == "or" and not in_or else "parallel"
        split = self.new(f"{gw[:3]}split", type=gw)
        join = self.new(f"{gw[:3]}join", type=gw)
        field = f"o{split}"
        if gw == "inclusive":
            n = len(children) - 1
            self.data[field] = sorted(self.rnd.sample(range(n), self.rnd.randint(0, n)))
        for i, child in enumerate(children):
            entry, exit_ = self.compile(child, in_or or gw == "inclusive")
            cond: dict[str, Any] = {}
            if gw == "inclusive":
                last = i == len(children) - 1
                cond = {"default": True} if last else {"when": f"{i} in {field}"}
            self.link(split, entry, **cond)
            self.link(exit_, join)
        return split, join


def compile_process(block: Block, rnd: random.Random) -> Compiled:
    c = _Compiler(rnd)
    start = c.new("start", type="start")
    entry, exit_ = c.compile(block)
    c.link(start, entry)
    end = c.new("end", type="end")
    c.link(exit_, end)
    steps = [{k: v for k, v in body.items() if k != "next" or v} for body in c.steps.values()]
    return Compiled({"process": "w", "teams": TEAMS_DOC, "steps": steps}, c.data)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(BLOCKS, st.integers(0, 2**32), st.booleans())
def test_every_case_completes_and_ended_weights_sum_to_one(
    block: Block, seed: int, redeliver: bool
) -> None:
    rnd = random.Random(seed)
    comp = compile_process(block, rnd)
    d = from_document(comp.doc)
    bus = TestBus(rnd=rnd, copies=2 if redeliver else 1)
    with network(d, bus) as net:
        net.start("w1", comp.data)
        for _ in range(2000):
            ready = net.ready()
            if not ready and not bus.queue:
                break
            if bus.queue and (not ready or rnd.random() < 0.5):
                bus.step()
            else:
                team, tid, _step = rnd.choice(ready)
                net.work(team, tid, {})
        else:
            pytest.fail("the run did not settle")
        completed = net.of_type(EventType.CASE_COMPLETED)
        assert len(completed) == 1, comp.doc
        assert net.initiator.engine.case("w1").status is CaseStatus.COMPLETED
        weights = [Fraction(e.data["weight"]) for e in net.of_type(EventType.BRANCH_ENDED)]
        assert sum(weights, Fraction(0)) == 1, (weights, comp.doc)
        assert all(0 < w <= 1 for w in weights)
        assert Fraction(net.initiator.engine.case("w1").ended_weight) == 1
        assert_closed_everywhere(net, "w1")


def test_events_encoded_from_store_rows_match_their_cloudevents() -> None:
    """The relay encodes SQLite rows directly (the data is not decoded and encoded again):
    byte for byte what Event.to_cloudevent gives, for every kind of event a case writes."""
    with network(build(THREE), MemoryBus()) as net:
        net.start("c1")
        net.do("a", {"n": 1})
        for node in net.nodes.values():
            store = node.engine.store
            rows = store.event_rows(0, 1000)  # type: ignore[attr-defined]
            events = [e for _pos, e in store.events()]
            assert rows and len(rows) == len(events)
            for r, e in zip(rows, events, strict=True):
                assert wire.encode_row(r, "s") == wire.encode(e, "s")
                assert node._addressee_row(r[4], r[11]) == node.addressee(e)


class PipelinedBus(TestBus):
    """A TestBus that publishes without waiting: each batch's acknowledgement is a future the
    test settles by hand."""

    __test__ = False

    def __init__(self) -> None:
        super().__init__()
        self.futures: list[Any] = []

    def publish_nowait(self, items: list[tuple[str, bytes, str]]) -> Any:
        from concurrent.futures import Future

        self.publish_many(items)
        future: Future[None] = Future()
        self.futures.append(future)
        return future


def test_a_pipelined_relay_moves_the_cursor_only_over_acknowledged_batches() -> None:
    bus = PipelinedBus()
    with network(build(THREE), bus) as net:
        sales = net.initiator
        sales.engine.listeners.clear()  # relay by hand
        sales.eager_relay, sales.pipelined = False, True
        sales.engine.start_case("t", {}, case_id="c1")
        assert sales.relay() == 2
        sales.engine.start_case("t", {}, case_id="c2")
        assert sales.relay() == 2  # a second batch while the first is in flight
        assert sales.cursor == 0 and sales.pending == 2
        bus.futures[1].set_result(None)  # acknowledged out of order: the cursor waits
        sales.relay()
        assert sales.cursor == 0
        bus.futures[0].set_result(None)
        sales.relay()
        assert (sales.cursor, sales.pending) == (4, 0)
        sales.engine.start_case("t", {}, case_id="c3")
        sales.relay()
        bus.futures[2].set_exception(ConnectionError("broker gone"))
        with pytest.raises(ConnectionError):
            sales.relay()  # refused: rewinds to the cursor
        assert sales.cursor == 4
        sales._retry_at = 0.0  # (skip the back-off)
        assert sales.relay() == 2  # c3's events go again
        bus.futures[3].set_result(None)
        sales.drain()
        assert sales.cursor == 6
        assert sales.engine.store.get_meta("relay:sales") == "6"
        assert carried(bus.log) == [e.id for e in sales.engine.events()] + [
            e.id for e in sales.engine.events("c3")
        ]
