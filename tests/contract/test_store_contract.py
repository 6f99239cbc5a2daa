"""The store contract: every backend behind ``accord.stores.base.Store`` behaves the same.

Each test runs once per backend URL in ``BACKENDS``. To add a backend, add one line there; a
server-backed backend (PostgreSQL) is skipped when it cannot be reached locally and fails the
run when the environment variable ``CI`` is set, so CI never silently loses coverage. A
server-backed URL gets a fresh schema per test (``{schema}``), dropped afterwards, so runs never
see each other's data.

States, events, tasks and timers are produced by the kernel (``accord.kernel.advance``) on a tiny
definition, never built by hand, so the contract is checked on exactly what the engine writes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from accord.kernel import (
    CancelCase,
    CancelTimer,
    CaseState,
    ClaimTask,
    CompleteTask,
    PauseCase,
    ScheduleTimer,
    StartCase,
    Transition,
    advance,
)
from accord.model import loads
from accord.stores import open_store
from accord.stores.base import CaseWrite, ConcurrencyError, Store
from accord.stores.migrations import LATEST
from pgkit import PG_URL, require_postgres

BACKENDS = [
    pytest.param("memory://", id="memory"),
    pytest.param("sqlite:///{tmp}/s.db", id="sqlite"),
    pytest.param(PG_URL + "?schema={schema}", id="postgres"),
]
SERVER_SCHEMES = ("postgresql:", "postgres:")

DEFINITION = loads(
    """
process: contract
teams:
  ops:
    members: [olga, oscar]
  it:
    members: [ivan]
steps:
  - id: work
    team: ops
    sla: PT1H
    next: check
  - id: check
    team: it
    sla: PT2H
    next: done
  - id: done
    type: end
