"""PostgreSQL store: several engine replicas and workers behind one database.

``postgresql://user@host:5432/dbname`` opens a database; these query parameters are accord's own
(every other one goes to libpq unchanged, e.g. ``sslmode`` or ``connect_timeout``):

* ``schema=name`` keeps accord's tables in that schema (created if missing), so one database
  can hold several independent stores (tests use one fresh schema each);
* ``pool_size=N`` caps the connection pool (default 8).

Every ``commit`` is one transaction of a few set-based statements (``unnest`` arrays), so a batch
of hundreds of case transitions costs about as much as one; the statements are pipelined, so a
commit is two round trips (the statements, then ``COMMIT``) however many there are. Cases are
updated under the optimistic version check; work is shared between replicas with leases taken
by ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)``, so two replicas never take
the same task or timer while its lease lasts. Durability is the server's: with the default
``synchronous_commit = on`` a commit is on disk before it is acknowledged.

Connection failures surface as :class:`StoreUnavailable`; the pool replaces broken connections
with exponential backoff, so a caller that waits and retries carries on once the server is back.
"""

from __future__ import annotations

import os
import re
import threading
import time
import weakref
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import orjson
import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from accord.errors import StoreError
from accord.events import Event
from accord.kernel.state import CaseState, state_from_json
from accord.stores.base import (
    CaseRow,
    CaseWrite,
    ConcurrencyError,
    ReplicaRow,
    StoreUnavailable,
    TaskRow,
)
from accord.stores.migrations import MIGRATIONS
from accord.stores.rows import TASK_COLS, event_row, task_filter, task_row

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_DEFAULT_POOL = 8
_OPEN_TIMEOUT = 10.0
# a connection returned to the pool this recently is used again without a liveness check
_FRESH_S = 1.0
_EVENT_COLS = (
    "pos, id, case_id, seq, type, at, process, step, team, actor, task, data::text, causation,"
    " source"
)
# Each batch statement takes its rows as one JSON array of objects (json_to_recordset): one C-level
# serialisation on our side and one parse on the server's, instead of an array per column.
_INSERT_CASES = """
INSERT INTO cases (id, process, status, version, state, started_at, ended_at, updated_at,
                   incident)
SELECT v.id, v.process, v.status, 1, convert_to(v.state::text, 'UTF8'), v.started_at,
       v.ended_at, %s, v.incident
FROM json_to_recordset(%s::json) AS v(id text, process text, status text, state json,
                                      started_at float8, ended_at float8, incident text)
ON CONFLICT (id) DO NOTHING"""
_UPDATE_CASES = """
UPDATE cases c SET status = v.status, version = c.version + 1,
       state = convert_to(v.state::text, 'UTF8'), ended_at = v.ended_at, updated_at = %s,
       incident = v.incident
FROM json_to_recordset(%s::json) AS v(id text, expected int, status text, state json,
                                      ended_at float8, incident text)
WHERE c.id = v.id AND c.version = v.expected"""
# WITH ORDINALITY + ORDER BY: `pos` (a sequence) follows the order the kernel emitted events in.
_INSERT_EVENTS = """
INSERT INTO events (id, case_id, seq, type, at, process, step, team, actor, task, data,
                    causation, source)
SELECT v.id, v.case_id, v.seq, v.type, v.at, v.process, v.step, v.team, v.actor, v.task,
       v.data, v.causation, v.source
FROM json_array_elements(%s::json) WITH ORDINALITY AS j(doc, n),
     json_to_record(j.doc) AS v(id text, case_id text, seq int, type text, at float8,
                                process text, step text, team text, actor text, task text,
                                data json, causation text, source text)
ORDER BY j.n"""
# A commit that writes a task ends any lease on it: the holder's work is done or moot.
_UPSERT_TASKS = f"""
INSERT INTO tasks ({TASK_COLS})
SELECT * FROM json_to_recordset(%s::json) AS v(id text, case_id text, process text, step text,
    kind text, team text, role text, status text, assignee text, ready_at float8,
    claimed_at float8, attempt int, hub int)
ON CONFLICT (id) DO UPDATE SET team = excluded.team, status = excluded.status,
    assignee = excluded.assignee, claimed_at = excluded.claimed_at,
    attempt = excluded.attempt, lease_owner = NULL, lease_until = NULL"""
