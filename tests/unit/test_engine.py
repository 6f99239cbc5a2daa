"""The central engine over an in-memory store and a virtual clock (plus one restart on SQLite).

Each test deploys a small process built from the shared ``TEAMS`` below, drives it through the
public Engine API and checks the event log, the task queue and the hub's assignments.
"""

from __future__ import annotations

import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from accord import (
    ConflictError,
    ContractViolation,
    Engine,
    HandlerContext,
    HandlerRegistry,
    NotFound,
    TaskStateError,
    VirtualClock,
)
from accord.clock import EPOCH
from accord.model import ProcessDefinition, loads
from accord.stores import open_store
from accord.stores.base import TaskRow
from accord.testing import memory_engine

TEAMS = """\
teams:
  sales:
    wip_limit: 5
    members:
      - {id: sam, roles: [lead, rep]}
      - {id: ana, roles: [rep]}
      - {id: raj}
  desk:
    members: [dee]
  review:
    assignment: least-loaded
    wip_limit: 3
    members: [carla, kofi]
  board:
    assignment: pull
    members: [pat, pia]
  leads:
    members: [lena]
  it:
    members: [ivan]
"""


def proc(name: str, steps: str) -> ProcessDefinition:
    body = textwrap.indent(textwrap.dedent(steps).strip("\n"), "  ")
    return loads(f"process: {name}\n{TEAMS}steps:\n{body}\n", f"{name}.yaml")


def one_step(name: str, team: str, extra: str = "") -> ProcessDefinition:
    return proc(
        name,
        f"""
        - id: work
          team: {team}
          {extra}
          next: done
        - id: done
          type: end
        """,
    )


ROLES = one_step("roles", "sales", "role: rep")
LEAST = one_step("least", "review")
SOLO = one_step("solo", "desk")
PULL = one_step("pull", "board")
CONTRACT = proc(
    "contract",
    """
    - id: work
      team: desk
      outputs: [amount]
      contract:
        type: object
        properties:
          amount: {type: integer, minimum: 0}
      next: done
    - id: done
      type: end
    """,
)
TWO = proc(
    "two",
    """
    - id: first
      team: sales
      next: second
    - id: second
      team: desk
      next: done
    - id: done
      type: end
    """,
)
SLA_TEAM = one_step("slateam", "desk", "sla: PT1H\n          escalate_to: leads")
SLA_MEMBER = one_step("slamember", "desk", "sla: PT1H\n          escalate_to: lena")
AUTO = proc(
    "auto",
    """
    - id: job
      type: automated
      team: it
      handler: jobs:run
      retry: {max_attempts: 3, backoff: PT5M}
      next: done
    - id: done
      type: end
    """,
)
FLOW = proc(
    "flow",
    """
    - id: job
      type: automated
      team: it
      handler: jobs:run
      next: work
    - id: work
      team: desk
      next: done
    - id: done
      type: end
    """,
)

Handler = Callable[[HandlerContext], Any]


@pytest.fixture
def make() -> Iterator[Callable[..., tuple[Engine, VirtualClock]]]:
    made: list[Engine] = []

    def _make(
        *defs: ProcessDefinition, handlers: dict[str, Handler] | None = None
    ) -> tuple[Engine, VirtualClock]:
        engine, clock = memory_engine(*defs, handlers=handlers)
        made.append(engine)
        return engine, clock

    yield _make
    for engine in made:
        engine.close()


def types(engine: Engine, case_id: str) -> list[str]:
    return [e.type.value for e in engine.events(case_id)]


def held(engine: Engine, case_id: str) -> list[tuple[str, str | None]]:
    """(step, assignee) of the case's claimed tasks."""
    return [(t.step, t.assignee) for t in engine.tasks(status="claimed", case_id=case_id)]


def task_of(engine: Engine, case_id: str, status: str | None = None) -> TaskRow:
    (row,) = engine.tasks(status=status, case_id=case_id)
    return row


def snapshot(engine: Engine, case_id: str) -> tuple[Any, ...]:
    """What the store holds for a case (a refused action must leave all of it unchanged)."""
    return (
        engine.store.load_case(case_id),
        engine.events(case_id),
        engine.tasks(status=None, case_id=case_id),
        dict(engine.assigner.load),
    )


# -- cases and definitions --------------------------------------------------------------------


