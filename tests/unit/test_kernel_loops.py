"""Multi-instance and loop steps: instances counted exactly, a completion condition withdraws the
rest, no instance completes twice, outputs collected in order; standard loops; and the BPMN
corpus rows that use them (EXPECTED-BEHAVIOUR.md)."""

from __future__ import annotations

import random

import pytest
from bpmnkit import CORPUS
from casekit import Case, build
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.bpmn.importer import import_bpmn
from accord.errors import ConflictError, DefinitionError
from accord.events import EventType
from accord.kernel import CompleteTask, ResumeCase
from accord.kernel.state import CaseStatus, TaskStatus, state_from_json
from accord.testing import memory_engine

ENGINE_TESTS = CORPUS / "camunda-platform" / "engine-tests"
SPIFF = CORPUS / "spiffworkflow"


def multi(settings_: str) -> str:
    return f"""
- id: start
  type: start
  next: sign
- id: sign
  team: sales
  multi_instance: {settings_}
  next: after
- id: after
  team: ops
  next: done
- id: done
  type: end
"""


def finish_one(c: Case, step: str, data: dict | None = None, *, pick: int = 0) -> None:  # type: ignore[type-arg]
    tasks = c.tasks(step)
    t = tasks[pick % len(tasks)]
    c.do(CompleteTask(c.now + 1, None, task_id=t.id, data=dict(data or {})))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 7),
    sequential=st.booleans(),
    stop_at=st.one_of(st.none(), st.integers(1, 7)),
    seed=st.integers(0, 10_000),
)
def test_instances_are_counted_exactly_and_the_condition_withdraws_the_rest(
    n: int, sequential: bool, stop_at: int | None, seed: int
) -> None:
    until = f', until: "nrOfCompletedInstances >= {stop_at}"' if stop_at is not None else ""
    d = build(multi(f"{{count: n, sequential: {str(sequential).lower()}{until}, output: out, "
                    "output_item: v}"))  # fmt: skip
    c = Case(d, {"n": n})
    rng = random.Random(seed)
    expected = n if stop_at is None else min(n, stop_at)
    completed: list[int] = []
    while c.tasks("sign"):
        open_ = c.tasks("sign")
        assert len(open_) == (1 if sequential else n - len(completed))
        t = rng.choice(open_)
        c.do(CompleteTask(c.now + 1, None, task_id=t.id, data={"v": t.instance}))
        completed.append(t.instance)
        # a completed instance cannot complete again with other data
        with pytest.raises(ConflictError):
            c.do(CompleteTask(c.now + 1, None, task_id=t.id, data={"v": -1}))
    assert len(completed) == expected == len(set(completed))
    assert c.active() == ["after"]
    tasks = [t for t in c.s.tasks.values() if t.step == "sign"]
    assert sum(t.status is TaskStatus.COMPLETED for t in tasks) == expected
    cancelled = [t for t in tasks if t.status is TaskStatus.CANCELLED]
    assert len(cancelled) == (0 if sequential else n - expected)
    withdrawn = [e for e in c.of(EventType.TASK_CANCELLED) if e.step == "sign"]
    assert len(withdrawn) == len(cancelled)
    assert all(e.data["reason"] == "the completion condition holds" for e in withdrawn)
    out = c.s.data["out"]
    assert len(out) == n
    assert [out[i] for i in completed] == completed  # each output at its instance's place
    if sequential:
        assert completed == list(range(expected))  # one after another, in order
    assert c.s.loops == {}
    assert state_from_json(c.s.to_json()) == c.s


def test_a_collection_gives_each_instance_its_item() -> None:
    d = build(multi("{collection: people, item: person, sequential: true}"))
    c = Case(d, {"people": ["ann", "bob", "cy"]})
    seen = []
    for _ in range(3):
        ready = [e for e in c.of(EventType.TASK_READY) if e.step == "sign"][-1]
        seen.append((ready.data["instance"]["person"], ready.data["instance"]["loopCounter"]))
        finish_one(c, "sign")
    assert seen == [("ann", 0), ("bob", 1), ("cy", 2)]
    assert c.active() == ["after"]