_UPSERT_TIMERS = """
INSERT INTO timers (id, case_id, due)
SELECT * FROM json_to_recordset(%s::json) AS v(id text, case_id text, due float8)
ON CONFLICT (id) DO UPDATE SET case_id = excluded.case_id, due = excluded.due,
    lease_owner = NULL, lease_until = NULL"""


def _ddl(statement: str) -> str:
    return statement.format(blob="BYTEA", auto="BIGSERIAL PRIMARY KEY", json="JSON")


def _rows_json(rows: list[dict[str, Any]]) -> str:
    return orjson.dumps(rows).decode()


def parse_url(url: str) -> tuple[str, str | None, int]:
    """Split a store URL into (libpq conninfo, schema, pool size)."""
    parsed = urlparse(url)
    if parsed.scheme == "postgres":
        parsed = parsed._replace(scheme="postgresql")
    params = parse_qsl(parsed.query, keep_blank_values=True)
    schema: str | None = None
    pool = _DEFAULT_POOL
    rest = []
    for key, value in params:
        if key == "schema":
            if not _SCHEMA_NAME.match(value):
                raise StoreError(f"schema {value!r} in {url!r} is not a plain SQL identifier")
            schema = value
        elif key == "pool_size":
            if not value.isdigit() or int(value) < 1:
                raise StoreError(f"pool_size must be a positive integer in {url!r}")
            pool = int(value)
        else:
            rest.append((key, value))
    return urlunparse(parsed._replace(query=urlencode(rest))), schema, pool


