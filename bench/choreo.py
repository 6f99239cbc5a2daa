"""Choreographed handoff latency and throughput, on the in-process bus and on NATS (issue #3).

Run from the repository root, with NATS (JetStream enabled) listening on 127.0.0.1:4222::

    .venv/bin/python bench/choreo.py                 # full run, < 3 minutes on 2 cores
    .venv/bin/python bench/choreo.py --quick         # smoke run, < 40 s
    .venv/bin/python bench/choreo.py --json out.json # also write every result as JSON

**Process.** A chain of automated no-op steps alternating between two teams, ``ta`` (the
initiator) and ``tb``: ``a1 (ta) -> b1 (tb) -> a2 (ta) -> b2 -> a3 -> b3 (tb) -> end``, so
every transition between steps is a handoff (``STEPS - 1`` = 5 per case). Each team runs a
``TeamNode`` with its own SQLite file (WAL, ``synchronous=NORMAL``: survives a process crash;
``--synchronous FULL`` adds power loss) and a real ``SystemClock``.
The no-op handler is registered ``inline``, so each step runs straight through (see
docs/definitions.md, "Inline handlers run straight through"): the receiving node's one
transaction holds the handoff's arrival (its inbox entry), the step, and the next handoff (its
outbox entry). ``ACCORD_BENCH_HANDLER_POOL=1`` runs the handler from the queue instead, on the
handler pool, after the arrival's commit: two transactions per step.

**Durable on both sides.** A handoff counts once the sender has committed the ``handoff`` event
to its log (the outbox) and the receiver has committed the ``ArriveToken``: the event id kept
as consumed in its case row (the inbox), in the same transaction as the ``task.ready`` of the
step it received. After each phase both stores are read back and checked: every handoff sent,
received exactly once, its id in the receiver's inbox, every case completed.

**Latency** of a handoff is the receiver's ``task.ready`` timestamp minus the sender's
``handoff`` timestamp, joined on (case, step). Both are the ``at`` of the event: stamped by the
node's engine as it builds the unit of work that is then committed. The interval therefore runs
from the sender's decision, through its commit, the relay, the bus and the receiver's decoding,
to the start of the receiver's commit.

**Throughput** is handoffs divided by the wall time from the first case started to the last
handoff received, with ``WINDOW`` cases in flight (whenever cases complete, the initiator starts
as many new ones, those due at once in one committed transaction).

**CPU per handoff** is the CPU time (user + system, all threads) the node processes and the
local nats-server used during a phase, divided by its handoffs. The machine this runs on is
often shared; CPU per handoff is much less sensitive to that than wall-clock rates, and it
bounds what the design could reach on idle cores.

Each phase runs on both buses:

* **memory**: ``MemoryBus``, both nodes in this process and in **one thread**. The driver loop
  runs ``engine.run_jobs()`` then ``node.relay()`` for each node in turn; the bus delivers
  synchronously, in publication order (``MemoryBus`` is not thread-safe, hence one thread).
* **nats**: ``NatsBus`` on JetStream, each node in its **own OS process** (``multiprocessing``,
  spawn), run as ``accord node`` runs one (``LiveNode``): the main thread loops one round of at
  most ``MAX_BATCH`` handlers (one commit), then ``relay()``, which hands the new events to the
  bus, one bundle per addressee, without waiting for the acknowledgements (the cursor moves as
  they come); it sleeps when idle until a commit or an acknowledgement wakes it (at most 1 ms).
  Inbound messages are applied on NatsBus's handler thread, each fetched batch in slices of
  ``APPLY_CHUNK`` actions, one transaction each. Node processes use the collector thresholds
  ``accord node`` sets (``tune_gc``).

Two loads: **light** (cases started at a fixed rate far below capacity: the latency the targets
refer to) and **saturated** (``WINDOW`` cases in flight: throughput, and what it costs in
latency). Saturated runs repeat (``--repeat``) and the best is kept, budget permitting. They
follow an unreported saturated warm-up of 1,000 cases (100 with ``--quick``): without it the
first saturated pass after the light phase ran 10-15% slower than the second, every time.

Raw JetStream is measured in the same run with nats-py directly, on a scratch stream, with a
payload the size of an accord handoff event and a ``Nats-Msg-Id`` header (as NatsBus sends):
acked publishes one at a time, acked publishes 100 in flight (``asyncio.gather`` over windows
of 100, as ``NatsBus.publish_many`` does): the latter, the **pipelined acked-publish rate**, is
the target's reference, as issue #3 defines it ("the raw JetStream acked-publish rate ... ~28,000/s
with 100 in flight"). For context the run also measures the pipelined publish->consume rate: one
process publishes with 100 in flight while another consumes the same stream as NatsBus does
(durable push consumer, an explicit ack per message), messages consumed per second from the
first publish to the last message received.
Raw rates are taken before and after the bus phases; the better acked-publish pass is the
reference (a load spike during one pass must not lower the bar).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import multiprocessing as mp
import os
import platform
import pstats
import queue
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

STEPS = 6  # a1 b1 a2 b2 a3 b3: 5 handoffs per case
TEAMS = ("ta", "tb")
WINDOW = 200  # cases in flight in a saturated run
WAVE = 200  # at most this many cases started per loop pass
MAX_BATCH = 64  # handler jobs per round (and commit), as LiveNode.batch
NATS_URL = "nats://127.0.0.1:4222"
TARGET_SHARE_OF_RAW = 0.20
TARGET_P50_MS = 5.0
TARGET_P99_MS = 25.0
IDLE_WAIT_S = 0.001
POLL_S = 0.01  # how often a node process looks for commands and reports its progress
RAW_WINDOW = 100
PHASE_TIMEOUT_S = 150.0

Phase = tuple[str, int, float, int]  # name (= case id prefix), cases, rate (0: window), window

# --------------------------------------------------------------------------------------------
# the process and a node
# --------------------------------------------------------------------------------------------


def step_names(steps: int = STEPS) -> list[tuple[str, str]]:
    """(step id, team) along the chain: a1/ta, b1/tb, a2/ta, ..."""
    return [(f"{'ab'[i % 2]}{i // 2 + 1}", TEAMS[i % 2]) for i in range(steps)]


def process_yaml(pid: str, steps: int = STEPS) -> str:
    """The chain as an accord process definition (YAML)."""
    chain = step_names(steps)
    lines = [f"process: {pid}", "teams: {ta: {}, tb: {}}", "steps:"]
    for i, (step, team) in enumerate(chain):
        nxt = chain[i + 1][0] if i + 1 < len(chain) else "done"
        lines += [
            f"  - id: {step}",
            "    type: automated",
            f"    team: {team}",
            "    handler: 'bench:noop'",
            f"    next: {nxt}",
        ]
    lines += ["  - id: done", "    type: end"]
    return "\n".join(lines) + "\n"


def make_node(pid: str, team: str, db: Path, synchronous: str) -> Any:
    """A TeamNode for ``team`` on a fresh SQLite file, with a real clock and the no-op handler."""
    from accord.choreo.node import TeamNode
    from accord.choreo.projection import project
    from accord.clock import SystemClock
    from accord.handlers import HandlerRegistry
    from accord.model import loads
    from accord.stores import open_store

    registry = HandlerRegistry()
    # the no-op returns at once: called on the node's own thread, not on the handler pool
    # (ACCORD_BENCH_HANDLER_POOL=1 puts it back on the pool, to measure what that costs)
    pool = os.environ.get("ACCORD_BENCH_HANDLER_POOL") == "1"
    registry.register("bench:noop", lambda ctx: {}, inline=not pool)
    projection = project(loads(process_yaml(pid), f"<{pid}>"))
    store = open_store(f"sqlite:///{db}?synchronous={synchronous}")
    return TeamNode(projection, team, store, clock=SystemClock(), handlers=registry)


def count_completed(node: Any, counter: list[int]) -> None:
    """Count the cases this (initiating) node declares completed, as they are committed."""
    from accord.events import EventType

    def listener(events: list[Any]) -> None:
        counter[0] += sum(1 for e in events if e.type is EventType.CASE_COMPLETED)

    node.engine.listeners.append(listener)


def cpu_s() -> float:
    """CPU seconds (user + system, all threads) this process has used."""
    t = os.times()
    return t.user + t.system


class Starter:
    """The cases the initiating node starts in a phase: at ``rate`` per second, or keeping
    ``window`` cases in flight (``rate`` 0)."""

    def __init__(self, done: list[int]) -> None:
        self.done = done  # the node's completed-case counter
        self.ids: list[str] = []
        self.next = 0
        self.t0 = 0.0
        self.rate = 0.0
        self.window = 0
        self.done0 = 0

    def load(self, prefix: str, n: int, rate: float, window: int) -> None:
        self.ids = [f"{prefix}-{i:06d}" for i in range(n)]
        self.next = 0
        self.rate = rate
        self.window = window
        self.done0 = self.done[0]
        self.t0 = time.time()

    @property
    def pending(self) -> bool:
        return self.next < len(self.ids)

    def due(self) -> int:
        """How many cases to start now."""
        left = len(self.ids) - self.next
        if self.rate <= 0:
            in_flight = self.next - (self.done[0] - self.done0)
            return max(0, min(left, WAVE, self.window - in_flight))
        owed = int((time.time() - self.t0) * self.rate) + 1
        return max(0, min(left, owed - self.next))

    def wait_s(self) -> float:
        """How long the loop may sleep when it has nothing else to do."""
        if self.rate <= 0 or not self.pending:
            return IDLE_WAIT_S
        return min(IDLE_WAIT_S, max(0.0, self.t0 + self.next / self.rate - time.time()))

    def start(self, node: Any) -> int:
        """Start the due cases, all in one transaction (each case is committed before any of
        its events is published, as with ``start_case``)."""
        from accord.kernel import StartCase

        if not self.pending:
            return 0
        k = self.due()
        if k == 0:
            return 0
        now = node.engine.clock.now()
        key = node.d.key
        items = [
            (key, cid, StartCase(at=now, actor="bench", case_id=cid))
            for cid in self.ids[self.next : self.next + k]
        ]
        for result in node.engine.apply_many(items):
            if isinstance(result, Exception):
                raise result
        self.next += k
        return k


# --------------------------------------------------------------------------------------------
# reading the results back from both stores
# --------------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of ``values``."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * len(s) + 0.5) - 1))]


def analyse(dbs: dict[str, Path], prefix: str, n_cases: int) -> dict[str, Any]:
    """Join every sender's handoff with the receiver's task.ready; check durability on both
    sides (outbox event committed, consumed id committed in the receiver's case row)."""
    like = f"{prefix}-%"
    sent: list[tuple[str, str, str, str, float]] = []  # id, case, to_team, to_step, at
    ready: dict[tuple[str, str, str], list[float]] = {}
    consumed: dict[str, set[str]] = {}
    starts: list[float] = []
    completed = 0
    for team, db in dbs.items():
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            for eid, case, at, data in con.execute(
                "SELECT id, case_id, at, data FROM events WHERE type='handoff' AND case_id LIKE ?",
                (like,),
            ):
                d = json.loads(data)
                sent.append((eid, case, d["to_team"], d["to_step"], float(at)))
            for case, step, at in con.execute(
                "SELECT case_id, step, at FROM events WHERE type='task.ready' AND case_id LIKE ?",
                (like,),
            ):
                ready.setdefault((team, case, step), []).append(float(at))
            for case, state in con.execute("SELECT id, state FROM cases WHERE id LIKE ?", (like,)):
                consumed[f"{team}/{case}"] = set(json.loads(state).get("consumed") or ())
            starts += [
                float(r[0])
                for r in con.execute(
                    "SELECT at FROM events WHERE type='case.started' AND case_id LIKE ?", (like,)
                )
            ]
            completed += con.execute(
                "SELECT count(*) FROM events WHERE type='case.completed' AND case_id LIKE ?",
                (like,),
            ).fetchone()[0]
        finally:
            con.close()
    latencies: list[float] = []
    missing = doubled = not_consumed = 0
    last_arrival = 0.0
    for eid, case, to_team, to_step, at in sent:
        got = ready.get((to_team, case, to_step))
        if not got:
            missing += 1
            continue
        doubled += len(got) > 1
        if eid not in consumed.get(f"{to_team}/{case}", set()):
            not_consumed += 1
        latencies.append((got[0] - at) * 1000)
        last_arrival = max(last_arrival, got[0])
    expected = n_cases * (STEPS - 1)
    ok = (
        len(sent) == expected
        and missing == 0
        and doubled == 0
        and not_consumed == 0
        and completed == n_cases
    )
    wall = last_arrival - min(starts) if starts and last_arrival else float("nan")
    return {
        "cases": n_cases,
        "handoffs": len(latencies),
        "handoffs_expected": expected,
        "cases_completed": completed,
        "missing": missing,
        "received_twice": doubled,
        "not_in_inbox": not_consumed,
        "checks_ok": ok,
        "wall_s": wall,
        "handoffs_per_s": len(latencies) / wall if wall and wall > 0 else float("nan"),
        "p50_ms": pct(latencies, 0.50),
        "p90_ms": pct(latencies, 0.90),
        "p99_ms": pct(latencies, 0.99),
        "max_ms": max(latencies) if latencies else float("nan"),
    }


def _cpu_fields(res: dict[str, Any], nodes_s: float, server_s: float | None) -> dict[str, Any]:
    h = max(res["handoffs"], 1)
    return {
        "cpu_nodes_s": nodes_s,
        "cpu_server_s": server_s,
        "cpu_us_per_handoff_nodes": nodes_s / h * 1e6,
        "cpu_us_per_handoff_server": None if server_s is None else server_s / h * 1e6,
    }


def _skip(name: str, deadline: float) -> bool:
    """Repeat passes after the first saturated one are dropped once the budget is spent."""
    return name.startswith("saturated") and name != "saturated1" and time.monotonic() > deadline


# --------------------------------------------------------------------------------------------
# the in-process bus: both nodes, one thread
# --------------------------------------------------------------------------------------------


def memory_phase(nodes: dict[str, Any], done: list[int], phase: Phase) -> None:
    """Drive both nodes in this thread until the initiator has completed the phase's cases."""
    name, n, rate, window = phase
    initiator = nodes[TEAMS[0]]
    starter = Starter(done)
    target = done[0] + n
    starter.load(name, n, rate, window)
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    while done[0] < target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"memory bus: {name}: {done[0]}/{target} cases")
        busy = starter.start(initiator) > 0
        for node in nodes.values():
            busy = node.engine.run_jobs(max_batch=MAX_BATCH) > 0 or busy
            busy = node.relay() > 0 or busy
        if not busy:
            time.sleep(starter.wait_s())


