"""Completion forms from data contracts, and the read models' memo, without a server."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from accord.model.types import Step, StepKind
from accord.web import forms
from accord.web.views import Memo

CONTRACT = {
    "type": "object",
    "required": ["risk", "score"],
    "properties": {
        "risk": {"enum": ["low", "medium", "high"]},
        "level": {"enum": [1, 2, 3]},
        "score": {"type": "integer", "minimum": 0, "maximum": 100, "title": "Risk score"},
        "amount": {"type": "number"},
        "flagged": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "due": {"type": "string", "format": "date"},
        "summary": {"type": "string", "maxLength": 2000, "description": "What you found"},
        "code": {"type": "string", "pattern": "^[A-Z]{3}$", "minLength": 3},
    },
}


def _step(kind: StepKind = StepKind.HUMAN, contract: dict | None = CONTRACT) -> Step:  # type: ignore[type-arg]
    return Step(id="review", kind=kind, name="Review", team="compliance",
                outputs=("client",), contract=contract)  # fmt: skip


def test_each_schema_type_gets_its_input() -> None:
    fields = {f.name: f for f in forms.fields_for(_step(StepKind.APPROVAL))}
    assert list(fields)[:2] == ["outcome", "client"]  # the outcome first, then outputs
    assert fields["outcome"].kind == "select" and fields["outcome"].required
    assert [v for v, _ in fields["outcome"].options] == ["approve", "reject", "rework"]
    assert fields["client"].required and fields["client"].kind == "text"
    assert fields["risk"].kind == "select" and fields["risk"].required
    assert fields["level"].options == [("1", "1"), ("2", "2"), ("3", "3")]
    assert fields["score"].kind == "integer" and fields["score"].label == "Risk score"
    assert fields["score"].attrs == {"step": "1", "min": "0", "max": "100"}
    assert fields["amount"].kind == "number" and fields["amount"].attrs == {"step": "any"}
    assert not fields["amount"].required
    assert fields["flagged"].kind == "checkbox"
    assert fields["tags"].kind == "json"
    assert fields["due"].kind == "date"
    assert fields["summary"].kind == "textarea" and fields["summary"].help == "What you found"
    assert fields["code"].attrs == {"minlength": "3", "pattern": "^[A-Z]{3}$"}


def test_values_fill_the_form_again() -> None:
    values = {"score": 7, "tags": ["a"], "flagged": True, "amount": 2.5}
    fields = {f.name: f for f in forms.fields_for(_step(), values)}
    assert fields["score"].value == "7"
    assert fields["amount"].value == "2.5"
    assert fields["flagged"].value == "true"
    assert '"a"' in fields["tags"].value


def test_a_posted_form_is_converted_to_what_the_schema_wants() -> None:
    posted = {"f.client": " Acme ", "f.risk": "low", "f.level": "2", "f.score": "42",
              "f.amount": "12", "f.tags": '["x", "y"]', "f.due": "2026-01-31",
              "f.code": "ABC", "rating": "3", "comment": " fine ", "csrf_token": "t"}  # fmt: skip
    parsed = forms.parse(_step(), posted)
    assert parsed.ok, (parsed.errors, parsed.problems)
    assert parsed.data == {"client": "Acme", "risk": "low", "level": 2, "score": 42, "amount": 12,
                           "flagged": False, "tags": ["x", "y"], "due": "2026-01-31",
                           "code": "ABC", "feedback": {"rating": 3, "comment": "fine"}}  # fmt: skip
    assert forms.parse(_step(), {**posted, "f.amount": "12.5"}).data["amount"] == 12.5


def test_every_problem_is_named_at_its_input() -> None:
    parsed = forms.parse(_step(), {"f.score": "4.5", "f.risk": "extreme", "f.tags": "[",
                                   "f.level": "9", "rating": "9"})  # fmt: skip
    assert not parsed.ok
    assert parsed.errors == {"client": "required", "score": "must be a whole number",
                             "risk": "must be one of low, medium, high", "tags": "must be JSON",
                             "level": "must be one of 1, 2, 3"}  # fmt: skip
    assert parsed.problems == ["feedback must be a rating from 1 to 5"]
    schema = forms.parse(_step(), {"f.client": "A", "f.risk": "low", "f.score": "101",
                                   "f.code": "abc"})  # fmt: skip
    assert schema.errors["score"] == "101 is greater than the maximum of 100"
    assert "does not match" in schema.errors["code"]
    assert schema.raw["score"] == "101"  # kept, to fill the form again


def test_feedback_only_where_the_contract_allows_it() -> None:
    closed = _step(contract={"type": "object", "additionalProperties": False,
                             "properties": {"client": {"type": "string"}}})  # fmt: skip
    assert not forms.takes_feedback(closed)
    parsed = forms.parse(closed, {"f.client": "A", "rating": "5"})
    assert parsed.ok and parsed.data == {"client": "A"}
    assert forms.takes_feedback(_step(contract=None))


def test_the_memo_reuses_a_value_until_the_log_moves() -> None:
    memo = Memo()
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert memo.get("k", 10, compute) == 1
    assert memo.get("k", 10, compute) == 1  # nothing appended: the same value
    assert memo.get("other", 10, compute) == 2
    assert memo.get("k", 11, compute) == 3  # the log moved on: computed again
    old = Memo(max_age_s=0.0)
    old.get("k", 1, compute)
    assert old.get("k", 1, compute) == 5  # too old: the window slid


def test_waiters_share_a_computation_that_began_after_they_arrived() -> None:
    memo = Memo()
    started = threading.Event()
    release = threading.Event()
    calls: list[int] = []

    def slow() -> int:
        calls.append(1)
        started.set()
        release.wait(5)
        return len(calls)

    results: list[int] = []
    first = threading.Thread(target=lambda: results.append(memo.get("k", 1, slow)))
    first.start()
    started.wait(5)
    # arrived while the first computation ran (it began before them): they compute again,
    # one of them for all the others
    others = [threading.Thread(target=lambda: results.append(memo.get("k", 2, slow)))
              for _ in range(4)]  # fmt: skip
    for t in others:
        t.start()
    time.sleep(0.05)
    release.set()
    for t in [first, *others]:
        t.join(5)
    assert sorted(results) == [1, 2, 2, 2, 2]
    assert len(calls) == 2


def test_page_queries_search_indexes_not_the_log(tmp_path: Path) -> None:
    """Every query a page makes is an index search: none reads the event log or the task
    table through (the newest event is read backwards from the end, which is one row)."""
    from accord.central.engine import Engine
    from accord.model import load
    from accord.stores import open_store
    from accord.web import views

    d = load(Path(__file__).resolve().parents[2] / "examples" / "client-onboarding.yaml")
    engine = Engine(open_store(f"sqlite:///{tmp_path / 'plans.db'}"), [d])
    for i in range(5):
        engine.start_case(d.id, {}, case_id=f"p{i}")
    engine.close()

    class Recording:
        dialect = "sqlite"

        def __init__(self) -> None:
            self.db = sqlite3.connect(tmp_path / "plans.db")
            self.seen: list[tuple[str, tuple[object, ...]]] = []

        def rows(self, sql: str, args: Sequence[object] = ()) -> list[tuple[object, ...]]:
            self.seen.append((sql, tuple(args)))
            return self.db.execute(sql, tuple(args)).fetchall()

    r = Recording()
    now = time.time()
    end = views.log_now(r, now)
    views.catalogue(r, [d])
    views.step_stats(r, d, end, 7 * views.DAY)
    views.case_events(r, "p1")
    views.case_tasks(r, "p1")
    views.inbox(r, "ana", ["sales", "compliance"])
    views.board(r, "sales", end)
    views.operator(r, end)
    views.dashboard(r, end, 30)
    views.status_board(r, d, now)
    assert len(r.seen) > 30
    for sql, args in r.seen:
        plan = [row[3] for row in r.db.execute("EXPLAIN QUERY PLAN " + sql, args)]
        if sql.startswith("SELECT pos, at FROM events ORDER BY pos DESC LIMIT 1"):
            assert plan == ["SCAN events"]  # the rowid, from its end
            continue
        full = [p for p in plan if p.startswith("SCAN") and "COVERING INDEX" not in p]
        assert not full, (sql, plan)
        assert not any(p.startswith("SCAN events") for p in plan), (sql, plan)


def test_a_bpmn_process_is_drawn_as_its_authors_drew_it(tmp_path: Path) -> None:
    import pytest

    from accord.central.engine import Engine
    from accord.model import load
    from accord.stores import open_store
    from accord.web.diagrams import diagram

    root = Path(__file__).resolve().parents[2]
    model = root.parent / "shared" / "corpus" / "bpmn" / "miwg-reference" / "A.2.0.bpmn"
    if not model.is_file():
        pytest.skip(f"no BPMN corpus at {model.parent}")
    imported = load(model)
    yaml = load(root / "examples" / "client-onboarding.yaml")
    engine = Engine(open_store(f"sqlite:///{tmp_path / 'd.db'}"), [imported, yaml])
    try:
        xml, ids, original = diagram(engine.store, imported)
        assert original and xml == model.read_bytes()
        assert ids and all(s in imported.steps for s in ids)
        assert set(ids) == {s for s in imported.steps if s in ids.values()}  # ids are its own
        xml, ids, original = diagram(engine.store, yaml)
        assert not original and b"<bpmndi:BPMNDiagram" in xml  # laid out by the exporter
        assert ids["review"] == "review" and ids["kickoff"] == "kickoff"
    finally:
        engine.close()