class PostgresStore:
    """A store in one PostgreSQL database (optionally one schema of it)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.commits = 0  # see Store.commits
        self._count_lock = threading.Lock()
        conninfo, self.schema, pool_size = parse_url(url)
        parsed = urlparse(conninfo)
        self._where = f"{parsed.hostname or 'localhost'}:{parsed.port or 5432}{parsed.path}"
        # when each pooled connection last came back (see _check)
        self._used: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = (
            weakref.WeakKeyDictionary()
        )
        self._pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            configure=self._configure,
            # A connection that died with the server is found and replaced before use.
            check=self._check,
            reset=self._returned,
            open=False,
            timeout=_OPEN_TIMEOUT,
            name=f"accord-{os.getpid()}",
        )
        try:
            self._pool.open(wait=True, timeout=_OPEN_TIMEOUT)
        except PoolTimeout as exc:
            self._pool.close(timeout=0)
            message = f"cannot connect to PostgreSQL at {self._where}: {exc}"
            raise StoreUnavailable(message) from None
        try:
            self._migrate()
        except BaseException:
            self._pool.close(timeout=0)
            raise

    def _returned(self, conn: psycopg.Connection[Any]) -> None:
        self._used[conn] = time.monotonic()

    def _check(self, conn: psycopg.Connection[Any]) -> None:
        """Check a connection taken from the pool with an empty query (a round trip), unless it
        came back to the pool healthy within the last ``_FRESH_S`` seconds: a busy server would
        otherwise pay one round trip more on every statement it sends. A connection broken in
        that short window fails its statement, which surfaces as StoreUnavailable (callers
        retry; the pool then replaces it)."""
        used = self._used.get(conn)
        if used is not None and time.monotonic() - used < _FRESH_S and not conn.broken:
            return
        ConnectionPool.check_connection(conn)

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        if self.schema:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; driver errors become accord's (and never leak psycopg's)."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except (
            psycopg.errors.SerializationFailure,
            psycopg.errors.DeadlockDetected,
            psycopg.errors.UniqueViolation,
        ) as exc:
            raise ConcurrencyError(f"another writer got there first: {exc}") from None
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StoreUnavailable(f"PostgreSQL at {self._where} is unavailable: {exc}") from None
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL at {self._where}: {exc}") from None

    def _rows(self, query: str | sql.Composed, args: Sequence[Any] = ()) -> list[Any]:
        with self._conn() as conn:
            return conn.execute(query, args).fetchall()

    # -- schema ---------------------------------------------------------------------------------

    def _migrate(self) -> None:
        # Replicas starting together must not race: one migrates, the others wait and see it.
        lock = zlib.crc32(f"accord.migrate:{self.schema or ''}".encode())
        with self._conn() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
            if self.schema:
                ident = sql.Identifier(self.schema)
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
                conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(ident))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
            current = (row[0] if row else None) or 0
            for number, statements in MIGRATIONS:
                if number <= current:
                    continue
                for statement in statements:
                    conn.execute(_ddl(statement))
                conn.execute("INSERT INTO schema_version VALUES (%s)", (number,))

    def schema_version(self) -> int:
        return int(self._rows("SELECT max(version) FROM schema_version")[0][0] or 0)

    def close(self) -> None:
        self._pool.close()

    # -- definitions ----------------------------------------------------------------------------

    def put_definition(self, key: str, name: str, source: str, at: float) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO definitions (key, name, source, deployed_at) VALUES (%s,%s,%s,%s) "
                "ON CONFLICT (key) DO UPDATE SET "
                "name = excluded.name, source = CASE WHEN excluded.source = '' "
                "THEN definitions.source ELSE excluded.source END",
                (key, name, source, at),
            )

    def definitions(self) -> list[tuple[str, str, str]]:
        rows = self._rows('SELECT key, name, source FROM definitions ORDER BY key COLLATE "C"')
        return [(r[0], r[1], r[2]) for r in rows]

    # -- cases ----------------------------------------------------------------------------------

    def load_case(self, case_id: str) -> tuple[CaseState, int] | None:
        rows = self._rows("SELECT state, version FROM cases WHERE id = %s", (case_id,))
        if not rows:
            return None
        return state_from_json(rows[0][0]), int(rows[0][1])

    def load_cases(self, case_ids: Sequence[str]) -> dict[str, tuple[CaseState, int]]:
        if not case_ids:
            return {}
        rows = self._rows(
            "SELECT id, state, version FROM cases WHERE id = ANY(%s)", (list(case_ids),)
        )
        return {r[0]: (state_from_json(r[1]), int(r[2])) for r in rows}

    def commit(self, writes: list[CaseWrite], at: float) -> list[int]:
        if not writes:
            return []
        # Lock case rows in one global order so that two overlapping batches wait for each
        # other instead of deadlocking.
        ordered = sorted(writes, key=lambda w: w.state.case_id)
        new = [w for w in ordered if w.expected_version is None]
        old = [w for w in ordered if w.expected_version is not None]
        events = [_event_row(e) for w in writes for e in w.events]
        tasks = [_task_json(w.state, t) for w in ordered for t in w.tasks.values()]
        cleared = [t for w in ordered for t in w.timers_cleared]
        timers = [{"id": tid, "case_id": w.state.case_id, "due": due}
                  for w in ordered for tid, due in w.timers_set.items()]  # fmt: skip
        # Pipelined: BEGIN and every statement go out together and their results come back
        # together (one round trip), then the version checks, then COMMIT (a second one). A
        # failed check rolls everything back, statements after it included.
        with self._conn() as conn, conn.pipeline() as pipe, conn.transaction():
            inserted = updated = None
            if new:
                inserted = conn.execute(_INSERT_CASES, (at, _rows_json(list(map(_case_row, new)))))
            if old:
                updated = conn.execute(_UPDATE_CASES, (at, _rows_json(list(map(_case_row, old)))))
            if events:
                conn.execute(_INSERT_EVENTS, (_rows_json(events),))
            if tasks:
                conn.execute(_UPSERT_TASKS, (_rows_json(tasks),))
            if cleared:
                conn.execute("DELETE FROM timers WHERE id = ANY(%s)", (cleared,))
            if timers:
                conn.execute(_UPSERT_TIMERS, (_rows_json(timers),))
            pipe.sync()
            if inserted is not None and inserted.rowcount != len(new):
                raise ConcurrencyError("a case in this batch already exists")
            if updated is not None and updated.rowcount != len(old):
                raise ConcurrencyError("a case in this batch changed under this writer")
        with self._count_lock:  # (commits run on several threads at once)
            self.commits += 1
        return [1 if w.expected_version is None else w.expected_version + 1 for w in writes]

    # -- queries --------------------------------------------------------------------------------

    def events(
        self, case_id: str | None = None, after: int = 0, limit: int | None = None
    ) -> Iterator[tuple[int, Event]]:
        # Read in pages so that no connection is held while the caller iterates.
        page = 5000
        left = limit
        while left is None or left > 0:
            n = page if left is None else min(page, left)
            query = f"SELECT {_EVENT_COLS} FROM events WHERE pos > %s"
            args: list[Any] = [after]
            if case_id is not None:
                query += " AND case_id = %s"
                args.append(case_id)
            query += " ORDER BY pos LIMIT %s"
            args.append(n)
            rows = self._rows(query, args)
            for r in rows:
                yield int(r[0]), event_row(r)
            if len(rows) < n:
                return
            after = int(rows[-1][0])
            if left is not None:
                left -= len(rows)

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
            "%s", team=team, assignee=assignee, status=status, kind=kind, case_id=case_id
        )
        query = f"SELECT {TASK_COLS} FROM tasks{where}"
        query += ' ORDER BY ready_at, id COLLATE "C"'
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        return [task_row(r) for r in self._rows(query, args)]

    def cases(self, status: str | None = None, limit: int | None = None) -> list[CaseRow]:
        query = "SELECT id, process, status, started_at, ended_at, updated_at, incident FROM cases"
        args: list[Any] = []
        if status is not None:
            query += " WHERE status = %s"
            args.append(status)
        query += ' ORDER BY started_at, id COLLATE "C"'
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        return [CaseRow(*r) for r in self._rows(query, args)]

    def count_cases(self) -> dict[str, int]:
        rows = self._rows("SELECT status, count(*) FROM cases GROUP BY status")
        return {r[0]: int(r[1]) for r in rows}

    # -- timers ---------------------------------------------------------------------------------

    def due_timers(self, now: float, limit: int = 1000) -> list[tuple[str, str, float]]:
        rows = self._rows(
            'SELECT id, case_id, due FROM timers WHERE due <= %s ORDER BY due, id COLLATE "C" '
            "LIMIT %s",
            (now, limit),
        )
        return [(r[0], r[1], float(r[2])) for r in rows]

    def delete_timers(self, timer_ids: list[str]) -> None:
        if timer_ids:
            with self._conn() as conn:
                conn.execute("DELETE FROM timers WHERE id = ANY(%s)", (list(timer_ids),))

    def next_timer(self) -> float | None:
        value = self._rows("SELECT min(due) FROM timers")[0][0]
        return None if value is None else float(value)

    # -- leases and replicas --------------------------------------------------------------------

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
        team_filter = "" if teams is None else "AND t.team = ANY(%(teams)s)"
        query = f"""
            UPDATE tasks SET lease_owner = %(owner)s, lease_until = %(until)s
            WHERE id IN (
                SELECT t.id FROM tasks t JOIN cases c ON c.id = t.case_id
                WHERE t.kind = %(kind)s AND t.status = 'ready' AND c.status = 'running'
                  AND (t.lease_until IS NULL OR t.lease_until <= %(now)s) {team_filter}
                ORDER BY t.ready_at, t.id LIMIT %(limit)s
                FOR UPDATE OF t SKIP LOCKED)
            RETURNING {TASK_COLS}"""
        args = {"owner": owner, "until": until, "kind": kind, "now": now, "limit": limit,
                "teams": list(teams or ())}  # fmt: skip
        with self._conn() as conn:
            rows = conn.execute(query, args).fetchall()
        return sorted((task_row(r) for r in rows), key=lambda r: (r.ready_at, r.id))

    def lease_timers(
        self, owner: str, now: float, until: float, limit: int
    ) -> list[tuple[str, str, float]]:
        with self._conn() as conn:
            rows = conn.execute(
                """UPDATE timers SET lease_owner = %s, lease_until = %s
                   WHERE id IN (
                       SELECT id FROM timers
                       WHERE due <= %s AND (lease_until IS NULL OR lease_until <= %s)
                       ORDER BY due, id LIMIT %s FOR UPDATE SKIP LOCKED)
                   RETURNING id, case_id, due""",
                (owner, until, now, now, limit),
            ).fetchall()
        return sorted(((r[0], r[1], float(r[2])) for r in rows), key=lambda t: (t[2], t[0]))

    def renew_leases(self, owner: str, until: float, ids: Sequence[str]) -> int:
        return self._lease_update("lease_until = %s", [until], owner, ids)

    def release_leases(self, owner: str, ids: Sequence[str] | None = None) -> int:
        return self._lease_update("lease_owner = NULL, lease_until = NULL", [], owner, ids)

    def _lease_update(
        self, assign: str, args: list[Any], owner: str, ids: Sequence[str] | None
    ) -> int:
        if ids is not None and not ids:
            return 0
        where = "lease_owner = %s" + ("" if ids is None else " AND id = ANY(%s)")
        params = [*args, owner, *([] if ids is None else [list(ids)])]
        n = 0
        with self._conn() as conn:
            for table in ("tasks", "timers"):
                query = sql.SQL("UPDATE {} SET " + assign + " WHERE " + where)
                cur = conn.execute(query.format(sql.Identifier(table)), params)
                n += cur.rowcount
        return n

    def member_loads(self, members: Sequence[str]) -> dict[str, int]:
        if not members:
            return {}
        rows = self._rows(
            "SELECT assignee, count(*) FROM tasks WHERE status = 'claimed' "
            "AND assignee = ANY(%s) GROUP BY assignee",
            (list(members),),
        )
        return {r[0]: int(r[1]) for r in rows}

    def heartbeat(self, replica: ReplicaRow) -> None:
        r = replica
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO replicas VALUES (%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (id) DO UPDATE "
                "SET seen_at = excluded.seen_at, state = excluded.state, info = excluded.info",
                (r.id, r.role, r.host, r.pid, r.started_at, r.seen_at, r.state,
                 orjson.dumps(r.info).decode()),
            )  # fmt: skip

    def replicas(self) -> list[ReplicaRow]:
        rows = self._rows(
            "SELECT id, role, host, pid, started_at, seen_at, state, info::text FROM replicas "
            'ORDER BY started_at, id COLLATE "C"'
        )
        return [
            ReplicaRow(r[0], r[1], r[2], int(r[3]), r[4], r[5], r[6], orjson.loads(r[7]))
            for r in rows
        ]

    def forget_replica(self, replica_id: str) -> None:
        with self._conn() as conn:
            conn.execute("DELETE FROM replicas WHERE id = %s", (replica_id,))

    # -- effects and meta -----------------------------------------------------------------------

    def record_effect(self, key: str, kind: str, value: str, at: float) -> bool:
        with self._conn() as conn:
            cur = conn.execute(
                "INSERT INTO effects VALUES (%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                (key, kind, value, at),
            )
            return cur.rowcount == 1

    def effects(self, kind: str | None = None) -> list[tuple[str, str, str]]:
        query = "SELECT key, kind, value FROM effects"
        args: list[Any] = []
        if kind is not None:
            query += " WHERE kind = %s"
            args.append(kind)
        query += ' ORDER BY at, key COLLATE "C", kind COLLATE "C"'
        return [(r[0], r[1], r[2]) for r in self._rows(query, args)]

    def get_meta(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key = %s", (key,))
        return None if not rows else str(rows[0][0])

    def set_meta(self, key: str, value: str) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE "
                "SET value = excluded.value",
                (key, value),
            )

    def run_sql(self, statement: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        query = statement.replace("%", "%%").replace("?", "%s")  # sqlite3's style to psycopg's
        with self._conn() as conn:
            cur = conn.execute(query, tuple(args))
            return [tuple(r) for r in cur.fetchall()] if cur.description else []


def drop_schema(url: str) -> None:
    """Drop the schema a store URL names, with everything in it (tests and tear-down tools)."""
    conninfo, schema, _ = parse_url(url)
    if not schema:
        raise StoreError(f"{url!r} names no schema; refusing to drop the default one")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _case_row(w: CaseWrite) -> dict[str, Any]:
    s = w.state
    return {
        "id": s.case_id,
        "process": s.process,
        "expected": w.expected_version,
        "status": s.status.value,
        "state": orjson.Fragment(s.to_json()),  # already JSON: embedded as it is
        "started_at": s.started_at,
        "ended_at": s.ended_at,
        "incident": orjson.dumps(s.incident).decode() if s.incident else None,
    }


def _event_row(e: Event) -> dict[str, Any]:
    return {"id": e.id, "case_id": e.case, "seq": e.seq, "type": e.type.value, "at": e.at,
            "process": e.process, "step": e.step, "team": e.team, "actor": e.actor,
            "task": e.task, "data": e.data, "causation": e.causation,
            "source": e.source}  # fmt: skip


def _task_json(s: CaseState, t: Any) -> dict[str, Any]:
    return {"id": t.id, "case_id": s.case_id, "process": s.process, "step": t.step,
            "kind": t.kind.value, "team": t.team, "role": t.role, "status": t.status.value,
            "assignee": t.assignee, "ready_at": t.ready_at, "claimed_at": t.claimed_at,
            "attempt": t.attempt, "hub": int(t.hub)}  # fmt: skip