def test_start_case_records_start_and_pushes_the_first_task(make: Any) -> None:
    engine, clock = make(SOLO)
    assert engine.start_case("solo", {"amount": 3}, case_id="c1") == "c1"

    assert types(engine, "c1") == ["case.started", "task.ready", "task.claimed"]
    started, ready, claimed = engine.events("c1")
    assert started.data == {"data": {"amount": 3}}
    assert (ready.step, ready.team, ready.task) == ("work", "desk", "c1:work:1")
    assert (claimed.actor, claimed.data["assignee"], claimed.at) == ("hub", "dee", clock.now())
    assert engine.case("c1").status.value == "running"
    assert engine.case("c1").data == {"amount": 3}
    assert held(engine, "c1") == [("work", "dee")]
    assert engine.cases()[0].id == "c1"


def test_start_case_generates_ids_and_refuses_duplicates(make: Any) -> None:
    engine, _ = make(SOLO)
    generated = engine.start_case("solo")
    assert generated.startswith("solo-")
    assert engine.start_case("solo@1", case_id="x") == "x"
    before = snapshot(engine, "x")
    with pytest.raises(ConflictError):
        engine.start_case("solo", case_id="x")
    assert snapshot(engine, "x") == before
    with pytest.raises(NotFound, match="no process 'nope'"):
        engine.start_case("nope")
    with pytest.raises(NotFound):
        engine.case("missing")
    with pytest.raises(NotFound):
        engine.complete("not-a-task-id", "dee")


def test_latest_version_wins_and_versions_stay_addressable(make: Any) -> None:
    v2 = loads(
        f"process: solo\nversion: 2\n{TEAMS}"
        "steps:\n  - {id: work, team: desk, next: done}\n  - {id: done, type: end}\n"
    )
    engine, _ = make(SOLO, v2)
    assert engine.definition("solo") is v2
    assert engine.definition("solo@1") is SOLO
    engine.start_case("solo@1", case_id="old")
    assert engine.case("old").process == "solo@1"
    engine.start_case("solo", case_id="new")
    assert engine.case("new").process == "solo@2"


# -- hub assignment -----------------------------------------------------------------------------


def test_round_robin_within_roles(make: Any) -> None:
    engine, _ = make(ROLES)
    for i in range(5):
        engine.start_case("roles", case_id=f"c{i}")
    assert [held(engine, f"c{i}")[0][1] for i in range(5)] == ["sam", "ana", "sam", "ana", "sam"]


def test_least_loaded_prefers_the_idle_member(make: Any) -> None:
    engine, _ = make(LEAST)
    engine.start_case("least", case_id="c1")
    engine.start_case("least", case_id="c2")
    assert held(engine, "c1") == [("work", "carla")]
    assert held(engine, "c2") == [("work", "kofi")]
    engine.complete("c2:work:1", "kofi")
    engine.start_case("least", case_id="c3")
    assert held(engine, "c3") == [("work", "kofi")]  # round-robin would have picked carla


def test_wip_limit_keeps_the_second_task_ready_until_the_first_completes(make: Any) -> None:
    engine, clock = make(SOLO)
    engine.start_case("solo", case_id="c1")
    engine.start_case("solo", case_id="c2")
    assert held(engine, "c1") == [("work", "dee")]
    assert task_of(engine, "c2").status == "ready"
    assert task_of(engine, "c2").assignee is None
    assert engine.assigner.load["dee"] == 1

    clock.advance(600)
    engine.complete("c1:work:1", "dee")

    assert engine.case("c1").status.value == "completed"
    assert held(engine, "c2") == [("work", "dee")]
    claim = engine.events("c2")[-1]
    assert (claim.type.value, claim.actor, claim.data) == (
        "task.claimed",
        "hub",
        {"assignee": "dee", "waited_s": 600.0},
    )
    assert engine.assigner.load["dee"] == 1


def test_backlog_is_served_first_come_first_served(make: Any) -> None:
    engine, _ = make(SOLO)
    for cid in ("c1", "c2", "c3"):
        engine.start_case("solo", case_id=cid)
    engine.complete("c1:work:1", "dee")
    assert held(engine, "c2") == [("work", "dee")]
    assert task_of(engine, "c3").status == "ready"
    engine.complete("c2:work:1", "dee")
    assert held(engine, "c3") == [("work", "dee")]


def test_pull_teams_are_not_pushed(make: Any) -> None:
    engine, _ = make(PULL)
    engine.start_case("pull", case_id="c1")
    assert types(engine, "c1") == ["case.started", "task.ready"]
    assert task_of(engine, "c1").status == "ready"
    assert engine.tasks(team="board")[0].id == "c1:work:1"

    with pytest.raises(TaskStateError, match="not in team"):
        engine.claim("c1:work:1", "sam")
    engine.claim("c1:work:1", "pat")
    assert held(engine, "c1") == [("work", "pat")]
    n = len(engine.events("c1"))
    engine.claim("c1:work:1", "pat")  # the holder claiming again is acknowledged
    assert len(engine.events("c1")) == n
    with pytest.raises(TaskStateError, match="claimed by pat"):
        engine.claim("c1:work:1", "pia")


