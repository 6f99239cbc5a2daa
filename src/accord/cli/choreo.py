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
        results = run_compare(
            file,
            wanted,
            cases,
            seed=seed,
            scenario=scenario,
            progress=(lambda m, d, t: None) if json else _progress_printer(),
        )
        swept = None
        if rates:
            values = [float(r) for r in rates.split(",") if r.strip()]
            swept = sweep(file, values, cases, seed=seed, scenario=scenario)
    except DefinitionError as exc:
        for problem in exc.problems:
            err.print(str(problem), highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except ValueError as exc:
        fail(f"--rates takes numbers: {exc}", 2)
        return
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
