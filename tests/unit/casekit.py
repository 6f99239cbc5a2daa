"""Test helpers: build a small process from a YAML snippet and drive one case through the kernel.

Lives next to the unit tests (not in conftest) so test modules can import it by name.
"""

from __future__ import annotations

import copy
import textwrap
from typing import Any

from accord.events import Event, EventType
from accord.kernel import (
    AnyAction,
    CaseState,
    ClaimTask,
    Command,
    CompleteTask,
    FailTask,
    FireTimer,
    StartCase,
    Task,
    Timer,
    TimerKind,
    Transition,
    advance,
)
from accord.model import ProcessDefinition, loads

TEAMS = """\
teams:
  sales:
    members:
      - {id: sam, roles: [lead, rep]}
      - {id: ana, roles: [rep]}
      - {id: raj}
  ops:
    members:
      - {id: olga, roles: [lead]}
      - {id: oscar}
  it:
    members: [ivan]
"""


def build(steps: str, *, header: str = "", teams: str = TEAMS) -> ProcessDefinition:
    """A process ``t`` with the standard teams and the given YAML list of steps."""
    body = textwrap.indent(textwrap.dedent(steps).strip("\n"), "  ")
    return loads(f"process: t\n{textwrap.dedent(header)}{teams}steps:\n{body}\n")


class Case:
    """One case and everything that happened to it: a thin, recording driver of ``advance``."""

    def __init__(
        self,
        d: ProcessDefinition,
        data: dict[str, Any] | None = None,
        *,
        case_id: str = "c1",
        at: float = 0.0,
    ) -> None:
        self.d = d
        self.state: CaseState | None = None
        self.now = at
        self.actions: list[AnyAction] = []
        self.events: list[Event] = []
        self.commands: list[Command] = []
        self.last = self.do(StartCase(at, case_id=case_id, data=dict(data or {})))

    # -- driving ----------------------------------------------------------------------------

    def do(self, action: AnyAction) -> Transition:
        tr = advance(self.d, self.state, action)
        self.state = tr.state
        self.actions.append(action)
        self.events.extend(tr.events)
        self.commands.extend(tr.commands)
        self.now = max(self.now, action.at)
        self.last = tr
        return tr

    def at(self, at: float | None) -> float:
        return self.now + 1 if at is None else at

    def complete(
        self,
        step: str,
        data: dict[str, Any] | None = None,
        *,
        actor: str | None = None,
        at: float | None = None,
        decisions: dict[str, list[str]] | None = None,
    ) -> Transition:
        return self.do(
            CompleteTask(
                self.at(at),
                actor,
                task_id=self.task(step).id,
                data=dict(data or {}),
                decisions=dict(decisions or {}),
            )
        )

    def claim(self, step: str, member: str, *, at: float | None = None) -> Transition:
        return self.do(ClaimTask(self.at(at), member, task_id=self.task(step).id, member=member))

    def fail(
        self, step: str, error: str = "boom", *, retryable: bool = True, at: float | None = None
    ) -> Transition:
        t = self.task(step)
        return self.do(
            FailTask(self.at(at), "worker:w1", task_id=t.id, error=error, retryable=retryable)
        )

    def fire(self, timer: Timer | str, *, at: float | None = None) -> Transition:
        """Deliver FireTimer, by default at the timer's due time (or now, if that is later)."""
        tid = timer if isinstance(timer, str) else timer.id
        if at is None:
            known = self.s.timers.get(tid)
            at = max(known.due, self.now) if known else self.now + 1
        return self.do(FireTimer(at, timer_id=tid))

    # -- looking ----------------------------------------------------------------------------

    @property
    def s(self) -> CaseState:
        assert self.state is not None
        return self.state

    def tasks(self, step: str | None = None) -> list[Task]:
        """Active tasks (optionally of one step), in creation order."""
        return [t for t in self.s.active_tasks() if step is None or t.step == step]

    def task(self, step: str) -> Task:
        """The one active task of ``step``."""
        found = self.tasks(step)
        assert len(found) == 1, f"expected one active {step!r}, got {found}"
        return found[0]

    def active(self) -> list[str]:
        """Steps of the active tasks, sorted (repeated when a step has several)."""
        return sorted(t.step for t in self.s.active_tasks())

    def timers(self, kind: TimerKind | None = None) -> list[Timer]:
        return [t for t in self.s.timers.values() if kind is None or t.kind is kind]

    def timer(self, kind: TimerKind) -> Timer:
        (found,) = self.timers(kind)
        return found

    def of(self, etype: EventType, events: list[Event] | None = None) -> list[Event]:
        return [e for e in (self.events if events is None else events) if e.type is etype]

    def created(self, step: str) -> int:
        """How many tasks of ``step`` were ever created."""
        return sum(1 for t in self.s.tasks.values() if t.step == step)

    def snapshot(self) -> CaseState:
        return copy.deepcopy(self.s)


def types(tr: Transition) -> list[str]:
    """The event types of a transition, as their dotted names."""
    return [e.type.value for e in tr.events]


def steps_of(tr: Transition, etype: EventType) -> list[str | None]:
    return [e.step for e in tr.events if e.type is etype]
