"""The central engine: the hub that drives the kernel over a store.

Every public call is one unit of work: load the cases it touches, apply kernel transitions
(plus the hub's own follow-ups, such as assigning a task it just offered), then commit state,
events, queue rows and timers in one transaction before anything is acknowledged. A crash at
any point leaves either all of a unit or none of it. Handlers for automated steps run after the
commit that created their task; their effects are guarded by idempotency keys, because after a
crash a handler may run again (at-least-once delivery, exactly-once effect).

Several engines may share one database (``shared=True``, see accord.central.shared): then
nothing is trusted from memory, work is leased from the store, and a unit that loses a race
with another replica (the store's version check) is retried from fresh state.
"""

from __future__ import annotations

import copy
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from accord.central import shared as shared_mode
from accord.central.assignment import Assigner
from accord.central.jobs import DEFAULT_HANDLER_TIMEOUT, HandlerPool, HandlerResult
from accord.clock import Clock, SystemClock
from accord.errors import (
    AccordError,
    CaseError,
    ConflictError,
    ContractViolation,
    NotFound,
    StoreError,
)
from accord.events import Event
from accord.handlers import HandlerContext, HandlerRegistry
from accord.kernel import (
    AnswerIssue,
    AnyAction,
    CancelCase,
    CancelTimer,
    CaseState,
    CaseStatus,
    ClaimTask,
    CompleteTask,
    FailTask,
    FireTimer,
    OfferTask,
    PauseCase,
    RaiseIssue,
    ReassignTask,
    ReceiveMessage,
    ReleaseTask,
    RerouteCase,
    ResumeCase,
    RetryTask,
    RuleIssue,
    RunHandler,
    ScheduleTimer,
    Scope,
    StartCase,
    StartTask,
    TaskStatus,
    Transition,
    advance,
)
from accord.model.types import ProcessDefinition, StepKind
from accord.stores.base import CaseRow, CaseWrite, ConcurrencyError, Store, TaskRow

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


