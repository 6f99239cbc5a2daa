"""Scopes: sub-process instances, boundary events, event sub-processes, errors, escalations,
signals.

A sub-process instance is a task of kind ``subprocess`` (status WAITING while it runs). Tokens
and tasks inside it carry its task id as their ``scope``; it completes, and leaves by its own
flows, when no token is left inside (a task, a token at a join, a parked token). Weights inside
an instance are shares of that instance, so a team's ledger (choreography) counts top-level
tokens only.

Boundary events and event sub-processes are not tokens: an activity's boundaries are armed
while its task is active (its timers are timers owned by the task, cancelled with it), and a
scope's event sub-processes listen while the scope instance runs (the process itself: while the
case runs). Errors and escalations look for a catcher from the thrower outwards: the boundaries
of the activity that threw, then the event sub-processes of its scope, then the boundaries of
the sub-process that is that scope, and so on up to the process (BPMN 2.0.2, 10.5.6).
"""

from __future__ import annotations

from collections import deque
from fractions import Fraction
from typing import Any

from accord.events import EventType
from accord.kernel.actions import ReceiveSignal
from accord.kernel.commands import CancelTimer, ScheduleTimer
from accord.kernel.graph import graph_of
from accord.kernel.state import (
    ACTIVE,
    Task,
    TaskStatus,
    Timer,
    TimerKind,
    Token,
)
from accord.kernel.stepbase import Move, _Base, check_data
from accord.model.types import Step, StepKind


