"""Operations commands: engine (a replica), worker (handler jobs of some teams), start (cases).

Any number of ``accord engine`` and ``accord worker`` processes, on one machine or many, may
share one database; see docs/operations.md.
"""

from __future__ import annotations

import faulthandler
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from accord.cli.app import app, err, fail, out

DB_HELP = "The shared store: postgresql://host:5432/db (or a SQLite file for one machine)."
PROCESS_HELP = "Process definition to deploy (repeatable; default: every one stored in --db)."
PATH_HELP = "Folder to import handler modules from (repeatable; the process file's is added)."


def _url(db: str) -> str:
    return db if "://" in db else f"sqlite:///{db}"


def _engine(
    db: str, processes: list[Path], paths: list[Path], lease: float, retries: int = 20
) -> Any:
    """A shared engine on ``db`` with the given (or the stored) definitions deployed."""
    from accord.central.engine import Engine
    from accord.handlers import HandlerRegistry
    from accord.model import load, loads
    from accord.stores import open_store

    registry = HandlerRegistry([Path.cwd(), *paths])
    store = open_store(_url(db))
    defs = [load(p) for p in processes]
    if not defs:
        defs = [loads(source, f"{key} (stored)") for key, _, source in store.definitions()
                if source]  # fmt: skip
    if not defs:
        store.close()
        fail(f"no process definitions stored in {db}; pass --process FILE", 2)
    return Engine(store, defs, handlers=registry, shared=True, lease_s=lease, retries=retries)


def _serve(replica: Any, health_port: int | None, health_host: str) -> None:
    """Run a replica in the foreground until SIGTERM or SIGINT, then shut it down cleanly."""
    from accord.central.health import serve_health

    def on_signal(signum: int, _frame: Any) -> None:
        err.print(f"{signal.Signals(signum).name}: finishing the current turn, then stopping")
        replica.stop()
        # a second signal stops at once (the leases still run out, so nothing is lost)
        signal.signal(signum, signal.SIG_DFL)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # `kill -USR1 PID` prints every thread's stack: how to see what a stuck replica is doing
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    server = serve_health(replica, health_port, health_host) if health_port is not None else None
    if server is not None:
        host, port = str(server.server_address[0]), int(server.server_address[1])
        err.print(f"health: http://{host}:{port}/health")
    try:
        replica.run()
    finally:
        if server is not None:
            server.shutdown()
        replica.engine.close()


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s",
    )


def _health(db: str, as_json: bool) -> None:
    from accord.central.health import replica_report
    from accord.stores import open_store

    try:
        store = open_store(_url(db))
        try:
            report = replica_report(store)
        finally:
            store.close()
    except Exception as exc:
        if as_json:
            sys.stdout.write(orjson.dumps({"status": "unhealthy", "error": str(exc)}).decode())
            sys.stdout.write("\n")
            raise typer.Exit(1) from None
        fail(f"store unreachable: {exc}")
    ok = report["live_engines"] > 0
    report["status"] = "ok" if ok else "no live engine"
    if as_json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        t = Table(title=f"replicas of {db} (schema v{report['schema_version']})")
        for col in ("id", "role", "state", "seen", "live", "jobs", "timers", "errors"):
            t.add_column(col)
        for r in report["replicas"]:
            t.add_row(r["id"], r["role"], r["state"], f"{r['seen_s_ago']}s ago",
                      "yes" if r["live"] else "no", str(r.get("jobs", "")),
                      str(r.get("timers", "")), str(r.get("errors", "")))  # fmt: skip
        out.print(t)
        out.print(f"status: {report['status']}; cases: {report['cases']}")
    if not ok:
        raise typer.Exit(1)


