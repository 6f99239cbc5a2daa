"""BPMN collaborations (several pools exchanging messages), link events and message starts:
imported as one process, each pool or lane a team, each message flow accord's message flow."""

from __future__ import annotations

import pytest
from bpmnkit import CORPUS, HEAD, refused

from accord.bpmn.check import IMPORTED, RAN, check_file
from accord.bpmn.importer import import_bpmn, import_bytes
from accord.central.engine import Engine
from accord.choreo.node import sender_of
from accord.choreo.projection import project
from accord.events import Event, EventType
from accord.sim.session import simulate
from accord.testing import memory_engine

MIWG = CORPUS / "miwg-reference"
INVOICE = CORPUS / "camunda-platform" / "invoice"

if not CORPUS.is_dir():  # pragma: no cover - the corpus sits beside the repository
    pytest.skip(f"no BPMN corpus at {CORPUS}", allow_module_level=True)


def collaboration(shop: str, bank: str, flows: str, extra: str = "") -> bytes:
    """Two pools, ``shop`` and ``bank``, with the message flows between them."""
    return (
        HEAD
        + f"""  <message id="m_pay" name="payment"/>
  <collaboration id="collab">
    <participant id="shop_pool" name="Shop" processRef="shop"/>
    <participant id="bank_pool" name="Bank" processRef="bank"/>
    <participant id="customer" name="Customer"/>
{flows}
  </collaboration>
  <process id="shop" isExecutable="true">
{shop}
  </process>
  <process id="bank" isExecutable="true">
{bank}
  </process>
{extra}</definitions>
"""
    ).encode()


SHOP = """
    <startEvent id="s_start"/>
    <sequenceFlow id="s1" sourceRef="s_start" targetRef="order"/>
    <userTask id="order" name="Take order"/>
    <sequenceFlow id="s2" sourceRef="order" targetRef="charge"/>
    <sendTask id="charge" name="Charge card"/>
    <sequenceFlow id="s3" sourceRef="charge" targetRef="paid"/>
    <receiveTask id="paid" name="Payment confirmed" messageRef="m_pay"/>
    <sequenceFlow id="s4" sourceRef="paid" targetRef="ship"/>
    <userTask id="ship" name="Ship"/>
    <sequenceFlow id="s5" sourceRef="ship" targetRef="s_end"/>
    <endEvent id="s_end"/>
"""
BANK = """
    <startEvent id="b_start"><messageEventDefinition/></startEvent>
    <sequenceFlow id="b1" sourceRef="b_start" targetRef="check"/>
    <userTask id="check" name="Check card"/>
    <sequenceFlow id="b2" sourceRef="check" targetRef="b_end"/>
    <endEvent id="b_end"><messageEventDefinition messageRef="m_pay"/></endEvent>
"""
FLOWS = """
    <messageFlow id="mf_charge" sourceRef="charge" targetRef="b_start"/>
    <messageFlow id="mf_paid" sourceRef="b_end" targetRef="paid"/>
    <messageFlow id="mf_out" sourceRef="ship" targetRef="customer"/>
"""


def _flows(doc: dict, step: str) -> list[dict]:  # type: ignore[type-arg]
    found = next(s for s in doc["steps"] if s["id"] == step)
    nxt = found.get("next")
    if isinstance(nxt, str):
        return [{"to": nxt}]
    return list(nxt or [])


def test_a_collaboration_imports_as_one_process_with_a_team_per_pool() -> None:
    imp = import_bytes(collaboration(SHOP, BANK, FLOWS), "t.bpmn")
    d = imp.definition
    assert d.id == "collab"
    assert set(d.teams) == {"shop", "bank"}
    assert d.steps["order"].team == "shop" and d.steps["check"].team == "bank"
    # the bank pool starts only when the shop's charge message arrives (its message start)
    assert d.start == "s_start"
    charge = {f.target: f for f in d.outgoing["charge"]}
    assert charge["check"].message and charge["check"].id == "mf_charge"
    assert not charge["paid"].message
    # the message end event sends when a token reaches it
    assert [f.target for f in d.outgoing["b_end-send"]] == ["b_end", "paid"]
    assert d.outgoing["b_end-send"][1].message
    assert any("sent outside the case" in n.message for n in imp.notes)
    assert any(f == {"to": "check", "id": "mf_charge", "message": True}
               for f in _flows(imp.document, "charge"))  # fmt: skip


