"""Comparing modes on one seeded workload (accord.sim.session.simulate and accord.sim.compare).

The simulations run client-onboarding (a coordinating team, ``scenario.hub``, decides every
assignment in central runs); the measures are also checked on small hand-built event lists whose
answers are worked out by hand in the comments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import accord.sim.compare as cmp
from accord.events import Event, EventType
from accord.sim.compare import coordination, mechanisms, sweep
from accord.sim.session import BUS_LATENCY_S, MODES, UnsupportedMode, simulate

ROOT = Path(__file__).resolve().parents[2]
ONBOARDING = ROOT / "examples" / "client-onboarding.yaml"
CASES = 60
SEED = 3


def run(mode: str, seed: int = SEED) -> tuple[dict[str, Any], list[Event]]:
    events: list[Event] = []
    summary = simulate(ONBOARDING, CASES, mode=mode, seed=seed, keep_events=events)
    return summary, events


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple[dict[str, Any], list[Event]]]:
    return {mode: run(mode) for mode in MODES}


def test_modes_are_central_choreo_hybrid() -> None:
    assert MODES == ("central", "choreo", "hybrid")


@pytest.mark.parametrize("mode", MODES)
def test_every_case_completes_in_every_mode(
    mode: str, runs: dict[str, tuple[dict[str, Any], list[Event]]]
) -> None:
    summary, events = runs[mode]
    assert summary["mode"] == mode
    assert summary["cases_started"] == CASES
    assert summary["cases_completed"] == CASES
    assert summary["cases_open"] == 0
    assert summary["unfinished"] == []
    assert summary["seed"] == SEED
    completed = [e for e in events if e.type is EventType.CASE_COMPLETED]
    assert len(completed) == CASES == len({e.case for e in completed})  # once per case


@pytest.mark.parametrize("mode", MODES)
def test_same_seed_same_numbers(
    mode: str, runs: dict[str, tuple[dict[str, Any], list[Event]]]
) -> None:
    first = dict(runs[mode][0])
    again, _ = run(mode)
    first.pop("wall_s")
    again.pop("wall_s")
    assert again == first


def test_another_seed_gives_other_numbers(
    runs: dict[str, tuple[dict[str, Any], list[Event]]],
) -> None:
    other, _ = run("choreo", seed=SEED + 1)
    assert other["cycle_time_p50_s"] != runs["choreo"][0]["cycle_time_p50_s"]


def test_central_runs_through_the_hub(runs: dict[str, tuple[dict[str, Any], list[Event]]]) -> None:
    c, events = runs["central"]
    assert c["hub_assignments"] > 0
    assert c["hub_decisions_per_case"] == round(
        (c["hub_assignments"] + c["gateway_decisions"]) / CASES, 3
    )
    assert c["hub_queue_peak"] > 0  # the coordinating team of the scenario had a queue
    assert c["bus_messages_per_case"] == 0.0
    assert c["status_freshness_s"] == 0.0  # the hub's state is the global view
    assert all(e.source == "accord/central" for e in events)


def test_choreo_has_no_hub_and_talks_on_the_bus(
    runs: dict[str, tuple[dict[str, Any], list[Event]]],
) -> None:
    h, events = runs["choreo"]
    assert h["hub_assignments"] == 0
    assert h["hub_decisions_per_case"] == 0.0
    assert h["bus_messages_per_case"] > 0
    # every committed event is published once: the bus carries the nodes' event logs
    assert h["bus_messages_per_case"] == round(len(events) / CASES, 3)
    assert h["status_freshness_s"] == BUS_LATENCY_S  # the board hears one hop later
    assert not any(e.actor and e.actor.startswith("hub") for e in events)
    assert {e.id.split("#")[1] for e in events} == {
        "sales",
        "compliance",
        "it",
        "account-management",
    }


def test_hybrid_hub_decisions_lie_between_none_and_central(
    runs: dict[str, tuple[dict[str, Any], list[Event]]],
) -> None:
    central = runs["central"][0]["hub_decisions_per_case"]
    hybrid, events = runs["hybrid"]
    assert 0 < hybrid["hub_decisions_per_case"] < central
    assert hybrid["bus_messages_per_case"] > 0
    # the central steps ran at the hub, the local ones at their teams
    writers = {e.step: e.id.split("#")[1] for e in events if e.type is EventType.TASK_COMPLETED}
    assert writers["request"] == writers["review"] == "@hub"
    assert writers["accounts"] == "it"
    assert writers["kickoff"] == "account-management"
    # assign-manager goes to the hub exactly when its criteria held (amount > 50000)
    amount = {
        e.case: e.data["data"]["amount"]
        for e in events
        if e.type is EventType.TASK_COMPLETED and e.step == "request"
    }
    by_hub = {
        e.case
        for e in events
        if e.type is EventType.TASK_READY
        and e.step == "assign-manager"
        and e.id.split("#")[1] == "@hub"
    }
    assert by_hub == {c for c, a in amount.items() if a > 50000}


def test_unknown_mode_and_db_for_choreo_are_refused() -> None:
    with pytest.raises(UnsupportedMode, match="mode 'mesh' is not available"):
        simulate(ONBOARDING, 1, mode="mesh")
    with pytest.raises(UnsupportedMode, match="--db keeps a central run"):
        simulate(ONBOARDING, 1, mode="choreo", db="memory://")


def test_compare_adds_the_comparison_measures() -> None:
    res = cmp.compare(ONBOARDING, ["central", "choreo"], 20, seed=1, per_day=16)
    assert list(res) == ["central", "choreo"]
    for m, summary in res.items():
        assert summary["mode"] == m
        assert summary["cases_completed"] == 20
        for key in (
            "initiation_latency_p50_s",
            "assignment_wait_p50_s",
            "error_resolution_p50_s",
            "coordination_messages_per_case",
            "handoff_error_rate",
            "duplicated_work",
        ):
            assert key in summary
    # the rate override reached both runs: the same arrivals, so the same span of starts
    slow = cmp.compare(ONBOARDING, ["central"], 20, seed=1, per_day=2)
    assert slow["central"]["span_days"] > res["central"]["span_days"]


# -- coordination() on a hand-built event list --------------------------------------------------


def ev(etype: EventType, case: str, at: float, n: int, **kw: Any) -> Event:
    return Event(id=f"{case}#{n}", type=etype, case=case, process="p@1", at=at, seq=n, **kw)


def hand_built() -> list[Event]:
    E = EventType
    return [
        ev(E.CASE_STARTED, "c1", 0, 1),
        ev(E.TASK_READY, "c1", 10, 2, task="c1:a:1", step="a"),
        ev(E.TASK_CLAIMED, "c1", 20, 3, task="c1:a:1", step="a", data={"assignee": "sam"}),
        ev(E.TASK_STARTED, "c1", 30, 4, task="c1:a:1", step="a", data={"assignee": "sam"}),
        ev(E.TASK_COMPLETED, "c1", 100, 5, task="c1:a:1", step="a", actor="sam"),
        ev(E.HANDOFF, "c1", 100, 6, step="b"),
        ev(E.TASK_READY, "c1", 100, 7, task="c1:b:1", step="b"),
        ev(E.TASK_STARTED, "c1", 160, 8, task="c1:b:1", step="b", data={"assignee": "olga"}),
        # a second person on the same step of the same case while olga works on it
        ev(E.TASK_STARTED, "c1", 180, 9, task="c1:b:2", step="b", data={"assignee": "oscar"}),
        ev(E.TASK_COMPLETED, "c1", 200, 10, task="c1:b:1", step="b", actor="olga"),
        ev(E.TASK_COMPLETED, "c1", 250, 11, task="c1:b:2", step="b", actor="oscar"),
        ev(E.HANDOFF, "c1", 250, 12, step="a"),
        ev(E.TASK_READY, "c1", 250, 13, task="c1:a:2", step="a"),  # rework: visit 2
        ev(E.TASK_READY, "c1", 260, 14, task="c1:x:2", step="x", data={"retry": True}),
        ev(E.CASE_PAUSED, "c1", 300, 15, data={"reason": "incident"}),
        ev(E.CASE_RESUMED, "c1", 420, 16),
        ev(E.HANDOFF_REJECTED, "c1", 430, 17),
        ev(E.GATEWAY_DECIDED, "c1", 440, 18, data={"announce": {"join": "j"}}),
        ev(E.GATEWAY_DECIDED, "c1", 441, 19, data={"flows": ["f"]}),
        ev(E.ISSUE_RAISED, "c1", 500, 20, data={"issue": "i1"}),
        ev(E.ISSUE_RESOLVED, "c1", 800, 21, data={"issue": "i1"}),
        ev(E.HANDOFF, "c1", 850, 22, step="c"),
        ev(E.BRANCH_ENDED, "c1", 900, 23, data={"weight": "1"}),
        ev(E.CASE_STARTED, "c2", 1000, 1),
        ev(E.TASK_READY, "c2", 1000, 2, task="c2:a:1", step="a"),
        ev(E.TASK_STARTED, "c2", 1100, 3, task="c2:a:1", step="a", data={"assignee": "ivan"}),
    ]


EXPECTED_KEYS = (
    "initiation_latency_p50_s",
    "assignment_wait_p50_s",
    "assignment_wait_p95_s",
    "error_resolution_p50_s",
    "errors_resolved",
    "coordination_messages_per_case",
    "handoff_error_rate",
    "rework_tasks",
    "duplicated_work",
)


def subset(d: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The measures under test (coordination() may report more)."""
    return {k: d[k] for k in keys}


