"""One simulated run from files to summary: what `accord run` and `accord demo` do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accord.analytics import summarize
from accord.central.engine import Engine
from accord.clock import EPOCH, VirtualClock
from accord.errors import AccordError
from accord.model import load
from accord.sim.runner import Progress, Simulation, run_meta, staffed
from accord.sim.scenario import load_scenario
from accord.stores import open_store


class RunMismatch(AccordError):
    """The database holds a different run than the one asked for."""


def simulate(
    file: str | Path,
    cases: int,
    *,
    mode: str = "central",
    seed: int = 0,
    db: str | None = None,
    scenario: str | Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run ``cases`` seeded cases of the process in ``file`` and return the run summary.

    With ``db`` (a SQLite path or store URL) the run is kept, and a second call with the same
    arguments resumes it where it stood (after a crash, say) instead of starting again.
    """
    d = load(file)
    sc = load_scenario(d, scenario)
    run_d = staffed(d, sc)
    url = "memory://" if db is None else (db if "://" in db else f"sqlite:///{db}")
    store = open_store(url)
    meta = run_meta(d, cases, seed, str(scenario) if scenario else None)
    stored = store.get_meta("run")
    resume = False
    clock = VirtualClock(EPOCH)
    if stored is not None:
        if stored != meta:
            store.close()
            raise RunMismatch(
                f"{db} holds a different run ({stored}); use another --db to start a new one"
            )
        resume = True
        last = max((e.at for _, e in store.events()), default=EPOCH)
        clock = VirtualClock(last)
    else:
        store.set_meta("run", meta)
    engine = Engine(store, [run_d], clock=clock)
    try:
        sim = Simulation(engine, run_d, sc, clock, cases=cases, seed=seed, progress=progress)
        result = sim.run(resume=resume)
        summary = summarize(engine.events(), mode=mode)
    finally:
        engine.close()
    summary.update(
        {
            "process": d.key,
            "seed": seed,
            "resumed": resume,
            "wall_s": round(result.wall_s, 3),
            "virtual_days": round(result.virtual_s / 86400.0, 2),
            "unfinished": result.unfinished[:20],
            "handoff_rejections": result.contract_violations,
        }
    )
    return summary