def run_memory(
    tmp: Path, phases: list[Phase], synchronous: str, profile: bool, budget_at: float
) -> dict[str, Any]:
    from accord.buses.memory import MemoryBus

    pid = "bench-choreo-mem"
    dbs = {t: tmp / f"mem-{t}.db" for t in TEAMS}
    bus = MemoryBus()
    nodes = {t: make_node(pid, t, dbs[t], synchronous) for t in TEAMS}
    for node in nodes.values():
        node.attach(bus)
    done = [0]
    count_completed(nodes[TEAMS[0]], done)
    out: dict[str, Any] = {}
    prof = cProfile.Profile() if profile else None
    try:
        for phase in phases:
            name = phase[0]
            if _skip(name, budget_at):
                continue
            if prof is not None and name.startswith("saturated"):
                prof.enable()
            c0 = cpu_s()
            memory_phase(nodes, done, phase)
            c1 = cpu_s()
            if prof is not None:
                prof.disable()
            if not name.startswith("warmup"):
                res = analyse(dbs, name, phase[1])
                out[name] = res | _cpu_fields(res, c1 - c0, None) | _load(phase)
    finally:
        for node in nodes.values():
            node.close()
        bus.close()
    if prof is not None:
        out["profile"] = _profile_text(prof, 30)
    out["published"] = bus.published
    out["delivered"] = bus.delivered
    return out