def test_coordination_measures_by_hand() -> None:
    choreo = coordination(hand_built(), "choreo")
    assert subset(choreo, EXPECTED_KEYS) == {
        # first work started: c1 at 30 (30 s after its start), c2 at 1100 (100 s): p50 of both
        "initiation_latency_p50_s": 65.0,
        # ready -> started: a:1 20 s, b:1 60 s, c2's a:1 100 s (b:2 was never ready)
        "assignment_wait_p50_s": 60.0,
        "assignment_wait_p95_s": 96.0,
        # incident 300 -> resumed 420 (120 s); issue raised 500 -> resolved 800 (300 s)
        "error_resolution_p50_s": 210.0,
        "errors_resolved": 2,
        # 3 handoffs + 1 rejection + 1 announcing decision + 2 issue messages + 1 branch.ended
        # = 8 messages over 2 cases (the plain gateway decision is local: not a message)
        "coordination_messages_per_case": 4.0,
        # (1 rejected + 1 rework task) / 3 handoffs; a retry's ready is not rework
        "handoff_error_rate": 0.6667,
        "rework_tasks": 1,
        "duplicated_work": 1,
    }


def test_coordination_counts_hub_messages_in_central_mode() -> None:
    central = coordination(hand_built(), "central")
    # the hub tells the member (1 claim) and hears back (3 completions), and the issue is
    # raised to it and resolved (2): 6 over 2 cases; handoffs, branch ends and announcements
    # are the hub's own bookkeeping. (Issues made this 2.0 before: negotiation was a message
    # only between team nodes, though raising an issue with the hub is one just the same.)
    assert central["coordination_messages_per_case"] == 3.0
    assert central["handoff_error_rate"] == 0.6667  # the same work, the same errors
    assert central["duplicated_work"] == 1


