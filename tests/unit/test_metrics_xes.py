"""The run summary (accord.analytics.metrics) and the XES export (accord.analytics.xes).

Both read nothing but events, so they are checked on a small hand-made log whose numbers can be
worked out by hand, plus one log produced by the engine.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from accord.analytics import quantile, summarize
from accord.analytics.xes import export_xes, write_xes
from accord.events import Event, EventType
from accord.testing import memory_engine

T = 1_767_571_200.0  # Monday 2026-01-05 00:00 UTC
NS = {"x": "http://www.xes-standard.org/"}


class Log:
    """Builds events for one case with increasing seq numbers."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.seq: dict[str, int] = {}

    def add(
        self,
        etype: EventType,
        case: str,
        at: float,
        *,
        step: str | None = None,
        team: str | None = None,
        task: str | None = None,
        actor: str | None = None,
        **data: Any,
    ) -> Log:
        seq = self.seq[case] = self.seq.get(case, 0) + 1
        self.events.append(
            Event(
                id=f"{case}#{seq}",
                type=etype,
                case=case,
                process="p@1",
                at=T + at,
                seq=seq,
                step=step,
                team=team,
                actor=actor,
                task=task,
                data=data,
            )
        )
        return self

    def task(
        self,
        case: str,
        step: str,
        team: str,
        ready: float,
        claimed: float | None,
        done: float,
        who: str = "",
        handoff: bool = False,
    ) -> Log:
        tid = f"{case}:{step}:1"
        if handoff:
            self.add(EventType.HANDOFF, case, ready, step=step, team=team, task=tid)
        kind = "automated" if claimed is None else "human"
        self.add(EventType.TASK_READY, case, ready, step=step, team=team, task=tid, kind=kind)
        if claimed is not None:
            self.add(
                EventType.TASK_CLAIMED,
                case,
                claimed,
                step=step,
                team=team,
                task=tid,
                actor="hub",
                assignee=who,
            )
        actor = who or "worker"
        self.add(EventType.TASK_COMPLETED, case, done, step=step, team=team, task=tid, actor=actor)
        return self


def sample_log() -> list[Event]:
    """Two completed cases through a (sales) -> b (ops), one cancelled case, and some trouble.

    c1: a ready 0, claimed 10, done 110; handoff; b ready 110, claimed 170, done 270; ends 300.
    c2: a ready 100, claimed 100, done 400; handoff; b ready 400, claimed 430, done 500; ends 500.
    c3: starts 200, cancelled 250.
    """
    log = Log()
    log.add(EventType.CASE_STARTED, "c1", 0)
    log.task("c1", "a", "sales", 0, 10, 110, "sam")
    log.task("c1", "b", "ops", 110, 170, 270, "olga", handoff=True)
    log.add(EventType.SLA_BREACHED, "c1", 200, step="b", team="ops", task="c1:b:1")
    log.add(EventType.TASK_ESCALATED, "c1", 200, step="b", team="ops", task="c1:b:1")
    log.add(EventType.CASE_COMPLETED, "c1", 300)
    log.add(EventType.CASE_STARTED, "c2", 100)
    log.task("c2", "a", "sales", 100, 100, 400, "ana")
    log.task("c2", "b", "ops", 400, 430, 500, "oscar", handoff=True)
    log.add(EventType.TASK_FAILED, "c2", 450, step="b", task="c2:b:1", error="x")
    log.add(EventType.CASE_PAUSED, "c2", 450, reason="incident")
    log.add(EventType.CASE_PAUSED, "c2", 460, reason="operator")
    log.add(EventType.CASE_COMPLETED, "c2", 500)
    log.add(EventType.CASE_STARTED, "c3", 200)
    log.add(EventType.CASE_CANCELLED, "c3", 250)
    return sorted(log.events, key=lambda e: (e.at, e.case, e.seq))


# -- quantile ---------------------------------------------------------------------------------


def test_quantile_interpolates_linearly() -> None:
    assert quantile([], 0.5) is None
    assert quantile([7.0], 0.95) == 7.0
    assert quantile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.95) == pytest.approx(3.85)
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.0) == 1.0
    assert quantile([1.0, 2.0, 3.0, 4.0], 1.0) == 4.0
    assert quantile(list(map(float, range(101))), 0.9) == pytest.approx(90.0)


# -- summarize --------------------------------------------------------------------------------


def test_summary_counts_cases_and_trouble() -> None:
    s = summarize(sample_log(), mode="central")
    assert s["mode"] == "central"
    assert (s["cases_started"], s["cases_completed"], s["cases_cancelled"], s["cases_open"]) == (
        3,
        2,
        1,
        0,
    )
    assert (s["sla_breaches"], s["escalations"], s["task_failures"]) == (1, 1, 1)
    assert s["incidents"] == 1  # an operator's pause is not an incident
    assert s["events"] == len(sample_log())
    assert s["span_days"] == round(500 / 86400, 3)


