"""Helpers for the fault tests: a fresh PostgreSQL schema, real `accord engine` / `accord worker`
processes, and the checks that a run lost nothing and did nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from accord import Engine, HandlerRegistry
from accord.model import load
from accord.stores import open_store
from accord.stores.base import Store
from pgkit import PG_URL, require_postgres

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFINITION = HERE / "onboarding-auto.yaml"
ACCORD = [sys.executable, "-m", "accord.cli"]


@contextmanager
def scratch_schema(prefix: str) -> Iterator[str]:
    """A store URL on a schema of its own, dropped afterwards."""
    from accord.stores.postgres import drop_schema

    url = f"{PG_URL}?schema={prefix}_{uuid.uuid4().hex[:10]}"
    require_postgres(url)
    try:
        yield url
    finally:
        drop_schema(url)


def client(url: str) -> Engine:
    """A shared engine in the test process (it starts cases and reads results)."""
    return Engine(open_store(url), [load(DEFINITION)], handlers=HandlerRegistry([HERE]),
                  shared=True)  # fmt: skip


class Fleet:
    """Real replica and worker processes on one store; each can be killed and restarted."""

    def __init__(self, url: str, log: Path, lease: float = 3.0) -> None:
        self.url = url
        self.log = log
        self.lease = lease
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.args: dict[str, list[str]] = {}
        self.kills = 0
        self.killed: set[int] = set()

    def spawn(self, name: str, *args: str) -> None:
        """Start `accord <args>` as the process called ``name``."""
        self.args[name] = list(args)
        self._start(name)

    def _start(self, name: str) -> None:
        cmd = [*ACCORD, *self.args[name], "--db", self.url, "--process", str(DEFINITION),
               "--lease", str(self.lease), "--handler-timeout", "2",
               "--log-level", "error"]  # fmt: skip
        env = {**os.environ, "ACCORD_CHAOS_LOG": str(self.log)}
        errors = open(self.log.with_suffix(f".{name}.err"), "ab")  # noqa: SIM115
        self.procs[name] = subprocess.Popen(
            cmd, cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=errors
        )
        errors.close()

    def kill(self, name: str) -> None:
        """SIGKILL one process (no chance to clean up) and start it again."""
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.kills += 1
        self.killed.add(proc.pid)
        self._start(name)

    def alive(self) -> list[str]:
        """Processes still running (a crash would show up here)."""
        return [n for n, p in self.procs.items() if p.poll() is None]

    def wait_ready(self, store: Store, timeout: float = 30.0) -> None:
        """Wait until every running process has sent a heartbeat (a process restarted just now
        may still be importing, before its SIGTERM handler exists)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = {r.pid for r in store.replicas()}
            if all(p.pid in seen for p in self.procs.values() if p.poll() is None):
                return
            time.sleep(0.2)

    def stop(self) -> dict[str, int | None]:
        """SIGTERM every process and wait; return their exit codes."""
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for n, p in self.procs.items():
            try:
                codes[n] = p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                codes[n] = p.wait(10)
        return codes


def wait_for(store: Store, total: int, timeout: float, tick: object = None) -> dict[str, int]:
    """Wait until ``total`` cases have ended; call ``tick()`` between polls."""
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        try:
            counts = store.count_cases()
        except Exception:
            counts = {}  # the database is restarting
        if sum(n for s, n in counts.items() if s in ("completed", "cancelled")) >= total:
            return counts
        if callable(tick):
            tick()
        time.sleep(0.2)
    return counts


def check_run(store: Store, cases: int, log: Path) -> dict[str, int]:
    """Nothing lost, nothing done twice, every case's log gap-free and ordered."""
    assert store.count_cases() == {"completed": cases}
    per_case: dict[str, list[int]] = defaultdict(list)
    completed: Counter[str] = Counter()
    for _, e in store.events():
        per_case[e.case].append(e.seq)
        if e.type.value == "task.completed" and e.task:
            completed[e.task] += 1
    assert len(per_case) == cases
    for case_id, seqs in per_case.items():
        assert seqs == list(range(1, len(seqs) + 1)), f"{case_id}: {seqs}"
    twice = [t for t, n in completed.items() if n > 1]
    assert not twice, f"tasks completed more than once: {twice[:5]}"
    # Every automated step's effect was applied once: one effect per completed handler task,
    # and none for a task that never completed.
    automated = {t for t in completed if t.rsplit(":", 2)[1] not in ("settle",)}
    effects = [key for key, _, _ in store.effects()]
    assert len(effects) == len(set(effects))
    assert set(effects) == automated
    invocations = log.read_text().splitlines() if log.exists() else []
    assert len(invocations) >= len(effects)
    settled = sum(1 for t in completed if ":settle:" in t)
    retried = {line.split()[1] for line in invocations
               if ":accounts:" in line and int(line.split()[2]) > 1}  # fmt: skip
    return {
        "events": sum(len(s) for s in per_case.values()),
        "effects": len(effects),
        "invocations": len(invocations),
        "wait_timers_fired": settled,
        "retry_timers_fired": len(retried),
    }