def _load(phase: Phase) -> dict[str, Any]:
    _name, _n, rate, window = phase
    return {"rate_cases_per_s": rate or None, "window": None if rate else window}


# --------------------------------------------------------------------------------------------
# NATS: each node in its own process
# --------------------------------------------------------------------------------------------


def node_main(
    pid: str,
    team: str,
    db: str,
    url: str,
    synchronous: str,
    shared: dict[str, Any],
    profile_dir: str | None,
) -> None:
    """A node process: NatsBus + TeamNode, looping ``run_jobs()`` + ``relay()``."""
    from accord.buses.nats import NatsBus
    from accord.choreo.live import tune_gc

    tune_gc()  # as `accord node` does

    commands, ready, stop = shared["commands"], shared["ready"], shared["stop"]
    completed, cpu, results = shared["completed"], shared["cpu"], shared["results"]
    node = make_node(pid, team, Path(db), synchronous)
    done = [0]
    count_completed(node, done)
    profs: dict[str, cProfile.Profile] = {}
    if profile_dir:
        local = threading.local()

        def profiled(fn: Any) -> Any:  # a profiler on each bus handler thread calling fn
            def call(*args: Any) -> Any:
                if not getattr(local, "on", False):
                    local.on = True
                    name = "handler" if "handler" not in profs else f"handler{len(profs)}"
                    profs[name] = cProfile.Profile()
                    profs[name].enable()
                return fn(*args)

            return call

        node.on_messages = profiled(node.on_messages)
    bus = NatsBus(url)
    node.attach(bus)
    # as LiveNode (accord node) runs: this loop runs one round of handlers (one commit), then
    # hands what it committed to the bus without waiting for the acknowledgements (the cursor
    # moves once they come); NatsBus's handler thread applies what arrives
    node.eager_relay = False
    node.pipelined = True
    ready.set()
    starter = Starter(done)
    if profile_dir:
        profs["loop"] = cProfile.Profile()
        profs["loop"].enable()
    polled = 0.0
    try:
        while not stop.is_set():
            now = time.monotonic()
            if now - polled >= POLL_S:  # the harness's own chores, not every pass
                polled = now
                with contextlib.suppress(queue.Empty):
                    starter.load(*commands.get_nowait())
                completed.value = done[0]
                cpu.value = cpu_s()
            busy = starter.start(node) > 0
            busy = node.engine.run_jobs(max_batch=MAX_BATCH, rounds=1) > 0 or busy
            busy = node.relay() > 0 or busy
            if not busy:
                node.wait(starter.wait_s())  # woken by a commit or an acknowledgement
        node.relay()
        node.drain()
    finally:
        for p in profs.values():
            p.disable()
        bus.close()
        node.close()
    report: dict[str, Any] = {"team": team, "handled": node.handled}
    if profile_dir:
        for name, p in profs.items():
            p.dump_stats(Path(profile_dir) / f"{team}-{name}.prof")
            report[f"profile_{name}"] = _profile_text(p, 30)
    results.put(report)


