"""The outside world's BPMN (../shared/corpus/bpmn): every file imports or is refused precisely,
nothing crashes, and the rows of EXPECTED-BEHAVIOUR.md that use supported elements hold.

Where accord's mapping differs from Camunda's on purpose, the test says so: ``task`` and
``manualTask`` are work for a person in accord (Camunda passes through them), so the tests
complete them where Camunda's did not have to.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest
from bpmnkit import CORPUS

from accord.bpmn.check import IMPORTED, RAN, REFUSED_FILE, bpmn_files, check
from accord.bpmn.importer import NOOP_HANDLER, import_bpmn
from accord.central.engine import Engine
from accord.errors import DefinitionError
from accord.handlers import HandlerContext
from accord.testing import memory_engine

if not CORPUS.is_dir():  # pragma: no cover - the corpus sits beside the repository
    if os.environ.get("CI"):
        raise RuntimeError(f"the BPMN corpus is missing at {CORPUS}")
    pytest.skip(f"no BPMN corpus at {CORPUS}", allow_module_level=True)

FILES = bpmn_files(CORPUS)
ENGINE_TESTS = CORPUS / "camunda-platform" / "engine-tests"
SPIFF = CORPUS / "spiffworkflow"


def test_the_corpus_is_all_there() -> None:
    assert len(FILES) >= 90


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CORPUS)))
def test_every_file_imports_or_is_refused_precisely(path: Path) -> None:
    try:
        imported = import_bpmn(path)
    except DefinitionError as exc:
        text = path.read_bytes().decode("utf-8", errors="replace")
        lines = text.count("\n") + 1
        assert exc.problems
        for p in exc.problems:
            assert p.file == str(path)
            assert 1 <= p.line <= lines, p
            assert p.element and (p.element in text or "->" in p.element), p
            assert p.message
        return
    d = imported.definition
    assert d.steps
    assert d.teams or not any(s.kind.is_work for s in d.steps.values())  # events only: no team
    assert all(s.team for s in d.steps.values() if s.kind.is_work)


@pytest.fixture(scope="module")
def report() -> Any:
    return check(CORPUS, cases=2)


def test_bpmn_check_covers_every_file_without_crashing(report: Any) -> None:
    assert len(report.files) == len(FILES)
    assert not [f for f in report.files if "internal error" in f.reason]
    statuses = {f.path: f.status for f in report.files}
    for ran in (
        "miwg-reference/A.1.0.bpmn",
        "miwg-reference/A.2.0.bpmn",
        "miwg-reference/A.2.1.bpmn",
        "miwg-reference/C.1.1.bpmn",
        "camunda-platform/invoice/reviewInvoice.bpmn",
        "spiffworkflow/camunda_token_trial_nested_parallel.bpmn",
        # sub-processes, boundary events, errors, escalations, signals, call activities
        "miwg-reference/A.3.0.bpmn",
        "camunda-platform/invoice/invoice.v1.bpmn",
        "camunda-platform/invoice/invoice.v2.bpmn",
        "spiffworkflow/boundary.bpmn",
        "spiffworkflow/event-subprocess.bpmn",
        "spiffworkflow/spiff_signal_event_payload.bpmn",
        "bpmn-io-examples/nested-subprocesses.bpmn",
    ):
        assert statuses[ran] == RAN, (ran, statuses[ran])
    # its message arrives from the scenario's outside world, so it runs to the end too
    assert statuses["spiffworkflow/collaboration.bpmn"] == RAN
    for refused in (
        "camunda-platform/engine-tests/TransactionSubProcessTest.testSimpleCase.bpmn20.xml",
        "spiffworkflow/call_activity_level_3.bpmn",  # it calls itself
    ):
        assert statuses[refused] == REFUSED_FILE
    counts = report.counts()
    assert counts[RAN] >= 45 and counts[RAN] + counts[IMPORTED] >= 46


def test_the_coverage_table_says_what_the_kernel_lacks(report: Any) -> None:
    rows = {r.kind: r for r in report.coverage()}
    for kind in ("userTask", "exclusiveGateway", "parallelGateway", "inclusiveGateway"):
        assert rows[kind].status == "supported"
    assert rows["eventBasedGateway"].status == "supported"
    for kind in ("subProcess", "callActivity", "endEvent:error", "boundaryEvent:error"):
        assert rows[kind].status == "supported", rows[kind]
    # some drawings leave their timers empty: those are refused, the rest run
    assert rows["boundaryEvent:timer"].supported >= 5
    for kind in ("transaction", "boundaryEvent:compensate"):
        assert rows[kind].status == "refused" and "not supported" in rows[kind].reason
    assert rows["dataObject"].status == "ignored"
    # multi-instance and loops run (test_kernel_loops.py); one marker without a count does not
    for kind in ("multiInstance[parallel]", "multiInstance[sequential]"):
        assert rows[kind].supported >= 5, rows[kind]
    for kind in ("participant", "startEvent:message"):
        assert rows[kind].status == "supported", rows[kind]
    # message flows between pools run; those to or from the outside are documentation
    assert rows["messageFlow"].supported >= 20 and rows["messageFlow"].refused == 0


# -- EXPECTED-BEHAVIOUR.md rows that use supported elements -------------------------------------


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


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, ["Task 1", "Task 2", "Task 3"]), (2, ["Task 2", "Task 3"]), (3, ["Task 3"])],
)
def test_diverging_inclusive_gateway(value: int, expected: list[str]) -> None:
    engine, _ = memory_engine(
        ENGINE_TESTS / "InclusiveGatewayTest.testDivergingInclusiveGateway.bpmn20.xml"
    )
    cid = engine.start_case("inclusiveGwDiverging", {"input": value})
    assert names(engine, cid) == expected  # 4 - input tasks


def test_partial_merging_inclusive_gateway() -> None:
    engine, _ = memory_engine(
        ENGINE_TESTS / "InclusiveGatewayTest.testPartialMergingInclusiveGateway.bpmn20.xml"
    )
    cid = engine.start_case("partialInclusiveGwMerging", {"input": 2})
    assert names(engine, cid) == ["my partial task"]
    complete(engine, cid, "my partial task")
    assert names(engine, cid) == ["my task"]


def test_inclusive_gateway_loop() -> None:
    def script(ctx: HandlerContext) -> dict[str, Any]:  # the Groovy script of task A
        return {"counter": ctx.data["counter"] + 1}

    engine, _ = memory_engine(
        ENGINE_TESTS / "InclusiveGatewayTest.testLoop.bpmn20.xml", handlers={NOOP_HANDLER: script}
    )
    cid = engine.start_case("inclusiveTestLoop", {"counter": 1})
    engine.run_jobs()
    assert "task C" in names(engine, cid)  # and B, a `task`: work in accord, not in Camunda
    assert engine.case(cid).data["counter"] == 6  # A looped until counter > 5
    for name in names(engine, cid):
        complete(engine, cid, name)
    assert engine.case(cid).status == "completed"
    assert names(engine, cid) == []


def test_unstructured_concurrency_with_two_forks_does_not_deadlock() -> None:
    engine, _ = memory_engine(
        ENGINE_TESTS / "ParallelGatewayTest.testUnstructuredConcurrencyTwoForks.bpmn20.xml"
    )
    cid = engine.start_case("unstructuredConcurrencyTwoForks")
    for _ in range(10):  # manual tasks are work for a person in accord: do them all
        open_ = names(engine, cid)
        if not open_:
            break
        complete(engine, cid, open_[0])
    assert engine.case(cid).status == "completed"


def test_unbalanced_fork_join() -> None:
    engine, _ = memory_engine(
        ENGINE_TESTS / "ParallelGatewayTest.testUnbalancedForkJoin.bpmn20.xml"
    )
    cid = engine.start_case("UnbalancedForkJoin")
    assert names(engine, cid) == ["Task 1", "Task 2", "Task 3"]
    complete(engine, cid, "Task 1")
    complete(engine, cid, "Task 2")
    assert names(engine, cid) == ["Task 3", "Task 4"]
    complete(engine, cid, "Task 3")
    complete(engine, cid, "Task 4")
    assert engine.case(cid).status == "completed"


@pytest.mark.parametrize(("value", "task"), [(1, "Input is one"), (5, "Default input")])
def test_exclusive_gateway_default_sequence_flow(value: int, task: str) -> None:
    engine, _ = memory_engine(
        ENGINE_TESTS / "ExclusiveGatewayTest.testDefaultSequenceFlow.bpmn20.xml"
    )
    cid = engine.start_case("exclusiveGwDefaultSequenceFlow", {"input": value})
    assert names(engine, cid) == [task]


def _spiff_scripts(ctx: HandlerContext) -> dict[str, Any]:
    """SpiffWorkflow's Python scripts of inclusive_gateway.bpmn, as a handler."""
    v, u, w = ctx.data["v"], ctx.data["u"], ctx.data["w"]
    return {"increment_v": {"v": v + 1}, "u_plus_v": {"u": u + v}, "w_plus_v": {"w": w + v}}[
        ctx.step
    ]