def test_release_returns_the_task_and_the_hub_offers_it_again(make: Any) -> None:
    engine, _ = make(ROLES)
    engine.start_case("roles", case_id="c1")
    assert held(engine, "c1") == [("work", "sam")]
    engine.release("c1:work:1", "sam")
    assert held(engine, "c1") == [("work", "ana")]
    assert types(engine, "c1")[-2:] == ["task.released", "task.claimed"]
    assert engine.assigner.load["sam"] == 0
    assert engine.assigner.load["ana"] == 1


def test_reassign_moves_load_between_members(make: Any) -> None:
    engine, _ = make(ROLES)
    engine.start_case("roles", case_id="c1")
    engine.reassign("c1:work:1", member="ana")
    assert held(engine, "c1") == [("work", "ana")]
    assert (engine.assigner.load["sam"], engine.assigner.load["ana"]) == (0, 1)
    before = snapshot(engine, "c1")
    with pytest.raises(TaskStateError, match="not in team"):
        engine.reassign("c1:work:1", member="dee")  # dee is not in sales
    with pytest.raises(NotFound):
        engine.reassign("c1:work:1", team="nowhere")
    assert snapshot(engine, "c1") == before
    engine.reassign("c1:work:1", member="raj")  # an operator may override the role
    assert held(engine, "c1") == [("work", "raj")]


# -- completing, and what is refused ------------------------------------------------------------


def test_completing_someone_elses_task_is_refused_and_changes_nothing(make: Any) -> None:
    engine, _ = make(ROLES)
    engine.start_case("roles", case_id="c1")
    before = snapshot(engine, "c1")
    with pytest.raises(TaskStateError, match="claimed by sam"):
        engine.complete("c1:work:1", "ana", {"x": 1})
    with pytest.raises(TaskStateError):
        engine.fail("c1:work:1", "ana", "not mine")
    with pytest.raises(TaskStateError):
        engine.release("c1:work:1", "ana")
    assert snapshot(engine, "c1") == before


def test_completing_twice_same_data_is_acknowledged_different_data_conflicts(make: Any) -> None:
    engine, _ = make(SOLO)
    engine.start_case("solo", case_id="c1")
    engine.complete("c1:work:1", "dee", {"note": "done"})
    n = len(engine.events())
    assert engine.case("c1").status.value == "completed"

    engine.complete("c1:work:1", "dee", {"note": "done"})
    assert len(engine.events()) == n

    with pytest.raises(ConflictError):
        engine.complete("c1:work:1", "dee", {"note": "different"})
    assert len(engine.events()) == n
    assert engine.case("c1").data == {"note": "done"}


def test_contract_violation_leaves_the_case_unchanged(make: Any) -> None:
    engine, _ = make(CONTRACT)
    engine.start_case("contract", case_id="c1")
    before = snapshot(engine, "c1")
    with pytest.raises(ContractViolation) as info:
        engine.complete("c1:work:1", "dee", {"amount": "lots"})
    assert info.value.step == "work"
    assert any("amount" in e for e in info.value.errors)
    with pytest.raises(ContractViolation, match="missing output amount"):
        engine.complete("c1:work:1", "dee", {})
    with pytest.raises(ContractViolation):
        engine.complete("c1:work:1", "dee", {"amount": -1})
    assert snapshot(engine, "c1") == before
    assert engine.case("c1").tasks["c1:work:1"].status.value == "claimed"

    engine.complete("c1:work:1", "dee", {"amount": 12})
    assert engine.case("c1").status.value == "completed"


def test_actions_on_an_ended_case_are_refused(make: Any) -> None:
    engine, _ = make(SOLO)
    engine.start_case("solo", case_id="c1")
    engine.cancel("c1", "duplicate")
    before = snapshot(engine, "c1")
    for action in (
        lambda: engine.pause("c1"),
        lambda: engine.resume("c1"),
        lambda: engine.cancel("c1"),
        lambda: engine.complete("c1:work:1", "dee"),
        lambda: engine.claim("c1:work:1", "dee"),
    ):
        with pytest.raises(TaskStateError):
            action()
    assert snapshot(engine, "c1") == before


# -- automated steps --------------------------------------------------------------------------