def nats_server_cpu() -> float | None:
    """CPU seconds used so far by the local nats-server (from /proc), if it can be found."""
    try:
        found = subprocess.run(
            ["pidof", "nats-server"], capture_output=True, text=True, timeout=5, check=False
        )
        pids = found.stdout.split()
        if not pids:
            return None
        total = 0.0
        for p in pids:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def run_nats(
    tmp: Path, url: str, phases: list[Phase], synchronous: str, profile: bool, budget_at: float
) -> dict[str, Any]:
    from accord.buses.nats import NatsBus

    pid = f"bench-choreo-{os.getpid()}"
    dbs = {t: tmp / f"nats-{t}.db" for t in TEAMS}
    admin = NatsBus(url)
    admin.delete_stream(pid)
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    results = ctx.Queue()
    # kept referenced here until the children are gone
    shared = {
        t: {
            "commands": ctx.Queue(),
            "ready": ctx.Event(),
            "stop": stop,
            "completed": ctx.Value("q", 0),
            "cpu": ctx.Value("d", 0.0),
            "results": results,
        }
        for t in TEAMS
    }
    procs = []
    out: dict[str, Any] = {}
    try:
        for t in TEAMS:
            p = ctx.Process(
                target=node_main,
                args=(pid, t, str(dbs[t]), url, synchronous, shared[t],
                      str(tmp) if profile else None),
                name=f"node-{t}",
            )  # fmt: skip
            p.start()
            procs.append(p)
        for t, p in zip(TEAMS, procs, strict=True):
            if not shared[t]["ready"].wait(60):
                raise RuntimeError(f"{p.name} did not come up (exit code {p.exitcode})")
        initiator = shared[TEAMS[0]]
        for phase in phases:
            name, n = phase[0], phase[1]
            if _skip(name, budget_at):
                continue
            target = initiator["completed"].value + n
            by_team0 = {t: s["cpu"].value for t, s in shared.items()}
            c0 = sum(by_team0.values())
            s0 = nats_server_cpu()
            initiator["commands"].put(phase)
            deadline = time.monotonic() + PHASE_TIMEOUT_S
            while initiator["completed"].value < target:
                if time.monotonic() > deadline or any(not p.is_alive() for p in procs):
                    got = initiator["completed"].value
                    raise RuntimeError(f"nats: {name}: {got}/{target} cases")
                time.sleep(0.005)
            time.sleep(2 * POLL_S)  # let the other node's loop publish its CPU figure
            by_team1 = {t: s["cpu"].value for t, s in shared.items()}
            c1 = sum(by_team1.values())
            s1 = nats_server_cpu()
            if not name.startswith("warmup"):
                res = analyse(dbs, name, n)
                server = None if s0 is None or s1 is None else s1 - s0
                out[name] = res | _cpu_fields(res, c1 - c0, server) | _load(phase)
                # each node's CPU over the phase in cores: a node near 1.0 is bound by its GIL
                out[name]["cores_by_node"] = {
                    t: (by_team1[t] - by_team0[t]) / max(res["wall_s"], 1e-9) for t in shared
                }
        stop.set()
        out["nodes"] = [results.get(timeout=60) for _ in procs]
    finally:
        stop.set()
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
                p.join(5)
        admin.delete_stream(pid)
        admin.close()
    return out


