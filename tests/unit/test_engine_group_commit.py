"""Group commit (accord.central.group): concurrent units of a shared engine share a commit,
each caller returns only once its own writes are committed, and a unit that lost a race (or a
refused one) never takes the others of its group down with it. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from accord import Engine, VirtualClock
from accord.central.group import GroupCommit
from accord.clock import EPOCH
from accord.errors import StoreError
from accord.kernel import CaseState, CaseStatus
from accord.model import loads
from accord.stores import open_store
from accord.stores.base import CaseWrite, ConcurrencyError

HUMAN = loads(
    """
process: human
teams:
  desk:
    assignment: pull
    members: [dee, dan]
steps:
  - id: work
    team: desk
    next: check
  - id: check
    team: desk
    next: done
  - id: done
    type: end
""",
    "human.yaml",
)


@pytest.fixture
def url(shared_store_url: str) -> str:
    return shared_store_url  # (tests/conftest.py: SQLite, and PostgreSQL when it is up)


def _engine(url: str, window_s: float = 0.005) -> tuple[Engine, GroupCommit]:
    store = open_store(url)
    group = GroupCommit(store.commit, window_s)
    engine = Engine(store, [HUMAN], clock=VirtualClock(EPOCH), shared=True, group_commit=group)
    return engine, group


def _threads(n: int, fn: Any) -> list[BaseException | None]:
    out: list[BaseException | None] = [None] * n
    start = threading.Barrier(n)

    def run(i: int) -> None:
        start.wait()
        try:
            fn(i)
        except BaseException as exc:  # collected for the assertions
            out[i] = exc

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=60)
    return out


def test_concurrent_units_share_commits_and_all_land(url: str) -> None:
    engine, group = _engine(url)
    try:
        ids = [engine.start_case("human", case_id=f"g{i:03d}") for i in range(48)]
        before = (group.commits, group.units)

        def complete(i: int) -> None:
            for cid in ids[i::12]:
                engine.complete(f"{cid}:work:1", "dee", {"n": cid})

        assert _threads(12, complete) == [None] * 12
        commits, units = group.commits - before[0], group.units - before[1]
        assert units == 48
        assert commits <= units  # grouped whenever requests overlapped (never more)
        done = Counter(e.task for e in engine.events() if e.type.value == "task.completed")
        assert all(done[f"{cid}:work:1"] == 1 for cid in ids)
        # every case moved on, and what is stored is what each caller was told
        for cid in ids:
            state = engine.case(cid)
            assert state.tasks[f"{cid}:work:1"].status.value == "completed"
            assert state.data["n"] == cid
            assert state.tasks[f"{cid}:check:1"].status.value == "ready"
    finally:
        engine.close()


def test_racing_units_on_one_case_have_one_winner(url: str) -> None:
    engine, _group = _engine(url)
    try:
        for i in range(10):
            cid = engine.start_case("human", case_id=f"r{i:02d}")
            tid = f"{cid}:work:1"
            errors = _threads(4, lambda n, t=tid: engine.complete(t, "dee", {"by": n}))
            refused = [type(e).__name__ for e in errors if e is not None]
            assert len(refused) == 3 and set(refused) == {"ConflictError"}, errors
            done = [e for e in engine.events(cid) if e.type.value == "task.completed"]
            assert len(done) == 1
    finally:
        engine.close()


def _write(case_id: str) -> CaseWrite:
    state = CaseState(case_id, "human@1", CaseStatus.RUNNING, started_at=0.0)
    return CaseWrite(state, 1)


def test_a_lost_race_in_a_group_fails_only_its_own_unit() -> None:
    committed: list[list[str]] = []

    def commit(writes: list[CaseWrite], at: float) -> list[int]:
        ids = [w.state.case_id for w in writes]
        if "stale" in ids:
            raise ConcurrencyError("stale moved on")
        committed.append(ids)
        return [2] * len(writes)

    group = GroupCommit(commit, window_s=0.05)
    for _ in range(3):
        group.arrive()
    results: dict[str, Any] = {}

    def unit(cid: str) -> None:
        try:
            results[cid] = group.commit([_write(cid)], 0.0)
        except ConcurrencyError as exc:
            results[cid] = exc

    ts = [threading.Thread(target=unit, args=(c,)) for c in ("a", "stale", "b")]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=10)
    assert results["a"] == [2] and results["b"] == [2]
    assert isinstance(results["stale"], ConcurrencyError)
    assert sorted(c for ids in committed for c in ids) == ["a", "b"]


def test_other_failures_fail_the_whole_group_and_the_next_one_runs() -> None:
    calls: list[int] = []

    def commit(writes: list[CaseWrite], at: float) -> list[int]:
        calls.append(len(writes))
        if len(calls) == 1:
            raise StoreError("the database went away")
        return [2] * len(writes)

    group = GroupCommit(commit, window_s=0.0)
    group.arrive()
    with pytest.raises(StoreError):
        group.commit([_write("a")], 0.0)
    group.arrive()
    assert group.commit([_write("a")], 0.0) == [2]


def test_units_writing_the_same_case_never_share_a_group() -> None:
    groups: list[list[str]] = []
    gate = threading.Event()

    def commit(writes: list[CaseWrite], at: float) -> list[int]:
        if not groups:
            gate.wait(5)  # hold the first commit so that the rest queue up behind it
        groups.append([w.state.case_id for w in writes])
        return [2] * len(writes)

    group = GroupCommit(commit, window_s=0.0)
    ts = []
    for cid in ("x", "y", "y", "z"):
        group.arrive()
        t = threading.Thread(target=group.commit, args=([_write(cid)], 0.0))
        t.start()
        ts.append(t)
        if len(ts) == 1:
            while not groups and group.units == 0:
                threading.Event().wait(0.001)
    gate.set()
    for t in ts:
        t.join(timeout=10)
    assert sorted(c for g in groups for c in g) == ["x", "y", "y", "z"]
    assert all(len(g) == len(set(g)) for g in groups)
