"""The shortcuts on the per-transition paths give the same answers as the long way round:
the case state's copy, the empty-data digest, the relay's addressing by stored type, the
store's case update that leaves unchanged indexed columns alone, and inline handlers."""

from __future__ import annotations

import threading
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.central.jobs import HandlerPool
from accord.events import EventType, iso, parse_iso
from accord.handlers import HandlerContext, HandlerRegistry
from accord.kernel import CompleteTask, RunHandler, StartCase, advance
from accord.kernel.state import (
    CaseState,
    CaseStatus,
    Task,
    TaskStatus,
    Timer,
    TimerKind,
    Token,
    state_from_json,
)
from accord.kernel.stepbase import _share, digest
from accord.model import StepKind, loads
from accord.stores import open_store
from accord.stores.base import CaseWrite

DEFINITION = loads(
    """
process: hot
teams: {ops: {members: [olga]}}
steps:
  - id: work
    team: ops
    next: check
  - id: check
    team: ops
    next: done
  - id: done
    type: end
""",
    "hot.yaml",
)


def _full_state() -> CaseState:
    """A state with something in every field, nested containers included."""
    task = Task("c:a:1", "a", StepKind.HUMAN, TaskStatus.READY, "ops", 1.0, origin=("x",))
    tok = Token(("a",), "1/2", None)
    return CaseState(
        case_id="c",
        process="p@1",
        status=CaseStatus.PAUSED,
        started_at=1.0,
        data={"k": [1, 2]},
        tasks={task.id: task},
        joins={"j": {"f1": [tok]}},
        timers={"t1": Timer("t1", 5.0, TimerKind.SLA, task.id)},
        visits={"a": 2},
        parked=[("f2", tok)],
        deferred=["d"],
        incident={"error": "x"},
        seq=7,
        counter=3,
        ended_at=None,
        expect={"j": [["f1", "f2"]]},
        consumed=["m1"],
        ended_weight="1/2",
        issues={"i1": {"state": "open"}},
        versions={"k": [1.0, "ops", 3]},
        mailbox={"m": [["f3", "a"]]},
        loops={"r1": {"step": "a", "outputs": [1]}},
    )


def test_case_state_copy_keeps_every_field() -> None:
    s = _full_state()
    c = s.copy()
    assert c == s
    assert c.to_json() == s.to_json()
    # every container the kernel changes in place is the copy's own, nested ones included
    # (data and incident are replaced, never changed: shared, as dataclasses.replace did)
    for f in fields(CaseState):
        v = getattr(s, f.name)
        if isinstance(v, dict | list) and f.name not in ("data", "incident"):
            assert getattr(c, f.name) is not v, f.name
    c.joins["j"]["f1"].append(Token())
    c.expect["j"][0].append("f9")
    c.issues["i1"]["state"] = "closed"
    c.mailbox["m"][0].append("z")
    c.loops["r1"]["outputs"].append(2)
    c.consumed.append("m2")
    assert s == _full_state()


def test_case_state_copy_of_an_empty_state() -> None:
    s = CaseState("c", "p@1", CaseStatus.RUNNING, 1.0)
    c = s.copy()
    assert c == s
    c.joins["j"] = {}
    c.loops["r"] = {}
    assert s.joins == {} and s.loops == {}
    assert state_from_json(c.to_json()) == c


def test_empty_digest_and_whole_share_match_the_long_way() -> None:
    import hashlib

    long_way = hashlib.sha256(orjson.dumps({}, option=orjson.OPT_SORT_KEYS)).hexdigest()[:20]
    assert digest({}) == long_way
    assert digest({"a": 1}) != long_way
    assert _share("1") == "1"
    assert _share("2/4") == "1/2"


def test_cached_time_formats_round_trip() -> None:
    for at in (0.0, 1_767_571_200.123456, 1_767_571_200.123456):
        assert parse_iso(iso(at)) == pytest.approx(at, abs=1e-6)


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        st.floats(min_value=0, max_value=4e9),
        # whole seconds plus a fraction near a rounding edge of the microseconds
        st.builds(lambda s, k: s + k / 2_000_000, st.integers(0, 4_000_000_000),
                  st.integers(0, 2_000_000)),
    )
)  # fmt: skip
def test_iso_writes_what_datetime_writes(at: float) -> None:
    """The per-second cache and the microseconds rounded half to even give datetime's text."""
    from datetime import UTC, datetime

    long_way = datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds")
    assert iso(at) == long_way.replace("+00:00", "Z")


@settings(max_examples=3000, deadline=None)
@given(st.integers(0, 253_402_300_799), st.integers(0, 999_999))
def test_parse_iso_reads_what_datetime_reads(second: int, us: int) -> None:
    """The fast path for iso()'s own form gives the float datetime.timestamp() gives."""
    from datetime import UTC, datetime

    text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{us:06d}Z"
    long_way = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    assert parse_iso(text) == long_way


def test_parse_iso_other_forms_and_bad_text() -> None:
    assert parse_iso("2026-01-05T00:00:00Z") == 1_767_571_200.0
    assert parse_iso("2026-01-05T01:00:00.500000+01:00") == 1_767_571_200.5
    assert parse_iso("2026-01-05T00:00:00.250000") == 1_767_571_200.25  # naive: UTC
    for bad in ("2026-13-05T00:00:00.000000Z", "2026-01-05T00:00:00.00000xZ", "nonsense"):
        with pytest.raises(ValueError):
            parse_iso(bad)


