"""One definition of each run measure: `accord run`, `accord audit` and `accord compare` give
the same wait, work, handoff latency, team load and coordination messages for the same log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from accord.analytics import summarize
from accord.analytics.measures import measure
from accord.analytics.tally import tally
from accord.events import Event, EventType
from accord.sim.compare import coordination
from accord.sim.session import simulate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=["central", "choreo", "hybrid"])
def run(request: pytest.FixtureRequest) -> tuple[str, list[Event]]:
    events: list[Event] = []
    simulate(ROOT / "examples" / "client-onboarding.yaml", 30, mode=request.param, seed=3,
             keep_events=events)  # fmt: skip
    return request.param, events


def close(a: float | None, b: float | None) -> bool:
    return a == b if a is None or b is None else abs(a - b) <= 1e-3


def test_summary_audit_and_compare_agree(run: tuple[str, list[Event]]) -> None:
    mode, events = run
    s, m, c = summarize(events, mode=mode), measure(events), coordination(events, mode)
    assert s["steps"] and s["teams"]
    for step, row in s["steps"].items():
        mine = m["steps"][step]
        assert row["completed"] == mine["completed"], step
        for key in ("wait_p50_s", "wait_p95_s", "work_p50_s", "work_p95_s"):
            kind, q = key.split("_")[0], key.split("_")[1]
            assert close(row[key], mine[f"{kind}_s_{q}"]), (step, key)
    for team, row in s["teams"].items():
        mine = m["teams"][team]
        assert row["tasks"] == mine["tasks"], team
        assert close(row["wait_p50_s"], mine["wait_s_p50"]), team
        assert row["work_h"] == round((mine["work_total_s"] or 0.0) / 3600, 2), team
    assert s["handoffs"] == m["handoffs"]["count"] > 0
    assert close(s["handoff_latency_p50_s"], m["handoffs"]["latency_s"]["median"])
    assert close(s["handoff_latency_p95_s"], m["handoffs"]["latency_s"]["p95"])
    assert s["handoff_latency_p50_s"] is not None  # choreo handoffs name no task: matched too
    assert s["hub_assignments"] == m["hub"]["assignments"]
    # compare's task assignment wait is the same wait, over every task
    assert close(c["assignment_wait_p50_s"], m["wait_s"]["median"])
    assert close(c["assignment_wait_p95_s"], m["wait_s"]["p95"])
    # and its coordination messages per case the mean of the audit's per-case counts
    assert c["coordination_messages_per_case"] == pytest.approx(
        m["coordination_per_case"]["mean"], abs=1e-3
    )


def test_coordination_messages_by_mode(run: tuple[str, list[Event]]) -> None:
    mode, events = run
    tl = tally(events)
    assert tl.distributed is (mode != "central")
    per_case = sum(tl.messages().values()) / len(tl.started)
    claims = sum(1 for e in events if e.type is EventType.TASK_CLAIMED)
    if mode == "central":
        assert per_case >= 2 * claims / len(tl.started)  # assignment and report per task
    elif mode == "choreo":
        assert tl.hub_assignments == 0 and per_case > 0  # handoffs between the nodes


def _ev(case: str, seq: int, t: str, at: float, **kw: Any) -> Event:
    return Event(f"{case}#{seq}", EventType(t), case, "p@1", at, seq, **kw)


def test_a_task_attempt_by_hand() -> None:
    """Release, retry and a handoff that names only the step, measured once for all three."""
    evs = [
        _ev("c", 1, "case.started", 0),
        _ev("c", 2, "handoff", 0, step="b", data={"from_team": "x", "to_team": "t"}),
        _ev("c", 3, "task.ready", 5, step="b", team="t", task="c:b:1", data={"hub": True}),
        _ev("c", 4, "task.claimed", 10, step="b", team="t", task="c:b:1", actor="hub",
            data={"assignee": "ann"}),
        _ev("c", 5, "task.released", 20, step="b", team="t", task="c:b:1"),
        _ev("c", 6, "task.claimed", 40, step="b", team="t", task="c:b:1", actor="bob",
            data={"assignee": "bob"}),
        _ev("c", 7, "task.started", 45, step="b", team="t", task="c:b:1"),
        _ev("c", 8, "task.failed", 50, step="b", team="t", task="c:b:1"),
        _ev("c", 9, "task.ready", 100, step="b", team="t", task="c:b:1",
            data={"hub": True, "retry": True}),
        _ev("c", 10, "task.claimed", 130, step="b", team="t", task="c:b:1", actor="bob",
            data={"assignee": "bob"}),
        _ev("c", 11, "task.completed", 150, step="b", team="t", task="c:b:1", actor="bob"),
        _ev("c", 12, "case.completed", 150),
    ]  # fmt: skip
    s, m, c = summarize(evs), measure(evs), coordination(evs, "central")
    # attempt 1: ready 5, released, taken again at 45 (its start): wait 40; attempt 2: 30
    assert s["steps"]["b"]["wait_p50_s"] == m["steps"]["b"]["wait_s_p50"] == 35.0
    assert c["assignment_wait_p50_s"] == 35.0
    # work from the last take of the attempt that completed
    assert s["steps"]["b"]["work_p50_s"] == m["steps"]["b"]["work_s_p50"] == 20.0
    # the handoff (no task id) was picked up when the first attempt was taken: 45 s
    assert s["handoff_latency_p50_s"] == m["handoffs"]["latency_s"]["median"] == 45.0
    assert s["teams"]["t"]["tasks"] == m["teams"]["t"]["tasks"] == 1
    # 3 claims and 1 report to the hub, over 1 case (a central run: the handoff is bookkeeping)
    assert c["coordination_messages_per_case"] == m["coordination_per_case"]["mean"] == 4.0
