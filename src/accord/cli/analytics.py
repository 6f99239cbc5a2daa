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
    from accord.analytics.logs import accord_events

    own = accord_events(log)
    if own is not None:  # accord's own log: the run measures too (wait/work, hub, feedback)
        from accord.analytics.audit import clean
        from accord.analytics.measures import measure

        report["run"] = clean(measure(own))
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


@app.command()
def diff(  # noqa: PLR0917 - typer maps each parameter to an option
    log_a: Annotated[Path, typer.Argument(help="The 'before' log (or mode A).")],
    log_b: Annotated[Path, typer.Argument(help="The 'after' log (or mode B).")],
    case: CaseOpt = None,
    activity: ActivityOpt = None,
    time: TimeOpt = None,
    resource: ResourceOpt = None,
    team: TeamOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap resampling.")] = 0,
    json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Compare two event logs on the same measures: effect sizes, 95% intervals, and which
    differences are significant (Mann-Whitney U / Fisher, Holm-adjusted)."""
    from accord.analytics.audit import clean
    from accord.analytics.compare import compare

    columns = {"case": case, "activity": activity, "time": time, "resource": resource,
               "team": team}  # fmt: skip
    a = _load(log_a, **columns)
    b = _load(log_b, **columns)
    result = clean(compare(a, b, seed=seed))
    if json:
        _print_json(result)
        return
    from accord.analytics.trends import human_seconds as hs

    def show(metric: str, v: float | None) -> str:
        if v is None:
            return "-"
        return hs(v) if metric.endswith("_s") else f"{v:.3g}"

    t = Table(title=f"B: {log_b}  against  A: {log_a}", title_justify="left")
    for col in ("measure", "A", "B", "B - A", "95% CI", "effect", "p (Holm)", ""):
        t.add_column(col, justify="left" if col in ("measure", "") else "right")
    for r in result["metrics"]:
        m = r["metric"]
        if r["kind"] == "rate":
            va, vb = f"{r['a']['rate']:.1%}", f"{r['b']['rate']:.1%}"
            d, ci = f"{r['difference']:+.1%}", f"{r['ci95'][0]:+.1%} .. {r['ci95'][1]:+.1%}"
        else:
            va, vb = show(m, r["a"]["median"]), show(m, r["b"]["median"])
            sign = "-" if r["difference"] < 0 else "+"
            d = sign + show(m, abs(r["difference"]))
            ci = f"{show(m, r['ci95'][0])} .. {show(m, r['ci95'][1])}"
        verdict = (f"[bold]{'better' if r['better'] == 'b' else 'worse'} in B[/bold]"
                   if r["significant"] else "no clear difference")  # fmt: skip
        t.add_row(r["label"], va, vb, d, ci, f"{r['effect_size']:+.2f} {r['magnitude']}",
                  f"{r['p_adjusted']:.2g}", verdict)  # fmt: skip
    out.print(t)
    out.print("medians for durations and counts; Cliff's delta or risk difference as effect size")


@app.command()
def advise(
    file: Annotated[Path, typer.Argument(help="Process definition (YAML).")],
    log: Annotated[
        Path | None, typer.Option("--log", help="Event log of the process (any audit format).")
    ] = None,
    answers: Annotated[
        Path | None,
        typer.Option("--answers", help="YAML answers to the checklist (stable: yes, size: 40)."),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the advice as JSON.")] = False,
) -> None:
    """Central, choreographed or hybrid? The decision checklist answered from the definition,
    the log and your answers, a place for every step, and the risks with their mitigations."""
    from accord.advisor import advise as run_advice
    from accord.analytics.audit import clean
    from accord.errors import DefinitionError

    try:
        advice = clean(run_advice(file, log=log, answers=answers))
    except DefinitionError as exc:
        for p in exc.problems:
            err.print(str(p), highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if json:
        _print_json(advice)
        return
    rec = advice["recommendation"]
    out.print(f"[bold]{advice['process']}: run it {rec['model']}[/bold] "
              f"(central {rec['score']['central']} : {rec['score']['choreo']} choreo)")  # fmt: skip
    t = Table(title="checklist", title_justify="left")
    for col in ("question", "answer", "from", "favours", "evidence"):
        t.add_column(col)
    for it in advice["checklist"]:
        ans = {True: "yes", False: "no", None: "?"}.get(it["answer"], str(it["answer"]))
        t.add_row(it["question"], ans, it["source"], it["favours"] or "-",
                  "; ".join(it["evidence"]))  # fmt: skip
    out.print(t)
    s = Table(title="steps", title_justify="left")
    for col in ("step", "team", "runs on", "why"):
        s.add_column(col)
    for st in advice["steps"]:
        s.add_row(st["step"], st["team"] or "-", st["placement"], "; ".join(st["reasons"]))
    out.print(s)
    out.print("[bold]risks[/bold]")
    for r in advice["risks"]:
        out.print(f"  - {r['risk']} ({r['evidence']}): {r['mitigation']}", highlight=False)
    if advice["unanswered"]:
        out.print(f"unanswered: {', '.join(advice['unanswered'])} "
                  "(answer them with --answers FILE)")  # fmt: skip
