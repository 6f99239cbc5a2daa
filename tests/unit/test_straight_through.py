"""Straight-through processing: an inline handler's step starts and ends in the unit of work that
made its task ready, in one commit; every other handler still waits for that commit and runs
from the queue. Failures, retries, long chains and store trouble keep their usual meaning."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from accord import Engine, HandlerContext, HandlerRegistry, VirtualClock
from accord.central.work import STRAIGHT_THROUGH_ROUNDS
from accord.handlers import inline
from accord.model import ProcessDefinition, loads
from accord.stores import open_store
from accord.stores.base import StoreUnavailable


def chain(name: str, handlers: list[str], extra: str = "") -> ProcessDefinition:
    """Automated steps s0, s1, ... in a row, each with the handler at its index."""
    steps = []
    for i, h in enumerate(handlers):
        nxt = f"s{i + 1}" if i + 1 < len(handlers) else "done"
        steps.append(
            f"- id: s{i}\n  type: automated\n  team: it\n  handler: '{h}'\n{extra}  next: {nxt}"
        )
    steps.append("- id: done\n  type: end")
    body = textwrap.indent("\n".join(steps), "  ")
    return loads(f"process: {name}\nteams: {{it: {{}}}}\nsteps:\n{body}\n", f"{name}.yaml")


def engine_for(d: ProcessDefinition, registry: HandlerRegistry) -> tuple[Engine, list[int]]:
    """An engine on an in-memory store; the list counts its store's commits."""
    store = open_store("memory://")
    commits = [0]
    commit = store.commit

    def counted(*args: Any) -> Any:
        commits[0] += 1
        return commit(*args)

    store.commit = counted  # type: ignore[method-assign]
    return Engine(store, [d], clock=VirtualClock(), handlers=registry), commits


def types(engine: Engine, case_id: str) -> list[str]:
    return [e.type.value for e in engine.events(case_id)]


def test_a_chain_of_inline_steps_runs_in_the_commit_that_starts_the_case() -> None:
    seen: list[tuple[str, int]] = []

    @inline
    def add(ctx: HandlerContext) -> dict[str, Any]:
        seen.append((ctx.task_id, ctx.attempt))
        return {"n": ctx.data.get("n", 0) + 1}

    registry = HandlerRegistry()
    registry.register("t:add", add)
    engine, commits = engine_for(chain("st", ["t:add"] * 3), registry)
    engine.start_case("st", case_id="c1")
    assert commits[0] == 1 and not engine.jobs
    assert engine.case("c1").status.value == "completed"
    assert engine.case("c1").data == {"n": 3}
    assert seen == [("c1:s0:1", 1), ("c1:s1:1", 1), ("c1:s2:1", 1)]
    # the log is the one the queued path writes: each task ready, then completed by the worker
    assert types(engine, "c1") == ["case.started"] + ["task.ready", "task.completed"] * 3 + [
        "case.completed"
    ]
    done = [e for e in engine.events("c1") if e.type.value == "task.completed"]
    assert {e.actor for e in done} == {"worker"}
    engine.close()


def test_other_handlers_still_wait_for_the_commit_and_the_queue() -> None:
    registry = HandlerRegistry()
    registry.register("t:fast", lambda ctx: {"fast": True}, inline=True)
    registry.register("t:slow", lambda ctx: {"slow": True})
    engine, commits = engine_for(chain("mix", ["t:fast", "t:slow", "t:fast"]), registry)
    engine.start_case("mix", case_id="c1")
    # s0 ran straight through; s1 is queued behind the commit, as every pooled handler is
    assert commits[0] == 1
    assert [job.task_id for _, job in engine.jobs] == ["c1:s1:1"]
    assert engine.case("c1").tasks["c1:s0:1"].status.value == "completed"
    assert engine.run_jobs() == 1
    # s1's completion made s2 ready: it ran in that same commit
    assert commits[0] == 2 and not engine.jobs
    assert engine.case("c1").status.value == "completed"
    assert engine.case("c1").data == {"fast": True, "slow": True}
    engine.close()


