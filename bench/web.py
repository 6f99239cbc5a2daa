"""The web app under load: pages answer within 300 ms p95 over 100,000 cases, and completing tasks
through the API sustains 500 requests/s; on SQLite and on PostgreSQL.

Run from the repository root (PostgreSQL on 127.0.0.1:5432, database ``test``, trust auth)::

    .venv/bin/python bench/web.py                       # both backends, about 8 minutes
    .venv/bin/python bench/web.py --backends sqlite     # one backend
    .venv/bin/python bench/web.py --cases 20000         # a smaller store
    .venv/bin/python bench/web.py --json out.json       # also write the results as JSON
    .venv/bin/python bench/web.py --skip-pages          # the completions only (about 4 minutes)
    .venv/bin/python bench/web.py --workers 2           # accord serve --workers 2 as each server

**The store.** Rows are what the engine writes, because the engine wrote them: a seeded
simulation of examples/client-onboarding.yaml (300 cases, run to completion: 27 events a case)
and an engine driving 400 more cases part of the way (started; some requests completed, some
reviews claimed) give template cases. Each of the ``--cases`` cases is a copy of a template
with its ids rewritten (case, task and event ids, in every column and in the state blob) and its
times shifted, so that case starts spread evenly over the last 365 days; the newest 15% are open
(taken from the part-way templates), the rest completed. Copies are bulk-loaded (``executemany``
on SQLite, ``COPY`` on PostgreSQL) with the secondary indexes dropped and rebuilt afterwards,
then ANALYZEd (VACUUM ANALYZE on PostgreSQL, as autovacuum would have). With the default
100,000 cases that is about 2.4 million events (more than the 1,000,000 the target names: a
full onboarding case writes 27 events).

**The server.** ``accord serve --no-worker`` as a subprocess on loopback (one uvicorn process;
without the background worker, whose first act on a store full of open work would be a burst of
hub assignments during the measurement).

**Pages.** wrk (Debian's ``wrk``; ``--load python`` uses httpx on asyncio instead), signed in
as kofi (compliance), loads each page for ``--page-seconds`` with ``--concurrency``
connections: the inbox (kofi's claimed tasks with their forms, and the compliance queue), the
compliance board, a random case's page (any of the cases) and the dashboard (30 days). p50 and
p95 per page, against 300 ms.

**Completions.** ana (sales) completes distinct ready "Capture onboarding request" tasks through
``POST /api/v1/tasks/{id}/complete`` with a bearer token, at each ``--complete-concurrency``
level in turn (2, 4, 8 and 16 requests in flight, ``--seconds`` each, each level on its own
tasks), then through ``--servers`` server processes at the best level each; requests/s against
500, counted from the ``task.completed`` events in the store (every request must succeed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "client-onboarding.yaml"
PG_URL = "postgresql://127.0.0.1:5432/test"
PAGE_TARGET_MS = 300.0
COMPLETE_TARGET = 500.0
SPAN_S = 365 * 86400.0
OPEN_SHARE = 0.15
PASSWORD = "bench password 1"
CASE_COLS = "id, process, status, version, state, started_at, ended_at, updated_at, incident"
EVENT_COLS = "id, case_id, seq, type, at, process, step, team, actor, task, data, causation, source"
TASK_COLS = (
    "id, case_id, process, step, kind, team, role, status, assignee, ready_at, claimed_at,"
    " attempt, hub"
)
# every time the state blob holds, shifted with the case
_TIME_KEYS = {"started_at", "ended_at", "ready_at", "claimed_at", "due", "at", "raised_at",
              "deadline"}  # fmt: skip


# -- templates: cases the engine itself wrote ---------------------------------------------------


@dataclass
class Template:
    """One case as stored: its rows, with the case id to rewrite and the time to shift from."""

    case_id: str
    start: float
    case: tuple[Any, ...]
    events: list[tuple[Any, ...]]
    tasks: list[tuple[Any, ...]]
    state: Any  # the state blob, parsed


def _read_templates(db: Path, prefix: str) -> list[Template]:
    con = sqlite3.connect(db)
    cases = con.execute(
        f"SELECT {CASE_COLS} FROM cases WHERE id LIKE ? ORDER BY id", [prefix + "%"]
    ).fetchall()
    events: dict[str, list[tuple[Any, ...]]] = {}
    for row in con.execute(f"SELECT {EVENT_COLS} FROM events ORDER BY pos"):
        events.setdefault(row[1], []).append(row)
    tasks: dict[str, list[tuple[Any, ...]]] = {}
    for row in con.execute(f"SELECT {TASK_COLS} FROM tasks ORDER BY ready_at, id"):
        tasks.setdefault(row[1], []).append(row)
    con.close()
    return [
        Template(c[0], float(c[5]), c, events.get(c[0], []), tasks.get(c[0], []),
                 orjson.loads(c[4]))
        for c in cases
    ]  # fmt: skip


def make_templates(work: Path) -> tuple[list[Template], list[Template], str]:
    """(completed templates, open templates, the stored definition source)."""
    from accord.central.engine import Engine
    from accord.clock import EPOCH, VirtualClock
    from accord.model import load
    from accord.sim.session import simulate
    from accord.stores import open_store

    done_db = work / "done.db"
    simulate(EXAMPLE, 300, seed=11, db=str(done_db))
    open_db = work / "open.db"
    d = load(EXAMPLE)
    clock = VirtualClock(EPOCH)
    engine = Engine(open_store(f"sqlite:///{open_db}"), [d], clock=clock)
    rng = random.Random(5)
    ids = [engine.start_case(d.id, {}, case_id=f"open-{i:06d}") for i in range(400)]
    sales = [m.id for m in d.teams["sales"].members]
    for cid in ids:
        clock.advance(rng.uniform(60, 1800))
        if rng.random() < 0.7:
            continue  # still at its first step
        task = f"{cid}:request:1"
        holder = engine.case(cid).tasks[task].assignee or rng.choice(sales)
        data = {"client": f"Client {cid}", "amount": rng.randint(1000, 90000),
                "risk": rng.choice(["low", "medium", "high"])}  # fmt: skip
        engine.complete(task, holder, data)
    engine.close()
    source = open_store(f"sqlite:///{done_db}").definitions()[0][2]
    return _read_templates(done_db, "case-"), _read_templates(open_db, "open-"), source


# -- copies -------------------------------------------------------------------------------------


def _shift(node: Any, by: float) -> Any:
    if isinstance(node, dict):
        return {k: (v + by if k in _TIME_KEYS and isinstance(v, int | float) else _shift(v, by))
                for k, v in node.items()}  # fmt: skip
    if isinstance(node, list):
        if len(node) == 3 and isinstance(node[0], float) and isinstance(node[2], int):
            return [node[0] + by, node[1], node[2]]  # a data field's write stamp
        return [_shift(v, by) for v in node]
    return node


@dataclass
class Rows:
    cases: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    tasks: list[tuple[Any, ...]] = field(default_factory=list)


def copies(done: list[Template], open_: list[Template], n: int, now: float,
           batch: int = 5000) -> Iterator[Rows]:  # fmt: skip
    """``n`` cases (the newest OPEN_SHARE open), in batches, oldest first."""
    first_open = int(n * (1 - OPEN_SHARE))
    t0 = now - SPAN_S
    rows = Rows()
    for i in range(n):
        tpl = done[i % len(done)] if i < first_open else open_[i % len(open_)]
        new = f"c{i:07d}"
        old = tpl.case_id
        by = t0 + SPAN_S * i / n - tpl.start
        state = orjson.dumps(_shift(tpl.state, by)).decode().replace(old, new).encode()
        c = tpl.case
        rows.cases.append((new, c[1], c[2], c[3], state, c[5] + by,
                           None if c[6] is None else c[6] + by, c[7] + by, c[8]))  # fmt: skip
        for e in tpl.events:
            task = None if e[9] is None else e[9].replace(old, new)
            cause = None if e[11] is None else e[11].replace(old, new)
            rows.events.append((e[0].replace(old, new, 1), new, e[2], e[3], e[4] + by, e[5],
                                e[6], e[7], e[8], task, e[10].replace(old, new), cause,
                                e[12]))  # fmt: skip
        for t in tpl.tasks:
            rows.tasks.append((t[0].replace(old, new, 1), new, *t[2:9], t[9] + by,
                               None if t[10] is None else t[10] + by, t[11], t[12]))  # fmt: skip
        if len(rows.cases) >= batch:
            yield rows
            rows = Rows()
    if rows.cases:
        yield rows


# -- loading ------------------------------------------------------------------------------------


def _secondary_indexes_sqlite(con: sqlite3.Connection) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        "AND tbl_name IN ('cases', 'events', 'tasks')")]  # fmt: skip


def load_sqlite(path: Path, done: list[Template], open_: list[Template], source: str,
                n: int, now: float) -> dict[str, int]:  # fmt: skip
    from accord.stores import open_store

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    open_store(f"sqlite:///{path}").close()  # the schema, every migration
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")
    indexes = _secondary_indexes_sqlite(con)
    for name, _sql in indexes:
        con.execute(f"DROP INDEX {name}")
    con.execute("BEGIN")
    con.execute("INSERT INTO definitions (key, name, source, deployed_at) VALUES (?,?,?,?)",
                ("client-onboarding@1", "Client onboarding", source, now))  # fmt: skip
    counts = {"cases": 0, "events": 0, "tasks": 0}
    for rows in copies(done, open_, n, now):
        con.executemany(f"INSERT INTO cases ({CASE_COLS}) VALUES (?,?,?,?,?,?,?,?,?)", rows.cases)
        con.executemany(
            f"INSERT INTO events ({EVENT_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows.events
        )
        con.executemany(f"INSERT INTO tasks ({TASK_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        rows.tasks)  # fmt: skip
        counts["cases"] += len(rows.cases)
        counts["events"] += len(rows.events)
        counts["tasks"] += len(rows.tasks)
    con.execute("COMMIT")
    for _name, sql in indexes:
        con.execute(sql)
    con.execute("ANALYZE")
    con.close()
    return counts


def _copy_rows(cur: Any, table: str, cols: str, rows: list[tuple[Any, ...]]) -> None:
    with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as cp:
        for r in rows:
            cp.write_row(r)


def load_postgres(url: str, done: list[Template], open_: list[Template], source: str,
                  n: int, now: float) -> dict[str, int]:  # fmt: skip
    import psycopg

    from accord.stores import open_store
    from accord.stores.postgres import drop_schema, parse_url

    drop_schema(url)
    open_store(url).close()
    conninfo, schema, _ = parse_url(url)
    counts = {"cases": 0, "events": 0, "tasks": 0}
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema}")
        idx = conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = %s "
            "AND i.tablename IN ('cases', 'events', 'tasks') AND NOT EXISTS (SELECT 1 FROM "
            "pg_constraint c WHERE c.conname = i.indexname)",
            [schema],
        ).fetchall()
        for name, _sql in idx:
            conn.execute(f"DROP INDEX {name}")
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("INSERT INTO definitions (key, name, source, deployed_at) "
                        "VALUES (%s,%s,%s,%s)",
                        ("client-onboarding@1", "Client onboarding", source, now))  # fmt: skip
            for rows in copies(done, open_, n, now):
                _copy_rows(cur, "cases", CASE_COLS, rows.cases)
                _copy_rows(cur, "events", EVENT_COLS, rows.events)
                _copy_rows(cur, "tasks", TASK_COLS, rows.tasks)
                counts["cases"] += len(rows.cases)
                counts["events"] += len(rows.events)
                counts["tasks"] += len(rows.tasks)
        for _name, sql in idx:
            conn.execute(sql)
        conn.execute("VACUUM ANALYZE")  # as autovacuum would have: index-only scans work
    return counts


def add_users(url: str) -> str:
    """kofi (compliance member) and ana (sales member) with passwords; ana's API token."""
    from accord.stores import open_store
    from accord.web.accounts import Accounts

    store = open_store(url)
    accounts = Accounts(store)
    accounts.add("kofi", name="Kofi Mensah", password=PASSWORD, teams=("compliance",),
                 roles=("member",))  # fmt: skip
    accounts.add("ana", name="Ana Costa", password=PASSWORD, teams=("sales",), roles=("member",))
    token = accounts.issue_token("ana", "bench")
    store.close()
    return token


