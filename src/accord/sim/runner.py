"""Run cases with synthetic team members on virtual time, through the real engine.

The simulator is only another driver of the engine: it starts cases as the scenario's arrivals
say, lets synthetic members work the tasks the hub gives them (or claim from their team's queue
where the team pulls), runs automated steps' real handlers, and fires timers, jumping the
virtual clock from one due moment to the next. Nothing here decides routing; the kernel does.
"""

from __future__ import annotations

import contextlib
import heapq
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from accord.central.engine import Engine
from accord.central.jobs import HandlerResult
from accord.choreo.node import sender_of
from accord.clock import VirtualClock
from accord.errors import AccordError, CaseError
from accord.events import Event, EventType
from accord.kernel.graph import graph_of
from accord.kernel.state import ACTIVE, case_of_task
from accord.model.types import Member, ProcessDefinition, Step, StepKind, Team
from accord.sim.calendar import add_working, next_open
from accord.sim.hub import HubDesk
from accord.sim.negotiation import Negotiators
from accord.sim.people import decisions, finish
from accord.sim.scenario import Scenario
from accord.sim.worlds import CentralWorld, World

MAX_VIRTUAL_DAYS = 3650.0  # never simulate longer than this, whatever the horizon
HORIZON_FACTOR = 3.0  # default horizon: this many times the span of the arrivals ...
HORIZON_MIN_S = 30 * 86400.0  # ... and at least this long after the last arrival
OPERATOR_RESPONSE_S = 3600.0  # how long the synthetic operator takes to act on an incident
OPERATOR_MAX_TRIES = 3  # then the operator cancels the case rather than loop forever
Progress = Callable[[int, int], None]


def staffed(d: ProcessDefinition, scenario: Scenario) -> ProcessDefinition:
    """The definition with each team sized as the scenario says (synthetic members added)."""
    teams: dict[str, Team] = {}
    changed = False
    for tid, team in d.teams.items():
        size = scenario.team(tid).size
        members = list(team.members)
        if size is not None and size != len(members):
            changed = True
            roles = tuple(sorted({r for m in team.members for r in m.roles}))
            if size < len(members):
                members = members[:size]
            for k in range(len(members), size):
                members.append(Member(f"{tid}-{k + 1}", f"{team.name} {k + 1}", roles))
        teams[tid] = replace(team, members=tuple(members))
    return replace(d, teams=teams) if changed else d


@dataclass(slots=True)
class SimResult:
    """What a run did, besides its events (which the engine's store holds)."""

    cases: int
    completed: int
    ended: int
    virtual_s: float
    wall_s: float
    transitions: int
    unfinished: list[str] = field(default_factory=list)
    contract_violations: int = 0
    outside_sent: int = 0  # messages and signals from the world outside that were delivered
    outside_lost: int = 0  # ... and withdrawn, their catcher disarmed meanwhile
    horizon_s: float = 0.0  # the run stops this long after its first arrival ...
    horizon_reached: bool = False  # ... and it did, with cases still open


def default_horizon(arrivals: list[float]) -> float:
    """How long a run may take, counted from its first arrival: HORIZON_FACTOR times the span
    of the arrivals, and at least HORIZON_MIN_S past the last one. Work that goes on for ever
    (a cycle timer whose work an overloaded team never catches up with) stops there."""
    span = arrivals[-1] - arrivals[0] if arrivals else 0.0
    return max(HORIZON_FACTOR * span, span + HORIZON_MIN_S)