""",
    "contract.yaml",
)
T0 = 1_767_571_200.0  # a Monday, 00:00 UTC


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    schema = f"accord_contract_{uuid.uuid4().hex[:12]}"
    url = str(request.param).format(tmp=tmp_path, schema=schema)
    if not url.startswith(SERVER_SCHEMES):
        yield url
        return
    require_postgres(url)
    try:
        yield url
    finally:
        from accord.stores.postgres import drop_schema

        drop_schema(url)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()


def _file_backed(url: str) -> None:
    if url.startswith("memory:"):
        pytest.skip("an in-memory store does not outlive its connection")


# -- building writes with the kernel ------------------------------------------------------------


@dataclass
class Case:
    """One case driven through the kernel, with the version the store last acknowledged."""

    state: CaseState
    version: int | None = None
    pending: list[CaseWrite] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.state.case_id

    def task_id(self, step: str) -> str:
        return f"{self.id}:{step}:1"


def _write(old: CaseState | None, version: int | None, tr: Transition) -> CaseWrite:
    """What the engine would write for one transition (see Engine._record)."""
    old_tasks = old.tasks if old is not None else {}
    w = CaseWrite(tr.state, version)
    w.events.extend(tr.events)
    w.tasks.update({tid: t for tid, t in tr.state.tasks.items() if old_tasks.get(tid) is not t})
    for cmd in tr.commands:
        if isinstance(cmd, ScheduleTimer):
            w.timers_set[cmd.timer_id] = cmd.due
            w.timers_cleared.discard(cmd.timer_id)
        elif isinstance(cmd, CancelTimer):
            w.timers_set.pop(cmd.timer_id, None)
            w.timers_cleared.add(cmd.timer_id)
    return w


def new_case(case_id: str, at: float = T0, data: dict[str, object] | None = None) -> CaseWrite:
    tr = advance(DEFINITION, None, StartCase(at=at, case_id=case_id, data=dict(data or {})))
    return _write(None, None, tr)


def step(store: Store, case_id: str, action: object) -> CaseWrite:
    """The write for applying ``action`` to the case as the store holds it now."""
    loaded = store.load_case(case_id)
    assert loaded is not None
    state, version = loaded
    return _write(state, version, advance(DEFINITION, state, action))  # type: ignore[arg-type]


def started(store: Store, case_id: str, at: float = T0) -> CaseWrite:
    w = new_case(case_id, at)
    assert store.commit([w], at) == [1]
    return w


def event_count(store: Store, case_id: str | None = None) -> int:
    return sum(1 for _ in store.events(case_id))


def snapshot(store: Store, case_id: str) -> tuple[object, ...]:
    """Everything the store holds about one case (to prove a refused commit wrote nothing)."""
    return (
        store.load_case(case_id),
        [e for _, e in store.events(case_id)],
        store.tasks(case_id=case_id),
        sorted(t for t in store.due_timers(float("inf"), 10_000) if t[1] == case_id),
        store.count_cases(),
    )


# -- schema ---------------------------------------------------------------------------------------


def test_migrations_are_applied(store: Store) -> None:
    assert store.schema_version() == LATEST


def test_reopening_a_file_store_is_idempotent(store_url: str) -> None:
    _file_backed(store_url)
    first = open_store(store_url)
    try:
        started(first, "c1")
    finally:
        first.close()
    for _ in range(2):
        again = open_store(store_url)
        try:
            assert again.schema_version() == LATEST
            loaded = again.load_case("c1")
            assert loaded is not None
            assert loaded[1] == 1
            assert event_count(again, "c1") == 2
        finally:
            again.close()


def test_definitions_are_recorded_once_per_key(store: Store) -> None:
    store.put_definition("p@1", "P", "process: p", T0)
    store.put_definition("p@1", "P renamed", "process: p # edited", T0 + 1)
    store.put_definition("q@1", "Q", "", T0)
    assert store.definitions() == [("p@1", "P renamed", "process: p # edited"), ("q@1", "Q", "")]
    # a replica that deployed from the store (no file at hand) must not erase the source
    store.put_definition("p@1", "P renamed", "", T0 + 2)
    assert store.definitions()[0] == ("p@1", "P renamed", "process: p # edited")


# -- commit and load ------------------------------------------------------------------------------


def test_new_case_round_trips(store: Store) -> None:
    w = new_case("c1", data={"amount": 1200, "nested": {"a": [1, 2]}})
    assert w.events and w.tasks and w.timers_set  # the kernel produced all four kinds of rows

    assert store.commit([w], T0) == [1]

    loaded = store.load_case("c1")
    assert loaded is not None
    state, version = loaded
    assert version == 1
    assert state == w.state
    assert [e for _, e in store.events("c1")] == w.events
    (row,) = store.tasks(case_id="c1")
    task = w.state.tasks["c1:work:1"]
    assert (row.id, row.case_id, row.process, row.step, row.kind) == (
        task.id,
        "c1",
        DEFINITION.key,
        "work",
        "human",
    )
    assert (row.team, row.role, row.status, row.assignee) == ("ops", None, "ready", None)
    assert (row.ready_at, row.claimed_at, row.attempt, row.hub) == (T0, None, 1, True)
    assert store.due_timers(T0 + 3600) == [(tid, "c1", due) for tid, due in w.timers_set.items()]
    (case_row,) = store.cases()
    assert (case_row.id, case_row.process, case_row.status) == ("c1", DEFINITION.key, "running")
    assert (case_row.started_at, case_row.ended_at, case_row.incident) == (T0, None, None)


def test_load_of_unknown_case_is_none(store: Store) -> None:
    assert store.load_case("nope") is None


def test_each_commit_moves_the_version_on(store: Store) -> None:
    started(store, "c1")
    w = step(store, "c1", ClaimTask(at=T0 + 5, actor="olga", task_id="c1:work:1", member="olga"))
    assert store.commit([w], T0 + 5) == [2]
    w = step(store, "c1", CompleteTask(at=T0 + 9, actor="olga", task_id="c1:work:1"))
    assert store.commit([w], T0 + 9) == [3]

    loaded = store.load_case("c1")
    assert loaded is not None
    assert loaded[1] == 3
    assert loaded[0] == w.state
    rows = {r.step: r for r in store.tasks(case_id="c1")}
    assert rows["work"].status == "completed"
    assert rows["work"].assignee == "olga"
    assert rows["work"].claimed_at == T0 + 5
    assert rows["check"].status == "ready"
    # the SLA timer of `work` was cancelled, the one of `check` scheduled
    assert [t[0] for t in store.due_timers(float("inf"))] == list(w.timers_set)
    assert [e.seq for _, e in store.events("c1")] == list(range(1, w.state.seq + 1))


def test_commit_of_nothing_is_a_no_op(store: Store) -> None:
    assert store.commit([], T0) == []
    assert store.count_cases() == {}


def test_empty_write_still_moves_the_version(store: Store) -> None:
    """An acknowledged repeat (no events) is still a commit of the case."""
    started(store, "c1")
    state, version = store.load_case("c1")  # type: ignore[misc]
    assert store.commit([CaseWrite(state, version)], T0 + 1) == [2]
    assert event_count(store, "c1") == 2


# -- optimistic concurrency -----------------------------------------------------------------------


def test_stale_version_is_refused_and_writes_nothing(store: Store) -> None:
    started(store, "c1")
    stale = step(
        store, "c1", ClaimTask(at=T0 + 1, actor="olga", task_id="c1:work:1", member="olga")
    )
    winner = step(
        store, "c1", ClaimTask(at=T0 + 2, actor="oscar", task_id="c1:work:1", member="oscar")
    )
    assert store.commit([winner], T0 + 2) == [2]
    before = snapshot(store, "c1")

    with pytest.raises(ConcurrencyError):
        store.commit([stale], T0 + 3)

    assert snapshot(store, "c1") == before
    loaded = store.load_case("c1")
    assert loaded is not None
    assert loaded[0].tasks["c1:work:1"].assignee == "oscar"


def test_the_commit_count_moves_with_each_commit_and_not_with_a_refused_one(
    store: Store,
) -> None:
    """A team node's relay reads its log again only when this count moved."""
    assert store.commits == 0
    started(store, "c1")
    assert store.commits == 1
    stale = step(
        store, "c1", ClaimTask(at=T0 + 1, actor="olga", task_id="c1:work:1", member="olga")
    )
    winner = step(
        store, "c1", ClaimTask(at=T0 + 2, actor="oscar", task_id="c1:work:1", member="oscar")
    )
    store.commit([winner], T0 + 2)
    assert store.commits == 2
    with pytest.raises(ConcurrencyError):
        store.commit([stale], T0 + 3)
    assert store.commits == 2


