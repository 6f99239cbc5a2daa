"""Racing replicas in tests: run calls at the same instant, count the store's refusals."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from accord.central.engine import Engine
from accord.errors import CaseError
from accord.stores.base import ConcurrencyError


def count_conflicts(engine: Engine, counter: Counter[str], key: str) -> None:
    """Count, under ``key``, every commit the store refused because another writer won."""
    inner = engine.store.commit

    def commit(writes: Any, at: float) -> list[int]:
        try:
            return inner(writes, at)
        except ConcurrencyError:
            counter[key] += 1
            raise

    engine.store.commit = commit  # type: ignore[method-assign]


def race(calls: list[Callable[[], None]]) -> list[str]:
    """Run every call on its own thread, released together; "ok" or the CaseError's name."""
    barrier = threading.Barrier(len(calls))
    out: list[str] = []

    def run(fn: Callable[[], None]) -> None:
        barrier.wait()
        try:
            fn()
            out.append("ok")
        except CaseError as exc:
            out.append(type(exc).__name__)

    threads = [threading.Thread(target=run, args=(fn,)) for fn in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out
