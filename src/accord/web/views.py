"""Read models of the web app: what each page shows, in one query or a few.

Pages never replay the event log. Everything here is a range scan over an index of migration 4
(a status, or a time window of recent events) or a lookup by key, so a page costs about the same
with a thousand cases as with a hundred thousand (see docs/performance.md for the numbers).

Windows end at the log's own "now" (the time of its newest event, or the clock when that is
recent): a store filled by a simulation in virtual time still shows its last month, not an
empty one.

Reads go through a :class:`Reader`: on a SQLite file it keeps one read-only connection per
thread (WAL lets readers run beside the engine's writer and each other); elsewhere it uses the
store's own ``run_sql``.
"""

from __future__ import annotations

import heapq
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson
import polars as pl

from accord.analytics.discovery import histogram
from accord.choreo.board import StatusBoard
from accord.events import Event
from accord.model.types import ProcessDefinition, StepKind
from accord.stores.base import Store
from accord.stores.rows import TASK_COLS, event_row, task_row

DAY = 86400.0
OPEN = ("ready", "claimed", "waiting", "failed")
HUMAN_KINDS = ("human", "approval")
SENT_BACK = ("reject", "rework")
HEAT_FLOOR_S = 60.0
_EVENT_COLS = (
    "pos, id, case_id, seq, type, at, process, step, team, actor, task, data, causation, source"
)


class Reader(Protocol):
    """Read-only SQL with ``?`` placeholders, and the few expressions that differ by dialect."""

    dialect: str

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one SELECT."""


class _StoreReader:
    """Reads through the store's own connection (PostgreSQL's pool, SQLite in memory)."""

    def __init__(self, store: Store, dialect: str) -> None:
        self.store = store
        self.dialect = dialect

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.store.run_sql(sql, args)


class _SqliteFileReader:
    """One read-only connection per thread on a SQLite file in WAL mode."""

    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.uri = Path(path).resolve().as_uri() + "?mode=ro"
        self._local = threading.local()

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.uri, uri=True, check_same_thread=False)
            db.execute("PRAGMA busy_timeout=5000")
            self._local.db = db
        return db.execute(sql, tuple(args)).fetchall()


def reader_for(store: Store) -> Reader:
    """The reader for a store (a file's own read connections when it is a SQLite file)."""
    url = store.url
    if url.startswith(("postgresql:", "postgres:")):
        return _StoreReader(store, "postgresql")
    path = getattr(store, "path", ":memory:")
    if url.startswith("sqlite:") and path != ":memory:" and Path(path).is_file():
        return _SqliteFileReader(path)
    return _StoreReader(store, "sqlite")


def _json(r: Reader, *path: str) -> str:
    """A field of the events' JSON ``data`` as text."""
    if r.dialect == "postgresql":
        head = "".join(f"->'{p}'" for p in path[:-1])
        return f"(data{head}->>'{path[-1]}')"
    return f"json_extract(data, '$.{'.'.join(path)}')"


def _num(r: Reader, *path: str) -> str:
    """A numeric field of the events' JSON ``data``."""
    if r.dialect == "postgresql":
        return f"CAST({_json(r, *path)} AS DOUBLE PRECISION)"
    return _json(r, *path)


def _bucket(r: Reader, expr: str, width: float) -> str:
    """The (non-negative) bucket number of ``expr`` for buckets ``width`` wide."""
    if r.dialect == "postgresql":
        return f"CAST(floor(({expr}) / {width!r}) AS INTEGER)"
    return f"CAST(({expr}) / {width!r} AS INTEGER)"


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


def log_head(r: Reader) -> tuple[int, float | None]:
    """The newest event's position and time ((0, None) for an empty log)."""
    row = r.rows("SELECT pos, at FROM events ORDER BY pos DESC LIMIT 1")
    return (int(row[0][0]), float(row[0][1])) if row else (0, None)


def log_now(
    r: Reader, clock_now: float, window_s: float = 30 * DAY, last: float | None = None
) -> float:
    """The end of the windows pages show: the clock, unless the log's newest event is older
    than a window (a finished simulation), then that event's time."""
    if last is None:
        last = log_head(r)[1]
    if last is None:
        return clock_now
    return clock_now if clock_now - last < window_s else last


class Memo:
    """Read models that are dear to compute (the dashboard), kept while the log stays as it was.

    A value is reused when no event was appended since it was computed (and it is younger than
    ``max_age_s``, as the window it covers slides with the clock). Otherwise one request
    computes it while others asking for the same key wait, and take its result when it was
    started after they arrived: what they get is never older than their own request.
    """

    def __init__(self, max_age_s: float = 10.0, size: int = 64) -> None:
        self.max_age_s = max_age_s
        self.size = size
        self._lock = threading.Lock()
        self._entries: dict[Any, tuple[int, float, Any]] = {}  # key -> (pos, started, value)
        self._flights: dict[Any, threading.Lock] = {}

    def get(self, key: Any, pos: int, compute: Any) -> Any:
        """The value for ``key`` at log position ``pos``, computing it if need be."""
        arrived = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] == pos and arrived - hit[1] < self.max_age_s:
                return hit[2]
            flight = self._flights.setdefault(key, threading.Lock())
        with flight:
            with self._lock:
                hit = self._entries.get(key)
            if hit is not None and (hit[1] >= arrived or (hit[0] == pos and
                                    time.monotonic() - hit[1] < self.max_age_s)):  # fmt: skip
                return hit[2]
            started = time.monotonic()
            value = compute()
            with self._lock:
                self._entries[key] = (pos, started, value)
                while len(self._entries) > self.size:
                    self._entries.pop(next(iter(self._entries)))
            return value