def test_version_from_the_future_is_refused(store: Store) -> None:
    started(store, "c1")
    w = step(store, "c1", PauseCase(at=T0 + 1, actor="operator"))
    w.expected_version = 7
    before = snapshot(store, "c1")
    with pytest.raises(ConcurrencyError):
        store.commit([w], T0 + 1)
    assert snapshot(store, "c1") == before


def test_update_of_a_case_that_does_not_exist_is_refused(store: Store) -> None:
    w = new_case("ghost")
    w.expected_version = 1
    with pytest.raises(ConcurrencyError):
        store.commit([w], T0)
    assert store.load_case("ghost") is None
    assert event_count(store) == 0


def test_creating_a_case_twice_is_a_concurrency_error(store: Store) -> None:
    """Two writers racing to create one case: the loser gets ConcurrencyError, not a driver
    error (regression: SQLite used to let sqlite3.IntegrityError escape)."""
    started(store, "c1")
    before = snapshot(store, "c1")
    with pytest.raises(ConcurrencyError):
        store.commit([new_case("c1", T0 + 10)], T0 + 10)
    assert snapshot(store, "c1") == before


def test_two_connections_race_on_one_file(store_url: str) -> None:
    """The version check holds across connections, not just within one."""
    _file_backed(store_url)
    a, b = open_store(store_url), open_store(store_url)
    try:
        started(a, "c1")
        claim_a = step(
            a, "c1", ClaimTask(at=T0 + 1, actor="olga", task_id="c1:work:1", member="olga")
        )
        claim_b = step(
            b, "c1", ClaimTask(at=T0 + 1, actor="oscar", task_id="c1:work:1", member="oscar")
        )
        assert b.commit([claim_b], T0 + 1) == [2]
        with pytest.raises(ConcurrencyError):
            a.commit([claim_a], T0 + 1)
        loaded = a.load_case("c1")
        assert loaded is not None
        assert loaded[1] == 2
        assert loaded[0].tasks["c1:work:1"].assignee == "oscar"
        assert event_count(a, "c1") == 3
    finally:
        a.close()
        b.close()


def test_a_batch_is_atomic_for_new_cases(store: Store) -> None:
    started(store, "c2")
    stale = step(store, "c2", PauseCase(at=T0 + 1, actor="operator"))
    store.commit([step(store, "c2", PauseCase(at=T0 + 1, actor="operator"))], T0 + 1)
    before = snapshot(store, "c2")
    events_before = event_count(store)

    with pytest.raises(ConcurrencyError):
        store.commit([new_case("c1", T0 + 2), stale], T0 + 2)

    assert store.load_case("c1") is None
    assert store.tasks(case_id="c1") == []
    assert [t for t in store.due_timers(float("inf")) if t[1] == "c1"] == []
    assert event_count(store) == events_before
    assert snapshot(store, "c2") == before


def test_a_batch_is_atomic_for_updates(store: Store) -> None:
    started(store, "c1")
    started(store, "c2")
    ok = step(store, "c1", ClaimTask(at=T0 + 1, actor="olga", task_id="c1:work:1", member="olga"))
    stale = step(store, "c2", CancelCase(at=T0 + 1, actor="operator"))
    store.commit([step(store, "c2", PauseCase(at=T0 + 1, actor="operator"))], T0 + 1)
    before = (snapshot(store, "c1"), snapshot(store, "c2"))

    with pytest.raises(ConcurrencyError):
        store.commit([ok, stale], T0 + 2)

    assert (snapshot(store, "c1"), snapshot(store, "c2")) == before
    assert store.commit([ok], T0 + 3) == [2]  # the good half alone still applies afterwards


