"""Audit speed: importing a large XES log and computing case durations and the performance DFG,
accord against pm4py on the same file in the same run.

Run from the repository root::

    .venv/bin/python bench/audit.py                  # 1,000,000 events (about 2 minutes)
    .venv/bin/python bench/audit.py --events 100000  # a quick run
    .venv/bin/python bench/audit.py --json out.json  # also write the results as JSON

The log is made by accord itself: a seeded walk through ``examples/client-onboarding.yaml``
(sales request, compliance review that sends one case in ten back for rework and rejects one in
twenty, IT accounts and account management in parallel, kickoff), written by accord's own XES
writer (``accord.analytics.xes.write_xes``): a ``start`` and a ``complete`` event per task, with
resource and team. The file is cached in the temp directory, keyed by size and seed.

Each side runs in its own fresh process, so imports, caches and peak memory (``ru_maxrss``) are
its own; with ``--repeat N`` the sides run N times, interleaved, and the best run of each
counts. The time is end to end: from the file name to case durations and the performance DFG
in memory (interpreter and library start-up are reported apart). Both sides' results are
compared edge by edge before any number is printed: a faster wrong answer does not count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROCESS = ROOT / "examples" / "client-onboarding.yaml"
T0 = 1_700_000_000.0


def generate(path: Path, events: int, seed: int) -> int:
    """Write an XES log of about ``events`` events with accord's XES writer."""
    from accord.analytics.xes import write_xes
    from accord.events import Event, EventType
    from accord.model import load

    d = load(PROCESS)
    rng = random.Random(seed)
    members = {t: [m.id for m in team.members] for t, team in d.teams.items()}
    names = {sid: s.name for sid, s in d.steps.items()}

    def task(case: str, seq: int, visits: dict[str, int], step: str, begin: float) -> list[Event]:
        team = d.steps[step].team or ""
        visits[step] = visits.get(step, 0) + 1
        tid = f"{case}:{step}:{visits[step]}"
        who = rng.choice(members[team])
        start = begin + rng.expovariate(1 / 3600.0)
        end = start + rng.expovariate(1 / 1800.0)
        return [
            Event(f"{case}#{seq + 1}", EventType.TASK_CLAIMED, case, d.key, start, seq + 1,
                  step, team, who, tid, {"assignee": who}),
            Event(f"{case}#{seq + 2}", EventType.TASK_COMPLETED, case, d.key, end, seq + 2,
                  step, team, who, tid, {}),
        ]  # fmt: skip

    def cases() -> Iterator[Event]:
        n = 0
        c = 0
        while n < events:
            c += 1
            case = f"case-{c:07d}"
            at = T0 + c * 600.0 + rng.uniform(0, 300)
            visits: dict[str, int] = {}
            out: list[Event] = []
            while True:
                out += task(case, len(out), visits, "request", at)
                out += task(case, len(out), visits, "review", out[-1].at)
                at = out[-1].at
                r = rng.random()
                if r >= 0.10:
                    break  # below 0.10: rework, back to sales
            if r >= 0.15:  # approved (5% are rejected and end here)
                a = task(case, len(out), visits, "accounts", at)
                m = task(case, len(out) + 2, visits, "assign-manager", at)
                both = sorted(a + m, key=lambda e: e.at)
                out += both
                out += task(case, len(out), visits, "kickoff", max(a[-1].at, m[-1].at))
            n += len(out)
            yield from out

    with open(path, "w", encoding="utf-8") as f:
        return write_xes(cases(), f, names)


def run_ours(path: str) -> dict[str, Any]:
    """accord: read the log, case durations, performance DFG."""
    t = time.perf_counter()
    from accord.analytics import discovery
    from accord.analytics.logs import read_log

    t_import = time.perf_counter() - t
    t = time.perf_counter()
    log = read_log(path)
    t_read = time.perf_counter() - t
    case_table = discovery.cases(log)
    dfg = discovery.directly_follows(log)
    total = time.perf_counter() - t
    return {
        "import_s": t_import,
        "read_s": t_read,
        "total_s": total,
        "events": log.events,
        "cases": case_table.height,
        "mean_case_s": float(case_table["duration_s"].mean()),  # type: ignore[arg-type]
        "dfg": {f"{a}>{b}": [int(n), float(m)] for a, b, n, m in
                dfg.select("from", "to", "count", "mean_s").iter_rows()},
    }  # fmt: skip


