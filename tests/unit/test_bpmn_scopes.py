"""BPMN scopes: sub-processes, boundary events, errors, escalations, signals, event
sub-processes and call activities, imported and run -- on small documents, and on the rows of
the corpus's EXPECTED-BEHAVIOUR.md that use them."""

from __future__ import annotations

import os
from typing import Any

import pytest
from bpmnkit import CORPUS, document, imported, refused

from accord.bpmn.exporter import export_bpmn
from accord.bpmn.importer import NOOP_HANDLER, import_bpmn, import_bytes
from accord.central.engine import Engine
from accord.handlers import BpmnError, HandlerContext
from accord.model import StepKind
from accord.testing import memory_engine

ENGINE_TESTS = CORPUS / "camunda-platform" / "engine-tests"
SPIFF = CORPUS / "spiffworkflow"
corpus = pytest.mark.skipif(
    not CORPUS.is_dir() and not os.environ.get("CI"), reason=f"no BPMN corpus at {CORPUS}"
)


def names(engine: Engine, case_id: str) -> list[str]:
    """The names of the case's open work items, sorted."""
    d = engine.definition(engine.case(case_id).process.split("@")[0])
    return sorted(
        d.steps[t.step].name
        for t in engine.tasks(status=None, case_id=case_id)
        if t.status in ("ready", "claimed")
    )


def complete(engine: Engine, case_id: str, name: str, data: dict[str, Any] | None = None) -> None:
    d = engine.definition(engine.case(case_id).process.split("@")[0])
    task = next(
        t
        for t in engine.tasks(status=None, case_id=case_id)
        if t.status in ("ready", "claimed") and d.steps[t.step].name == name
    )
    engine.complete(task.id, "tester", data or {})
    engine.run_jobs()


def fire_all_timers(engine: Engine, clock: Any) -> None:
    due = engine.next_timer()
    assert due is not None
    clock.advance_to(due)
    engine.fire_due_timers()
    engine.run_jobs()


# -- the mapping, on small documents -----------------------------------------------------------

SCOPED = """
<startEvent id="start"/>
<sequenceFlow id="f1" sourceRef="start" targetRef="sub"/>
<subProcess id="sub" name="Check">
  <startEvent id="s0"/>
  <sequenceFlow id="f2" sourceRef="s0" targetRef="work"/>
  <userTask id="work"/>
  <sequenceFlow id="f3" sourceRef="work" targetRef="bad"/>
  <endEvent id="bad"><errorEventDefinition errorRef="err"/></endEvent>
</subProcess>
<boundaryEvent id="caught" attachedToRef="sub">
  <errorEventDefinition errorRef="err"/>
</boundaryEvent>
<boundaryEvent id="late" attachedToRef="sub" cancelActivity="false">
  <timerEventDefinition><timeCycle>R2/PT1H</timeCycle></timerEventDefinition>
</boundaryEvent>
<boundaryEvent id="stop" attachedToRef="sub">
  <signalEventDefinition signalRef="sig"/>
</boundaryEvent>
<sequenceFlow id="f4" sourceRef="sub" targetRef="end"/>
<sequenceFlow id="f5" sourceRef="caught" targetRef="fix"/>
<sequenceFlow id="f6" sourceRef="late" targetRef="end"/>
<sequenceFlow id="f7" sourceRef="stop" targetRef="end"/>
<userTask id="fix"/>
<sequenceFlow id="f8" sourceRef="fix" targetRef="end"/>
<endEvent id="end"/>
"""
OUTSIDE = """
<error id="err" name="Bad" errorCode="E42"/>
<signal id="sig" name="halt"/>
"""


def test_sub_processes_and_boundary_events_map_onto_scopes() -> None:
    d = imported(SCOPED, outside=OUTSIDE).definition
    assert d.steps["sub"].kind is StepKind.SUBPROCESS
    assert {d.steps[s].parent for s in ("s0", "work", "bad")} == {"sub"}
    assert d.steps["bad"].throw == "error" and d.steps["bad"].code == "E42"
    caught, late, stop = d.steps["caught"], d.steps["late"], d.steps["stop"]
    assert (caught.kind, caught.attached_to, caught.on, caught.code) == (
        StepKind.BOUNDARY,
        "sub",
        "error",
        "E42",
    )
    assert (late.on, late.interrupting, late.wait, late.repeat) == ("timer", False, 3600, 2)
    assert (stop.on, stop.signal) == ("signal", "halt")
    assert d.steps["work"].team == d.steps["fix"].team