@app.command()
def engine(  # noqa: PLR0917 - typer maps each parameter to an option
    db: Annotated[str, typer.Option(help=DB_HELP)],
    process: Annotated[list[Path] | None, typer.Option(help=PROCESS_HELP)] = None,
    path: Annotated[list[Path] | None, typer.Option(help=PATH_HELP)] = None,
    jobs: Annotated[bool, typer.Option(help="Run automated steps' handlers here too.")] = True,
    batch: Annotated[int, typer.Option(help="Jobs or timers taken per turn.")] = 256,
    handler_timeout: Annotated[float, typer.Option(help="Seconds before a handler fails.")] = 20.0,
    lease: Annotated[float, typer.Option(help="Seconds a dead replica's work stays held.")] = 30.0,
    health_port: Annotated[
        int | None, typer.Option(help="Serve GET /health and /replicas on this port.")
    ] = None,
    health_host: Annotated[str, typer.Option(help="Address to serve health on.")] = "127.0.0.1",
    health: Annotated[
        bool, typer.Option("--health", help="Check the replicas of --db and exit (0: healthy).")
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="With --health: print JSON.")] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run one engine replica: fire timers, run handler jobs, assign waiting tasks.

    Start as many as you like on one database; stop with SIGTERM (it finishes its turn and
    frees its leases).
    """
    if health:
        _health(db, json)
        return
    from accord.central.replica import Replica, ReplicaConfig

    _logging(log_level)
    config = ReplicaConfig(role="engine", jobs=jobs, batch=batch, handler_timeout=handler_timeout)
    _check_lease(lease, handler_timeout)
    engine_ = _engine(db, process or [], path or [], lease)
    _serve(Replica(engine_, config), health_port, health_host)


@app.command()
def worker(  # noqa: PLR0917 - typer maps each parameter to an option
    db: Annotated[str, typer.Option(help=DB_HELP)],
    team: Annotated[list[str], typer.Option(help="Run the handler jobs of this team (repeat).")],
    process: Annotated[list[Path] | None, typer.Option(help=PROCESS_HELP)] = None,
    path: Annotated[list[Path] | None, typer.Option(help=PATH_HELP)] = None,
    batch: Annotated[int, typer.Option(help="Jobs taken per turn.")] = 64,
    handler_timeout: Annotated[float, typer.Option(help="Seconds before a handler fails.")] = 20.0,
    lease: Annotated[float, typer.Option(help="Seconds a dead worker's jobs stay held.")] = 30.0,
    health_port: Annotated[
        int | None, typer.Option(help="Serve GET /health and /replicas on this port.")
    ] = None,
    health_host: Annotated[str, typer.Option(help="Address to serve health on.")] = "127.0.0.1",
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run automated steps' handlers of some teams, as a separate process.

    Scale out by starting more. Each handler gets its task's idempotency key in ctx.key.
    """
    from accord.central.replica import Replica, ReplicaConfig

    _logging(log_level)
    config = ReplicaConfig(
        role="worker",
        teams=tuple(team),
        timers=False,
        assign=False,
        batch=batch,
        handler_timeout=handler_timeout,
    )
    _check_lease(lease, handler_timeout)
    engine_ = _engine(db, process or [], path or [], lease)
    _serve(Replica(engine_, config), health_port, health_host)


def _check_lease(lease: float, handler_timeout: float) -> None:
    if lease <= 0 or handler_timeout <= 0:
        fail("--lease and --handler-timeout must be positive", 2)


@app.command()
def start(
    file: Annotated[Path, typer.Argument(help="Process definition (YAML).")],
    db: Annotated[str, typer.Option(help=DB_HELP)],
    count: Annotated[int, typer.Option("--count", "-n", help="How many cases to start.")] = 1,
    data: Annotated[str, typer.Option(help="Initial case data as a JSON object.")] = "{}",
    prefix: Annotated[str | None, typer.Option(help="Case ids: PREFIX-000001, ...")] = None,
) -> None:
    """Deploy a definition to the shared store and start cases of it (replicas take them on)."""
    from accord.errors import ConflictError
    from accord.model import load

    try:
        initial = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        fail(f"--data is not JSON: {exc}", 2)
    if not isinstance(initial, dict):
        fail("--data must be a JSON object", 2)
    if count < 1:
        fail("--count must be at least 1", 2)
    d = load(file)
    eng = _engine(db, [file], [], 30.0)
    try:
        started = 0
        for i in range(count):
            cid = f"{prefix}-{i + 1:06d}" if prefix else None
            try:
                eng.start_case(d.id, initial, case_id=cid, actor="cli")
                started += 1
            except ConflictError:
                continue  # started by an earlier run: starting is idempotent per case id
    finally:
        eng.close()
    out.print(f"started {started} case(s) of {d.key} in {db}", highlight=False)
