"""The coordinating team behind a central hub, when a scenario declares one.

A central coordinator is more than the engine: in many organisations a PMO or an onboarding
coordinator decides who takes each piece of work and approves each handoff. Those people are
few and their decisions take time, so as teams or arrivals grow their queue grows: that is the
hub becoming the bottleneck, measured here rather than assumed.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from accord.kernel.state import case_of_task
from accord.sim.calendar import next_open
from accord.sim.scenario import HubScenario

if TYPE_CHECKING:
    from accord.sim.runner import Simulation


class HubDesk:
    """Synthetic coordinators who decide every central assignment."""

    def __init__(self, sim: Simulation, spec: HubScenario) -> None:
        self.sim = sim
        self.spec = spec
        self.coordinators = [f"hub-{i + 1}" for i in range(spec.coordinators)]
        self.busy: dict[str, bool] = dict.fromkeys(self.coordinators, False)
        self.queue: deque[tuple[str, str]] = deque()
        self.parked: dict[str, deque[str]] = {}
        self.decisions = 0
        self.queue_peak = 0

    def offer(self, task_id: str, team: str) -> None:
        """A task needs a coordinator's decision before anyone may work on it."""
        self.queue.append((task_id, team))
        self.queue_peak = max(self.queue_peak, len(self.queue))
        self.check()

    def freed(self, team: str) -> None:
        """Someone in ``team`` finished: work parked for lack of people there is decided again."""
        parked = self.parked.pop(team, None)
        if parked:
            self.queue.extendleft((t, team) for t in reversed(parked))
            self.check()

    def check(self) -> None:
        """Give waiting decisions to idle coordinators (within their hours)."""
        now = self.sim.clock.now()
        for c in self.coordinators:
            if not self.queue:
                return
            if self.busy[c]:
                continue
            start = next_open(now, self.spec.hours)
            task_id, team = self.queue.popleft()
            self.busy[c] = True
            r = self.sim.rng("hub", task_id, self.decisions)
            self.sim.at(start + self.spec.decision.sample(r), "hub", (c, task_id, team))

    def decide(self, coordinator: str, task_id: str, team: str) -> None:
        """The coordinator picks a member (the hub's policy, within WIP limits) or parks it."""
        self.busy[coordinator] = False
        self.decisions += 1
        engine = self.sim.engine_of(task_id)
        rows = engine.tasks(status="ready", case_id=case_of_task(task_id))
        row = next((r for r in rows if r.id == task_id), None)
        if row is not None:
            d = engine.definition(row.process)
            member = engine.assigner.choose(d, row.team, row.role)
            if member is None:
                self.parked.setdefault(row.team or team, deque()).append(task_id)
            else:
                self.sim._call(lambda: engine.claim(task_id, member, actor=f"hub:{coordinator}"))
        self.check()