def test_scopes_survive_export_and_import() -> None:
    first = imported(SCOPED, outside=OUTSIDE).definition
    again = import_bytes(export_bpmn(first), "x.bpmn").definition
    for sid, step in first.steps.items():
        other = again.steps[sid]
        assert (other.kind, other.parent, other.attached_to, other.on, other.code) == (
            step.kind,
            step.parent,
            step.attached_to,
            step.on,
            step.code,
        ), sid
        assert (other.interrupting, other.wait, other.repeat, other.signal, other.throw) == (
            step.interrupting,
            step.wait,
            step.repeat,
            step.signal,
            step.throw,
        ), sid


def test_an_event_sub_process_takes_its_start_event_trigger() -> None:
    body = """
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <userTask id="work"/>
    <sequenceFlow id="f2" sourceRef="work" targetRef="end"/>
    <endEvent id="end"/>
    <subProcess id="handler" triggeredByEvent="true">
      <startEvent id="h0" isInterrupting="false">
        <messageEventDefinition messageRef="m"/>
      </startEvent>
      <sequenceFlow id="f3" sourceRef="h0" targetRef="h1"/>
      <userTask id="h1"/>
      <sequenceFlow id="f4" sourceRef="h1" targetRef="h9"/>
      <endEvent id="h9"/>
    </subProcess>
    """
    d = imported(body, outside='<message id="m" name="update"/>').definition
    sub = d.steps["handler"]
    assert (sub.on, sub.message, sub.interrupting) == ("message", "update", False)
    assert d.steps["h0"].kind is StepKind.START and d.steps["h0"].on is None
    assert d.start == "start"


def test_a_recursive_call_activity_is_refused_naming_the_chain() -> None:
    body = """
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="again"/>
    <callActivity id="again" calledElement="p"/>
    <sequenceFlow id="f2" sourceRef="again" targetRef="end"/>
    <endEvent id="end"/>
    """
    (problem,) = refused(document(body))
    assert problem.element == "again"
    assert "recursive call activities (p -> p)" in problem.message


# -- EXPECTED-BEHAVIOUR.md rows ----------------------------------------------------------------


@corpus
def test_non_interrupting_timer_boundary_then_a_parallel_join() -> None:
    # BoundaryTimerNonInterruptingEventTest.testJoin
    engine, clock = memory_engine(
        ENGINE_TESTS / "BoundaryTimerNonInterruptingEventTest.testJoin.bpmn20.xml"
    )
    cid = engine.start_case("testJoin")
    assert names(engine, cid) == ["Main Task"]
    fire_all_timers(engine, clock)
    assert names(engine, cid) == ["Escalation Task", "Main Task"]
    complete(engine, cid, "Main Task")
    assert names(engine, cid) == ["Escalation Task"]
    complete(engine, cid, "Escalation Task")
    assert engine.case(cid).status == "completed"


@corpus
def test_escalation_is_caught_by_the_innermost_non_interrupting_boundary() -> None:
    # EscalationEventTest.testThrowEscalationEventHierarchical
    engine, _ = memory_engine(
        ENGINE_TESTS / "EscalationEventTest.testThrowEscalationEventHierarchical.bpmn20.xml"
    )
    cid = engine.start_case("escalationProcess")
    assert names(engine, cid) == [
        "task after catched escalation inside subprocess",
        "task in subprocess",
    ]