# -- the catalogue --------------------------------------------------------------------------------


def catalogue(r: Reader, definitions: Iterable[ProcessDefinition]) -> list[dict[str, Any]]:
    """Every deployed process with its cases per status and its open tasks."""
    cases: dict[str, dict[str, int]] = defaultdict(dict)
    for process, status, n in r.rows(
        "SELECT process, status, count(*) FROM cases GROUP BY process, status"
    ):
        cases[process][status] = int(n)
    tasks: dict[str, dict[str, int]] = defaultdict(dict)
    for process, status, n in r.rows(
        f"SELECT process, status, count(*) FROM tasks WHERE status IN ({_marks(OPEN)}) "
        "GROUP BY process, status",
        OPEN,
    ):
        tasks[process][status] = int(n)
    out = []
    for d in sorted(definitions, key=lambda d: (d.id, -d.version)):
        out.append(
            {
                "key": d.key,
                "definition": d,
                "cases": cases.get(d.key, {}),
                "tasks": tasks.get(d.key, {}),
                "choreographed": is_choreographed(d),
            }
        )
    return out


def is_choreographed(d: ProcessDefinition) -> bool:
    """Whether some of the process's work runs in team nodes (choreo or hybrid)."""
    from accord.model.types import Mode

    return d.mode is Mode.LOCAL or any(s.mode is Mode.LOCAL for s in d.steps.values())


# -- a process: live counts and waiting heat per step -------------------------------------------


@dataclass
class StepStats:
    """Live and recent numbers of one step of a process."""

    step: str
    open: dict[str, int] = field(default_factory=dict)
    oldest_ready_at: float | None = None
    claims: int = 0
    wait_total_s: float = 0.0
    completed: int = 0
    heat: float = 0.0  # 0..1: this step's mean wait against the slowest step's

    @property
    def wait_mean_s(self) -> float | None:
        """Mean waiting time (ready -> work began) of tasks claimed in the window."""
        return self.wait_total_s / self.claims if self.claims else None

    def as_json(self) -> dict[str, Any]:
        """What the diagram's overlay script reads."""
        return {
            "ready": self.open.get("ready", 0),
            "claimed": self.open.get("claimed", 0),
            "waiting": self.open.get("waiting", 0),
            "failed": self.open.get("failed", 0),
            "completed": self.completed,
            "wait_mean_s": self.wait_mean_s,
            "heat": round(self.heat, 3),
        }


