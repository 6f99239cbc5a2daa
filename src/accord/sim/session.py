"""One simulated run from files to summary: what `accord run`, `demo` and `compare` do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accord.analytics import summarize
from accord.central.engine import Engine
from accord.choreo.node import TeamNode
from accord.choreo.projection import project
from accord.clock import EPOCH, VirtualClock
from accord.errors import AccordError
from accord.events import Event, EventType
from accord.kernel.scope import HUB
from accord.model import load
from accord.model.types import ProcessDefinition
from accord.sim.runner import Progress, Simulation, run_meta, staffed
from accord.sim.scenario import Scenario, load_scenario
from accord.sim.worlds import ChoreoWorld
from accord.stores import open_store

MODES = ("central", "choreo", "hybrid")
BUS_LATENCY_S = 0.05  # one hop on an in-process bus standing in for a broker on a LAN


class RunMismatch(AccordError):
    """The database holds a different run than the one asked for."""


class UnsupportedMode(AccordError):
    """A mode this version cannot run (or cannot run with these options)."""


def simulate(
    file: str | Path,
    cases: int,
    *,
    mode: str = "central",
    seed: int = 0,
    db: str | None = None,
    scenario: str | Path | None = None,
    progress: Progress | None = None,
    overrides: dict[str, Any] | None = None,
    keep_events: list[Event] | None = None,
    horizon: float | None = None,
) -> dict[str, Any]:
    """Run ``cases`` seeded cases of the process in ``file`` and return the run summary.

    ``mode`` is ``central`` (one hub) or ``choreo`` (a node per team on a bus, no hub). With
    ``db`` (central only: a SQLite path or store URL) the run is kept, and a second call with
    the same arguments resumes it where it stood instead of starting again. ``keep_events``,
    if given, receives every event of the run (for further measures). ``horizon`` (seconds
    of virtual time from the first arrival; default: see runner.default_horizon) stops a run
    whose cases go on for ever: those still open are reported open.
    """
    if mode not in MODES:
        raise UnsupportedMode(f"mode {mode!r} is not available (modes: {', '.join(MODES)})")
    d = load(file)
    sc = load_scenario(d, scenario, overrides)
    run_d = staffed(d, sc)
    if mode in ("choreo", "hybrid"):
        if db is not None:
            raise UnsupportedMode(
                "--db keeps a central run; a choreographed run keeps one store per team node "
                "(start them with `accord node`)"
            )
        return _choreo(
            d=d,
            run_d=run_d,
            sc=sc,
            cases=cases,
            seed=seed,
            progress=progress,
            keep=keep_events,
            hybrid=mode == "hybrid",
            horizon=horizon,
        )
    return _central(
        d=d,
        run_d=run_d,
        sc=sc,
        cases=cases,
        seed=seed,
        db=db,
        scenario=scenario,
        progress=progress,
        keep=keep_events,
        horizon=horizon,
    )


def _central(
    *,
    d: ProcessDefinition,
    run_d: ProcessDefinition,
    sc: Scenario,
    cases: int,
    seed: int,
    db: str | None,
    scenario: str | Path | None,
    progress: Progress | None,
    keep: list[Event] | None,
    horizon: float | None = None,
) -> dict[str, Any]:
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
    engine = Engine(store, [run_d], clock=clock, auto_assign=sc.hub is None)
    try:
        sim = Simulation(
            engine, run_d, sc, clock, cases=cases, seed=seed, progress=progress, horizon=horizon
        )
        result = sim.run(resume=resume)
        events = engine.events()
        summary = summarize(events, mode="central")
        if keep is not None:
            keep.extend(events)
    finally:
        engine.close()
    summary.update(_common(d, seed, result, resume))
    summary["hub_decisions_per_case"] = _per_case(
        summary["hub_assignments"] + summary["gateway_decisions"], summary
    )
    if sim.hub is not None:
        summary["hub_queue_peak"] = sim.hub.queue_peak
    summary["bus_messages_per_case"] = 0.0
    summary["status_freshness_s"] = 0.0  # the hub's own state is the global view
    return summary


def _choreo(
    *,
    d: ProcessDefinition,
    run_d: ProcessDefinition,
    sc: Scenario,
    cases: int,
    seed: int,
    progress: Progress | None,
    keep: list[Event] | None,
    hybrid: bool = False,
    horizon: float | None = None,
) -> dict[str, Any]:
    mode = "hybrid" if hybrid else "choreo"
    projection = project(run_d, hybrid=hybrid)
    clock = VirtualClock(EPOCH)
    nodes = {
        team: TeamNode(
            projection,
            team,
            open_store("memory://"),
            clock=clock,
            # the hub pushes its tasks unless a coordinating team decides each assignment
            auto_assign=team == HUB and sc.hub is None,
        )
        for team in projection.parts
    }
    world = ChoreoWorld(nodes, BUS_LATENCY_S)
    try:
        sim = Simulation(
            world, run_d, sc, clock, cases=cases, seed=seed, progress=progress, horizon=horizon
        )
        result = sim.run()
        events: list[Event] = []
        for node in nodes.values():
            events.extend(node.engine.events())
        events.sort(key=lambda e: e.at)
        summary = summarize(events, mode=mode)
        if keep is not None:
            keep.extend(events)
        lag = world.board_lag
        published = world.bus.published if world.bus is not None else 0
        rejected = sum(n.rejected for n in nodes.values())
    finally:
        for node in nodes.values():
            node.close()
    summary.update(_common(d, seed, result, False))
    summary["hub_decisions_per_case"] = _per_case(
        summary["hub_assignments"]
        + sum(1 for e in events if e.type is EventType.GATEWAY_DECIDED and "@hub#" in e.id),
        summary,
    )
    if sim.hub is not None:
        summary["hub_queue_peak"] = sim.hub.queue_peak
    summary["bus_messages_per_case"] = _per_case(published, summary)
    summary["status_freshness_s"] = round(lag, 4)
    summary["handoff_rejections"] += rejected
    return summary


def _per_case(n: float, summary: dict[str, Any]) -> float:
    started = summary["cases_started"] or 1
    return round(n / started, 3)


def _common(d: ProcessDefinition, seed: int, result: Any, resume: bool) -> dict[str, Any]:
    return {
        "process": d.key,
        "seed": seed,
        "resumed": resume,
        "wall_s": round(result.wall_s, 3),
        "virtual_days": round(result.virtual_s / 86400.0, 2),
        "unfinished": result.unfinished[:20],
        "horizon_days": round(result.horizon_s / 86400.0, 2),
        "horizon_reached": result.horizon_reached,
        "handoff_rejections": result.contract_violations,
    }
