"""The engine's core: units of work over a store, and the hub's own follow-ups.

Every public call of the engine is one unit of work: load the cases it touches, apply kernel
transitions (plus the hub's follow-ups, such as assigning a task it just offered), then commit
state, events, queue rows and timers in one transaction before anything is acknowledged.
See accord.central.engine for the public surface and accord.central.work for timers and
handlers.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accord.central import shared as shared_mode
from accord.central.assignment import Assigner
from accord.central.group import GroupCommit
from accord.central.jobs import HandlerPool
from accord.clock import Clock, SystemClock
from accord.errors import (
    CaseError,
    NotFound,
)
from accord.events import Event
from accord.handlers import HandlerRegistry
from accord.kernel import (
    AnyAction,
    CancelTimer,
    CaseState,
    CaseStatus,
    ClaimTask,
    OfferTask,
    RunHandler,
    ScheduleTimer,
    Scope,
    TaskStatus,
    Transition,
    advance,
    case_of_task,
)
from accord.model.types import ProcessDefinition, StepKind
from accord.stores.base import CaseWrite, ConcurrencyError, Store

# How long a replica holds leased work before another may take it over (a live replica renews
# its leases; see accord.central.replica).
DEFAULT_LEASE_S = 30.0
DEFAULT_RETRIES = 10
log = logging.getLogger("accord.engine")
EventListener = Callable[[list[Event]], None]


@dataclass(slots=True)
class _Batch:
    writes: dict[str, CaseWrite] = field(default_factory=dict)
    jobs: list[RunHandler] = field(default_factory=list)
    offers: deque[tuple[str, OfferTask]] = field(default_factory=deque)
    freed_teams: set[tuple[str, str]] = field(default_factory=set)
    events: list[Event] = field(default_factory=list)
    # cases read by this unit (each once, so the unit sees one consistent state of each)
    loaded: dict[str, tuple[CaseState, int]] = field(default_factory=dict)
    # shared mode: claims (+1) and releases (-1) this unit made, per member, not yet committed
    delta: Counter[str] = field(default_factory=Counter)
    refreshed: set[str] = field(default_factory=set)
    tried: set[str] = field(default_factory=set)


def replica_id() -> str:
    """A name for this process among the replicas sharing a database."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class UnitOfWork:
    """The core of the engine: definitions, the unit of work, recovery after a restart.

    Calls are serialised by a lock. With ``shared=True`` other engines (replicas, workers) may
    write the same store at the same time: see accord.central.shared for what changes.
    """

    def __init__(
        self,
        store: Store,
        definitions: Iterable[ProcessDefinition] = (),
        *,
        clock: Clock | None = None,
        handlers: HandlerRegistry | None = None,
        cache_size: int = 20_000,
        source: str = "accord/central",
        handler_threads: int = 4,
        scope: Scope | None = None,
        shared: bool = False,
        owner: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        retries: int = DEFAULT_RETRIES,
        auto_assign: bool = True,
        group_commit: GroupCommit | None = None,
    ) -> None:
        self.store = store
        # shared mode: concurrent units commit together (accord.central.group)
        self.group_commit = group_commit if shared else None
        # False when someone else (a coordinating team in a simulation) makes hub assignments
        self.auto_assign = auto_assign
        self.shared = shared
        self.owner = owner or replica_id()
        self.lease_s = lease_s
        self.retries = retries
        # With a scope this engine is one team's node in a choreography (accord.choreo.node):
        # it runs only that team's part and hands tokens for other teams off as events.
        self.scope = scope
        self.clock: Clock = clock or SystemClock()
        self.handlers = handlers or HandlerRegistry()
        self.source = source
        self.assigner = Assigner()
        self.jobs: deque[tuple[str, RunHandler]] = deque()
        self.listeners: list[EventListener] = []
        self._defs: dict[str, ProcessDefinition] = {}
        self._latest: dict[str, ProcessDefinition] = {}
        self._cache: OrderedDict[str, tuple[CaseState, int]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.RLock()
        self.handler_threads = handler_threads
        self._runner = HandlerPool(self.handlers, handler_threads)
        # idempotency keys whose handler is inside, or failed in, a call to the store
        self._in_store: set[str] = set()
        self._store_trouble: set[str] = set()
        # shared mode: leases this engine holds while it works on them (renewed by heartbeats)
        self._held: set[str] = set()
        self._held_lock = threading.Lock()
        # the states read when jobs were leased, so applying their results need not read them
        # again (a stale one only costs a retry: the commit's version check catches it)
        self._hints: dict[str, tuple[str, tuple[CaseState, int]]] = {}
        self._queued: set[tuple[str, int]] = set()
        for d in definitions:
            self.deploy(d)
        self._recover()

    # -- definitions ----------------------------------------------------------------------------

    def deploy(self, d: ProcessDefinition) -> None:
        """Make a definition runnable here (and record its source in the store)."""
        with self._lock:
            self._defs[d.key] = d
            current = self._latest.get(d.id)
            if current is None or current.version <= d.version:
                self._latest[d.id] = d
            if d.source and Path(d.source).is_file():
                self.handlers.add_path(Path(d.source).parent)
                text = Path(d.source).read_text(encoding="utf-8")
            else:
                text = ""
            self.store.put_definition(d.key, d.name, text, self.clock.now())

    def deployed(self) -> list[ProcessDefinition]:
        """Every deployed definition (each version), by process id then version."""
        with self._lock:
            return sorted(self._defs.values(), key=lambda d: (d.id, d.version))

    def definition(self, name: str) -> ProcessDefinition:
        """A deployed definition by ``id`` (latest version) or ``id@version``."""
        d = self._defs.get(name) or self._latest.get(name)
        if d is None:
            known = ", ".join(sorted(self._defs)) or "none"
            raise NotFound(f"no process {name!r} deployed (deployed: {known})")
        return d

    # -- the unit of work -----------------------------------------------------------------------

    def _state(self, batch: _Batch, case_id: str) -> tuple[CaseState | None, int | None]:
        w = batch.writes.get(case_id)
        if w is not None:
            return w.state, w.expected_version
        loaded = batch.loaded.get(case_id)
        if loaded is not None:
            return loaded
        if not self.shared:
            cached = self._cache.get(case_id)
            if cached is not None:
                return cached
        loaded = self.store.load_case(case_id)
        if loaded is None:
            return None, None
        batch.loaded[case_id] = loaded
        return loaded

    def _prefetch(self, batch: _Batch, case_ids: Iterable[str]) -> None:
        """Read the cases a unit is about to touch in one query instead of one each."""
        cache = {} if self.shared else self._cache
        wanted = {c for c in case_ids if c not in batch.writes and c not in batch.loaded}
        missing = [c for c in wanted if c not in cache]
        if len(missing) > 1:
            batch.loaded.update(self.store.load_cases(missing))

    def _apply(self, batch: _Batch, case_id: str, action: AnyAction) -> Transition:
        state, version = self._state(batch, case_id)
        if state is None:
            raise NotFound(f"no case {case_id!r}")
        d = self.definition(state.process)
        t = advance(d, state, action, self.scope)
        self._record(batch, d, state, version, t)
        return t

    def _record(
        self,
        batch: _Batch,
        d: ProcessDefinition,
        old: CaseState | None,
        version: int | None,
        t: Transition,
    ) -> None:
        """Fold a transition into the batch, tracking member load for the assigner."""
        case_id = t.state.case_id
        w = batch.writes.get(case_id)
        if w is None:
            # ``old`` is what the store holds at ``version`` (read by this batch, or cached
            # after the commit that wrote it)
            w = batch.writes[case_id] = CaseWrite(t.state, version, stored=old)
        w.state = t.state
        old_tasks = old.tasks if old is not None else {}
        for tid, task in t.state.tasks.items():
            before = old_tasks.get(tid)
            if before is task:
                continue
            w.tasks[tid] = task
            held_before = (
                before.assignee
                if before is not None and before.status is TaskStatus.CLAIMED
                else None
            )
            held_now = task.assignee if task.status is TaskStatus.CLAIMED else None
            if held_before and held_before != held_now:
                self.assigner.freed(held_before)
                batch.delta[held_before] -= 1
                if before is not None and before.team:
                    batch.freed_teams.add((d.key, before.team))
            if held_now and held_now != held_before:
                self.assigner.taken(held_now)
                batch.delta[held_now] += 1
        w.events.extend(t.events)
        batch.events.extend(t.events)
        for cmd in t.commands:
            if isinstance(cmd, ScheduleTimer):
                w.timers_set[cmd.timer_id] = cmd.due
                w.timers_cleared.discard(cmd.timer_id)
            elif isinstance(cmd, CancelTimer):
                w.timers_set.pop(cmd.timer_id, None)
                w.timers_cleared.add(cmd.timer_id)
            elif isinstance(cmd, RunHandler):
                batch.jobs.append(cmd)
            elif isinstance(cmd, OfferTask):
                batch.offers.append((case_id, cmd))

    def _assign(self, batch: _Batch) -> None:
        """The hub's follow-ups: push each offered task to a member, refill freed capacity."""
        if not self.auto_assign:
            batch.offers.clear()
            batch.freed_teams.clear()
            return
        while batch.offers or batch.freed_teams:
            while batch.offers:
                case_id, offer = batch.offers.popleft()
                state, _ = self._state(batch, case_id)
                if state is None or not offer.hub or offer.team is None:
                    continue
                d = self.definition(state.process)
                member = self._choose(batch, d, offer.team, offer.role)
                # shared: the task table is the backlog, so nothing is remembered in memory
                if member is None:
                    pushed = d.teams.get(offer.team) and d.teams[offer.team].assignment != "pull"
                    if pushed and not self.shared:
                        self.assigner.defer(offer.team, offer.task_id, d.key, offer.role)
                    continue
                claimed = self._try_claim(batch, case_id, offer.task_id, member)
                if not claimed and not self.shared:
                    self.assigner.defer(offer.team, offer.task_id, d.key, offer.role)
            if batch.freed_teams:
                _key, team = batch.freed_teams.pop()
                self._refill(batch, team)

    def _choose(
        self, batch: _Batch, d: ProcessDefinition, team: str | None, role: str | None
    ) -> str | None:
        if self.shared:
            shared_mode.refresh_loads(self, batch, d, team)
        return self.assigner.choose(d, team, role)

    def _try_claim(self, batch: _Batch, case_id: str, task_id: str, member: str) -> bool:
        """A hub follow-up: it may find the case paused or the task gone, which must never
        refuse the action that triggered it."""
        action = ClaimTask(at=self.clock.now(), actor="hub", task_id=task_id, member=member)
        try:
            self._apply(batch, case_id, action)
        except CaseError:
            return False
        return True

    def _refill(self, batch: _Batch, team: str) -> None:
        if self.shared:
            shared_mode.refill(self, batch, team)
            return
        backlog = self.assigner.backlog.get(team)
        kept: deque[tuple[str, str, str | None]] = deque()
        while backlog:
            task_id, process, role = backlog.popleft()
            case_id = case_of_task(task_id)
            state, _ = self._state(batch, case_id)
            task = state.tasks.get(task_id) if state is not None else None
            if task is None or task.status is not TaskStatus.READY or task.team != team:
                continue
            if state is not None and state.status is not CaseStatus.RUNNING:
                kept.append((task_id, process, role))  # offered again once the case resumes
                continue
            member = self.assigner.choose(self.definition(process), team, role)
            if member is None or not self._try_claim(batch, case_id, task_id, member):
                kept.append((task_id, process, role))
        if backlog is not None:
            backlog.extend(kept)

    def _unit(self, work: Callable[[_Batch], Any]) -> Any:
        """Run ``work`` and the hub's follow-ups, commit, then publish. Refusal changes nothing.

        When another writer moved a case on first (the store's version check), the whole unit
        runs again on fresh state, a bounded number of times with jittered back-off: ``work``
        must therefore be repeatable (it is: it only computes from what it reads).
        """
        group = self.group_commit
        for attempt in range(self.retries + 1):
            try:
                if group is not None:
                    group.arrive()  # a leader may wait briefly for this unit to join its commit
                try:
                    batch, result = self._compute(work)
                except BaseException:
                    if group is not None:
                        group.leave()
                    raise
                if self.shared:
                    # Nothing in memory depends on a shared engine's commit, so it runs outside
                    # the lock: another thread's unit computes while this one waits for the disk.
                    self._commit(batch)
                    self._publish(batch.events)
                return result
            except ConcurrencyError as exc:
                if attempt == self.retries:
                    raise
                log.debug("unit lost a race (%s); retrying", exc)
            time.sleep(random.uniform(0, min(0.2, 0.002 * 2**attempt)))
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def _compute(self, work: Callable[[_Batch], Any]) -> tuple[_Batch, Any]:
        """Run ``work`` and the follow-ups under the lock; single-engine mode also commits and
        publishes here (so listeners hear units in commit order)."""
        with self._lock:
            batch = _Batch()
            loads = self.assigner.load.copy()
            backlog = {k: deque(v) for k, v in self.assigner.backlog.items()}
            try:
                result = work(batch)
                self._straight_through(batch)
                self._assign(batch)
                if not self.shared:
                    self._commit(batch)
            except BaseException:
                self.assigner.load = loads
                self.assigner.backlog = backlog
                # a failed or interrupted commit leaves these cases' cached states in doubt
                for cid in batch.writes:
                    self._cache.pop(cid, None)
                raise
            if not self.shared:
                self._publish(batch.events)
            return batch, result

    def _straight_through(self, batch: _Batch) -> None:
        """Run the inline handlers of tasks this unit made ready (see WorkRunner)."""

    def _publish(self, events: list[Event]) -> None:
        """Tell listeners what was committed. A failing listener is logged, never undoes the
        commit and never keeps the others from hearing."""
        if not events:
            return
        for listener in self.listeners:
            try:
                listener(events)
            except Exception:
                log.exception("event listener %r failed", listener)

    def _commit(self, batch: _Batch) -> None:
        group = self.group_commit
        if not batch.writes:
            if group is not None:
                group.leave()
            return
        writes = list(batch.writes.values())
        if group is not None:
            versions = group.commit(writes, self.clock.now())
        else:
            versions = self.store.commit(writes, self.clock.now())
        if self.shared:
            return  # nothing kept in memory: jobs wait in the task table to be leased
        for w, v in zip(writes, versions, strict=True):
            cid = w.state.case_id
            if w.state.status.ended:
                self._cache.pop(cid, None)
            else:
                self._cache[cid] = (w.state, v)
                self._cache.move_to_end(cid)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        for job in batch.jobs:
            key = (job.task_id, job.attempt)
            if key not in self._queued:  # a resume may hand out a job that is still queued
                self._queued.add(key)
                self.jobs.append((case_of_task(job.task_id), job))

    def _recover(self) -> None:
        """After a restart: rebuild member loads and the backlog, requeue unfinished handlers."""
        if self.shared:
            return  # shared mode reads all of these from the store when it needs them
        for row in self.store.tasks(status=TaskStatus.CLAIMED.value):
            if row.assignee:
                self.assigner.taken(row.assignee)
        for row in self.store.tasks(status=TaskStatus.READY.value):
            if row.kind == StepKind.AUTOMATED.value:
                loaded = self.store.load_case(row.case_id)
                if loaded is None or row.process not in self._defs:
                    continue
                state, _ = loaded
                d = self._defs[row.process]
                handler = d.steps[row.step].handler or ""
                job = RunHandler(row.id, row.step, handler, row.id, row.attempt, dict(state.data))
                self._queued.add((job.task_id, job.attempt))
                self.jobs.append((row.case_id, job))
            elif row.team and row.hub:
                self.assigner.defer(row.team, row.id, row.process, row.role)
