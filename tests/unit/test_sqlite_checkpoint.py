"""The SQLite store copies its write-ahead log back into the database file on a thread of its
own, so that no commit waits for that copy and the sync that ends it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from casekit import build

from accord.kernel import StartCase, advance
from accord.stores import open_store, sqlite
from accord.stores.base import CaseWrite

DEFINITION = build(
    """
    - {id: work, team: ops, next: done}
    - {id: done, type: end}
    """
)


def _checkpointers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "accord-sqlite-checkpoint"]


def test_the_log_is_checkpointed_in_the_background_not_by_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = len(_checkpointers())
    store = open_store(f"sqlite:///{tmp_path}/s.db")
    assert len(_checkpointers()) == before + 1
    monkeypatch.setattr(sqlite, "CHECKPOINT_EVERY_S", 0.05)
    time.sleep(0.6)  # the schema the store created is copied back first
    db_file = tmp_path / "s.db"
    size = db_file.stat().st_size
    for i in range(200):
        tr = advance(DEFINITION, None, StartCase(at=1.0, case_id=f"c{i}", data={"n": "x" * 200}))
        store.commit([CaseWrite(tr.state, None, list(tr.events), dict(tr.state.tasks))], 1.0)
    # far below SQLite's own checkpoint threshold: only the thread copies these pages back
    deadline = time.monotonic() + 10
    while db_file.stat().st_size <= size and time.monotonic() < deadline:
        time.sleep(0.05)
    assert db_file.stat().st_size > size
    assert len(store.cases()) == 200
    store.close()
    assert len(_checkpointers()) == before  # closing the store stops its thread
    reopened = open_store(f"sqlite:///{tmp_path}/s.db")
    assert len(reopened.cases()) == 200
    reopened.close()


def test_an_in_memory_store_has_no_checkpointer() -> None:
    before = len(_checkpointers())
    store = open_store("memory://")
    assert len(_checkpointers()) == before
    store.close()


def test_a_store_nobody_closed_stops_its_checkpointer_when_collected(tmp_path: Path) -> None:
    import gc

    before = len(_checkpointers())
    store = open_store(f"sqlite:///{tmp_path}/s.db")
    assert len(_checkpointers()) == before + 1
    del store
    gc.collect()
    deadline = time.monotonic() + 5
    while len(_checkpointers()) > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_checkpointers()) == before
