"""Group commit: units of work computed at the same time share one transaction.

A shared engine computes its units one at a time under its lock, then commits each outside it
(see accord.central.unit). Under concurrent requests (the web app: one thread per request)
several units are ready to commit at once, and each commit costs a transaction of its own: on
PostgreSQL a few round trips and a flush of the write-ahead log. :class:`GroupCommit` lets them
share it:

* the first unit to arrive becomes the *leader*; units arriving while a commit is in flight
  queue up behind it, and the next leader takes all of them together (no waiting when alone);
* a leader whose group is smaller than the number of units still being computed waits for
  them up to ``window_s`` (default 1 ms), so that a burst shares one commit;
* two units writing the same case never share a group: the later one goes into the next
  group, where the store's version check decides (and the engine retries it on fresh state);
* when the shared commit fails on a version check, each unit of the group is committed alone,
  so one unit that lost a race never fails the others; any other failure (the database went
  away) fails every unit of the group, as it would have failed each alone.

Nothing is acknowledged early: :meth:`commit` returns (or raises) only once the transaction
holding that unit has committed (or failed), so a caller answers its client only after its
writes are durable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from accord.stores.base import CaseWrite, ConcurrencyError

DEFAULT_WINDOW_S = 0.001
MAX_GROUP = 128


@dataclass(slots=True)
class _Pending:
    writes: list[CaseWrite]
    cases: frozenset[str]
    done: bool = False
    error: BaseException | None = None
    versions: list[int] = field(default_factory=list)


def _settled(p: _Pending) -> bool:
    return p.done


class GroupCommit:
    """Commits concurrent callers' writes together through ``commit`` (a store's)."""

    def __init__(
        self,
        commit: Callable[[list[CaseWrite], float], list[int]],
        window_s: float = DEFAULT_WINDOW_S,
        max_group: int = MAX_GROUP,
    ) -> None:
        self._commit = commit
        self.window_s = window_s
        self.max_group = max_group
        self._cond = threading.Condition(threading.Lock())
        self._queue: list[_Pending] = []
        self._leading = False
        self._computing = 0  # units between arrive() and commit()/leave()
        # how many commits and how many units they carried (for tests and benchmarks)
        self.commits = 0
        self.units = 0

    def arrive(self) -> None:
        """A unit starts computing: a leader may wait (briefly) for it to join its group."""
        with self._cond:
            self._computing += 1

    def leave(self) -> None:
        """A unit that arrived will not commit (it failed, or wrote nothing)."""
        with self._cond:
            self._computing = max(0, self._computing - 1)
            self._cond.notify_all()

    def commit(self, writes: list[CaseWrite], at: float) -> list[int]:
        """Commit ``writes`` (in a group with others' if there are any); return once durable.

        The caller must have called :meth:`arrive` before computing them."""
        mine = _Pending(writes, frozenset(w.state.case_id for w in writes))
        with self._cond:
            self._computing = max(0, self._computing - 1)
            self._queue.append(mine)
            self._cond.notify_all()
            while not mine.done and self._leading:
                self._cond.wait()
            if mine.done:
                return self._outcome(mine)
            self._leading = True
        try:
            while not _settled(mine):  # (a call: another thread settles it)
                self._lead(at)
        finally:
            with self._cond:
                self._leading = False
                self._cond.notify_all()
        return self._outcome(mine)

    @staticmethod
    def _outcome(p: _Pending) -> list[int]:
        if p.error is not None:
            raise p.error
        return p.versions

    def _lead(self, at: float) -> None:
        """Take a group from the queue (waiting for units still computing, up to the window)
        and commit it."""
        deadline = time.monotonic() + self.window_s
        with self._cond:
            while (
                self._computing > 0
                and len(self._queue) < self.max_group
                and (left := deadline - time.monotonic()) > 0
            ):
                self._cond.wait(left)
            group: list[_Pending] = []
            touched: set[str] = set()
            kept: list[_Pending] = []
            for p in self._queue:
                if len(group) < self.max_group and not (p.cases & touched):
                    group.append(p)
                    touched |= p.cases
                else:
                    kept.append(p)
            self._queue = kept
        try:
            self._run(group, at)
        finally:
            with self._cond:
                for p in group:
                    p.done = True
                self._cond.notify_all()

    def _run(self, group: list[_Pending], at: float) -> None:
        self.commits += 1
        self.units += len(group)
        if len(group) > 1:
            merged = [w for p in group for w in p.writes]
            try:
                versions = self._commit(merged, at)
            except ConcurrencyError:
                pass  # one of them lost a race: commit each alone, so only that one fails
            except BaseException as exc:
                for p in group:
                    p.error = exc
                return
            else:
                i = 0
                for p in group:
                    p.versions = versions[i : i + len(p.writes)]
                    i += len(p.writes)
                return
            self.commits += len(group)
        for p in group:
            try:
                p.versions = self._commit(p.writes, at)
            except BaseException as exc:
                p.error = exc


__all__ = ["DEFAULT_WINDOW_S", "GroupCommit"]
