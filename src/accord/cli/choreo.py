"""Commands for choreography and comparison: project, compare."""

from __future__ import annotations

import html
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from accord.cli.app import app, err, fail, out
from accord.errors import DefinitionError


@app.command()
def project(file: Annotated[Path, typer.Argument(help="Process definition (YAML).")]) -> None:
    """Show each team's part of the process: steps, handoffs in and out, joins, decisions."""
    from accord.choreo.projection import project as cut
    from accord.model import load

    try:
        p = cut(load(file))
    except DefinitionError as exc:
        err.print("[red]this process cannot be choreographed:[/red]")
        for problem in exc.problems:
            err.print(str(problem), highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    out.print(f"[bold]{p.definition.key}[/bold]: cases start at team [bold]{p.initiator}[/bold]\n")
    for team, part in p.parts.items():
        t = Table(title=f"team {team}", title_justify="left", show_header=False)
        t.add_column(style="bold")
        t.add_column()
        t.add_row("steps", ", ".join(part.steps) or "-")
        t.add_row(
            "receives",
            "\n".join(f"{h.flow} from {h.from_team}" for h in part.receives) or "-",
        )
        t.add_row("sends", "\n".join(f"{h.flow} to {h.to_team}" for h in part.sends) or "-")
        t.add_row("joins", ", ".join(part.joins) or "-")
        t.add_row("decides", ", ".join(part.decisions) or "-")
        if part.announces_to:
            t.add_row("announces to", ", ".join(part.announces_to))
        out.print(t)


def _fmt(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        v = float(value)
        if v < 120:
            return f"{v:.2f}s" if v < 10 else f"{v:.0f}s"
        if v < 7200:
            return f"{v / 60:.1f}m"
        if v < 172800:
            return f"{v / 3600:.1f}h"
        return f"{v / 86400:.1f}d"
    return str(value)


@app.command()
def compare(  # noqa: PLR0917 - typer maps each parameter to an option
    file: Annotated[Path, typer.Argument(help="Process definition (YAML).")],
    modes: Annotated[str, typer.Option(help="Comma-separated modes to run.")] = "central,choreo",
    cases: Annotated[int, typer.Option("--cases", "-n", help="Cases per mode.")] = 200,
    seed: Annotated[int, typer.Option(help="Random seed (the same for every mode).")] = 0,
    scenario: Annotated[Path | None, typer.Option(help="Scenario file.")] = None,
    rates: Annotated[
        str | None,
        typer.Option(help="Also sweep arrival rates (cases/day, comma-separated): hub saturation."),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="One JSON object keyed by mode.")] = False,
    html_out: Annotated[Path | None, typer.Option("--html", help="Write an HTML report.")] = None,
) -> None:
    """Run the same seeded workload in each mode and compare them side by side."""
    from accord.sim.compare import ROWS, mechanisms, sweep
    from accord.sim.compare import compare as run_compare
    from accord.sim.session import MODES

    wanted = [m.strip() for m in modes.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in MODES]
    if unknown or not wanted:
        fail(f"unknown mode(s) {', '.join(unknown) or '(none)'}; modes: {', '.join(MODES)}", 2)
    if cases < 1:
        fail("--cases must be at least 1", 2)
    try:
        values = [float(r) for r in rates.split(",") if r.strip()] if rates else []
    except ValueError as exc:
        fail(f"--rates takes numbers of cases per day: {exc}", 2)
        return
    if any(v <= 0 for v in values):
        fail("--rates must be positive (cases per day)", 2)
    try:
        results = run_compare(
            file,
            wanted,
            cases,
            seed=seed,
            scenario=scenario,
            progress=(lambda m, d, t: None) if json else _progress_printer(),
        )
        swept = sweep(file, values, cases, seed=seed, scenario=scenario) if values else None
    except DefinitionError as exc:
        for problem in exc.problems:
            err.print(str(problem), highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    notes = mechanisms(results)
    if json:
        doc: dict[str, Any] = dict(results)
        doc["mechanisms"] = notes
        if swept is not None:
            doc["sweep"] = swept
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        t = Table(title=f"{file}: {cases} cases per mode, seed {seed}", title_justify="left")
        t.add_column("measure")
        for m in results:
            t.add_column(m, justify="right")
        for key, label, unit in ROWS:
            t.add_row(label, *(_fmt(results[m].get(key), unit) for m in results))
        out.print(t)
        for n in notes:
            out.print(f"- {n}", highlight=False)
        if swept is not None:
            s = Table(title="arrival-rate sweep", title_justify="left")
            for col in ("cases/day", "central cycle p50", "choreo cycle p50", "hub queue peak"):
                s.add_column(col, justify="right")
            for row in swept["rows"]:
                s.add_row(
                    str(row["per_day"]),
                    _fmt(row["central_cycle_p50_s"], "s"),
                    _fmt(row["choreo_cycle_p50_s"], "s"),
                    str(row["central_hub_queue_peak"] or "-"),
                )
            out.print(s)
            out.print(swept["verdict"], highlight=False)
    if html_out is not None:
        html_out.write_text(_html(file, results, notes, swept), encoding="utf-8")
        err.print(f"wrote {html_out}")


def _progress_printer() -> Any:
    last: dict[str, int] = {}

    def show(mode: str, done: int, total: int) -> None:
        step = max(total // 10, 1)
        if done == total or done - last.get(mode, 0) >= step:
            last[mode] = done
            err.print(f"{mode}: {done}/{total} cases", highlight=False)

    return show


def _html(file: Path, results: dict[str, dict[str, Any]], notes: list[str], swept: Any) -> str:
    from accord.sim.compare import ROWS

    modes = list(results)
    head = "".join(f"<th>{html.escape(m)}</th>" for m in modes)
    rows = []
    for key, label, unit in ROWS:
        values = [results[m].get(key) for m in modes]
        numbers = [float(v) for v in values if isinstance(v, int | float)]
        top = max(numbers) if numbers else 0.0
        cells = []
        for v in values:
            bar = ""
            if isinstance(v, int | float) and top > 0:
                width = int(120 * float(v) / top)
                rect = f'<rect width="{width}" height="10" fill="#4a7"/>'
                bar = f'<svg width="124" height="10">{rect}</svg>'
            cells.append(f"<td>{html.escape(_fmt(v, unit))}<br>{bar}</td>")
        rows.append(f"<tr><th>{html.escape(label)}</th>{''.join(cells)}</tr>")
    sweep_html = ""
    if swept is not None:
        srows = "".join(
            f"<tr><td>{r['per_day']}</td><td>{_fmt(r['central_cycle_p50_s'], 's')}</td>"
            f"<td>{_fmt(r['choreo_cycle_p50_s'], 's')}</td></tr>"
            for r in swept["rows"]
        )
        sweep_html = (
            "<h2>Arrival-rate sweep</h2><table><tr><th>cases/day</th><th>central p50</th>"
            f"<th>choreo p50</th></tr>{srows}</table><p>{html.escape(swept['verdict'])}</p>"
        )
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>accord compare: {html.escape(str(file))}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:4px 10px;text-align:right}}
th:first-child{{text-align:left}}table{{border-collapse:collapse}}tr:nth-child(even){{background:#f4f4f4}}</style>
</head><body><h1>{html.escape(str(file))}: modes compared</h1>
<table><tr><th>measure</th>{head}</tr>{"".join(rows)}</table>
<h2>Why they differ</h2><ul>{items}</ul>{sweep_html}</body></html>
"""


def _graceful() -> Any:
    """A stop flag set by SIGTERM or SIGINT (finish the current step, then stop)."""
    import signal
    import threading

    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


@app.command()
def node(  # noqa: PLR0917 - typer maps each parameter to an option
    team: Annotated[str, typer.Option(help="The team this node runs (or @hub in hybrid).")],
    process: Annotated[Path, typer.Option(help="Process definition (YAML).")],
    bus: Annotated[str, typer.Option(help="Bus URL: nats://host:4222 (or memory://).")],
    store: Annotated[str, typer.Option(help="This node's own SQLite file.")],
    hybrid: Annotated[bool, typer.Option(help="Run the hybrid projection.")] = False,
    members: Annotated[
        bool, typer.Option(help="Let synthetic members work the team's tasks (demos, tests).")
    ] = False,
    speed: Annotated[float, typer.Option(help="Simulated seconds per second for members.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed for synthetic members.")] = 0,
) -> None:
    """Run one team's node: its part of every case, its own store, the bus. No hub."""
    import logging

    from accord.buses import open_bus
    from accord.choreo.live import LiveNode, tune_gc
    from accord.choreo.node import TeamNode
    from accord.choreo.projection import project as cut
    from accord.model import load
    from accord.sim.runner import staffed
    from accord.sim.scenario import load_scenario
    from accord.stores import open_store

    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {team} %(levelname)s %(message)s")
    tune_gc()  # this process is the node
    d = load(process)
    sc = load_scenario(d)
    d = staffed(d, sc)
    projection = cut(d, hybrid=hybrid)
    projection.part(team)  # refuses an unknown team precisely
    url = store if "://" in store else f"sqlite:///{store}"
    stop = _graceful()
    the_bus = open_bus(bus)
    tn = TeamNode(projection, team, open_store(url))
    tn.attach(the_bus)
    live = LiveNode(tn, sc, members=members, speed=speed, seed=seed)
    err.print(f"node {team} of {d.key} on {bus} (store {store}); initiator: {projection.initiator}")
    try:
        live.run(stop)
    finally:
        the_bus.close()
        tn.close()
        err.print(f"node {team} stopped (completed {live.completed} tasks by synthetic members)")


@app.command()
def request(
    process: Annotated[Path, typer.Argument(help="Process definition (YAML).")],
    bus: Annotated[str, typer.Option(help="Bus URL.")],
    cases: Annotated[int, typer.Option("--cases", "-n", help="How many cases to request.")] = 1,
    prefix: Annotated[str, typer.Option(help="Case ids are PREFIX-000001, ...")] = "case",
    rate: Annotated[float, typer.Option(help="Requests per second (0: all at once).")] = 0.0,
) -> None:
    """Ask the initiating team to start cases (case start is an event: no hub involved)."""
    import time

    from accord.buses import open_bus, subject_for
    from accord.events import Event, EventType
    from accord.model import load

    d = load(process)
    the_bus = open_bus(bus)
    try:
        batch: list[tuple[str, bytes, str]] = []
        for i in range(cases):
            cid = f"{prefix}-{i + 1:06d}"
            e = Event(
                id=f"{cid}#requested",
                type=EventType.CASE_REQUESTED,
                case=cid,
                process=d.key,
                at=time.time(),
                seq=0,
                actor="accord start",
                data={"data": {}},
                source="accord/start",
            )
            # every node hears a request; the initiating team acts on it
            item = (subject_for(d.key, e.type.value, "all"), orjson.dumps(e.to_cloudevent()), e.id)
            if rate > 0:
                the_bus.publish_many([item])
                time.sleep(1.0 / rate)
            else:
                batch.append(item)
        for k in range(0, len(batch), 500):
            the_bus.publish_many(batch[k : k + 500])
    finally:
        the_bus.close()
    err.print(f"requested {cases} cases of {d.key}")


@app.command()
def board(  # noqa: PLR0917 - typer maps each parameter to an option
    process: Annotated[Path, typer.Option(help="Process definition (YAML).")],
    bus: Annotated[str, typer.Option(help="Bus URL.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Keep the view as JSON in this file.")
    ] = None,
    every: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 2.0,
    until: Annotated[
        int, typer.Option(help="Exit once this many cases have ended (0: run until stopped).")
    ] = 0,
    json: Annotated[bool, typer.Option("--json", help="Print the final view as JSON.")] = False,
) -> None:
    """The status board: a passive view of every case from everyone's events."""
    import threading
    import time

    from accord.buses import open_bus
    from accord.choreo import wire
    from accord.choreo.board import StatusBoard
    from accord.model import load

    d = load(process)
    sb = StatusBoard(d)
    lock = threading.Lock()

    def hear(msg: Any) -> None:
        # one event or a node's bundle of them; malformed envelopes are skipped
        events = [e for e in wire.decode(msg.data) if not isinstance(e, ValueError)]
        with lock:
            for e in events:
                sb.observe(e)

    stop = _graceful()
    the_bus = open_bus(bus)
    the_bus.subscribe(f"accord.{d.id}.>", f"board-{d.id}", hear)

    def snapshot() -> list[dict[str, Any]]:
        with lock:
            return sb.view(time.time())

    try:
        while not stop.is_set():
            stop.wait(every)
            view = snapshot()
            if out_file is not None:
                out_file.write_bytes(orjson.dumps({"cases": view}))
            counts: dict[str, int] = {}
            for c in view:
                counts[c["status"]] = counts.get(c["status"], 0) + 1
            if not json:
                silent = sum(1 for c in view if c["silent"])
                err.print(f"board: {counts} silent={silent}", highlight=False)
            ended = counts.get("completed", 0) + counts.get("cancelled", 0)
            if until and ended >= until:
                break
    finally:
        the_bus.close()
    view = snapshot()
    if out_file is not None:
        out_file.write_bytes(orjson.dumps({"cases": view}))
    if json:
        sys.stdout.write(orjson.dumps({"cases": view}, option=orjson.OPT_INDENT_2).decode() + "\n")