def _waits(
    r: Reader, since: float, group: str, where: str = "", args: Sequence[Any] = ()
) -> dict[str, tuple[int, float]]:
    """Per ``group`` (step or team): tasks claimed since ``since`` and their total waiting time
    (ready -> claimed, plus claimed -> work began when a start was recorded)."""
    out: dict[str, tuple[int, float]] = {}
    for key, n, waited in r.rows(
        f"SELECT {group}, count(*), sum({_num(r, 'waited_s')}) FROM events "
        f"WHERE type = 'task.claimed' AND at >= ?{where} GROUP BY {group}",
        [since, *args],
    ):
        if key is not None:
            out[key] = (int(n), float(waited or 0.0))
    for key, queued in r.rows(
        f"SELECT {group}, sum({_num(r, 'queued_s')}) FROM events "
        f"WHERE type = 'task.started' AND at >= ?{where} GROUP BY {group}",
        [since, *args],
    ):
        if key in out:
            n, waited = out[key]
            out[key] = (n, waited + float(queued or 0.0))
    return out


def step_stats(
    r: Reader, d: ProcessDefinition, end: float, window_s: float
) -> dict[str, StepStats]:
    """Open tasks per step and status now; claims, waiting and completions in the window."""
    stats = {sid: StepStats(sid) for sid in d.steps}
    # open work is the small part of the task table: read it all by status (an index range),
    # then keep this process's (a filter on process would tempt the planner into a full scan)
    for process, step, status, n, oldest in r.rows(
        f"SELECT process, step, status, count(*), min(ready_at) FROM tasks "
        f"WHERE status IN ({_marks(OPEN)}) GROUP BY process, step, status",
        list(OPEN),
    ):
        s = stats.get(step)
        if s is None or process != d.key:
            continue
        s.open[status] = int(n)
        if status == "ready":
            s.oldest_ready_at = float(oldest)
    since = end - window_s
    for step, (n, waited) in _waits(r, since, "step", " AND process = ?", [d.key]).items():
        if step in stats:
            stats[step].claims = n
            stats[step].wait_total_s = waited
    for step, n in r.rows(
        "SELECT step, count(*) FROM events WHERE type = 'task.completed' AND at >= ? "
        "AND process = ? GROUP BY step",
        [since, d.key],
    ):
        if step in stats:
            stats[step].completed = int(n)
    # the slowest step is red, unless every wait is short: waits under a minute stay green
    means = [s.wait_mean_s for s in stats.values() if s.wait_mean_s]
    top = max([*means, HEAT_FLOOR_S])
    for s in stats.values():
        s.heat = min(1.0, (s.wait_mean_s or 0.0) / top)
    return stats


# -- a case ------------------------------------------------------------------------------------


def case_events(r: Reader, case_id: str) -> list[Event]:
    """A case's history, in order."""
    data = "data::text" if r.dialect == "postgresql" else "data"
    cols = _EVENT_COLS.replace("data,", f"{data},", 1)
    rows = r.rows(f"SELECT {cols} FROM events WHERE case_id = ? ORDER BY seq", [case_id])
    return [event_row(row) for row in rows]


def case_tasks(r: Reader, case_id: str) -> list[Any]:
    """A case's tasks, oldest first."""
    return [
        task_row(row)
        for row in r.rows(
            f"SELECT {TASK_COLS} FROM tasks WHERE case_id = ? ORDER BY ready_at, id", [case_id]
        )
    ]


# -- a team's inbox and board ------------------------------------------------------------------