class Engine:
    """A central coordinator over one store. Thread-safe; calls are serialised by a lock.

    With ``shared=True`` other engines (replicas, workers) may write the same store at the same
    time: see accord.central.shared for what changes. ``owner`` names this replica in leases.
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
    ) -> None:
        self.store = store
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
            w = batch.writes[case_id] = CaseWrite(t.state, version)
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
        for e in t.events:
            w.events.append(e)
            batch.events.append(e)
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
            case_id = task_id.rsplit(":", 2)[0]
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
        for attempt in range(self.retries + 1):
            try:
                batch, result = self._compute(work)
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
        if not batch.writes:
            return
        writes = list(batch.writes.values())
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
                self.jobs.append((job.task_id.rsplit(":", 2)[0], job))

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

    # -- cases ----------------------------------------------------------------------------------

    def start_case(
        self,
        process: str,
        data: dict[str, Any] | None = None,
        *,
        case_id: str | None = None,
        actor: str | None = None,
        decisions: dict[str, list[str]] | None = None,
    ) -> str:
        """Start a case of ``process`` (id or id@version); return its id."""
        d = self.definition(process)
        cid = case_id or f"{d.id}-{uuid.uuid4().hex[:12]}"
        action = StartCase(
            at=self.clock.now(),
            actor=actor,
            case_id=cid,
            data=dict(data or {}),
            decisions=dict(decisions or {}),
        )

        def work(batch: _Batch) -> str:
            if self._state(batch, cid)[0] is not None:
                raise ConflictError(f"case {cid!r} already exists")
            t = advance(d, None, action, self.scope)
            self._record(batch, d, None, None, t)
            return cid

        result: str = self._unit(work)
        return result

    def apply(self, process: str, case_id: str, action: AnyAction) -> Transition:
        """Apply any kernel action as one unit of work: the door for drivers such as team nodes,
        which may hear of a case first through a handoff (so it may not exist here yet)."""

        def work(batch: _Batch) -> Transition:
            state, version = self._state(batch, case_id)
            d = self.definition(state.process if state is not None else process)
            t = advance(d, state, action, self.scope)
            self._record(batch, d, state, version, t)
            return t

        result: Transition = self._unit(work)
        return result

    def apply_many(self, items: list[tuple[str, str, AnyAction]]) -> list[Transition | CaseError]:
        """Apply several (process, case, action) in one unit of work (one commit). A refused
        action changes nothing and is returned as its error; the others stand."""

        def work(batch: _Batch) -> list[Transition | CaseError]:
            out: list[Transition | CaseError] = []
            for process, case_id, action in items:
                state, version = self._state(batch, case_id)
                d = self.definition(state.process if state is not None else process)
                try:
                    t = advance(d, state, action, self.scope)
                except CaseError as exc:
                    out.append(exc)
                    continue
                self._record(batch, d, state, version, t)
                out.append(t)
            return out

        result: list[Transition | CaseError] = self._unit(work)
        return result

    def _case_action(self, case_id: str, action: AnyAction) -> None:
        self._unit(lambda batch: self._apply(batch, case_id, action))

    def pause(self, case_id: str, reason: str = "", actor: str = "operator") -> None:
        """Stop a case from moving until it is resumed."""
        self._case_action(case_id, PauseCase(at=self.clock.now(), actor=actor, reason=reason))

    def resume(
        self, case_id: str, data: dict[str, Any] | None = None, actor: str = "operator"
    ) -> None:
        """Continue a paused case, optionally correcting its data first."""
        self._case_action(
            case_id, ResumeCase(at=self.clock.now(), actor=actor, data=dict(data or {}))
        )

    def cancel(self, case_id: str, reason: str = "", actor: str = "operator") -> None:
        """End a case now, cancelling every open task."""
        self._case_action(case_id, CancelCase(at=self.clock.now(), actor=actor, reason=reason))

    def reroute(
        self,
        case_id: str,
        step: str,
        data: dict[str, Any] | None = None,
        actor: str = "operator",
    ) -> None:
        """Withdraw every open task of a case and continue it at ``step``."""
        self._case_action(
            case_id,
            RerouteCase(at=self.clock.now(), actor=actor, step=step, data=dict(data or {})),
        )

    def send_message(
        self, case_id: str, name: str, data: dict[str, Any] | None = None, actor: str | None = None
    ) -> None:
        """Deliver a named message to the step of ``case_id`` waiting for it."""
        self._case_action(
            case_id,
            ReceiveMessage(at=self.clock.now(), actor=actor, name=name, data=dict(data or {})),
        )

    # -- tasks ----------------------------------------------------------------------------------

    @staticmethod
    def case_of(task_id: str) -> str:
        """The case a task belongs to (task ids are ``case:step:visit``)."""
        parts = task_id.rsplit(":", 2)
        if len(parts) != 3:
            raise NotFound(f"{task_id!r} is not a task id")
        return parts[0]

    def claim(self, task_id: str, member: str, actor: str | None = None) -> None:
        """Allocate a ready task to ``member`` (pull by the member, or by the hub/operator)."""
        self._case_action(
            self.case_of(task_id),
            ClaimTask(at=self.clock.now(), actor=actor or member, task_id=task_id, member=member),
        )

    def start(self, task_id: str, actor: str) -> None:
        """The member holding a task begins work on it (ends its waiting time)."""
        self._case_action(
            self.case_of(task_id), StartTask(at=self.clock.now(), actor=actor, task_id=task_id)
        )

    def raise_issue(
        self,
        task_id: str,
        actor: str,
        *,
        at_fault: str,
        proposal: str = "rework",
        evidence: str = "",
        deadline_s: float = 86400.0,
    ) -> None:
        """Report a problem with ``task_id`` caused by step ``at_fault``, proposing an action."""
        action = RaiseIssue(
            at=self.clock.now(),
            actor=actor,
            task_id=task_id,
            at_fault=at_fault,
            proposal=proposal,
            evidence=evidence,
            deadline_s=deadline_s,
        )
        self._case_action(self.case_of(task_id), action)

    def answer_issue(
        self, case_id: str, issue: str, actor: str, accept: bool = True, proposal: str = ""
    ) -> None:
        """Accept the proposal on the table, or counter it."""
        action = AnswerIssue(
            at=self.clock.now(), actor=actor, issue=issue, accept=accept, proposal=proposal
        )
        self._case_action(case_id, action)

    def rule_issue(self, case_id: str, issue: str, actor: str, action: str) -> None:
        """Decide an issue for good (the process owner, or the hub)."""
        self._case_action(
            case_id, RuleIssue(at=self.clock.now(), actor=actor, issue=issue, action=action)
        )

    def release(self, task_id: str, actor: str) -> None:
        """Return a claimed task to its team's queue."""
        self._case_action(
            self.case_of(task_id), ReleaseTask(at=self.clock.now(), actor=actor, task_id=task_id)
        )

    def complete(
        self,
        task_id: str,
        actor: str | None,
        data: dict[str, Any] | None = None,
        *,
        decisions: dict[str, list[str]] | None = None,
    ) -> None:
        """Complete a task with its output data (validated against the step's contract)."""
        action = CompleteTask(
            at=self.clock.now(),
            actor=actor,
            task_id=task_id,
            data=dict(data or {}),
            decisions=dict(decisions or {}),
        )
        self._case_action(self.case_of(task_id), action)

    def fail(self, task_id: str, actor: str | None, error: str, retryable: bool = True) -> None:
        """Report that a task cannot be done; retries or the step's error route follow."""
        action = FailTask(
            at=self.clock.now(), actor=actor, task_id=task_id, error=error, retryable=retryable
        )
        self._case_action(self.case_of(task_id), action)

    def reassign(
        self,
        task_id: str,
        member: str | None = None,
        team: str | None = None,
        actor: str = "operator",
    ) -> None:
        """Move a task to another member or team."""
        action = ReassignTask(
            at=self.clock.now(), actor=actor, task_id=task_id, member=member, team=team
        )
        self._case_action(self.case_of(task_id), action)

    def retry(self, task_id: str, actor: str = "operator") -> None:
        """Run a failed task again."""
        self._case_action(
            self.case_of(task_id), RetryTask(at=self.clock.now(), actor=actor, task_id=task_id)
        )

    # -- time -----------------------------------------------------------------------------------

    def fire_due_timers(self, limit: int = 1000) -> int:
        """Fire every timer due by now (one unit of work); return how many fired.

        Shared: only timers this replica could lease, so each timer fires on one replica.
        """
        now = self.clock.now()
        if self.shared:
            due = self.store.lease_timers(self.owner, now, now + self.lease_s, limit)
            self._hold(t[0] for t in due)
        else:
            due = self.store.due_timers(now, limit)
        if not due:
            return 0

        orphans: list[str] = []

        def work(batch: _Batch) -> None:
            orphans.clear()  # the unit may run again after losing a race
            self._prefetch(batch, [case_id for _, case_id, _ in due])
            for timer_id, case_id, _ in due:
                state, _v = self._state(batch, case_id)
                if state is None or state.status.ended:
                    orphans.append(timer_id)
                    continue
                try:
                    self._apply(batch, case_id, FireTimer(at=now, actor="timer", timer_id=timer_id))
                except CaseError as exc:
                    # one case refusing must not hold up every other timer due with it
                    log.warning("timer %s of case %s refused: %s", timer_id, case_id, exc)
                    continue
                w = batch.writes[case_id]
                if timer_id not in w.timers_set:
                    w.timers_cleared.add(timer_id)

        try:
            self._unit(work)
        except BaseException:
            self._release([t[0] for t in due])  # let any replica fire them, without waiting
            raise
        # fired timers were deleted (or rescheduled) by the commit: their leases went with them
        self._let_go(t[0] for t in due)
        if orphans:
            self.store.delete_timers(orphans)  # their cases ended; no commit will touch them
        return len(due)

    def next_timer(self) -> float | None:
        """When the earliest timer is due."""
        return self.store.next_timer()

    # -- handlers -------------------------------------------------------------------------------

    def _context(self, case_id: str, job: RunHandler) -> HandlerContext:
        return HandlerContext(
            key=job.key,
            case_id=case_id,
            task_id=job.task_id,
            step=job.step,
            attempt=job.attempt,
            data=dict(job.data),
            _record=self._record_effect,
        )

    def call_handlers(
        self, jobs: list[tuple[str, RunHandler]], timeout: float = DEFAULT_HANDLER_TIMEOUT
    ) -> list[HandlerResult]:
        """Run handlers (outside the lock), concurrently on the handler threads.

        Every failure becomes a result with an error: an exception, a wrong return type, a
        handler that cannot be imported, or one still running after ``timeout`` seconds. A
        failure of the engine's own store under a handler (``ctx.record_effect`` while the
        database restarts) is marked ``transient``: it says nothing about the work.
        """
        self._store_trouble.difference_update(job.key for _, job in jobs)
        results = self._runner.run(jobs, timeout, self._context)
        troubled = self._store_trouble | self._in_store
        return [
            replace(r, transient=True) if r.error is not None and r.job.key in troubled else r
            for r in results
        ]

    def call_handler(
        self, case_id: str, job: RunHandler, timeout: float = DEFAULT_HANDLER_TIMEOUT
    ) -> HandlerResult:
        """Run one handler; see :meth:`call_handlers`."""
        return self.call_handlers([(case_id, job)], timeout)[0]

    def _record_effect(self, key: str, kind: str, value: str) -> bool:
        self._in_store.add(key)
        try:
            return self.store.record_effect(key, kind, value, self.clock.now())
        except StoreError:
            self._store_trouble.add(key)
            raise
        finally:
            self._in_store.discard(key)

    def apply_results(self, results: list[HandlerResult]) -> None:
        """Complete or fail the tasks of finished handlers, all in one unit of work."""

        written: set[str] = set()
        with self._held_lock:
            hints = [self._hints.pop(r.job.task_id, None) for r in results]
        first = [h for h in hints if h is not None]

        def work(batch: _Batch) -> None:
            batch.loaded.update(first)  # only on the first attempt: a retry reads afresh
            first.clear()
            self._prefetch(batch, [r.case_id for r in results])
            for r in results:
                try:
                    self._apply_result(batch, r)
                except CaseError:
                    # e.g. the case was paused while the handler ran: the task stays ready and
                    # is handed out again when the case resumes; the rest of the round stands
                    continue
            written.clear()
            written.update(tid for w in batch.writes.values() for tid in w.tasks)

        ids = [r.job.task_id for r in results]
        try:
            self._unit(work)
        except BaseException:
            if self.shared:
                self._release(ids)
            raise
        if self.shared:
            # the commit ended the leases of the tasks it wrote; give back the rest (transient
            # failures, results that no longer applied) so any replica may take them now
            self._let_go(ids)
            self._release([t for t in ids if t not in written])
        else:
            for r in results:
                key = (r.job.task_id, r.job.attempt)
                if r.transient and key not in self._queued:
                    self._queued.add(key)
                    self.jobs.append((r.case_id, r.job))

    def _apply_result(self, batch: _Batch, r: HandlerResult) -> None:
        now = self.clock.now()
        state, _ = self._state(batch, r.case_id)
        if state is None:
            return
        if r.transient:
            return  # not the work's fault: the job runs again (see apply_results)
        task = state.tasks.get(r.job.task_id)
        if task is None or task.status not in (TaskStatus.READY, TaskStatus.CLAIMED):
            return  # withdrawn or already done while the handler ran: nothing to apply
        if task.attempt != r.job.attempt:
            return
        if r.error is None:
            try:
                self._apply(
                    batch,
                    r.case_id,
                    CompleteTask(
                        at=now,
                        actor="worker",
                        task_id=r.job.task_id,
                        data=r.data or {},
                        decisions=dict(r.decisions),
                    ),
                )
                return
            except ContractViolation as exc:
                r = HandlerResult(r.job, r.case_id, error=str(exc), retryable=False)
        self._apply(
            batch,
            r.case_id,
            FailTask(
                at=now,
                actor="worker",
                task_id=r.job.task_id,
                error=r.error or "",
                retryable=r.retryable,
            ),
        )

    def take_job(self) -> tuple[str, RunHandler]:
        """Take the oldest queued handler job (for drivers that run handlers themselves).

        Single-engine mode only: in shared mode jobs are leased with :meth:`lease_jobs`.
        """
        case_id, job = self.jobs.popleft()
        self._queued.discard((job.task_id, job.attempt))
        return case_id, job

    def lease_jobs(
        self, limit: int = 512, teams: Sequence[str] | None = None
    ) -> list[tuple[str, RunHandler]]:
        """Take up to ``limit`` handler jobs to run: from the in-memory queue, or in shared mode
        leased from the store (of ``teams`` only, if given) for ``lease_s`` seconds, so that no
        other replica runs them meanwhile unless this one dies."""
        if self.shared:
            jobs = shared_mode.lease_jobs(self, limit, teams)
            self._hold(job.task_id for _, job in jobs)
            return jobs
        return [self.take_job() for _ in range(min(limit, len(self.jobs)))]

    def held_leases(self) -> list[str]:
        """Ids of the tasks and timers this engine holds leases on while it works on them
        (what a replica's heartbeat renews)."""
        with self._held_lock:
            return list(self._held)

    def _hold(self, ids: Iterable[str]) -> None:
        with self._held_lock:
            self._held.update(ids)

    def _let_go(self, ids: Iterable[str]) -> None:
        with self._held_lock:
            for i in ids:
                self._held.discard(i)
                self._hints.pop(i, None)

    def _release(self, ids: list[str]) -> None:
        """Stop holding these leases and end them in the store (best effort: if the store is
        down they simply run out, as they would had this replica died)."""
        self._let_go(ids)
        if not ids:
            return
        try:
            self.store.release_leases(self.owner, ids)
        except Exception as exc:
            log.debug("could not release %d leases (%s); they will run out", len(ids), exc)

    def run_jobs(
        self,
        max_batch: int = 512,
        timeout: float = DEFAULT_HANDLER_TIMEOUT,
        *,
        teams: Sequence[str] | None = None,
        rounds: int | None = None,
    ) -> int:
        """Run queued handlers inline, committing each round's results together; return count.

        Each round commits before the next round's handlers start, so every step transition is
        durable before the case moves on (group commit, not deferred commit). Runs until no job
        is left, or for at most ``rounds`` rounds.
        """
        done = 0
        n = 0
        while rounds is None or n < rounds:
            round_ = self.lease_jobs(max_batch, teams)
            if not round_:
                break
            results = self.call_handlers(round_, timeout)
            self.apply_results(results)
            done += len(round_)
            n += 1
        return done

    def assign_backlog(self) -> int:
        """Offer waiting hub tasks to members with free capacity (one unit of work); return how
        many were assigned. Replicas call this now and then as a safety net: normally a task is
        assigned when it is offered or when a member of its team frees up."""
        teams = {t for d in self._defs.values() for t, team in d.teams.items()
                 if team.assignment != "pull"}  # fmt: skip

        def work(batch: _Batch) -> int:
            for team in sorted(teams):
                self._refill(batch, team)
            return sum(1 for w in batch.writes.values() for _ in w.tasks)

        assigned: int = self._unit(work)
        return assigned

    # -- queries --------------------------------------------------------------------------------

    def case(self, case_id: str) -> CaseState:
        """The current state of a case."""
        with self._lock:
            cached = self._cache.get(case_id)
            if cached is not None:
                return copy.deepcopy(cached[0])  # the caller's to change, not the engine's
            loaded = self.store.load_case(case_id)
        if loaded is None:
            raise NotFound(f"no case {case_id!r}")
        return loaded[0]

    def cases(self, status: str | None = None, limit: int | None = None) -> list[CaseRow]:
        """Cases, oldest first, optionally of one status."""
        return self.store.cases(status, limit)

    def tasks(
        self,
        *,
        team: str | None = None,
        assignee: str | None = None,
        status: str | None = "ready",
        case_id: str | None = None,
        limit: int | None = None,
    ) -> list[TaskRow]:
        """The task queue, oldest first (default: ready tasks)."""
        return self.store.tasks(
            team=team, assignee=assignee, status=status, case_id=case_id, limit=limit
        )

    def events(self, case_id: str | None = None) -> list[Event]:
        """The event log (of one case, or all), in order."""
        return [e for _, e in self.store.events(case_id)]

    def close(self) -> None:
        """Stop the handler threads and close the store."""
        self._runner.shutdown()
        self.store.close()


def open_engine(
    url: str,
    definitions: Iterable[ProcessDefinition] = (),
    *,
    clock: Clock | None = None,
    handlers: HandlerRegistry | None = None,
) -> Engine:
    """Open an engine on the store a URL names (``sqlite:///x.db``, ``memory://``)."""
    from accord.stores import open_store

    return Engine(open_store(url), definitions, clock=clock, handlers=handlers)


__all__ = ["AccordError", "Engine", "HandlerResult", "open_engine"]