def _drive(engine: Engine, cid: str, data: dict | None = None, rounds: int = 40) -> None:  # type: ignore[type-arg]
    for _ in range(rounds):
        engine.run_jobs()
        ready = [t for t in engine.tasks(case_id=cid) if t.status == "ready"]
        people = [t for t in ready if t.kind != "automated"]
        if not ready:
            return
        for t in people[:1]:
            engine.complete(t.id, "tester", dict(data or {}))


def test_a_collaboration_runs_to_the_end_with_messages_between_pools() -> None:
    imp = import_bytes(collaboration(SHOP, BANK, FLOWS), "t.bpmn")
    engine, _ = memory_engine(imp.definition)
    cid = engine.start_case("collab")
    _drive(engine, cid)
    assert engine.case(cid).status.value == "completed"
    got = [e for e in engine.events(cid) if e.type is EventType.MESSAGE_RECEIVED]
    assert [(e.step, e.data["from_step"]) for e in got] == [("paid", "check")]
    done = [e.step for e in engine.events(cid) if e.type is EventType.TASK_COMPLETED]
    assert done.index("check") < done.index("paid") < done.index("ship")


REQUEST = """
    <startEvent id="s_start"/>
    <sequenceFlow id="s1" sourceRef="s_start" targetRef="ask"/>
    <userTask id="ask" name="Ask for a loan"/>
    <sequenceFlow id="s2" sourceRef="ask" targetRef="s_end"/>
    <endEvent id="s_end"/>
"""
ANSWER = """
    <startEvent id="b_start"/>
    <sequenceFlow id="b1" sourceRef="b_start" targetRef="notify"/>
    <intermediateCatchEvent id="notify"><messageEventDefinition/></intermediateCatchEvent>
    <sequenceFlow id="b2" sourceRef="notify" targetRef="answer"/>
    <userTask id="answer" name="Answer"/>
    <sequenceFlow id="b3" sourceRef="answer" targetRef="b_end"/>
    <endEvent id="b_end"/>
"""
REQUEST_REPLY = """
    <messageFlow id="mf_req" sourceRef="ask" targetRef="notify"/>
    <messageFlow id="mf_rep" sourceRef="answer" targetRef="ask"/>
"""


def test_a_task_that_asks_and_is_answered_sends_when_active_and_waits_before_its_work() -> None:
    d = import_bytes(collaboration(REQUEST, ANSWER, REQUEST_REPLY), "t.bpmn").definition
    assert d.start == "start"  # both pools start with the case: a start step forks them
    assert {f.target for f in d.outgoing["start"]} == {"ask-request", "notify"}
    assert [(f.target, f.message) for f in d.outgoing["ask-request"]] == [
        ("ask-message", False),
        ("notify", True),
    ]
    assert d.steps["ask-message"].kind.value == "message"
    assert [(f.target, f.message) for f in d.outgoing["answer"]] == [
        ("b_end", False),
        ("ask-message", True),
    ]
    engine, _ = memory_engine(d)
    cid = engine.start_case(d.id)
    # the request went out at once; the bank answers, and only then is the asker's work ready
    assert [t.step for t in engine.tasks(case_id=cid)] == ["answer"]
    _drive(engine, cid)
    assert engine.case(cid).status.value == "completed"


@pytest.mark.parametrize(
    ("flows", "element", "message"),
    [
        (
            '<messageFlow id="bad" sourceRef="order" targetRef="nowhere"/>',
            "bad",
            "message flow end 'nowhere': no element has this id",
        ),
        (
            '<messageFlow id="bad" sourceRef="order" targetRef="s_end"/>',
            "bad",
            "both ends are in one pool",
        ),
        (
            '<messageFlow id="bad" sourceRef="order" targetRef="b_end"/>',
            "bad",
            "a message flow into endEvent 'b_end'",
        ),
        (
            '<messageFlow id="bad" sourceRef="s_start" targetRef="check"/>',
            "bad",
            "a message flow out of startEvent 's_start'",
        ),
    ],
)
def test_message_flows_accord_cannot_route_are_refused_precisely(
    flows: str, element: str, message: str
) -> None:
    bank = BANK.replace("<messageEventDefinition/>", "")  # a plain start: starts with the case
    problems = refused(collaboration(SHOP, bank, flows))
    assert any(p.element == element and message in p.message for p in problems), problems