def test_coordination_of_nothing() -> None:
    assert subset(coordination([], "choreo"), EXPECTED_KEYS) == {
        "initiation_latency_p50_s": None,
        "assignment_wait_p50_s": None,
        "assignment_wait_p95_s": None,
        "error_resolution_p50_s": None,
        "errors_resolved": 0,
        "coordination_messages_per_case": 0.0,
        "handoff_error_rate": 0.0,
        "rework_tasks": 0,
        "duplicated_work": 0,
    }


def test_the_same_person_twice_is_not_duplicated_work() -> None:
    E = EventType
    events = [
        ev(E.CASE_STARTED, "c1", 0, 1),
        ev(E.TASK_STARTED, "c1", 10, 2, task="c1:b:1", step="b", data={"assignee": "olga"}),
        ev(E.TASK_STARTED, "c1", 20, 3, task="c1:b:2", step="b", data={"assignee": "olga"}),
        ev(E.TASK_COMPLETED, "c1", 30, 4, task="c1:b:1", step="b"),
        ev(E.TASK_COMPLETED, "c1", 40, 5, task="c1:b:2", step="b"),
        # one after the other, by different people: not at once
        ev(E.TASK_STARTED, "c1", 50, 6, task="c1:d:1", step="d", data={"assignee": "sam"}),
        ev(E.TASK_COMPLETED, "c1", 60, 7, task="c1:d:1", step="d"),
        ev(E.TASK_STARTED, "c1", 60, 8, task="c1:d:2", step="d", data={"assignee": "ana"}),
        ev(E.TASK_COMPLETED, "c1", 70, 9, task="c1:d:2", step="d"),
    ]
    assert coordination(events, "choreo")["duplicated_work"] == 0


