"""Importing BPMN: each supported construct maps onto accord's model; everything else is refused
with the file, the line, the element id and what is not supported."""

from __future__ import annotations

from pathlib import Path

import pytest
from bpmnkit import START_TASK_END, document, imported, line_with, refused

from accord.bpmn.importer import NOOP_HANDLER, import_bpmn, import_bytes, to_yaml
from accord.errors import DefinitionError
from accord.model import StepKind, load, loads

# -- what maps ---------------------------------------------------------------------------------


def test_a_sequence_keeps_ids_names_and_flows() -> None:
    d = imported(START_TASK_END).definition
    assert d.id == "p" and d.name == "Claims"
    assert list(d.steps) == ["start", "work", "end"]
    assert d.start == "start"
    assert d.steps["work"].kind is StepKind.HUMAN and d.steps["work"].name == "Work"
    assert [(f.id, f.source, f.target) for f in d.flows] == [
        ("f1", "start", "work"),
        ("f2", "work", "end"),
    ]
    # no lanes: one team, named after the process
    assert list(d.teams) == ["claims"] and d.steps["work"].team == "claims"


def test_problems_the_loader_finds_point_at_the_bpmn_line() -> None:
    data = document(START_TASK_END + '\n<userTask id="orphan"/>')
    [p] = refused(data)
    assert (p.file, p.element, p.line) == ("t.bpmn", "orphan", line_with(data, 'id="orphan"'))
    assert "unreachable" in p.message


@pytest.mark.parametrize(
    ("tag", "kind"),
    [
        ("task", StepKind.HUMAN),
        ("userTask", StepKind.HUMAN),
        ("manualTask", StepKind.HUMAN),
        ("serviceTask", StepKind.AUTOMATED),
        ("scriptTask", StepKind.AUTOMATED),
        ("sendTask", StepKind.AUTOMATED),
        ("businessRuleTask", StepKind.AUTOMATED),
    ],
)
def test_task_kinds(tag: str, kind: StepKind) -> None:
    imp = imported(START_TASK_END.replace("userTask", tag))
    step = imp.definition.steps["work"]
    assert step.kind is kind
    if kind is StepKind.AUTOMATED:
        assert step.handler == NOOP_HANDLER
        assert any(n.element == "handlers" and "work" in n.message for n in imp.notes)


def test_the_noop_handler_is_importable_and_does_nothing() -> None:
    from accord.handlers import HandlerRegistry

    fn = HandlerRegistry().resolve(NOOP_HANDLER)
    assert fn(None) is None  # type: ignore[arg-type]


def test_automated_steps_run_the_noop_handler_in_the_engine() -> None:
    from accord.testing import memory_engine

    d = imported(START_TASK_END.replace("userTask", "serviceTask")).definition
    engine, _ = memory_engine(d)
    cid = engine.start_case("p")
    engine.run_jobs()
    assert engine.case(cid).status == "completed"


def test_the_implementation_is_listed_in_the_notes() -> None:
    body = START_TASK_END.replace(
        '<userTask id="work" name="Work"/>',
        '<serviceTask id="work" camunda:class="org.acme.Archive"/>',
    )
    [note] = [n for n in imported(body).notes if n.element == "handlers"]
    assert "class=org.acme.Archive" in note.message and NOOP_HANDLER in note.message


def test_terminate_end() -> None:
    body = START_TASK_END.replace(
        '<endEvent id="end"/>', '<endEvent id="end"><terminateEventDefinition/></endEvent>'
    )
    assert imported(body).definition.steps["end"].terminate


def test_receive_task_and_message_catch_wait_for_named_messages() -> None:
    data = document(
        """
        <startEvent id="start"/>
        <sequenceFlow id="f1" sourceRef="start" targetRef="rt"/>
        <receiveTask id="rt" messageRef="m1"/>
        <sequenceFlow id="f2" sourceRef="rt" targetRef="catch"/>
        <intermediateCatchEvent id="catch">
          <messageEventDefinition messageRef="m2"/>
        </intermediateCatchEvent>
        <sequenceFlow id="f3" sourceRef="catch" targetRef="end"/>
        <endEvent id="end"/>
        """,
        outside='<message id="m1" name="contract signed"/>\n<message id="m2"/>',
    )
    d = import_bytes(data, "t.bpmn").definition
    assert d.steps["rt"].kind is StepKind.MESSAGE and d.steps["rt"].message == "contract signed"
    assert d.steps["catch"].message == "m2"  # a message without a name is known by its id