def test_summary_cycle_time_and_throughput() -> None:
    s = summarize(sample_log())
    # cycles: c1 300 s, c2 400 s (the cancelled case has none)
    assert s["cycle_time_p50_s"] == 350.0
    assert s["cycle_time_p95_s"] == 395.0
    assert s["cycle_time_mean_s"] == 350.0
    # 2 completed between the first start (0) and the last completion (500 s)
    assert s["throughput_per_day"] == round(2 / 500 * 86400, 3)


def test_summary_handoff_latency_is_handoff_to_pick_up() -> None:
    s = summarize(sample_log())
    assert s["handoffs"] == 2
    # c1: handed off at 110, claimed at 170 (60 s); c2: at 400, claimed at 430 (30 s)
    assert s["handoff_latency_p50_s"] == 45.0
    assert s["handoff_latency_p95_s"] == pytest.approx(58.5)


def test_summary_wait_and_work_per_step_and_team() -> None:
    s = summarize(sample_log())
    assert s["steps"] == {
        "a": {
            "completed": 2,
            "wait_p50_s": 5.0,  # waits 10 and 0
            "wait_p95_s": 9.5,
            "work_p50_s": 200.0,  # works 100 and 300
            "work_p95_s": 290.0,
        },
        "b": {
            "completed": 2,
            "wait_p50_s": 45.0,  # waits 60 and 30
            "wait_p95_s": 58.5,
            "work_p50_s": 85.0,  # works 100 and 70
            "work_p95_s": 98.5,
        },
    }
    assert s["teams"] == {
        "ops": {"tasks": 2, "work_h": round(170 / 3600, 2), "wait_p50_s": 45.0},
        "sales": {"tasks": 2, "work_h": round(400 / 3600, 2), "wait_p50_s": 5.0},
    }


def test_summary_of_automated_work_without_claims() -> None:
    log = Log()
    log.add(EventType.CASE_STARTED, "c1", 0)
    log.task("c1", "enter", "sales", 0, 5, 50, "sam")
    log.task("c1", "sync", "it", 50, None, 170, handoff=True)
    log.add(EventType.CASE_COMPLETED, "c1", 170)
    s = summarize(log.events)
    # nobody took the handler's task, so it has no wait (it was 0.0 here while `accord audit`
    # and `accord compare` left it out; one definition now: docs/analytics.md, Definitions)
    assert s["steps"]["sync"] == {
        "completed": 1,
        "wait_p50_s": None,
        "wait_p95_s": None,
        "work_p50_s": 120.0,
        "work_p95_s": 120.0,
    }
    assert s["handoff_latency_p50_s"] == 120.0  # picked up when the handler's result arrived
    assert s["teams"]["it"] == {"tasks": 1, "work_h": round(120 / 3600, 2), "wait_p50_s": None}


def test_a_retry_restarts_the_wait() -> None:
    log = Log()
    log.add(EventType.CASE_STARTED, "c1", 0)
    log.add(EventType.TASK_READY, "c1", 0, step="a", team="t", task="c1:a:1", kind="human")
    log.add(EventType.TASK_CLAIMED, "c1", 10, step="a", team="t", task="c1:a:1", assignee="x")
    log.add(EventType.TASK_FAILED, "c1", 20, step="a", team="t", task="c1:a:1")
    log.add(EventType.TASK_READY, "c1", 100, step="a", team="t", task="c1:a:1", retry=True)
    log.add(EventType.TASK_CLAIMED, "c1", 130, step="a", team="t", task="c1:a:1", assignee="x")
    log.add(EventType.TASK_COMPLETED, "c1", 150, step="a", team="t", task="c1:a:1")
    s = summarize(log.events)
    assert s["steps"]["a"]["wait_p50_s"] == 20.0  # waits 10 and 30
    assert s["steps"]["a"]["work_p50_s"] == 20.0  # from the last claim
    assert s["task_failures"] == 1


def test_summary_of_nothing() -> None:
    s = summarize([])
    assert (s["cases_started"], s["cases_completed"], s["events"]) == (0, 0, 0)
    for key in ("cycle_time_p50_s", "cycle_time_mean_s", "handoff_latency_p50_s"):
        assert s[key] is None
    assert s["throughput_per_day"] is None
    assert s["steps"] == {}
    assert s["teams"] == {}
    assert s["span_days"] == 0.0


