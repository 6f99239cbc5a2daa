"""Run measures over accord's own events: agree with the run summary, find what was planted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from accord.analytics import summarize
from accord.analytics.logs import accord_events, read_log
from accord.analytics.measures import measure
from accord.events import Event, EventType
from accord.sim.session import simulate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_events(tmp_path_factory: pytest.TempPathFactory) -> list[Event]:
    db = tmp_path_factory.mktemp("run") / "run.db"
    simulate(ROOT / "examples" / "client-onboarding.yaml", 40, seed=5, db=str(db))
    events = accord_events(db)
    assert events is not None
    return events


def test_measures_agree_with_the_run_summary(run_events: list[Event]) -> None:
    m = measure(run_events)
    s = summarize(run_events)
    assert m["cases"] == s["cases_started"]
    assert m["cases_completed"] == s["cases_completed"]
    assert m["cycle_time_s"]["median"] == pytest.approx(s["cycle_time_p50_s"], abs=1e-3)
    assert m["handoffs"]["count"] == s["handoffs"]
    assert m["sla_breaches"] == s["sla_breaches"]
    teams = set(s["teams"])
    assert set(m["teams"]) == teams
    for team in m["teams"].values():
        assert team["queue_peak"] >= 1 and team["utilisation"] >= 0
    assert m["hub"]["assignments"] > 0 and m["hub"]["tasks_local"] == 0
    assert m["coordination_per_case"]["median"] >= 3
    # the review step sends about one case in ten back: that is rework and a handoff error
    assert m["steps"]["request"]["rework"] >= 1
    assert 0 < m["handoffs"]["error_rate"] < 0.5
    assert m["satisfaction"] is None


def test_accord_store_reads_as_an_event_log(run_events: list[Event], tmp_path: Path) -> None:
    # the frame of an accord log has one start and one complete row per worked task
    claimed = sum(1 for e in run_events if e.type is EventType.TASK_CLAIMED)
    completed = sum(1 for e in run_events if e.type is EventType.TASK_COMPLETED)
    lines = tmp_path / "events.jsonl"
    lines.write_text("\n".join(__import__("orjson").dumps(e.to_cloudevent()).decode()
                               for e in run_events) + "\nnot json\n")  # fmt: skip
    log = read_log(lines)
    assert log.events == claimed + completed
    assert "1 skipped: lines that are not accord events" in " ".join(log.warnings())


def _ev(case: str, seq: int, t: str, at: float, **kw: Any) -> Event:
    return Event(f"{case}#{seq}", EventType(t), case, "p@1", at, seq, **kw)


def test_handoff_errors_feedback_and_queues() -> None:
    evs: list[Event] = []
    for i in range(4):
        c = f"c{i}"
        t0 = i * 1000.0
        back = i % 2 == 0  # reviewers send half the cases back
        evs += [
            _ev(c, 1, "case.started", t0),
            _ev(c, 2, "task.ready", t0, step="a", team="sales", task=f"{c}:a:1",
                data={"hub": True}),
            _ev(c, 3, "task.claimed", t0 + 10, step="a", team="sales", task=f"{c}:a:1",
                actor="hub", data={"assignee": "ann"}),
            _ev(c, 4, "task.completed", t0 + 40, step="a", team="sales", task=f"{c}:a:1",
                actor="ann", data={"data": {}, "feedback": {"rating": 2 + i % 3,
                                                             "comment": "unclear form"}}),
            _ev(c, 5, "handoff", t0 + 40, step="b", team="legal", task=f"{c}:b:1",
                data={"from_team": "sales", "to_team": "legal"}),
            _ev(c, 6, "task.ready", t0 + 40, step="b", team="legal", task=f"{c}:b:1",
                data={"hub": False}),
            _ev(c, 7, "task.claimed", t0 + 100, step="b", team="legal", task=f"{c}:b:1",
                actor="kim", data={"assignee": "kim"}),
            _ev(c, 8, "task.completed", t0 + 160, step="b", team="legal", task=f"{c}:b:1",
                actor="kim", data={"data": {"outcome": "rework" if back else "approve"}}),
            _ev(c, 9, "case.completed", t0 + 200),
        ]  # fmt: skip
    m = measure(evs)
    assert m["handoffs"]["count"] == 4
    assert m["handoffs"]["latency_s"]["median"] == 60.0
    assert m["handoffs"]["sent_back"] == 2 and m["handoffs"]["error_rate"] == 0.5
    assert m["steps"]["a"]["wait_s_p50"] == 10.0 and m["steps"]["b"]["work_s_p50"] == 60.0
    assert m["hub"]["assignments"] == 4 and m["hub"]["tasks_local"] == 4
    # the hub's assignment and the report back for its task a, and the handoff to the legal
    # team's node; offers are not messages (this was 4: 2 offers, 1 handoff, 1 assignment,
    # while `accord compare` counted 3: one definition now, docs/analytics.md, Definitions)
    assert m["coordination_per_case"]["median"] == 3.0
    sat = m["satisfaction"]
    assert sat["ratings"] == 4 and sat["mean"] == pytest.approx(2.75)  # 2, 3, 4, 2
    assert sat["by_team"]["sales"]["ratings"] == 4 and sat["comments"] == 4
    assert m["cycle_time_s"]["max"] == 200.0