def test_a_message_wait_without_a_message_ref_is_named_and_noted() -> None:
    imp = imported(START_TASK_END.replace("userTask", "receiveTask"))
    assert imp.definition.steps["work"].message == "Work"
    assert any("without a messageRef" in n.message for n in imp.notes)


def test_a_dangling_message_ref_is_refused() -> None:
    data = document(START_TASK_END.replace("<userTask", '<receiveTask messageRef="nope"'))
    [p] = refused(data)
    assert p.element == "work" and "'nope' names no <message>" in p.message


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [("PT2H", 7200.0), ('"PT1S"', 1.0), ("'P1D'", 86400.0), ('=duration("PT5M")', 300.0)],
)
def test_timer_catch_waits_its_duration(duration: str, seconds: float) -> None:
    body = START_TASK_END.replace(
        '<userTask id="work" name="Work"/>',
        '<intermediateCatchEvent id="work"><timerEventDefinition>'
        f"<timeDuration>{duration}</timeDuration></timerEventDefinition>"
        "</intermediateCatchEvent>",
    )
    step = imported(body).definition.steps["work"]
    assert step.kind is StepKind.TIMER and step.wait == seconds


@pytest.mark.parametrize(
    ("timer", "reason"),
    [
        # a literal date or cycle is read (tests/unit/test_scenario_events.py); these are not
        ("<timeDate>${due}</timeDate>", "timeDate '${due}'"),
        ("<timeDate/>", "an empty timeDate"),
        ("<timeCycle>0 0 9 * * ?</timeCycle>", "not an ISO-8601 repeating interval"),
        ("<timeDuration>${delay}</timeDuration>", "is an expression"),
        ("<timeDuration>P1M</timeDuration>", "years and months"),
        ("", "a timer without"),
    ],
)
def test_timers_that_cannot_be_waited_are_refused(timer: str, reason: str) -> None:
    data = document(
        START_TASK_END.replace(
            '<userTask id="work" name="Work"/>',
            f'<intermediateCatchEvent id="work"><timerEventDefinition>{timer}'
            "</timerEventDefinition></intermediateCatchEvent>",
        )
    )
    [p] = refused(data)
    assert p.element == "work" and reason in p.message


GATEWAYS = """
<startEvent id="start"/>
<sequenceFlow id="f0" sourceRef="start" targetRef="enter"/>
<userTask id="enter" name="Enter claim"/>
<sequenceFlow id="f1" sourceRef="enter" targetRef="gw"/>
<exclusiveGateway id="gw" default="small">
</exclusiveGateway>
<sequenceFlow id="big" sourceRef="gw" targetRef="review">
  <conditionExpression>${amount &gt; 1000 &amp;&amp; !vip}</conditionExpression>
</sequenceFlow>
<sequenceFlow id="small" sourceRef="gw" targetRef="pay"/>
<userTask id="review"/>
<userTask id="pay"/>
<sequenceFlow id="f2" sourceRef="review" targetRef="merge"/>
<sequenceFlow id="f3" sourceRef="pay" targetRef="merge"/>
<exclusiveGateway id="merge"/>
<sequenceFlow id="f4" sourceRef="merge" targetRef="end"/>
<endEvent id="end"/>
"""


def test_exclusive_gateway_conditions_and_default() -> None:
    imp = imported(GATEWAYS.replace("\n</exclusiveGateway>", "</exclusiveGateway>"))
    d = imp.definition
    big, small = d.outgoing["gw"]
    assert big.condition is not None and big.condition.source == "amount > 1000 and not vip"
    assert small.default and small.condition is None
    assert d.steps["merge"].kind is StepKind.EXCLUSIVE
    # nobody provides amount or vip: the default scenario draws the branch, equally
    assert imp.document["scenario"]["branches"] == {"gw": {"review": 1.0, "pay": 1.0}}
    assert imp.document["scenario"]["teams"] == {"claims": {"size": 1}}