@corpus
@pytest.mark.parametrize(
    ("message", "after"),
    [
        ("messageName_one", "taskAfterMessage_one"),
        ("messageName_two", "taskAfterMessage_two"),
        (None, "taskAfterSubProcess"),
    ],
)
def test_message_boundary_on_a_sub_process(message: str | None, after: str) -> None:
    # MessageBoundaryEventTest.testBoundaryMessageEventOnSubprocess
    engine, _ = memory_engine(
        ENGINE_TESTS / "MessageBoundaryEventTest.testBoundaryMessageEventOnSubprocess.bpmn20.xml"
    )
    cid = engine.start_case("process")
    assert names(engine, cid) == ["taskSubProcess"]
    if message is None:
        complete(engine, cid, "taskSubProcess")
    else:
        engine.send_message(cid, message)
    assert names(engine, cid) == [after]
    # once the sub-process is over, its boundaries listen no more
    from accord.errors import NotFound

    with pytest.raises(NotFound):
        engine.send_message(cid, "messageName_one")


@corpus
def test_terminate_inside_a_concurrent_sub_process_ends_only_it() -> None:
    # TerminateEndEventTest.testTerminateInSubProcessConcurrent
    engine, _ = memory_engine(
        ENGINE_TESTS / "TerminateEndEventTest.testTerminateInSubProcessConcurrent.bpmn"
    )
    cid = engine.start_case("terminateEndEventExample")
    assert names(engine, cid) == ["check before normal end"]  # the sub-process ended itself
    complete(engine, cid, "check before normal end")
    assert engine.case(cid).status == "completed"


@corpus
def test_call_activity_waits_in_the_called_process_then_continues() -> None:
    # CallActivity.testCallSimpleSubProcess + simpleSubProcess.bpmn20.xml
    engine, _ = memory_engine(ENGINE_TESTS / "CallActivity.testCallSimpleSubProcess.bpmn20.xml")
    cid = engine.start_case("callSimpleSubProcess")
    assert names(engine, cid) == ["Task before subprocess"]
    complete(engine, cid, "Task before subprocess")
    assert names(engine, cid) == ["Task in subprocess"]
    complete(engine, cid, "Task in subprocess")
    assert names(engine, cid) == ["Task after subprocess"]
    complete(engine, cid, "Task after subprocess")
    assert engine.case(cid).status == "completed"


@corpus
def test_event_based_gateway_with_a_signal_message_and_timer() -> None:
    # EventBasedGatewayTest.testCatchSignalAndMessageAndTimer
    engine, _ = memory_engine(
        ENGINE_TESTS / "EventBasedGatewayTest.testCatchSignalAndMessageAndTimer.bpmn20.xml"
    )
    cid = engine.start_case("catchSignal")
    waiting = {t.step for t in engine.tasks(status="waiting", case_id=cid)}
    assert waiting == {"signalEvent", "messageEvent", "timerEvent"}
    assert len(engine.case(cid).timers) == 1
    engine.send_message(cid, "newInvoice")
    assert engine.tasks(status="waiting", case_id=cid) == []
    assert engine.case(cid).timers == {}
    assert names(engine, cid) == ["afterMessage"]
    other = engine.start_case("catchSignal")
    engine.send_signal(other, "alert")
    assert names(engine, other) == ["afterSignal"]


@corpus
def test_an_uncaught_escalation_is_reported_and_the_workflow_completes() -> None:
    # spiffworkflow uncaught_escalation.bpmn
    engine, _ = memory_engine(SPIFF / "uncaught_escalation.bpmn")
    cid = engine.start_case("top_level")
    assert engine.case(cid).status == "completed"
    (thrown,) = [e for e in engine.events(cid) if e.type.value == "escalation.thrown"]
    assert thrown.data == {"code": "escalation-1", "caught_by": None}


@corpus
def test_spiff_lanes_a_task_inside_a_sub_process_takes_its_lane() -> None:
    d = import_bpmn(SPIFF / "lanes.bpmn").definition
    inner = [s for s in d.steps.values() if s.parent is not None and s.kind.is_work]
    assert inner and {s.team for s in inner} == {d.steps[inner[0].parent or ""].team}