class _Scopes(_Base):
    """Part of the kernel's _Step: sub-process instances and the events that act on scopes."""

    # -- sub-process instances --------------------------------------------------------------

    def enter_subprocess(self, task: Task, work: deque[Move]) -> None:
        """A sub-process instance began (its task exists): start its inner start step."""
        start = graph_of(self.d).inner_start.get(task.step)
        if start is not None:
            self.enter(start, Token((), "1", task.id), work)
        # an empty sub-process has nothing to do: close_scopes() completes it

    def arm(self, t: Task) -> None:
        """An activity started: arm its timer boundaries (and, for a sub-process instance,
        the timers of its event sub-processes)."""
        g = graph_of(self.d)
        # the boundaries of a multi-instance or loop step watch its whole run (BPMN's
        # multi-instance body): armed once, by its first instance, owned by the run
        owner = t.id if t.loop is None else t.loop
        if t.loop is None or t.instance == 0:
            for b in g.boundaries.get(t.step, ()):
                if b.on == "timer":
                    self.schedule_event(b, owner)
        if t.kind is StepKind.SUBPROCESS:
            self.arm_scope(t.step, t.id)

    def arm_scope(self, scope_step: str | None, owner: str) -> None:
        """Arm the timers of the event sub-processes of a scope (None: the process)."""
        for sub in graph_of(self.d).event_subs.get(scope_step, ()):
            if sub.on == "timer":
                self.schedule_event(sub, owner)

    def schedule_event(self, step: Step, owner: str, fired: int = 0) -> None:
        if step.wait is not None:
            due = self.at + step.wait
        else:
            due = max(self.at, step.date if step.date is not None else self.at)
        self.s.counter += 1
        tid = f"{self.s.case_id}:event:{self.s.counter}"
        self.s.timers[tid] = Timer(tid, due, TimerKind.EVENT, owner, step.id, fired)
        self.commands.append(ScheduleTimer(tid, due))

    def close_scopes(self, work: deque[Move]) -> bool:
        """Complete one sub-process instance that has no token left inside, sending its token
        on; return whether one was completed (the caller moves that token before asking again)."""
        live = self.s.active_tasks()
        subs = [t for t in live if t.kind is StepKind.SUBPROCESS]
        if not subs:
            return False
        busy = {t.scope for t in live}
        busy.update(
            tok.scope for slots in self.s.joins.values() for v in slots.values() for tok in v
        )
        busy.update(tok.scope for _, tok in self.s.parked)
        for t in subs:
            if t.id in busy:
                continue
            self.cancel_timers(t.id)
            self.put(t.evolve(status=TaskStatus.COMPLETED, ended_at=self.at))
            self.emit(
                EventType.TASK_COMPLETED,
                step=t.step,
                team=t.team,
                task=t.id,
                data={"data": {}, "attempt": t.attempt, "work_s": self.at - t.ready_at},
            )
            self.forget_mail()
            if t.loop is not None and t.loop in self.s.loops:
                # one instance of a multi-instance or loop sub-process (accord.kernel.loops)
                work.extend(self.loop_done(t.loop, t.instance, {}) or [])
                return True
            work.extend(self.route(t.step, Token(t.origin, t.weight, t.scope)))
            return True
        return False

    def withdraw_scope(self, scope_id: str, reason: str) -> None:
        """Cancel everything inside a sub-process instance (nested instances included); tokens
        of it still in flight in this transition are dropped (see propagate)."""
        inside = {scope_id}
        live = self.s.active_tasks()
        grew = True
        while grew:
            grew = False
            for t in live:
                if t.scope in inside and t.kind is StepKind.SUBPROCESS and t.id not in inside:
                    inside.add(t.id)
                    grew = True
        for t in live:
            if t.scope in inside:
                self.cancel_task(t, reason)
        for gid in list(self.s.joins):
            slots = self.s.joins[gid]
            for fid in list(slots):
                slots[fid] = [tok for tok in slots[fid] if tok.scope not in inside]
                if not slots[fid]:
                    del slots[fid]
            if not slots:
                del self.s.joins[gid]
        self.s.parked = [(n, tok) for n, tok in self.s.parked if tok.scope not in inside]
        for run in [k for k, v in self.s.loops.items() if v.get("scope") in inside]:
            self.cancel_timers(run)  # a multi-instance step's boundary timers
            del self.s.loops[run]
        self.dead_scopes |= inside
        self.forget_mail()

    def forget_mail(self, top: bool = False) -> None:
        """Drop the messages kept for message steps of sub-processes no instance of which runs
        any more (withdrawn or completed): a later instance must not take them. With ``top``
        (the process was taken over by its interrupting event sub-process), those kept for the
        process's own steps go too."""
        live = {t.step for t in self.s.active_tasks() if t.kind is StepKind.SUBPROCESS}
        for node in list(self.s.mailbox):
            parent = self.d.steps[node].parent if node in self.d.steps else None
            gone = top and parent is None
            while parent is not None and not gone:
                gone = parent not in live
                parent = self.d.steps[parent].parent
            if gone:
                del self.s.mailbox[node]

    def interrupt(self, t: Task, reason: str) -> None:
        """Cancel an activity (for a sub-process, everything inside it too)."""
        if t.kind is StepKind.SUBPROCESS:
            self.withdraw_scope(t.id, reason)
        self.cancel_task(t, reason)  # its timers too: boundaries, event sub-processes
        if t.kind is StepKind.SUBPROCESS:
            self.forget_mail()

    # -- boundary events and event sub-processes --------------------------------------------

    def fire_boundary(self, b: Step, t: Task, data: dict[str, Any] | None = None) -> None:
        """A boundary event of ``t``'s activity happened: interrupt it or not, then send a
        token out of the boundary."""
        self.emit(
            EventType.BOUNDARY_FIRED,
            step=b.id,
            team=t.team,
            task=t.id,
            data={
                "attached_to": t.step,
                "on": b.on,
                "interrupting": b.interrupting,
                **({"code": b.code} if b.code else {}),
            },
        )
        if data:
            self.write(data)
        run = self.s.loops.get(t.loop or "")
        if run is not None and t.loop is not None:
            # a boundary of a multi-instance or loop step acts on the whole run
            weight = self._boundary_of_run(b, t.loop, run)
        elif b.interrupting:
            self.interrupt(t, f"{b.id} ({b.on})")
            weight = t.weight
        else:
            # the activity goes on; the new token takes half of its share of the case
            weight = str(Fraction(t.weight) / 2)
            self.put(self.s.tasks[t.id].evolve(weight=weight))
        origin = (t.step,) if t.team is not None else t.origin
        self.propagate(self.route(b.id, Token(origin, weight, t.scope)))

    def _boundary_of_run(self, b: Step, key: str, run: dict[str, Any]) -> str:
        """A boundary of a multi-instance or loop step fired: end the run (interrupting) or
        give half its share to the boundary's token; return that token's weight."""
        instances = [x for x in self.s.active_tasks() if x.loop == key]
        if b.interrupting:
            for x in instances:
                self.interrupt(x, f"{b.id} ({b.on})")
            self.cancel_timers(key)
            del self.s.loops[key]
            # a run parked on its condition (loops.py) is over too
            self.s.parked = [(n, tok) for n, tok in self.s.parked if tok.origin != (key,)]
            return str(run["weight"])
        weight = str(Fraction(run["weight"]) / 2)
        run["weight"] = weight
        for x in instances:
            self.put(x.evolve(weight=str(Fraction(x.weight) / 2)))
        return weight

    def start_event_sub(self, sub: Step, scope: str | None, data: dict[str, Any] | None) -> None:
        """Start an event sub-process in a scope instance (None: the process itself)."""
        if data:
            self.write(data)
        if sub.interrupting:
            reason = f"{sub.id} ({sub.on})"
            if scope is None:
                self.withdraw_top(reason)
            else:
                # the scope instance goes on, inside its event sub-process; its tokens still
                # in flight in this transition stop (they are of the part interrupted)
                self.withdraw_scope(scope, reason)
                # its other event sub-processes stop listening; the boundaries of the
                # sub-process itself still watch it (it still runs)
                for tid, tm in list(self.s.timers.items()):
                    ev = self.d.steps.get(tm.step or "")
                    if tm.task == scope and ev is not None and ev.kind is StepKind.SUBPROCESS:
                        self.cancel_timer(tid)
        # taking its scope over, it holds the whole of it; beside the scope's tokens it takes
        # no share (as a message that is only news), so the shares still add up to 1
        self.propagate([], enter=[(sub.id, Token((), "1" if sub.interrupting else "0", scope))])

    def withdraw_top(self, reason: str) -> None:
        """An interrupting event sub-process of the process: everything else stops."""
        for t in self.s.active_tasks():
            if t.scope is None:
                if t.kind is StepKind.SUBPROCESS:
                    self.withdraw_scope(t.id, reason)
                self.cancel_task(t, reason)
        for tid in [k for k, v in self.s.timers.items() if v.task == self.s.case_id]:
            self.cancel_timer(tid)
        for run in list(self.s.loops):
            self.cancel_timers(run)  # a multi-instance step's boundary timers
        self.s.loops.clear()
        self.s.joins.clear()
        self.s.parked.clear()
        self.forget_mail(top=True)
        self.dead_scopes.add("")  # top-level tokens still in flight stop here

    def cancel_timer(self, tid: str) -> None:
        del self.s.timers[tid]
        self.commands.append(CancelTimer(tid))

    def fire_event_timer(self, timer: Timer) -> None:
        """A boundary timer or an event sub-process's timer fell due."""
        step = self.d.steps.get(timer.step or "")
        if step is None:
            return
        again = step.repeat < 0 or timer.fired + 1 < step.repeat
        if step.kind is StepKind.BOUNDARY:
            t = self.s.tasks.get(timer.task)
            if t is None and timer.task in self.s.loops:  # a multi-instance step's run
                t = next((x for x in self.s.active_tasks() if x.loop == timer.task), None)
            if t is None or t.status not in ACTIVE:
                return
            if step.repeat and again:
                self.schedule_event(step, timer.task, timer.fired + 1)
            self.fire_boundary(step, t)
            return
        scope = None if timer.task == self.s.case_id else timer.task
        if scope is not None:
            owner = self.s.tasks.get(scope)
            if owner is None or owner.status not in ACTIVE:
                return
        if step.repeat and again:
            self.schedule_event(step, timer.task, timer.fired + 1)
        self.start_event_sub(step, scope, None)

    # -- catching: errors, escalations, messages, signals -----------------------------------

    def _matching(self, steps: tuple[Step, ...], on: str, code: str | None) -> Step | None:
        """The catcher among ``steps`` for an error or escalation code: one naming the code
        wins over a catch-all (one without a code)."""
        exact = [s for s in steps if s.on == on and s.code is not None and s.code == code]
        if exact:
            return exact[0]
        return next((s for s in steps if s.on == on and s.code is None), None)

    def catcher(
        self, on: str, code: str | None, task: Task | None, scope: str | None
    ) -> tuple[Step, Task | None, str | None] | None:
        """The nearest catcher of an error or escalation thrown by ``task`` (or by an event in
        ``scope``): (its step, the activity whose boundary it is, or the scope instance whose
        event sub-process it is)."""
        g = graph_of(self.d)
        if task is not None:
            b = self._matching(g.boundaries.get(task.step, ()), on, code)
            if b is not None:
                return b, task, None
        interrupted = False
        while True:
            scope_step = self.s.tasks[scope].step if scope is not None else None
            # a scope whose interrupting event sub-process runs listens to no other event:
            # the error of an error handler goes on outwards, never back into the handler
            if not interrupted:
                sub = self._matching(g.event_subs.get(scope_step, ()), on, code)
                if sub is not None:
                    return sub, None, scope
            if scope is None:
                return None
            owner = self.s.tasks.get(scope)
            if owner is None:
                return None
            b = self._matching(g.boundaries.get(owner.step, ()), on, code)
            if b is not None:
                return b, owner, None
            event = self.d.steps[owner.step]
            interrupted = event.on is not None and event.interrupting
            scope = owner.scope

    def trigger(self, found: tuple[Step, Task | None, str | None], data: dict[str, Any]) -> None:
        step, task, scope = found
        if task is not None:
            self.fire_boundary(step, task, data)
        else:
            self.start_event_sub(step, scope, data)

    def throw(self, step: Step, tok: Token) -> None:
        """A token reached a throwing end or throw step."""
        if step.throw == "signal":
            self.broadcast(str(step.signal), {}, step.id)
            return
        on = str(step.throw)
        found = self.catcher(on, step.code, None, tok.scope)
        self.emit(
            EventType.ERROR_THROWN if on == "error" else EventType.ESCALATION_THROWN,
            step=step.id,
            data={"code": step.code, "caught_by": found[0].id if found else None},
        )
        if found is not None:
            self.trigger(found, {})
        elif on == "error":
            # the token waits at the thrower while the incident is open (its scope does not
            # complete, nor the case); resuming accepts the error and ends it there. (A team
            # node reports a top-level end's share as ended: its ledger keeps the case open.)
            if tok.scope is not None or self.scope is None:
                self.s.parked.append((step.id, tok))
            self.incident(
                {"step": step.id, "code": step.code, "error": f"uncaught error {step.code!r}"}
            )

    def fail_with_code(self, t: Task, code: str, error: str) -> bool:
        """A task failed with a BPMN error code: the nearest catcher has it, if any."""
        found = self.catcher("error", code, t, t.scope)
        self.emit(
            EventType.ERROR_THROWN,
            step=t.step,
            team=t.team,
            task=t.id,
            data={"code": code, "error": error, "caught_by": found[0].id if found else None},
        )
        if found is None:
            return False
        self.trigger(found, {})
        return True

    def receive_by_event(self, name: str, data: dict[str, Any]) -> bool:
        """A message that no waiting step takes: a message boundary of an active activity,
        else a message event sub-process of a running scope."""
        g = graph_of(self.d)
        for t in self.s.active_tasks():
            for b in g.boundaries.get(t.step, ()):
                if b.on == "message" and b.message == name:
                    self.emit(
                        EventType.MESSAGE_RECEIVED,
                        step=b.id,
                        task=t.id,
                        data={"name": name, "data": data},
                    )
                    self.fire_boundary(b, t, data)
                    return True
        for scope, scope_step in self.running_scopes():
            for sub in g.event_subs.get(scope_step, ()):
                if sub.on == "message" and sub.message == name:
                    self.emit(
                        EventType.MESSAGE_RECEIVED, step=sub.id, data={"name": name, "data": data}
                    )
                    self.start_event_sub(sub, scope, data)
                    return True
        return False

    def running_scopes(self) -> list[tuple[str | None, str | None]]:
        """(scope instance, its step) for the process and every running sub-process."""
        live = self.s.active_tasks()
        out: list[tuple[str | None, str | None]] = [(None, None)]
        out.extend((t.id, t.step) for t in live if t.kind is StepKind.SUBPROCESS)
        # a scope its interrupting event sub-process took over listens to no other event
        taken = {
            t.scope
            for t in live
            if t.kind is StepKind.SUBPROCESS and self.d.steps[t.step].on is not None
            and self.d.steps[t.step].interrupting
        }  # fmt: skip
        return [(sc, st) for sc, st in out if sc not in taken]

    def receive_signal(self) -> None:
        a = self.a
        assert isinstance(a, ReceiveSignal)
        self.require_running("receive a signal")
        check_data(a.data, f"signal {a.name}")
        self.broadcast(a.name, dict(a.data), None)

    def broadcast(self, name: str, data: dict[str, Any], source: str | None) -> None:
        """A signal: every catcher waiting for it now is triggered, in creation order."""
        g = graph_of(self.d)
        self.emit(
            EventType.SIGNAL_THROWN, step=source, data={"name": name, "from": source or "outside"}
        )
        waiting = self.s.active_tasks()
        scopes = self.running_scopes()
        # the work of looking counts too (a tenth of a move per catcher looked at), so a signal
        # that goes round re-throwing itself stops long before it takes for ever (overrun)
        self.budget -= (len(waiting) + len(scopes)) // 10
        caught = False

        def catch() -> None:
            # a signal nobody catches has no effect (BPMN): its data is written only when
            # caught, before the first catcher moves
            nonlocal caught
            if not caught:
                caught = True
                self.write(data)

        runs: set[tuple[str, str]] = set()  # a multi-instance step's boundary fires once
        for t in waiting:
            now = self.s.tasks[t.id]
            if now.status not in ACTIVE:
                continue  # withdrawn by a catcher before it
            if now.kind is StepKind.SIGNAL and self.d.steps[t.step].signal == name:
                catch()
                self.finish(now, {})
                continue
            for b in g.boundaries.get(t.step, ()):
                now = self.s.tasks[t.id]
                if b.on == "signal" and b.signal == name and now.status in ACTIVE:
                    if t.loop is not None:
                        if (b.id, t.loop) in runs:
                            continue
                        runs.add((b.id, t.loop))
                    catch()
                    self.fire_boundary(b, now)
        for scope, scope_step in scopes:
            if scope is not None and self.s.tasks[scope].status not in ACTIVE:
                continue
            if scope is None and "" in self.dead_scopes:
                continue
            for sub in g.event_subs.get(scope_step, ()):
                if sub.on == "signal" and sub.signal == name:
                    catch()
                    self.start_event_sub(sub, scope, None)
                    if sub.interrupting:
                        break  # the scope is its now: it hears no other event