def test_exclusive_flows_without_conditions_count_as_true_and_are_drawn() -> None:
    body = GATEWAYS.replace(' default="small"', "")
    body = body.replace(
        "<conditionExpression>${amount &gt; 1000 &amp;&amp; !vip}</conditionExpression>",
        "",
    )
    imp = imported(body)
    assert [f.condition.source for f in imp.definition.outgoing["gw"] if f.condition] == [
        "true",
        "true",
    ]
    assert any("count as true" in n.message for n in imp.notes)
    assert imp.document["scenario"]["branches"]["gw"] == {"review": 1.0, "pay": 1.0}


def test_inclusive_and_parallel_gateways() -> None:
    body = GATEWAYS.replace('exclusiveGateway id="gw"', 'inclusiveGateway id="gw"')
    body = body.replace("</exclusiveGateway>", "</inclusiveGateway>", 1)
    body = body.replace('exclusiveGateway id="merge"', 'inclusiveGateway id="merge"')
    imp = imported(body)
    assert imp.definition.steps["gw"].kind is StepKind.INCLUSIVE
    assert imp.definition.is_join("merge")
    assert imp.document["scenario"]["branches"]["gw"] == {"review": 0.5, "pay": 0.5}

    par = GATEWAYS.replace(' default="small"', "").replace("exclusiveGateway", "parallelGateway")
    imp = imported(par)
    assert imp.definition.steps["gw"].kind is StepKind.PARALLEL
    assert all(f.condition is None for f in imp.definition.outgoing["gw"])
    assert any("parallel gateway takes every flow" in n.message for n in imp.notes)
    assert "branches" not in imp.document["scenario"]


def test_an_activity_with_conditional_and_plain_flows_takes_the_plain_ones_always() -> None:
    body = """
    <startEvent id="start"/>
    <sequenceFlow id="f0" sourceRef="start" targetRef="a"/>
    <userTask id="a"/>
    <sequenceFlow id="always" sourceRef="a" targetRef="b"/>
    <sequenceFlow id="sometimes" sourceRef="a" targetRef="c">
      <conditionExpression>${urgent}</conditionExpression>
    </sequenceFlow>
    <userTask id="b"/>
    <userTask id="c"/>
    """
    d = imported(body).definition
    assert {f.id: f.condition.source for f in d.outgoing["a"] if f.condition} == {
        "always": "true",
        "sometimes": "urgent",
    }


def test_pass_through_nodes_are_joined_into_the_flow() -> None:
    body = """
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="milestone"/>
    <intermediateThrowEvent id="milestone" name="Claim registered"/>
    <sequenceFlow id="f2" sourceRef="milestone" targetRef="through"/>
    <exclusiveGateway id="through"/>
    <sequenceFlow id="f3" sourceRef="through" targetRef="work"/>
    <userTask id="work"/>
    <sequenceFlow id="f4" sourceRef="work" targetRef="end"/>
    <endEvent id="end"/>
    """
    imp = imported(body)
    d = imp.definition
    assert list(d.steps) == ["start", "work", "end"]
    assert [(f.id, f.source, f.target) for f in d.flows] == [
        ("f1", "start", "work"),
        ("f4", "work", "end"),
    ]
    assert {n.element for n in imp.notes} >= {"milestone", "through"}


def test_flows_without_ids_get_accords_default_ids() -> None:
    body = START_TASK_END.replace(' id="f1"', "").replace(' id="f2"', "")
    d = imported(body).definition
    assert [f.id for f in d.flows] == ["start->work", "work->end"]


def test_no_start_event_starts_at_the_only_node_without_incoming_flows() -> None:
    body = START_TASK_END.replace('<startEvent id="start"/>', "").replace(
        '<sequenceFlow id="f1" sourceRef="start" targetRef="work"/>', ""
    )
    imp = imported(body)
    assert imp.definition.start == "work"
    assert any("no start event" in n.message for n in imp.notes)


def test_no_start_event_and_several_roots_is_refused() -> None:
    [p] = refused(document('<userTask id="a"/>\n<userTask id="b"/>'))
    assert p.element == "p" and "add a start event" in p.message and "'a', 'b'" in p.message


# -- teams -------------------------------------------------------------------------------------

