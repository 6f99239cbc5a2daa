"""The audit as a self-contained HTML page: charts first, tables after, nothing fetched.

One file (inline CSS and SVG) that opens offline in any browser and can be mailed around.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from accord.analytics import dfg_svg, svg
from accord.analytics.trends import human_seconds as hs

CSS = """
body{font-family:system-ui,sans-serif;color:#1f2933;margin:0;background:#f5f7fa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px}
.sub{color:#7b8794;margin:0 0 16px;font-size:13px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px}
.card{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px #0001}
.card b{display:block;font-size:22px} .card span{color:#7b8794;font-size:12px}
.panel{background:#fff;border-radius:8px;padding:14px;box-shadow:0 1px 2px #0001;margin:8px 0}
.chart{width:100%;height:auto} .dfg{max-height:none}
.sign{border-left:4px solid #d9534f;background:#fff;padding:8px 12px;margin:6px 0;border-radius:4px}
.ok{border-left-color:#5cb85c}
table{border-collapse:collapse;width:100%;font-size:13px;background:#fff}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e4e7eb}
th{color:#52606d;font-weight:600} td.n{text-align:right;font-variant-numeric:tabular-nums}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:12px}
@media (max-width:800px){.grid2{grid-template-columns:1fr}}
.warn{color:#8a6d3b;font-size:13px}
"""


def _day(t: float, period: str | None) -> str:
    d = datetime.fromtimestamp(t, UTC)
    if period == "hour":
        return d.strftime("%m-%d %H:00")
    if period in ("month", "year"):
        return d.strftime("%Y-%m")
    return d.strftime("%Y-%m-%d")


def _table(headers: list[str], rows: list[list[Any]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{escape(str(c))}</td>' if i in numeric else f"<td>{escape(str(c))}</td>"
            for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(r: dict[str, Any]) -> str:
    """The HTML page of an audit report (the dict :func:`accord.analytics.audit.audit` returns)."""
    cd = r["case_duration_s"]
    cards = [
        (f"{r['cases']:,}", "cases"),
        (f"{r['events']:,}", "events"),
        (str(r["activities"]), "activities"),
        (str(r["variants"]), "variants"),
        (hs(cd["median"]), "median case duration"),
        (hs(cd["p95"]), "95th percentile"),
        (f"{r['rework']['rate']:.1%}", "cases with rework"),
        (f"{r['duplication']['rate']:.1%}", "cases with duplicated work"),
        (f"{r['handoffs']['per_case']:.2f}", "handoffs per case"),
    ]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>Audit: {escape(Path(r['source']).name)}</title><style>{CSS}</style></head>",
        "<body><main>",
        f"<h1>Process audit: {escape(Path(r['source']).name)}</h1>",
        f"<p class='sub'>{escape(r['source'])} · {escape(r['format'])} · "
        f"{_day(r['period']['first'], 'day')} to {_day(r['period']['last'], 'day')}</p>",
        "<div class='cards'>",
        *(f"<div class='card'><b>{escape(v)}</b><span>{escape(k)}</span></div>" for v, k in cards),
        "</div>",
        "<h2>Signs it is time to change</h2>",
    ]
    if r["signs"]:
        parts += [
            f"<div class='sign'><b>{escape(s['sign'])}</b>: {escape(s['evidence'])}</div>"
            for s in r["signs"]
        ]
    else:
        parts.append(
            "<div class='sign ok'>None found: no measure got clearly worse over the log.</div>"
        )
    hist = r["case_duration_histogram"]
    tl = r["timeline"]
    labels = [_day(p["start"], tl.get("period")) for p in tl["points"]]
    parts += [
        "<div class='grid2'>",
        "<div><h2>Case duration</h2><div class='panel'>",
        svg.histogram(hist["edges"], hist["counts"], hs, "Distribution of case durations"),
        f"<p class='sub'>mean {hs(cd['mean'])}, median {hs(cd['median'])}, "
        f"p95 {hs(cd['p95'])}, max {hs(cd['max'])}; the last bar holds the slowest 1%.</p>",
        "</div></div>",
        f"<div><h2>Throughput per {escape(tl.get('period') or 'period')}</h2><div class='panel'>",
        svg.timeline(
            labels,
            [p["completed"] for p in tl["points"]],
            [p["wip_end"] for p in tl["points"]],
            "Cases completed and open per period",
        ),
        "</div></div></div>",
        "<h2>Process map</h2><div class='panel'>",
        "<p class='sub'>Arrows: how often one activity directly followed another, and the mean "
        "time between them (grey fast, red slow). Arcs on the right close loops.</p>",
        dfg_svg.draw(r, hs),
        "</div>",
        "<h2>Bottlenecks: where waiting accumulates</h2><div class='panel'>",
        svg.hbars(
            [
                (b["activity"], float(b["wait_total_s"] or 0.0),
                 f"{hs(b['wait_total_s'])} total, median {hs(b['wait_median_s'])} "
                 f"({b['share']:.0%})")
                for b in r["bottlenecks"]
            ],
            "Total waiting time before each activity",
        ),
        "</div>",
    ]  # fmt: skip
    parts += _tables(r)
    if r.get("run"):
        parts += _run(r["run"])
    if r["warnings"]:
        parts.append("<h2>How the log was read</h2>")
        parts += [f"<p class='warn'>{escape(w)}</p>" for w in r["warnings"]]
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _tables(r: dict[str, Any]) -> list[str]:
    out = ["<h2>Variants</h2>"]
    out.append(
        _table(
            ["#", "cases", "share", "mean duration", "activities"],
            [
                [i, v["count"], f"{v['share']:.1%}", hs(v["mean_duration_s"]),
                 " → ".join(v["activities"])]
                for i, v in enumerate(r["top_variants"][:10], 1)
            ],
            {0, 1, 2, 3},
        )
    )  # fmt: skip
    rw = r["rework"]
    out.append(f"<h2>Rework ({rw['rate']:.1%} of cases)</h2><div class='grid2'>")
    out.append(
        _table(
            ["activity", "cases redoing it", "rate", "extra runs"],
            [[a["activity"], a["rework_cases"], f"{a['rate']:.1%}", a["extra_runs"]]
             for a in rw["activities"]],
            {1, 2, 3},
        )
    )  # fmt: skip
    out.append(
        _table(["loop", "cases"], [[" → ".join(x["loop"]), x["cases"]] for x in rw["loops"]], {1})
    )
    out.append("</div>")
    dup = r["duplication"]
    out.append(f"<h2>Duplicated effort ({dup['rate']:.1%} of cases)</h2>")
    out.append(
        _table(
            ["activity", "cases where different teams did it"],
            [[a["activity"], a["cases"]] for a in dup["activities"]],
            {1},
        )
    )
    out.append("<h2>Silos</h2>")
    if r["silos"]:
        out += [f"<div class='sign'>{escape(s['evidence'])}</div>" for s in r["silos"]]
    else:
        out.append("<div class='sign ok'>No team pair stands out.</div>")
    ho = r["handoffs"]
    out.append(
        f"<h2>Handover of work (by {escape(ho['by'])}; {ho['count']} handoffs, "
        f"median latency {hs(ho['latency_s']['median'])})</h2>"
    )
    out.append(
        _table(
            ["from", "to", "handoffs", "median latency", "p95 latency"],
            [[h["from"], h["to"], h["count"], hs(h["median_s"]), hs(h["p95_s"])]
             for h in r["handover_network"][:20]],
            {2, 3, 4},
        )
    )  # fmt: skip
    return out


def _run(m: dict[str, Any]) -> list[str]:
    """The run measures of an accord log: teams, handoffs, hub, coordination, satisfaction."""
    h, hub, co = m["handoffs"], m["hub"], m["coordination_per_case"]
    out = [
        "<h2 id='run'>Run measures (accord log)</h2>",
        f"<p class='sub'>handoff error rate {(h.get('error_rate') or 0):.1%} "
        f"({h.get('errors', 0)} of {h['count']}: sent back, bounced or reassigned) · "
        f"hub: {hub['events']} events, peak {hub['per_hour_peak']}/hour, "
        f"{hub['tasks_on_hub']} tasks on the hub, {hub['tasks_local']} local · "
        f"coordination messages per case: median {co['median']}, p95 {co['p95']} · "
        f"SLA breaches {m['sla_breaches']} · mean WIP {m['wip_mean']:.1f} cases</p>",
    ]
    out.append(
        _table(
            ["team", "tasks", "members", "wait p50", "wait p95", "work p50", "occupancy",
             "queue mean", "queue peak"],
            [[t, v["tasks"], v["members"] or "-", hs(v["wait_s_p50"]), hs(v["wait_s_p95"]),
              hs(v["work_s_p50"]), f"{v['utilisation']:.0%}", f"{v['queue_mean']:.1f}",
              v["queue_peak"]] for t, v in m["teams"].items()],
            {1, 2, 3, 4, 5, 6, 7, 8},
        )
    )  # fmt: skip
    sat = m.get("satisfaction")
    if sat:
        out.append(
            f"<h2>Team satisfaction ({sat['ratings']} ratings, mean {sat['mean']:.2f} / 5)</h2>"
        )
        out.append(
            _table(
                ["team", "ratings", "mean"],
                [[t, v["ratings"], f"{v['mean']:.2f}"] for t, v in sat["by_team"].items()],
                {1, 2},
            )
        )
    return out


def write_report(report: dict[str, Any], path: str | Path) -> None:
    """Write the HTML page of ``report`` to ``path``."""
    Path(path).write_text(render(report), encoding="utf-8")
