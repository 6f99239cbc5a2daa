"""The `accord` command on PostgreSQL, end to end: a simulated run of 1,000 onboarding cases
(the issue's acceptance command, on a schema of its own) and the operations commands."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from chaoskit import ROOT, scratch_schema

from accord.stores import open_store

ACCORD = [sys.executable, "-m", "accord.cli"]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_accord_run_completes_1000_cases_on_postgres() -> None:
    with scratch_schema("accord_cli_run") as url:
        res = subprocess.run(
            [*ACCORD, "run", "examples/client-onboarding.yaml", "--db", url, "--cases", "1000",
             "--json"],
            capture_output=True, text=True, cwd=ROOT, timeout=540, check=False,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        summary = json.loads(res.stdout)
        assert summary["cases_started"] == 1000
        assert summary["cases_open"] == 0
        assert summary["cases_completed"] + summary["cases_cancelled"] == 1000
        store = open_store(url)
        try:
            assert sum(store.count_cases().values()) == 1000
        finally:
            store.close()


def test_start_and_health_commands(tmp_path: object) -> None:
    with scratch_schema("accord_cli_ops") as url:
        start = subprocess.run(
            [*ACCORD, "start", "tests/chaos/onboarding-auto.yaml", "--db", url, "--count", "3",
             "--prefix", "x"],
            capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
        )  # fmt: skip
        assert start.returncode == 0, start.stderr
        assert "started 3 case(s)" in start.stdout
        again = subprocess.run(
            [*ACCORD, "start", "tests/chaos/onboarding-auto.yaml", "--db", url, "--count", "3",
             "--prefix", "x"],
            capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
        )  # fmt: skip
        assert "started 0 case(s)" in again.stdout  # idempotent per case id
        health = subprocess.run(
            [*ACCORD, "engine", "--db", url, "--health", "--json"],
            capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
        )  # fmt: skip
        assert health.returncode == 1  # no engine replica is running
        report = json.loads(health.stdout)
        assert report["status"] == "no live engine"
        assert report["cases"] == {"running": 3}
    down = subprocess.run(
        [*ACCORD, "engine", "--db", "postgresql://127.0.0.1:1/nope?connect_timeout=1", "--health"],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert down.returncode == 1
    assert "unreachable" in down.stderr and "Traceback" not in down.stderr
