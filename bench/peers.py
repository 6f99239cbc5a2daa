"""Peer-engine measurements for comparison with accord's own engine.

Workloads (identical shape for every peer):

* ``sequential``: start -> 10 automated steps in a row -> end (10 transitions per case).
* ``parallel``: start -> parallel split -> 5 automated steps -> parallel join -> end
  (5 transitions per case).

A "transition" is one completed *activity* (step); start/end events and gateways are not counted.

Peers:

* :func:`sqlite_commit_rate` - the floor: SQLite's own commit rate for one small row per
  transaction (stdlib ``sqlite3``, WAL, configurable ``synchronous``).
* :func:`spiff_run` - SpiffWorkflow 3.x, persisted by us the way a durable engine built on it
  must: after every completed task the whole workflow is serialized with
  ``BpmnWorkflowSerializer`` and upserted into SQLite with a commit.
* :func:`dbos_run` - DBOS Transact 3.x with a SQLite system database; DBOS checkpoints every
  step itself.

Every function returns a dict with at least: ``name, workload, cases, transitions, seconds,
cases_per_s, transitions_per_s, guarantee`` plus peer-specific notes. Memory figures come from
``resource.getrusage(RUSAGE_SELF).ru_maxrss``: process-wide high-water marks, so a measurement
run after a bigger one cannot show a lower peak.

This file is not part of a package; ``bench/engine.py`` imports it as ``from peers import ...``
when run as ``python bench/engine.py``. Standalone check: ``python bench/peers.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any

WORKLOADS: tuple[str, ...] = ("sequential", "parallel")
SEQ_STEPS = 10
PAR_BRANCHES = 5
STEPS_PER_CASE: dict[str, int] = {"sequential": SEQ_STEPS, "parallel": PAR_BRANCHES}

# Defaults sized for roughly 3-10 s per measurement on a 2-core machine.
SPIFF_DEFAULT_CASES: dict[str, int] = {"sequential": 600, "parallel": 600}
DBOS_DEFAULT_CASES: dict[str, int] = {"sequential": 300, "parallel": 250}

_SYNC_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")
_SYNC_NAMES = dict(enumerate(_SYNC_LEVELS))


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _check_workload(workload: str) -> int:
    if workload not in STEPS_PER_CASE:
        raise ValueError(f"unknown workload {workload!r}; expected one of {WORKLOADS}")
    return STEPS_PER_CASE[workload]


def _check_sync(synchronous: str) -> str:
    level = synchronous.upper()
    if level not in _SYNC_LEVELS:
        raise ValueError(f"synchronous must be one of {_SYNC_LEVELS}, got {synchronous!r}")
    return level


def _maxrss_mb() -> float:
    """Process-wide peak RSS in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _fresh_db(path: str | os.PathLike[str]) -> Path:
    """Remove a previous database (and its WAL/SHM/journal side files); return the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(str(p) + suffix).unlink()
    return p


def _open_wal(path: Path, synchronous: str) -> sqlite3.Connection:
    # Default isolation_level ("" = deferred): autocommit off, sqlite3 issues BEGIN before DML.
    conn = sqlite3.connect(str(path))
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise RuntimeError(f"could not enable WAL on {path}: journal_mode={mode}")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


def _result(
    name: str,
    workload: str,
    cases: int,
    transitions: int,
    seconds: float,
    guarantee: str,
    **notes: Any,
) -> dict[str, Any]:
    return {
        "name": name,
        "workload": workload,
        "cases": cases,
        "transitions": transitions,
        "seconds": seconds,
        "cases_per_s": cases / seconds if seconds > 0 else float("nan"),
        "transitions_per_s": transitions / seconds if seconds > 0 else float("nan"),
        "guarantee": guarantee,
        **notes,
    }


# --------------------------------------------------------------------------------------------
# 1. SQLite commit floor
# --------------------------------------------------------------------------------------------


def sqlite_commit_rate(
    path: str | os.PathLike[str], synchronous: str = "NORMAL", seconds: float = 2.0
) -> dict[str, Any]:
    """Commits/s for one small INSERT per transaction (WAL, given ``synchronous``).

    The database at ``path`` is recreated. ``cases`` and ``transitions`` both equal the number
    of committed transactions.
    """
    sync = _check_sync(synchronous)
    p = _fresh_db(path)
    conn = _open_wal(p, sync)
    try:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, case_id TEXT, step INTEGER)")
        conn.commit()
        rss0 = _maxrss_mb()
        n = 0
        payload = uuid.uuid4().hex
        t0 = time.perf_counter()
        deadline = t0 + seconds
        now = t0
        while now < deadline:
            conn.execute("INSERT INTO t (case_id, step) VALUES (?, ?)", (payload, n))
            conn.commit()
            n += 1
            if n % 64 == 0:
                now = time.perf_counter()
            # check the clock every 64 commits to keep the loop cheap
        elapsed = time.perf_counter() - t0
    finally:
        conn.close()
    return _result(
        f"sqlite3 commit (WAL, synchronous={sync})",
        "single-row-commit",
        n,
        n,
        elapsed,
        _wal_guarantee(sync),
        synchronous=sync,
        sqlite_version=sqlite3.sqlite_version,
        peak_rss_mb=_maxrss_mb(),
        rss_growth_mb=_maxrss_mb() - rss0,
    )


def _wal_guarantee(sync: str) -> str:
    return {
        "OFF": "none vs OS crash/power loss (no fsync); survives process crash",
        "NORMAL": "WAL+NORMAL: survives process crash; last commits may roll back on power loss",
        "FULL": "WAL+FULL: fsync per commit; survives power loss",
        "EXTRA": "WAL+EXTRA: fsync per commit (+dir); survives power loss",
    }[sync]


# --------------------------------------------------------------------------------------------
# 2. SpiffWorkflow 3.x
# --------------------------------------------------------------------------------------------

_BPMN_NS = (
    'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'id="defs" targetNamespace="http://accord.bench/peers"'
)


def _bpmn_xml(workload: str) -> str:
    """Inline BPMN 2.0 for the workload; activities are scriptTasks whose script is ``pass``."""
    _check_workload(workload)
    els: list[str] = ['<bpmn:startEvent id="start"/>']
    flows: list[tuple[str, str]] = []

    def task(tid: str) -> None:
        els.append(
            f'<bpmn:scriptTask id="{tid}" scriptFormat="python">'
            "<bpmn:script>pass</bpmn:script></bpmn:scriptTask>"
        )

    if workload == "sequential":
        prev = "start"
        for i in range(SEQ_STEPS):
            task(f"step{i}")
            flows.append((prev, f"step{i}"))
            prev = f"step{i}"
        flows.append((prev, "end"))
    else:
        els.append('<bpmn:parallelGateway id="split"/>')
        els.append('<bpmn:parallelGateway id="join"/>')
        flows.append(("start", "split"))
        for i in range(PAR_BRANCHES):
            task(f"branch{i}")
            flows.append(("split", f"branch{i}"))
            flows.append((f"branch{i}", "join"))
        flows.append(("join", "end"))
    els.append('<bpmn:endEvent id="end"/>')
    els.extend(
        f'<bpmn:sequenceFlow id="f{k}" sourceRef="{a}" targetRef="{b}"/>'
        for k, (a, b) in enumerate(flows)
    )
    body = "".join(els)
    return (
        f"<bpmn:definitions {_BPMN_NS}>"
        f'<bpmn:process id="bench_{workload}" isExecutable="true">{body}</bpmn:process>'
        "</bpmn:definitions>"
    )


def spiff_run(
    workload: str,
    n_cases: int | None = None,
    db_path: str | os.PathLike[str] | None = None,
    synchronous: str = "NORMAL",
    *,
    persist: str = "task",
) -> dict[str, Any]:
    """Run ``n_cases`` SpiffWorkflow cases of ``workload``, persisting durably as it goes.

    Per case: ``BpmnWorkflow(spec)``, then ``do_engine_steps(did_complete_task=...)``, where the
    callback serializes the whole workflow with ``BpmnWorkflowSerializer.serialize_json`` and
    upserts it (one row per case) into SQLite (WAL, ``synchronous``), one COMMIT per call.

    ``persist="task"`` (default) persists after every completed Spiff task, including the
    engine-internal ones (start/end events, gateways, Spiff's hidden Start/End tasks);
    ``persist="activity"`` persists only after each activity plus once when the case completes
    (a lower bound on what a durable Spiff-based engine must write). Parsing the BPMN is outside
    the timed region. ``db_path`` is recreated; ``None`` uses a temporary directory.
    """
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.bpmn.parser import BpmnParser
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.util.task import TaskState

    per_case = _check_workload(workload)
    sync = _check_sync(synchronous)
    if persist not in ("task", "activity"):
        raise ValueError("persist must be 'task' or 'activity'")
    n = SPIFF_DEFAULT_CASES[workload] if n_cases is None else n_cases

    with contextlib.ExitStack() as stack:
        if db_path is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="peers-spiff-"))
            db_path = Path(tmp) / "spiff.sqlite"
        p = _fresh_db(db_path)

        parser = BpmnParser()
        parser.add_bpmn_str(_bpmn_xml(workload).encode())
        spec = parser.get_spec(f"bench_{workload}")
        activity_ids = {
            ts.bpmn_id
            for ts in spec.task_specs.values()
            if getattr(ts, "bpmn_id", None) and type(ts).__name__ == "ScriptTask"
        }
        if len(activity_ids) != per_case:
            raise RuntimeError(f"expected {per_case} activities, parsed {sorted(activity_ids)}")
        serializer = BpmnWorkflowSerializer()

        conn = _open_wal(p, sync)
        stack.callback(conn.close)
        conn.execute(
            "CREATE TABLE spiff_case (case_id TEXT PRIMARY KEY, state TEXT NOT NULL, "
            "version INTEGER NOT NULL)"
        )
        conn.commit()
        upsert = (
            "INSERT INTO spiff_case (case_id, state, version) VALUES (?, ?, ?) "
            "ON CONFLICT(case_id) DO UPDATE SET state = excluded.state, version = excluded.version"
        )

        transitions = 0
        commits = 0
        state_bytes = 0
        rss0 = _maxrss_mb()
        t0 = time.perf_counter()
        for _ in range(n):
            case_id = uuid.uuid4().hex
            wf = BpmnWorkflow(spec)
            version = 0

            def save(wf: Any = wf, case_id: str = case_id) -> None:
                nonlocal version, commits, state_bytes
                state = serializer.serialize_json(wf)
                version += 1
                conn.execute(upsert, (case_id, state, version))
                conn.commit()
                commits += 1
                state_bytes += len(state)

            def did_complete(task: Any, save: Callable[[], None] = save) -> None:
                nonlocal transitions
                is_activity = task.task_spec.bpmn_id in activity_ids
                if is_activity:
                    transitions += 1
                if persist == "task" or is_activity:
                    save()

            wf.do_engine_steps(did_complete_task=did_complete)
            if not wf.is_completed():
                ready = wf.get_tasks(state=TaskState.READY | TaskState.WAITING)
                raise RuntimeError(f"spiff case did not complete; pending: {ready}")
            if persist == "activity":
                save()  # record completion
        elapsed = time.perf_counter() - t0
        rows = conn.execute("SELECT count(*) FROM spiff_case").fetchone()[0]

    if transitions != n * per_case or rows != n:
        raise RuntimeError(f"spiff: counted {transitions} transitions, {rows} rows for {n} cases")
    return _result(
        "SpiffWorkflow",
        workload,
        n,
        transitions,
        elapsed,
        f"full workflow JSON committed after every {persist} "
        f"({_wal_guarantee(sync).split(':')[0]})",
        version=pkg_version("spiffworkflow"),
        persist=persist,
        synchronous=sync,
        commits=commits,
        commits_per_case=commits / n if n else 0.0,
        commits_per_s=commits / elapsed if elapsed > 0 else float("nan"),
        mean_state_bytes=state_bytes / commits if commits else 0,
        peak_rss_mb=_maxrss_mb(),
        rss_growth_mb=_maxrss_mb() - rss0,
    )


# --------------------------------------------------------------------------------------------
# 3. DBOS Transact 3.x
# --------------------------------------------------------------------------------------------

_DBOS_FUNCS: dict[str, Callable[..., Any]] = {}


def _dbos_funcs() -> dict[str, Callable[..., Any]]:
    """Register the benchmark workflows/steps once per process (DBOS keeps a global registry
    that survives ``DBOS.destroy()``, so re-registering would clash)."""
    if _DBOS_FUNCS:
        return _DBOS_FUNCS
    from dbos import DBOS

    @DBOS.step(name="accord_bench_noop_step")
    def noop_step() -> None:
        return None

    @DBOS.step(name="accord_bench_noop_step_async")
    async def noop_step_async() -> None:
        return None

    @DBOS.workflow(name="accord_bench_sequential")
    def sequential_wf() -> int:
        for _ in range(SEQ_STEPS):
            noop_step()
        return SEQ_STEPS

    @DBOS.workflow(name="accord_bench_parallel")
    async def parallel_wf() -> int:
        # DBOS's documented way to run steps in parallel: async steps started as tasks in a
        # deterministic order (so step IDs are replayable), then gathered.
        tasks = [asyncio.create_task(noop_step_async()) for _ in range(PAR_BRANCHES)]
        await asyncio.gather(*tasks)
        return PAR_BRANCHES

    _DBOS_FUNCS.update(sequential=sequential_wf, parallel=parallel_wf)
    return _DBOS_FUNCS


def dbos_run(
    workload: str,
    n_cases: int | None = None,
    db_path: str | os.PathLike[str] | None = None,
    *,
    wal: bool = False,
) -> dict[str, Any]:
    """Run ``n_cases`` DBOS workflows of ``workload`` on a fresh SQLite system database.

    sequential: one ``@DBOS.workflow`` calling 10 ``@DBOS.step`` functions in turn, invoked
    synchronously (``sequential_wf()``) from this thread, one case after another.
    parallel: an async ``@DBOS.workflow`` that ``asyncio.create_task``s 5 async steps and
    ``asyncio.gather``s them (the pattern DBOS documents for parallel steps); cases are awaited
    one after another inside one ``asyncio.run``.

    DBOS is launched before and destroyed after the timed region (``DBOS.destroy()``, registry
    kept), so it can share a process with other measurements. ``wal=True`` switches the fresh
    database file to WAL before DBOS opens it; by default DBOS runs as shipped (SQLite default
    rollback journal, build-default synchronous, normally FULL). ``db_path`` is recreated;
    ``None`` uses a temporary directory.
    """
    from dbos import DBOS, DBOSConfig

    per_case = _check_workload(workload)
    n = DBOS_DEFAULT_CASES[workload] if n_cases is None else n_cases
    funcs = _dbos_funcs()

    with contextlib.ExitStack() as stack:
        if db_path is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="peers-dbos-"))
            db_path = Path(tmp) / "dbos.sqlite"
        p = _fresh_db(db_path)
        if wal:
            c = sqlite3.connect(str(p))
            c.execute("PRAGMA journal_mode=WAL")
            c.close()

        config: DBOSConfig = {
            "name": "accord-bench-peers",
            "system_database_url": f"sqlite:///{p}",
            "log_level": "WARNING",
        }
        DBOS.destroy()  # in case a previous user left one behind
        DBOS(config=config)
        stack.callback(DBOS.destroy)
        DBOS.launch()
        _quiet_dbos_logger()

        wf = funcs[workload]
        rss0 = _maxrss_mb()
        t0 = time.perf_counter()
        if workload == "sequential":
            for _ in range(n):
                if wf() != per_case:
                    raise RuntimeError("dbos sequential workflow returned wrong value")
        else:

            async def drive() -> None:
                for _ in range(n):
                    if await wf() != per_case:
                        raise RuntimeError("dbos parallel workflow returned wrong value")

            asyncio.run(drive())
        elapsed = time.perf_counter() - t0

        with contextlib.closing(sqlite3.connect(str(p))) as c:
            journal = c.execute("PRAGMA journal_mode").fetchone()[0]
            # DBOS sets no synchronous pragma, so its connections get the build default.
            sync_level = _SYNC_NAMES.get(c.execute("PRAGMA synchronous").fetchone()[0], "?")
            n_wf, n_steps = _dbos_counts(c)

    if n_wf is not None and n_wf < n:
        raise RuntimeError(f"dbos: only {n_wf} workflow rows for {n} cases")
    try:
        dbos_version = pkg_version("dbos")
    except PackageNotFoundError:  # pragma: no cover - metadata missing
        dbos_version = "?"
    return _result(
        "DBOS",
        workload,
        n,
        n * per_case,
        elapsed,
        f"every step output committed to the SQLite system DB (journal={journal}, "
        f"synchronous={sync_level})",
        version=dbos_version,
        journal_mode=journal,
        synchronous=sync_level,
        parallel_mode="async workflow: asyncio.create_task per step + asyncio.gather"
        if workload == "parallel"
        else None,
        workflow_rows=n_wf,
        step_rows=n_steps,
        peak_rss_mb=_maxrss_mb(),
        rss_growth_mb=_maxrss_mb() - rss0,
    )


def _quiet_dbos_logger() -> None:
    logging.getLogger("dbos").setLevel(logging.WARNING)


def _dbos_counts(conn: sqlite3.Connection) -> tuple[int | None, int | None]:
    """Best-effort row counts of DBOS's workflow_status / operation_outputs tables."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    n_wf = n_steps = None
    if "workflow_status" in tables:
        n_wf = conn.execute("SELECT count(*) FROM workflow_status").fetchone()[0]
    if "operation_outputs" in tables:
        n_steps = conn.execute("SELECT count(*) FROM operation_outputs").fetchone()[0]
    return n_wf, n_steps


# --------------------------------------------------------------------------------------------
# standalone check
# --------------------------------------------------------------------------------------------


def _fmt_row(r: dict[str, Any]) -> str:
    return (
        f"{r['name'][:38]:<38} {r['workload']:<17} {r['cases']:>7} {r['transitions']:>8} "
        f"{r['seconds']:>7.2f} {r['cases_per_s']:>9.1f} {r['transitions_per_s']:>9.1f}  "
        f"{r['guarantee']}"
    )


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Measure peer workflow engines.")
    ap.add_argument("--spiff-cases", type=int, default=200)
    ap.add_argument("--dbos-cases", type=int, default=100)
    ap.add_argument("--sqlite-seconds", type=float, default=1.0)
    ap.add_argument("--synchronous", default="NORMAL")
    ap.add_argument("--dir", default=None, help="directory for the SQLite files (default: temp)")
    args = ap.parse_args(argv)

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        d = Path(args.dir or tmp)
        rows.append(sqlite_commit_rate(d / "floor.sqlite", args.synchronous, args.sqlite_seconds))
        for wl in WORKLOADS:
            rows.append(spiff_run(wl, args.spiff_cases, d / f"spiff-{wl}.sqlite", args.synchronous))
        for wl in WORKLOADS:
            rows.append(
                spiff_run(
                    wl,
                    args.spiff_cases,
                    d / f"spiff-act-{wl}.sqlite",
                    args.synchronous,
                    persist="activity",
                )
            )
        for wl in WORKLOADS:
            rows.append(dbos_run(wl, args.dbos_cases, d / f"dbos-{wl}.sqlite"))

    head = (
        f"{'peer':<38} {'workload':<17} {'cases':>7} {'trans':>8} {'secs':>7} "
        f"{'cases/s':>9} {'trans/s':>9}  guarantee"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(_fmt_row(r))
    print()
    for r in rows:
        extras = {
            k: (round(v, 2) if isinstance(v, float) else v)
            for k, v in r.items()
            if k not in ("name", "guarantee", "seconds", "cases", "transitions")
            and not k.endswith("_per_s")
        }
        print(f"{r['name']}: {extras}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