def test_run_jobs_runs_registered_handlers(make: Any) -> None:
    seen: list[HandlerContext] = []

    def run(ctx: HandlerContext) -> dict[str, Any]:
        seen.append(ctx)
        return {"total": ctx.data["a"] + 1}

    engine, _ = make(AUTO, handlers={"jobs:run": run})
    engine.start_case("auto", {"a": 1}, case_id="c1")
    assert [(cid, job.task_id) for cid, job in engine.jobs] == [("c1", "c1:job:1")]
    assert task_of(engine, "c1").status == "ready"  # automated tasks are not pushed to people

    assert engine.run_jobs() == 1

    assert not engine.jobs
    (ctx,) = seen
    assert (ctx.key, ctx.case_id, ctx.task_id, ctx.step, ctx.attempt) == (
        "c1:job:1",
        "c1",
        "c1:job:1",
        "job",
        1,
    )
    assert engine.case("c1").status.value == "completed"
    assert engine.case("c1").data == {"a": 1, "total": 2}
    done = next(e for e in engine.events("c1") if e.type.value == "task.completed")
    assert (done.actor, done.data["data"]) == ("worker", {"total": 2})


def test_failing_handler_is_retried_after_its_backoff(make: Any) -> None:
    attempts: list[int] = []

    def run(ctx: HandlerContext) -> dict[str, Any]:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise RuntimeError("service down")
        return {"ok": True}

    engine, clock = make(AUTO, handlers={"jobs:run": run})
    engine.start_case("auto", case_id="c1")
    t0 = clock.now()
    engine.run_jobs()

    failed = engine.events("c1")[-1]
    assert failed.type.value == "task.failed"
    assert failed.data == {
        "error": "RuntimeError: service down",
        "attempt": 1,
        "retry_at": t0 + 300,
    }
    assert task_of(engine, "c1").status == "waiting"
    assert engine.case("c1").status.value == "running"
    assert engine.next_timer() == t0 + 300

    clock.advance(299)
    assert engine.fire_due_timers() == 0
    assert not engine.jobs
    clock.advance(1)
    assert engine.fire_due_timers() == 1
    assert task_of(engine, "c1").status == "ready"
    assert [job.attempt for _, job in engine.jobs] == [2]

    engine.run_jobs()
    assert attempts == [1, 2]
    assert engine.case("c1").status.value == "completed"
    assert engine.next_timer() is None


def test_retries_exhausted_pause_the_case(make: Any) -> None:
    def run(ctx: HandlerContext) -> dict[str, Any]:
        raise ValueError(f"attempt {ctx.attempt}")

    engine, clock = make(AUTO, handlers={"jobs:run": run})
    engine.start_case("auto", case_id="c1")
    for _ in range(3):
        engine.run_jobs()
        clock.advance(3600)
        engine.fire_due_timers()
    case = engine.case("c1")
    assert case.status.value == "paused"
    assert case.incident == {"task": "c1:job:1", "step": "job", "error": "ValueError: attempt 3"}
    assert task_of(engine, "c1").status == "failed"
    assert [
        e.data["retry_at"] is None for e in engine.events("c1") if e.type.value == "task.failed"
    ] == [
        False,
        False,
        True,
    ]


def test_non_dict_result_is_a_non_retryable_failure_and_retry_resumes(make: Any) -> None:
    results: list[Any] = ["not a dict", {"fixed": True}]
    engine, _ = make(AUTO, handlers={"jobs:run": lambda ctx: results.pop(0)})
    engine.start_case("auto", case_id="c1")
    engine.run_jobs()

    case = engine.case("c1")
    assert case.status.value == "paused"
    assert case.incident is not None
    assert case.incident["task"] == "c1:job:1"
    assert "returned str, expected a dict" in case.incident["error"]
    assert task_of(engine, "c1").status == "failed"
    assert engine.next_timer() is None  # not retried by itself
    assert types(engine, "c1")[-2:] == ["task.failed", "case.paused"]
    (row,) = engine.cases(status="paused")
    assert row.incident is not None

    engine.retry("c1:job:1")
    assert engine.case("c1").status.value == "running"
    assert [job.attempt for _, job in engine.jobs] == [2]
    engine.run_jobs()
    assert engine.case("c1").status.value == "completed"
    assert engine.case("c1").data == {"fixed": True}
    with pytest.raises(TaskStateError):
        engine.retry("c1:job:1")


def test_handler_that_cannot_be_imported_raises_an_incident(make: Any) -> None:
    d = proc(
        "missing",
        """
        - {id: job, type: automated, team: it, handler: no_such_module_accord_test:fn, next: done}
        - {id: done, type: end}
        """,
    )
    engine, _ = make(d)
    engine.start_case("missing", case_id="c1")
    engine.run_jobs()
    case = engine.case("c1")
    assert case.status.value == "paused"
    assert case.incident is not None
    assert "cannot import" in case.incident["error"]