class Simulation:
    """One seeded run of ``cases`` cases of one process."""

    def __init__(
        self,
        engine: Engine | World,
        definition: ProcessDefinition,
        scenario: Scenario,
        clock: VirtualClock,
        *,
        cases: int,
        seed: int = 0,
        progress: Progress | None = None,
        prefix: str = "case",
        horizon: float | None = None,
    ) -> None:
        self.world = engine if isinstance(engine, World) else CentralWorld(engine, definition.id)
        self.horizon = horizon  # seconds of virtual time from the first arrival; None: default
        self.engine = self.world.main
        self.d = definition
        self.sc = scenario
        self.clock = clock
        self.cases = cases
        self.seed = seed
        self.progress = progress
        self.prefix = prefix
        self.heap: list[tuple[float, int, str, Any]] = []
        self._seq = 0
        self.queue: dict[str, deque[str]] = {m.id: deque() for t in definition.teams.values()
                                             for m in t.members}  # fmt: skip
        self.busy: dict[str, str | None] = dict.fromkeys(self.queue)
        self.team_of_member: dict[str, str] = {}
        self.teams_of_member: dict[str, list[str]] = {}
        for t in definition.teams.values():
            for m in t.members:
                self.team_of_member.setdefault(m.id, t.id)
                self.teams_of_member.setdefault(m.id, []).append(t.id)
        self.pool: dict[str, deque[str]] = {t: deque() for t in definition.teams}
        self.inbox: list[Event] = []
        self.ended = 0
        self.completed = 0
        self.transitions = 0
        self.timer_wake: float | None = None
        self.started = 0
        self.operator_visits: dict[str, int] = {}
        self.contract_violations = 0
        self.task_team: dict[str, str] = {}
        self.hub = HubDesk(self, scenario.hub) if scenario.hub is not None else None
        self.negotiators = Negotiators(self)
        self.task_engine: dict[str, Engine] = {}
        self.armed_cases: set[str] = set()
        self.outside_sent = 0  # messages and signals the world outside sent
        self.outside_lost = 0  # ... and those whose catcher no longer waited
        for e in self.world.distinct():
            e.listeners.append(self._listener(e))
        self.world.attach(self)

    # -- scheduling -----------------------------------------------------------------------------

    def at(self, t: float, kind: str, payload: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self.heap, (t, self._seq, kind, payload))

    def rng(self, *parts: object) -> random.Random:
        return random.Random(":".join(map(str, (self.seed, *parts))))

    def arrival_times(self) -> list[float]:
        r = self.rng("arrivals")
        t = self.clock.now()
        out = []
        for _ in range(self.cases):
            out.append(t)
            t += self.sc.interarrival.sample(r)
        return out

    # -- engine events --------------------------------------------------------------------------

    def _listener(self, engine: Engine) -> Callable[[list[Event]], None]:
        def hear(events: list[Event]) -> None:
            for e in events:
                if e.task and e.type is EventType.TASK_READY:
                    self.task_engine[e.task] = engine  # which runtime holds this task
            self.inbox.extend(events)

        return hear

    def _drain(self) -> None:
        while self.inbox:
            events, self.inbox = self.inbox, []
            for e in events:
                self._react(e)
        for engine in self.world.distinct():
            while engine.jobs:
                case_id, job = engine.take_job()
                r = self.rng("auto", job.task_id, job.attempt)
                duration = self.sc.step(job.step).duration.sample(r)
                self.at(self.clock.now() + duration, "handler", (engine, case_id, job))
        dues = [n for e in self.world.distinct() if (n := e.next_timer()) is not None]
        nxt = min(dues) if dues else None
        if nxt is not None and (self.timer_wake is None or nxt < self.timer_wake):
            self.timer_wake = nxt
            self.at(nxt, "timers")

    def _react(self, e: Event) -> None:
        t = e.type
        if e.task and e.team and t in (EventType.TASK_READY, EventType.TASK_ESCALATED):
            # the task lives at the node that wrote the event (a sub-process runs whole at the
            # node of its team, whoever does the steps inside it); centrally, at its team
            self.task_team[e.task] = self.task_team.get(e.task) or sender_of(e) or e.team
        if t in (EventType.CASE_COMPLETED, EventType.CASE_CANCELLED):
            self.ended += 1
            if t is EventType.CASE_COMPLETED:
                self.completed += 1
            if self.progress:
                self.progress(self.ended, self.cases)
        elif t is EventType.TASK_COMPLETED or t is EventType.TASK_FAILED:
            self.transitions += 1
        if t in (EventType.TASK_CLAIMED, EventType.TASK_ESCALATED, EventType.TASK_REASSIGNED):
            member = e.data.get("assignee") if t is EventType.TASK_CLAIMED else e.data.get("to")
            if e.data.get("notify"):
                return  # an escalation that only informs the target
            if member in self.queue and e.task:
                if self.busy.get(member) != e.task and e.task not in self.queue[member]:
                    self.queue[member].append(e.task)
                self.at(self.clock.now(), "member", member)
            elif t is not EventType.TASK_CLAIMED and e.team and e.task:
                self._pool(e.team, e.task)
        if t is EventType.CASE_STARTED and e.case not in self.armed_cases:
            self._arm_case(self.world.engine_for_event(e), e.case)
        waits = e.data.get("kind") in ("message", "signal")  # for the world outside: _arm
        if t is EventType.TASK_READY and e.task and not e.data.get("retry"):
            self._arm_task(e)  # (a retried task's catchers stayed armed)
        if t is EventType.TASK_READY and e.task and e.team and not waits:
            kind = e.data.get("kind")
            step = self.d.steps.get(e.step or "")
            team = self.d.teams.get(e.team)
            human = step is not None and step.kind.is_work and step.kind is not StepKind.AUTOMATED
            pulls = team is not None and team.assignment == "pull"
            hub = bool(e.data.get("hub", True))
            if human and kind != "automated" and (pulls or not hub):
                self._pool(e.team, e.task)
            elif human and kind != "automated" and self.hub is not None:
                self.hub.offer(e.task, e.team)
        elif t is EventType.TASK_RELEASED and e.task and e.team:
            self._pool(e.team, e.task)
        elif t is EventType.CASE_PAUSED and e.data.get("reason") == "incident":
            engine = self.world.engine_for_event(e)
            self.at(self.clock.now() + OPERATOR_RESPONSE_S, "operator", (engine, e.case, e.data))
        if self.hub is not None and t in _FREES and e.team:
            self.hub.freed(e.team)
        if t.value.startswith("issue."):
            self.negotiators.react(e)

    def _pool(self, team: str, task: str) -> None:
        if team in self.pool:
            self.pool[team].append(task)
            self.at(self.clock.now(), "pull", team)

    # -- synthetic people -----------------------------------------------------------------------

    def _member(self, member: str) -> None:
        if self.busy.get(member) is not None:
            return
        q = self.queue[member]
        while q:
            task_id = q.popleft()
            row = self.engine_of(task_id).tasks(
                status="claimed", assignee=member, case_id=case_of_task(task_id)
            )
            if not any(r.id == task_id for r in row):
                continue  # withdrawn, escalated or reassigned meanwhile
            step = next(r.step for r in row if r.id == task_id)
            team = self.sc.team(self.team_of_member.get(member))
            r = self.rng("work", task_id, member)
            start = next_open(self.clock.now(), team)
            end = add_working(start, self.sc.step(step).duration.sample(r), team)
            self.busy[member] = task_id
            self.at(start, "begin", (member, task_id))
            self.at(end, "finish", (member, task_id, step))
            return

    def resume_blocked(self, task_id: str, member: str) -> None:
        """An issue was waived: the member picks the held work up again."""
        if task_id not in self.queue[member]:
            self.queue[member].append(task_id)
        self.at(self.clock.now(), "member", member)

    # -- the world outside: messages and signals that catching events wait for ---------------

    def _arm_case(self, engine: Engine, case_id: str) -> None:
        """A case started: the process's own event sub-processes listen."""
        self.armed_cases.add(case_id)
        for sub in graph_of(self.d).event_subs.get(None, ()):
            self._arm(engine, case_id, sub, None)

    def _arm_task(self, e: Event) -> None:
        """A task became ready: the world outside may send what it waits for (a message or
        signal step), what its boundaries catch, and (a sub-process) what its event
        sub-processes catch."""
        if e.step is None or e.task is None:
            return
        # a multi-instance or loop step's boundaries watch the whole run: armed by the first
        first = not (e.data.get("instance") or {}).get("loopCounter")
        self._arm_step(self.world.engine_for_event(e), e.case, e.step, e.task, first)

    def _arm_step(self, engine: Engine, case_id: str, step_id: str, task: str, first: bool) -> None:
        step = self.d.steps.get(step_id)
        if step is None:
            return
        if step.kind in (StepKind.MESSAGE, StepKind.SIGNAL):
            self._arm(engine, case_id, step, task)
        g = graph_of(self.d)
        if first or (step.multi is None and step.loop is None):
            for b in g.boundaries.get(step.id, ()):
                self._arm(engine, case_id, b, task)
        if step.kind is StepKind.SUBPROCESS:
            for sub in g.event_subs.get(step.id, ()):
                self._arm(engine, case_id, sub, task)

    def _arm(self, engine: Engine, case_id: str, catcher: Step, task: str | None) -> None:
        """Draw whether, and when, the world outside sends what ``catcher`` waits for, armed
        now by ``task`` (None: by the case start) and schedule the delivery."""
        arrival = self.sc.arrival(self.d, catcher.id)
        if arrival is None or arrival.chance <= 0:
            return
        name = catcher.message if (catcher.kind is StepKind.MESSAGE or catcher.on == "message") \
            else catcher.signal  # fmt: skip
        if not name:
            return
        armed_by = task or case_id
        if catcher.kind is StepKind.MESSAGE or catcher.kind is StepKind.SIGNAL:
            r = self.rng(catcher.kind.value, armed_by)  # as before: one stream per wait
        else:
            r = self.rng("arrives", catcher.id, armed_by)
        if arrival.chance < 1 and r.random() >= arrival.chance:
            return
        delay = arrival.after.sample(r)
        self.at(self.clock.now() + delay, "catch", (engine, case_id, catcher, task))

    def _catch(self, engine: Engine, case_id: str, catcher: Step, task: str | None) -> None:
        """Deliver a message or signal from outside, if its catcher still waits for it; one
        whose catcher was disarmed meanwhile is withdrawn (not sent: it could be taken by
        another wait for the same name), and counted as lost, not as an error."""
        if not self._still_armed(engine, case_id, task):
            self.outside_lost += 1
            return
        if catcher.kind is StepKind.MESSAGE or catcher.on == "message":
            name = str(catcher.message)
            sent = self._call(lambda: engine.send_message(case_id, name, {}, actor="sim"))
        else:
            name = str(catcher.signal)
            sent = self._call(lambda: engine.send_signal(case_id, name, {}, actor="sim"))
        if sent:
            self.outside_sent += 1
        else:
            self.outside_lost += 1  # nobody waits for it any more (NotFound), or paused

    def _still_armed(self, engine: Engine, case_id: str, task: str | None) -> bool:
        try:
            state = engine.case(case_id)
        except CaseError:
            return False
        if state.status != "running":
            return False
        if task is None:
            return True
        t = state.tasks.get(task)
        if t is None:
            return False
        if t.status in ACTIVE:
            return True
        # a multi-instance or loop step's boundaries watch its whole run
        return t.loop is not None and any(x.loop == t.loop for x in state.active_tasks())

    def _begin(self, member: str, task_id: str) -> None:
        self._call(lambda: self.engine_of(task_id).start(task_id, member))

    def _finish(self, member: str, task_id: str, step_id: str) -> None:
        self.busy[member] = None
        if self.negotiators.maybe_raise(task_id, step_id, member):
            self.at(self.clock.now(), "member", member)  # the work is held; take the next
            return
        engine = self.engine_of(task_id)
        rng = self.rng("data", task_id)
        outcome = finish(
            engine, self.d, self.sc, task_id=task_id, step_id=step_id, member=member, rng=rng
        )
        if outcome.contract_violation:
            self.contract_violations += 1  # a handoff the contract refused (then corrected)
        self.at(self.clock.now(), "member", member)
        for team_id in self.teams_of_member.get(member, ()):
            if self.pool.get(team_id):
                self.at(self.clock.now(), "pull", team_id)

    def _pull(self, team_id: str) -> None:
        pool = self.pool[team_id]
        team = self.d.teams[team_id]
        hours = self.sc.team(team_id)
        for m in team.members:
            if not pool:
                return
            if self.busy.get(m.id) is not None or self.queue[m.id]:
                continue
            now = self.clock.now()
            opens = next_open(now, hours)
            if opens > now:
                self.at(opens, "pull", team_id)
                return
            while pool:
                task_id = pool.popleft()
                rows = self.engine_of(task_id).tasks(status="ready", case_id=case_of_task(task_id))
                row = next((x for x in rows if x.id == task_id), None)
                if row is None:
                    continue
                if row.role and row.role not in m.roles:
                    pool.append(task_id)
                    break
                if self._claim(task_id, m.id):
                    break

    def _operator(self, engine: Engine, case_id: str, incident: dict[str, Any]) -> None:
        """A synthetic operator: retry a failed task or resume; cancel after repeated incidents."""
        n = self.operator_visits.get(case_id, 0) + 1
        self.operator_visits[case_id] = n
        actor = "operator:sim"
        if n > OPERATOR_MAX_TRIES:
            self._call(lambda: engine.cancel(case_id, "operator gave up", actor))
        elif incident.get("task"):
            self._call(lambda: engine.retry(str(incident["task"]), actor))
        else:
            self._call(lambda: engine.resume(case_id, actor=actor))

    def _claim(self, task_id: str, member: str) -> bool:
        return self._call(lambda: self.engine_of(task_id).claim(task_id, member))

    def engine_of(self, task_id: str) -> Engine:
        """The engine that holds a task (the hub, or the node of the task's team)."""
        engine = self.task_engine.get(task_id)
        if engine is not None:
            return engine
        return self.world.engine_for_team(self.task_team.get(task_id))

    def _handler(self, engine: Engine, case_id: str, job: Any) -> None:
        result = engine.call_handler(case_id, job)
        spec = self.sc.step(job.step)
        failed = self.rng("fail", job.task_id, job.attempt).random() < spec.fail_rate
        code = spec.error(self.rng("error", job.task_id, job.attempt))
        if result.error is None and code is not None:
            # the handler raised the scenario's BpmnError(code)
            error = f"simulated BPMN error {code}"
            result = HandlerResult(job, case_id, error=error, retryable=False, code=code)
        elif result.error is None and failed:
            result = HandlerResult(job, case_id, error="simulated handler failure")
        elif result.error is None:
            # scenario branch draws apply after automated steps too
            chosen = decisions(self.d, self.sc, self.rng("auto-branch", job.task_id, job.attempt))
            result = replace(result, decisions=chosen)
        self._call(lambda: engine.apply_results([result]))

    def _call(self, fn: Callable[[], None]) -> bool:
        try:
            fn()
        except CaseError:
            return False  # the world moved on (task withdrawn, case paused): a person shrugs
        return True

    # -- the loop -------------------------------------------------------------------------------

    def resume_state(self) -> int:
        """Pick up a stored run: requeue held tasks; return how many cases already started."""
        started = len(self.engine.cases())
        for row in self.engine.tasks(status="claimed"):
            if row.assignee in self.queue:
                self.queue[row.assignee].append(row.id)
                self.at(self.clock.now(), "member", row.assignee)
        for row in self.engine.tasks(status="ready"):
            if row.kind == StepKind.AUTOMATED.value or not row.team:
                continue
            self.task_team[row.id] = row.team
            if not row.hub or self.d.teams[row.team].assignment == "pull":
                self._pool(row.team, row.id)
            elif self.hub is not None:
                self.hub.offer(row.id, row.team)  # its coordinator decision was lost: decide again
        # the world outside: what waited for it is armed again, from now (the same draws)
        for case in self.engine.cases(status="running"):
            self._arm_case(self.engine, case.id)
        for status in ("ready", "claimed", "waiting", "failed"):
            for row in self.engine.tasks(status=status):
                self._arm_step(self.engine, row.case_id, row.step, row.id, True)
        return started

    def run(self, resume: bool = False) -> SimResult:
        wall = time.perf_counter()
        t0 = self.clock.now()
        arrivals = self.arrival_times()
        first = 0
        if resume:
            first = self.resume_state()
            self.ended = sum(
                n
                for s, n in self.engine.store.count_cases().items()
                if s in ("completed", "cancelled")
            )
            self.completed = self.engine.store.count_cases().get("completed", 0)
        if first < self.cases:
            self.at(max(arrivals[first], self.clock.now()), "arrival", first)
        self._drain()
        span = self.horizon if self.horizon is not None else default_horizon(arrivals)
        span = min(span, MAX_VIRTUAL_DAYS * 86400.0)
        horizon = (arrivals[0] if arrivals else t0) + span
        reached = False
        while self.heap and self.ended < self.cases:
            t, _, kind, payload = heapq.heappop(self.heap)
            if t > horizon:
                reached = True  # the cases still open are reported open
                break
            self.clock.advance_to(t)
            if kind == "arrival":
                i = payload
                cid = f"{self.prefix}-{i + 1:06d}"
                with contextlib.suppress(AccordError):  # already started before a restart
                    self.world.start(cid, decisions(self.d, self.sc, self.rng("start", cid)))
                if i + 1 < self.cases:
                    self.at(max(arrivals[i + 1], t), "arrival", i + 1)
            elif kind == "member":
                self._member(payload)
            elif kind == "begin":
                self._begin(*payload)
            elif kind == "finish":
                self._finish(*payload)
            elif kind == "pull":
                self._pull(payload)
            elif kind == "handler":
                self._handler(*payload)
            elif kind == "operator":
                self._operator(*payload)
            elif kind == "timers":
                self.timer_wake = None
                for engine in self.world.distinct():
                    engine.fire_due_timers()
            elif kind == "deliver":
                payload()
            elif kind == "catch":
                self._catch(*payload)
            elif kind == "negotiate":
                self.negotiators.act(*payload)
            elif kind == "hub":
                assert self.hub is not None
                self.hub.decide(*payload)
            self._drain()
        open_cases = [
            c.id for c in self.engine.cases() if c.status not in ("completed", "cancelled")
        ]
        return SimResult(
            cases=self.cases,
            completed=self.completed,
            ended=self.ended,
            virtual_s=self.clock.now() - t0,
            wall_s=time.perf_counter() - wall,
            transitions=self.transitions,
            unfinished=open_cases,
            contract_violations=self.contract_violations,
            outside_sent=self.outside_sent,
            outside_lost=self.outside_lost,
            horizon_s=span,
            horizon_reached=reached,
        )


def run_meta(d: ProcessDefinition, cases: int, seed: int, scenario_file: str | None) -> str:
    """What identifies a run, so a restarted `accord run` knows it is resuming the same one."""
    return orjson.dumps(
        {"process": d.key, "cases": cases, "seed": seed, "scenario": scenario_file}
    ).decode()


_FREES = frozenset(
    {
        EventType.TASK_COMPLETED,
        EventType.TASK_FAILED,
        EventType.TASK_RELEASED,
        EventType.TASK_REASSIGNED,
        EventType.TASK_CANCELLED,
    }
)
