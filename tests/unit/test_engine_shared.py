"""Several engines on one database (``Engine(..., shared=True)``): each test runs on a SQLite file
(two connections) and on PostgreSQL (a fresh schema per test; skipped locally when the server
is down, a failure under CI).

Every engine here is a separate "replica" with its own store connection; what one commits the
other must see, and work handed out by leases must never be done twice.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from accord import Engine, HandlerContext, HandlerRegistry, VirtualClock
from accord.clock import EPOCH
from accord.model import ProcessDefinition, loads
from accord.stores import open_store
from racekit import count_conflicts, race

DEF = loads(
    """
process: shared
teams:
  desk:
    wip_limit: 1
    members: [dee, dan]
  it:
    members: [ivan]
steps:
  - id: job
    type: automated
    team: it
    handler: t:job
    next: work
  - id: work
    team: desk
    sla: PT1H
    next: done
  - id: done
    type: end
""",
    "shared.yaml",
)
HUMAN = loads(
    """
process: human
teams:
  desk:
    wip_limit: 1
    members: [dee, dan]
steps:
  - id: work
    team: desk
    sla: PT1H
    next: done
  - id: done
    type: end
""",
    "human.yaml",
)


@pytest.fixture
def url(shared_store_url: str) -> str:
    return shared_store_url  # (tests/conftest.py: SQLite, and PostgreSQL when it is up)


class Replicas:
    """Engines sharing one store URL and one virtual clock; handler calls are counted."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.clock = VirtualClock(EPOCH)
        self.calls: Counter[str] = Counter()
        self.engines: list[Engine] = []
        self._lock = threading.Lock()

    def handler(self, ctx: HandlerContext) -> dict[str, Any]:
        with self._lock:
            self.calls[ctx.key] += 1
        ctx.record_effect("job.done", ctx.key)
        return {}

    def engine(self, *defs: ProcessDefinition, **kw: Any) -> Engine:
        registry = HandlerRegistry()
        registry.register("t:job", self.handler)
        e = Engine(open_store(self.url), defs or (DEF, HUMAN), clock=self.clock,
                   handlers=registry, shared=True, **kw)  # fmt: skip
        self.engines.append(e)
        return e

    def close(self) -> None:
        for e in self.engines:
            e.close()


@pytest.fixture
def replicas(url: str) -> Iterator[Replicas]:
    r = Replicas(url)
    yield r
    r.close()


def completed_per_task(engine: Engine) -> Counter[str]:
    return Counter(e.task for e in engine.events() if e.type.value == "task.completed" and e.task)


def test_what_one_replica_commits_the_other_sees(replicas: Replicas) -> None:
    a, b = replicas.engine(), replicas.engine()
    cid = a.start_case("human", case_id="c1")
    assert b.case(cid).tasks["c1:work:1"].assignee == "dee"
    b.complete("c1:work:1", "dee", {})
    # a would have answered from its cache in single-engine mode; shared, it reads the store
    assert a.case(cid).status.value == "completed"
    a.start_case("human", case_id="c2")
    assert [e.type.value for e in b.events("c2")][:2] == ["case.started", "task.ready"]


def test_a_stale_replica_retries_from_fresh_state(replicas: Replicas) -> None:
    a, b = replicas.engine(), replicas.engine()
    a.start_case("human", case_id="c1")
    a.case("c1")
    b.reassign("c1:work:1", member="dan")
    assert a.case("c1").tasks["c1:work:1"].assignee == "dan"
    a.complete("c1:work:1", "dan", {"x": 1})
    assert a.case("c1").status.value == "completed"


def test_push_assignment_counts_every_replicas_claims(replicas: Replicas) -> None:
    a, b = replicas.engine(), replicas.engine()
    a.start_case("human", case_id="c1")  # -> dee
    b.start_case("human", case_id="c2")  # b must see dee is busy -> dan
    a.start_case("human", case_id="c3")  # both busy: waits in the team queue
    rows = {r.case_id: r.assignee for r in a.tasks(status="claimed")}
    assert rows == {"c1": "dee", "c2": "dan"}
    # a member freed on one replica is refilled from the table, not from a memory backlog
    b.complete("c1:work:1", "dee", {})
    assert a.case("c3").tasks["c3:work:1"].assignee == "dee"


def test_assign_backlog_sweeps_waiting_tasks(replicas: Replicas, monkeypatch: Any) -> None:
    a = replicas.engine()
    # offers that found nobody (say the replica that made them died before it could assign)
    monkeypatch.setattr(a.assigner, "choose", lambda *args: None)
    for i in range(3):
        a.start_case("human", case_id=f"c{i}")
    monkeypatch.undo()
    assert a.tasks(status="claimed") == []
    b = replicas.engine()
    assert b.assign_backlog() == 2  # two members, WIP limit 1 each
    assert sorted(r.assignee or "" for r in a.tasks(status="claimed")) == ["dan", "dee"]
    assert b.assign_backlog() == 0


