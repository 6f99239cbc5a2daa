"""`accord compare` and `accord project`, run as a separate process exactly as a user runs them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from clikit import accord, no_traceback

ROOT = Path(__file__).resolve().parents[2]
ONBOARDING = ROOT / "examples" / "client-onboarding.yaml"
PROBLEM_LINE = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): (?P<id>[^:]+): (?P<msg>.+)$")
MODES = ["central", "choreo", "hybrid"]
# what `accord run --json` prints (see test_cli.py) ...
RUN_KEYS = {
    "mode",
    "cases_started",
    "cases_completed",
    "cycle_time_p50_s",
    "cycle_time_p95_s",
    "handoff_latency_p50_s",
    "throughput_per_day",
    "sla_breaches",
    "steps",
}
# ... and what the comparison adds
COMPARE_KEYS = {
    "initiation_latency_p50_s",
    "assignment_wait_p50_s",
    "error_resolution_p50_s",
    "status_freshness_s",
    "coordination_messages_per_case",
    "hub_decisions_per_case",
    "handoff_error_rate",
    "duplicated_work",
}

BAD = """\
process: bad
teams:
  sales: {members: [sam]}
  ops: {members: [olga]}
  it: {members: [ivan]}
steps:
  - {id: a, team: sales, next: P}
  - {id: P, type: parallel, next: [b, c]}
  - {id: b, team: ops, outputs: [x], next: J}
  - id: c
    team: it
    next: [{to: J, when: x > 1}, {to: fin, default: true}]
  - {id: J, type: inclusive, next: e}
  - {id: e, team: sales, next: fin}
  - {id: fin, type: end}
"""


@pytest.fixture(scope="module")
def compared() -> dict[str, Any]:
    res = accord(
        "compare", ONBOARDING, "--modes", "central,choreo,hybrid", "--cases", "100", "--json"
    )
    no_traceback(res)
    assert res.returncode == 0, res.stderr
    doc: dict[str, Any] = json.loads(res.stdout)  # nothing but the JSON on stdout
    return doc


def test_compare_json_is_keyed_by_mode(compared: dict[str, Any]) -> None:
    assert set(compared) >= {*MODES, "mechanisms"}
    for mode in MODES:
        summary = compared[mode]
        missing = (RUN_KEYS | COMPARE_KEYS) - set(summary)
        assert not missing, (mode, missing)
        assert summary["mode"] == mode
        assert summary["cases_started"] == summary["cases_completed"] == 100
        assert 0 < summary["steps"]["kickoff"]["completed"] <= 100  # some are rejected
    assert compared["choreo"]["hub_decisions_per_case"] == 0.0
    assert compared["central"]["status_freshness_s"] == 0.0
    assert compared["choreo"]["status_freshness_s"] > 0
    hybrid, central = (compared[m]["hub_decisions_per_case"] for m in ("hybrid", "central"))
    assert 0 < hybrid < central


def test_compare_json_names_the_mechanisms(compared: dict[str, Any]) -> None:
    notes = compared["mechanisms"]
    assert isinstance(notes, list) and notes
    assert all(isinstance(n, str) and n for n in notes)
    assert any(n.startswith("The hub made") for n in notes)
    assert "sweep" not in compared  # only with --rates


def test_compare_table_and_html_report(tmp_path: Path) -> None:
    page = tmp_path / "out.html"
    res = accord(
        "compare", ONBOARDING, "--modes", "central,choreo", "--cases", "20", "--html", page
    )
    no_traceback(res)
    assert res.returncode == 0, res.stderr
    assert "central" in res.stdout and "choreo" in res.stdout
    for label in ("cycle time p50", "hub decisions per case", "status freshness"):
        assert label in res.stdout
    assert "central: 20/20 cases" in res.stderr  # progress goes to stderr
    assert f"wrote {page}" in res.stderr.replace("\n", "")
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>")
    assert html.rstrip().endswith("</html>")
    assert "<th>central</th><th>choreo</th>" in html
    assert "coordination messages per case" in html
    assert "<h2>Why they differ</h2>" in html


def test_compare_rates_adds_a_sweep() -> None:
    res = accord("compare", ONBOARDING, "--cases", "20", "--rates", "4,24", "--json")
    no_traceback(res)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert set(doc) >= {"central", "choreo", "mechanisms", "sweep"}
    assert [r["per_day"] for r in doc["sweep"]["rows"]] == [4.0, 24.0]
    assert doc["sweep"]["verdict"].startswith("From 4.0 to 24.0 cases/day central cycle time")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--modes", "central,mesh"],
            "error: unknown mode(s) mesh; modes: central, choreo, hybrid",
        ),
        (["--modes", ","], "error: unknown mode(s) (none); modes: central, choreo, hybrid"),
        (["--cases", "0"], "error: --cases must be at least 1"),
        (["--cases", "2", "--rates", "fast"], "error: --rates takes numbers"),
    ],
)
def test_compare_usage_errors_exit_2(args: list[str], message: str) -> None:
    res = accord("compare", ONBOARDING, *args)
    no_traceback(res)
    assert res.returncode == 2
    assert message in res.stderr
    assert res.stdout == ""


def test_project_prints_each_team() -> None:
    res = accord("project", ONBOARDING)
    no_traceback(res)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("client-onboarding@1: cases start at team sales")
    for team in ("sales", "compliance", "it", "account-management"):
        assert f"team {team}" in res.stdout
    assert "provision->assign-manager to account-management" in res.stdout
    assert "accounts->ready from it" in res.stdout


@pytest.mark.parametrize("command", ["project", "compare"])
def test_a_process_that_cannot_be_choreographed_exits_1(tmp_path: Path, command: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD, encoding="utf-8")
    args = ["--modes", "choreo", "--cases", "2"] if command == "compare" else []
    res = accord(command, bad, *args)
    no_traceback(res)
    assert res.returncode == 1
    lines = [ln for ln in res.stderr.splitlines() if PROBLEM_LINE.match(ln)]
    found = [PROBLEM_LINE.match(ln) for ln in lines]
    assert [(m["file"], m["line"], m["id"]) for m in found if m] == [
        (str(bad), "10", "c"),
        (str(bad), "13", "J"),
    ]
    assert "decides on 'x', which only ['b'] produce" in lines[0]
    assert "inclusive join with no inclusive split before it" in lines[1]
    if command == "project":
        assert res.stderr.startswith("this process cannot be choreographed:")