# --------------------------------------------------------------------------------------------
# raw JetStream
# --------------------------------------------------------------------------------------------


def sample_payload() -> bytes:
    """A real handoff event, as the relay publishes it (CloudEvents JSON)."""
    import orjson

    from accord.events import Event, EventType

    e = Event(
        id="raw-000001#ta#4",
        type=EventType.HANDOFF,
        case="raw-000001",
        process="bench-choreo@1",
        at=time.time(),
        seq=4,
        step="b1",
        team="tb",
        actor="worker",
        data={"flow": "a1->b1", "from_step": "a1", "from_team": "ta", "to_step": "b1",
              "to_node": "b1", "to_team": "tb", "origin": ["a1"], "weight": "1",
              "case_data": {}},
        source="accord/node/ta",
    )  # fmt: skip
    return orjson.dumps(e.to_cloudevent() | {"source": "accord/node/ta"})


async def _raw_rates(url: str, seconds: float, payload: bytes) -> dict[str, Any]:
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    stream = f"BENCH_RAW_{os.getpid()}"
    subject = f"benchraw{os.getpid()}.x"
    with contextlib.suppress(Exception):
        await js.delete_stream(stream)
    await js.add_stream(name=stream, subjects=[subject], duplicate_window=120.0)
    out: dict[str, Any] = {"payload_bytes": len(payload), "server": nc.connected_server_version}
    try:
        i = 0
        t0 = time.perf_counter()
        while time.perf_counter() < t0 + seconds:
            for _ in range(50):
                await js.publish(subject, payload, headers={"Nats-Msg-Id": f"s{i}"})
                i += 1
        out["one_at_a_time_per_s"] = i / (time.perf_counter() - t0)
        j = 0
        t0 = time.perf_counter()
        while time.perf_counter() < t0 + seconds:
            await asyncio.gather(
                *(
                    js.publish(subject, payload, headers={"Nats-Msg-Id": f"p{k}"})
                    for k in range(j, j + RAW_WINDOW)
                )
            )
            j += RAW_WINDOW
        out["pipelined_per_s"] = j / (time.perf_counter() - t0)
        out["published"] = i + j
    finally:
        with contextlib.suppress(Exception):
            await js.delete_stream(stream)
        await nc.close()
    out["server"] = str(out["server"])
    return out


async def _raw_publisher(url: str, subject: str, seconds: float, payload: bytes) -> int:
    """Publish for ``seconds`` with RAW_WINDOW acknowledgements in flight; return how many."""
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    j = 0
    t0 = time.monotonic()
    try:
        while time.monotonic() < t0 + seconds:
            await asyncio.gather(
                *(
                    js.publish(subject, payload, headers={"Nats-Msg-Id": f"c{k}"})
                    for k in range(j, j + RAW_WINDOW)
                )
            )
            j += RAW_WINDOW
    finally:
        await nc.close()
    return j


async def _raw_consumer(
    url: str, subject: str, stream: str, total: Any, go: Any, got: Any
) -> float:
    """Receive and acknowledge every message, as NatsBus does (a durable push consumer with
    MAX_ACK_PENDING, one explicit ack per message, whatever arrived taken as one batch), until
    ``total`` (set once the publisher is done) have come; return when the last one did
    (time.monotonic)."""
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    from accord.buses.nats import MAX_ACK_PENDING

    nc = await nats.connect(url)
    js = nc.jetstream()
    config = ConsumerConfig(
        durable_name="raw", deliver_subject=f"_raw_deliver.{stream}",
        ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL, ack_wait=30.0,
        max_deliver=-1, max_ack_pending=MAX_ACK_PENDING, filter_subject=subject,
    )  # fmt: skip
    arrived: list[Any] = []
    signal = asyncio.Event()

    async def on_message(m: Any) -> None:
        arrived.append(m)
        signal.set()

    await js.subscribe(
        subject, durable="raw", stream=stream, config=config, manual_ack=True, cb=on_message
    )
    go.set()
    n = 0
    last = time.monotonic()
    try:
        while total.value < 0 or n < total.value:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(signal.wait(), timeout=0.5)
            signal.clear()
            msgs = arrived[:]
            arrived.clear()
            for m in msgs:
                await m.ack()
            if msgs:
                n += len(msgs)
                last = time.monotonic()
        got.value = n
    finally:
        await nc.close()
    return last