def test_a_batch_returns_one_version_per_case(store: Store) -> None:
    started(store, "c1")
    writes = [
        new_case("c2", T0 + 1),
        step(store, "c1", ClaimTask(at=T0 + 1, actor="olga", task_id="c1:work:1", member="olga")),
        new_case("c3", T0 + 1),
    ]
    assert store.commit(writes, T0 + 1) == [1, 2, 1]
    assert store.count_cases() == {"running": 3}


# -- events -------------------------------------------------------------------------------------


def test_events_keep_append_order_and_filter_by_case(store: Store) -> None:
    started(store, "a", T0)
    started(store, "b", T0 + 1)
    store.commit(
        [step(store, "a", ClaimTask(at=T0 + 2, actor="olga", task_id="a:work:1", member="olga"))],
        T0 + 2,
    )
    store.commit([step(store, "b", CancelCase(at=T0 + 3, actor="operator"))], T0 + 3)

    log = list(store.events())
    positions = [pos for pos, _ in log]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)
    assert [e.case for _, e in log] == ["a", "a", "b", "b", "a", "b", "b"]
    assert [e.type.value for _, e in log][-3:] == [
        "task.claimed",
        "task.cancelled",
        "case.cancelled",
    ]

    only_a = list(store.events("a"))
    assert [e.case for _, e in only_a] == ["a", "a", "a"]
    assert [e.seq for _, e in only_a] == [1, 2, 3]
    assert [p for p, _ in only_a] == [p for p, e in log if e.case == "a"]
    assert list(store.events("nobody")) == []


def test_events_after_a_position_and_limit(store: Store) -> None:
    started(store, "a", T0)
    started(store, "b", T0 + 1)
    log = list(store.events())
    mark = log[1][0]

    assert list(store.events(after=mark)) == log[2:]
    assert list(store.events(after=log[-1][0])) == []
    assert list(store.events(limit=3)) == log[:3]
    assert list(store.events(after=mark, limit=1)) == log[2:3]
    assert list(store.events("a", after=mark)) == []
    assert list(store.events("b", after=mark)) == [x for x in log[2:] if x[1].case == "b"]


def test_event_fields_survive_storage(store: Store) -> None:
    w = new_case("c1", data={"unicode": "Zürich ✓", "n": 1.5, "flag": True, "none": None})
    store.commit([w], T0)
    stored = [e for _, e in store.events("c1")]
    assert stored == w.events
    assert stored[0].data == {"data": {"unicode": "Zürich ✓", "n": 1.5, "flag": True, "none": None}}


# -- tasks ----------------------------------------------------------------------------------------


def test_tasks_filter_on_every_field(store: Store) -> None:
    for i, cid in enumerate(["a", "b", "c"]):
        started(store, cid, T0 + i)
    store.commit(
        [step(store, "b", ClaimTask(at=T0 + 5, actor="olga", task_id="b:work:1", member="olga"))],
        T0 + 5,
    )
    w = step(store, "c", ClaimTask(at=T0 + 5, actor="oscar", task_id="c:work:1", member="oscar"))
    store.commit([w], T0 + 5)
    store.commit(
        [step(store, "c", CompleteTask(at=T0 + 6, actor="oscar", task_id="c:work:1"))], T0 + 6
    )

    def ids(**kw: object) -> list[str]:
        return [r.id for r in store.tasks(**kw)]  # type: ignore[arg-type]

    assert ids(status="ready") == ["a:work:1", "c:check:1"]
    assert ids(status="claimed") == ["b:work:1"]
    assert ids(assignee="olga") == ["b:work:1"]
    assert ids(assignee="oscar", status="completed") == ["c:work:1"]
    assert ids(team="ops", status="ready") == ["a:work:1"]
    assert ids(team="it") == ["c:check:1"]
    assert ids(kind="human", team="ops", status="claimed") == ["b:work:1"]
    assert ids(kind="automated") == []
    assert ids(case_id="c") == ["c:work:1", "c:check:1"]
    assert ids(case_id="c", status="ready") == ["c:check:1"]
    assert ids(team="ops", status="ready", assignee="olga") == []
    assert ids(team="nobody") == []


def test_tasks_come_oldest_ready_first_and_limit(store: Store) -> None:
    for cid, at in [("late", T0 + 30), ("early", T0 + 10), ("mid", T0 + 20)]:
        started(store, cid, at)
    assert [r.case_id for r in store.tasks(status="ready")] == ["early", "mid", "late"]
    assert [r.case_id for r in store.tasks(status="ready", limit=2)] == ["early", "mid"]


