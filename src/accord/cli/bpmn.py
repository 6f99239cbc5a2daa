"""BPMN commands: import, export, bpmn-check (see docs/bpmn.md)."""

from __future__ import annotations

import json as jsonlib
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from accord.cli.app import app, err, fail, out
from accord.errors import DefinitionError


def _problems(exc: DefinitionError) -> None:
    for p in exc.problems:
        err.print(str(p), highlight=False, soft_wrap=True, markup=False)
    raise typer.Exit(1)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="BPMN 2.0 file (.bpmn, .bpmn20.xml).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="YAML file to write (default: stdout).")
    ] = None,
    process: Annotated[
        str | None,
        typer.Option(help="Which process (or pool) to import, when the file holds several."),
    ] = None,
) -> None:
    """Import a BPMN model as an accord process definition (YAML), or say precisely why not."""
    from accord.bpmn.importer import import_bpmn, to_yaml

    try:
        imported = import_bpmn(file, process=process)
    except DefinitionError as exc:
        _problems(exc)
        return
    for note in imported.notes:
        err.print(f"note: {note}", highlight=False, soft_wrap=True, markup=False)
    text = to_yaml(imported, str(file))
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text, encoding="utf-8")
    d = imported.definition
    err.print(
        f"{file} -> {output}: {d.key}: {len(d.steps)} steps, {len(d.teams)} teams",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


@app.command("export")
def export(
    file: Annotated[Path, typer.Argument(help="Process definition (YAML or BPMN).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="BPMN file to write (default: stdout).")
    ] = None,
) -> None:
    """Export a process as BPMN 2.0 XML with a diagram (one lane per team)."""
    from accord.bpmn.exporter import export_bpmn
    from accord.model import load

    try:
        d = load(file)
    except DefinitionError as exc:
        _problems(exc)
        return
    data = export_bpmn(d)
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    output.write_bytes(data)
    err.print(f"{file} -> {output}: {d.key}", highlight=False, markup=False, soft_wrap=True)


@app.command("bpmn-check")
def bpmn_check(
    path: Annotated[Path, typer.Argument(help="A folder of BPMN files (searched recursively).")],
    cases: Annotated[int, typer.Option("--cases", "-n", help="Cases to simulate per file.")] = 3,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    budget: Annotated[
        float, typer.Option(help="Seconds of wall time a file's simulation may take.")
    ] = 10.0,
    json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """For every BPMN file: imported / ran / refused (with the reason); coverage by element."""
    from accord.bpmn.check import check

    if not path.exists():
        fail(f"{path}: no such file or folder", 2)
    if cases < 1:
        fail("--cases must be at least 1", 2)
    report = check(path, cases=cases, seed=seed, budget_s=budget)
    if json:
        out.print_json(jsonlib.dumps(report.to_json()))
        return
    files = Table(title=f"BPMN files under {path}", title_justify="left")
    files.add_column("file", overflow="fold")
    files.add_column("result")
    files.add_column("why", overflow="fold")
    style = {"ran": "green", "imported": "yellow", "refused": "red"}
    for f in report.files:
        result = f"[{style[f.status]}]{f.status}[/]"
        files.add_row(f.path, result, f.reason.replace("[", "\\["))
    out.print(files)
    coverage = Table(title="Coverage by element type", title_justify="left")
    for col in ("element", "files", "supported", "refused", "ignored", "status"):
        coverage.add_column(col, justify="right" if col in ("files",) else "left")
    coverage.add_column("why not", overflow="fold")
    for row in report.coverage():
        coverage.add_row(
            row.kind.replace("[", "\\["),
            str(row.files),
            str(row.supported or ""),
            str(row.refused or ""),
            str(row.ignored or ""),
            row.status,
            row.reason.replace("[", "\\["),
        )
    out.print(coverage)
    counts = report.counts()
    out.print(
        f"{len(report.files)} files: {counts.get('ran', 0)} ran, "
        f"{counts.get('imported', 0)} imported (did not run to the end), "
        f"{counts.get('refused', 0)} refused",
        highlight=False,
    )
