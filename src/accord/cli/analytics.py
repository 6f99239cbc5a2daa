"""Analytics commands: audit (an existing process from its log), diff (two logs), advise."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from accord.cli.app import app, err, fail, out

CaseOpt = Annotated[str | None, typer.Option("--case", help="Case id column / XES key.")]
ActivityOpt = Annotated[str | None, typer.Option("--activity", help="Activity column / key.")]
TimeOpt = Annotated[str | None, typer.Option("--time", help="Timestamp column / key.")]
StartOpt = Annotated[str | None, typer.Option("--start", help="Start timestamp column / key.")]
ResourceOpt = Annotated[str | None, typer.Option("--resource", help="Resource column / key.")]
TeamOpt = Annotated[str | None, typer.Option("--team", help="Team (group) column / key.")]
LifecycleOpt = Annotated[
    str | None, typer.Option("--lifecycle", help="Lifecycle transition column / key.")
]


def _print_json(doc: Any) -> None:
    sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")


def _load(path: Path, **columns: str | None) -> Any:
    from accord.analytics.csv_read import Columns
    from accord.analytics.logs import read_log

    log = read_log(path, Columns(**columns))
    for w in log.warnings():
        if not w.startswith("columns:"):
            err.print(f"[yellow]warning:[/yellow] {path}: {w}", highlight=False, soft_wrap=True)
    return log


@app.command()
def audit(  # noqa: PLR0917 - typer maps each parameter to an option
    log: Annotated[
        Path,
        typer.Argument(
            help="Event log: XES (.xes, .xes.gz), CSV, accord "
            "events (JSON lines) or an accord store (.db)."
        ),
    ],
    case: CaseOpt = None,
    activity: ActivityOpt = None,
    time: TimeOpt = None,
    start: StartOpt = None,
    resource: ResourceOpt = None,
    team: TeamOpt = None,
    lifecycle: LifecycleOpt = None,
    json: Annotated[
        bool, typer.Option("--json", help="Print the audit as one JSON object.")
    ] = False,
    html: Annotated[Path | None, typer.Option("--html", help="Write an HTML report here.")] = None,
) -> None:
    """Audit an existing process from its event log: flow, variants, bottlenecks, rework,
    duplicated effort, silos, handoffs and the signs that it is time to change."""
    from accord.analytics.audit import audit as run_audit

    data = _load(
        log,
        case=case,
        activity=activity,
        time=time,
        start=start,
        resource=resource,
        team=team,
        lifecycle=lifecycle,
    )
    report = run_audit(data)
    if html is not None:
        from accord.analytics.report import write_report

        try:
            write_report(report, html)
        except OSError as exc:
            fail(f"cannot write {html}: {exc.strerror or exc}")
        err.print(f"wrote {html}")
    if json:
        _print_json(report)
    elif html is None:
        _print_audit(report)


def _print_audit(r: dict[str, Any]) -> None:
    from accord.analytics.trends import human_seconds as hs

    cd = r["case_duration_s"]
    head = Table(title=f"audit of {r['source']}", show_header=False, title_justify="left")
    head.add_column(style="bold")
    head.add_column()
    for k, v in (
        ("cases / events", f"{r['cases']} / {r['events']}"),
        ("activities / variants", f"{r['activities']} / {r['variants']}"),
        ("resources / teams", f"{r['resources']} / {r['teams']}"),
        (
            "case duration mean / median / p95 / max",
            f"{hs(cd['mean'])} / {hs(cd['median'])} / {hs(cd['p95'])} / {hs(cd['max'])}",
        ),
        ("rework", f"{r['rework']['rate']:.1%} of cases"),
        ("duplicated effort", f"{r['duplication']['rate']:.1%} of cases"),
        ("handoffs per case", f"{r['handoffs']['per_case']:.2f}"),
    ):
        head.add_row(k, v)
    out.print(head)
    b = Table(title="bottlenecks (where waiting accumulates)", title_justify="left")
    for col in ("#", "activity", "items", "wait total", "wait median", "wait p95", "share"):
        b.add_column(col, justify="left" if col == "activity" else "right")
    for x in r["bottlenecks"]:
        b.add_row(
            str(x["rank"]),
            x["activity"],
            str(x["items"]),
            hs(x["wait_total_s"]),
            hs(x["wait_median_s"]),
            hs(x["wait_p95_s"]),
            f"{x['share']:.0%}",
        )
    out.print(b)
    if r["signs"]:
        out.print("[bold]signs it is time to change[/bold]")
        for s in r["signs"]:
            out.print(f"  - {s['sign']}: {s['evidence']}", highlight=False)
    else:
        out.print("no sign that it is time to change")