def test_tasks_of_ended_cases_are_never_open(store: Store) -> None:
    """Store.tasks lists ended cases' tasks too, but all of them completed or cancelled, so a
    filter on an open status sees open cases only."""
    started(store, "open")
    started(store, "gone")
    store.commit([step(store, "gone", CancelCase(at=T0 + 1, actor="operator"))], T0 + 1)
    assert [(r.case_id, r.status) for r in store.tasks()] == [
        ("gone", "cancelled"),  # same ready_at: ordered by task id
        ("open", "ready"),
    ]
    for status in ("ready", "claimed", "waiting", "failed"):
        assert all(r.case_id == "open" for r in store.tasks(status=status))


# -- timers ---------------------------------------------------------------------------------------


def test_due_timers_next_timer_and_delete(store: Store) -> None:
    assert store.next_timer() is None
    assert store.due_timers(float("inf")) == []
    started(store, "a", T0)  # SLA due T0 + 3600
    started(store, "b", T0 + 60)  # SLA due T0 + 3660
    (ta,) = store.load_case("a")[0].timers  # type: ignore[index]
    (tb,) = store.load_case("b")[0].timers  # type: ignore[index]

    assert store.next_timer() == T0 + 3600
    assert store.due_timers(T0 + 3599) == []
    assert store.due_timers(T0 + 3600) == [(ta, "a", T0 + 3600)]
    assert store.due_timers(T0 + 10_000) == [(ta, "a", T0 + 3600), (tb, "b", T0 + 3660)]
    assert store.due_timers(T0 + 10_000, limit=1) == [(ta, "a", T0 + 3600)]

    store.delete_timers([ta])
    assert store.next_timer() == T0 + 3660
    assert store.due_timers(T0 + 10_000) == [(tb, "b", T0 + 3660)]
    store.delete_timers([])
    store.delete_timers(["no-such-timer"])
    store.delete_timers([tb])
    assert store.next_timer() is None


def test_commit_sets_and_clears_timers(store: Store) -> None:
    started(store, "a")
    store.commit(
        [step(store, "a", ClaimTask(at=T0 + 1, actor="olga", task_id="a:work:1", member="olga"))],
        T0 + 1,
    )
    w = step(store, "a", CompleteTask(at=T0 + 100, actor="olga", task_id="a:work:1"))
    assert w.timers_set and w.timers_cleared
    store.commit([w], T0 + 100)
    (tid,) = w.timers_set
    assert store.due_timers(float("inf")) == [(tid, "a", T0 + 100 + 7200)]
    assert store.next_timer() == T0 + 100 + 7200

    store.commit([step(store, "a", CancelCase(at=T0 + 200, actor="operator"))], T0 + 200)
    assert store.next_timer() is None


# -- effects, meta, counts ------------------------------------------------------------------------


def test_record_effect_is_idempotent(store: Store) -> None:
    assert store.record_effect("c1:accounts:1", "accounts.created", "acct-1", T0) is True
    assert store.record_effect("c1:accounts:1", "accounts.created", "acct-2", T0 + 1) is False
    assert store.record_effect("c1:accounts:1", "mail.sent", "m-1", T0 + 2) is True
    assert store.record_effect("c2:accounts:1", "accounts.created", "acct-3", T0 + 3) is True
    assert store.effects() == [
        ("c1:accounts:1", "accounts.created", "acct-1"),
        ("c1:accounts:1", "mail.sent", "m-1"),
        ("c2:accounts:1", "accounts.created", "acct-3"),
    ]
    assert store.effects("mail.sent") == [("c1:accounts:1", "mail.sent", "m-1")]
    assert store.effects("nothing") == []


def test_meta_get_and_set(store: Store) -> None:
    assert store.get_meta("run") is None
    store.set_meta("run", '{"seed": 1}')
    assert store.get_meta("run") == '{"seed": 1}'
    store.set_meta("run", '{"seed": 2}')
    store.set_meta("other", "")
    assert store.get_meta("run") == '{"seed": 2}'
    assert store.get_meta("other") == ""


