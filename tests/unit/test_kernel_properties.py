"""Property tests: random valid block-structured processes, driven in random orders.

A process is built recursively from sequences, parallel blocks, exclusive blocks (conditions on
a generated field, with a default), inclusive blocks (conditions on a generated field, with a
default) and loops with a bounded rework counter. Every parallel/inclusive block ends with a
marker task right after its join, so "the join fired once per entry" is a count of markers.

The driver behaves like a real one: it delivers each scheduled timer once (cancelled ones never),
completes a random ready task with random data for the decision fields, sometimes fails an
automated task (never past its retries), claims, repeats a completion, or pauses and resumes.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from accord.events import Event, EventType
from accord.kernel import (
    AnyAction,
    CancelTimer,
    CaseState,
    CaseStatus,
    ClaimTask,
    CompleteTask,
    FailTask,
    FireTimer,
    PauseCase,
    ResumeCase,
    ScheduleTimer,
    StartCase,
    TaskStatus,
    Transition,
    advance,
)
from accord.kernel.state import state_from_json
from accord.model import ProcessDefinition, StepKind
from accord.model.loader import from_document

TEAMS: dict[str, dict[str, Any]] = {
    "red": {"members": ["r1", "r2"]},
    "blue": {"members": ["b1"]},
    "green": {"members": ["g1", "g2"]},
}
TEAM_IDS = list(TEAMS)
MAX_ATTEMPTS = 3
MAX_ACTIONS = 400  # a run is cut short after this many actions (loops are bounded well below)

# -- random structured processes --------------------------------------------------------------

Block = tuple[Any, ...]
LEAVES = st.sampled_from(["human", "human", "automated", "timer", "sla"]).map(lambda k: ("task", k))


def _extend(children: st.SearchStrategy[Block]) -> st.SearchStrategy[Block]:
    many = st.lists(children, min_size=2, max_size=3)
    return st.one_of(
        many.map(lambda bs: ("seq", bs)),
        many.map(lambda bs: ("par", bs)),
        many.map(lambda bs: ("xor", bs)),
        many.map(lambda bs: ("or", bs)),
        st.tuples(children, st.integers(1, 3)).map(lambda t: ("loop", t[0], t[1])),
    )


BLOCKS = _extend(st.recursive(LEAVES, _extend, max_leaves=12))


def _extend_concurrent(children: st.SearchStrategy[Block]) -> st.SearchStrategy[Block]:
    """Only the shapes that make joins interact: nested parallel/inclusive blocks and loops."""
    many = st.lists(children, min_size=2, max_size=3)
    return st.one_of(
        many.map(lambda bs: ("par", bs)),
        many.map(lambda bs: ("or", bs)),
        many.map(lambda bs: ("seq", bs)),
        st.tuples(children, st.integers(1, 3)).map(lambda t: ("loop", t[0], t[1])),
    )


JOIN_HEAVY = _extend_concurrent(st.recursive(LEAVES, _extend_concurrent, max_leaves=10))


@dataclass
class Compiled:
    """The document built from a block tree, and what the properties need to know about it."""

    doc: dict[str, Any]
    choices: dict[str, int] = field(default_factory=dict)  # xor field -> number of branches
    subsets: dict[str, int] = field(default_factory=dict)  # inclusive field -> conditional count
    flags: list[str] = field(default_factory=list)  # loop "again?" fields
    counters: dict[str, str] = field(default_factory=dict)  # loop check step -> counter field
    blocks: list[tuple[str, str]] = field(default_factory=list)  # (split, marker after join)


class _Compiler:
    def __init__(self) -> None:
        self.steps: dict[str, dict[str, Any]] = {}
        self.n = 0
        self.out = Compiled({})

    def new(self, prefix: str, **body: Any) -> str:
        self.n += 1
        sid = f"{prefix}{self.n}"
        self.steps[sid] = {"id": sid, **body, "next": []}
        return sid

    def team(self) -> str:
        return TEAM_IDS[self.n % len(TEAM_IDS)]

    def link(self, exit_: tuple[str, dict[str, Any]], target: str) -> None:
        source, template = exit_
        self.steps[source]["next"].append({**template, "to": target})

    def compile(self, block: Block) -> tuple[str, tuple[str, dict[str, Any]]]:
        kind = block[0]
        if kind == "task":
            sub = block[1]
            team = self.team()
            if sub == "automated":
                sid = self.new(
                    "auto",
                    type="automated",
                    team=team,
                    handler="pkg.mod:run",
                    retry={"max_attempts": MAX_ATTEMPTS, "backoff": "PT1M"},
                )
            elif sub == "timer":
                sid = self.new("wait", type="timer", wait="PT30M")
            elif sub == "sla":
                other = TEAM_IDS[(TEAM_IDS.index(team) + 1) % len(TEAM_IDS)]
                sid = self.new("sla", type="human", team=team, sla="PT1H", escalate_to=other)
            else:
                sid = self.new("task", type="human", team=team)
            return sid, (sid, {})
        if kind == "seq":
            entry, exit_ = self.compile(block[1][0])
            for child in block[1][1:]:
                e, x = self.compile(child)
                self.link(exit_, e)
                exit_ = x
            return entry, exit_
        if kind == "loop":
            body, k = block[1], block[2]
            merge = self.new("loop", type="exclusive")
            entry, exit_ = self.compile(body)
            self.link((merge, {}), entry)
            check = self.new("check", type="human", team=self.team())
            gate = self.new("again", type="exclusive")
            counter, flag = f"c{gate}", f"l{gate}"
            self.out.counters[check] = counter
            self.out.flags.append(flag)
            self.link(exit_, check)
            self.link((check, {}), gate)
            self.link((gate, {"when": f"{counter} < {k} and {flag}"}), merge)
            return merge, (gate, {"default": True})
        children = block[1]
        if kind == "xor":
            split = self.new("xor", type="exclusive")
            fld = f"d{split}"
            self.out.choices[fld] = len(children)
            merge = self.new("xmerge", type="exclusive")
            for i, child in enumerate(children):
                entry, exit_ = self.compile(child)
                last = i == len(children) - 1
                self.link((split, {"default": True} if last else {"when": f"{fld} == {i}"}), entry)
                self.link(exit_, merge)
            return split, (merge, {})
        gw = "parallel" if kind == "par" else "inclusive"
        split = self.new(f"{kind}split", type=gw)
        join = self.new(f"{kind}join", type=gw)
        fld = f"o{split}"
        if kind == "or":
            self.out.subsets[fld] = len(children) - 1
        for i, child in enumerate(children):
            entry, exit_ = self.compile(child)
            template: dict[str, Any] = {}
            if kind == "or":
                last = i == len(children) - 1
                template = {"default": True} if last else {"when": f"{i} in {fld}"}
            self.link((split, template), entry)
            self.link(exit_, join)
        after = self.new(f"{kind}after", type="human", team=self.team())
        self.link((join, {}), after)
        self.out.blocks.append((split, after))
        return split, (after, {})


def compile_process(block: Block) -> Compiled:
    c = _Compiler()
    start = c.new("start", type="start")
    entry, exit_ = c.compile(block)
    c.link((start, {}), entry)
    end = c.new("end", type="end")
    c.link(exit_, end)
    steps = [{k: v for k, v in body.items() if k != "next" or v} for body in c.steps.values()]
    c.out.doc = {"process": "random", "teams": TEAMS, "steps": steps}
    return c.out


# -- the driver -------------------------------------------------------------------------------


def decision_data(comp: Compiled, rnd: random.Random) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for fld, n in comp.choices.items():
        data[fld] = rnd.randrange(n)
    for fld, n in comp.subsets.items():
        data[fld] = sorted(rnd.sample(range(n), rnd.randint(0, n)))
    for fld in comp.flags:
        data[fld] = rnd.random() < 0.6
    return data


@dataclass
class Run:
    d: ProcessDefinition
    comp: Compiled
    actions: list[AnyAction] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    states: list[bytes] = field(default_factory=list)
    state: CaseState | None = None
    pending: dict[str, float] = field(default_factory=dict)  # timers the driver will deliver
    clock: float = 0.0

    def do(self, action: AnyAction) -> Transition:
        before = self.state.to_json() if self.state is not None else None
        tr = advance(self.d, self.state, action)
        if self.state is not None:
            assert self.state.to_json() == before, "advance changed its input state"
        raw = tr.state.to_json()
        back = state_from_json(raw)
        assert back == tr.state, "state does not survive to_json/state_from_json"
        assert back.to_json() == raw
        for cmd in tr.commands:
            if isinstance(cmd, ScheduleTimer):
                self.pending[cmd.timer_id] = cmd.due
            elif isinstance(cmd, CancelTimer):
                self.pending.pop(cmd.timer_id, None)
        self.actions.append(action)
        self.events.extend(tr.events)
        self.states.append(raw)
        self.state = back  # carry on from the stored form, as a store-backed engine would
        self.check_live()
        return tr

    def fire_next_timer(self) -> None:
        tid = min(self.pending, key=lambda k: (self.pending[k], k))
        self.clock = max(self.clock, self.pending.pop(tid))
        self.do(FireTimer(self.clock, timer_id=tid))

    def check_live(self) -> None:
        """Never silently stuck: a running case always waits on something that will happen."""
        s = self.state
        assert s is not None
        assert [e.seq for e in self.events] == list(range(1, len(self.events) + 1))
        assert s.incident is None, f"unexpected incident {s.incident}"
        assert s.parked == []
        if s.status.ended:
            return
        active = s.active_tasks()
        assert active, f"{s.status} case with no active task (joins {s.joins})"
        for t in active:
            assert t.status is not TaskStatus.FAILED
            if t.status is TaskStatus.WAITING:
                # A timer is live if the driver will deliver it, or if it was delivered while
                # the case was paused and the kernel deferred it to the resume.
                live = [
                    tm
                    for tm in s.timers.values()
                    if tm.task == t.id and (tm.id in self.pending or tm.id in s.deferred)
                ]
                assert live, f"{t.id} waits for a timer that will never be delivered"


def drive(comp: Compiled, rnd: random.Random) -> Run:
    d = from_document(comp.doc)
    run = Run(d, comp)
    data = decision_data(comp, rnd)
    data.update(dict.fromkeys(comp.counters.values(), 0))
    run.do(StartCase(0.0, case_id="r1", data=data))
    last_completion: CompleteTask | None = None
    for _ in range(MAX_ACTIONS):
        s = run.state
        assert s is not None
        if s.status.ended:
            break
        run.clock += rnd.choice([0, 1, 30, 600])
        if s.status is CaseStatus.PAUSED:
            if run.pending and rnd.random() < 0.5:
                run.fire_next_timer()  # deferred until the resume
            else:
                run.do(ResumeCase(run.clock, "operator:o"))
            continue
        workable = [
            t for t in s.active_tasks() if t.status in (TaskStatus.READY, TaskStatus.CLAIMED)
        ]
        roll = rnd.random()
        if roll < 0.03:
            run.do(PauseCase(run.clock, "operator:o", reason="look"))
        elif roll < 0.08 and last_completion is not None:
            # a redelivered completion: acknowledged, with no second effect
            tr = run.do(last_completion)
            assert tr.events == []
            assert tr.commands == []
        elif run.pending and (not workable or roll < 0.3):
            run.fire_next_timer()
        elif workable:
            t = rnd.choice(workable)
            if t.kind is StepKind.AUTOMATED and t.attempt < MAX_ATTEMPTS and rnd.random() < 0.3:
                run.do(FailTask(run.clock, "worker:w", task_id=t.id, error="flaky"))
                continue
            if t.kind is StepKind.HUMAN and t.status is TaskStatus.READY and rnd.random() < 0.3:
                member = rnd.choice(TEAMS[str(t.team)]["members"])
                run.do(ClaimTask(run.clock, member, task_id=t.id, member=member))
                continue
            out = decision_data(comp, rnd)
            if t.step in comp.counters:
                counter = comp.counters[t.step]
                out[counter] = s.data[counter] + 1
            last_completion = CompleteTask(run.clock, t.assignee, task_id=t.id, data=out)
            run.do(last_completion)
        else:
            break
    return run


def check_run(run: Run) -> None:
    s = run.state
    assert s is not None
    if s.status is not CaseStatus.COMPLETED:
        # Only a run cut short may leave the case open, and then it waits on live work.
        assert len(run.actions) > MAX_ACTIONS
        return
    # Tokens conserved: nothing is left behind once the case has completed.
    assert s.active_tasks() == []
    assert s.joins == {}
    assert s.parked == []
    assert s.timers == {}
    assert s.deferred == []
    assert run.events[-1].type is EventType.CASE_COMPLETED
    assert sum(e.type is EventType.CASE_COMPLETED for e in run.events) == 1
    # No task completes twice.
    done = Counter(e.task for e in run.events if e.type is EventType.TASK_COMPLETED)
    assert all(n == 1 for n in done.values()), done
    assert set(done) == {t.id for t in s.tasks.values() if t.status is TaskStatus.COMPLETED}
    # Every parallel/inclusive join fired exactly once per entry into its block.
    decided = Counter(e.step for e in run.events if e.type is EventType.GATEWAY_DECIDED)
    for split, after in run.comp.blocks:
        made = sum(1 for t in s.tasks.values() if t.step == after)
        assert made == decided[split], f"{split} entered {decided[split]}x, {after} made {made}x"


def check_replay(run: Run) -> None:
    state: CaseState | None = None
    events: list[Event] = []
    for action, raw in zip(run.actions, run.states, strict=True):
        tr = advance(run.d, state, action)
        assert tr.state.to_json() == raw
        events.extend(tr.events)
        state = tr.state
    assert events == run.events


# -- the properties ---------------------------------------------------------------------------

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(BLOCKS, st.integers(0, 2**32))
def test_random_processes_run_to_completion_and_replay(block: Block, seed: int) -> None:
    comp = compile_process(block)
    run = drive(comp, random.Random(seed))
    event(f"steps: {len(comp.doc['steps']) // 10 * 10}+")
    event(f"actions: {len(run.actions) // 25 * 25}+")
    event(f"status: {run.state.status.value if run.state else None}")
    check_run(run)
    check_replay(run)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(BLOCKS, st.integers(0, 2**32))
def test_the_same_random_run_twice_is_identical(block: Block, seed: int) -> None:
    comp = compile_process(block)
    a = drive(comp, random.Random(seed))
    b = drive(comp, random.Random(seed))
    assert a.states == b.states
    assert a.events == b.events


@SETTINGS
@given(JOIN_HEAVY, st.integers(0, 2**32))
def test_joins_nested_in_joins_and_loops(block: Block, seed: int) -> None:
    """Inclusive joins around, inside and beside other joins, in loops: where joins go wrong."""
    comp = compile_process(block)
    run = drive(comp, random.Random(seed))
    check_run(run)
    check_replay(run)