@corpus
def test_the_invoice_runs_through_its_called_review() -> None:
    # invoice.v2 calls ReviewInvoice (reviewInvoice.bpmn, same folder)
    engine, _ = memory_engine(CORPUS / "camunda-platform" / "invoice" / "invoice.v2.bpmn")
    d = engine.definition("invoice")
    review = next(s for s in d.steps.values() if s.kind is StepKind.SUBPROCESS)
    assert any(s.parent == review.id for s in d.steps.values())
    assert all("/" in s.id for s in d.steps.values() if s.parent == review.id)


@corpus
def test_a_handler_raising_a_bpmn_error_is_caught_by_the_error_boundary() -> None:
    # BoundaryErrorEventTest.testCatchErrorOnEmbeddedSubprocess, with the script as a handler
    path = ENGINE_TESTS / "BoundaryErrorEventTest.testCatchErrorOnEmbeddedSubprocess.bpmn20.xml"
    d = import_bpmn(path).definition
    throwing = [s for s in d.steps.values() if s.throw == "error"]
    engine, _ = memory_engine(path)
    cid = engine.start_case(d.id)
    while names(engine, cid) and engine.case(cid).status.value == "running":
        complete(engine, cid, names(engine, cid)[0])
    assert engine.case(cid).status == "completed"
    caught = [e for e in engine.events(cid) if e.type.value == "error.thrown"]
    assert throwing and caught and all(e.data["caught_by"] for e in caught)

    def declines(ctx: HandlerContext) -> dict[str, Any]:
        raise BpmnError("DECLINED", "card declined")

    steps = """
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="charge"/>
    <serviceTask id="charge"/>
    <boundaryEvent id="no" attachedToRef="charge">
      <errorEventDefinition errorRef="e"/>
    </boundaryEvent>
    <sequenceFlow id="f2" sourceRef="charge" targetRef="end"/>
    <sequenceFlow id="f3" sourceRef="no" targetRef="tell"/>
    <userTask id="tell" name="Tell the customer"/>
    <sequenceFlow id="f4" sourceRef="tell" targetRef="end"/>
    <endEvent id="end"/>
    """
    payments = imported(steps, outside='<error id="e" errorCode="DECLINED"/>', pid="pay").definition
    engine, _ = memory_engine(payments, handlers={NOOP_HANDLER: declines})
    cid = engine.start_case("pay")
    engine.run_jobs()
    assert names(engine, cid) == ["Tell the customer"]


@pytest.mark.parametrize(
    "steps",
    ["SUB", "TIMER_BOUNDARY", "ERRORS", "SIGNALS", "EVENT_SUB"],
)
def test_yaml_scopes_survive_bpmn_and_back(steps: str) -> None:
    import test_kernel_scopes as ks
    from casekit import build
    from test_bpmn_export import same_process

    from accord.bpmn.importer import to_yaml
    from accord.model import loads

    text = getattr(ks, steps)
    text = text.replace("INTERRUPTING", "false").replace("CATCH", "code: CODE,")
    original = build(text)
    again = import_bytes(export_bpmn(original), "x.bpmn")
    same_process(original, again.definition)
    same_process(original, loads(to_yaml(again, "x.bpmn"), "x.yaml"))


@corpus
def test_a_scenario_sets_the_steps_of_a_called_process_by_their_prefixed_ids(
    tmp_path: Any,
) -> None:
    """invoice.v2 calls ReviewInvoice, inlined as `reviewInvoice/...`: a scenario names those
    steps by the ids they run under (the called process has no scenario steps of its own to
    carry over), and a bare id is refused with the prefixed one suggested."""
    import random

    from accord.errors import DefinitionError
    from accord.model import load
    from accord.sim.scenario import load_scenario

    invoice = CORPUS / "camunda-platform" / "invoice" / "invoice.v2.bpmn"
    d = load(invoice)
    scenario = tmp_path / "s.yaml"
    scenario.write_text("steps:\n  reviewInvoice/assignReviewer: {duration: PT7M}\n")
    sc = load_scenario(d, scenario)
    assert sc.step("reviewInvoice/assignReviewer").duration.sample(random.Random(0)) == 420
    scenario.write_text("steps:\n  assignReviewer: {duration: PT7M}\n")
    with pytest.raises(DefinitionError, match="did you mean 'reviewInvoice/assignReviewer'"):
        load_scenario(d, scenario)