def run_pm4py(path: str) -> dict[str, Any]:
    """pm4py: read_xes, get_all_case_durations, discover_performance_dfg (+ frequencies)."""
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("TQDM_DISABLE", "1")
    t = time.perf_counter()
    import pm4py

    t_import = time.perf_counter() - t
    t = time.perf_counter()
    df = pm4py.read_xes(path)
    t_read = time.perf_counter() - t
    durations = pm4py.get_all_case_durations(df)
    perf, _, _ = pm4py.discover_performance_dfg(df)
    freq, _, _ = pm4py.discover_dfg(df)
    total = time.perf_counter() - t
    return {
        "import_s": t_import,
        "read_s": t_read,
        "total_s": total,
        "events": len(df),
        "cases": len(durations),
        "mean_case_s": sum(durations) / len(durations),
        "dfg": {f"{a}>{b}": [int(freq[(a, b)]), float(v["mean"])] for (a, b), v in perf.items()},
    }


def child(side: str, path: str) -> None:
    """Run one side in this process and print its result as JSON on the last line."""
    result = run_ours(path) if side == "ours" else run_pm4py(path)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    sys.stdout.write("\n" + json.dumps(result) + "\n")


def measure(side: str, path: Path) -> dict[str, Any]:
    """Run a side in a fresh interpreter; return its JSON result."""
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONWARNINGS": "ignore"}
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", side, "--file", str(path)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{side} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = wall
    return result


def agree(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """Differences between the two sides' answers (empty: the same answer)."""
    problems = []
    for key in ("events", "cases"):
        if ours[key] != theirs[key]:
            problems.append(f"{key}: {ours[key]} vs {theirs[key]}")
    if abs(ours["mean_case_s"] - theirs["mean_case_s"]) > 1e-6 * max(theirs["mean_case_s"], 1):
        problems.append(f"mean case duration: {ours['mean_case_s']} vs {theirs['mean_case_s']}")
    if set(ours["dfg"]) != set(theirs["dfg"]):
        problems.append(f"DFG edges differ: {sorted(set(ours['dfg']) ^ set(theirs['dfg']))[:5]}")
    for edge, (n, mean) in theirs["dfg"].items():
        mine = ours["dfg"].get(edge)
        if mine and (mine[0] != n or abs(mine[1] - mean) > 1e-6 * max(abs(mean), 1)):
            problems.append(f"{edge}: {mine} vs {[n, mean]}")
    return problems


def main() -> None:
    """Generate (or reuse) the log, run both sides, check they agree, print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--file", help="use this XES file instead of generating one")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--skip-pm4py", action="store_true", help="time accord only")
    ap.add_argument("--repeat", type=int, default=1, help="runs per side; the best counts")
    ap.add_argument("--child", choices=["ours", "pm4py"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.file)
        return
    if args.file:
        path = Path(args.file)
    else:
        path = Path(tempfile.gettempdir()) / f"accord-bench-audit-{args.events}-{args.seed}.xes"
        if not path.exists():
            t = time.perf_counter()
            part = path.with_suffix(".part")
            n = generate(part, args.events, args.seed)
            part.rename(path)
            print(f"generated {n:,} events in {time.perf_counter() - t:.1f}s: {path}")
    size_mb = path.stat().st_size / 1e6
    print(f"log: {path} ({size_mb:,.0f} MB)")
    ours: dict[str, Any] = {}
    theirs: dict[str, Any] | None = None
    for _ in range(max(args.repeat, 1)):  # interleaved, so a busy moment hurts both sides
        run = measure("ours", path)
        if not ours or run["total_s"] < ours["total_s"]:
            ours = run
        if not args.skip_pm4py:
            run = measure("pm4py", path)
            if theirs is None or run["total_s"] < theirs["total_s"]:
                theirs = run
    rows = [("accord", ours)] + ([("pm4py", theirs)] if theirs else [])
    print(f"\n{'':8} {'events':>10} {'read s':>8} {'total s':>8} {'events/s':>10} "
          f"{'peak MB':>8} {'startup s':>9}")  # fmt: skip
    for name, r in rows:
        print(f"{name:8} {r['events']:>10,} {r['read_s']:>8.2f} {r['total_s']:>8.2f} "
              f"{r['events'] / r['total_s']:>10,.0f} {r['peak_rss_mb']:>8.0f} "
              f"{r['import_s']:>9.2f}")  # fmt: skip
    result: dict[str, Any] = {
        "file": str(path),
        "file_mb": size_mb,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "polars": pkg_version("polars")},
        "accord": {k: v for k, v in ours.items() if k != "dfg"},
    }  # fmt: skip
    if theirs:
        problems = agree(ours, theirs)
        if problems:
            raise SystemExit("the answers differ:\n  " + "\n  ".join(problems[:20]))
        ratio = theirs["total_s"] / ours["total_s"]
        print(f"\nsame answer on both sides ({len(ours['dfg'])} DFG edges, "
              f"{ours['cases']:,} cases); accord is {ratio:.1f}x pm4py "
              f"{pkg_version('pm4py')} end to end")  # fmt: skip
        result["pm4py"] = {k: v for k, v in theirs.items() if k != "dfg"}
        result["pm4py_version"] = pkg_version("pm4py")
        result["ratio"] = ratio
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
