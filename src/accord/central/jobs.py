"""Running automated steps' handlers: a small thread pool with a timeout.

Handlers run outside the engine's lock and outside any transaction; their results come back as
:class:`HandlerResult` values that the engine applies in one unit of work. A handler may run
more than once for one task (after a crash, or when a replica's lease ran out), so its effects
are guarded by the idempotency key in its context.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from accord.handlers import HandlerContext, HandlerError, HandlerRegistry
from accord.kernel import RunHandler

DEFAULT_HANDLER_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class HandlerResult:
    """What running a handler produced: output data, or an error message."""

    job: RunHandler
    case_id: str
    data: dict[str, Any] | None = None
    error: str | None = None
    retryable: bool = True


def outcome(case_id: str, job: RunHandler, out: Any) -> HandlerResult:
    """Turn what a handler returned (or raised) into a result."""
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
        imported, or one still running after ``timeout`` seconds) becomes a result with an
        error. ``timeout <= 0`` runs them inline, one after another."""
        results: list[HandlerResult | None] = [None] * len(jobs)
        pending: list[tuple[int, Future[Any]]] = []
        for i, (case_id, job) in enumerate(jobs):
            try:
                fn = self.handlers.resolve(job.handler)
            except HandlerError as exc:
                results[i] = HandlerResult(job, case_id, error=str(exc), retryable=False)
                continue
            ctx = context(case_id, job)
            if timeout <= 0:
                try:
                    results[i] = outcome(case_id, job, fn(ctx))
                except Exception as exc:  # a handler's bug becomes a failed task, not a crash
                    results[i] = outcome(case_id, job, exc)
                continue
            pending.append((i, self._pool().submit(fn, ctx)))
        deadline = time.monotonic() + timeout
        hung = False
        for i, future in pending:
            case_id, job = jobs[i]
            try:
                out = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                hung = True
                msg = f"handler {job.handler} did not finish within {timeout:g}s"
                results[i] = HandlerResult(job, case_id, error=msg)
                continue
            except Exception as exc:  # raised by the handler
                out = exc
            results[i] = outcome(case_id, job, out)
        if hung:
            self.shutdown()
        return [r for r in results if r is not None]
