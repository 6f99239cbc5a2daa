"""`accord run FILE.bpmn` plays the world outside: messages and signals for boundaries and event
sub-processes, BPMN errors for error boundaries; every case completes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from clikit import accord

ROOT = Path(__file__).resolve().parents[2]
ENGINE_TESTS = ROOT.parent / "shared" / "corpus" / "bpmn" / "camunda-platform" / "engine-tests"
MESSAGES = ENGINE_TESTS / "MessageBoundaryEventTest.testBoundaryMessageEventOnSubprocess.bpmn20.xml"
SIGNAL = ENGINE_TESTS / "SignalEventTest.testSignalBoundaryOnSubProcess.bpmn20.xml"

pytestmark = pytest.mark.skipif(
    not ENGINE_TESTS.is_dir() and not os.environ.get("CI"), reason="no BPMN corpus"
)


def test_run_takes_the_message_boundaries_now_and_then_and_completes_every_case() -> None:
    res = accord("run", MESSAGES, "-n", "200", "--seed", "3", "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["cases_completed"] == 200 and summary["incidents"] == 0
    steps = summary["steps"]
    # the sub-process's normal path, and each boundary's path (the default: one arming in ten)
    normal = steps["taskAfterSubProcess"]["completed"]
    one, two = (steps[f"taskAfterMessage_{n}"]["completed"] for n in ("one", "two"))
    assert normal + one + two == 200
    assert 5 <= one <= 40 and 5 <= two <= 40


def test_a_scenario_file_says_when_the_signal_comes(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        "steps:\n  waitStopSignal:\n    arrives: {chance: 0.5, after: PT12H}\n", encoding="utf-8"
    )
    res = accord("run", SIGNAL, "-n", "100", "--scenario", scenario, "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["cases_completed"] == 100
    # the sub-process waits a day: the signal half of the cases get (after 12 hours) ends it
    timers = summary["steps"]["timer"]["completed"]
    assert 30 <= timers <= 70
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps:\n  timer:\n    arrives: {chance: 0.5}\n", encoding="utf-8")
    res = accord("run", SIGNAL, "-n", "1", "--scenario", bad)
    assert res.returncode != 0
    assert f"{bad}:3:5: timer: arrives applies to message and signal steps" in res.stdout + (
        res.stderr
    )
