"""Running a team node in real time: timers, handlers, the outbox relay, and (for demos and
tests) synthetic members who pull work from the team's board.

A real team's members work through the API or the web app; `accord node --members` stands in
for them with the scenario's durations, sped up by ``speed`` (simulated seconds per second).
"""

from __future__ import annotations

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


@dataclass
class _Work:
    task: str
    step: str
    due: float


class LiveNode:
    """A node's main loop."""

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
        node.eager_relay = False  # this loop relays; consumers never wait for broker acks
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
        moved = engine.run_jobs() > 0 or moved
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
        """Loop until ``stop`` is set."""
        while not stop.is_set():
            try:
                busy = self.step()
            except Exception:  # keep serving: one bad case must not stop a team's node
                log.exception("%s: step failed", self.node.team)
                busy = False
            if not busy:
                stop.wait(idle_sleep)
        self.node.relay()