def test_handler_output_violating_the_contract_fails_the_task(make: Any) -> None:
    d = proc(
        "badout",
        """
        - id: job
          type: automated
          team: it
          handler: jobs:run
          outputs: [account_id]
          retry: 3
          next: done
        - {id: done, type: end}
        """,
    )
    engine, _ = make(d, handlers={"jobs:run": lambda ctx: {"wrong": 1}})
    engine.start_case("badout", case_id="c1")
    engine.run_jobs()
    case = engine.case("c1")
    assert case.status.value == "paused"  # a contract violation is not worth retrying
    assert case.incident is not None
    assert "missing output account_id" in case.incident["error"]


def test_hanging_handler_becomes_a_failure_not_a_hang(make: Any) -> None:
    release = threading.Event()

    def run(ctx: HandlerContext) -> dict[str, Any]:
        if ctx.case_id == "slow":
            release.wait(10)
        return {"done": True}

    engine, clock = make(AUTO, handlers={"jobs:run": run})
    engine.start_case("auto", case_id="slow")
    engine.start_case("auto", case_id="fast")
    try:
        began = time.monotonic()
        assert engine.run_jobs(timeout=0.2) == 2
        assert time.monotonic() - began < 3
    finally:
        release.set()

    failed = engine.events("slow")[-1]
    assert failed.type.value == "task.failed"
    assert failed.data["error"] == "handler jobs:run did not finish within 0.2s"
    assert failed.data["retry_at"] == clock.now() + 300  # a timeout may be retried
    assert engine.case("fast").status.value == "completed"

    clock.advance(300)
    engine.fire_due_timers()
    engine.run_jobs(timeout=5)  # fresh handler threads after the hung one was abandoned
    assert engine.case("slow").status.value == "completed"


def test_handler_effects_are_recorded_once_per_key(make: Any) -> None:
    recorded: list[bool] = []

    def run(ctx: HandlerContext) -> dict[str, Any]:
        recorded.append(ctx.record_effect("mail.sent", f"mail-{ctx.attempt}"))
        if ctx.attempt == 1:
            raise ConnectionError("crashed after sending")
        return {"sent": True}

    engine, clock = make(AUTO, handlers={"jobs:run": run})
    engine.start_case("auto", case_id="c1")
    engine.run_jobs()
    clock.advance(300)
    engine.fire_due_timers()
    engine.run_jobs()

    assert recorded == [True, False]
    assert engine.store.effects("mail.sent") == [("c1:job:1", "mail.sent", "mail-1")]
    assert engine.case("c1").status.value == "completed"


def test_call_handler_twice_with_one_job_records_one_effect(make: Any) -> None:
    def run(ctx: HandlerContext) -> dict[str, Any]:
        return {"first": ctx.record_effect("accounts.created", "acct-" + ctx.key)}

    engine, _ = make(AUTO, handlers={"jobs:run": run})
    engine.start_case("auto", case_id="c1")
    case_id, job = engine.take_job()
    first = engine.call_handler(case_id, job)
    second = engine.call_handler(case_id, job)
    assert (first.data, second.data) == ({"first": True}, {"first": False})
    engine.apply_results([first])
    engine.apply_results([second])  # a stale duplicate result is ignored
    assert engine.case("c1").data == {"first": True}
    assert types(engine, "c1").count("task.completed") == 1


def test_onboarding_example_handler_runs_through_its_module(make: Any) -> None:
    root = Path(__file__).resolve().parents[2]
    engine, _ = make(root / "examples" / "client-onboarding.yaml")
    cid = engine.start_case("client-onboarding", case_id="c1")
    request = task_of(engine, cid, "claimed")
    engine.complete(request.id, request.assignee, {"client": "Acme", "amount": 10, "risk": "low"})
    review = task_of(engine, cid, "claimed")
    assert review.step == "review"
    engine.complete(review.id, review.assignee, {"outcome": "approve"})
    assert engine.run_jobs() == 1
    assert engine.case(cid).data["account_id"] == "acct-c1-accounts-1"
    assert engine.store.effects("accounts.created") == [
        ("c1:accounts:1", "accounts.created", "acct-c1-accounts-1")
    ]


# -- SLAs ---------------------------------------------------------------------------------------