def test_relay_addresses_rows_as_it_addresses_events() -> None:
    from accord.choreo.node import TeamNode
    from accord.choreo.projection import project

    proj = project(
        loads(
            """
process: two
teams: {ta: {}, tb: {}}
steps:
  - {id: a, type: automated, team: ta, handler: 'x:y', next: b}
  - {id: b, type: automated, team: tb, handler: 'x:y', next: done}
  - {id: done, type: end}
""",
            "two.yaml",
        )
    )
    node = TeamNode(proj, "ta", open_store("memory://"))
    data: dict[str, Any] = {"to_team": "tb", "from_team": "ta", "announce": {"to_team": "tb"}}
    for t in EventType:
        assert node._addressee_row(t.value, orjson.dumps(data).decode()) == node._addressee(
            t, data
        ), t


def _commit_steps(tmp_path: Path, with_stored: bool) -> list[tuple[Any, ...]]:
    store = open_store(f"sqlite:///{tmp_path}/s{int(with_stored)}.db")
    tr = advance(DEFINITION, None, StartCase(at=1.0, case_id="c"))
    w = CaseWrite(tr.state, None, list(tr.events), dict(tr.state.tasks))
    assert store.commit([w], 1.0) == [1]
    rows = []
    state, version = tr.state, 1
    for i, tid in enumerate(["c:work:1", "c:check:1"]):
        tr = advance(DEFINITION, state, CompleteTask(at=2.0 + i, actor="olga", task_id=tid))
        changed = {k: t for k, t in tr.state.tasks.items() if state.tasks.get(k) is not t}
        w = CaseWrite(tr.state, version, list(tr.events), changed,
                      stored=state if with_stored else None)  # fmt: skip
        (version,) = store.commit([w], 2.0 + i)
        state = tr.state
        (row,) = store.cases()
        rows.append((row.status, row.ended_at, version, store.load_case("c")))
    store.close()
    return rows


def test_update_that_skips_unchanged_status_writes_the_same_rows(tmp_path: Path) -> None:
    lean = _commit_steps(tmp_path, with_stored=True)
    full = _commit_steps(tmp_path, with_stored=False)
    assert lean == full
    assert [r[0] for r in lean] == ["running", "completed"]
    assert lean[1][1] == 3.0


def test_a_stored_state_that_differs_writes_status(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/s.db")
    tr = advance(DEFINITION, None, StartCase(at=1.0, case_id="c"))
    store.commit([CaseWrite(tr.state, None)], 1.0)
    paused = replace(tr.state.copy(), status=CaseStatus.PAUSED)
    store.commit([CaseWrite(paused, 1, stored=tr.state)], 2.0)
    (row,) = store.cases()
    assert row.status == "paused"
    store.close()


def test_inline_handlers_run_on_the_calling_thread() -> None:
    seen: list[str] = []
    registry = HandlerRegistry()
    registry.register("t:inline", lambda ctx: seen.append(threading.current_thread().name) or {},
                      inline=True)  # fmt: skip
    registry.register("t:pool", lambda ctx: seen.append(threading.current_thread().name) or {})
    pool = HandlerPool(registry, 2)
    jobs = [
        ("c", RunHandler("c:a:1", "a", "t:inline", "k1", 1, {})),
        ("c", RunHandler("c:b:1", "b", "t:pool", "k2", 1, {})),
    ]

    def ctx(case_id: str, job: RunHandler) -> HandlerContext:
        return HandlerContext(job.key, case_id, job.task_id, job.step, job.attempt, {})

    results = pool.run(jobs, 5.0, ctx)
    pool.shutdown()
    assert [r.data for r in results] == [{}, {}]
    assert seen[0] == threading.current_thread().name
    assert seen[1].startswith("accord-handler")
    assert registry.inline("t:inline") and not registry.inline("t:pool")
    registry.register("t:inline", lambda ctx: {})
    assert not registry.inline("t:inline")


def test_state_json_is_what_orjson_writes_for_the_dataclass() -> None:
    s = _full_state()
    assert s.to_json() == orjson.dumps(s)
    again = s.copy()  # the same task objects: their JSON comes from the cache
    assert again.to_json() == orjson.dumps(s)
    t = s.tasks["c:a:1"]
    again.tasks[t.id] = replace(t, status=TaskStatus.COMPLETED, ended_at=3.0)
    assert again.to_json() == orjson.dumps(again) != s.to_json()
    assert state_from_json(again.to_json()) == again
    empty = CaseState("c", "p@1", CaseStatus.RUNNING, 1.0)
    assert empty.to_json() == orjson.dumps(empty)


def test_task_evolve_is_replace() -> None:
    t = _full_state().tasks["c:a:1"]
    changed = t.evolve(status=TaskStatus.COMPLETED, ended_at=3.0, digest="d")
    assert changed == replace(t, status=TaskStatus.COMPLETED, ended_at=3.0, digest="d")
    assert t.status is TaskStatus.READY and t.ended_at is None
    assert t.evolve() == t and t.evolve() is not t
    with pytest.raises(TypeError):
        t.evolve(nope=1)
    with pytest.raises(AttributeError):
        changed.status = TaskStatus.READY  # type: ignore[misc]


def test_task_json_of_an_ended_case_is_let_go() -> None:
    from accord.kernel import state as st

    s = _full_state()
    s.status = CaseStatus.RUNNING
    s.to_json()
    assert "c:a:1" in st._TASK_JSON
    s.status = CaseStatus.COMPLETED
    assert s.to_json() == orjson.dumps(s)
    assert "c:a:1" not in st._TASK_JSON