LANES = """
<laneSet id="ls">
  <lane id="Lane_1" name="Team Assistant">
    <flowNodeRef>start</flowNodeRef>
    <flowNodeRef>work</flowNodeRef>
  </lane>
  <lane id="Lane_2" name="Accounting">
    <flowNodeRef>end</flowNodeRef>
    <childLaneSet id="cls">
      <lane id="Lane_3" name="Payments">
        <flowNodeRef>end</flowNodeRef>
      </lane>
    </childLaneSet>
  </lane>
  <lane id="Lane_4" name="Auditors"/>
</laneSet>
"""


def test_lanes_become_teams_and_the_innermost_lane_wins() -> None:
    d = imported(LANES + START_TASK_END).definition
    assert list(d.teams) == ["team-assistant", "payments", "auditors"]
    assert d.teams["team-assistant"].name == "Team Assistant"
    assert d.steps["work"].team == "team-assistant"
    assert d.steps["start"].team == "team-assistant"  # events and gateways in a lane too
    assert d.steps["end"].team == "payments"


def test_a_lane_naming_a_missing_node_is_refused() -> None:
    data = document(
        LANES.replace("<flowNodeRef>work</flowNodeRef>", "<flowNodeRef>x</flowNodeRef>")
        + START_TASK_END
    )
    problems = refused(data)
    assert any(p.element == "Lane_1" and "flowNodeRef 'x'" in p.message for p in problems)


def test_candidate_groups_and_potential_owners_name_teams_without_lanes() -> None:
    body = """
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="a"/>
    <userTask id="a" camunda:candidateGroups="accounting, management"/>
    <sequenceFlow id="f2" sourceRef="a" targetRef="b"/>
    <userTask id="b"><potentialOwner><resourceRef>r1</resourceRef></potentialOwner></userTask>
    <sequenceFlow id="f3" sourceRef="b" targetRef="c"/>
    <userTask id="c" camunda:candidateGroups="${approverGroups}"/>
    """
    data = document(body, outside='<resource id="r1" name="Claims Office"/>')
    d = import_bytes(data, "t.bpmn").definition
    assert d.steps["a"].team == "accounting"
    assert d.steps["b"].team == "claims-office" and d.teams["claims-office"].name == "Claims Office"
    assert d.steps["c"].team == "claims"  # an expression is no team: the process's


# -- what is refused, precisely ----------------------------------------------------------------

REFUSALS = [
    (
        '<boundaryEvent id="x" attachedToRef="work"><timerEventDefinition/></boundaryEvent>',
        "a timer without timeDuration, timeDate or timeCycle",
    ),
    (
        '<boundaryEvent id="x" attachedToRef="work"><timerEventDefinition>'
        "<timeCycle>0 0/5 * * * ?</timeCycle></timerEventDefinition></boundaryEvent>",
        "is not an ISO-8601 repeating interval",
    ),
    (
        '<boundaryEvent id="x" attachedToRef="work" cancelActivity="false">'
        "<conditionalEventDefinition/></boundaryEvent>",
        "a conditional boundary event (non-interrupting) on 'work': conditional events",
    ),
    (
        '<boundaryEvent id="x" attachedToRef="work"><compensateEventDefinition/></boundaryEvent>',
        "a compensate boundary event (interrupting) on 'work': compensation",
    ),
    ('<subProcess id="x" triggeredByEvent="true"/>', "an event sub-process needs a start event"),
    ('<transaction id="x"/>', "a transaction"),
    ('<adHocSubProcess id="x"/>', "an ad-hoc sub-process"),
    (
        '<callActivity id="x" calledElement="Other"/>',
        "calls process 'Other', which is not in this file, the files given or its folder",
    ),
    ('<callActivity id="x"/>', "a call activity without a calledElement"),
    ('<complexGateway id="x"/>', "a complex gateway"),
    # a message start starts the case: a second start is one too many
    ('<startEvent id="x"><messageEventDefinition/></startEvent>', "a second start step"),
    ('<startEvent id="x"><timerEventDefinition/></startEvent>', "a timer start event"),
    # a signal start starts the case (or, in a collaboration, the pool a signal throw reaches)
    ('<startEvent id="x"><signalEventDefinition/></startEvent>', "a second start step"),
    ('<endEvent id="x"><compensateEventDefinition/></endEvent>', "compensation"),
    ('<endEvent id="x"><cancelEventDefinition/></endEvent>', "cancel events"),
    (
        '<intermediateCatchEvent id="x"><linkEventDefinition name="a"/></intermediateCatchEvent>',
        "no link throw event",
    ),
    (
        '<intermediateCatchEvent id="x"><conditionalEventDefinition/></intermediateCatchEvent>',
        "conditional events",
    ),
    (
        '<intermediateCatchEvent id="x"><messageEventDefinition/><timerEventDefinition/>'
        "</intermediateCatchEvent>",
        "several triggers",
    ),
    (  # multi-instance tasks run (test_kernel_loops.py); one without a count cannot
        '<userTask id="x"><multiInstanceLoopCharacteristics/></userTask>',
        "without loopCardinality or a collection",
    ),
    (
        '<userTask id="x"><multiInstanceLoopCharacteristics isSequential="true">'
        "<loopDataInputRef>${a.b}</loopDataInputRef></multiInstanceLoopCharacteristics></userTask>",
        "only the name of a case data field",
    ),
    ('<task id="x"><standardLoopCharacteristics/></task>', "would never end"),
    ('<serviceTask id="x" isForCompensation="true"/>', "compensation handler"),
    ('<choreographyTask id="x"/>', "<choreographyTask> is not a flow element accord knows"),
]