def test_a_pool_that_no_one_starts_is_refused() -> None:
    shop = SHOP.replace('<startEvent id="s_start"/>', '<startEvent id="s_start">'
                        "<messageEventDefinition/></startEvent>")  # fmt: skip
    flows = '<messageFlow id="mf_a" sourceRef="check" targetRef="s_start"/>' + FLOWS
    problems = refused(collaboration(shop, BANK, flows))
    assert any(p.element == "collab" and "no pool starts with the case" in p.message
               for p in problems), problems  # fmt: skip


def test_a_black_box_pool_is_the_outside_world() -> None:
    shop = SHOP.replace(
        'sourceRef="charge" targetRef="paid"', 'sourceRef="charge" targetRef="paid"'
    )
    flows = FLOWS + '<messageFlow id="mf_in" sourceRef="customer" targetRef="paid"/>'
    imp = import_bytes(collaboration(shop, BANK, flows), "t.bpmn")
    assert any(n.element == "mf_in" and "send_message" in n.message for n in imp.notes)


def test_message_start_events_start_the_case_when_no_message_flow_reaches_them() -> None:
    d = import_bpmn(CORPUS / "camunda-examples" / "message_start_process.bpmn").definition
    assert d.steps[d.start].kind.value == "start"
    d = import_bpmn(CORPUS / "spiffworkflow" / "multiple-start.bpmn").definition
    assert d.start == "StartEvent_1"


# -- the corpus ----------------------------------------------------------------------------------


def _complete_all(engine: Engine, cid: str, data: dict) -> None:  # type: ignore[type-arg]
    _drive(engine, cid, data)


def test_miwg_c10_happy_path_runs_to_the_end_across_both_pools() -> None:
    d = import_bpmn(MIWG / "C.1.0.bpmn").definition
    teams = set(d.teams)
    assert {"team-assistant", "approver", "accountant"} <= teams
    engine, clock = memory_engine(d)
    cid = engine.start_case(d.id, {"approved": True, "clarified": "yes"})
    _complete_all(engine, cid, {})
    # Team-Assistant's pool races a review request (that the approval made needless) against
    # 7 days: only the timer can still happen
    waiting = sorted(
        d.steps[t.step].kind.value for t in engine.tasks(case_id=cid, status="waiting")
    )
    assert waiting == ["message", "timer"]
    assert [e.step for e in engine.events(cid) if e.type is EventType.TASK_COMPLETED][-1] == (
        "archiveInvoice"
    )
    clock.advance(8 * 86400)
    engine.fire_due_timers()  # the 7 days pass
    assert engine.case(cid).status.value == "completed"


def test_miwg_c10_a_second_rejection_waits_for_a_review_no_one_sends() -> None:
    """The Team-Assistant pool reviews once (then ends), so an invoice rejected twice waits
    for ever, as the model says: the message is never sent."""
    d = import_bpmn(MIWG / "C.1.0.bpmn").definition
    engine, _ = memory_engine(d)
    cid = engine.start_case(d.id, {"approved": False, "clarified": "yes"})
    _complete_all(engine, cid, {})
    case = engine.case(cid)
    assert case.status.value == "running"
    assert [t.step for t in case.active_tasks()] == ["reviewInvoice-message"]
    reviews = [e for e in engine.events(cid) if e.type is EventType.MESSAGE_RECEIVED
               and e.step == "reviewInvoice-message"]  # fmt: skip
    assert len(reviews) == 1


def test_miwg_a41_pools_with_sub_processes_import_and_run() -> None:
    result = check_file(MIWG / "A.4.1.bpmn", cases=3)
    assert result.status == RAN, result.reason


def test_bpmn_check_says_why_a_message_from_another_pool_never_comes() -> None:
    result = check_file(MIWG / "C.1.0.bpmn", cases=6)
    assert result.status in (RAN, IMPORTED)
    if result.status == IMPORTED:  # an invoice rejected twice: see the test above
        assert "waits at reviewInvoice-message for message" in result.reason
        assert "no step of the case sends it any more" in result.reason


