"""Running a team node in real time: timers, handlers, the outbox relay, and (for demos and
tests) synthetic members who pull work from the team's board.

A real team's members work through the API or the web app; `accord node --members` stands in
for them with the scenario's durations, sped up by ``speed`` (simulated seconds per second).
"""

from __future__ import annotations

import gc
import logging
import random
import threading
import time
from dataclasses import dataclass

from accord.choreo.node import TeamNode
from accord.errors import CaseError
from accord.kernel.scope import HUB
from accord.model.types import StepKind
from accord.sim.people import finish
from accord.sim.scenario import Scenario

log = logging.getLogger("accord.node")

# Young-generation collections every 10,000 allocations instead of Python's 700. A busy node
# makes and drops many small objects per case while it keeps thousands of case states cached,
# and with the default thresholds the collector scanned them over and over: about a tenth of
# the node's CPU in bench/choreo.py. Cycles are still collected, only less often.
GC_THRESHOLDS = (10_000, 10, 10)


def tune_gc() -> None:
    """Set the collector's thresholds for a process whose main job is running a node."""
    gc.set_threshold(*GC_THRESHOLDS)


@dataclass
class _Work:
    task: str
    step: str
    due: float


class LiveNode:
    """A node's main loop."""

    # Handlers run per pass, all committed together. Small rounds keep the nodes of a busy
    # choreography working at the same time: while the next round runs here, the last one is
    # on its way to (and being applied by) the next team, instead of every case moving in one
    # convoy from node to node.
    batch = 64

    def __init__(
        self,
        node: TeamNode,
        scenario: Scenario | None = None,
        *,
        members: bool = False,
        speed: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.node = node
        # this loop relays, without waiting for the broker: consumers never wait for acks
        node.eager_relay = False
        node.pipelined = True
        self.sc = scenario
        self.speed = max(speed, 1e-9)
        self.seed = seed
        d = node.d
        if not members or scenario is None:
            teams = []
        elif node.team == HUB:
            teams = list(d.teams)  # the hub hands its tasks to members of every team
        else:
            teams = [node.team] if node.team in d.teams else []
        self.members = {m.id: t for t in teams for m in d.teams[t].members}
        self.roles = {m.id: m.roles for t in teams for m in d.teams[t].members}
        self.busy: dict[str, _Work] = {}
        self.completed = 0

    def step(self) -> bool:
        """One pass: fire due timers, run handlers, let members work, publish. True if busy."""
        engine = self.node.engine
        moved = engine.fire_due_timers() > 0
        # one round of handlers (one commit), then publish it while the next round runs
        moved = engine.run_jobs(max_batch=self.batch, rounds=1) > 0 or moved
        moved = self._members() or moved
        return self.node.relay() > 0 or moved

    def _members(self) -> bool:
        if not self.members or self.sc is None:
            return False
        engine = self.node.engine
        now = time.monotonic()
        moved = False
        for member, work in list(self.busy.items()):
            if work.due <= now:
                del self.busy[member]
                rng = random.Random(f"{self.seed}:data:{work.task}")
                outcome = finish(
                    engine,
                    self.node.d,
                    self.sc,
                    task_id=work.task,
                    step_id=work.step,
                    member=member,
                    rng=rng,
                )
                self.completed += int(outcome.completed)
                moved = True
        for member, team in self.members.items():
            if member in self.busy:
                continue
            task = self._next_task(member, team)
            if task is None:
                continue
            task_id, step = task
            try:
                engine.start(task_id, member)
            except CaseError:
                continue
            rng = random.Random(f"{self.seed}:work:{task_id}:{member}")
            seconds = self.sc.step(step).duration.sample(rng) / self.speed
            self.busy[member] = _Work(task_id, step, time.monotonic() + seconds)
            moved = True
        return moved

    def _next_task(self, member: str, team: str) -> tuple[str, str] | None:
        engine = self.node.engine
        held = engine.tasks(assignee=member, status="claimed", limit=1)
        if held:
            return held[0].id, held[0].step
        for row in engine.tasks(team=team, status="ready", limit=20):
            if row.kind == StepKind.AUTOMATED.value or row.hub:
                continue  # handlers run by themselves; hub tasks are assigned, not pulled
            if row.role is not None and row.role not in self.roles.get(member, ()):
                continue
            try:
                engine.claim(row.id, member)
            except CaseError:
                continue  # someone else was faster
            return row.id, row.step
        return None

    def run(self, stop: threading.Event, idle_sleep: float = 0.005) -> None:
        """Loop until ``stop`` is set; sleep when idle until something commits (an arrival on
        the bus's thread) or the broker acknowledges a batch, at most ``idle_sleep``."""
        while not stop.is_set():
            try:
                busy = self.step()
            except Exception:  # keep serving: one bad case must not stop a team's node
                log.exception("%s: step failed", self.node.team)
                busy = False
            if not busy:
                self.node.wait(idle_sleep)
        for _ in range(10):  # publish what is left (a restart would, too, from the cursor)
            self.node.drain()
            if self.node.relay() == 0:
                break
        self.node.drain()
