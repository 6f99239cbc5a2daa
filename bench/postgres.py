"""Durable step transitions on PostgreSQL: accord with 1, 2 and 4 engine replicas, beside DBOS
Transact on the same server and the server's own single-row commit rate, all in one run.

Run from the repository root (PostgreSQL on 127.0.0.1:5432, database ``test``)::

    .venv/bin/python bench/postgres.py                  # full run, about 2 minutes
    .venv/bin/python bench/postgres.py --quick          # smoke run, < 40 s
    .venv/bin/python bench/postgres.py --json out.json  # also write every result as JSON
    .venv/bin/python bench/postgres.py --url postgresql://host:5432/db

Workload (the ``sequential`` one of bench/peers.py): a case is 10 automated no-op steps in a row,
so 10 step transitions per case. A transition is durable when it is committed, with the server's
``synchronous_commit = on`` (checked and reported), before the case moves on.

* **commit floor**: one client, ``INSERT`` one row + ``COMMIT`` in a loop (psycopg 3).
* **DBOS**: ``@DBOS.workflow`` calling 10 ``@DBOS.step`` functions, one workflow after another
  from one thread, with its system database on the same server (every step's output is
  committed before the next step runs).
* **accord, N replicas**: N separate processes, each an ``Engine(..., shared=True)`` with two
  job loops (as ``accord engine`` has by default). A loop leases up to 512 ready jobs (``FOR
  UPDATE SKIP LOCKED``), runs their handlers and commits all their transitions in one
  transaction (group commit) before leasing again; so every transition is committed before its
  case moves on, and while one loop waits for its commit the other computes. Cases are started
  before the clock starts (their starts are measured separately as "case starts/s": one
  transaction each) and the clock stops when the last case completes.

Every accord run uses a fresh schema (dropped afterwards); DBOS uses a fresh database.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import threading
import time
import uuid
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine import process_yaml
from peers import STEPS_PER_CASE, _dbos_funcs, _quiet_dbos_logger, _result

DEFAULT_URL = "postgresql://127.0.0.1:5432/test"
WORKLOAD = "sequential"
MAX_BATCH = 512
TARGET_TPS = 2_500
TARGET_VS_DBOS = 6.0


# -- the server's own commit rate -----------------------------------------------------------------


def commit_floor(url: str, seconds: float) -> dict[str, Any]:
    """Single-row INSERT + COMMIT per transaction, one client, for ``seconds``."""
    import psycopg

    table = f"accord_bench_floor_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url) as conn:
        sync = conn.execute("SHOW synchronous_commit").fetchone()
        conn.execute(f"CREATE TABLE {table} (id BIGSERIAL PRIMARY KEY, case_id TEXT, step INT)")
        conn.commit()
        try:
            n = 0
            t0 = time.perf_counter()
            deadline = t0 + seconds
            while True:
                conn.execute(f"INSERT INTO {table} (case_id, step) VALUES (%s, %s)", ("c", n))
                conn.commit()
                n += 1
                if n % 64 == 0 and time.perf_counter() >= deadline:
                    break
            elapsed = time.perf_counter() - t0
        finally:
            conn.execute(f"DROP TABLE {table}")
            conn.commit()
    return _result(
        "psycopg INSERT + COMMIT",
        "single-row-commit",
        n,
        n,
        elapsed,
        f"one commit per row (synchronous_commit={sync[0] if sync else '?'})",
    )


# -- DBOS on the same server ----------------------------------------------------------------------


def dbos_pg(url: str, n_cases: int) -> dict[str, Any]:
    """DBOS's sequential workflow, ``n_cases`` times, system database on ``url``'s server."""
    import psycopg
    from dbos import DBOS, DBOSConfig

    base = url.rsplit("/", 1)[0]
    dbname = f"accord_bench_dbos_{uuid.uuid4().hex[:8]}"
    per_case = STEPS_PER_CASE[WORKLOAD]
    funcs = _dbos_funcs()
    config: DBOSConfig = {
        "name": "accord-bench-postgres",
        "system_database_url": f"{base}/{dbname}",
        "log_level": "WARNING",
    }
    DBOS.destroy()
    DBOS(config=config)
    try:
        DBOS.launch()
        _quiet_dbos_logger()
        wf = funcs[WORKLOAD]
        wf()  # warm-up (connections, prepared statements); not counted
        t0 = time.perf_counter()
        for _ in range(n_cases):
            if wf() != per_case:
                raise RuntimeError("dbos workflow returned a wrong value")
        elapsed = time.perf_counter() - t0
    finally:
        DBOS.destroy()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    return _result(
        "DBOS (one workflow at a time)",
        WORKLOAD,
        n_cases,
        n_cases * per_case,
        elapsed,
        "every step's output committed to the PostgreSQL system database",
        version=pkg_version("dbos"),
    )


# -- accord replicas ------------------------------------------------------------------------------


def _definition() -> Any:
    from accord.model import loads

    return loads(process_yaml(WORKLOAD), f"<bench-{WORKLOAD}>")


def _engine(url: str) -> Any:
    from accord.central.engine import Engine
    from accord.handlers import HandlerRegistry
    from accord.stores import open_store

    registry = HandlerRegistry()
    registry.register("bench:noop", lambda ctx: {})
    return Engine(open_store(url), [_definition()], handlers=registry, shared=True)


def _replica(url: str, threads: int, go: Any, done: Any, out: Any) -> None:
    """One replica process: ``threads`` job loops (as `accord engine` runs them, so one loop
    computes while another waits for its commit) until every case has ended."""
    engine = _engine(url)
    counts = [[0, 0] for _ in range(threads)]

    def loop(mine: list[int]) -> None:
        while not done.is_set():
            # handlers are no-ops: run them inline (timeout 0) rather than on handler threads
            n = engine.run_jobs(MAX_BATCH, timeout=0, rounds=1)
            if n:
                mine[0] += 1
                mine[1] += n
            elif not engine.store.count_cases().get("running"):
                done.set()
            else:
                time.sleep(0.001)

    go.wait()
    try:
        workers = [threading.Thread(target=loop, args=(c,)) for c in counts]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        out.put({"rounds": sum(c[0] for c in counts), "transitions": sum(c[1] for c in counts)})
        engine.close()


def accord_pg(url: str, replicas: int, n_cases: int, threads: int = 2) -> dict[str, Any]:
    """``n_cases`` cases on ``replicas`` replica processes sharing one fresh schema."""
    from accord.stores.postgres import drop_schema

    schema_url = f"{url}?schema=accord_bench_{uuid.uuid4().hex[:8]}"
    per_case = STEPS_PER_CASE[WORKLOAD]
    client = _engine(schema_url)
    try:
        d = _definition()
        t0 = time.perf_counter()
        for i in range(n_cases):
            client.start_case(d.id, case_id=f"c{i:06d}")
        start_s = time.perf_counter() - t0
        ctx = mp.get_context("spawn")
        go, done, out = ctx.Event(), ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_replica, args=(schema_url, threads, go, done, out))
                 for _ in range(replicas)]  # fmt: skip
        for p in procs:
            p.start()
        time.sleep(2.0)  # let every replica open its pool and deploy before the clock starts
        t0 = time.perf_counter()
        go.set()
        done.wait()
        elapsed = time.perf_counter() - t0
        stats = [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(60)
        counts = client.store.count_cases()
        completed = sum(1 for _, e in client.store.events() if e.type.value == "task.completed")
    finally:
        client.close()
        drop_schema(schema_url)
    if counts != {"completed": n_cases} or completed != n_cases * per_case:
        raise RuntimeError(f"accord: cases {counts}, {completed} completions for {n_cases}")
    rounds = sum(s["rounds"] for s in stats)
    return _result(
        f"accord, {replicas} replica{'s' if replicas > 1 else ''}",
        WORKLOAD,
        n_cases,
        completed,
        elapsed,
        "each transition committed (synchronous_commit=on) before its case moves on; "
        f"group commit of up to {MAX_BATCH} per transaction",
        replicas=replicas,
        job_threads=threads,
        commits=rounds,
        transitions_per_commit=completed / rounds if rounds else None,
        per_replica=[s["transitions"] for s in stats],
        case_starts_per_s=n_cases / start_s,
    )


# -- report ---------------------------------------------------------------------------------------


def _table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'run':<34} {'cases':>7} {'transitions':>11} {'seconds':>8} {'cases/s':>9} {'steps/s':>9}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['name']:<34} {r['cases']:>7} {r['transitions']:>11} {r['seconds']:>8.2f} "
            f"{r['cases_per_s']:>9.0f} {r['transitions_per_s']:>9.0f}"
        )
    return "\n".join(lines)


def main() -> None:
    """Run every measurement and print the comparison (and the targets met or missed)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=os.environ.get("ACCORD_TEST_PG", DEFAULT_URL))
    ap.add_argument("--cases", type=int, default=3000, help="accord cases per run")
    ap.add_argument("--dbos-cases", type=int, default=300)
    ap.add_argument("--replicas", default="1,2,4")
    ap.add_argument("--threads", type=int, default=2, help="job loops per replica")
    ap.add_argument("--floor-seconds", type=float, default=5.0)
    ap.add_argument("--quick", action="store_true", help="small numbers, for a smoke run")
    ap.add_argument("--json", type=Path, help="also write every result here")
    args = ap.parse_args()
    if args.quick:
        args.cases, args.dbos_cases, args.floor_seconds = 600, 60, 1.5
    replicas = [int(x) for x in args.replicas.split(",")]

    print(f"PostgreSQL at {args.url}; {os.cpu_count()} cores; Python {platform.python_version()}")
    rows = [commit_floor(args.url, args.floor_seconds)]
    print(_table(rows[-1:]).splitlines()[-1], flush=True)
    rows.append(dbos_pg(args.url, args.dbos_cases))
    print(_table(rows[-1:]).splitlines()[-1], flush=True)
    for n in replicas:
        rows.append(accord_pg(args.url, n, args.cases, args.threads))
        print(_table(rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(_table(rows))
    floor, dbos = rows[0], rows[1]
    by_n = {r["replicas"]: r for r in rows[2:]}
    print()
    for n, r in by_n.items():
        print(f"accord x{n}: {r['transitions_per_s']:.0f} steps/s = "
              f"{r['transitions_per_s'] / floor['transitions_per_s']:.0%} of the commit floor, "
              f"{r['transitions_per_s'] / dbos['transitions_per_s']:.1f}x DBOS; "
              f"{r['transitions_per_commit']:.0f} transitions per commit; "
              f"case starts {r['case_starts_per_s']:.0f}/s")  # fmt: skip
    if 1 in by_n:
        one = by_n[1]["transitions_per_s"]
        checks = [
            (f">= {TARGET_TPS} steps/s with one replica", one >= TARGET_TPS),
            (">= 50% of the commit floor", one >= 0.5 * floor["transitions_per_s"]),
            (f">= {TARGET_VS_DBOS:g}x DBOS", one >= TARGET_VS_DBOS * dbos["transitions_per_s"]),
        ]
        if 2 in by_n:
            checks.append(("two replicas beat one", by_n[2]["transitions_per_s"] > one))
        for label, ok in checks:
            print(f"  [{'x' if ok else ' '}] {label}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
