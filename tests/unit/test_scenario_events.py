"""The world outside in a simulation: messages and signals that catching events wait for
(``arrives``), BPMN errors that work steps end with (``errors``), their defaults, and timer
catch events with a date or a cycle."""

from __future__ import annotations

import textwrap
from collections import Counter

import pytest
from bpmnkit import imported

from accord.central.engine import Engine
from accord.clock import EPOCH, VirtualClock
from accord.errors import DefinitionError, NotFound
from accord.events import Event, EventType
from accord.model import ProcessDefinition, loads
from accord.sim.runner import SimResult, Simulation, staffed
from accord.sim.scenario import (
    DEFAULT_ERROR_RATE,
    DEFAULT_EVENT,
    Arrival,
    Dist,
    load_scenario,
)
from accord.stores import open_store

H = 3600.0

REVIEW = """
process: review
teams:
  ops: {members: [olga]}
  it: {members: [ivan]}
steps:
  - {id: start, type: start, next: review}
  - {id: review, team: ops, next: reply}
  - {id: cancel, type: boundary, attached_to: review, on: message, message: cancel-request,
     next: cancelled}
  - {id: rejected, type: boundary, attached_to: review, on: error, code: REJECTED,
     next: cancelled}
  - {id: sync, type: automated, team: it, handler: accord.bpmn.handlers:noop, next: done}
  - {id: sync-failed, type: boundary, attached_to: sync, on: error, code: SYNC_DOWN,
     next: cancelled}
  - {id: reply, type: message, message: answer, team: ops, next: sync}
  - {id: cancelled, type: end}
  - {id: done, type: end}
  - id: on-stop
    type: subprocess
    on: signal
    signal: stop
    interrupting: false
    steps:
      - {id: stop0, type: start, next: note}
      - {id: note, team: ops, next: stop9}
      - {id: stop9, type: end}
"""


def definition(scenario: str = "", text: str = REVIEW) -> ProcessDefinition:
    body = textwrap.dedent(text)
    if scenario:
        body += "scenario:\n" + textwrap.indent(textwrap.dedent(scenario).strip("\n"), "  ")
    return loads(body, "review.yaml")


def problems(scenario: str) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        load_scenario(definition(scenario))
    return [str(p) for p in info.value.problems]


def simulate(d: ProcessDefinition, cases: int, seed: int = 0) -> tuple[SimResult, list[Event]]:
    sc = load_scenario(d)
    run_d = staffed(d, sc)
    clock = VirtualClock(EPOCH)
    engine = Engine(open_store("memory://"), [run_d], clock=clock)
    try:
        result = Simulation(engine, run_d, sc, clock, cases=cases, seed=seed).run()
        return result, engine.events()
    finally:
        engine.close()


def fired(events: list[Event]) -> Counter[str]:
    return Counter(str(e.step) for e in events if e.type is EventType.BOUNDARY_FIRED)


# -- parsing ------------------------------------------------------------------------------------


def test_arrives_and_errors_are_read() -> None:
    sc = load_scenario(
        definition(
            """
            steps:
              cancel:
                arrives: {chance: 0.25, after: {dist: uniform, min: PT10M, max: PT1H}}
              review:
                duration: PT1H
                errors: {REJECTED: 0.1}
              stop0:
                arrives: {after: P1D}
            """
        )
    )
    assert sc.step("cancel").arrives == Arrival(0.25, Dist("uniform", 600.0, 3600.0))
    assert sc.step("review").errors == (("REJECTED", 0.1),)
    # an event sub-process's start stands for the event sub-process; chance defaults to 1
    assert sc.step("on-stop").arrives == Arrival(1.0, Dist("fixed", 86400.0))


def test_scenario_mistakes_are_located() -> None:
    found = problems(
        """
        steps:
          cancel:
            arrives: {chanse: 0.2}
          rejected:
            arrives: {chance: 0.2}
          review:
            arrives: {chance: 0.2}
            errors: {REJECTD: 0.1}
          sync:
            errors: {SYNC_DOWN: 1.5}
          done:
            errors: {REJECTED: 0.1}
          reply:
            arrives: {chance: 2, after: {dist: exponential}}
        """
    )
    assert found == [
        "review.yaml:31:17: cancel: unknown key 'chanse' (did you mean 'chance'?)",
        "review.yaml:33:7: rejected: arrives applies to message and signal steps, boundaries and "
        "event sub-processes, not an error boundary step: an error comes from a step (use "
        "errors: on the step that fails)",
        "review.yaml:35:7: review: arrives applies to message and signal steps, boundaries and "
        "event sub-processes, not a human step",
        "review.yaml:36:16: review: no error boundary or event sub-process catches 'REJECTD' "
        "(did you mean 'REJECTED'?)",
        "review.yaml:38:16: sync: the probability of error 'SYNC_DOWN' must be a number between "
        "0 and 1",
        "review.yaml:40:7: done: errors apply to work steps (human, approval, automated), not end "
        "steps",
        "review.yaml:42:17: reply: chance must be a probability between 0 and 1",
        "review.yaml:42:28: reply: exponential distribution needs mean",
    ]


