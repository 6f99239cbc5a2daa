"""Kill the engine with SIGKILL in the middle of a run, restart it, and check nothing was lost.

This runs the real `accord` command as a separate OS process on a SQLite file, so what survives
is exactly what was committed.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "client-onboarding.yaml"
ACCORD = [sys.executable, "-m", "accord.cli"]
CASES = 500


def _completed(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            row = con.execute("SELECT count(*) FROM cases WHERE status = 'completed'").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return 0
    return int(row[0])


def _run_until(db: Path, threshold: int) -> int:
    """Start a run, SIGKILL it once `threshold` cases completed; return the count at the kill."""
    cmd = [*ACCORD, "run", str(EXAMPLE), "--cases", str(CASES), "--seed", "11", "--db", str(db),
           "--json"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if _completed(db) >= threshold:
                break
            time.sleep(0.005)
        assert proc.poll() is None, f"run ended before the kill: {proc.stderr.read()!r}"  # type: ignore[union-attr]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return _completed(db)


def test_sigkill_mid_run_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    first = _run_until(db, 40)
    second = _run_until(db, first + 80)
    assert 0 < first <= second < CASES, "the kills must land in the middle of the run"

    done = subprocess.run(
        [*ACCORD, "run", str(EXAMPLE), "--cases", str(CASES), "--seed", "11", "--db", str(db),
         "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["resumed"] is True
    assert summary["cases_started"] == CASES
    assert summary["cases_completed"] == CASES

    con = sqlite3.connect(db)
    statuses = dict(con.execute("SELECT status, count(*) FROM cases GROUP BY status").fetchall())
    assert statuses == {"completed": CASES}
    # No task completed twice: exactly one task.completed event per task id.
    per_task = Counter(
        r[0] for r in con.execute("SELECT task FROM events WHERE type = 'task.completed'")
    )
    assert per_task and max(per_task.values()) == 1
    # Every automated step's effect applied exactly once: one effect per completed accounts task.
    accounts_done = {t for t in per_task if ":accounts:" in t}
    effects = [r[0] for r in con.execute("SELECT key FROM effects WHERE kind='accounts.created'")]
    assert sorted(effects) == sorted(accounts_done)
    # Each case's event log is gap-free and ordered.
    for case_id, seqs in con.execute(
        "SELECT case_id, group_concat(seq) FROM (SELECT case_id, seq FROM events ORDER BY pos) "
        "GROUP BY case_id"
    ):
        numbers = [int(x) for x in seqs.split(",")]
        assert numbers == list(range(1, len(numbers) + 1)), case_id
    con.close()


@pytest.mark.parametrize("junk", [b"", b"not a database at all" * 100])
def test_run_refuses_a_file_that_is_not_a_store(tmp_path: Path, junk: bytes) -> None:
    db = tmp_path / "other.db"
    db.write_bytes(junk)
    res = subprocess.run(
        [*ACCORD, "run", str(EXAMPLE), "--cases", "5", "--db", str(db)],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    if junk:
        assert res.returncode == 1
        assert "error:" in res.stderr and "Traceback" not in res.stderr
    else:
        assert res.returncode == 0, res.stderr  # an empty file is a new SQLite database