def test_automated_instances_see_their_item_in_the_handler_data() -> None:
    d = build(
        """
        - id: start
          type: start
          next: mail
        - id: mail
          type: automated
          team: it
          handler: "m:f"
          multi_instance: {collection: to, item: address}
          next: done
        - id: done
          type: end
        """
    )
    c = Case(d, {"to": ["a@x", "b@x"]})
    runs = [cmd for cmd in c.commands if type(cmd).__name__ == "RunHandler"]
    assert [r.data["address"] for r in runs] == ["a@x", "b@x"]  # type: ignore[attr-defined]


def test_an_empty_collection_passes_the_step_and_a_bad_one_is_an_incident() -> None:
    d = build(multi("{collection: people}"))
    c = Case(d, {"people": []})
    assert c.active() == ["after"]
    c = Case(d, {})
    assert c.s.status is CaseStatus.PAUSED
    assert "is not a list" in c.s.incident["error"]  # type: ignore[index]
    c.do(ResumeCase(c.now + 1, "operator", data={"people": ["ann"]}))
    assert c.s.status is CaseStatus.RUNNING
    assert c.active() == ["sign"]
    finish_one(c, "sign")
    assert c.active() == ["after"]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("{}", "needs 'count'"),
        ("{count: 2, collection: x}", "one of them"),
        ("{count: 2, bogus: 1}", "unknown key 'bogus'"),
    ],
)
def test_multi_instance_settings_are_checked(setting: str, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        build(multi(setting))


LOOP = """
- id: start
  type: start
  next: work
- id: work
  team: sales
  loop: {loop}
  next: done
- id: done
  type: end
"""


@pytest.mark.parametrize(
    ("loop", "data", "flips_after", "runs"),
    [
        ('{while: "not done", max: 3}', {"done": False}, None, 3),
        ('{while: "not done", max: 3}', {"done": False}, 1, 1),
        ('{while: "not done", max: 3, test_before: true}', {"done": True}, None, 0),
        ('{while: "not done", max: 3}', {"done": True}, None, 1),  # do-while: runs once
        ("{max: 2}", {}, None, 2),
    ],
)
def test_standard_loops(loop: str, data: dict, flips_after: int | None, runs: int) -> None:  # type: ignore[type-arg]
    c = Case(build(LOOP.format(loop=loop)), data)
    done = 0
    while c.tasks("work"):
        done += 1
        finish_one(c, "work", {"done": True} if flips_after == done else {})
    assert done == runs
    assert c.s.status is CaseStatus.COMPLETED
    assert c.created("work") == runs


# -- the corpus (EXPECTED-BEHAVIOUR.md) ------------------------------------------------------------


def test_camunda_sequential_user_tasks_one_at_a_time_in_order() -> None:
    """MultiInstanceTest.sequentialUserTasks with nrOfLoops=3: one task at a time, loopCounter
    0, 1, 2 (Camunda's assignees kermit_0.. are written with it)."""
    d = import_bpmn(ENGINE_TESTS / "MultiInstanceTest.sequentialUserTasks.bpmn20.xml").definition
    engine, _ = memory_engine(d)
    cid = engine.start_case("miSequentialUserTasks", {"nrOfLoops": 3})
    counters = []
    for _ in range(3):
        (task,) = engine.tasks(case_id=cid)
        assert task.step == "miTasks"
        ready = [e for e in engine.events(cid) if e.type is EventType.TASK_READY][-1]
        counters.append(ready.data["instance"]["loopCounter"])
        engine.complete(task.id, "tester")
    assert counters == [0, 1, 2]
    assert engine.case(cid).status.value == "completed"


def test_camunda_parallel_user_tasks_completion_condition() -> None:
    """testParallelUserTasksCompletionCondition: 5 parallel tasks; after 3 completions the
    completion condition (half done) ends the activity and the process."""
    path = ENGINE_TESTS / "MultiInstanceTest.testParallelUserTasksCompletionCondition.bpmn20.xml"
    engine, _ = memory_engine(import_bpmn(path).definition)
    cid = engine.start_case("miParallelUserTasksCompletionCondition")
    tasks = engine.tasks(case_id=cid)
    assert len(tasks) == 5
    for t in tasks[:2]:
        engine.complete(t.id, "tester")
    assert engine.case(cid).status.value == "running"
    engine.complete(tasks[2].id, "tester")
    assert engine.case(cid).status.value == "completed"
    assert engine.tasks(case_id=cid) == []


def test_spiff_parallel_multi_instance_cardinality_collects_outputs() -> None:
    engine, _ = memory_engine(
        import_bpmn(SPIFF / "parallel_multiinstance_cardinality.bpmn").definition
    )
    cid = engine.start_case("main")
    tasks = engine.tasks(case_id=cid)
    assert len(tasks) == 3
    for i, t in enumerate(reversed(tasks)):
        engine.complete(t.id, "tester", {"output_item": i})
    case = engine.case(cid)
    assert case.status.value == "completed"
    assert case.data["output_data"] == [2, 1, 0]


def test_spiff_sequential_multi_instance_over_an_input_collection() -> None:
    engine, _ = memory_engine(
        import_bpmn(SPIFF / "sequential_multiinstance_loop_input.bpmn").definition
    )
    cid = engine.start_case("main", {"input_data": [2, 3, 4]})
    seen = []
    while engine.tasks(case_id=cid):
        (t,) = engine.tasks(case_id=cid)
        ready = [e for e in engine.events(cid) if e.type is EventType.TASK_READY][-1]
        item = ready.data["instance"]["input_item"]
        seen.append(item)
        engine.complete(t.id, "tester", {"output_item": item * 2})
    assert seen == [2, 3, 4]
    assert engine.case(cid).data["output_data"] == [4, 6, 8]


@pytest.mark.parametrize(
    ("done", "flip", "runs"), [(False, None, 3), (False, 1, 1), (True, None, 0)]
)
def test_spiff_standard_loop(done: bool, flip: int | None, runs: int) -> None:
    """loopMaximum=3, loopCondition `not done`, testBefore: done=False runs the task exactly 3
    times; done=True after the first run ends the loop; done=True before start skips it."""
    engine, _ = memory_engine(import_bpmn(SPIFF / "standard_loop.bpmn").definition)
    cid = engine.start_case("main", {"done": done})
    count = 0
    while engine.tasks(case_id=cid):
        (t,) = engine.tasks(case_id=cid)
        count += 1
        engine.complete(t.id, "tester", {"done": True} if flip == count else {})
    assert count == runs
    assert engine.case(cid).status.value == "completed"


def test_camunda_parallel_multi_instance_sub_process() -> None:
    """MultiInstanceTest.testParallelSubProcess: 4 tasks (2 instances x 2 tasks); completing
    all of them ends the process."""
    path = ENGINE_TESTS / "MultiInstanceTest.testParallelSubProcess.bpmn20.xml"
    engine, _ = memory_engine(import_bpmn(path).definition)
    cid = engine.start_case("miParallelSubprocess")
    tasks = engine.tasks(case_id=cid)
    assert len(tasks) == 4
    assert len({t.step for t in tasks}) == 2  # the two tasks of each of the two instances
    for t in tasks[:3]:
        engine.complete(t.id, "tester")
    assert engine.case(cid).status.value == "running"
    engine.complete(tasks[3].id, "tester")
    assert engine.case(cid).status.value == "completed"


def test_a_sequential_multi_instance_sub_process_runs_its_instances_in_turn() -> None:
    d = build(
        """
        - id: start
          type: start
          next: each
        - id: each
          type: subprocess
          multi_instance: {collection: files, item: file, sequential: true}
          steps:
            - {id: in, type: start, next: read}
            - {id: read, team: ops, next: out}
            - {id: out, type: end}
          next: done
        - id: done
          type: end
        """
    )
    c = Case(d, {"files": ["a", "b", "c"]})
    seen = []
    for _ in range(3):
        assert c.active() == ["each", "read"]
        ready = [e for e in c.of(EventType.TASK_READY) if e.step == "read"][-1]
        seen.append(ready.data["instance"]["file"])  # the inner task sees its instance's item
        finish_one(c, "read")
    assert seen == ["a", "b", "c"]
    assert c.s.status is CaseStatus.COMPLETED
    assert c.created("each") == 3 and c.created("read") == 3