@pytest.mark.parametrize(
    ("data", "status", "final"),
    [
        ({"v": -1, "u": -1, "w": -1}, "completed", {"v": 0, "u": -1, "w": -1}),
        ({"v": 0, "u": -1, "w": -1}, "paused", None),  # no true path, no default: incident
        ({"v": 0, "u": 1, "w": 1}, "completed", {"v": 0, "u": 1, "w": 1}),
    ],
)
def test_spiff_inclusive_gateway(
    data: dict[str, int], status: str, final: dict[str, int] | None
) -> None:
    engine, _ = memory_engine(
        SPIFF / "inclusive_gateway.bpmn", handlers={NOOP_HANDLER: _spiff_scripts}
    )
    cid = engine.start_case("main")
    complete(engine, cid, "Set Data", data)
    case = engine.case(cid)
    assert case.status == status
    if final is not None:
        assert {k: case.data[k] for k in final} == final
    ran = {e.step for e in engine.events(cid) if e.type.value == "task.completed"}
    assert ("increment_v" in ran) == (data["u"] <= 0 and data["w"] <= 0)


def test_inclusive_join_after_an_event_based_gateway_waits_for_the_race() -> None:
    # InclusiveGatewayTest.testJoinAfterEventBasedGateway (EXPECTED-BEHAVIOUR.md)
    engine, _ = memory_engine(
        ENGINE_TESTS / "InclusiveGatewayTest.testJoinAfterEventBasedGateway.bpmn20.xml"
    )
    cid = engine.start_case("process")
    complete(engine, cid, names(engine, cid)[0])  # theTask
    assert names(engine, cid) == []  # the join keeps waiting: a token waits at the gateway
    engine.send_message(cid, "foo")
    assert names(engine, cid) == ["taskAfterJoin"]
    waits = {t.step: t.status for t in engine.tasks(status=None, case_id=cid)}
    assert waits["catch2"] == "cancelled"  # the other event's wait was withdrawn