def test_sla_breach_escalates_an_unclaimed_task_to_a_team(make: Any) -> None:
    engine, clock = make(SLA_TEAM)
    engine.start_case("slateam", case_id="c1")  # dee takes it
    engine.start_case("slateam", case_id="c2")  # waits: dee is at her WIP limit
    clock.advance(3599)
    assert engine.fire_due_timers() == 0
    clock.advance(1)
    assert engine.fire_due_timers() == 2

    # work in progress is not taken away: the target is only told
    assert types(engine, "c1")[-2:] == ["sla.breached", "task.escalated"]
    assert engine.events("c1")[-1].data == {
        "to": "leads",
        "from": "dee",
        "from_team": "desk",
        "notify": True,
    }
    assert held(engine, "c1") == [("work", "dee")]
    # the waiting task moves to the leads team and the hub pushes it to lena
    assert types(engine, "c2")[-3:] == ["sla.breached", "task.escalated", "task.claimed"]
    assert held(engine, "c2") == [("work", "lena")]
    assert task_of(engine, "c2").team == "leads"
    assert engine.next_timer() is None


def test_sla_breach_escalates_an_unclaimed_task_to_a_member(make: Any) -> None:
    engine, clock = make(SLA_MEMBER)
    engine.start_case("slamember", case_id="c1")
    engine.start_case("slamember", case_id="c2")
    clock.advance(3600)
    engine.fire_due_timers()
    assert held(engine, "c2") == [("work", "lena")]
    assert engine.assigner.load["lena"] == 1
    engine.complete("c2:work:1", "lena")
    assert engine.case("c2").status.value == "completed"


def test_completing_before_the_sla_cancels_its_timer(make: Any) -> None:
    engine, clock = make(SLA_TEAM)
    engine.start_case("slateam", case_id="c1")
    engine.complete("c1:work:1", "dee")
    assert engine.next_timer() is None
    clock.advance(7200)
    assert engine.fire_due_timers() == 0
    assert "sla.breached" not in types(engine, "c1")


# -- operator actions ---------------------------------------------------------------------------


def test_pause_and_resume(make: Any) -> None:
    engine, _ = make(SOLO)
    engine.start_case("solo", case_id="c1")
    engine.pause("c1", "waiting for legal")
    assert engine.case("c1").status.value == "paused"
    assert engine.events("c1")[-1].data == {"reason": "waiting for legal"}
    n = len(engine.events("c1"))
    engine.pause("c1")  # pausing a paused case is acknowledged
    assert len(engine.events("c1")) == n

    with pytest.raises(TaskStateError, match="paused"):
        engine.complete("c1:work:1", "dee")
    assert held(engine, "c1") == [("work", "dee")]  # open tasks stay as they are

    engine.resume("c1", {"legal": "ok"})
    assert engine.case("c1").status.value == "running"
    assert engine.case("c1").data == {"legal": "ok"}
    with pytest.raises(TaskStateError, match="not paused"):
        engine.resume("c1")
    engine.complete("c1:work:1", "dee")
    assert engine.case("c1").status.value == "completed"


def test_sla_falling_due_while_paused_fires_on_resume(make: Any) -> None:
    engine, clock = make(SLA_TEAM)
    engine.start_case("slateam", case_id="c1")
    engine.pause("c1")
    clock.advance(7200)
    assert engine.fire_due_timers() == 1
    assert "sla.breached" not in types(engine, "c1")
    engine.resume("c1")
    assert "sla.breached" in types(engine, "c1")


def test_cancel_withdraws_tasks_and_frees_the_member(make: Any) -> None:
    engine, _ = make(SLA_TEAM)
    engine.start_case("slateam", case_id="c1")
    engine.start_case("slateam", case_id="c2")
    engine.cancel("c1", "client withdrew", actor="operator:olivia")

    assert engine.case("c1").status.value == "cancelled"
    assert types(engine, "c1")[-2:] == ["task.cancelled", "case.cancelled"]
    withdrawn, ended = engine.events("c1")[-2:]
    assert withdrawn.actor == "operator:olivia"
    assert ended.data == {"reason": "client withdrew"}
    assert task_of(engine, "c1").status == "cancelled"
    assert held(engine, "c2") == [("work", "dee")]
    assert engine.assigner.load["dee"] == 1
    assert [t[1] for t in engine.store.due_timers(float("inf"))] == ["c2"]


def test_reroute_withdraws_open_tasks_and_continues_at_the_step(make: Any) -> None:
    engine, _ = make(TWO)
    engine.start_case("two", case_id="c1")
    assert held(engine, "c1") == [("first", "sam")]
    engine.reroute("c1", "second", {"fixed": 1})

    assert engine.case("c1").data == {"fixed": 1}
    rerouted = next(e for e in engine.events("c1") if e.type.value == "case.rerouted")
    assert rerouted.data == {"from": ["first"], "to": "second", "data": {"fixed": 1}}
    assert held(engine, "c1") == [("second", "dee")]
    assert engine.assigner.load["sam"] == 0
    with pytest.raises(NotFound):
        engine.reroute("c1", "nowhere")