def test_summary_accepts_a_generator() -> None:
    assert summarize(e for e in sample_log()) == summarize(sample_log())


# -- XES --------------------------------------------------------------------------------------


def parse(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == "{http://www.xes-standard.org/}log"
    return root


def attrs(event: ET.Element) -> dict[str, str]:
    return {child.get("key", ""): child.get("value", "") for child in event}


def test_xes_has_one_trace_per_case_with_lifecycle_events() -> None:
    out = io.StringIO()
    written = write_xes(sample_log(), out, names={"a": "Capture request"})
    root = parse(out.getvalue())

    traces = root.findall("x:trace", NS)
    assert len(traces) == 2  # c3 has no task events, so no trace
    assert written == 8
    assert sum(len(t.findall("x:event", NS)) for t in traces) == written
    by_case = {attrs(t)["concept:name"]: t for t in traces}
    assert set(by_case) == {"c1", "c2"}

    events = [attrs(e) for e in by_case["c1"].findall("x:event", NS)]
    assert [(e["concept:name"], e["lifecycle:transition"]) for e in events] == [
        ("Capture request", "start"),
        ("Capture request", "complete"),
        ("b", "start"),
        ("b", "complete"),
    ]
    assert [e["org:resource"] for e in events] == ["sam", "sam", "olga", "olga"]
    assert [e["org:group"] for e in events] == ["sales", "sales", "ops", "ops"]
    for e in events:
        assert {"concept:name", "time:timestamp", "org:resource", "lifecycle:transition"} <= set(e)
    stamps = [datetime.fromisoformat(e["time:timestamp"]).timestamp() for e in events]
    assert stamps == [T + 10, T + 110, T + 170, T + 270]
    assert by_case["c1"].find("x:string[@key='accord:process']", NS).get("value") == "p@1"  # type: ignore[union-attr]


def test_xes_declares_its_extensions_and_classifiers() -> None:
    out = io.StringIO()
    write_xes([], out)
    root = parse(out.getvalue())
    assert root.findall("x:trace", NS) == []
    prefixes = {e.get("prefix") for e in root.findall("x:extension", NS)}
    assert prefixes == {"concept", "time", "org", "lifecycle"}
    assert {c.get("name") for c in root.findall("x:classifier", NS)} == {
        "Activity",
        "Activity and transition",
    }


def test_xes_escapes_awkward_names() -> None:
    log = Log()
    log.task('c<1>&"quoted"', "a", "t&t", 0, 1, 2, "o'brien <ops>")
    out = io.StringIO()
    write_xes(log.events, out, names={"a": "Check <terms> & conditions"})
    (trace,) = parse(out.getvalue()).findall("x:trace", NS)
    assert attrs(trace)["concept:name"] == 'c<1>&"quoted"'
    first = attrs(trace.findall("x:event", NS)[0])
    assert first["concept:name"] == "Check <terms> & conditions"
    assert first["org:resource"] == "o'brien <ops>"


def test_xes_of_an_engine_log(tmp_path: Path) -> None:
    root_dir = Path(__file__).resolve().parents[2]
    engine, _ = memory_engine(root_dir / "examples" / "client-onboarding.yaml")
    try:
        for cid in ("c1", "c2"):
            engine.start_case("client-onboarding", case_id=cid)
            (request,) = engine.tasks(status="claimed", case_id=cid)
            engine.complete(
                request.id, request.assignee, {"client": "A", "amount": 1, "risk": "low"}
            )
        path = tmp_path / "log.xes"
        written = export_xes(engine.events(), path)
    finally:
        engine.close()

    root = parse(path.read_text(encoding="utf-8"))
    traces = root.findall("x:trace", NS)
    assert len(traces) == 2
    # per case: request claimed + completed, review claimed (by the hub's push)
    assert written == 6
    for trace in traces:
        events = [attrs(e) for e in trace.findall("x:event", NS)]
        assert [e["lifecycle:transition"] for e in events] == ["start", "complete", "start"]
        assert all(e["org:resource"] for e in events)


@pytest.mark.filterwarnings("ignore:.*r4pm.*:UserWarning")  # pm4py's advice on a faster backend
def test_xes_reads_in_pm4py(tmp_path: Path) -> None:
    pm4py = pytest.importorskip("pm4py")
    path = tmp_path / "log.xes"
    export_xes(sample_log(), path)
    df = pm4py.read_xes(str(path))
    assert len(df) == 8
    assert set(df["case:concept:name"]) == {"c1", "c2"}
    assert set(df["org:resource"]) == {"sam", "olga", "ana", "oscar"}
    assert set(df["lifecycle:transition"]) == {"start", "complete"}
    assert set(df["concept:name"]) == {"a", "b"}