def raw_consumer_main(
    url: str, subject: str, stream: str, total: Any, go: Any, got: Any, end: Any
) -> None:
    """The consuming process of the publish->consume measurement."""
    from accord.choreo.live import tune_gc

    tune_gc()  # the same collector settings as the node processes
    end.value = asyncio.run(_raw_consumer(url, subject, stream, total, go, got))


def raw_publish_consume(url: str, seconds: float, payload: bytes) -> dict[str, Any]:
    """Pipelined publish->consume through plain JetStream: one process publishes with
    RAW_WINDOW acknowledgements in flight while another consumes (durable push consumer,
    explicit ack per message, as NatsBus), at the same time. Two processes, as the two nodes
    are. The rate is messages consumed from the first publish to the last message received."""
    import nats

    stream = f"BENCH_RAWPC_{os.getpid()}"
    subject = f"benchrawpc{os.getpid()}.x"

    async def admin(create: bool) -> None:
        nc = await nats.connect(url)
        js = nc.jetstream()
        with contextlib.suppress(Exception):
            await js.delete_stream(stream)
        if create:
            await js.add_stream(name=stream, subjects=[subject], duplicate_window=120.0)
        await nc.close()

    asyncio.run(admin(True))
    ctx = mp.get_context("spawn")
    total, got, end = ctx.Value("q", -1), ctx.Value("q", 0), ctx.Value("d", 0.0)
    go = ctx.Event()
    consumer = ctx.Process(
        target=raw_consumer_main, args=(url, subject, stream, total, go, got, end),
        name="raw-consumer",
    )  # fmt: skip
    consumer.start()
    try:
        if not go.wait(60):
            raise RuntimeError("raw consumer did not come up")
        t0 = time.monotonic()
        total.value = asyncio.run(_raw_publisher(url, subject, seconds, payload))
        consumer.join(60)
        if consumer.is_alive() or got.value < total.value:
            raise RuntimeError(f"raw consumer got {got.value}/{total.value}")
        return {"publish_consume_per_s": total.value / (end.value - t0), "consumed": got.value}
    finally:
        if consumer.is_alive():
            consumer.kill()
            consumer.join(5)
        asyncio.run(admin(False))


def raw_rates(url: str, seconds: float) -> dict[str, Any]:
    """Plain JetStream through nats-py: acked publishes one at a time and RAW_WINDOW in flight
    (the target's reference), and the pipelined publish->consume rate (for context)."""
    payload = sample_payload()
    out = asyncio.run(_raw_rates(url, seconds, payload))
    out |= raw_publish_consume(url, seconds, payload)
    return out


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------


def _profile_text(p: cProfile.Profile, top: int) -> str:
    buf = io.StringIO()
    pstats.Stats(p, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


def _machine() -> dict[str, Any]:
    import accord

    commit = None
    with contextlib.suppress(Exception):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            check=False,
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
            timeout=5,
        ).stdout.strip()
    dirty = None
    with contextlib.suppress(Exception):
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--", "src"],
                check=False,
                capture_output=True,
                text=True,
                cwd=Path(__file__).resolve().parents[1],
                timeout=5,
            ).stdout.strip()
        )
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "os": f"{platform.system()} {platform.release()}",
        "commit": commit,
        "src_uncommitted_changes": dirty,
        "accord": str(Path(accord.__file__).resolve().parent),
    }


def sizes(args: argparse.Namespace) -> dict[str, Any]:
    """Phase sizes: (cases, rate) for light, cases for saturated, passes, raw seconds."""
    if args.quick:
        sz = {"raw_s": 0.7, "light": (100, 25.0), "saturated": 400, "repeat": 1, "budget": 25,
              "warmup": 100}  # fmt: skip
    else:
        sz = {"raw_s": 1.5, "light": (200, 25.0), "saturated": 2000, "repeat": 2, "budget": 110,
              "warmup": 1000}  # fmt: skip
    if args.cases:
        sz["saturated"] = args.cases
    if args.repeat:
        sz["repeat"] = args.repeat
    return sz


def phases_for(sz: dict[str, Any]) -> list[Phase]:
    light_n, light_rate = sz["light"]
    out: list[Phase] = [("warmup", 20, 0.0, WINDOW), ("light", light_n, light_rate, 0)]
    # saturated, not reported: the first saturated pass straight after the light phase ran
    # 10-15% slower than the next one in every run, so each reported pass now follows one
    out.append(("warmup-saturated", sz["warmup"], 0.0, WINDOW))
    out += [(f"saturated{k + 1}", sz["saturated"], 0.0, WINDOW) for k in range(sz["repeat"])]
    return out