# -- hub follow-ups never refuse the action that triggered them -------------------------------


def test_paused_case_in_the_backlog_does_not_refuse_another_completion(make: Any) -> None:
    engine, _ = make(SOLO)
    engine.start_case("solo", case_id="c1")
    engine.start_case("solo", case_id="c2")  # deferred: dee is busy
    engine.pause("c2")

    engine.complete("c1:work:1", "dee")  # the refill meets a paused case: must not refuse this

    assert engine.case("c1").status.value == "completed"
    assert task_of(engine, "c2").status == "ready"
    assert "task.claimed" not in types(engine, "c2")
    assert engine.assigner.load["dee"] == 0


def test_reassigning_a_paused_cases_task_to_a_team_is_not_refused(make: Any) -> None:
    engine, _ = make(SOLO)
    engine.start_case("solo", case_id="c1")
    engine.pause("c1")
    engine.reassign("c1:work:1", team="leads")  # the hub cannot claim for a paused case
    row = task_of(engine, "c1")
    assert (row.status, row.team, row.assignee) == ("ready", "leads", None)
    assert engine.assigner.load["dee"] == 0


def test_resumed_case_gets_its_deferred_task_assigned(make: Any) -> None:
    """Regression: a task deferred while its case was paused was not offered on resume."""
    engine, _ = make(SOLO)
    engine.start_case("solo", case_id="c1")
    engine.start_case("solo", case_id="c2")
    engine.pause("c2")
    engine.complete("c1:work:1", "dee")  # dee is idle now
    engine.resume("c2")
    assert held(engine, "c2") == [("work", "dee")]


def test_a_job_whose_case_was_paused_does_not_break_run_jobs(make: Any) -> None:
    """Regression: one paused case's refusal aborted the whole round of results."""
    engine, _ = make(FLOW, handlers={"jobs:run": lambda ctx: {"ok": True}})
    engine.start_case("flow", case_id="a")
    engine.start_case("flow", case_id="b")
    engine.pause("a")  # while a's handler is queued

    assert engine.run_jobs() == 2  # a's result cannot apply now; b's must not be lost with it

    assert engine.case("b").tasks["b:job:1"].status.value == "completed"
    engine.resume("a")
    engine.run_jobs()
    assert engine.case("a").tasks["a:job:1"].status.value == "completed"


def test_a_failing_listener_does_not_corrupt_member_load(make: Any) -> None:
    """Regression: a listener error after the commit rolled back the assigner's load."""
    engine, _ = make(SOLO)
    calls: list[int] = []

    def listener(events: list[Any]) -> None:
        calls.append(len(events))
        if len(calls) == 1:
            raise RuntimeError("dashboard down")

    heard: list[int] = []
    engine.listeners.append(listener)
    engine.listeners.append(lambda events: heard.append(len(events)))
    engine.start_case("solo", case_id="c1")  # the listener's error is logged, not raised
    assert heard == [3]  # and the other listeners still hear
    assert held(engine, "c1") == [("work", "dee")]  # committed despite the listener
    engine.start_case("solo", case_id="c2")
    assert task_of(engine, "c2").status == "ready"  # dee is at her WIP limit of 1


# -- listeners ----------------------------------------------------------------------------------


def test_listeners_see_each_committed_unit_once(make: Any) -> None:
    engine, _ = make(SOLO)
    batches: list[list[str]] = []
    engine.listeners.append(lambda evs: batches.append([e.type.value for e in evs]))
    engine.start_case("solo", case_id="c1")
    with pytest.raises(TaskStateError):
        engine.complete("c1:work:1", "intruder")
    engine.complete("c1:work:1", "dee")
    assert batches == [
        ["case.started", "task.ready", "task.claimed"],
        ["task.completed", "case.completed"],
    ]


# -- restart ------------------------------------------------------------------------------------


