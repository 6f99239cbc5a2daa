"""What changes when several engines share one database (``Engine(..., shared=True)``).

A single engine may keep things in memory: open cases (a cache), members' loads, the hub's
backlog and the handler queue. With several replicas none of that can be trusted, because any
of them may have moved a case on. In shared mode:

* case states are read from the store for every unit of work (no cache); the optimistic version
  check at commit catches a replica that got there first, and the unit is retried;
* members' loads are counted from the task table in each unit that assigns (plus what the unit
  itself changed), so push assignment sees every replica's claims. Two replicas assigning to the
  same member at the same instant may both see a free slot: a WIP limit can be exceeded by at
  most one task per concurrent replica, briefly (documented in docs/operations.md);
* the hub's backlog is the task table itself: ready hub tasks of a team, oldest first;
* automated steps are jobs leased from the task table (``Store.lease_tasks``), timers are
  leased before they fire (``Store.lease_timers``): ``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
  so replicas never take the same work, and a dead replica's leases simply run out.

These helpers work on the engine's private batch; they live here to keep engine.py about the
unit of work itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from accord.kernel import CaseStatus, RunHandler, TaskStatus
from accord.model.types import ProcessDefinition, StepKind

if TYPE_CHECKING:
    from accord.central.unit import UnitOfWork, _Batch

# How many ready tasks one refill looks at: enough to fill the slots one completion frees.
REFILL_WINDOW = 32


def refresh_loads(
    engine: UnitOfWork, batch: _Batch, d: ProcessDefinition, team: str | None
) -> None:
    """Load the team's members' current loads from the store (once per unit), adjusted by
    what this unit has already claimed or freed."""
    t = d.teams.get(team or "")
    if t is None:
        return
    fresh = [m.id for m in t.members if m.id not in batch.refreshed]
    if not fresh:
        return
    stored = engine.store.member_loads(fresh)
    for m in fresh:
        engine.assigner.load[m] = max(0, stored.get(m, 0) + batch.delta[m])
    batch.refreshed.update(fresh)


def refill(engine: UnitOfWork, batch: _Batch, team: str) -> None:
    """A member of ``team`` was freed: offer them the team's oldest ready hub tasks."""
    rows = engine.store.tasks(team=team, status=TaskStatus.READY.value, limit=REFILL_WINDOW)
    rows = [
        r for r in rows if r.hub and r.kind != StepKind.AUTOMATED.value and r.id not in batch.tried
    ]
    engine._prefetch(batch, [r.case_id for r in rows])
    for r in rows:
        batch.tried.add(r.id)
        state, _ = engine._state(batch, r.case_id)
        task = state.tasks.get(r.id) if state is not None else None
        if state is None or state.status is not CaseStatus.RUNNING:
            continue
        if task is None or task.status is not TaskStatus.READY or task.team != team:
            continue
        d = engine._defs.get(r.process)
        if d is None:
            continue
        member = engine._choose(batch, d, team, task.role)
        if member is not None:
            engine._try_claim(batch, r.case_id, r.id, member)


def lease_jobs(
    engine: UnitOfWork, limit: int, teams: Sequence[str] | None
) -> list[tuple[str, RunHandler]]:
    """Lease ready automated tasks from the store and turn them into handler jobs."""
    now = engine.clock.now()
    rows = engine.store.lease_tasks(engine.owner, now, now + engine.lease_s, limit, teams=teams)
    if not rows:
        return []
    states = engine.store.load_cases([r.case_id for r in rows])
    jobs: list[tuple[str, RunHandler]] = []
    for r in rows:
        d = engine._defs.get(r.process)
        loaded = states.get(r.case_id)
        if d is None or loaded is None or r.step not in d.steps:
            # Not deployed here: the lease runs out and a replica that knows it takes over.
            continue
        handler = d.steps[r.step].handler or ""
        engine._hints[r.id] = (r.case_id, loaded)
        jobs.append((r.case_id, RunHandler(r.id, r.step, handler, r.id, r.attempt,
                                           dict(loaded[0].data))))  # fmt: skip
    return jobs