def best_saturated(res: dict[str, Any]) -> dict[str, Any]:
    runs = [v for k, v in res.items() if k.startswith("saturated")]
    return max(runs, key=lambda r: r["handoffs_per_s"])


def _f(x: float | None, spec: str = ".0f") -> str:
    return "-" if x is None or x != x else format(x, spec)  # x != x: NaN


def report(doc: dict[str, Any]) -> str:
    raw = doc["raw"]
    m = doc["machine"]
    la0, la1 = doc["loadavg_start"], doc["loadavg_end"]
    lines = [
        f"machine: {m['cpus']} CPUs ({m['cpu']}), {m['os']}, Python {m['python']}, "
        f"SQLite {m['sqlite']}, NATS {raw.get('server')}; load average "
        f"{la0[0]:.1f} at start, {la1[0]:.1f} at end (1 min)",
        f"accord from {m['accord']} (HEAD {m['commit']}"
        f"{', with uncommitted changes in src/' if m['src_uncommitted_changes'] else ''})",
        f"process: chain of {STEPS} automated no-op steps alternating teams ta/tb, "
        f"{STEPS - 1} handoffs per case; each node on its own SQLite file, WAL "
        f"synchronous={doc['synchronous']}; handler {doc['handler']}",
        "",
    ]
    head = (
        f"{'':34}{'handoffs/s':>11}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'CPU us/handoff':>16}{'handoffs':>10}  checks"
    )
    lines += [head, "-" * len(head)]
    for bus in ("memory", "nats"):
        res = doc.get(bus) or {}
        for k, r in res.items():
            if not isinstance(r, dict) or "checks_ok" not in r:
                continue
            load = (
                f"{r['rate_cases_per_s']:.0f} cases/s"
                if r["rate_cases_per_s"]
                else f"{r['window']} in flight"
            )
            tag = f"{bus} {k} ({load})"
            cpu = _f(r["cpu_us_per_handoff_nodes"])
            if r.get("cpu_us_per_handoff_server") is not None:
                cpu += f"+{r['cpu_us_per_handoff_server']:.0f}"
            ok = "ok" if r["checks_ok"] else (
                f"FAIL missing={r['missing']} twice={r['received_twice']} "
                f"not-in-inbox={r['not_in_inbox']} completed={r['cases_completed']}"
            )  # fmt: skip
            lines.append(
                f"{tag:34}{_f(r['handoffs_per_s']):>11}{_f(r['p50_ms'], '.2f'):>9}"
                f"{_f(r['p90_ms'], '.2f'):>9}{_f(r['p99_ms'], '.2f'):>9}"
                f"{_f(r['max_ms'], '.1f'):>9}{cpu:>16}{r['handoffs']:>10}  {ok}"
            )
    lines += [
        f"{'raw JetStream, 1 at a time':34}{_f(raw['one_at_a_time_per_s']):>11}"
        f"   acked publishes/s ({raw['payload_bytes']} B + Nats-Msg-Id, nats-py)",
        f"{f'raw JetStream, {RAW_WINDOW} in flight':34}{_f(raw['pipelined_per_s']):>11}",
        f"{'raw JetStream, publish->consume':34}{_f(raw['publish_consume_per_s']):>11}"
        f"   messages/s, {RAW_WINDOW} publishes in flight, consumed and acked by another "
        "process",
        "raw rates: the better 100-in-flight acked-publish pass of "
        + " / ".join(_f(r["pipelined_per_s"]) for r in doc["raw_runs"])
        + " (before / after the bus phases)",
        "",
        "CPU us/handoff: node processes (+ nats-server), all threads, during the phase; the light",
        "phases include the nodes' 1 ms idle polling. memory: the one process running both nodes.",
    ]
    busy = [
        f"  {k}: " + ", ".join(f"{t} {c:.2f}" for t, c in r["cores_by_node"].items())
        for k, r in (doc.get("nats") or {}).items()
        if isinstance(r, dict) and "cores_by_node" in r and k.startswith("saturated")
    ]
    if busy:
        lines += ["CPU of each NATS node process in cores (1.00: bound by its GIL):", *busy]
    lines.append("")
    for name, verdict in doc["targets"].items():
        lines.append(f"target {name}: {verdict['text']}  [{'MET' if verdict['met'] else 'MISSED'}]")
    return "\n".join(lines)


