"""SQLite store (WAL): the embedded default. One writer connection; every batch one transaction.

``sqlite:///path/to.db`` opens a file; ``?synchronous=FULL`` trades speed for surviving power
loss (the default NORMAL survives a process crash, which is what ``kill -9`` tests).
``memory://`` is SQLite's in-memory mode: the same SQL and the same behaviour, minus the file.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson

from accord.errors import StoreError
from accord.events import Event
from accord.kernel.state import CaseState, state_from_json
from accord.stores.base import CaseRow, CaseWrite, ConcurrencyError, ReplicaRow, TaskRow
from accord.stores.migrations import MIGRATIONS
from accord.stores.rows import TASK_COLS, event_row, task_filter, task_row

_INSERT_EVENTS = (
    "INSERT INTO events (id, case_id, seq, type, at, process, step, team, actor, task, data,"
    " causation, source) VALUES {values}"
)
# A commit that writes a task ends any lease on it: the holder's work is done or moot.
_UPSERT_TASKS = (
    "INSERT INTO tasks (id, case_id, process, step, kind, team, role, status, assignee, ready_at,"
    " claimed_at, attempt, hub) VALUES {values}"
    " ON CONFLICT(id) DO UPDATE SET team=excluded.team, status=excluded.status, "
    "assignee=excluded.assignee, claimed_at=excluded.claimed_at, attempt=excluded.attempt, "
    "lease_owner=NULL, lease_until=NULL"
)
# Rows per INSERT statement ({values} above; see _insert): many rows in one statement are bound
# and stepped in one call (executemany steps each row apart, and lets go of the GIL and takes it
# back for each). The sizes are few so that SQLite's statement cache keeps them all; 64 rows of
# 13 columns stay under the 999 parameters older SQLite builds allow.
_ROWS_PER_INSERT = (64, 16, 4, 1)
# A case whose status and ended_at stay as stored: its indexes on those are left untouched.
_UPDATE_CASE = (
    "UPDATE cases SET version=version+1, state=?, updated_at=?, incident=? WHERE id=? AND version=?"
)
_UPDATE_CASE_STATUS = (
    "UPDATE cases SET status=?, version=version+1, state=?, ended_at=?, updated_at=?, incident=? "
    "WHERE id=? AND version=?"
)
_SYNC = {"OFF", "NORMAL", "FULL", "EXTRA"}
# The write-ahead log is copied back into the database file (a checkpoint, which syncs the file)
# by a thread of its own, on its own connection, this often; the connection that commits never
# does it, so a commit never waits for that copy and its sync. SQLite's own checkpoint after
# AUTOCHECKPOINT_PAGES (4 KB each) stays as a backstop should the thread fall behind.
CHECKPOINT_EVERY_S = 0.25
AUTOCHECKPOINT_PAGES = 10_000
# The sqlite3 module binds int, float and str as they are, but looks for an adapter for every
# other value, None and bytes included: a failed lookup on its protocol class, which formats an
# AttributeError each time, then on the value. A commit binds a dozen or so of those per step.
# Registered adapters that hand the value back unchanged make that one dict lookup and one C
# call. They are the module's, so any sqlite3 connection in the process gets them: they change
# nothing it stores, and one registered already is left as it is.
sqlite3.adapters.setdefault((type(None), sqlite3.PrepareProtocol), {}.get)  # {}.get(None): None
sqlite3.adapters.setdefault((bytes, sqlite3.PrepareProtocol), bytes)  # bytes(b) is b
_EVENT_COLS = (
    "pos, id, case_id, seq, type, at, process, step, team, actor, task, data, causation, source"
)


def _ddl(sql: str) -> str:
    return sql.format(blob="BLOB", auto="INTEGER PRIMARY KEY AUTOINCREMENT", json="TEXT")


class SqliteStore:
    """A store in one SQLite database file (or in memory)."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = urlparse(url)
        query = parse_qs(parsed.query)
        sync = query.get("synchronous", ["NORMAL"])[0].upper()
        if sync not in _SYNC:
            raise StoreError(f"synchronous must be one of {sorted(_SYNC)}, not {sync!r}")
        self.synchronous = sync
        if parsed.scheme == "memory":
            target = ":memory:"
        else:
            target = parsed.path if not parsed.netloc else parsed.netloc + parsed.path
            if url.startswith("sqlite:////"):
                target = "/" + target.lstrip("/")
            elif url.startswith("sqlite:///"):
                target = target[1:] if target.startswith("/") else target
            if not target:
                raise StoreError(f"no database path in {url!r} (use sqlite:///path/to.db)")
            parent = Path(target).parent
            if not parent.exists():
                raise StoreError(f"directory {parent} does not exist (for {url!r})")
        self.path = target
        self._lock = threading.RLock()
        self.commits = 0  # see Store.commits
        try:
            self._db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={sync}")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
            self._stop_checkpointer: Callable[[], Any] | None = None
            if target != ":memory:":
                self._db.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
                # stopped by close(), or when a store nobody closed is collected
                self._stop_checkpointer = weakref.finalize(self, _Checkpointer(target).stop)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open {url!r} as an accord store: {exc}") from None

    # -- schema ---------------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
                )
                row = self._db.execute("SELECT max(version) FROM schema_version").fetchone()
                current = row[0] or 0
                for number, statements in MIGRATIONS:
                    if number <= current:
                        continue
                    for sql in statements:
                        self._db.execute(_ddl(sql))
                    self._db.execute("INSERT INTO schema_version VALUES (?)", (number,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def schema_version(self) -> int:
        row = self._db.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def close(self) -> None:
        if self._stop_checkpointer is not None:
            self._stop_checkpointer()  # (once: a finalizer runs at most once)
        with self._lock:
            self._db.close()

    # -- definitions ----------------------------------------------------------------------------

    def put_definition(self, key: str, name: str, source: str, at: float) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO definitions (key, name, source, deployed_at) VALUES (?,?,?,?) "
                "ON CONFLICT(key) DO UPDATE SET "
                "name=excluded.name, source=CASE WHEN excluded.source = '' "
                "THEN definitions.source ELSE excluded.source END",
                (key, name, source, at),
            )

    def definitions(self) -> list[tuple[str, str, str]]:
        with self._lock:
            rows = self._db.execute("SELECT key, name, source FROM definitions ORDER BY key")
            return [(r[0], r[1], r[2]) for r in rows]

    # -- cases ----------------------------------------------------------------------------------

    def load_case(self, case_id: str) -> tuple[CaseState, int] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT state, version FROM cases WHERE id = ?", (case_id,)
            ).fetchone()
        if row is None:
            return None
        return state_from_json(row[0]), int(row[1])

    def load_cases(self, case_ids: Sequence[str]) -> dict[str, tuple[CaseState, int]]:
        ids = list(dict.fromkeys(case_ids))
        out: dict[str, tuple[CaseState, int]] = {}
        with self._lock:
            for i in range(0, len(ids), 500):  # SQLite caps the number of parameters
                chunk = ids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT id, state, version FROM cases WHERE id IN ({marks})", chunk
                ).fetchall()
                out.update({r[0]: (state_from_json(r[1]), int(r[2])) for r in rows})
        return out

    def commit(self, writes: list[CaseWrite], at: float) -> list[int]:
        if not writes:
            return []
        versions: list[int] = []
        event_rows: list[tuple[Any, ...]] = []
        task_rows: list[tuple[Any, ...]] = []
        timers_cleared: list[tuple[str]] = []
        timers_set: list[tuple[str, str, float]] = []
        new_cases: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []  # status and ended_at as stored
        status_updates: list[tuple[Any, ...]] = []  # status or ended_at changed
        # the rows are made before the write lock is taken: other writers wait less
        for w in writes:
            s = w.state
            incident = orjson.dumps(s.incident).decode() if s.incident else None
            if w.expected_version is None:
                new_cases.append(
                    (s.case_id, s.process, s.status._value_, 1, s.to_json(),
                     s.started_at, s.ended_at, at, incident)
                )  # fmt: skip
                versions.append(1)
            else:
                stored = w.stored
                if (
                    stored is not None
                    and stored.status is s.status
                    and stored.ended_at == s.ended_at
                ):
                    # status and ended_at as stored: their indexes stay untouched
                    updates.append((s.to_json(), at, incident, s.case_id, w.expected_version))
                else:
                    status_updates.append(
                        (s.status._value_, s.to_json(), s.ended_at, at, incident,
                         s.case_id, w.expected_version)
                    )  # fmt: skip
                versions.append(w.expected_version + 1)
            # the rows of every case go in one statement per table, in the same order
            # (events in log order: their positions are as if written case by case)
            event_rows.extend(
                (e.id, e.case, e.seq, e.type._value_, e.at, e.process, e.step, e.team,
                 e.actor, e.task, orjson.dumps(e.data).decode(), e.causation, e.source)
                for e in w.events
            )  # fmt: skip
            task_rows.extend(
                (t.id, s.case_id, s.process, t.step, t.kind._value_, t.team, t.role,
                 t.status._value_, t.assignee, t.ready_at, t.claimed_at, t.attempt,
                 int(t.hub))
                for t in w.tasks.values()
            )  # fmt: skip
            # a timer id names its case, so no timer is in two writes
            timers_cleared.extend((t,) for t in w.timers_cleared)
            timers_set.extend((tid, s.case_id, due) for tid, due in w.timers_set.items())
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                # one statement per kind of row (executemany binds and steps in C, a statement
                # per case cost a call each); an UPDATE that matches no row means another
                # writer moved that case on, and everything here is rolled back.
                # No cursor is kept in a local: a refusal's traceback would keep it alive, and
                # group commit hands the refusal to another thread, whose freeing it would reset
                # a cached statement the next commit may be running (SQLITE_MISUSE).
                if new_cases:
                    try:
                        db.executemany("INSERT INTO cases VALUES (?,?,?,?,?,?,?,?,?)", new_cases)
                    except sqlite3.IntegrityError:
                        raise ConcurrencyError("a case in this batch already exists") from None
                for sql, rows in ((_UPDATE_CASE, updates), (_UPDATE_CASE_STATUS, status_updates)):
                    if rows and db.executemany(sql, rows).rowcount != len(rows):
                        raise ConcurrencyError("a case in this batch changed under this writer")
                if event_rows:
                    _insert(db, _INSERT_EVENTS, event_rows)
                if task_rows:
                    _insert(db, _UPSERT_TASKS, task_rows)
                if timers_cleared:
                    db.executemany("DELETE FROM timers WHERE id = ?", timers_cleared)
                if timers_set:
                    db.executemany(
                        "INSERT OR REPLACE INTO timers (id, case_id, due) VALUES (?,?,?)",
                        timers_set,
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self.commits += 1
        return versions

    # -- queries --------------------------------------------------------------------------------

    def events(
        self, case_id: str | None = None, after: int = 0, limit: int | None = None
    ) -> Iterator[tuple[int, Event]]:
        sql = f"SELECT {_EVENT_COLS} FROM events WHERE pos > ?"
        args: list[Any] = [after]
        if case_id is not None:
            sql += " AND case_id = ?"
            args.append(case_id)
        sql += " ORDER BY pos"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        for r in rows:
            yield r[0], event_row(r)

    def event_rows(self, after: int, limit: int) -> list[Any]:
        """The raw rows of the log past position ``after`` (the columns ``events`` reads, data
        as JSON text), for a team node's relay, which only re-encodes them for the bus."""
        with self._lock:
            return self._db.execute(
                f"SELECT {_EVENT_COLS} FROM events WHERE pos > ? ORDER BY pos LIMIT ?",
                (after, limit),
            ).fetchall()

    def tasks(
        self,
        *,
        team: str | None = None,
        assignee: str | None = None,
        status: str | None = None,
        kind: str | None = None,
        case_id: str | None = None,
        limit: int | None = None,
    ) -> list[TaskRow]:
        where, args = task_filter(
            "?", team=team, assignee=assignee, status=status, kind=kind, case_id=case_id
        )
        sql = f"SELECT {TASK_COLS} FROM tasks{where}"
        sql += " ORDER BY ready_at, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [task_row(r) for r in rows]

    def cases(self, status: str | None = None, limit: int | None = None) -> list[CaseRow]:
        sql = "SELECT id, process, status, started_at, ended_at, updated_at, incident FROM cases"
        args: list[Any] = []
        if status is not None:
            sql += " WHERE status = ?"
            args.append(status)
        sql += " ORDER BY started_at, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [CaseRow(*r) for r in rows]

    def count_cases(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, count(*) FROM cases GROUP BY status")
            return {r[0]: int(r[1]) for r in rows}

    def due_timers(self, now: float, limit: int = 1000) -> list[tuple[str, str, float]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, case_id, due FROM timers WHERE due <= ? ORDER BY due, id LIMIT ?",
                (now, limit),
            ).fetchall()
        return [(r[0], r[1], float(r[2])) for r in rows]

    def delete_timers(self, timer_ids: list[str]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM timers WHERE id = ?", [(t,) for t in timer_ids])

    def next_timer(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT min(due) FROM timers").fetchone()
        return None if row[0] is None else float(row[0])

    # -- leases and replicas (one writer at a time here, so no SKIP LOCKED is needed) ----------

    def lease_tasks(
        self,
        owner: str,
        now: float,
        until: float,
        limit: int,
        *,
        kind: str = "automated",
        teams: Sequence[str] | None = None,
    ) -> list[TaskRow]:
        sql = (
            f"SELECT {', '.join('t.' + c.strip() for c in TASK_COLS.split(','))} FROM tasks t "
            "JOIN cases c ON c.id = t.case_id WHERE t.kind = ? AND t.status = 'ready' "
            "AND c.status = 'running' AND (t.lease_until IS NULL OR t.lease_until <= ?)"
        )
        args: list[Any] = [kind, now]
        if teams is not None:
            sql += f" AND t.team IN ({','.join('?' * len(teams))})"
            args.extend(teams)
        sql += " ORDER BY t.ready_at, t.id LIMIT ?"
        args.append(limit)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = self._db.execute(sql, args).fetchall()
                self._db.executemany(
                    "UPDATE tasks SET lease_owner = ?, lease_until = ? WHERE id = ?",
                    [(owner, until, r[0]) for r in rows],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return [task_row(r) for r in rows]

    def lease_timers(
        self, owner: str, now: float, until: float, limit: int
    ) -> list[tuple[str, str, float]]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = self._db.execute(
                    "SELECT id, case_id, due FROM timers WHERE due <= ? AND "
                    "(lease_until IS NULL OR lease_until <= ?) ORDER BY due, id LIMIT ?",
                    (now, now, limit),
                ).fetchall()
                self._db.executemany(
                    "UPDATE timers SET lease_owner = ?, lease_until = ? WHERE id = ?",
                    [(owner, until, r[0]) for r in rows],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return [(r[0], r[1], float(r[2])) for r in rows]

    def renew_leases(self, owner: str, until: float, ids: Sequence[str]) -> int:
        return self._lease_update("lease_until = ?", [until], owner, ids)

    def release_leases(self, owner: str, ids: Sequence[str] | None = None) -> int:
        return self._lease_update("lease_owner = NULL, lease_until = NULL", [], owner, ids)

    def _lease_update(
        self, assign: str, args: list[Any], owner: str, ids: Sequence[str] | None
    ) -> int:
        if ids is not None and not ids:
            return 0
        chunks = [None] if ids is None else [ids[i : i + 500] for i in range(0, len(ids), 500)]
        n = 0
        with self._lock:
            for table in ("tasks", "timers"):
                for chunk in chunks:
                    where = "lease_owner = ?"
                    if chunk is not None:
                        where += f" AND id IN ({','.join('?' * len(chunk))})"
                    cur = self._db.execute(
                        f"UPDATE {table} SET {assign} WHERE {where}",
                        [*args, owner, *(chunk or ())],
                    )
                    n += cur.rowcount
        return n

    def member_loads(self, members: Sequence[str]) -> dict[str, int]:
        if not members:
            return {}
        marks = ",".join("?" * len(members))
        with self._lock:
            rows = self._db.execute(
                f"SELECT assignee, count(*) FROM tasks WHERE status = 'claimed' "
                f"AND assignee IN ({marks}) GROUP BY assignee",
                list(members),
            ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def heartbeat(self, replica: ReplicaRow) -> None:
        r = replica
        with self._lock:
            self._db.execute(
                "INSERT INTO replicas VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
                "seen_at=excluded.seen_at, state=excluded.state, info=excluded.info",
                (r.id, r.role, r.host, r.pid, r.started_at, r.seen_at, r.state,
                 orjson.dumps(r.info).decode()),
            )  # fmt: skip

    def replicas(self) -> list[ReplicaRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, role, host, pid, started_at, seen_at, state, info FROM replicas "
                "ORDER BY started_at, id"
            ).fetchall()
        return [
            ReplicaRow(r[0], r[1], r[2], int(r[3]), r[4], r[5], r[6], orjson.loads(r[7]))
            for r in rows
        ]

    def forget_replica(self, replica_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM replicas WHERE id = ?", (replica_id,))

    def record_effect(self, key: str, kind: str, value: str, at: float) -> bool:
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO effects VALUES (?,?,?,?)", (key, kind, value, at)
            )
            return cur.rowcount == 1

    def effects(self, kind: str | None = None) -> list[tuple[str, str, str]]:
        sql = "SELECT key, kind, value FROM effects"
        args: list[Any] = []
        if kind is not None:
            sql += " WHERE kind = ?"
            args.append(kind)
        with self._lock:
            return [(r[0], r[1], r[2]) for r in self._db.execute(sql + " ORDER BY at", args)]

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO meta VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

    def run_sql(self, statement: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return [tuple(r) for r in self._db.execute(statement, tuple(args)).fetchall()]
            except sqlite3.IntegrityError as exc:
                raise ConcurrencyError(f"already there: {exc}") from None


@functools.cache
def _insert_sql(sql: str, columns: int, rows: int) -> str:
    row = "(" + ",".join("?" * columns) + ")"
    return sql.format(values=",".join([row] * rows))


def _insert(db: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (all of one width) with a few statements of many rows each, in order."""
    columns = len(rows[0])
    i, n = 0, len(rows)
    for size in _ROWS_PER_INSERT:
        while n - i >= size:
            chunk = rows[i : i + size]
            db.execute(_insert_sql(sql, columns, size), [v for row in chunk for v in row])
            i += size


class _Checkpointer:
    """Copies the write-ahead log back into the database file every CHECKPOINT_EVERY_S, on a
    connection and a thread of its own (PASSIVE: it never blocks the writer, and the writer
    never waits for it)."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=1000")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="accord-sqlite-checkpoint")
        self._thread.daemon = True
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(CHECKPOINT_EVERY_S):
            self.checkpoint()

    def checkpoint(self) -> None:
        # busy or closing: the next round (or SQLite's own backstop) does it
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def stop(self) -> None:
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        self.checkpoint()
        self._db.close()
