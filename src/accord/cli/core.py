"""Core commands: validate, run, status, events, demo."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from accord.cli.app import app, err, fail, out
from accord.errors import AccordError, DefinitionError


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Process definition files.")],
) -> None:
    """Check definitions; print every problem as file:line:col: element: message."""
    from accord.model import load
    from accord.sim.scenario import load_scenario

    bad = 0
    for f in files:
        try:
            d = load(f)
            load_scenario(d)  # the scenario section is part of the file: check it too
        except DefinitionError as exc:
            bad += 1
            for p in exc.problems:
                out.print(str(p), highlight=False, soft_wrap=True)
            continue
        out.print(f"{f}: ok ({d.key}: {len(d.steps)} steps, {len(d.teams)} teams)", highlight=False)
    if bad:
        raise typer.Exit(1)


def _fmt_s(seconds: Any) -> str:
    if seconds is None:
        return "-"
    s = float(seconds)
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.1f}m"
    if s < 172800:
        return f"{s / 3600:.1f}h"
    return f"{s / 86400:.1f}d"


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not enabled,
        transient=True,
    )


def simulate(
    file: Path,
    cases: int,
    *,
    mode: str = "central",
    seed: int = 0,
    db: str | None = None,
    scenario: Path | None = None,
    show_progress: bool = True,
    horizon: float | None = None,
) -> dict[str, Any]:
    """Run a simulation with a progress bar on stderr (see accord.sim.session.simulate)."""
    from accord.sim.session import MODES
    from accord.sim.session import simulate as run_simulation

    if mode not in MODES:
        fail(f"mode {mode!r} is not available (modes: {', '.join(MODES)})", 2)
    if cases < 1:
        fail("--cases must be at least 1", 2)
    if db is not None and mode != "central":
        fail(
            "--db keeps a central run; a choreographed run keeps one store per team node "
            "(start them with `accord node`)",
            2,
        )
    with _progress(show_progress) as bar:
        task = bar.add_task("cases", total=cases)
        return run_simulation(
            file,
            cases,
            mode=mode,
            seed=seed,
            db=db,
            scenario=scenario,
            progress=lambda done, total: bar.update(task, completed=done),
            horizon=horizon,
        )


def _print_summary(s: dict[str, Any], title: str) -> None:
    head = Table(title=title, show_header=False, title_justify="left")
    head.add_column(style="bold")
    head.add_column()
    rows = [
        ("mode", s["mode"]),
        ("cases started / completed", f"{s['cases_started']} / {s['cases_completed']}"),
        ("cases cancelled / open", f"{s['cases_cancelled']} / {s['cases_open']}"),
        ("cycle time p50 / p95",
         f"{_fmt_s(s['cycle_time_p50_s'])} / {_fmt_s(s['cycle_time_p95_s'])}"),
        ("handoffs", str(s["handoffs"])),
        ("handoff latency p50 / p95",
         f"{_fmt_s(s['handoff_latency_p50_s'])} / {_fmt_s(s['handoff_latency_p95_s'])}"),
        ("throughput", f"{s['throughput_per_day']} cases/day"),
        ("SLA breaches / escalations", f"{s['sla_breaches']} / {s['escalations']}"),
        ("task failures / incidents", f"{s['task_failures']} / {s['incidents']}"),
        ("events", str(s["events"])),
        ("simulated", f"{s.get('virtual_days', s['span_days'])} days in {s.get('wall_s', '?')}s"),
    ]  # fmt: skip
    for k, v in rows:
        head.add_row(k, str(v))
    out.print(head)
    steps = Table(title="steps", title_justify="left")
    for col in ("step", "completed", "wait p50", "wait p95", "work p50", "work p95"):
        steps.add_column(col, justify="left" if col == "step" else "right")
    for name, st in s["steps"].items():
        steps.add_row(
            name,
            str(st["completed"]),
            _fmt_s(st["wait_p50_s"]),
            _fmt_s(st["wait_p95_s"]),
            _fmt_s(st["work_p50_s"]),
            _fmt_s(st["work_p95_s"]),
        )
    out.print(steps)
    teams = Table(title="teams", title_justify="left")
    for col in ("team", "tasks", "work hours", "wait p50"):
        teams.add_column(col, justify="left" if col == "team" else "right")
    for name, t in s["teams"].items():
        teams.add_row(name, str(t["tasks"]), f"{t['work_h']:.1f}", _fmt_s(t["wait_p50_s"]))
    out.print(teams)


@app.command()
def run(  # noqa: PLR0917 - typer maps each parameter to an option
    file: Annotated[Path, typer.Argument(help="Process definition (YAML).")],
    cases: Annotated[int, typer.Option("--cases", "-n", help="How many cases to run.")] = 100,
    mode: Annotated[
        str, typer.Option(help="central (one hub) or choreo (a node per team).")
    ] = "central",
    seed: Annotated[int, typer.Option(help="Random seed: the same seed, the same numbers.")] = 0,
    db: Annotated[
        str | None,
        typer.Option(help="SQLite file or store URL to keep the run in (resumes if it exists)."),
    ] = None,
    scenario: Annotated[
        Path | None, typer.Option(help="Scenario file (default: the process file's own).")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    horizon: Annotated[
        str | None,
        typer.Option(
            help="Stop after this much virtual time from the first arrival (ISO duration, "
            "e.g. P90D); cases still open are reported open. Default: 3 times the span of "
            "the arrivals, at least 30 days past the last one."
        ),
    ] = None,
) -> None:
    """Run N cases with synthetic team members on virtual time and summarise them."""
    from accord.model.durations import parse_duration

    limit: float | None = None
    if horizon is not None:
        try:
            limit = parse_duration(horizon)
        except ValueError as exc:
            fail(f"--horizon: {exc}", 2)
        if limit is not None and limit <= 0:
            fail("--horizon must be longer than nothing", 2)
    try:
        summary = simulate(
            file,
            cases,
            mode=mode,
            seed=seed,
            db=db,
            scenario=scenario,
            show_progress=not json,
            horizon=limit,
        )
    except DefinitionError as exc:
        for p in exc.problems:
            err.print(str(p), highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if json:
        sys.stdout.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _print_summary(summary, f"{summary['process']}: {cases} cases, seed {seed}")
    if summary["cases_open"]:
        stopped = (
            f"; the run stopped at its horizon, {summary['horizon_days']} days (--horizon)"
            if summary.get("horizon_reached")
            else ""
        )
        err.print(
            f"[yellow]{summary['cases_open']} cases did not finish[/yellow] "
            f"(first: {', '.join(summary['unfinished'][:5])}){stopped}; see `accord status`"
        )


def _open(db: str) -> Any:
    from accord.stores import open_store

    if "://" not in db and not Path(db).exists():
        fail(f"no database at {db}")
    return open_store(db if "://" in db else f"sqlite:///{db}")


@app.command()
def status(db: Annotated[str, typer.Option(help="The store (SQLite file or URL).")]) -> None:
    """Open cases, the queue per team, and paused cases with their incidents."""
    store = _open(db)
    counts = store.count_cases()
    t = Table(title="cases", title_justify="left")
    t.add_column("status")
    t.add_column("count", justify="right")
    for k in ("running", "paused", "completed", "cancelled"):
        t.add_row(k, str(counts.get(k, 0)))
    out.print(t)
    q = Table(title="queues", title_justify="left")
    for col in ("team", "ready", "claimed", "waiting", "failed", "oldest ready"):
        q.add_column(col, justify="left" if col == "team" else "right")
    per: dict[str, dict[str, int]] = {}
    oldest: dict[str, float] = {}
    for st in ("ready", "claimed", "waiting", "failed"):
        for row in store.tasks(status=st):
            team = row.team or "(none)"
            per.setdefault(team, {}).setdefault(st, 0)
            per[team][st] += 1
            if st == "ready":
                oldest[team] = min(oldest.get(team, row.ready_at), row.ready_at)
    for team, c in sorted(per.items()):
        q.add_row(
            team,
            *(str(c.get(s, 0)) for s in ("ready", "claimed", "waiting", "failed")),
            _iso(oldest.get(team)),
        )
    out.print(q)
    paused = store.cases(status="paused")
    if paused:
        p = Table(title="paused cases", title_justify="left")
        p.add_column("case")
        p.add_column("since")
        p.add_column("incident")
        for c in paused[:50]:
            p.add_row(c.id, _iso(c.updated_at), c.incident or "paused by an operator")
        out.print(p)
    store.close()


def _iso(t: float | None) -> str:
    from accord.events import iso

    return "-" if t is None else iso(t)[:19].replace("T", " ")


@app.command()
def events(
    db: Annotated[str, typer.Option(help="The store (SQLite file or URL).")],
    case: Annotated[str | None, typer.Option(help="Only this case.")] = None,
    xes: Annotated[Path | None, typer.Option(help="Write an XES file instead.")] = None,
    json: Annotated[bool, typer.Option("--json", help="CloudEvents JSON, one per line.")] = False,
) -> None:
    """Print the event log (or export it as XES for process-mining tools)."""
    store = _open(db)
    stream = (e for _, e in store.events(case))
    if xes is not None:
        from accord.analytics.xes import export_xes

        try:
            n = export_xes(stream, xes, _step_names(store))
        except OSError as exc:
            store.close()
            fail(f"cannot write {xes}: {exc.strerror or exc}")
        err.print(f"wrote {n} events to {xes}")
        store.close()
        return
    for e in stream:
        if json:
            sys.stdout.write(orjson.dumps(e.to_cloudevent()).decode() + "\n")
        else:
            who = e.actor or ""
            what = e.step or ""
            extra = {k: v for k, v in e.data.items() if k not in ("input",)}
            out.print(
                f"{_iso(e.at)}  {e.case:<16} {e.type.value:<16} {what:<18} {who:<10} "
                f"{orjson.dumps(extra).decode() if extra else ''}",
                highlight=False,
                soft_wrap=True,
            )
    store.close()


def _step_names(store: Any) -> dict[str, str]:
    """Readable activity names from the definitions deployed in the store."""
    from accord.model import loads

    names: dict[str, str] = {}
    for key, _name, source in store.definitions():
        if not source:
            continue
        try:
            d = loads(source, key)
        except AccordError:
            continue  # an old or foreign definition: fall back to step ids
        names.update({sid: step.name for sid, step in d.steps.items()})
    return names


def _example(name: str) -> Path:
    here = Path(__file__).resolve()
    for base in (Path.cwd(), *here.parents):
        candidate = base / "examples" / name
        if candidate.is_file():
            return candidate
    fail(f"cannot find examples/{name} (run from the accord checkout)")
    raise AssertionError  # unreachable: fail exits


@app.command()
def demo(
    cases: Annotated[int, typer.Option(help="How many onboarding cases.")] = 200,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    db: Annotated[str, typer.Option(help="Where to keep the demo run.")] = "demo.db",
) -> None:
    """Run the client-onboarding example end to end and print a readable report."""
    file = _example("client-onboarding.yaml")
    if Path(db).exists():
        for suffix in ("", "-wal", "-shm"):
            Path(db + suffix).unlink(missing_ok=True)
    out.rule("[bold]accord demo: client onboarding")
    out.print(
        "Sales captures a request, compliance reviews it (and sends some back for rework),\n"
        "IT provisions accounts automatically while account management assigns a manager,\n"
        "then a kickoff call. The hub assigns every task (two coordinators decide each one);\n"
        "synthetic people work office hours.\n"
    )
    summary = simulate(file, cases, seed=seed, db=db)
    _print_summary(summary, f"{cases} cases, seed {seed}")
    from accord.stores import open_store

    store = open_store(f"sqlite:///{db}")
    first = store.cases(limit=1)
    if first:
        cid = first[0].id
        t = Table(title=f"timeline of {cid}", title_justify="left")
        for col in ("time", "event", "step", "who"):
            t.add_column(col)
        for _, e in store.events(cid):
            if e.type.value in ("gateway.decided",):
                continue
            who = e.data.get("assignee") or e.actor or ""
            t.add_row(_iso(e.at), e.type.value, e.step or "", str(who))
        out.print(t)
    store.close()
    out.print(
        f"\nThe run is kept in [bold]{db}[/bold]. Look closer with:\n"
        f"  accord status --db {db}\n"
        f"  accord events --db {db} --case {first[0].id if first else 'ID'}\n"
        f"  accord events --db {db} --xes onboarding.xes   # for pm4py, ProM, Disco\n"
        "And the same process run three ways, side by side:\n"
        "  accord compare examples/client-onboarding.yaml --modes central,choreo,hybrid\n"
        "Open it in the web app (the first start prints the demo users' passwords):\n"
        "  make serve\n"
        f"  accord serve --db {db} --seed-demo --process examples/client-onboarding.yaml\n",
        highlight=False,
    )