def test_count_cases_and_cases_by_status(store: Store) -> None:
    assert store.count_cases() == {}
    for i, cid in enumerate(["r1", "r2", "p1", "x1", "done"]):
        started(store, cid, T0 + i)
    store.commit([step(store, "p1", PauseCase(at=T0 + 9, actor="operator"))], T0 + 9)
    store.commit([step(store, "x1", CancelCase(at=T0 + 9, actor="operator"))], T0 + 9)
    for s, member in [("work", "olga"), ("check", "ivan")]:
        tid = f"done:{s}:1"
        store.commit(
            [step(store, "done", ClaimTask(at=T0 + 10, actor=member, task_id=tid, member=member))],
            T0 + 10,
        )
        store.commit(
            [step(store, "done", CompleteTask(at=T0 + 20, actor=member, task_id=tid))], T0 + 20
        )

    assert store.count_cases() == {"running": 2, "paused": 1, "cancelled": 1, "completed": 1}
    assert [c.id for c in store.cases()] == ["r1", "r2", "p1", "x1", "done"]
    assert [c.id for c in store.cases(status="running")] == ["r1", "r2"]
    assert [c.id for c in store.cases(limit=2)] == ["r1", "r2"]
    (done,) = store.cases(status="completed")
    assert (done.started_at, done.ended_at, done.updated_at) == (T0 + 4, T0 + 20, T0 + 20)
    (cancelled,) = store.cases(status="cancelled")
    assert cancelled.ended_at == T0 + 9
    assert store.cases(status="nope") == []


def test_incident_is_kept_on_the_case_row(store: Store) -> None:
    from accord.kernel import FailTask

    started(store, "c1")
    w = step(
        store,
        "c1",
        FailTask(at=T0 + 5, actor="worker", task_id="c1:work:1", error="boom", retryable=False),
    )
    store.commit([w], T0 + 5)
    (row,) = store.cases(status="paused")
    assert row.incident is not None
    assert json.loads(row.incident) == {"task": "c1:work:1", "step": "work", "error": "boom"}
    loaded = store.load_case("c1")
    assert loaded is not None
    assert loaded[0].incident == {"task": "c1:work:1", "step": "work", "error": "boom"}


# -- leases: how replicas share tasks and timers --------------------------------------------------

JOBS = loads(
    """
process: jobs
teams:
  it:
    members: [ivan]
  ops:
    members: [olga]
steps:
  - id: build
    type: automated
    team: it
    handler: h:build
    next: ship
  - id: ship
    type: automated
    team: ops
    handler: h:ship
    next: done
  - id: done
    type: end
""",
    "jobs.yaml",
)


def started_job(store: Store, case_id: str, at: float = T0) -> None:
    tr = advance(JOBS, None, StartCase(at=at, case_id=case_id))
    assert store.commit([_write(None, None, tr)], at) == [1]


def test_load_cases_reads_several_at_once(store: Store) -> None:
    assert store.load_cases([]) == {}
    started(store, "a")
    started(store, "b")
    got = store.load_cases(["b", "nope", "a", "a"])
    assert sorted(got) == ["a", "b"]
    assert got["a"] == store.load_case("a")
    assert got["b"][1] == 1


def test_lease_tasks_hands_each_ready_job_to_one_owner(store: Store) -> None:
    for i, cid in enumerate(["j1", "j2", "j3"]):
        started_job(store, cid, T0 + i)
    started(store, "human")  # human tasks are never leased as jobs

    first = store.lease_tasks("r1", T0 + 10, T0 + 40, 2)
    assert [r.id for r in first] == ["j1:build:1", "j2:build:1"]
    assert all(r.kind == "automated" and r.status == "ready" for r in first)
    second = store.lease_tasks("r2", T0 + 10, T0 + 40, 10)
    assert [r.id for r in second] == ["j3:build:1"]
    assert store.lease_tasks("r3", T0 + 20, T0 + 50, 10) == []
    # a lease runs out: another owner takes the task over
    assert [r.id for r in store.lease_tasks("r3", T0 + 40, T0 + 70, 1)] == ["j1:build:1"]


def test_lease_tasks_filters_by_team(store: Store) -> None:
    started_job(store, "j1")
    assert store.lease_tasks("r1", T0, T0 + 30, 10, teams=["ops"]) == []
    assert [r.team for r in store.lease_tasks("r1", T0, T0 + 30, 10, teams=["it", "x"])] == ["it"]


def test_a_commit_that_writes_the_task_ends_its_lease(store: Store) -> None:
    started_job(store, "j1")
    (row,) = store.lease_tasks("r1", T0, T0 + 30, 10)
    loaded = store.load_case("j1")
    assert loaded is not None
    tr = advance(JOBS, loaded[0], CompleteTask(at=T0 + 1, actor="worker", task_id=row.id))
    store.commit([_write(loaded[0], loaded[1], tr)], T0 + 1)
    # the next step is ready and unleased; the completed one is never handed out again
    assert [r.id for r in store.lease_tasks("r2", T0 + 2, T0 + 30, 10)] == ["j1:ship:1"]