def test_restart_recovers_open_cases_loads_backlog_and_jobs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/engine.db"
    ran: list[str] = []

    def run(ctx: HandlerContext) -> dict[str, Any]:
        ran.append(ctx.task_id)
        return {"ok": True}

    def engine_at(clock: VirtualClock) -> Engine:
        registry = HandlerRegistry()
        registry.register("jobs:run", run)
        return Engine(open_store(url), [FLOW, SOLO], clock=clock, handlers=registry)

    clock = VirtualClock(EPOCH)
    first = engine_at(clock)
    try:
        first.start_case("flow", case_id="f1")  # automated step first: a queued job
        first.start_case("solo", case_id="s1")  # dee takes it
        first.start_case("solo", case_id="s2")  # backlog: dee is at her limit
        assert [cid for cid, _ in first.jobs] == ["f1"]
        assert held(first, "s1") == [("work", "dee")]
    finally:
        first.close()  # the queued job and the in-memory backlog are lost with the process

    clock.advance(60)
    second = engine_at(clock)
    try:
        assert second.assigner.load["dee"] == 1
        assert [(cid, job.task_id) for cid, job in second.jobs] == [("f1", "f1:job:1")]
        assert second.case("s1").status.value == "running"

        second.start_case("solo", case_id="s3")
        assert task_of(second, "s3").status == "ready"  # WIP still respected after restart

        assert second.run_jobs() == 1
        assert ran == ["f1:job:1"]
        assert task_of(second, "f1", "ready").step == "work"  # dee is still busy

        second.complete("s1:work:1", "dee")
        assert held(second, "s2") == [("work", "dee")]  # the rebuilt backlog, oldest first
        second.complete("s2:work:1", "dee")
        assert held(second, "s3") == [("work", "dee")]
        second.complete("s3:work:1", "dee")
        assert held(second, "f1") == [("work", "dee")]
        assert [e.seq for e in second.events("s1")] == list(range(1, len(second.events("s1")) + 1))
    finally:
        second.close()


def test_pause_and_resume_do_not_queue_a_handler_twice(make: Any) -> None:
    """Regression: a resume used to queue the same (task, attempt) a second time."""
    calls: list[int] = []

    def run(ctx: HandlerContext) -> dict[str, Any]:
        calls.append(ctx.attempt)
        return {"ok": True}

    engine, _ = make(AUTO, handlers={"jobs:run": run})
    engine.start_case("auto", case_id="c1")
    engine.pause("c1")
    engine.resume("c1")
    engine.run_jobs()
    assert engine.case("c1").status.value == "completed"
    assert calls == [1]


def test_the_state_returned_by_case_is_the_callers_to_change(make: Any) -> None:
    """Regression: case() used to return the engine's cached state object itself."""
    engine, _ = make(SOLO)
    engine.start_case("solo", {"amount": 5}, case_id="c1")
    seen = engine.case("c1")
    seen.data["amount"] = 999_999
    seen.tasks.clear()
    assert engine.case("c1").data == {"amount": 5}
    engine.complete("c1:work:1", "dee")  # the task is still there
    assert engine.store.load_case("c1")[0].data == {"amount": 5}  # type: ignore[index]


def test_deploy_records_definition_sources(make: Any) -> None:
    root = Path(__file__).resolve().parents[2]
    path = root / "examples" / "client-onboarding.yaml"
    engine, _ = make(SOLO, path)
    stored = {key: (name, source) for key, name, source in engine.store.definitions()}
    assert stored["client-onboarding@1"] == ("Client onboarding", path.read_text(encoding="utf-8"))
    assert stored["solo@1"] == ("solo", "")  # loaded from a string: no file to keep


def test_restart_keeps_retry_timers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/engine.db"
    attempts: list[int] = []

    def run(ctx: HandlerContext) -> dict[str, Any]:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise TimeoutError("upstream slow")
        return {"ok": True}

    def engine_at(clock: VirtualClock) -> Engine:
        registry = HandlerRegistry()
        registry.register("jobs:run", run)
        return Engine(open_store(url), [AUTO], clock=clock, handlers=registry)

    clock = VirtualClock(EPOCH)
    first = engine_at(clock)
    try:
        first.start_case("auto", case_id="c1")
        first.run_jobs()
        assert task_of(first, "c1").status == "waiting"
    finally:
        first.close()

    second = engine_at(clock)
    try:
        assert not second.jobs  # a waiting task is not requeued: its timer brings it back
        assert second.next_timer() == EPOCH + 300
        clock.advance(300)
        assert second.fire_due_timers() == 1
        second.run_jobs()
        assert attempts == [1, 2]
        assert second.case("c1").status.value == "completed"
    finally:
        second.close()


def test_concurrent_callers_are_serialised(make: Any) -> None:
    engine, _ = make(ROLES)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(20):
                cid = engine.start_case("roles", case_id=f"t{n}-{i}")
                (row,) = engine.tasks(status="claimed", case_id=cid)
                engine.complete(row.id, row.assignee, {"n": n})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert engine.store.count_cases() == {"completed": 120}
    assert engine.assigner.load["sam"] == engine.assigner.load["ana"] == 0
    assert len(engine.events()) == 120 * 5