def _task_dicts(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        t = task_row(row[:13])
        out.append({"task": t, "case_status": row[13] if len(row) > 13 else None})
    return out


_TASK_T = ", ".join("t." + c.strip() for c in TASK_COLS.split(","))


def inbox(r: Reader, user: str, teams: Sequence[str], limit: int = 25) -> dict[str, Any]:
    """Tasks the user holds, and tasks ready for the user's teams (oldest first)."""
    mine = _task_dicts(
        r.rows(
            f"SELECT {_TASK_T}, c.status FROM tasks t JOIN cases c ON c.id = t.case_id "
            "WHERE t.assignee = ? AND t.status = 'claimed' ORDER BY t.ready_at, t.id LIMIT ?",
            [user, limit],
        )
    )
    ready: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    if teams:
        kinds = _marks(HUMAN_KINDS)
        ready = _task_dicts(
            r.rows(
                f"SELECT {_TASK_T}, c.status FROM tasks t JOIN cases c ON c.id = t.case_id "
                f"WHERE t.team IN ({_marks(teams)}) AND t.status = 'ready' "
                f"AND t.kind IN ({kinds}) ORDER BY t.ready_at, t.id LIMIT ?",
                [*teams, *HUMAN_KINDS, limit],
            )
        )
        for team, n in r.rows(
            f"SELECT team, count(*) FROM tasks WHERE team IN ({_marks(teams)}) "
            f"AND status = 'ready' AND kind IN ({kinds}) GROUP BY team",
            [*teams, *HUMAN_KINDS],
        ):
            counts[team] = int(n)
    held = r.rows("SELECT count(*) FROM tasks WHERE assignee = ? AND status = 'claimed'", [user])[
        0
    ][0]
    return {"mine": mine, "held": int(held), "ready": ready, "ready_counts": counts}


def board(r: Reader, team: str, end: float, limit: int = 30) -> dict[str, Any]:
    """A team's kanban: ready, in progress (claimed), done in the last day; with counts."""
    cols: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, int] = {}
    for status in ("ready", "claimed"):
        cols[status] = _task_dicts(
            r.rows(
                f"SELECT {_TASK_T}, c.status FROM tasks t JOIN cases c ON c.id = t.case_id "
                "WHERE t.team = ? AND t.status = ? ORDER BY t.ready_at, t.id LIMIT ?",
                [team, status, limit],
            )
        )
    for status, n in r.rows(
        f"SELECT status, count(*) FROM tasks WHERE team = ? AND status IN ({_marks(OPEN)}) "
        "GROUP BY status",
        [team, *OPEN],
    ):
        counts[status] = int(n)
    since = end - DAY
    done = r.rows(
        "SELECT case_id, task, step, actor, at FROM events WHERE type = 'task.completed' "
        "AND at >= ? AND team = ? ORDER BY at DESC LIMIT ?",
        [since, team, limit],
    )
    counts["done"] = int(
        r.rows(
            "SELECT count(*) FROM events WHERE type = 'task.completed' AND at >= ? AND team = ?",
            [since, team],
        )[0][0]
    )
    return {
        "ready": cols["ready"],
        "claimed": cols["claimed"],
        "done": [
            {"case_id": c, "task": t, "step": s, "actor": a, "at": float(at)}
            for c, t, s, a, at in done
        ],
        "counts": counts,
    }


def teams_of(definitions: Iterable[ProcessDefinition]) -> dict[str, dict[str, Any]]:
    """Every team named by a deployed process: its name, WIP limit (the lowest declared) and
    members (id -> roles)."""
    out: dict[str, dict[str, Any]] = {}
    for d in definitions:
        for t in d.teams.values():
            entry = out.setdefault(t.id, {"id": t.id, "name": t.name, "wip_limit": None,
                                          "members": {}, "processes": []})  # fmt: skip
            if t.wip_limit is not None:
                old = entry["wip_limit"]
                entry["wip_limit"] = t.wip_limit if old is None else min(old, t.wip_limit)
            for m in t.members:
                entry["members"].setdefault(m.id, set()).update(m.roles)
            entry["processes"].append(d.key)
    return out


# -- the operator console ----------------------------------------------------------------------