def test_jobs_leased_by_one_replica_are_not_run_by_another(replicas: Replicas) -> None:
    a, b = replicas.engine(), replicas.engine()
    for i in range(40):
        a.start_case("shared", case_id=f"j{i:02d}")
    leased = a.lease_jobs(25)
    assert len(leased) == 25
    assert b.run_jobs(max_batch=10) == 15  # only the rest
    a.apply_results(a.call_handlers(leased))
    assert sum(replicas.calls.values()) == 40 and max(replicas.calls.values()) == 1
    assert len(completed_per_task(a)) == 40


def test_a_dead_replicas_leases_run_out_and_another_takes_over(replicas: Replicas) -> None:
    a, b = replicas.engine(lease_s=30), replicas.engine(lease_s=30)
    a.start_case("shared", case_id="j1")
    assert len(a.lease_jobs()) == 1  # ... and a dies before running it
    assert b.run_jobs() == 0
    replicas.clock.advance(31)
    assert b.run_jobs() == 1
    assert b.case("j1").tasks["j1:job:1"].status.value == "completed"


def test_concurrent_replicas_run_every_job_once(replicas: Replicas) -> None:
    engines = [replicas.engine() for _ in range(3)]
    for i in range(90):
        engines[0].start_case("shared", case_id=f"j{i:02d}")
    barrier = threading.Barrier(3)

    def drive(e: Engine) -> None:
        barrier.wait()
        while e.run_jobs(max_batch=7, rounds=1):
            pass

    threads = [threading.Thread(target=drive, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(replicas.calls) == 90 and max(replicas.calls.values()) == 1
    per_task = completed_per_task(engines[0])
    assert len(per_task) == 90 and max(per_task.values()) == 1
    effects = [k for k, _, _ in engines[0].store.effects("job.done")]
    assert sorted(effects) == sorted(replicas.calls)


def test_timers_fire_once_across_replicas(replicas: Replicas) -> None:
    engines = [replicas.engine() for _ in range(3)]
    for i in range(30):
        engines[i % 3].start_case("human", case_id=f"t{i:02d}")
    replicas.clock.advance(3601)
    barrier = threading.Barrier(3)
    fired: list[int] = []

    def drive(e: Engine) -> None:
        barrier.wait()
        fired.append(sum(e.fire_due_timers(limit=4) for _ in range(20)))

    threads = [threading.Thread(target=drive, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(fired) == 30
    breaches = Counter(e.case for e in engines[0].events() if e.type.value == "sla.breached")
    assert len(breaches) == 30 and max(breaches.values()) == 1


def test_racing_completions_have_one_winner(replicas: Replicas) -> None:
    a, b = replicas.engine(), replicas.engine()
    conflicts = Counter[str]()
    for e in (a, b):
        count_conflicts(e, conflicts, "conflicts")
    for i in range(20):
        cid = a.start_case("human", case_id=f"r{i:02d}")
        tid = f"{cid}:work:1"
        who = a.case(cid).tasks[tid].assignee
        outcomes = race([lambda e=e, n=n, t=tid, w=who: e.complete(t, w, {"by": n})
                          for n, e in enumerate((a, b))])  # fmt: skip
        assert sorted(outcomes) == ["ConflictError", "ok"], outcomes
        assert completed_per_task(a)[tid] == 1


def test_a_store_outage_under_a_handler_does_not_fail_the_task(
    replicas: Replicas, monkeypatch: Any
) -> None:
    """ctx.record_effect failing because the database is restarting says nothing about the
    work: the task is not failed (no retry spent, no incident); its job runs again later."""
    from accord.stores.base import StoreUnavailable

    a = replicas.engine(lease_s=10)
    a.start_case("shared", case_id="j1")

    def down(*args: Any) -> bool:
        raise StoreUnavailable("PostgreSQL is restarting")

    monkeypatch.setattr(a.store, "record_effect", down)
    (result,) = a.call_handlers(a.lease_jobs(), timeout=5)
    assert result.transient and result.error
    a.apply_results([result])
    task = a.case("j1").tasks["j1:job:1"]
    assert (task.status.value, task.attempt) == ("ready", 1)
    monkeypatch.undo()
    assert a.held_leases() == []  # given back at once: no need to wait for the lease
    assert a.run_jobs() == 1
    assert a.case("j1").tasks["j1:job:1"].status.value == "completed"


def test_work_held_by_a_failed_unit_is_given_back(replicas: Replicas, monkeypatch: Any) -> None:
    """A round whose commit fails (the database went away mid-commit) must not keep its leases
    alive: the heartbeat renews only what a replica is still working on."""
    from accord.stores.base import StoreUnavailable

    a, b = replicas.engine(lease_s=300), replicas.engine(lease_s=300)
    a.start_case("shared", case_id="j1")
    a.start_case("human", case_id="h1")
    replicas.clock.advance(3601)  # the SLA timer of h1 is due

    def down(*args: Any) -> list[int]:
        raise StoreUnavailable("connection lost during COMMIT")

    monkeypatch.setattr(a.store, "commit", down)
    with pytest.raises(StoreUnavailable):
        a.run_jobs()
    with pytest.raises(StoreUnavailable):
        a.fire_due_timers()
    assert a.held_leases() == []
    monkeypatch.undo()
    assert b.run_jobs() == 1
    assert b.fire_due_timers() == 1
