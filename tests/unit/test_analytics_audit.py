"""The audit: discovery matches pm4py and the published DFG; findings find what was planted."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import pytest

from accord.analytics.audit import audit
from accord.analytics.frame import build
from accord.analytics.logs import read_log
from accord.analytics.report import render

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "logs" / "pm4py"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")
H = 3600.0


def read_dfg_file(path: Path) -> tuple[dict[tuple[str, str], int], dict[str, int], dict[str, int]]:
    """pm4py's .dfg format: activities, then start, end activities and edges by index."""
    lines = path.read_text().split("\n")
    n = int(lines[0])
    acts = lines[1 : n + 1]
    i = n + 1

    def counted(i: int) -> tuple[dict[str, int], int]:
        k = int(lines[i])
        out = {}
        for line in lines[i + 1 : i + 1 + k]:
            a, c = line.split("x")
            out[acts[int(a)]] = int(c)
        return out, i + 1 + k

    starts, i = counted(i)
    ends, i = counted(i)
    edges = {}
    for line in lines[i:]:
        if line.strip():
            pair, c = line.split("x")
            a, b = pair.split(">")
            edges[(acts[int(a)], acts[int(b)])] = int(c)
    return edges, starts, ends


@needs_corpus
@pytest.mark.parametrize("name", ["running-example.xes", "01_running-example.xes.gz",
                                  "running-example.csv"])  # fmt: skip
def test_running_example_dfg_matches_the_published_one(name: str) -> None:
    edges, starts, ends = read_dfg_file(CORPUS / "running-example.dfg")
    r = audit(read_log(CORPUS / name))
    assert {(e["from"], e["to"]): e["count"] for e in r["dfg"]} == edges
    assert r["start_activities"] == starts
    assert r["end_activities"] == ends
    assert r["cases"] == 6 and r["events"] == 42 and r["variants"] == 6
    assert r["activities"] == 8 and r["resources"] == 6


@needs_corpus
@pytest.mark.filterwarnings("ignore::UserWarning")  # pm4py's advice on faster backends
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_teleclaims_agrees_with_pm4py() -> None:
    pm4py = pytest.importorskip("pm4py")
    path = CORPUS / "02_teleclaims.xes.gz"
    r = audit(read_log(path))
    df = pm4py.read_xes(str(path))
    dfg, sa, ea = pm4py.discover_dfg(df)
    perf, _, _ = pm4py.discover_performance_dfg(df)
    durations = pm4py.get_all_case_durations(df)
    assert r["cases"] == df["case:concept:name"].nunique() == 3512
    assert r["events"] == len(df) == 46138
    assert r["variants"] == len(pm4py.get_variants(df)) == 12
    ours = {(e["from"], e["to"]): e for e in r["dfg"]}
    assert {k: e["count"] for k, e in ours.items()} == dict(dfg)
    for k, p in perf.items():
        assert ours[k]["mean_s"] == pytest.approx(float(p["mean"]))
        assert ours[k]["median_s"] == pytest.approx(float(p["median"]))
        assert ours[k]["max_s"] == pytest.approx(float(p["max"]))
    assert r["start_activities"] == dict(sa) and r["end_activities"] == dict(ea)
    cd = r["case_duration_s"]
    assert cd["mean"] == pytest.approx(statistics.mean(durations))
    assert cd["median"] == pytest.approx(statistics.median(durations))
    assert cd["max"] == pytest.approx(max(durations))


def _log(rows: list[tuple[str, str, float, str | None, str | None]]) -> Any:
    cols: dict[str, list[Any]] = {k: [] for k in ("case", "activity", "ts", "resource", "team")}
    for case, act, t, res, team in rows:
        for k, v in zip(cols, (case, act, t, res, team), strict=True):
            cols[k].append(v)
    return build(cols, source="synthetic", fmt="test")


def test_findings_on_a_planted_log() -> None:
    rows: list[tuple[str, str, float, str | None, str | None]] = []
    for i in range(40):
        c, t0 = f"c{i}", i * 10 * H
        rows += [(c, "request", t0, "ann", "sales"), (c, "review", t0 + 5 * H, "kim", "legal")]
        if i % 4 == 0:  # rework loop: review sends it back to request
            rows += [(c, "request", t0 + 6 * H, "ann", "sales"),
                     (c, "review", t0 + 7 * H, "kim", "legal")]  # fmt: skip
        if i % 5 == 0:  # the same activity done by two teams: duplicated effort
            rows += [
                (c, "check", t0 + 8 * H, "bo", "ops"),
                (c, "check", t0 + 8.5 * H, "kim", "legal"),
            ]
        rows.append((c, "ship", t0 + 9 * H, "bo", "ops"))
    r = audit(_log(rows))
    assert r["bottlenecks"][0]["activity"] == "review"  # 5 h waits accumulate there
    # 10 loops back to request, 8 checks done twice (also a repeat), 2 cases with both
    assert r["rework"]["cases_with_rework"] == 16
    assert r["rework"]["loops"][:2] == [
        {"loop": ["request", "review", "request"], "cases": 10},
        {"loop": ["review", "request", "review"], "cases": 10},
    ]
    assert r["duplication"]["cases_with_duplication"] == 8
    assert r["duplication"]["activities"] == [{"activity": "check", "cases": 8}]
    assert r["handoffs"]["by"] == "team"
    pairs = {(h["from"], h["to"]) for h in r["handover_network"]}
    assert ("sales", "legal") in pairs and ("legal", "sales") in pairs
    html = render(r)
    assert html.count("<svg") == 4 and "request → review → request" in html


def test_rising_handoff_delays_are_a_sign() -> None:
    rows: list[tuple[str, str, float, str | None, str | None]] = []
    for i in range(200):
        c, t0 = f"c{i}", i * 24 * H
        delay = (1 + i / 20) * H  # handoffs slow down steadily
        rows += [(c, "a", t0, "x", "t1"), (c, "b", t0 + delay, "y", "t2"),
                 (c, "c", t0 + delay + H, "x", "t1")]  # fmt: skip
    r = audit(_log(rows))
    signs = {s["sign"]: s for s in r["signs"]}
    assert "handoff delays are rising" in signs
    s = signs["handoff delays are rising"]
    assert s["p_value"] < 0.01 and s["last_quarter"] > 2 * s["first_quarter"]
    assert "rework is growing" not in signs


def test_a_steady_process_shows_no_sign() -> None:
    rows: list[tuple[str, str, float, str | None, str | None]] = []
    for i in range(200):
        c, t0 = f"c{i}", i * 24 * H
        d = (2 + (i * 7919) % 5) * H  # varies, but does not drift
        rows += [(c, "a", t0, "x", "t1"), (c, "b", t0 + d, "y", "t2")]
    r = audit(_log(rows))
    assert [s for s in r["signs"] if s["sign"] != "silos"] == []


def test_lifecycle_pairs_give_wait_and_work() -> None:
    cols: dict[str, list[Any]] = {
        "case": ["1"] * 4,
        "activity": ["a", "a", "b", "b"],
        "ts": [0.0, 10.0, 100.0, 130.0],
        "lifecycle": ["start", "complete", "start", "complete"],
        "resource": ["ann", None, "bob", "bob"],
    }
    r = audit(build(cols, source="s", fmt="t"))
    assert r["work_s"]["max"] == 30.0 and r["work_s"]["min"] == 10.0
    assert r["bottlenecks"][0] == {**r["bottlenecks"][0], "activity": "b", "wait_total_s": 90.0}
