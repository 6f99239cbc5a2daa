"""How the SQLite store writes a commit: many rows per statement, and refusals that carry
nothing of the connection with them."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from casekit import build

from accord.kernel import StartCase, advance
from accord.stores import open_store
from accord.stores.base import CaseWrite, ConcurrencyError
from accord.stores.sqlite import _ROWS_PER_INSERT

DEFINITION = build(
    """
    - {id: work, team: ops, next: done}
    - {id: done, type: end}
    """
)


def _new(case_id: str, at: float = 1.0) -> CaseWrite:
    tr = advance(DEFINITION, None, StartCase(at=at, case_id=case_id))
    return CaseWrite(tr.state, None, list(tr.events), dict(tr.state.tasks))


@pytest.mark.parametrize("n", [1, 3, 4, 17, 64, 85, 200])
def test_every_row_lands_in_order_whatever_the_batch_size(tmp_path: Path, n: int) -> None:
    """Rows go in statements of 64, 16, 4 and 1: every count comes out whole, in log order."""
    store = open_store(f"sqlite:///{tmp_path}/s.db")
    try:
        writes = [_new(f"c{i:03d}") for i in range(n)]
        store.commit(writes, 1.0)
        logged = [e.id for _pos, e in store.events()]
        assert logged == [e.id for w in writes for e in w.events]
        assert len(store.tasks()) == n
    finally:
        store.close()
    assert max(_ROWS_PER_INSERT) * 13 <= 999  # SQLite's oldest parameter limit


def test_a_refused_commit_keeps_no_cursor_alive(tmp_path: Path) -> None:
    """Group commit raises a refusal in another thread than the one that committed; if its
    traceback kept a cursor, freeing it there would reset a cached statement while the next
    commit runs it (seen as sqlite3.InterfaceError: bad parameter or other API misuse)."""
    store = open_store(f"sqlite:///{tmp_path}/s.db")
    try:
        first = _new("c1")
        store.commit([first], 1.0)
        stale = CaseWrite(first.state, 7, [], {}, stored=first.state)  # no such version
        with pytest.raises(ConcurrencyError) as info:
            store.commit([stale], 2.0)
        tb = info.value.__traceback__
        while tb is not None:
            held = [k for k, v in tb.tb_frame.f_locals.items() if isinstance(v, sqlite3.Cursor)]
            assert not held, f"{tb.tb_frame.f_code.co_name} keeps cursor(s) {held}"
            tb = tb.tb_next
    finally:
        store.close()


def test_refusals_freed_in_other_threads_while_commits_run(tmp_path: Path) -> None:
    """The race above, run: one thread commits while others drop refusals it handed them."""
    store = open_store(f"sqlite:///{tmp_path}/s.db")
    try:
        first = _new("c1")
        store.commit([first], 1.0)
        refusals: list[BaseException] = []
        lock = threading.Lock()
        stop = threading.Event()

        def refuse() -> None:
            stale = CaseWrite(first.state, 7, [], {}, stored=first.state)
            for _ in range(10_000):  # the old code failed within a few thousand
                try:
                    store.commit([stale], 2.0)
                except ConcurrencyError as exc:
                    with lock:
                        refusals.append(exc)

        def drop() -> None:
            while not stop.is_set():
                with lock:
                    refusals.clear()

        dropper = threading.Thread(target=drop)
        dropper.start()
        try:
            refuse()
        finally:
            stop.set()
            dropper.join()
    finally:
        store.close()
