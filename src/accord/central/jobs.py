"""Running automated steps' handlers: a small thread pool with a timeout.

Handlers run outside the engine's lock and outside any transaction; their results come back as
:class:`HandlerResult` values that the engine applies in one unit of work. A handler may run
more than once for one task (after a crash, or when a replica's lease ran out), so its effects
are guarded by the idempotency key in its context.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ALL_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from accord.fastinit import fast_init
from accord.handlers import BpmnError, Handler, HandlerContext, HandlerError, HandlerRegistry
from accord.kernel import RunHandler

DEFAULT_HANDLER_TIMEOUT = 60.0


@fast_init
@dataclass(frozen=True, slots=True)
class HandlerResult:
    """What running a handler produced: output data, or an error message."""

    job: RunHandler
    case_id: str
    data: dict[str, Any] | None = None
    error: str | None = None
    retryable: bool = True
    # explicit branch choices to apply with the completion (a simulation's scenario draws)
    decisions: dict[str, list[str]] = field(default_factory=dict)
    # The handler failed because the engine's own store did (say, while the database
    # restarted), not because of the work: the task is not failed, its job is run again later.
    transient: bool = False
    # the handler raised a BpmnError: a business error with this code (see FailTask.code)
    code: str = ""


def outcome(case_id: str, job: RunHandler, out: Any) -> HandlerResult:
    """Turn what a handler returned (or raised) into a result."""
    if isinstance(out, BpmnError):
        return HandlerResult(job, case_id, error=out.message, retryable=False, code=out.code)
    if isinstance(out, BaseException):
        return HandlerResult(job, case_id, error=f"{type(out).__name__}: {out}")
    if out is None:
        return HandlerResult(job, case_id, data={})
    if not isinstance(out, dict):
        msg = f"handler {job.handler} returned {type(out).__name__}, expected a dict"
        return HandlerResult(job, case_id, error=msg, retryable=False)
    return HandlerResult(job, case_id, data=out)


class HandlerPool:
    """Runs handlers concurrently on a few threads; a hung one is abandoned, not waited for."""

    def __init__(self, handlers: HandlerRegistry, threads: int) -> None:
        self.handlers = handlers
        self.threads = threads
        self._workers: ThreadPoolExecutor | None = None

    def _pool(self) -> ThreadPoolExecutor:
        if self._workers is None:
            self._workers = ThreadPoolExecutor(self.threads, "accord-handler")
        return self._workers

    def shutdown(self) -> None:
        """Stop waiting for running handlers; later calls start fresh threads."""
        # A hung handler's thread cannot be killed; stop waiting for it and start fresh threads.
        if self._workers is not None:
            self._workers.shutdown(wait=False, cancel_futures=True)
            self._workers = None

    def run(
        self,
        jobs: list[tuple[str, RunHandler]],
        timeout: float,
        context: Callable[[str, RunHandler], HandlerContext],
    ) -> list[HandlerResult]:
        """Run every job; each failure (exception, wrong return type, a handler that cannot be
        imported, or one still running ``timeout`` seconds after it started) becomes a result
        with an error. ``timeout <= 0`` runs them inline, one after another, and so are
        handlers registered ``inline`` (see :meth:`HandlerRegistry.register`) whatever the
        timeout.

        A job that never started because hung handlers held every thread is not failed: it
        comes back ``transient``, to be run again, since nothing is known about its work.
        """
        results: list[HandlerResult | None] = [None] * len(jobs)
        waiting: dict[Future[Any], int] = {}
        started: dict[int, float] = {}

        def timed(i: int, fn: Handler, ctx: HandlerContext) -> Callable[[], Any]:
            def call() -> Any:
                started[i] = time.monotonic()
                return fn(ctx)

            return call

        for i, (case_id, job) in enumerate(jobs):
            try:
                fn = self.handlers.resolve(job.handler)
            except HandlerError as exc:
                results[i] = HandlerResult(job, case_id, error=str(exc), retryable=False)
                continue
            ctx = context(case_id, job)
            if timeout <= 0 or self.handlers.inline(job.handler):
                try:
                    results[i] = outcome(case_id, job, fn(ctx))
                except Exception as exc:  # a handler's bug becomes a failed task, not a crash
                    results[i] = outcome(case_id, job, exc)
                continue
            waiting[self._pool().submit(timed(i, fn, ctx))] = i
        hung = False
        while waiting:
            now = time.monotonic()
            deadlines = [started[i] + timeout for i in waiting.values() if i in started]
            wake = min(deadlines, default=now + timeout) - now
            done, _ = wait(list(waiting), timeout=max(0.0, wake), return_when=ALL_COMPLETED)
            for future in done:
                i = waiting.pop(future)
                case_id, job = jobs[i]
                error = future.exception()
                results[i] = outcome(case_id, job, error if error is not None else future.result())
            now = time.monotonic()
            for future, i in list(waiting.items()):
                if i in started and now - started[i] >= timeout:
                    hung = True
                    del waiting[future]
                    case_id, job = jobs[i]
                    msg = f"handler {job.handler} did not finish within {timeout:g}s"
                    results[i] = HandlerResult(job, case_id, error=msg)
            for future, i in list(waiting.items()):
                if hung and future.cancel():
                    del waiting[future]  # it would wait behind hung threads: give it back
                    case_id, job = jobs[i]
                    msg = f"handler {job.handler} not started: other handlers hung"
                    results[i] = HandlerResult(job, case_id, error=msg, transient=True)
        if hung:
            self.shutdown()
        return [r for r in results if r is not None]
