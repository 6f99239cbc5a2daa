"""Multi-instance and loop steps: one token, several runs of one work step.

A token reaching a step with ``multi_instance`` starts a *run* (kept in ``CaseState.loops``):
N tasks at once (parallel) or one after another (sequential), N from ``count`` or from the length
of ``collection``. Each task knows its run and its instance number. When an instance completes,
its output is collected; the run ends when every instance completed or ``until`` holds (the
instances still open are withdrawn, ``task.cancelled`` with the reason), and only then does the
token move on, with its whole share of the case. A ``loop`` step runs one task at a time while
``while`` holds, at most ``max`` times (``test_before``: the condition is checked before the
first run too; false then, the step is passed without a task).

Expressions see the case data and BPMN's instance variables: ``nrOfInstances``,
``nrOfCompletedInstances``, ``nrOfActiveInstances``, ``loopCounter`` (and the ``item`` of the
instance). A count or collection that cannot be read pauses the case (an incident) with the
token before the step; resuming tries again. A ``while`` or ``until`` that cannot be evaluated
parks the run's token at the step (no next instance, no moving on); resuming evaluates it again.
"""

from __future__ import annotations

from collections import deque
from fractions import Fraction
from typing import Any

from accord.errors import ExpressionError
from accord.kernel.state import Token
from accord.kernel.stepbase import Move, _Base, _Incident
from accord.model.types import StepKind

MAX_INSTANCES = 10_000
"""More instances than this for one token is a modelling error, reported as an incident."""


