"""Synthetic people in the negotiation protocol (and the hub's ruling, in central runs).

When work on a step finds a problem caused by an earlier step, the scenario's ``issues`` say how
often. Centrally, the hub rules on it (after its response time). Choreographed, the teams
negotiate: the team at fault accepts or counters after its response time, the raising team takes
a counter or counters back, and past the rounds or the deadline the process owner rules.
Everything they do goes through the engines as kernel actions, so every message of the
negotiation is an event in the log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from accord.events import Event, EventType
from accord.kernel.scope import HUB
from accord.sim.scenario import IssueScenario

if TYPE_CHECKING:
    from accord.sim.runner import Simulation

ACTOR = "operator:sim"


class Negotiators:
    """Reacts to issue events on behalf of every team's people."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.raising: dict[str, str] = {}  # task -> member who raised an issue on it
        self.blocked: dict[str, tuple[str, str]] = {}  # issue -> (task, member)
        self.spec: dict[str, IssueScenario] = {}
        self.tries: dict[str, int] = {}
        self.answers = 0

    def maybe_raise(self, task_id: str, step: str, member: str) -> bool:
        """At the end of a piece of work: did the member find a problem upstream? If so the
        work is held (the member moves on) until the issue is settled."""
        spec = self.sim.sc.issues.get(step)
        if spec is None or spec.rate <= 0:
            return False
        n = self.tries[task_id] = self.tries.get(task_id, 0) + 1
        if self.sim.rng("issue", task_id, n).random() >= spec.rate:
            return False
        engine = self.sim.engine_of(task_id)
        self.raising[task_id] = member
        raised = self.sim._call(
            lambda: engine.raise_issue(
                task_id, member, at_fault=spec.at_fault, proposal=spec.proposal
            )
        )
        if not raised:
            self.raising.pop(task_id, None)
        return raised

    def react(self, e: Event) -> None:
        """Schedule the people's answers to negotiation events."""
        t = e.type
        data = e.data
        issue = str(data.get("issue") or "")
        if not issue:
            return
        if t is EventType.ISSUE_RAISED:
            spec = self.sim.sc.issues.get(str(e.step or ""))
            if spec is not None:
                self.spec[issue] = spec
            if e.task and e.task in self.raising:
                self.blocked[issue] = (e.task, self.raising.pop(e.task))
            if data.get("to_team") == HUB and self.sim.world.main.scope is None:
                self._later(issue, "rule", e.case, HUB, str(data.get("proposal")))
            else:
                self._later(issue, "answer", e.case, str(data.get("to_team")), "respondent")
        elif t is EventType.ISSUE_COUNTERED:
            who = "raiser" if data.get("by") == "respondent" else "respondent"
            self._later(issue, "answer", e.case, str(data.get("to_team") or ""), who)
        elif t is EventType.ISSUE_ESCALATED:
            owner = str(data.get("to_team") or "")
            self._later(issue, "rule", e.case, owner, str(data.get("proposal")))
        elif t is EventType.ISSUE_RULED and self.sim.world.main.scope is not None:
            return  # choreographed: the raising team carries the ruling out (resolved next)
        elif t in (EventType.ISSUE_RESOLVED, EventType.ISSUE_RULED) and issue in self.blocked:
            task_id, member = self.blocked.pop(issue)
            if data.get("action") == "waive":
                self.sim.resume_blocked(task_id, member)

    def _later(self, issue: str, what: str, case_id: str, team: str, arg: str) -> None:
        spec = self.spec.get(issue)
        self.answers += 1
        r = self.sim.rng("respond", issue, self.answers)
        delay = spec.response.sample(r) if spec is not None else r.expovariate(1 / 7200.0)
        self.sim.at(self.sim.clock.now() + delay, "negotiate", (what, case_id, issue, team, arg))

    def act(self, what: str, case_id: str, issue: str, team: str, arg: str) -> None:
        """The moment a person answers (or the owner, or the hub, rules)."""
        engine = self.sim.world.engine_for_team(team)
        if what == "rule":
            action = arg if arg in ("rework", "waive", "cancel") else "rework"
            self.sim._call(lambda: engine.rule_issue(case_id, issue, ACTOR, action))
            return
        spec = self.spec.get(issue)
        counter_rate = spec.counter_rate if spec is not None else 0.2
        r = self.sim.rng("answer", issue, self.answers)
        if arg == "respondent":  # the team at fault: accept, or counter with "waive"
            accept = r.random() >= counter_rate
            proposal = "waive"
        else:  # the raising team, on a counter: take it half the time, else insist
            accept = r.random() < 0.5
            proposal = spec.proposal if spec is not None else "rework"
        self.sim._call(lambda: engine.answer_issue(case_id, issue, ACTOR, accept, proposal))