@pytest.mark.parametrize("message", ["message_1", "message_2"])
def test_spiff_event_gateway_takes_the_first_event(message: str) -> None:
    engine, _ = memory_engine(SPIFF / "event-gateway.bpmn")
    cid = engine.start_case("Process_0pvx19v")
    engine.send_message(cid, message)
    assert engine.case(cid).status.value == "completed"
    done = {e.step for e in engine.events(cid) if e.type.value == "task.completed"}
    assert f"{message}_event" in done and "timer_event" not in done


# Rows that need what the kernel does not have yet: each file is refused, naming the element.
# (Multi-instance and loop rows: test_kernel_loops.py; collaborations and links:
# test_bpmn_collaboration.py.)
NOT_YET = [
    (
        ENGINE_TESTS / "CompensateEventTest.testCompensateSubprocess.bpmn20.xml",
        "throwCompensate",
        "compensation",
    ),
    (
        ENGINE_TESTS / "CompensateEventTest.testCompensateMiSubprocess.bpmn20.xml",
        "throwCompensate",
        "compensation",
    ),
    (
        ENGINE_TESTS / "CompensateEventTest.testCompensateActivityRef.bpmn20.xml",
        "undoBookHotel",
        "compensation handler",
    ),
    (
        ENGINE_TESTS / "CompensateEventTest.testCompensationEventSubProcess.bpmn20.xml",
        "throwCompensation",
        "compensate end event",
    ),
    (ENGINE_TESTS / "TransactionSubProcessTest.testSimpleCase.bpmn20.xml", "tx", "transaction"),
    (
        ENGINE_TESTS
        / "BoundaryConditionalEventTest.testNonInterruptingVariableCondition.bpmn20.xml",
        "conditionalEvent",
        "conditional boundary event",
    ),
    (SPIFF / "Approvals.bpmn", "Approvals.First_Approval_Wins", "which cannot be run"),
    (SPIFF / "transaction.bpmn", "Subprocess", "transaction"),
    (SPIFF / "call_activity_nested.bpmn", "Activity_12zat0d", "recursive call activities"),
    (SPIFF / "call_activity_nested.bpmn", "Activity_0rkbhbz", "'Level2b', which is not in"),
]


@pytest.mark.parametrize(
    ("path", "element", "reason"), NOT_YET, ids=[p.name for p, _, _ in NOT_YET]
)
def test_rows_the_kernel_cannot_run_yet_are_refused_by_element(
    path: Path, element: str, reason: str
) -> None:
    with pytest.raises(DefinitionError) as info:
        import_bpmn(path)
    assert any(p.element == element and reason in p.message for p in info.value.problems), [
        str(p) for p in info.value.problems
    ]


def test_mutated_corpus_files_never_crash_the_importer() -> None:
    """Delete elements and attributes, scramble references and texts: the importer either
    imports the result or refuses it with problems; it never raises anything else."""
    from lxml import etree  # type: ignore[import-untyped]

    from accord.bpmn.importer import import_bytes

    rng = random.Random(20261)
    values = ["", "x", "${a b}", "true", "PT1H", "= a", "R/PT1H", "nope(", "start"]
    imported = refused = 0
    for _ in range(300):
        tree = etree.fromstring(rng.choice(FILES).read_bytes())
        elements = [e for e in tree.iter() if isinstance(e.tag, str)]
        ids = [e.get("id") for e in elements if e.get("id")]
        for _ in range(rng.randint(1, 4)):
            el = rng.choice(elements)
            op = rng.random()
            if op < 0.3 and el.getparent() is not None:
                el.getparent().remove(el)
            elif op < 0.7 and el.attrib:
                key = rng.choice(list(el.attrib))
                el.set(key, rng.choice(values + ids)) if op < 0.55 else el.attrib.pop(key)
            else:
                el.text = rng.choice(values)
        try:
            import_bytes(etree.tostring(tree), "mutant.bpmn")
            imported += 1
        except DefinitionError as exc:
            assert exc.problems and all(p.line >= 1 and p.message for p in exc.problems)
            refused += 1
    assert imported and refused