def operator(r: Reader, end: float, window_s: float = 30 * DAY, limit: int = 100) -> dict[str, Any]:
    """Paused cases (with their incidents), failed tasks and recent SLA breaches."""
    paused = [
        {
            "id": row[0],
            "process": row[1],
            "started_at": row[2],
            "updated_at": row[3],
            "incident": orjson.loads(row[4]) if row[4] else None,
        }
        for row in r.rows(
            "SELECT id, process, started_at, updated_at, incident FROM cases "
            "WHERE status = 'paused' ORDER BY updated_at, id LIMIT ?",
            [limit],
        )
    ]
    failed = _task_dicts(
        r.rows(
            f"SELECT {_TASK_T}, c.status FROM tasks t JOIN cases c ON c.id = t.case_id "
            "WHERE t.status = 'failed' ORDER BY t.ready_at, t.id LIMIT ?",
            [limit],
        )
    )
    since = end - window_s
    breaches = [
        {"case_id": row[0], "task": row[1], "step": row[2], "team": row[3], "at": float(row[4]),
         "sla_s": row[5], "task_status": row[6], "assignee": row[7], "process": row[8]}
        for row in r.rows(
            f"SELECT e.case_id, e.task, e.step, e.team, e.at, {_num(r, 'sla_s')}, t.status, "
            "t.assignee, e.process FROM events e LEFT JOIN tasks t ON t.id = e.task "
            "WHERE e.type = 'sla.breached' AND e.at >= ? ORDER BY e.at DESC LIMIT ?",
            [since, limit],
        )
    ]  # fmt: skip
    counts = {
        "paused": int(r.rows("SELECT count(*) FROM cases WHERE status = 'paused'")[0][0]),
        "failed": int(r.rows("SELECT count(*) FROM tasks WHERE status = 'failed'")[0][0]),
        "breaches": int(
            r.rows("SELECT count(*) FROM events WHERE type = 'sla.breached' AND at >= ?", [since])[
                0
            ][0]
        ),
    }
    return {"paused": paused, "failed": failed, "breaches": breaches, "counts": counts}


# -- the dashboard -----------------------------------------------------------------------------


def _series(r: Reader, sql: str, start: float, n: int, args: Sequence[Any] = ()) -> list[int]:
    """Counts per bucket (the query's first column numbers the bucket) as a list of ``n``."""
    series = [0] * n
    for bucket, count in r.rows(sql, [start, start, *args]):
        if bucket is not None and 0 <= int(bucket) < n:
            series[int(bucket)] = int(count)
    return series


def bucket_of(days: int) -> float:
    """The width of the dashboard's time buckets: a day, or a week beyond three months."""
    return DAY if days <= 92 else 7 * DAY


