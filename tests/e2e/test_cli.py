"""The `accord` command, run as a separate process exactly as a user runs it."""

from __future__ import annotations

import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from clikit import accord, no_traceback

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
ONBOARDING = ROOT / "examples" / "client-onboarding.yaml"
PROBLEM_LINE = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): (?P<id>[^:]+): (?P<msg>.+)$")
SUMMARY_KEYS = {
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
STEP_KEYS = {"wait_p50_s", "work_p50_s", "completed"}


def summary_of(res: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert res.returncode == 0, res.stderr
    data: dict[str, Any] = json.loads(res.stdout)
    return data


@pytest.fixture(scope="module")
def run_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store produced by `accord run --db` (shared by the status and events tests)."""
    db = tmp_path_factory.mktemp("run") / "run.db"
    summary = summary_of(
        accord("run", ONBOARDING, "--cases", "40", "--seed", "3", "--db", db, "--json")
    )
    assert summary["cases_completed"] == 40
    return db


# -- validate -----------------------------------------------------------------------------------


def test_examples_exist() -> None:
    assert ONBOARDING in EXAMPLES
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_validate_accepts_every_example(example: Path) -> None:
    res = accord("validate", example)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"{example}: ok" in res.stdout


def test_validate_reports_every_problem_located(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "process: bad\n"
        "teams:\n"
        "  sales:\n"
        "    members: [sam]\n"
        "steps:\n"
        "  - id: a\n"
        "    type: humen\n"
        "    team: sails\n"
        "    next: b\n"
        "  - id: done\n"
        "    type: end\n",
        encoding="utf-8",
    )
    res = accord("validate", bad, ONBOARDING)
    assert res.returncode == 1
    no_traceback(res)
    problems = [line for line in res.stdout.splitlines() if line.startswith(str(bad))]
    assert len(problems) >= 3
    parsed = [PROBLEM_LINE.match(line) for line in problems]
    assert all(parsed), problems
    found = {(m["line"], m["id"], m["msg"]) for m in parsed if m}
    assert ("7", "a", "unknown step type 'humen' (did you mean 'human'?)") in found
    assert ("8", "a", "unknown team 'sails' (did you mean 'sales'?)") in found
    assert any(line == "9" and "'b'" in msg for line, _, msg in found)
    assert f"{ONBOARDING}: ok" in res.stdout  # the good file is still checked


def test_validate_checks_the_scenario_section(tmp_path: Path) -> None:
    bad = tmp_path / "scenario.yaml"
    text = ONBOARDING.read_text(encoding="utf-8").replace(
        "  arrivals: {per_day: 6}", "  arivals: {per_day: 6}"
    )
    assert "arivals" in text
    bad.write_text(text, encoding="utf-8")
    res = accord("validate", bad)
    assert res.returncode == 1
    no_traceback(res)
    (line,) = [x for x in res.stdout.splitlines() if "arivals" in x]
    m = PROBLEM_LINE.match(line)
    assert m is not None
    assert "did you mean 'arrivals'" in m["msg"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.yaml", None, "cannot read"),
        ("malformed.yaml", "process: [x\n  bad: : :\n", "malformed YAML"),
        ("list.yaml", "- just\n- a list\n", "must be a mapping"),
    ],
)
def test_validate_and_run_refuse_unreadable_files_without_traceback(
    tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    for args in (("validate", path), ("run", path, "--cases", "2")):
        res = accord(*args)
        assert res.returncode == 1, (args, res.stdout, res.stderr)
        no_traceback(res)
        out = res.stdout + res.stderr
        assert message in out
        assert PROBLEM_LINE.match(next(x for x in out.splitlines() if message in x))


# -- run ----------------------------------------------------------------------------------------


def test_run_1000_cases_completes_and_is_reproducible() -> None:
    args = ("run", ONBOARDING, "--cases", "1000", "--seed", "7", "--json")
    first = summary_of(accord(*args))
    assert set(first) >= SUMMARY_KEYS
    assert first["mode"] == "central"
    assert first["cases_started"] == 1000
    assert first["cases_completed"] == 1000
    assert first["cases_open"] == 0
    assert first["unfinished"] == []
    for key in ("cycle_time_p50_s", "cycle_time_p95_s", "handoff_latency_p50_s"):
        assert isinstance(first[key], float)
    assert first["cycle_time_p50_s"] <= first["cycle_time_p95_s"]
    assert first["throughput_per_day"] > 0
    assert first["sla_breaches"] >= 0
    assert set(first["steps"]) == {"request", "review", "accounts", "assign-manager", "kickoff"}
    for name, step in first["steps"].items():
        assert set(step) >= STEP_KEYS, name
        assert step["completed"] > 0
    assert first["steps"]["kickoff"]["completed"] <= 1000

    second = summary_of(accord(*args))
    first.pop("wall_s")
    second.pop("wall_s")
    assert second == first


def test_run_prints_a_report_without_json() -> None:
    res = accord("run", ONBOARDING, "--cases", "20", "--seed", "1")
    assert res.returncode == 0, res.stderr
    for word in ("client-onboarding@1: 20 cases, seed 1", "cycle time", "steps", "teams"):
        assert word in res.stdout


@pytest.mark.parametrize("mode", ["chorus", "decentral"])
def test_run_refuses_unknown_modes(mode: str) -> None:
    res = accord("run", ONBOARDING, "--cases", "5", "--mode", mode)
    assert res.returncode != 0
    no_traceback(res)
    assert f"mode {mode!r} is not available" in res.stderr
    assert res.stdout == ""


def test_run_choreographed_completes_every_case() -> None:
    res = accord("run", ONBOARDING, "--cases", "60", "--mode", "choreo", "--seed", "4", "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["mode"] == "choreo"
    assert summary["cases_completed"] == 60
    assert summary["hub_assignments"] == 0  # nobody assigns: members pull
    assert summary["bus_messages_per_case"] > 0


def test_run_refuses_zero_cases() -> None:
    res = accord("run", ONBOARDING, "--cases", "0")
    assert res.returncode != 0
    no_traceback(res)
    assert "--cases must be at least 1" in res.stderr


@pytest.mark.parametrize(
    "flags", [["--login-attempts", "0"], ["--login-window", "0"], ["--auth-cache", "-1"]]
)
def test_serve_refuses_limits_that_make_no_sense(flags: list[str], tmp_path: Path) -> None:
    res = accord("serve", "--db", str(tmp_path / "s.db"), *flags)
    assert res.returncode == 2
    no_traceback(res)
    assert "must" in res.stderr


def test_run_refuses_a_db_holding_a_different_run(run_db: Path) -> None:
    res = accord("run", ONBOARDING, "--cases", "41", "--seed", "3", "--db", run_db, "--json")
    assert res.returncode == 1
    no_traceback(res)
    assert "holds a different run" in res.stderr


def test_run_on_a_finished_db_resumes_to_the_same_result(run_db: Path) -> None:
    again = summary_of(
        accord("run", ONBOARDING, "--cases", "40", "--seed", "3", "--db", run_db, "--json")
    )
    assert again["resumed"] is True
    assert again["cases_completed"] == 40


# -- status and events --------------------------------------------------------------------------


def test_status_shows_cases_and_queues(run_db: Path) -> None:
    res = accord("status", "--db", run_db)
    assert res.returncode == 0, res.stderr
    assert "cases" in res.stdout
    assert "queues" in res.stdout
    assert re.search(r"completed\s*│\s*40\b", res.stdout), res.stdout


def test_status_of_a_missing_db_fails_cleanly(tmp_path: Path) -> None:
    res = accord("status", "--db", tmp_path / "none.db")
    assert res.returncode == 1
    no_traceback(res)
    assert "no database at" in res.stderr


def test_events_of_one_case(run_db: Path) -> None:
    res = accord("events", "--db", run_db, "--case", "case-000001")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines
    assert all("case-000001" in line for line in lines)
    assert "case.started" in lines[0]
    assert "case.completed" in lines[-1]


def test_events_as_cloudevents(run_db: Path) -> None:
    res = accord("events", "--db", run_db, "--case", "case-000002", "--json")
    assert res.returncode == 0, res.stderr
    docs = [json.loads(line) for line in res.stdout.splitlines()]
    assert docs[0]["type"] == "accord.case.started"
    assert {d["subject"] for d in docs} == {"case-000002"}
    assert [d["seq"] for d in docs] == list(range(1, len(docs) + 1))
    assert all(d["specversion"] == "1.0" for d in docs)


def test_events_exported_as_xes(run_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.xes"
    res = accord("events", "--db", run_db, "--xes", out)
    assert res.returncode == 0, res.stderr
    m = re.search(r"wrote (\d+) events", res.stderr)
    assert m is not None, res.stderr
    root = ET.parse(out).getroot()
    ns = {"x": "http://www.xes-standard.org/"}
    traces = root.findall("x:trace", ns)
    assert len(traces) == 40
    events = root.findall("x:trace/x:event", ns)
    assert len(events) == int(m[1])
    keys = {child.get("key") for child in events[0]}
    assert {"concept:name", "time:timestamp", "org:resource", "lifecycle:transition"} <= keys


@pytest.mark.parametrize("target", ["missing-dir/out.xes", "."], ids=["no-dir", "a-directory"])
def test_events_xes_to_an_unwritable_path_fails_cleanly(
    run_db: Path, tmp_path: Path, target: str
) -> None:
    """Regression: OSError from export_xes used to escape as a traceback."""
    res = accord("events", "--db", run_db, "--xes", tmp_path / target)
    assert res.returncode == 1
    no_traceback(res)
    assert "error: cannot write" in res.stderr


def test_events_of_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("not a database " * 100, encoding="utf-8")
    res = accord("events", "--db", junk)
    assert res.returncode == 1
    no_traceback(res)
    assert "error:" in res.stderr


# -- demo -----------------------------------------------------------------------------------------


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    res = accord("demo", "--db", db, "--cases", "30")
    assert res.returncode == 0, res.stderr
    no_traceback(res)
    for text in ("accord demo", "30 cases, seed 7", "cycle time", "timeline of", f"{db}"):
        assert text in res.stdout, text
    assert db.exists()
    again = accord("demo", "--db", db, "--cases", "30")  # an old demo db is replaced
    assert again.returncode == 0, again.stderr
    assert "30 / 30" in again.stdout
