"""One long-running engine replica or worker: the loop behind ``accord engine`` and
``accord worker``.

Any number of replicas share one database (each with ``Engine(..., shared=True)``). Each loop
turn fires the timers it can lease, runs one round of the handler jobs it can lease and, now and
then, sweeps the hub's backlog. Nothing is kept between turns that another replica would need:
a replica can be killed at any instant, and what it held is leased to someone else once its
leases run out. A heartbeat thread records the replica in the store (for ``--health`` and
operators) and renews its leases, so long handlers keep their jobs while a dead replica's
leases lapse after ``lease_s`` seconds.

When the database goes away the loop backs off (exponentially, with jitter, up to
``max_backoff_s``) and carries on when it is back; the connection pool reconnects by itself.
``stop()`` (SIGTERM) lets the current turn finish and commit, then gives back every lease the
replica still holds, so nothing waits for a lease to run out.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from accord.central.engine import Engine
from accord.stores.base import ReplicaRow

log = logging.getLogger("accord.replica")


@dataclass(slots=True)
class ReplicaConfig:
    """What a replica does. A worker is a replica that only runs its teams' handler jobs."""

    role: str = "engine"
    teams: Sequence[str] | None = None
    jobs: bool = True
    timers: bool = True
    assign: bool = True
    batch: int = 256
    handler_timeout: float = 20.0
    heartbeat_s: float = 2.0
    idle_s: float = 0.25
    sweep_s: float = 5.0
    max_backoff_s: float = 5.0
    prune_after_s: float = 3600.0
    job_threads: int = 2


@dataclass(slots=True)
class ReplicaStats:
    """Counters a replica reports in its heartbeat and on its health endpoint."""

    state: str = "starting"
    started_at: float = field(default_factory=time.time)
    last_turn: float = 0.0
    jobs: int = 0
    timers: int = 0
    assigned: int = 0
    errors: int = 0
    last_error: str | None = None
    store_ok: bool = True


class Replica:
    """Drives one shared engine until stopped."""

    def __init__(self, engine: Engine, config: ReplicaConfig | None = None) -> None:
        if not engine.shared:
            raise ValueError("a replica needs an Engine(..., shared=True)")
        self.engine = engine
        self.config = config or ReplicaConfig()
        self.stats = ReplicaStats()
        self._stop = threading.Event()
        self._count = threading.Lock()
        self._last_sweep = 0.0

    @property
    def id(self) -> str:
        """This replica's name in leases and heartbeats."""
        return self.engine.owner

    def stop(self) -> None:
        """Ask the loop to finish its current turn and shut down cleanly."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    def turn(self) -> int:
        """One pass over the work this replica may take; return how much it did."""
        cfg, engine = self.config, self.engine
        did = 0
        if cfg.timers:
            n = engine.fire_due_timers(limit=cfg.batch)
            self.stats.timers += n
            did += n
        if cfg.jobs and cfg.job_threads <= 1:
            did += self.jobs_turn()
        now = time.monotonic()
        if cfg.assign and now - self._last_sweep >= cfg.sweep_s:
            self._last_sweep = now
            n = engine.assign_backlog()
            self.stats.assigned += n
            did += n
        return did

    def jobs_turn(self) -> int:
        """Lease one batch of handler jobs, run them and commit their results."""
        cfg = self.config
        n: int = self.engine.run_jobs(cfg.batch, cfg.handler_timeout, teams=cfg.teams, rounds=1)
        with self._count:
            self.stats.jobs += n
        return n

    def run(self) -> None:
        """Loop until stopped: work while there is work, sleep (briefly) when there is none.

        With ``job_threads > 1`` handler jobs run in that many loops of their own: while one
        waits for its commit to reach the disk, another computes its next batch.
        """
        beat = threading.Thread(target=self._heartbeats, name="accord-heartbeat", daemon=True)
        beat.start()
        cfg = self.config
        helpers = [
            threading.Thread(target=self._loop, args=(self.jobs_turn,), name=f"accord-jobs-{i}")
            for i in range(cfg.job_threads if cfg.jobs and cfg.job_threads > 1 else 0)
        ]
        for h in helpers:
            h.start()
        log.info("replica %s (%s) started", self.id, cfg.role)
        try:
            self._loop(self.turn)
        finally:
            self.stats.state = "draining"
            self._stop.set()
            for h in helpers:  # each finishes (and commits) the batch it is running
                h.join(timeout=cfg.handler_timeout + 30)
            beat.join(timeout=cfg.heartbeat_s + 5)  # no heartbeat after signing off
            self._shutdown()

    def _loop(self, step: Callable[[], int]) -> None:
        idle = 0.005
        backoff = 0.0
        while not self._stop.is_set():
            try:
                did = step()
            except Exception as exc:  # the database is down, or a unit kept losing races
                with self._count:
                    self.stats.errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                self.stats.state = "degraded"
                backoff = min(self.config.max_backoff_s, max(0.1, backoff * 2))
                log.warning("turn failed (%s); retrying in ~%.1fs", exc, backoff)
                self._stop.wait(backoff * random.uniform(0.5, 1.0))
                continue
            backoff = 0.0
            self.stats.state = "running"
            self.stats.last_turn = time.time()
            if did:
                idle = 0.005
            else:
                self._stop.wait(idle)
                idle = min(self.config.idle_s, idle * 2)

    def _shutdown(self) -> None:
        """Give back what this replica still holds, so others need not wait for leases."""
        store = self.engine.store
        try:
            released = store.release_leases(self.id)
            store.forget_replica(self.id)
            log.info("replica %s stopped; released %d leases", self.id, released)
        except Exception as exc:  # the database is gone: the leases will simply run out
            log.warning("could not release leases on shutdown (%s); they will expire", exc)
        self.stats.state = "stopped"

    def _heartbeats(self) -> None:
        beats = 0
        while not self._stop.wait(self.config.heartbeat_s):
            self.beat()
            beats += 1
            if beats % 30 == 1:
                self._prune()

    def _prune(self) -> None:
        """Forget replicas silent for ``prune_after_s`` (killed ones never sign off)."""
        store = self.engine.store
        try:
            for r in store.replicas():
                if time.time() - r.seen_at > self.config.prune_after_s:
                    store.forget_replica(r.id)
        except Exception as exc:
            log.debug("pruning replicas failed: %s", exc)

    def beat(self) -> None:
        """Record this replica in the store and renew its leases."""
        store = self.engine.store
        try:
            held = self.engine.held_leases()
            if held:
                store.renew_leases(self.id, self.engine.clock.now() + self.engine.lease_s, held)
            store.heartbeat(self.row())
            self.stats.store_ok = True
        except Exception as exc:
            self.stats.store_ok = False
            log.debug("heartbeat failed: %s", exc)

    def row(self) -> ReplicaRow:
        """This replica as its heartbeat describes it."""
        s = self.stats
        return ReplicaRow(
            id=self.id,
            role=self.config.role,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=s.started_at,
            seen_at=time.time(),
            state=s.state,
            info=self.info(),
        )

    def info(self) -> dict[str, Any]:
        """Counters and settings, for the heartbeat row and the health endpoint."""
        s = self.stats
        return {
            "teams": list(self.config.teams) if self.config.teams is not None else None,
            "jobs": s.jobs,
            "timers": s.timers,
            "assigned": s.assigned,
            "errors": s.errors,
            "last_error": s.last_error,
        }

    def healthy(self) -> bool:
        """Up and making progress: its last turn succeeded recently and the store answers."""
        s = self.stats
        recent = time.time() - s.last_turn < max(10.0, 4 * self.config.handler_timeout)
        return s.state == "running" and s.store_ok and recent