# -- the server and the load --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``accord serve`` in a subprocess."""

    def __init__(self, url: str, log: Path, workers: int = 1) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "accord.cli", "serve", "--db", url, "--port", str(self.port),
             "--no-worker", "--log-level", "warning",
             *(["--workers", str(workers)] if workers > 1 else [])],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.base}/login", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.log.close()
                tail = log.read_text(errors="replace")[-3000:]
                raise SystemExit(f"accord serve did not start:\n{tail}")
            time.sleep(0.3)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _login(base: str, user: str) -> httpx.Cookies:
    with httpx.Client(base_url=base) as c:
        page = c.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        r = c.post("/login", data={"username": user, "password": PASSWORD,
                                   "csrf_token": token.group(1), "next": "/"})  # fmt: skip
        assert r.status_code in (200, 303), r.text
        return c.cookies


def _pct(xs: list[float], q: float) -> float:
    ys = sorted(xs)
    return ys[min(len(ys) - 1, int(q * (len(ys) - 1) + 0.5))]


async def _pages(
    base: str, cookies: httpx.Cookies, paths: list[str], concurrency: int
) -> dict[str, Any]:
    latencies: list[float] = []
    sizes: list[int] = []
    errors = 0
    queue = list(paths)
    async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=60) as c:
        await c.get(paths[0])  # warm up

        async def worker() -> None:
            nonlocal errors
            while queue:
                path = queue.pop()
                t = time.perf_counter()
                r = await c.get(path)
                latencies.append((time.perf_counter() - t) * 1000)
                sizes.append(len(r.content))
                if r.status_code != 200:
                    errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return {"requests": len(latencies), "errors": errors,
            "p50_ms": round(_pct(latencies, 0.5), 1), "p95_ms": round(_pct(latencies, 0.95), 1),
            "max_ms": round(max(latencies), 1),
            "per_s": round(len(latencies) / elapsed, 1),
            "bytes": int(sum(sizes) / len(sizes))}  # fmt: skip