def test_link_events_are_a_plain_flow_like_camunda() -> None:
    """LinkEventTest.testValidEventLink: waitAfterLink1, then waitAfterLink2, then the end; the
    link events are no steps of their own."""
    path = (
        CORPUS / "camunda-platform" / "engine-tests" / "LinkEventTest.testValidEventLink.bpmn20.xml"
    )
    imp = import_bpmn(path)
    assert not any(s.startswith(("IntermediateThrowEvent", "IntermediateCatch"))
                   for s in imp.definition.steps)  # fmt: skip
    engine, _ = memory_engine(imp.definition)
    cid = engine.start_case("linkEventValid")
    assert [t.step for t in engine.tasks(case_id=cid, status="waiting")] == ["waitAfterLink1"]
    engine.send_message(cid, "waitAfterLink1")
    assert [t.step for t in engine.tasks(case_id=cid, status="waiting")] == ["waitAfterLink2"]
    engine.send_message(cid, "waitAfterLink2")
    assert engine.case(cid).status.value == "completed"
    history = [e.step for e in engine.events(cid) if e.type is EventType.TASK_COMPLETED]
    assert history == ["waitAfterLink1", "waitAfterLink2"]


def test_a_link_throw_without_its_catch_is_refused() -> None:
    body = """
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="go"/>
    <intermediateThrowEvent id="go"><linkEventDefinition name="Nowhere"/></intermediateThrowEvent>
    """
    from bpmnkit import document

    problems = refused(document(body))
    assert any(p.element == "go" and "link 'Nowhere'" in p.message for p in problems), problems


# -- choreography: the Camunda invoice with each lane its own team ------------------------------


@pytest.mark.parametrize("version", ["invoice.v1.bpmn", "invoice.v2.bpmn"])
def test_the_camunda_invoice_runs_choreographed_with_each_lane_its_own_team(version: str) -> None:
    path = INVOICE / version
    d = import_bpmn(path).definition
    lanes = {"team-assistant", "approver", "accountant"}
    assert lanes <= set(d.teams)
    proj = project(d)
    for lane in lanes:
        part = proj.parts[lane]
        assert part.steps, lane
        assert part.sends or part.receives, lane
    crossing = {(h.from_team, h.to_team) for h in proj.handoffs}
    assert ("team-assistant", "approver") in crossing
    assert ("approver", "accountant") in crossing
    events: list[Event] = []
    summary = simulate(path, 12, mode="choreo", seed=3, keep_events=events)
    assert summary["cases_completed"] == 12
    done = [e for e in events if e.type is EventType.TASK_COMPLETED]
    for e in done:
        step = d.steps[str(e.step)]
        if step.team in lanes and step.parent is None:
            assert sender_of(e) == step.team, e  # each lane's work is done at its own node
    assert {sender_of(e) for e in done} >= lanes
    assert any(e.type is EventType.HANDOFF for e in events)


def test_message_flows_round_trip_through_bpmn_and_yaml() -> None:
    from casekit import build
    from test_bpmn_export import same_process
    from test_kernel_messages import PING_PONG

    from accord.bpmn.exporter import export_bpmn
    from accord.bpmn.importer import to_yaml
    from accord.model import loads

    original = build(PING_PONG)
    data = export_bpmn(original)
    assert data.count(b"<bpmn:messageFlow ") == 2
    again = import_bytes(data, "x.bpmn")
    same_process(original, again.definition)
    same_process(original, loads(to_yaml(again, "x.bpmn"), "x.yaml"))
    # and an imported collaboration survives BPMN -> YAML -> BPMN
    first = import_bpmn(CORPUS / "bpmn-io-examples" / "pizza-collaboration.bpmn").definition
    same_process(first, import_bytes(export_bpmn(first), "x.bpmn").definition)


def test_a_signal_thrown_in_one_pool_starts_the_pools_whose_start_waits_for_it() -> None:
    shop = SHOP.replace(
        '<sendTask id="charge" name="Charge card"/>',
        '<intermediateThrowEvent id="charge"><signalEventDefinition signalRef="sig"/>'
        "</intermediateThrowEvent>",
    ).replace('messageRef="m_pay"', "")
    bank = BANK.replace("<messageEventDefinition/>", '<signalEventDefinition signalRef="sig"/>')
    bank = bank.replace('<messageEventDefinition messageRef="m_pay"/>', "")
    extra = '  <signal id="sig" name="order placed"/>\n'
    imp = import_bytes(collaboration(shop, bank, "", extra), "t.bpmn")
    d = imp.definition
    assert [(f.target, f.message) for f in d.outgoing["charge"]] == [
        ("paid", False),
        ("check", True),
    ]
    assert any("sends signal 'sig'" in n.message for n in imp.notes)
    engine, _ = memory_engine(d)
    cid = engine.start_case(d.id)
    _drive(engine, cid)
    done = [e.step for e in engine.events(cid) if e.type is EventType.TASK_COMPLETED]
    assert "check" in done  # the bank's pool was started by the shop's signal