def test_error_probabilities_cannot_add_up_to_more_than_one() -> None:
    d = definition(
        text=REVIEW.replace(
            "code: REJECTED,",
            "next: cancelled}\n  - {id: other, type: boundary, attached_to: review, on: error,",
        )
    )
    assert d.steps["other"].code is None  # a catch-all: any code is caught
    with pytest.raises(DefinitionError, match="add up to more than 1"):
        load_scenario(d, overrides={"steps": {"review": {"errors": {"A": 0.6, "B": 0.6}}}})


# -- defaults -----------------------------------------------------------------------------------


def test_defaults_for_the_world_outside() -> None:
    d = definition()
    sc = load_scenario(d)
    assert sc.arrival(d, "cancel") == DEFAULT_EVENT  # a boundary: now and then
    assert sc.arrival(d, "on-stop") == DEFAULT_EVENT  # an event sub-process: the same
    # a message step: always, after its own duration (as before)
    assert sc.arrival(d, "reply") == Arrival(1.0, Dist("exponential", 1800.0))
    assert sc.arrival(d, "review") is None and sc.arrival(d, "rejected") is None
    # a task with an error boundary of its own fails with its code now and then
    assert sc.step("review").errors == (("REJECTED", DEFAULT_ERROR_RATE),)
    assert sc.step("sync").errors == (("SYNC_DOWN", DEFAULT_ERROR_RATE),)
    assert sc.step("sync").duration == Dist("fixed", 5.0)  # still an automated step
    off = load_scenario(d, overrides={"steps": {"review": {"errors": {}}}})
    assert off.step("review").errors == ()


def test_what_the_case_sends_itself_never_comes_from_outside() -> None:
    d = definition(
        text=REVIEW.replace(
            "  - {id: sync, type: automated",
            "  - {id: stopper, type: throw, throw: signal, signal: stop, next: sync}\n"
            "  - {id: sync, type: automated",
        ).replace("team: ops, next: sync}", "team: ops, next: stopper}")
    )
    sc = load_scenario(d)
    assert sc.arrival(d, "on-stop") == Arrival(0.0, Dist("exponential", 1800.0))
    again = load_scenario(d, overrides={"steps": {"on-stop": {"arrives": {"chance": 0.5}}}})
    assert again.arrival(d, "on-stop") == Arrival(0.5, DEFAULT_EVENT.after)


# -- simulation ---------------------------------------------------------------------------------

BOUNDARY = """
process: boundary
teams:
  ops: {members: [olga, omar, otto, oona]}
steps:
  - {id: start, type: start, next: review}
  - {id: review, team: ops, next: done}
  - {id: cancel, type: boundary, attached_to: review, on: message, message: cancel-request,
     next: cancelled}
  - {id: cancelled, type: end}
  - {id: done, type: end}
"""


def test_a_message_boundary_takes_both_paths_in_the_expected_proportions() -> None:
    d = definition(
        """
        arrivals: {every: PT4H}
        steps:
          review: {duration: PT1H}
          cancel:
            arrives: {chance: 0.3, after: PT10M}
        """,
        BOUNDARY,
    )
    result, events = simulate(d, 400, seed=7)
    assert result.completed == 400 and not result.unfinished
    # every draw that sends it is caught: the review takes longer than the message
    cancelled = fired(events)["cancel"]
    assert cancelled == result.outside_sent and result.outside_lost == 0
    assert 0.24 * 400 < cancelled < 0.36 * 400
    assert cancelled == 123  # this seed's draws
    done = [e for e in events if e.type is EventType.TASK_COMPLETED and e.step == "review"]
    assert len(done) == 400 - cancelled
    assert simulate(d, 400, seed=7)[0].outside_sent == cancelled  # the same seed, the same run


def test_a_message_whose_catcher_is_gone_is_withdrawn_not_an_error() -> None:
    d = definition(
        """
        steps:
          review: {duration: PT1H}
          cancel:
            arrives: {chance: 0.5, after: PT3H}
        """,
        BOUNDARY,
    )
    result, events = simulate(d, 100, seed=1)
    assert result.completed == 100
    assert result.outside_sent == 0 and 30 < result.outside_lost < 70
    assert not fired(events)
    assert not [e for e in events if e.type is EventType.CASE_PAUSED]