@pytest.mark.parametrize(("element", "reason"), REFUSALS)
def test_unsupported_elements_are_refused_by_id_and_line(element: str, reason: str) -> None:
    data = document(START_TASK_END + element)
    problems = refused(data)
    mine = [p for p in problems if p.element == "x"]
    assert mine, problems
    p = mine[0]
    assert p.file == "t.bpmn"
    assert p.line == line_with(data, 'id="x"') or "LoopCharacteristics" in element
    assert reason in p.message, p.message


def test_every_problem_is_reported_at_once() -> None:
    elements = [e.replace('id="x"', f'id="x{i}"') for i, (e, _) in enumerate(REFUSALS[:8])]
    data = document(START_TASK_END + "\n".join(elements))
    problems = refused(data)
    assert {f"x{i}" for i in range(8)} <= {p.element for p in problems}
    assert [p.line for p in problems] == sorted(p.line for p in problems)


def test_an_untranslatable_condition_names_the_flow() -> None:
    data = document(
        GATEWAYS.replace(
            "${amount &gt; 1000 &amp;&amp; !vip}", "${invoiceService.isLarge(invoice)}"
        )
    )
    [p] = refused(data)
    assert p.element == "big"
    assert p.line == line_with(data, "invoiceService")
    assert "cannot be translated" in p.message and "method call invoiceService.isLarge" in p.message


def test_a_flow_to_a_missing_node_is_refused() -> None:
    data = document(START_TASK_END.replace('targetRef="end"', 'targetRef="nowhere"'))
    [p] = refused(data)
    assert p.element == "f2" and p.line == line_with(data, 'id="f2"')
    assert "targetRef 'nowhere': no element has this id" in p.message


def test_a_flow_to_a_node_of_another_process_is_refused() -> None:
    data = document(
        START_TASK_END.replace('targetRef="end"', 'targetRef="elsewhere"'),
        outside='<process id="other"><task id="elsewhere"/></process>',
    )
    with pytest.raises(DefinitionError) as info:
        import_bytes(data, "t.bpmn", process="p")
    [p] = info.value.problems
    assert "<task> at line" in p.message and "not a flow node of process 'p'" in p.message


def test_a_default_that_names_no_outgoing_flow_is_refused() -> None:
    data = document(GATEWAYS.replace('default="small"', 'default="f4"'))
    [p] = refused(data)
    assert p.element == "gw" and "default flow 'f4' is not a flow leaving 'gw'" in p.message


def test_a_gateway_with_no_outgoing_flows_is_refused_at_its_line() -> None:
    data = document(
        """
        <startEvent id="start"/>
        <sequenceFlow id="f1" sourceRef="start" targetRef="a"/>
        <sequenceFlow id="f2" sourceRef="start" targetRef="b"/>
        <userTask id="a"/>
        <userTask id="b"/>
        <sequenceFlow id="f3" sourceRef="a" targetRef="gw"/>
        <sequenceFlow id="f4" sourceRef="b" targetRef="gw"/>
        <parallelGateway id="gw"/>
        """
    )
    problems = refused(data)
    p = next(p for p in problems if p.element == "gw")
    assert p.line == line_with(data, 'id="gw"')
    assert "no outgoing flows" in p.message