async def _completions(base: str, token: str, tasks: list[str], concurrency: int,
                       seconds: float) -> dict[str, Any]:  # fmt: skip
    done = 0
    errors: list[str] = []
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}
    body = {"data": {"client": "Bench Ltd", "amount": 4200, "risk": "low"},
            "feedback": {"rating": 4}}  # fmt: skip
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60, limits=limits) as c:
        await c.get("/api/v1/tasks", params={"limit": 1})
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while tasks and time.perf_counter() < stop:
                tid = tasks.pop()
                t = time.perf_counter()
                r = await c.post(f"/api/v1/tasks/{tid}/complete", json=body)
                latencies.append((time.perf_counter() - t) * 1000)
                if r.status_code == 200:
                    done += 1
                else:
                    errors.append(f"{r.status_code} {r.text[:200]}")

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return {"completed": done, "errors": len(errors),
            "first_error": errors[0] if errors else None, "seconds": round(elapsed, 2),
            "per_s": round(done / elapsed, 1), "p50_ms": round(_pct(latencies, 0.5), 1),
            "p95_ms": round(_pct(latencies, 0.95), 1)}  # fmt: skip


def _ids(url: str, sql: str) -> list[str]:
    from accord.stores import open_store

    store = open_store(url)
    try:
        return [r[0] for r in store.run_sql(sql)]
    finally:
        store.close()


