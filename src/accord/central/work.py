"""The engine's time and jobs: firing due timers, running automated steps' handlers.

Handlers run after the commit that created their task; their effects are guarded by idempotency
keys, because after a crash a handler may run again (at-least-once delivery, exactly-once
effect). In shared mode (several replicas) jobs and timers are leased from the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from accord.central import shared as shared_mode
from accord.central.jobs import DEFAULT_HANDLER_TIMEOUT, HandlerResult
from accord.central.unit import UnitOfWork, _Batch, log
from accord.errors import (
    CaseError,
    ContractViolation,
    StoreError,
)
from accord.handlers import HandlerContext
from accord.kernel import (
    CompleteTask,
    FailTask,
    FireTimer,
    RunHandler,
    TaskStatus,
    case_of_task,
)

# Rounds of inline handlers one unit of work runs straight through (a round: the inline handlers
# whose tasks the previous round made ready). A chain of inline steps longer than this, or a loop
# of them, goes on in the next unit: the tasks still waiting are queued as ordinary jobs.
STRAIGHT_THROUGH_ROUNDS = 100


class WorkRunner(UnitOfWork):
    """Timers and handler jobs on top of the units of work."""

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

    def _straight_through(self, batch: _Batch) -> None:
        """Straight-through processing: the handlers registered ``inline`` (quick, never
        blocking) of the tasks this unit made ready run now, and their results are applied in
        the same unit, so such a step starts and ends in one commit with the transition that
        led to it (Camunda 7 calls this a synchronous continuation). Other handlers wait for
        the commit and run from the queue, outside the engine's lock.

        If the process dies before the commit, the transition that made the task ready is
        lost with it and happens again (a redelivered message, a retried call), and the handler
        with it, under the same idempotency key when the case id is the same. One difference
        from the queued path: an effect the handler records (``ctx.record_effect``) commits on
        its own, so it stays recorded even if this unit then fails to commit; a caller who
        retries a case start without naming the case gets a new case, a new key, and the
        effect again. Inline handlers are meant for pure computation.
        """
        inline = self.handlers.inline
        later: list[RunHandler] = []  # the store failed under them: queued after the commit
        try:
            for _ in range(STRAIGHT_THROUGH_ROUNDS):
                now = [j for j in batch.jobs if inline(j.handler)]
                if not now:
                    return
                batch.jobs = [j for j in batch.jobs if not inline(j.handler)]
                for r in self.call_handlers([(case_of_task(j.task_id), j) for j in now]):
                    if r.transient:
                        later.append(r.job)  # not run again in this unit
                        continue
                    try:
                        self._apply_result(batch, r)
                    except CaseError:
                        continue  # as in apply_results: the task stays ready
        finally:
            batch.jobs.extend(later)

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
                code=r.code,
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