# -- mechanisms() and sweep() -----------------------------------------------------------------


def result(cycle: float, **kw: Any) -> dict[str, Any]:
    base = {
        "cycle_time_p50_s": cycle,
        "coordination_messages_per_case": 3.0,
        "hub_decisions_per_case": 0.0,
        "status_freshness_s": 0.0,
    }
    return base | kw


def test_mechanisms_name_hub_queueing_when_central_is_slower() -> None:
    notes = mechanisms(
        {
            "central": result(300000, hub_queue_peak=38, hub_decisions_per_case=5.8),
            "choreo": result(150000, status_freshness_s=0.05),
        }
    )
    assert notes[0] == (
        "Central cycle time p50 is 2.0x choreo's: every assignment waits for the hub "
        "(the coordinators' queue peaked at 38 decisions) -- hub queueing."
    )
    assert "The hub made 5.8 decisions per case" in notes[-1]
    assert "lags by 0.05 s" in notes[-1]


def test_mechanisms_name_pull_and_hops_when_choreo_is_slower() -> None:
    notes = mechanisms(
        {
            "central": result(100000, coordination_messages_per_case=2.0),
            "choreo": result(200000, coordination_messages_per_case=5.5),
        }
    )
    assert notes[0].startswith("Choreo cycle time p50 is 2.0x central's: members pull")
    assert notes[1].startswith("Choreo sends 5.5 coordination messages per case against the hub's")
    assert len(notes) == 3


def test_mechanisms_are_quiet_on_small_differences_and_missing_modes() -> None:
    notes = mechanisms({"central": result(100000), "choreo": result(104000)})
    assert len(notes) == 1 and notes[0].startswith("The hub made")
    assert mechanisms({"central": result(1), "hybrid": result(2)}) == []


def test_mechanisms_on_real_runs_name_hub_queueing() -> None:
    # at 30 arrivals a day the coordinating team (scenario.hub) cannot keep up
    results = cmp.compare(ONBOARDING, ["central", "choreo"], 40, seed=SEED, per_day=30)
    assert results["central"]["cycle_time_p50_s"] > 1.1 * results["choreo"]["cycle_time_p50_s"]
    notes = mechanisms(results)
    assert notes[0].endswith("-- hub queueing.")
    assert f"peaked at {results['central']['hub_queue_peak']} decisions" in notes[0]


def test_sweep_says_the_hub_saturates_when_central_grows_faster() -> None:
    out = sweep(ONBOARDING, [4, 24], 40, seed=SEED)
    rows = out["rows"]
    assert [r["per_day"] for r in rows] == [4, 24]
    assert rows[1]["central_cycle_p50_s"] / rows[0]["central_cycle_p50_s"] > (
        rows[1]["choreo_cycle_p50_s"] / rows[0]["choreo_cycle_p50_s"]
    )
    assert "the hub saturates" in out["verdict"]
    assert out["verdict"].startswith("From 4 to 24 cases/day central cycle time grew")
    assert f"peaked at {rows[1]['central_hub_queue_peak']}" in out["verdict"]


def test_sweep_verdict_when_the_hub_keeps_up(monkeypatch: pytest.MonkeyPatch) -> None:
    cycles = {4.0: (100.0, 100.0), 24.0: (150.0, 300.0)}  # central x1.5, choreo x3

    def fake_compare(file: Any, modes: list[str], cases: int, **kw: Any) -> dict[str, Any]:
        c, h = cycles[kw["per_day"]]
        return {
            "central": {"cycle_time_p50_s": c, "hub_queue_peak": 2},
            "choreo": {"cycle_time_p50_s": h},
        }

    monkeypatch.setattr(cmp, "compare", fake_compare)
    out = sweep(ONBOARDING, [4.0, 24.0], 10)
    assert out["verdict"] == (
        "From 4.0 to 24.0 cases/day central cycle time grew 1.50x and choreo's 3.00x: "
        "the hub did not saturate at these rates."
    )
    assert sweep(ONBOARDING, [4.0], 10)["verdict"] == ""  # one rate: nothing to compare