def test_a_failing_inline_handler_fails_its_task_in_the_same_commit_and_retries() -> None:
    calls: list[int] = []

    def flaky(ctx: HandlerContext) -> dict[str, Any]:
        calls.append(ctx.attempt)
        if ctx.attempt == 1:
            raise RuntimeError("not yet")
        return {}

    registry = HandlerRegistry()
    registry.register("t:flaky", flaky, inline=True)
    d = chain("flaky", ["t:flaky"], extra="  retry: {max_attempts: 2, backoff: PT1M}\n")
    engine, commits = engine_for(d, registry)
    engine.start_case("flaky", case_id="c1")
    assert commits[0] == 1
    assert types(engine, "c1")[-1] == "task.failed"
    assert engine.case("c1").tasks["c1:s0:1"].status.value == "waiting"
    assert isinstance(engine.clock, VirtualClock)
    engine.clock.advance(60)
    # the retry timer readies the task again; its handler runs in the timer's unit
    assert engine.fire_due_timers() == 1
    assert calls == [1, 2]
    assert engine.case("c1").status.value == "completed"
    engine.close()


def test_a_chain_longer_than_one_unit_takes_goes_on_from_the_queue() -> None:
    registry = HandlerRegistry()
    registry.register("t:noop", lambda ctx: {}, inline=True)
    n = STRAIGHT_THROUGH_ROUNDS + 5
    engine, commits = engine_for(chain("long", ["t:noop"] * n), registry)
    engine.start_case("long", case_id="c1")
    # one unit ran STRAIGHT_THROUGH_ROUNDS steps; the next step waits in the queue
    assert commits[0] == 1
    assert [job.step for _, job in engine.jobs] == [f"s{STRAIGHT_THROUGH_ROUNDS}"]
    assert engine.run_jobs() == 1
    assert commits[0] == 2
    assert engine.case("c1").status.value == "completed"
    engine.close()


def test_store_trouble_under_an_inline_handler_queues_its_job_instead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ctx.record_effect failing because the store is down says nothing about the work: the
    task stays ready and its job is queued, as on the queued path."""

    calls: list[int] = []

    def effect(ctx: HandlerContext) -> dict[str, Any]:
        calls.append(ctx.attempt)
        ctx.record_effect("mail.sent", ctx.key)
        return {}

    registry = HandlerRegistry()
    registry.register("t:effect", effect, inline=True)
    engine, _ = engine_for(chain("fx", ["t:effect"]), registry)

    def down(*args: Any) -> bool:
        raise StoreUnavailable("the database is restarting")

    monkeypatch.setattr(engine.store, "record_effect", down)
    engine.start_case("fx", case_id="c1")
    task = engine.case("c1").tasks["c1:s0:1"]
    assert (task.status.value, task.attempt) == ("ready", 1)
    assert [job.task_id for _, job in engine.jobs] == ["c1:s0:1"]
    assert calls == [1]  # run once in that unit, not again and again
    monkeypatch.undo()
    assert engine.run_jobs() == 1
    assert engine.case("c1").status.value == "completed"
    engine.close()


def test_a_handler_module_can_mark_its_functions_inline(tmp_path: Path) -> None:
    (tmp_path / "st_marked.py").write_text(
        "from accord.handlers import inline\n\n"
        "@inline\ndef quick(ctx):\n    return {'quick': True}\n\n"
        "def plain(ctx):\n    return {'plain': True}\n"
    )
    registry = HandlerRegistry([tmp_path])
    assert registry.inline("st_marked:quick")
    assert not registry.inline("st_marked:plain")
    assert not registry.inline("st_missing:fn")  # cannot be imported: not inline
    engine, commits = engine_for(chain("marked", ["st_marked:quick", "st_marked:plain"]), registry)
    engine.start_case("marked", case_id="c1")
    assert commits[0] == 1 and [job.task_id for _, job in engine.jobs] == ["c1:s1:1"]
    assert engine.case("c1").data == {"quick": True}
    engine.close()


def test_a_handler_module_that_fails_to_import_fails_its_task_not_the_step_before(
    tmp_path: Path,
) -> None:
    """Asking whether a handler is inline imports its module; a module that raises on import
    (not only one that is missing) must not undo the unit that made the task ready."""
    (tmp_path / "st_broken.py").write_text("raise RuntimeError('config missing')\n")
    registry = HandlerRegistry([tmp_path])
    registry.register("t:first", lambda ctx: {"first": True}, inline=True)
    d = chain("broken", ["t:first", "st_broken:run"], extra="  retry: {max_attempts: 1}\n")
    engine, _ = engine_for(d, registry)
    engine.start_case("broken", case_id="c1")
    assert engine.case("c1").tasks["c1:s0:1"].status.value == "completed"
    assert [job.task_id for _, job in engine.jobs] == ["c1:s1:1"]
    engine.run_jobs()
    case = engine.case("c1")
    assert case.status.value == "paused" and case.incident is not None
    assert "RuntimeError: config missing" in case.incident["error"]
    engine.close()