def test_tasks_of_paused_cases_are_not_leased(store: Store) -> None:
    started_job(store, "j1")
    loaded = store.load_case("j1")
    assert loaded is not None
    tr = advance(JOBS, loaded[0], PauseCase(at=T0 + 1, actor="operator"))
    store.commit([_write(loaded[0], loaded[1], tr)], T0 + 1)
    assert store.lease_tasks("r1", T0 + 2, T0 + 30, 10) == []


def test_release_leases_gives_work_back(store: Store) -> None:
    started_job(store, "j1")
    started(store, "h1")  # an SLA timer
    assert len(store.lease_tasks("r1", T0, T0 + 300, 10)) == 1
    assert len(store.lease_timers("r1", T0 + 3600, T0 + 3900, 10)) == 1
    assert store.release_leases("nobody") == 0
    assert store.release_leases("r1", []) == 0
    assert store.release_leases("r1", ["j1:build:1"]) == 1
    assert store.release_leases("r1") == 1
    assert len(store.lease_tasks("r2", T0, T0 + 300, 10)) == 1
    assert len(store.lease_timers("r2", T0 + 3600, T0 + 3900, 10)) == 1


def test_renew_leases_keeps_work_from_running_out(store: Store) -> None:
    started_job(store, "j1")
    started(store, "h1")
    assert len(store.lease_tasks("r1", T0, T0 + 30, 10)) == 1
    assert len(store.lease_timers("r1", T0 + 3600, T0 + 3630, 10)) == 1
    (timer,) = store.load_case("h1")[0].timers  # type: ignore[index]
    assert store.renew_leases("r1", T0 + 5000, []) == 0
    assert store.renew_leases("r1", T0 + 5000, ["j1:build:1", timer, "other"]) == 2
    assert store.renew_leases("nobody", T0 + 5000, ["j1:build:1", timer]) == 0
    assert store.lease_tasks("r2", T0 + 100, T0 + 130, 10) == []
    assert store.lease_timers("r2", T0 + 3700, T0 + 3730, 10) == []
    assert len(store.lease_tasks("r2", T0 + 5000, T0 + 5030, 10)) == 1


def test_lease_timers_hands_each_due_timer_to_one_owner(store: Store) -> None:
    started(store, "a", T0)  # SLA due T0 + 3600
    started(store, "b", T0 + 60)  # SLA due T0 + 3660
    assert store.lease_timers("r1", T0 + 3599, T0 + 4000, 10) == []
    (a,) = store.lease_timers("r1", T0 + 3600, T0 + 4000, 10)
    assert a[1:] == ("a", T0 + 3600)
    (b,) = store.lease_timers("r2", T0 + 3700, T0 + 4000, 10)
    assert b[1] == "b"
    assert store.lease_timers("r3", T0 + 3800, T0 + 4100, 10) == []
    # a lease runs out; due_timers (single-writer mode) still sees every timer
    assert [t[1] for t in store.lease_timers("r3", T0 + 4000, T0 + 4300, 10)] == ["a", "b"]
    assert len(store.due_timers(T0 + 4000)) == 2


def test_concurrent_leases_never_overlap(store_url: str) -> None:
    """Several connections leasing at once (SKIP LOCKED on PostgreSQL) share the work out."""
    _file_backed(store_url)
    from concurrent.futures import ThreadPoolExecutor

    setup = open_store(store_url)
    for i in range(60):
        started_job(setup, f"j{i:03d}", T0 + i)
    stores = [open_store(store_url) for _ in range(4)]
    try:

        def take(k: int) -> list[str]:
            got: list[str] = []
            while True:
                rows = stores[k].lease_tasks(f"r{k}", T0 + 100, T0 + 400, 3)
                if not rows:
                    return got
                got.extend(r.id for r in rows)

        with ThreadPoolExecutor(4) as pool:
            taken = [t for part in pool.map(take, range(4)) for t in part]
        assert sorted(taken) == sorted(f"j{i:03d}:build:1" for i in range(60))
    finally:
        for s in stores:
            s.close()
        setup.close()


def test_member_loads_count_claimed_tasks(store: Store) -> None:
    assert store.member_loads([]) == {}
    for cid in ("a", "b", "c"):
        started(store, cid)
    for cid, member in (("a", "olga"), ("b", "olga"), ("c", "oscar")):
        tid = f"{cid}:work:1"
        store.commit(
            [step(store, cid, ClaimTask(at=T0 + 1, actor=member, task_id=tid, member=member))],
            T0 + 1,
        )
    store.commit([step(store, "c", CompleteTask(at=T0 + 2, actor="oscar", task_id="c:work:1"))],
                 T0 + 2)  # fmt: skip
    assert store.member_loads(["olga", "oscar", "ivan"]) == {"olga": 2}


