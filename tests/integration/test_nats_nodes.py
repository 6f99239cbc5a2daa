"""Team nodes as separate OS processes on real NATS JetStream, with a status board.

Each node has its own SQLite store and no access to any other team's state; the only thing
they share is the bus. One test kills a node with SIGKILL mid-run and restarts it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import orjson
import pytest

from accord.buses.nats import NatsBus

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "examples" / "client-onboarding.yaml"
TEAMS = ["sales", "compliance", "it", "account-management"]
ACCORD = [sys.executable, "-m", "accord.cli"]
SPEED = "300000"  # a 30-minute task takes 6 ms

pytestmark = pytest.mark.slow


def _private_copy(tmp: Path) -> Path:
    """The onboarding example under a process id of its own: its own JetStream stream, so
    runs on the same broker (a developer's and a colleague's) never see each other."""
    pid = f"onboarding-{uuid.uuid4().hex[:8]}"
    text = SOURCE.read_text(encoding="utf-8").replace(
        "process: client-onboarding", f"process: {pid}", 1
    )
    (tmp / "onboarding_handlers.py").write_text(
        (SOURCE.parent / "onboarding_handlers.py").read_text(encoding="utf-8"), encoding="utf-8"
    )
    path = tmp / "onboarding.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _clean(nats_url: str, example: Path) -> None:
    bus = NatsBus(nats_url)
    bus.delete_stream(example.read_text().split("process: ", 1)[1].split()[0])
    bus.close()


def _node(team: str, tmp: Path, nats_url: str, example: Path) -> subprocess.Popen[bytes]:
    log = open(tmp / f"{team}.log", "ab")  # noqa: SIM115 - closed when the process is reaped
    proc = subprocess.Popen(
        [*ACCORD, "node", "--team", team, "--process", str(example), "--bus", nats_url,
         "--store", str(tmp / f"{team}.db"), "--members", "--speed", SPEED, "--seed", "5"],
        stdout=log, stderr=log, cwd=ROOT,
    )  # fmt: skip
    log.close()
    return proc


def _board(tmp: Path, nats_url: str, until: int, example: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*ACCORD, "board", "--process", str(example), "--bus", nats_url, "--out",
         str(tmp / "board.json"), "--every", "0.5", "--until", str(until)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip


def _request(nats_url: str, cases: int, example: Path) -> None:
    subprocess.run(
        [*ACCORD, "request", str(example), "--bus", nats_url, "--cases", str(cases)],
        cwd=ROOT, check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def _view(tmp: Path) -> list[dict[str, object]]:
    path = tmp / "board.json"
    if not path.exists():
        return []
    try:
        return list(orjson.loads(path.read_bytes())["cases"])
    except (orjson.JSONDecodeError, KeyError):
        return []  # caught mid-write


def _wait_completed(tmp: Path, n: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    done = 0
    while time.monotonic() < deadline:
        done = sum(1 for c in _view(tmp) if c["status"] == "completed")
        if done >= n:
            return done
        time.sleep(0.3)
    return done


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def _events(db: Path) -> list[tuple[str, str, str | None, str | None]]:
    con = sqlite3.connect(db)
    try:
        return list(con.execute("SELECT case_id, type, task, step FROM events ORDER BY pos"))
    finally:
        con.close()


def _check_logs(tmp: Path, cases: int) -> None:
    """Union of the nodes' logs: every case completed once, no task completed twice, and the
    board agrees with it case by case."""
    completed_by: dict[str, Counter[str]] = {}
    per_task: Counter[str] = Counter()
    for team in TEAMS:
        for case, etype, task, _step in _events(tmp / f"{team}.db"):
            if etype == "case.completed":
                completed_by.setdefault(team, Counter())[case] += 1
            if etype == "task.completed" and task:
                per_task[task] += 1
    assert set(completed_by) == {"sales"}, "only the initiating team declares completion"
    assert len(completed_by["sales"]) == cases
    assert max(completed_by["sales"].values()) == 1
    assert per_task and max(per_task.values()) == 1, "a step ran twice"
    done_steps: Counter[str] = Counter()
    for task in per_task:
        done_steps[task.rsplit(":", 2)[0]] += 1
    view = {str(c["case"]): c for c in _view(tmp)}
    assert len(view) == cases
    for case, c in view.items():
        assert c["status"] == "completed"
        assert c["steps_done"] == done_steps[case], case
        assert c["expected"] == []
    con = sqlite3.connect(tmp / "it.db")
    effects = [r[0] for r in con.execute("SELECT key FROM effects WHERE kind='accounts.created'")]
    con.close()
    accounts = {t for t in per_task if ":accounts:" in t}
    assert sorted(effects) == sorted(accounts), "an automated step's effect applied twice"


def test_four_team_nodes_and_a_board_complete_200_cases(tmp_path: Path, nats_url: str) -> None:
    example = _private_copy(tmp_path)
    procs = [_node(t, tmp_path, nats_url, example) for t in TEAMS]
    board = _board(tmp_path, nats_url, 200, example)
    try:
        _request(nats_url, 200, example)
        done = _wait_completed(tmp_path, 200, 120)
        assert done == 200, [p.poll() for p in procs]
        board.wait(30)
    finally:
        _stop([*procs, board])
    _clean(nats_url, example)
    for p in procs:
        assert p.returncode == 0, (tmp_path / "sales.log").read_text()[-2000:]
    _check_logs(tmp_path, 200)


def test_a_team_node_killed_mid_run_loses_and_doubles_nothing(
    tmp_path: Path, nats_url: str
) -> None:
    example = _private_copy(tmp_path)
    procs = {t: _node(t, tmp_path, nats_url, example) for t in TEAMS}
    board = _board(tmp_path, nats_url, 200, example)
    try:
        _request(nats_url, 200, example)
        assert _wait_completed(tmp_path, 20, 90) >= 20
        victim = procs["compliance"]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        at_kill = sum(1 for c in _view(tmp_path) if c["status"] == "completed")
        assert at_kill < 200, "the kill must land in the middle of the run"
        time.sleep(1.0)  # work piles up for compliance while it is down
        procs["compliance"] = _node("compliance", tmp_path, nats_url, example)
        assert _wait_completed(tmp_path, 200, 150) == 200
        board.wait(30)
    finally:
        _stop([*procs.values(), board])
    _clean(nats_url, example)
    _check_logs(tmp_path, 200)
