"""The replica loop behind `accord engine` / `accord worker`, its heartbeat and health endpoint,
on a SQLite file (the PostgreSQL runs are in tests/chaos)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from accord import Engine, HandlerContext, HandlerRegistry
from accord.central.health import replica_report, serve_health
from accord.central.replica import Replica, ReplicaConfig
from accord.model import loads
from accord.stores import open_store

DEF = loads(
    """
process: rep
teams:
  it:
    members: [ivan]
  ops:
    members: [olga]
steps:
  - id: build
    type: automated
    team: it
    handler: t:build
    next: pause
  - id: pause
    type: timer
    wait: PT0.2S
    next: ship
  - id: ship
    type: automated
    team: ops
    handler: t:ship
    next: done
  - id: done
    type: end
""",
    "rep.yaml",
)


def engine(path: Path, calls: list[str] | None = None, **kw: Any) -> Engine:
    registry = HandlerRegistry()

    def handler(ctx: HandlerContext) -> dict[str, Any]:
        if calls is not None:
            calls.append(ctx.key)
        return {}

    registry.register("t:build", handler)
    registry.register("t:ship", handler)
    return Engine(open_store(f"sqlite:///{path}"), [DEF], handlers=registry, shared=True, **kw)


def test_a_replica_needs_a_shared_engine(tmp_path: Path) -> None:
    e = Engine(open_store(f"sqlite:///{tmp_path}/x.db"), [DEF])
    with pytest.raises(ValueError, match="shared"):
        Replica(e)
    e.close()


def test_turns_run_jobs_and_timers_until_cases_complete(tmp_path: Path) -> None:
    calls: list[str] = []
    e = engine(tmp_path / "s.db", calls)
    for i in range(5):
        e.start_case("rep", case_id=f"c{i}")
    r = Replica(e, ReplicaConfig(batch=2, job_threads=1))
    deadline = time.monotonic() + 10
    while e.store.count_cases().get("completed", 0) < 5 and time.monotonic() < deadline:
        if not r.turn():
            time.sleep(0.05)
    assert e.store.count_cases() == {"completed": 5}
    assert sorted(calls) == sorted(f"c{i}:{s}:1" for i in range(5) for s in ("build", "ship"))
    assert (r.stats.jobs, r.stats.timers) == (10, 5)
    e.close()


def test_a_worker_only_runs_its_teams_jobs(tmp_path: Path) -> None:
    e = engine(tmp_path / "s.db")
    e.start_case("rep", case_id="c1")
    worker = Replica(
        e, ReplicaConfig(role="worker", teams=("ops",), timers=False, assign=False, job_threads=1)
    )
    assert worker.turn() == 0
    assert e.case("c1").tasks["c1:build:1"].status.value == "ready"
    it = Replica(
        e, ReplicaConfig(role="worker", teams=("it",), timers=False, assign=False, job_threads=1)
    )
    assert it.turn() == 1
    e.close()


def test_run_stops_cleanly_and_gives_back_its_leases(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    holder = engine(db, lease_s=300)
    holder.start_case("rep", case_id="c1")
    r = Replica(holder, ReplicaConfig(jobs=False, timers=False, heartbeat_s=0.05))
    assert len(holder.lease_jobs()) == 1  # held, as if a handler were running
    thread = threading.Thread(target=r.run)
    thread.start()
    deadline = time.monotonic() + 5
    while not holder.store.replicas() and time.monotonic() < deadline:
        time.sleep(0.02)
    (row,) = holder.store.replicas()
    assert (row.id, row.role, row.state) == (r.id, "engine", "running")
    r.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert r.stats.state == "stopped"
    assert holder.store.replicas() == []
    other = engine(db)
    assert other.run_jobs() == 1  # no need to wait 300 s for the lease to run out
    other.close()
    holder.close()


def test_a_turn_that_fails_backs_off_and_recovers(tmp_path: Path) -> None:
    e = engine(tmp_path / "s.db")
    r = Replica(e, ReplicaConfig(heartbeat_s=10, max_backoff_s=0.05))
    failures = iter([RuntimeError("database restarting")] * 3)
    real = r.turn

    def flaky() -> int:
        exc = next(failures, None)
        if exc is not None:
            raise exc
        r.stop()
        return real()

    r.turn = flaky  # type: ignore[method-assign]
    r.run()
    assert r.stats.errors == 3
    assert r.stats.last_error == "RuntimeError: database restarting"
    assert r.stats.state == "stopped"
    e.close()


def test_health_endpoint_and_report(tmp_path: Path) -> None:
    e = engine(tmp_path / "s.db")
    r = Replica(e, ReplicaConfig())
    server = serve_health(r, 0)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{base}/health", timeout=5)
        assert info.value.code == 503  # not started yet
        info.value.close()
        r.turn()
        r.stats.state, r.stats.last_turn = "running", time.time()
        with urllib.request.urlopen(f"{base}/health", timeout=5) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "ok" and body["id"] == r.id
        r.beat()
        with urllib.request.urlopen(f"{base}/replicas", timeout=5) as resp:
            report = json.loads(resp.read())
        assert report["live_engines"] == 1
        assert [x["id"] for x in report["replicas"]] == [r.id]
    finally:
        server.shutdown()
        server.server_close()
    assert replica_report(e.store)["schema_version"] >= 2
    e.close()


def test_jobs_stuck_behind_hung_handlers_are_given_back_not_failed(tmp_path: Path) -> None:
    """The handler timeout counts from when a handler starts. When hung handlers hold every
    thread, the jobs still queued behind them come back transient (run again later), not
    failed: nothing is known about their work."""
    release = threading.Event()
    registry = HandlerRegistry()

    def hang(ctx: HandlerContext) -> dict[str, Any]:
        release.wait(10)
        return {}

    registry.register("t:build", hang)
    e = Engine(open_store(f"sqlite:///{tmp_path}/s.db"), [DEF], handlers=registry, shared=True,
               handler_threads=2)  # fmt: skip
    try:
        for i in range(5):
            e.start_case("rep", case_id=f"c{i}")
        results = e.call_handlers(e.lease_jobs(), timeout=0.3)
        hung = [r for r in results if r.error and "did not finish" in r.error]
        queued = [r for r in results if r.transient]
        assert len(hung) == 2 and not any(r.transient for r in hung)
        assert len(queued) == 3
        e.apply_results(results)
        statuses = sorted(t.status.value for i in range(5)
                          for t in e.case(f"c{i}").tasks.values())  # fmt: skip
        assert statuses.count("ready") == 3  # given back, no attempt spent
    finally:
        release.set()
        e.close()


def test_job_threads_share_the_work_of_one_replica(tmp_path: Path) -> None:
    calls: list[str] = []
    e = engine(tmp_path / "s.db", calls)
    for i in range(20):
        e.start_case("rep", case_id=f"c{i}")
    r = Replica(e, ReplicaConfig(batch=3, job_threads=3, heartbeat_s=0.1))
    thread = threading.Thread(target=r.run)
    thread.start()
    deadline = time.monotonic() + 20
    while e.store.count_cases().get("completed", 0) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    r.stop()
    thread.join(10)
    assert e.store.count_cases() == {"completed": 20}
    assert len(calls) == len(set(calls)) == 40  # every job once
    e.close()