def dashboard(r: Reader, end: float, days: int = 30) -> dict[str, Any]:
    """Cycle times, throughput, per-team load and waiting, SLA breaches and the handoff error
    rate over the ``days`` up to ``end`` (series per day, or per week for long windows)."""
    window = days * DAY
    start = end - window
    width = bucket_of(days)
    buckets = int(-(-window // width))
    durations = [
        float(row[0])
        for row in r.rows(
            "SELECT ended_at - started_at FROM cases WHERE status = 'completed' AND ended_at >= ?",
            [start],
        )
    ]
    cycle = histogram(pl.Series("d", durations, dtype=pl.Float64), bins=20)
    day_of = _bucket(r, "ended_at - ?", width)
    completed = _series(
        r,
        f"SELECT {day_of}, count(*) FROM cases WHERE status = 'completed' AND ended_at >= ? "
        "GROUP BY 1",
        start,
        buckets,
    )
    started = _series(
        r,
        f"SELECT {_bucket(r, 'started_at - ?', width)}, count(*) FROM cases WHERE started_at >= ? "
        "GROUP BY 1",
        start,
        buckets,
    )
    at_day = _bucket(r, "at - ?", width)
    breaches = _series(
        r,
        f"SELECT {at_day}, count(*) FROM events WHERE type = 'sla.breached' AND at >= ? GROUP BY 1",
        start,
        buckets,
    )
    handoffs = _series(
        r,
        f"SELECT {at_day}, count(*) FROM events WHERE type = 'handoff' AND at >= ? GROUP BY 1",
        start,
        buckets,
    )
    # A handoff went wrong when the receiving step sent the work back (reject, rework) or the
    # task was moved to another team (as accord.analytics.measures counts it, per day here).
    sent_back = _series(
        r,
        f"SELECT {at_day}, count(*) FROM events WHERE type = 'task.completed' AND at >= ? "
        f"AND {_json(r, 'data', 'outcome')} IN ({_marks(SENT_BACK)}) AND step IN "
        "(SELECT DISTINCT step FROM events WHERE type = 'handoff' AND at >= ?) GROUP BY 1",
        start,
        buckets,
        [*SENT_BACK, start],
    )
    moved = _series(
        r,
        f"SELECT {at_day}, count(*) FROM events WHERE type = 'task.reassigned' AND at >= ? "
        f"AND {_json(r, 'to_team')} IS NOT NULL "
        f"AND {_json(r, 'to_team')} <> {_json(r, 'from_team')} GROUP BY 1",
        start,
        buckets,
    )
    errors = [a + b for a, b in zip(sent_back, moved, strict=True)]
    load: dict[str, dict[str, Any]] = {}
    for team, status, n, mean_ready in r.rows(
        "SELECT team, status, count(*), avg(ready_at) FROM tasks "
        "WHERE status IN ('ready', 'claimed') GROUP BY team, status"
    ):
        entry = load.setdefault(team or "(none)", {"ready": 0, "claimed": 0, "age_s": None})
        entry[status] = int(n)
        if status == "ready":
            entry["age_s"] = max(0.0, end - float(mean_ready))
    waits = _waits(r, start, "team")
    team_wait = {t: w / n for t, (n, w) in waits.items() if n}
    tasks_done = int(
        r.rows("SELECT count(*) FROM events WHERE type = 'task.completed' AND at >= ?", [start])[0][
            0
        ]
    )
    status_counts = {
        s: int(n)
        for s, n in r.rows(
            "SELECT status, count(*) FROM cases WHERE status IN ('running', 'paused') "
            "GROUP BY status"
        )
    }
    n_handoffs = sum(handoffs)
    durations.sort()
    return {
        "start": start,
        "end": end,
        "days": days,
        "bucket_s": width,
        "buckets": buckets,
        "cycle": cycle,
        "cycle_median_s": durations[len(durations) // 2] if durations else None,
        "cycle_p95_s": durations[int(0.95 * (len(durations) - 1))] if durations else None,
        "completed": completed,
        "started": started,
        "breaches": breaches,
        "handoffs": handoffs,
        "handoff_errors": errors,
        "handoff_error_rate": (sum(errors) / n_handoffs) if n_handoffs else None,
        "load": dict(sorted(load.items())),
        "team_wait": dict(sorted(team_wait.items())),
        "tasks_completed": tasks_done,
        "cases": status_counts,
    }


# -- the status board of choreographed processes ----------------------------------------------


def status_board(r: Reader, d: ProcessDefinition, now: float, limit: int = 200) -> dict[str, Any]:
    """The status board's aggregated view of a process's open cases (most recent first), built
    from their events as the board builds it from the bus."""
    # the process's open cases come off the covering index (process, status, started_at); the
    # newest are picked here, as an ORDER BY would lure the planner onto started_at alone
    open_cases = [
        row
        for status in ("running", "paused")
        for row in r.rows(
            "SELECT id, started_at FROM cases WHERE process = ? AND status = ?", [d.key, status]
        )
    ]
    ids = [row[0] for row in heapq.nlargest(limit, open_cases, key=lambda row: row[1])]
    b = StatusBoard(d)
    if ids:
        data = "data::text" if r.dialect == "postgresql" else "data"
        cols = _EVENT_COLS.replace("data,", f"{data},", 1)
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            for row in r.rows(
                f"SELECT {cols} FROM events WHERE case_id IN ({_marks(chunk)}) "
                "ORDER BY case_id, seq",
                chunk,
            ):
                b.observe(event_row(row))
    rows = sorted(b.view(now), key=lambda v: -v["waiting_s"])
    totals = {
        s: int(n)
        for s, n in r.rows(
            "SELECT status, count(*) FROM cases WHERE process = ? GROUP BY status", [d.key]
        )
    }
    return {"cases": rows, "totals": totals, "shown": len(rows)}


def work_steps(d: ProcessDefinition) -> list[str]:
    """Steps an operator may reroute a case to, in definition order."""
    return [sid for sid, s in d.steps.items() if s.kind.is_work or s.kind is StepKind.END]
