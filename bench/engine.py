"""Durable step-transition throughput: accord's central engine against its peers, in one run.

Run from the repository root::

    .venv/bin/python bench/engine.py                 # full run, < 3 minutes on 2 cores
    .venv/bin/python bench/engine.py --quick         # smoke run, < 40 s
    .venv/bin/python bench/engine.py --json out.json # also write every result as JSON

Workloads (the same shape on every engine, see ``bench/peers.py``):

* ``sequential``: 10 automated no-op steps in a row (10 transitions per case);
* ``parallel``: a parallel split into 5 automated no-op steps and a parallel join
  (5 transitions per case).

A transition is one completed activity. "Durable" means committed before the transition is
acknowledged, i.e. before the case moves on. Everything is measured twice, once with SQLite
``synchronous=NORMAL`` (WAL: survives a process crash) and once with ``synchronous=FULL`` (WAL +
fsync per commit: survives power loss), and every row states the guarantee it carries. DBOS sets
no ``synchronous`` pragma, so it always runs at the SQLite build default (FULL here); it is
measured once per journal mode and shown in both tables.

accord is driven the way the hub drives it: cases are started in waves (each ``start_case`` is
its own committed transaction), then ``Engine.run_jobs`` runs the queued handlers in rounds of up
to 512 and commits each round's results in one transaction before the next round starts (group
commit across cases; every transition is committed before its case moves on). The
``1 case at a time`` rows run one case to completion before starting the next (sequential: one
commit per transition; parallel: the 5 branches of the case share a round): the same driving
shape as the SpiffWorkflow and DBOS drivers.

Every throughput measurement runs twice (``--repeat``), interleaved, and the best pass is kept;
passes after the first are skipped once the run's time budget is spent. Memory is measured
separately with tracemalloc on (it slows the engine, so those runs are not timed for the tables).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import importlib.util
import io
import json
import os
import platform
import pstats
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

# bench/ is not a package (see peers.py); the line above makes this import work from anywhere.
from peers import (
    STEPS_PER_CASE,
    WORKLOADS,
    _fresh_db,
    _result,
    _wal_guarantee,
    dbos_run,
    spiff_run,
    sqlite_commit_rate,
)

SYNC_SETTINGS = ("NORMAL", "FULL")
TARGET_TPS = 5_000
TARGET_VS_SPIFF = 3.0
TARGET_VS_DBOS = 10.0
MAX_BATCH = 512


# --------------------------------------------------------------------------------------------
# accord's side
# --------------------------------------------------------------------------------------------


def process_yaml(workload: str) -> str:
    """The workload as an accord process definition (YAML)."""
    lines = [f"process: bench-{workload}", "teams: {t: {}}", "steps:"]

    def automated(step: str, nxt: str) -> None:
        lines.extend(
            [
                f"  - id: {step}",
                "    type: automated",
                "    team: t",
                "    handler: 'bench:noop'",
                f"    next: {nxt}",
            ]
        )

    if workload == "sequential":
        n = STEPS_PER_CASE["sequential"]
        for i in range(n):
            automated(f"s{i}", f"s{i + 1}" if i + 1 < n else "done")
    elif workload == "parallel":
        branches = [f"b{i}" for i in range(STEPS_PER_CASE["parallel"])]
        lines.extend(["  - id: split", "    type: parallel", f"    next: [{', '.join(branches)}]"])
        for b in branches:
            automated(b, "join")
        lines.extend(["  - id: join", "    type: parallel", "    next: done"])
    else:
        raise ValueError(f"unknown workload {workload!r}")
    lines.extend(["  - id: done", "    type: end"])
    return "\n".join(lines) + "\n"


def _rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except OSError:  # pragma: no cover - not Linux
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _slope_per_1000(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of (completed cases, value), per 1000 cases."""
    if len(points) < 2:
        return float("nan")
    xs = [float(x) for x, _ in points]
    ys = [y for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    if den == 0:
        return float("nan")
    return 1000 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


def accord_run(
    workload: str,
    n_cases: int,
    db_path: str | os.PathLike[str],
    synchronous: str = "NORMAL",
    *,
    wave: int = 1000,
    trace: bool = False,
    max_batch: int = MAX_BATCH,
    profile: cProfile.Profile | None = None,
) -> dict[str, Any]:
    """Run ``n_cases`` cases of ``workload`` on accord's central engine over SQLite.

    Cases are started ``wave`` at a time (``wave <= 0``: all at once), then ``run_jobs`` drains
    the handler queue; so at most ``wave`` cases are open at once. The timed region covers the
    starts and the jobs, not opening the engine or the checks afterwards. After every wave the
    current RSS (and with ``trace``, tracemalloc's current size) is sampled against the number
    of completed cases.
    """
    from accord.central.engine import Engine
    from accord.events import EventType
    from accord.handlers import HandlerRegistry
    from accord.model import loads
    from accord.stores import open_store

    per_case = STEPS_PER_CASE[workload]
    definition = loads(process_yaml(workload), f"<bench-{workload}>")
    registry = HandlerRegistry()
    registry.register("bench:noop", lambda ctx: {})
    p = _fresh_db(db_path)
    engine = Engine(open_store(f"sqlite:///{p}?synchronous={synchronous}"), [definition],
                    handlers=registry)  # fmt: skip
    wave = n_cases if wave <= 0 else wave
    # Count the commits run_jobs makes (one per round; each start_case makes one more).
    rounds = 0
    apply_results = engine.apply_results

    def counted(results: Any) -> None:
        nonlocal rounds
        rounds += 1
        apply_results(results)

    engine.apply_results = counted  # type: ignore[method-assign]
    samples: list[tuple[int, float, float | None]] = []
    try:
        gc.collect()
        if trace:
            tracemalloc.start()
            tracemalloc.reset_peak()
        rss0 = _rss_mb()
        started = 0
        if profile is not None:
            profile.enable()
        t0 = time.perf_counter()
        while started < n_cases:
            upto = min(n_cases, started + wave)
            for i in range(started, upto):
                engine.start_case(definition.id, case_id=f"c{i}")
            started = upto
            engine.run_jobs(max_batch=max_batch)
            traced = tracemalloc.get_traced_memory()[0] / (1024 * 1024) if trace else None
            samples.append((started, _rss_mb(), traced))
        elapsed = time.perf_counter() - t0
        if profile is not None:
            profile.disable()
        trace_peak = tracemalloc.get_traced_memory()[1] / (1024 * 1024) if trace else None
        if trace:
            tracemalloc.stop()

        transitions = sum(1 for _, e in engine.store.events() if e.type is EventType.TASK_COMPLETED)
        counts = engine.store.count_cases()
        open_in_cache = len(engine._cache)  # ended cases must have left the cache
    finally:
        engine.close()
    if transitions != n_cases * per_case or counts != {"completed": n_cases}:
        raise RuntimeError(
            f"accord {workload}: {transitions} task.completed events and cases {counts} "
            f"for {n_cases} cases"
        )
    # Memory slope over the waves after the first (the first one warms caches and pools).
    later = samples[1:] if len(samples) > 2 else samples
    rss_peak = max(s[1] for s in samples)
    mode = "1 case at a time" if wave == 1 else f"waves of {wave}, rounds of <= {max_batch}"
    return _result(
        "accord" if wave != 1 else "accord (1 case at a time)",
        workload,
        n_cases,
        transitions,
        elapsed,
        _accord_guarantee(synchronous, wave == 1, max_batch),
        synchronous=synchronous,
        mode=mode,
        wave=wave,
        max_batch=max_batch,
        commits=n_cases + rounds,
        commits_per_case=(n_cases + rounds) / n_cases,
        transitions_per_commit=transitions / (n_cases + rounds),
        open_cases_cached_after=open_in_cache,
        rss_start_mb=rss0,
        rss_peak_mb=rss_peak,
        rss_growth_mb=rss_peak - rss0,
        rss_mb_per_1000_cases=_slope_per_1000([(c, r) for c, r, _ in later]),
        tracemalloc_peak_mb=trace_peak,
        tracemalloc_mb_per_1000_cases=(
            _slope_per_1000([(c, t) for c, _, t in later if t is not None]) if trace else None
        ),
        samples=[{"completed": c, "rss_mb": r, "traced_mb": t} for c, r, t in samples],
    )


def _accord_guarantee(sync: str, serial: bool, max_batch: int) -> str:
    how = (
        "one case in flight, one COMMIT per round of its ready steps"
        if serial
        else f"group COMMIT per round of <= {max_batch} transitions across cases"
    )
    return f"committed before the case moves on, {how} ({_wal_guarantee(sync)})"


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------


def _timed(label: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    t = time.perf_counter()
    r = fn()
    print(
        f"  {label:<46} {r['transitions_per_s']:>10,.0f} transitions/s "
        f"({r['cases']} cases, {r['seconds']:.2f} s; wall {time.perf_counter() - t:.1f} s)",
        flush=True,
    )
    return r


Job = tuple[str, str, Callable[[], dict[str, Any]]]  # (key, label, measurement)


def jobs_for(sync: str, sizes: dict[str, Any], d: Path) -> list[Job]:
    """Every measurement taken for one ``synchronous`` setting."""
    jobs: list[Job] = [
        (
            f"{sync}/sqlite",
            f"[{sync}] SQLite one-row commits",
            lambda: sqlite_commit_rate(d / f"floor-{sync}.sqlite", sync, sizes["sqlite_seconds"]),
        )
    ]
    for wl in WORKLOADS:
        jobs += [
            (
                f"{sync}/accord/{wl}",
                f"[{sync}] accord {wl}",
                lambda wl=wl: accord_run(
                    wl, sizes["accord"], d / f"accord-{wl}-{sync}.sqlite", sync, wave=sizes["wave"]
                ),
            ),
            (
                f"{sync}/accord1/{wl}",
                f"[{sync}] accord {wl} (1 case at a time)",
                lambda wl=wl: accord_run(
                    wl, sizes["accord_serial"], d / f"accord1-{wl}-{sync}.sqlite", sync, wave=1
                ),
            ),
            (
                f"{sync}/spiff-task/{wl}",
                f"[{sync}] SpiffWorkflow {wl} (persist every task)",
                lambda wl=wl: spiff_run(wl, sizes["spiff"], d / f"spiff-{wl}-{sync}.sqlite", sync),
            ),
            (
                f"{sync}/spiff-activity/{wl}",
                f"[{sync}] SpiffWorkflow {wl} (persist every activity)",
                lambda wl=wl: spiff_run(
                    wl, sizes["spiff"], d / f"spiffa-{wl}-{sync}.sqlite", sync, persist="activity"
                ),
            ),
        ]
    return jobs


def _named(r: dict[str, Any], name: str) -> dict[str, Any]:
    r["name"] = name
    return r


def dbos_jobs(sizes: dict[str, Any], d: Path) -> list[Job]:
    """DBOS sets no ``synchronous`` pragma, so its connections run the SQLite build default
    (FULL here) whatever we do; it is measured once per journal mode and shown in both tables.
    ``wal=True`` (WAL + FULL) is the comparison point; the as-shipped default (rollback journal
    + FULL) is shown beside it."""
    jobs: list[Job] = []
    for wl in WORKLOADS:
        jobs += [
            (
                f"dbos-wal/{wl}",
                f"[db default] DBOS {wl} (WAL)",
                lambda wl=wl: _named(
                    dbos_run(wl, sizes["dbos"][wl], d / f"dbos-{wl}.sqlite", wal=True),
                    "DBOS (WAL)",
                ),
            ),
            (
                f"dbos-shipped/{wl}",
                f"[db default] DBOS {wl} (as shipped)",
                lambda wl=wl: _named(
                    dbos_run(wl, sizes["dbos_default"][wl], d / f"dbosd-{wl}.sqlite"),
                    "DBOS (as shipped)",
                ),
            ),
        ]
    return jobs


def run_jobs_best_of(
    jobs: list[Job], repeat: int, deadline: float = float("inf")
) -> dict[str, dict[str, Any]]:
    """Run every job ``repeat`` times, interleaved (round-robin, so that a burst of load from
    elsewhere on the machine does not land on one engine only); keep each job's best run by
    transitions/s and record every run's rate in ``all_transitions_per_s``.

    The first pass always runs in full; later passes stop starting jobs once
    ``time.perf_counter()`` passes ``deadline`` (a loaded machine would otherwise blow the run's
    time budget), so some jobs may have fewer runs than others."""
    best: dict[str, dict[str, Any]] = {}
    every: dict[str, list[float]] = {}
    for rep in range(repeat):
        print(f"pass {rep + 1}/{repeat}:", flush=True)
        for key, label, fn in jobs:
            if rep > 0 and time.perf_counter() > deadline:
                print(f"  {label:<46} skipped (time budget spent)", flush=True)
                continue
            r = _timed(label, fn)
            every.setdefault(key, []).append(r["transitions_per_s"])
            if key not in best or r["transitions_per_s"] > best[key]["transitions_per_s"]:
                best[key] = r
    for key, r in best.items():
        r["key"] = key
        r["all_transitions_per_s"] = every[key]
    return best


def measure_memory(sizes: dict[str, Any], d: Path) -> dict[str, Any]:
    """accord sequential at N and 4N cases (same wave size) with tracemalloc on."""
    n = sizes["memory"]
    wave = sizes["memory_wave"]
    print(f"memory (accord sequential, waves of {wave}, tracemalloc on):", flush=True)
    small = _timed(
        f"accord sequential N={n}",
        lambda: accord_run("sequential", n, d / "mem-n.sqlite", wave=wave, trace=True),
    )
    large = _timed(
        f"accord sequential 4N={4 * n}",
        lambda: accord_run("sequential", 4 * n, d / "mem-4n.sqlite", wave=wave, trace=True),
    )
    # For contrast: every case started before any runs, so all of them are open at once. Open
    # cases live in the engine's cache (bounded by cache_size), so this is expected to grow.
    m = max(1, n // 2)
    open_small = _timed(
        f"accord sequential M={m}, all open at once",
        lambda: accord_run("sequential", m, d / "mem-open-n.sqlite", wave=0, trace=True),
    )
    open_large = _timed(
        f"accord sequential 4M={4 * m}, all open at once",
        lambda: accord_run("sequential", 4 * m, d / "mem-open-4n.sqlite", wave=0, trace=True),
    )
    return {
        "wave": wave,
        "n": n,
        "all_open_m": m,
        "all_open_tracemalloc_peak_mb_m": open_small["tracemalloc_peak_mb"],
        "all_open_tracemalloc_peak_mb_4m": open_large["tracemalloc_peak_mb"],
        "all_open_kib_per_open_case": (
            (open_large["tracemalloc_peak_mb"] - open_small["tracemalloc_peak_mb"]) * 1024 / (3 * m)
        ),
        "tracemalloc_peak_mb_n": small["tracemalloc_peak_mb"],
        "tracemalloc_peak_mb_4n": large["tracemalloc_peak_mb"],
        "tracemalloc_peak_growth_mb_per_1000_cases": (
            (large["tracemalloc_peak_mb"] - small["tracemalloc_peak_mb"]) / (3 * n / 1000)
        ),
        "tracemalloc_slope_mb_per_1000_cases_4n": large["tracemalloc_mb_per_1000_cases"],
        "rss_peak_mb_n": small["rss_peak_mb"],
        "rss_peak_mb_4n": large["rss_peak_mb"],
        "rss_slope_mb_per_1000_cases_4n": large["rss_mb_per_1000_cases"],
        "runs": [small, large, open_small, open_large],
    }


def profile_accord(sizes: dict[str, Any], d: Path, top: int = 25) -> str:
    """cProfile of accord's sequential workload (NORMAL); the top functions by own time."""
    prof = cProfile.Profile()
    accord_run("sequential", sizes["accord"], d / "prof.sqlite", wave=sizes["wave"], profile=prof)
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


def _pick(rows: list[dict[str, Any]], name: str, workload: str) -> dict[str, Any]:
    for r in rows:
        if r["name"] == name and r["workload"] == workload:
            return r
    raise KeyError((name, workload))


def _table(setting: dict[str, Any], dbos_rows: list[dict[str, Any]]) -> list[str]:
    rows = setting["rows"] + dbos_rows
    floor = next(r for r in rows if r["workload"] == "single-row-commit")
    order = [
        "accord",
        "accord (1 case at a time)",
        "SpiffWorkflow/task",
        "SpiffWorkflow/activity",
        "DBOS (WAL)",
        "DBOS (as shipped)",
        "SQLite",
    ]
    head = (
        f"{'engine':<34} {'workload':<10} {'cases/s':>9} {'trans/s':>9} {'accord/x':>9}  "
        f"{'every pass (trans/s)':<22} guarantee"
    )
    lines = [f"synchronous={setting['synchronous']}", head, "-" * 140]
    for wl in WORKLOADS:
        accord = _pick(rows, "accord", wl)
        for key in order:
            if key == "SQLite":
                r = floor
                label = "SQLite raw commits (1 row/txn)"
            else:
                name, _, persist = key.partition("/")
                r = next(
                    x
                    for x in rows
                    if x["name"] == name
                    and x["workload"] == wl
                    and (not persist or x.get("persist") == persist)
                )
                label = f"{name} (persist {persist})" if persist else name
            cps, tps = r["cases_per_s"], r["transitions_per_s"]
            ratio = "" if r is accord else f"{accord['transitions_per_s'] / tps:8.2f}x"
            passes = " / ".join(f"{v:,.0f}" for v in r.get("all_transitions_per_s", [tps]))
            lines.append(
                f"{label:<34} {wl:<10} {cps:>9,.0f} {tps:>9,.0f} {ratio:>9}  {passes:<22} "
                f"{r['guarantee']}"
            )
        lines.append("")
    return lines


def _targets(setting: dict[str, Any], dbos_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = setting["rows"] + dbos_rows
    checks = []
    for wl in WORKLOADS:
        a = _pick(rows, "accord", wl)["transitions_per_s"]
        spiff = next(
            r for r in rows if r["name"] == "SpiffWorkflow" and r["workload"] == wl
            and r["persist"] == "task"
        )["transitions_per_s"]  # fmt: skip
        dbos = _pick(rows, "DBOS (WAL)", wl)["transitions_per_s"]
        if wl == "sequential":
            checks.append(
                {"workload": wl, "target": f">= {TARGET_TPS:,} transitions/s",
                 "measured": a, "met": a >= TARGET_TPS}
            )  # fmt: skip
        checks.append(
            {"workload": wl, "target": f">= {TARGET_VS_SPIFF:g}x SpiffWorkflow (persist task)",
             "measured": a / spiff, "met": a / spiff >= TARGET_VS_SPIFF}
        )  # fmt: skip
        checks.append(
            {"workload": wl, "target": f">= {TARGET_VS_DBOS:g}x DBOS (WAL)",
             "measured": a / dbos, "met": a / dbos >= TARGET_VS_DBOS}
        )  # fmt: skip
    return checks


def _machine() -> dict[str, Any]:
    def ver(pkg: str) -> str:
        try:
            return pkg_version(pkg)
        except Exception:  # pragma: no cover
            return "?"

    def git(*cmd: str) -> str:
        # read-only: which source was measured (HEAD, and whether src/ had local changes)
        try:
            out = subprocess.run(
                ["git", *cmd], capture_output=True, text=True, check=True, timeout=10,
                cwd=Path(__file__).resolve().parent,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return "?"
        return out.stdout.strip()

    import accord

    imported = Path(accord.__file__).resolve().parent
    in_repo = imported == Path(__file__).resolve().parent.parent / "src" / "accord"
    return {
        "git_head": git("rev-parse", "--short", "HEAD"),
        "accord_imported_from": str(imported),
        "src_modified": (
            git("status", "--porcelain", "--", "../src").splitlines() if in_repo else None
        ),
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "accord": ver("accord"),
        "spiffworkflow": ver("spiffworkflow"),
        "dbos": ver("dbos"),
    }


def sizes_for(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        sizes: dict[str, Any] = {
            "accord": 500,
            "wave": 500,
            "accord_serial": 60,
            "spiff": 100,
            "dbos": {"sequential": 40, "parallel": 30},
            "dbos_default": {"sequential": 30, "parallel": 20},
            "sqlite_seconds": 0.5,
            "repeat": 1,
            "budget_s": 35,
            "memory": 250,
            "memory_wave": 125,
        }
    else:
        sizes = {
            "accord": 2000,
            "wave": 1000,
            "accord_serial": 300,
            "spiff": 300,
            "dbos": {"sequential": 150, "parallel": 150},
            "dbos_default": {"sequential": 80, "parallel": 80},
            "sqlite_seconds": 1.5,
            "repeat": 2,
            "budget_s": 140,
            "memory": 500,
            "memory_wave": 125,
        }
    if args.repeat:
        sizes["repeat"] = args.repeat
    if args.cases:
        sizes["accord"] = args.cases
        sizes["wave"] = min(sizes["wave"], args.cases)
    return sizes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=None, help="accord cases per workload")
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run, < 40 s)")
    ap.add_argument(
        "--repeat", type=int, default=None, help="passes over every measurement; best kept "
        "(default 2, --quick 1)"
    )  # fmt: skip
    ap.add_argument("--json", metavar="FILE", help="write every result to FILE")
    ap.add_argument("--dir", default=None, help="directory for the databases (default: temp)")
    ap.add_argument("--profile", action="store_true", help="also cProfile accord sequential")
    args = ap.parse_args(argv)
    missing = [name for name in ("SpiffWorkflow", "dbos") if importlib.util.find_spec(name) is None]
    if missing:
        print(f"the peers ({', '.join(missing)}) are not installed: they are in the bench extra, "
              "`make bench` installs them (or .venv/bin/python -m pip install -e '.[bench]')",
              file=sys.stderr)  # fmt: skip
        return 2
    sizes = sizes_for(args)
    cmd = "python bench/engine.py " + " ".join(sys.argv[1:] if argv is None else argv)

    t_all = time.perf_counter()
    results: dict[str, Any] = {
        "command": cmd.strip(),
        "machine": _machine(),
        "sizes": sizes,
        "settings": [],
    }
    with contextlib.ExitStack() as stack:
        if args.dir:
            d = Path(args.dir)
            d.mkdir(parents=True, exist_ok=True)
        else:
            d = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="accord-bench-")))
        results["memory"] = measure_memory(sizes, d)
        jobs: list[Job] = []
        for sync in SYNC_SETTINGS:
            jobs += jobs_for(sync, sizes, d)
        jobs += dbos_jobs(sizes, d)
        best = run_jobs_best_of(jobs, sizes["repeat"], t_all + sizes["budget_s"])
        for sync in SYNC_SETTINGS:
            rows = [r for k, r in best.items() if k.startswith(f"{sync}/")]
            results["settings"].append({"synchronous": sync, "rows": rows})
        results["dbos"] = [r for k, r in best.items() if k.startswith("dbos")]
        profile = profile_accord(sizes, d) if args.profile else None
    results["seconds"] = time.perf_counter() - t_all

    m = results["machine"]
    print()
    print(
        f"machine: {m['nproc']} CPUs, {m['platform']}, Python {m['python']}, SQLite {m['sqlite']};"
        f" SpiffWorkflow {m['spiffworkflow']}, DBOS {m['dbos']}"
    )
    if m["src_modified"] is None:
        print(f"accord {m['accord']} imported from {m['accord_imported_from']} (repo HEAD: "
              f"{m['git_head']})")  # fmt: skip
    else:
        dirty = " (src/ has uncommitted changes)" if m["src_modified"] else ""
        print(f"accord {m['accord']} at {m['git_head']}{dirty}")
    print("ratio column: accord transitions/s divided by that row's transitions/s")
    print()
    for setting in results["settings"]:
        for line in _table(setting, results["dbos"]):
            print(line)
        checks = _targets(setting, results["dbos"])
        setting["targets"] = checks
        print(f"targets (synchronous={setting['synchronous']}):")
        for c in checks:
            val = (
                f"{c['measured']:,.0f}/s" if "transitions/s" in c["target"]
                else f"{c['measured']:.2f}x"
            )  # fmt: skip
            print(f"  {c['workload']:<10} {c['target']:<38} {val:>10}  "
                  f"{'MET' if c['met'] else 'NOT MET'}")  # fmt: skip
        print()

    mem = results["memory"]
    print(f"memory (accord sequential, waves of {mem['wave']} cases, tracemalloc on):")
    print(
        f"  tracemalloc peak: N={mem['n']}: {mem['tracemalloc_peak_mb_n']:.2f} MiB, "
        f"4N={4 * mem['n']}: {mem['tracemalloc_peak_mb_4n']:.2f} MiB "
        f"({mem['tracemalloc_peak_growth_mb_per_1000_cases']:+.3f} MiB per 1000 more cases)"
    )
    print(
        f"  RSS peak: N: {mem['rss_peak_mb_n']:.1f} MiB, 4N: {mem['rss_peak_mb_4n']:.1f} MiB; "
        f"slope over the 4N run: {mem['rss_slope_mb_per_1000_cases_4n']:+.3f} MiB RSS, "
        f"{mem['tracemalloc_slope_mb_per_1000_cases_4n']:+.3f} MiB traced per 1000 completed cases"
    )
    print(
        f"  for contrast, all cases open at once (not flat, by design): tracemalloc peak "
        f"{mem['all_open_tracemalloc_peak_mb_m']:.2f} MiB at {mem['all_open_m']} cases, "
        f"{mem['all_open_tracemalloc_peak_mb_4m']:.2f} MiB at {4 * mem['all_open_m']} "
        f"(~{mem['all_open_kib_per_open_case']:.1f} KiB per open case)"
    )
    if profile is not None:
        results["profile"] = profile
        print()
        print(profile)
    print(f"total {results['seconds']:.0f} s")

    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