def test_several_pools_import_together_unless_one_is_chosen() -> None:
    data = document(
        START_TASK_END,
        outside="""
        <collaboration id="c">
          <participant id="pool1" name="Insurer" processRef="p"/>
          <participant id="pool2" name="Customer" processRef="q"/>
          <messageFlow id="mf" sourceRef="work" targetRef="t"/>
        </collaboration>
        <process id="q"><startEvent id="s"/><task id="t"/></process>
        """,
    )
    both = import_bytes(data, "t.bpmn").definition  # see test_bpmn_collaboration.py
    assert both.id == "c" and set(both.teams) == {"insurer", "customer"}
    assert [(f.source, f.message) for f in both.incoming["t-message"]] == [("work", True)]
    imp = import_bytes(data, "t.bpmn", process="pool1")
    assert imp.definition.id == "p" and imp.definition.name == "Insurer"
    assert any("message flow" in n.message for n in imp.notes)
    with pytest.raises(DefinitionError, match="no process or pool 'nope'"):
        import_bytes(data, "t.bpmn", process="nope")


def test_a_black_box_pool_does_not_stop_the_import() -> None:
    data = document(
        START_TASK_END,
        outside="""
        <collaboration id="c">
          <participant id="pool1" name="Insurer" processRef="p"/>
          <participant id="pool2" name="Customer"/>
          <messageFlow id="mf" sourceRef="pool2" targetRef="work"/>
        </collaboration>
        """,
    )
    imp = import_bytes(data, "t.bpmn")
    assert imp.definition.name == "Insurer" and list(imp.definition.teams) == ["insurer"]
    assert any(n.element == "mf" for n in imp.notes)


def test_data_and_artifacts_are_noted_not_dropped_silently() -> None:
    body = (
        START_TASK_END
        + '<dataObject id="do"/>\n<textAnnotation id="ta"><text>hi</text>'
        + ("</textAnnotation>")
    )
    notes = {n.element: n.message for n in imported(body).notes}
    assert "ignored" in notes["dataObject"] and "ignored" in notes["textAnnotation"]


# -- loading -----------------------------------------------------------------------------------


def test_load_imports_bpmn_files(tmp_path: Path) -> None:
    for name in ("m.bpmn", "m.bpmn20.xml", "M.BPMN"):
        path = tmp_path / name
        path.write_bytes(document(START_TASK_END))
        assert load(path).steps["work"].kind is StepKind.HUMAN
        assert import_bpmn(path).definition.source == str(path)


def test_the_yaml_written_loads_as_the_same_process() -> None:
    lanes = """
    <laneSet id="ls">
      <lane id="l1" name="Claims desk"><flowNodeRef>enter</flowNodeRef></lane>
      <lane id="l2" name="Finance"><flowNodeRef>pay</flowNodeRef></lane>
    </laneSet>
    """
    imp = imported(lanes + GATEWAYS.replace("\n</exclusiveGateway>", "</exclusiveGateway>"))
    text = to_yaml(imp, "t.bpmn")
    assert text.startswith("# Imported from t.bpmn")
    d = loads(text, "t.yaml")
    assert list(d.steps) == list(imp.definition.steps)
    assert [
        (f.id, f.source, f.target, f.condition.source if f.condition else None, f.default)
        for f in d.flows
    ] == [
        (f.id, f.source, f.target, f.condition.source if f.condition else None, f.default)
        for f in imp.definition.flows
    ]
    assert d.scenario == imp.document["scenario"]


def test_a_large_model_imports_in_bounded_time() -> None:
    import time

    n = 4000
    body = ['<startEvent id="s"/>']
    prev = "s"
    for i in range(n):  # tasks and pass-through gateways, alternating
        tag = "exclusiveGateway" if i % 2 else "userTask"
        body.append(
            f'<{tag} id="n{i}"/><sequenceFlow id="f{i}" sourceRef="{prev}" targetRef="n{i}"/>'
        )
        prev = f"n{i}"
    body.append(f'<endEvent id="e"/><sequenceFlow id="fe" sourceRef="{prev}" targetRef="e"/>')
    t0 = time.perf_counter()
    d = import_bytes(document("\n".join(body)), "big.bpmn").definition
    assert time.perf_counter() - t0 < 5.0
    assert len(d.steps) == n // 2 + 2