_WRK_PAGES = """
local paths, i = {}, 0
init = function(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  i = math.random(#paths)
end
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""
_WRK_COMPLETE = """
local ids, i, n = {}, 0, 0
local threads, counter = {}, 0
setup = function(thread)
  thread:set("me", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
init = function(args)
  local all = tonumber(args[2])
  local k = 0
  for line in io.lines(args[1]) do
    if k % all == me then ids[#ids + 1] = line end
    k = k + 1
  end
end
request = function()
  i = i + 1
  if i > #ids then i = 1; n = n + 1 end  -- ran out: repeats are acknowledged, not counted
  return wrk.format("POST", "/api/v1/tasks/" .. ids[i] .. "/complete", nil,
    '{"data": {"client": "Bench Ltd", "amount": 4200, "risk": "low"}, "feedback": {"rating": 4}}')
end
"""
_WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests": %d, "non2xx": %d, "socket_errors": %d, '
    .. '"p50_ms": %.2f, "p95_ms": %.2f, "max_ms": %.2f, "seconds": %.3f}\\n',
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency.max / 1000,
    summary.duration / 1e6))
end
"""


def _wrk(base: str, script: str, headers: list[str], args: list[str], connections: int,
         seconds: float, work: Path) -> dict[str, Any]:  # fmt: skip
    lua = work / f"wrk-{uuid.uuid4().hex[:6]}.lua"
    lua.write_text(script + _WRK_DONE)
    cmd = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds:.0f}s", "--timeout", "10s",
           "-s", str(lua)]  # fmt: skip
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run([*cmd, base, *args], capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRK "))
    res: dict[str, Any] = json.loads(line[4:])
    res["per_s"] = round(res["requests"] / res["seconds"], 1)
    return res


def _page_line(name: str, res: dict[str, Any], concurrency: int) -> None:
    ok = "ok" if res["p95_ms"] < PAGE_TARGET_MS and not res.get("non2xx") else "MISSED"
    print(f"  {name:<10} p50 {res['p50_ms']:>7.1f} ms   p95 {res['p95_ms']:>7.1f} ms   "
          f"({res['requests']} requests, {concurrency} in flight, {res['per_s']}/s, "
          f"{res.get('non2xx', res.get('errors', 0))} errors)   target p95 < "
          f"{PAGE_TARGET_MS:.0f} ms: {ok}", flush=True)  # fmt: skip


def dashboard_compute(url: str, runs: int = 30) -> dict[str, Any]:
    """The dashboard's read model computed afresh (what a request pays when the log has
    changed since the last one), in-process: p50 and p95 of ``runs``."""
    from accord.stores import open_store
    from accord.web import views

    store = open_store(url)
    try:
        r = views.reader_for(store)
        end = views.log_now(r, time.time())
        took = []
        for _ in range(runs):
            t = time.perf_counter()
            views.dashboard(r, end, 30)
            took.append((time.perf_counter() - t) * 1000)
    finally:
        store.close()
    return {"p50_ms": round(_pct(took, 0.5), 1), "p95_ms": round(_pct(took, 0.95), 1)}


def measure(url: str, token: str, n_cases: int, args: argparse.Namespace,
            work: Path, log: Path) -> dict[str, Any]:  # fmt: skip
    server = Server(url, log, args.workers)
    use_wrk = args.load == "wrk"
    try:
        cookies = _login(server.base, "kofi")
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        rng = random.Random(3)
        case_ids = [f"c{rng.randrange(n_cases):07d}" for _ in range(max(args.requests, 2000))]
        pages = {
            "inbox": ["/inbox"],
            "board": ["/teams/compliance/board"],
            "case": [f"/cases/{c}" for c in case_ids],
            "dashboard": ["/dashboard"],
        }
        out: dict[str, Any] = {"load": args.load, "pages": {}}
        for name, paths in pages.items():
            if args.skip_pages:
                break
            if use_wrk:
                listing = work / f"paths-{name}.txt"
                listing.write_text("\n".join(paths) + "\n")
                res = _wrk(server.base, _WRK_PAGES, [f"Cookie: {cookie}"], [str(listing)],
                           args.concurrency, args.page_seconds, work)  # fmt: skip
            else:
                todo = (paths * (args.requests // len(paths) + 1))[: args.requests]
                res = asyncio.run(_pages(server.base, cookies, todo, args.concurrency))
            out["pages"][name] = res
            _page_line(name, res, args.concurrency)
        if not args.skip_pages:
            fresh = dashboard_compute(url)
            out["dashboard_compute"] = fresh
            print(
                f"  (the dashboard's read model computed afresh, in-process: p50 "
                f"{fresh['p50_ms']} ms, p95 {fresh['p95_ms']} ms)",
                flush=True,
            )
        tasks = _ids(url, "SELECT id FROM tasks WHERE step = 'request' AND status = 'ready'")
        random.Random(4).shuffle(tasks)
        levels = [int(x) for x in str(args.complete_concurrency).split(",")]
        done_sql = (
            "SELECT count(*) FROM events WHERE type = 'task.completed' "
            "AND actor = 'ana' AND step = 'request'"
        )
        sweep = []
        share = len(tasks) // (len(levels) + (1 if args.servers > 1 else 0))
        for k, level in enumerate(levels):
            mine = tasks[k * share : (k + 1) * share]
            if use_wrk:
                before = int(_ids(url, done_sql)[0])
                listing = work / f"tasks-c{level}.txt"
                listing.write_text("\n".join(mine) + "\n")
                res = _wrk(server.base, _WRK_COMPLETE,
                           [f"Authorization: Bearer {token}", "Content-Type: application/json"],
                           [str(listing), "2"], level, args.seconds, work)  # fmt: skip
                res["completed"] = int(_ids(url, done_sql)[0]) - before
                res["tasks_available"] = len(mine)
                res["per_s"] = round(res["completed"] / res["seconds"], 1)
                res["errors"] = res["non2xx"] + res["socket_errors"]
                res["ran_out"] = res["requests"] > len(mine)
            else:
                res = asyncio.run(_completions(server.base, token, mine, level, args.seconds))
            res["in_flight"] = level
            sweep.append(res)
            if res.get("ran_out"):
                print("  (ran out of tasks: repeats were acknowledged, not counted; a lower bound)")
            ok = "ok" if res["per_s"] >= COMPLETE_TARGET and not res["errors"] else "MISSED"
            print(f"  complete   {res['per_s']:>7.1f} req/s  ({res['completed']} tasks in "
                  f"{res['seconds']} s, {level} in flight, p50 {res['p50_ms']} ms, "
                  f"p95 {res['p95_ms']} ms, {res['errors']} errors)   target >= "
                  f"{COMPLETE_TARGET:.0f}/s: {ok}", flush=True)  # fmt: skip
        out["complete"] = sweep
        best = max(sweep, key=lambda r: r["per_s"])
        if use_wrk and args.servers > 1:
            rest = tasks[len(levels) * share :]
            out["complete_replicas"] = complete_on_replicas(
                server, url, token, rest, best["in_flight"], args, work, log.parent, done_sql
            )
        return out
    finally:
        server.stop()


def complete_on_replicas(first: Server, url: str, token: str, tasks: list[str], per: int,
                         args: argparse.Namespace, work: Path, logs: Path,
                         done_sql: str) -> dict[str, Any]:  # fmt: skip
    """Completions spread over ``--servers`` server processes on the same store (replicas
    behind a load balancer), each loaded by its own wrk with its own share of the tasks and
    ``per`` requests in flight."""
    n = args.servers
    others = [Server(url, logs / f"serve-replica-{i}.log", args.workers) for i in range(1, n)]
    servers = [first, *others]
    try:
        seconds = args.seconds
        before = int(_ids(url, done_sql)[0])
        procs = []
        for i, srv in enumerate(servers):
            listing = work / f"tasks-{i}.txt"
            listing.write_text("\n".join(tasks[i::n]) + "\n")
            lua = work / f"wrk-complete-{i}.lua"
            lua.write_text(_WRK_COMPLETE + _WRK_DONE)
            cmd = ["wrk", "-t", "1", "-c", str(per), "-d", f"{seconds:.0f}s", "--timeout", "10s",
                   "-s", str(lua), "-H", f"Authorization: Bearer {token}",
                   "-H", "Content-Type: application/json", srv.base, str(listing), "1"]  # fmt: skip
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
        results = []
        for proc in procs:
            stdout, _ = proc.communicate()
            line = next(x for x in stdout.splitlines() if x.startswith("WRK "))
            results.append(json.loads(line[4:]))
        completed = int(_ids(url, done_sql)[0]) - before
        took = max(r["seconds"] for r in results)
        res = {"servers": n, "completed": completed, "seconds": took,
               "per_s": round(completed / took, 1),
               "errors": sum(r["non2xx"] + r["socket_errors"] for r in results),
               "p95_ms": max(r["p95_ms"] for r in results)}  # fmt: skip
        ok = "ok" if res["per_s"] >= COMPLETE_TARGET and not res["errors"] else "MISSED"
        print(f"  complete   {res['per_s']:>7.1f} req/s  with {n} server processes "
              f"({completed} tasks in {took} s, {per * n} in flight, {res['errors']} errors)   "
              f"target >= {COMPLETE_TARGET:.0f}/s: {ok}", flush=True)  # fmt: skip
        return res
    finally:
        for srv in others:
            srv.stop()


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--cases", type=int, default=100_000)
    p.add_argument(
        "--load",
        choices=["wrk", "python"],
        default="wrk" if shutil.which("wrk") else "python",
        help="load generator: wrk (apt-get install wrk) or httpx on asyncio",
    )
    p.add_argument("--requests", type=int, default=300, help="requests per page (python)")
    p.add_argument("--page-seconds", type=float, default=10.0, help="seconds per page (wrk)")
    p.add_argument("--concurrency", type=int, default=8, help="page requests in flight")
    p.add_argument(
        "--complete-concurrency",
        default="2,4,8,16",
        help="completions in flight: each level in turn, on its own tasks",
    )
    p.add_argument(
        "--servers",
        type=int,
        default=2,
        help="also complete through this many server processes (wrk only)",
    )
    p.add_argument("--seconds", type=float, default=3.0, help="seconds per completion level")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="accord serve --workers: worker processes per server",
    )
    p.add_argument(
        "--skip-pages",
        action="store_true",
        help="measure only the completions (no page loads, no dashboard read model)",
    )
    p.add_argument("--url", default=PG_URL, help="PostgreSQL server (a fresh schema is used)")
    p.add_argument("--json", type=Path, help="write the results here too")
    args = p.parse_args()
    now = time.time()
    results: dict[str, Any] = {"machine": {"python": platform.python_version(),
                                           "cpus": os.cpu_count(), "system": platform.platform()},
                               "cases": args.cases, "backends": {}}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="accord-bench-web-") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        done, open_, source = make_templates(work)
        print(
            f"templates: {len(done)} completed and {len(open_)} open cases written by the "
            f"engine ({time.perf_counter() - t:.1f} s)",
            flush=True,
        )
        for backend in args.backends.split(","):
            t = time.perf_counter()
            if backend == "sqlite":
                url = f"sqlite:///{work / 'web.db'}"
                counts = load_sqlite(work / "web.db", done, open_, source, args.cases, now)
            elif backend == "postgres":
                url = f"{args.url}?schema=accord_bench_web_{uuid.uuid4().hex[:8]}"
                counts = load_postgres(url, done, open_, source, args.cases, now)
            else:
                raise SystemExit(f"unknown backend {backend!r}")
            print(
                f"\n{backend}: {counts['cases']:,} cases, {counts['events']:,} events, "
                f"{counts['tasks']:,} tasks loaded in {time.perf_counter() - t:.0f} s",
                flush=True,
            )
            token = add_users(url)
            try:
                res = measure(url, token, args.cases, args, work, work / f"serve-{backend}.log")
            finally:
                if backend == "postgres":
                    from accord.stores.postgres import drop_schema

                    drop_schema(url)
            results["backends"][backend] = {"store": counts, **res}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