class _Loops(_Base):
    """Part of the kernel's _Step: multi-instance and loop steps."""

    def begin_loop(self, node: str, tok: Token) -> list[Move]:
        """A token reaches a multi-instance or loop step: start its run (or pass it by)."""
        step = self.d.steps[node]
        self.s.counter += 1
        run = f"{self.s.case_id}:{node}:run:{self.s.counter}"
        group: dict[str, Any] = {
            "step": node,
            "weight": tok.weight,
            "origin": list(tok.origin),
            "scope": tok.scope,
            "n": -1,  # a loop: as many as its condition says
            "done": 0,
            "started": 0,
            "items": None,
            "outputs": [],
            "sequential": True,
        }
        try:
            if step.multi is not None:
                items, n = self._how_many(node)
                group.update(n=n, items=items, outputs=[None] * n)
                group["sequential"] = step.multi.sequential
                if n == 0:  # nothing to do: BPMN completes the activity at once
                    if step.multi.output:
                        self.write({step.multi.output: []})
                    return self.route(node, tok)
            elif (
                step.loop is not None
                and step.loop.test_before
                and not self._loop_goes_on(node, group)
            ):
                return self.route(node, tok)
        except _Incident as inc:
            self.s.parked.append((node, tok))
            self.s.loops[f"{run}:blocked"] = {"step": node, "blocked": True}
            self.incident({"step": node, "error": inc.message})
            return []
        self.s.loops[run] = group
        if group["sequential"]:
            self._spawn(run)
        else:
            for _ in range(group["n"]):
                self._spawn(run)
        return []

    def resume_loop(self, node: str, tok: Token) -> list[Move] | None:
        """A token parked before a multi-instance step whose count could not be read, or at a
        run whose condition could not be evaluated: try again (None: no such token; route it
        as usual)."""
        run = tok.origin[0] if len(tok.origin) == 1 else ""
        group = self.s.loops.get(run)
        if group is not None and "recheck" in group:
            return self._carry_run(run, group.pop("recheck")) or []
        for key, group in list(self.s.loops.items()):
            if group.get("blocked") and group["step"] == node:
                del self.s.loops[key]
                return self.begin_loop(node, tok)
        return None

    def _how_many(self, node: str) -> tuple[list[Any] | None, int]:
        multi = self.d.steps[node].multi
        assert multi is not None
        if multi.collection is not None:
            value = self.s.data.get(multi.collection)
            if not isinstance(value, list):
                have = "missing" if value is None else type(value).__name__
                raise _Incident(
                    node, f"multi-instance collection {multi.collection!r} is not a list ({have})"
                )
            items: list[Any] | None = value
            n = len(value)
        else:
            assert multi.count is not None
            try:
                raw = multi.count.evaluate(self.s.data)
            except ExpressionError as exc:
                raise _Incident(node, f"multi-instance count failed: {exc}") from None
            if isinstance(raw, bool) or not isinstance(raw, int | float) or raw != int(raw):
                raise _Incident(node, f"multi-instance count {raw!r} is not a whole number")
            items, n = None, int(raw)
        if not 0 <= n <= MAX_INSTANCES:
            raise _Incident(node, f"multi-instance count {n} is not within 0..{MAX_INSTANCES}")
        return items, n

    def _spawn(self, run: str) -> None:
        group = self.s.loops[run]
        i = group["started"]
        group["started"] = i + 1
        self.budget += 10  # an instance's own moves are not a process going round
        share = group["weight"]
        if not group["sequential"] and group["n"] > 0:
            share = str(Fraction(share) / group["n"])
        tok = Token(tuple(group["origin"]), share, group["scope"])
        task = self.create_task(group["step"], tok, loop=run, instance=i)
        if task.kind is StepKind.SUBPROCESS:  # an instance of a sub-process: start inside it
            if self.moving is not None:
                self.enter_subprocess(task, self.moving)
            else:
                work: deque[Move] = deque()
                self.enter_subprocess(task, work)
                self.propagate(list(work))

    def instance_vars(self, run: str, instance: int) -> dict[str, Any]:
        """What an instance sees besides the case data (BPMN's names)."""
        group = self.s.loops.get(run)
        if group is None:
            return {"loopCounter": instance}
        active = sum(1 for t in self.s.active_tasks() if t.loop == run)
        out: dict[str, Any] = {
            "loopCounter": instance,
            "nrOfInstances": group["n"] if group["n"] >= 0 else group["started"],
            "nrOfCompletedInstances": group["done"],
            "nrOfActiveInstances": active,
        }
        multi = self.d.steps[group["step"]].multi
        if multi is not None and multi.item and group["items"] is not None:
            out[multi.item] = group["items"][instance]
        return out

    def loop_done(self, run: str, instance: int, data: dict[str, Any]) -> list[Move] | None:
        """An instance of ``run`` completed with ``data``: the moves of the token when the run
        is over, else None (the next instance is ready, or the others are still open)."""
        group = self.s.loops[run]
        multi = self.d.steps[group["step"]].multi
        group["done"] += 1
        if multi is not None and multi.output:
            value = data.get(multi.output_item) if multi.output_item else dict(data)
            group["outputs"][instance] = value
        return self._carry_run(run, instance)

    def _carry_run(self, run: str, instance: int) -> list[Move] | None:
        """After instance ``instance`` of ``run``: check the run's condition and start the next
        instance, or end the run and return its token's moves. A condition that cannot be
        evaluated parks the run (an incident); resuming checks it again (resume_loop)."""
        group = self.s.loops[run]
        node = group["step"]
        multi = self.d.steps[node].multi
        try:
            if multi is not None:
                over = group["done"] >= group["n"]
                if not over and multi.until is not None:
                    scope = {**self.s.data, **self.instance_vars(run, instance)}
                    try:
                        over = multi.until.test(scope)
                    except ExpressionError as exc:
                        raise _Incident(node, f"completion condition failed: {exc}") from None
            else:
                over = not self._loop_goes_on(node, group)
        except _Incident as inc:
            # the token waits before deciding, as at a gateway whose condition fails; it holds
            # the run's share unless instances still running hold it
            running = any(t.loop == run for t in self.s.active_tasks())
            group["recheck"] = instance
            weight = "0" if running else group["weight"]
            self.s.parked.append((node, Token((run,), weight, group["scope"])))
            self.incident({"step": node, "error": inc.message})
            return None
        if not over:
            if group["sequential"]:
                self._spawn(run)
            return None
        if multi is not None:
            self._withdraw(run, "the completion condition holds")
            if multi.output:
                self.write({multi.output: list(group["outputs"])})
        del self.s.loops[run]
        self.cancel_timers(run)  # the run is over: the timers of the step's boundaries go
        origin = (node,)
        return self.route(node, Token(origin, group["weight"], group["scope"]))

    def _loop_goes_on(self, node: str, group: dict[str, Any]) -> bool:
        loop = self.d.steps[node].loop
        assert loop is not None
        if loop.maximum is not None and group["done"] >= loop.maximum:
            return False
        if loop.condition is None:
            return True
        scope = {**self.s.data, "loopCounter": group["done"]}
        try:
            return loop.condition.test(scope)
        except ExpressionError as exc:
            raise _Incident(node, f"loop condition failed: {exc}") from None

    def _withdraw(self, run: str, why: str) -> None:
        for t in self.s.active_tasks():
            if t.loop == run:
                self.cancel_task(t, why)