def test_error_codes_from_the_scenario_are_caught_by_error_boundaries() -> None:
    d = definition(
        """
        steps:
          review:
            errors: {REJECTED: 0.2}
          sync:
            errors: {SYNC_DOWN: 0.3}
          cancel:
            arrives: {chance: 0}
          on-stop:
            arrives: {chance: 0}
        """
    )
    result, events = simulate(d, 200, seed=3)
    assert result.completed == 200
    thrown = [e for e in events if e.type is EventType.ERROR_THROWN]
    assert {e.data["caught_by"] for e in thrown} == {"rejected", "sync-failed"}
    by = fired(events)
    assert 20 < by["rejected"] < 60 and 25 < by["sync-failed"] < 75
    assert by["rejected"] + by["sync-failed"] == len(thrown)
    assert not [e for e in events if e.type is EventType.CASE_PAUSED]
    assert "cancel" not in by


def test_a_signal_event_sub_process_is_started_from_outside() -> None:
    d = definition(
        """
        steps:
          stop0:
            arrives: {chance: 1, after: PT1M}
          cancel:
            arrives: {chance: 0}
          review:
            errors: {}
          sync:
            errors: {}
        """
    )
    result, events = simulate(d, 20, seed=2)
    assert result.completed == 20
    notes = [e for e in events if e.type is EventType.TASK_COMPLETED and e.step == "note"]
    assert len(notes) == 20
    assert result.outside_sent == 40  # the stop signals, and the answers `reply` waits for


# -- timer catch events with a date or a cycle --------------------------------------------------


def timer_catch(definition_xml: str) -> ProcessDefinition:
    return imported(
        f"""
        <startEvent id="start"/>
        <sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
        <intermediateCatchEvent id="wait">
          <timerEventDefinition>{definition_xml}</timerEventDefinition>
        </intermediateCatchEvent>
        <sequenceFlow id="f2" sourceRef="wait" targetRef="end"/>
        <endEvent id="end"/>
        """
    ).definition


@pytest.mark.parametrize(
    ("xml", "took"),
    [
        ("<timeDate>2026-01-07T09:00:00Z</timeDate>", 2 * 86400.0 + 9 * H),  # from Monday 00:00
        ("<timeDate>2011-03-11T12:13:14Z</timeDate>", 0.0),  # already past: at once
        ("<timeCycle>R3/PT2H</timeCycle>", 2 * H),  # its first occurrence
        ('<timeCycle>"R/PT10M"</timeCycle>', 600.0),
    ],
)
def test_timer_catch_events_with_a_date_or_a_cycle(xml: str, took: float) -> None:
    d = timer_catch(xml)
    result, events = simulate(d, 1)
    assert result.completed == 1
    started = next(e for e in events if e.type is EventType.CASE_STARTED)
    ended = next(e for e in events if e.type is EventType.CASE_COMPLETED)
    assert ended.at - started.at == pytest.approx(took)


def test_an_expression_or_an_empty_date_is_still_refused() -> None:
    with pytest.raises(DefinitionError, match=r"timeDate '\$\{dueDate\}'"):
        timer_catch("<timeDate>${dueDate}</timeDate>")
    with pytest.raises(DefinitionError, match="an empty timeDate"):
        timer_catch("<timeDate/>")


def test_a_timer_step_takes_a_date_in_yaml() -> None:
    d = loads(
        """
        process: dated
        teams: {ops: {members: [olga]}}
        steps:
          - {id: start, type: start, next: wait}
          - {id: wait, type: timer, date: "2026-01-06T00:00:00Z", next: end}
          - {id: end, type: end}
        """,
        "dated.yaml",
    )
    assert d.steps["wait"].date == EPOCH + 86400.0
    with pytest.raises(DefinitionError, match="not both"):
        loads(
            """
            process: both
            teams: {ops: {members: [olga]}}
            steps:
              - {id: start, type: start, next: wait}
              - {id: wait, type: timer, wait: PT1H, date: "2026-01-06T00:00:00Z", next: end}
              - {id: end, type: end}
            """,
            "both.yaml",
        )


def test_the_engine_refuses_a_message_nobody_waits_for_and_changes_nothing() -> None:
    d = definition(
        """
        steps:
          review: {errors: {}}
          sync: {errors: {}}
        """
    )
    clock = VirtualClock(EPOCH)
    engine = Engine(open_store("memory://"), [d], clock=clock)
    try:
        engine.start_case("review", case_id="c1")
        before = engine.events("c1")
        with pytest.raises(NotFound, match="waits for no message 'nobody'"):
            engine.send_message("c1", "nobody", {})
        engine.send_signal("c1", "nobody", {})  # a broadcast nobody hears is no error
        after = engine.events("c1")
        assert after[: len(before)] == before
        assert [e.type for e in after[len(before) :]] == [EventType.SIGNAL_THROWN]
        assert engine.case("c1").status == "running"
    finally:
        engine.close()