def targets(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    nats = doc.get("nats")
    raw = doc["raw"]["pipelined_per_s"]
    consume = doc["raw"]["publish_consume_per_s"]
    if nats:
        sat = best_saturated(nats)
        share = sat["handoffs_per_s"] / raw
        out["throughput"] = {
            "met": share >= TARGET_SHARE_OF_RAW and sat["checks_ok"],
            "text": f"NATS {sat['handoffs_per_s']:.0f} handoffs/s = {share:.1%} of the pipelined "
            f"raw acked-publish rate {raw:.0f}/s (need >= {TARGET_SHARE_OF_RAW:.0%} = "
            f"{TARGET_SHARE_OF_RAW * raw:.0f}/s), durable on both sides; "
            f"{sat['handoffs_per_s'] / consume:.1%} of the publish->consume rate",
            "share": share,
            "share_of_publish_consume": sat["handoffs_per_s"] / consume,
        }
        light = nats["light"]
        out["latency"] = {
            "met": light["p50_ms"] < TARGET_P50_MS and light["p99_ms"] < TARGET_P99_MS,
            "text": f"NATS at light load: p50 {light['p50_ms']:.2f} ms (< {TARGET_P50_MS:g}), "
            f"p99 {light['p99_ms']:.2f} ms (< {TARGET_P99_MS:g})",
        }
        out["latency, saturated"] = {
            "met": sat["p50_ms"] < TARGET_P50_MS and sat["p99_ms"] < TARGET_P99_MS,
            "text": f"NATS with {WINDOW} cases in flight: p50 {sat['p50_ms']:.1f} ms, "
            f"p99 {sat['p99_ms']:.1f} ms",
        }
    mem = doc.get("memory")
    if mem:
        light = mem["light"]
        out["latency, memory bus"] = {
            "met": light["p50_ms"] < TARGET_P50_MS and light["p99_ms"] < TARGET_P99_MS,
            "text": f"memory bus at light load: p50 {light['p50_ms']:.2f} ms, "
            f"p99 {light['p99_ms']:.2f} ms",
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run, < 40 s)")
    ap.add_argument("--json", metavar="FILE", help="write every result to FILE")
    ap.add_argument("--nats", default=NATS_URL, help=f"NATS URL (default {NATS_URL})")
    ap.add_argument("--cases", type=int, default=None, help="cases per saturated run")
    ap.add_argument("--repeat", type=int, default=None, help="saturated passes (best is kept)")
    ap.add_argument("--synchronous", default="NORMAL", choices=["NORMAL", "FULL"])
    ap.add_argument("--bus", choices=["memory", "nats", "both"], default="both")
    ap.add_argument("--dir", default=None, help="keep the databases (and profiles) in DIR")
    ap.add_argument(
        "--profile", action="store_true", help="cProfile and print the top functions (memory: "
        "the driver in the saturated runs; nats: each node's loop and bus handler threads, "
        "whole run)"
    )  # fmt: skip
    args = ap.parse_args(argv)
    from accord.choreo.live import tune_gc

    # this process runs the memory bus's nodes and the raw publishers: the collector settings
    # of `accord node` here too, as in every node and raw consumer process
    tune_gc()
    sz = sizes(args)
    phases = phases_for(sz)
    t_start = time.monotonic()
    budget_at = t_start + sz["budget"]
    tmp = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="accord-choreo-"))
    tmp.mkdir(parents=True, exist_ok=True)
    for old in tmp.glob("*.db*"):
        old.unlink()
    doc: dict[str, Any] = {
        "machine": _machine(),
        "loadavg_start": os.getloadavg(),
        "synchronous": args.synchronous,
        "handler": (
            "on the handler pool, queued after each arrival's commit"
            if os.environ.get("ACCORD_BENCH_HANDLER_POOL") == "1"
            else "inline: each step straight through, in its arrival's transaction"
        ),
        "sizes": {"phases": phases, "steps": STEPS, "window": WINDOW, "max_batch": MAX_BATCH},
    }
    try:
        print(f"raw JetStream rate ({sz['raw_s']}s each) ...", file=sys.stderr, flush=True)
        raws = [raw_rates(args.nats, sz["raw_s"])]
        if args.bus in ("memory", "both"):
            print("memory bus (both nodes, one thread) ...", file=sys.stderr, flush=True)
            doc["memory"] = run_memory(tmp, phases, args.synchronous, args.profile, budget_at)
        if args.bus in ("nats", "both"):
            print("NATS (one process per node) ...", file=sys.stderr, flush=True)
            doc["nats"] = run_nats(
                tmp, args.nats, phases, args.synchronous, args.profile, budget_at
            )
            print("raw JetStream rate again ...", file=sys.stderr, flush=True)
            raws.append(raw_rates(args.nats, sz["raw_s"]))
        # the reference is the better of the raw measurements before and after the NATS phases
        # (a load spike on a shared machine must not lower the bar)
        doc["raw_runs"] = raws
        doc["raw"] = max(raws, key=lambda r: float(r["pipelined_per_s"]))
    finally:
        if not args.dir:
            shutil.rmtree(tmp, ignore_errors=True)
    doc["loadavg_end"] = os.getloadavg()
    doc["targets"] = targets(doc)
    doc["elapsed_s"] = time.monotonic() - t_start
    print(report(doc))
    print(f"\n(run took {doc['elapsed_s']:.0f}s)")
    if args.profile:
        for bus in ("memory", "nats"):
            res = doc.get(bus) or {}
            if res.get("profile"):
                print(f"\n--- cProfile, {bus} bus driver (saturated runs) ---\n{res['profile']}")
            for r in res.get("nodes", []):
                for k in sorted(k for k in r if k.startswith("profile_")):
                    if k in r:
                        print(f"\n--- cProfile, node {r['team']} {k[8:]} thread ---\n{r[k]}")
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2, default=str) + "\n")
    failed = [
        f"{bus} {k}"
        for bus in ("memory", "nats")
        for k, v in (doc.get(bus) or {}).items()
        if isinstance(v, dict) and "checks_ok" in v and not v["checks_ok"]
    ]
    if failed:
        print(f"\nCHECKS FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