def test_replica_heartbeats(store: Store) -> None:
    from accord.stores.base import ReplicaRow

    assert store.replicas() == []
    r1 = ReplicaRow("r1", "engine", "host-a", 11, T0, T0, "running", {"jobs": 3})
    store.heartbeat(r1)
    store.heartbeat(ReplicaRow("r2", "worker", "host-b", 12, T0 + 1, T0 + 1, "running"))
    store.heartbeat(ReplicaRow("r1", "engine", "host-a", 11, T0, T0 + 5, "draining", {"n": 1}))
    assert store.replicas() == [
        ReplicaRow("r1", "engine", "host-a", 11, T0, T0 + 5, "draining", {"n": 1}),
        ReplicaRow("r2", "worker", "host-b", 12, T0 + 1, T0 + 1, "running", {}),
    ]
    store.forget_replica("r1")
    assert [r.id for r in store.replicas()] == ["r2"]


def test_a_store_at_an_older_migration_is_upgraded_in_place(store_url: str) -> None:
    """Stored databases exist: opening one made by migration 1 applies the rest, keeps data."""
    _file_backed(store_url)
    from accord.stores.migrations import MIGRATIONS

    first = MIGRATIONS[0][1]
    if store_url.startswith(SERVER_SCHEMES):
        import psycopg

        from accord.stores.postgres import _ddl as pg_ddl
        from accord.stores.postgres import parse_url

        conninfo, schema, _ = parse_url(store_url)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")  # the probe made one
            conn.execute(f"CREATE SCHEMA {schema}")
            conn.execute(f"SET search_path TO {schema}")
            for sql in first:
                conn.execute(pg_ddl(sql))  # type: ignore[arg-type]
            conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            conn.execute("INSERT INTO schema_version VALUES (1)")
            conn.execute("INSERT INTO meta VALUES ('kept', 'yes')")
    else:
        import sqlite3

        from accord.stores.sqlite import _ddl as lite_ddl

        path = store_url.removeprefix("sqlite:///")
        con = sqlite3.connect(path)
        for sql in first:
            con.execute(lite_ddl(sql))
        con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        con.execute("INSERT INTO schema_version VALUES (1)")
        con.execute("INSERT INTO meta VALUES ('kept', 'yes')")
        con.commit()
        con.close()
    s = open_store(store_url)
    try:
        assert s.schema_version() == LATEST
        assert s.get_meta("kept") == "yes"
        started_job(s, "j1")
        assert [r.id for r in s.lease_tasks("r1", T0, T0 + 30, 1)] == ["j1:build:1"]
    finally:
        s.close()


def test_run_sql_reads_and_writes_side_tables(store: Store) -> None:
    """``run_sql`` (the web app's users, sessions and tokens) behaves alike on every backend:
    ``?`` placeholders, rows as tuples, a duplicate key as ConcurrencyError, ``%`` literal."""
    insert = "INSERT INTO users (id, name, password, teams, roles, created_at) VALUES (?,?,?,?,?,?)"
    assert store.run_sql(insert, ("u1", "Una 100%", None, "[]", '["member"]', T0)) == []
    assert store.run_sql("SELECT name, password, created_at FROM users WHERE id = ?", ("u1",)) == [
        ("Una 100%", None, T0)
    ]
    with pytest.raises(ConcurrencyError):
        store.run_sql(insert, ("u1", "again", None, "[]", "[]", T0))
    assert store.run_sql("SELECT count(*) FROM users WHERE name LIKE '%100%'") == [(1,)]
    store.run_sql("DELETE FROM users WHERE id = ?", ("u1",))
    assert store.run_sql("SELECT id FROM users") == []


def test_one_stale_case_among_many_refuses_the_whole_batch(store: Store) -> None:
    """Cases whose status stays as it was are written by one statement: one stale version
    among them still refuses the batch, wherever it stands in it."""
    ids = [f"c{i}" for i in range(5)]
    for cid in ids:
        started(store, cid)
    writes = [
        step(store, cid, ClaimTask(at=T0 + 1, actor="olga", task_id=f"{cid}:work:1",
                                   member="olga"))
        for cid in ids
    ]  # fmt: skip
    store.commit(
        [step(store, "c3", ClaimTask(at=T0 + 1, actor="oscar", task_id="c3:work:1",
                                     member="oscar"))],
        T0 + 1,
    )  # fmt: skip
    before = [snapshot(store, cid) for cid in ids]
    with pytest.raises(ConcurrencyError):
        store.commit(writes, T0 + 2)
    assert [snapshot(store, cid) for cid in ids] == before
    assert store.commit([w for w in writes if w.state.case_id != "c3"], T0 + 3) == [2] * 4
