"""Tokens: routing at gateways, joins, handoffs to other teams, new tasks, the end."""

from __future__ import annotations

from collections import deque
from fractions import Fraction
from typing import Any

from accord.errors import (
    ConflictError,
    ExpressionError,
)
from accord.events import EventType
from accord.kernel.commands import (
    CancelTimer,
    OfferTask,
    RunHandler,
)
from accord.kernel.graph import graph_of, is_news
from accord.kernel.scope import HUB
from accord.kernel.state import (
    ACTIVE,
    CaseStatus,
    Task,
    TaskStatus,
    TimerKind,
    Token,
)
from accord.kernel.stepbase import (
    IN_FLIGHT,
    Move,
    _Base,
    _Incident,
)
from accord.model.types import (
    Flow,
    Step,
    StepKind,
)


class _Tokens(_Base):
    """Part of the kernel's _Step: routing, joins, handoffs, new tasks, the end."""

    def route(self, node: str, tok: Token) -> list[Move]:
        """Choose the flows a token leaving ``node`` takes (splitting its weight between them);
        park it on an incident."""
        step = self.d.steps[node]
        if (step.multi is not None or step.loop is not None) and self.s.loops:
            again = self.resume_loop(node, tok)  # parked before the step: start its run now
            if again is not None:
                return again
        try:
            flows = self.decide(node)
        except _Incident as inc:
            self.s.parked.append((node, tok))
            self.incident({"step": node, "error": inc.message})
            return []
        # message flows are taken whatever was decided: one into a message step is only news
        # (no share of the case), one anywhere else starts a path there (a share, like a split)
        notes: list[Flow] = []
        for f in self.d.outgoing.get(node, ()):
            if f.message:
                (notes if is_news(self.d, f) else flows).append(f)
        if not flows and self.d.steps[node].kind is not StepKind.END:
            self.implicit_end(node, tok)
        if len(flows) == 1:
            moves = [(flows[0], tok)]
        else:
            share = str(Fraction(tok.weight) / len(flows)) if flows else tok.weight
            moves = [(f, Token(tok.origin, share, tok.scope)) for f in flows]
        return moves + [(f, Token(tok.origin, "0")) for f in notes]

    def implicit_end(self, node: str, tok: Token) -> None:
        """BPMN: a node without outgoing flows ends its token there. A team node reports the
        share that ended, as at an end step, so the initiating team's ledger still adds up."""
        if self.scope is None or tok.scope is not None:
            return
        self.emit(
            EventType.BRANCH_ENDED,
            step=node,
            team=self.scope.team,
            data={"weight": tok.weight, "terminate": False},
        )
        if self.scope.keeps_ledger:
            self.tally(tok.weight, False)

    def task_data(self, t: Task) -> dict[str, Any]:
        """What a handler sees: the case data, and an instance's own variables."""
        return {**self.s.data, **self.instance_of(t).get("instance", {})}

    def instance_of(self, t: Task) -> dict[str, Any]:
        """``{"instance": {...}}`` for a task of a multi-instance or loop run, or inside a
        sub-process instance of one (its variables: the item, ``loopCounter``, ...)."""
        if t.loop is None and t.scope is not None and t.scope in self.s.tasks:
            t = self.s.tasks[t.scope]
        if t.loop is None:
            return {}
        return {"instance": self.instance_vars(t.loop, t.instance)}

    def decide(self, node: str) -> list[Flow]:
        out = tuple(f for f in self.d.outgoing.get(node, ()) if not f.message)
        if not out:
            return []
        step = self.d.steps[node]
        explicit = self.decisions.get(node)
        if explicit is not None and step.kind is StepKind.PARALLEL:
            raise ConflictError(f"{node!r} is a parallel gateway: it takes every flow, by rule")
        if explicit is not None:
            chosen = [f for f in out if f.id in explicit or f.target in explicit]
            unknown = set(explicit) - {f.id for f in out} - {f.target for f in out}
            if unknown or not chosen:
                raise ConflictError(
                    f"decision for {node!r} names {sorted(unknown) or explicit}, "
                    f"not among its flows {[f.id for f in out]}"
                )
            if step.kind is StepKind.EXCLUSIVE:
                chosen = chosen[:1]
            self.gateway_decided(
                node, chosen, explicit=True, announce=self.announcement(node, chosen)
            )
            return chosen
        if step.kind is StepKind.PARALLEL or all(
            f.condition is None and not f.default for f in out
        ):
            if len(out) > 1:
                self.gateway_decided(node, list(out))
            return list(out)
        data = self.s.data
        try:
            taken = []
            for f in out:
                if not f.default and (f.condition is None or f.condition.test(data)):
                    taken.append(f)
                    if step.kind is StepKind.EXCLUSIVE:
                        break  # the first true condition in declared order wins
                    # inclusive gateways, and (as in BPMN) conditional flows out of any other
                    # step, take every flow whose condition holds
        except ExpressionError as exc:
            raise _Incident(node, f"condition failed: {exc}") from None
        if not taken:
            taken = [f for f in out if f.default]
        if not taken:
            conds = "; ".join(f.condition.source for f in out if f.condition is not None)
            raise _Incident(node, f"no condition is true and there is no default flow ({conds})")
        self.gateway_decided(node, taken, announce=self.announcement(node, taken))
        return taken

    def announcement(self, node: str, taken: list[Flow]) -> dict[str, Any] | None:
        """Choreography: which incoming flows of its join an inclusive split's choice fills."""
        if self.scope is None or node not in self.scope.matches:
            return None
        join, branch_to_flow = self.scope.matches[node]
        expect = sorted({branch_to_flow[f.id] for f in taken if f.id in branch_to_flow})
        if self.scope.owner.get(join) == self.scope.team:
            self.s.expect.setdefault(join, []).append(expect)
        return {"join": join, "expect": expect, "to_team": self.scope.owner.get(join)}

    def gateway_decided(
        self,
        node: str,
        flows: list[Flow],
        explicit: bool = False,
        announce: dict[str, Any] | None = None,
    ) -> None:
        data: dict[str, Any] = {
            "flows": [f.id for f in flows],
            "targets": [f.target for f in flows],
            "explicit": explicit,
        }
        if announce is not None:
            data["announce"] = announce
        self.emit(
            EventType.GATEWAY_DECIDED,
            step=node,
            team=self.d.steps[node].team or (self.scope.team if self.scope else None),
            data=data,
        )

    def propagate(self, flows: list[Move], enter: list[tuple[str, Token]] | None = None) -> None:
        """Move tokens until every one rests at a task, a join, an incident or an end -- or,
        for a team node, leaves the team as a handoff.

        Called again while it moves tokens (a boundary event or a signal caught on the way),
        it hands the new tokens to the moves under way instead of starting a second loop."""
        if self.moving is not None:
            self.moving.extend(flows)
            for node, tok in enter or ():
                self.enter(node, tok, self.moving)
            return
        work: deque[Move] = deque(flows)
        self.moving = work
        try:
            for node, tok in enter or ():
                self.enter(node, tok, work)
            self._move(work)
        finally:
            self.moving = None

    def _move(self, work: deque[Move]) -> None:
        while True:
            while work and not self.terminated:
                if self.overrun(work):
                    return
                flow, tok = work.popleft()
                if self.dead_scopes and (tok.scope or "") in self.dead_scopes:
                    continue  # its sub-process instance (or the process) was interrupted
                if self.scope is not None and self.scope.elsewhere(
                    flow.target, self.owner_of(flow.target, self.s.data)
                ):
                    self.hand_off(flow, tok)
                elif is_news(self.d, flow):
                    self.post(flow, tok)
                elif flow.message:
                    self.enter(flow.target, tok, work)  # a message starts a path; never joins
                elif self.d.is_join(flow.target):
                    self.recent.append(flow.target)
                    slots = self.s.joins.setdefault(flow.target, {})
                    slots.setdefault(flow.id, []).append(tok)
                else:
                    self.enter(flow.target, tok, work)
            if self.terminated or self.overrun(work):
                return
            if self.deliver():
                continue  # the message step's moves were added to ``work``
            if not (self.fire_joins(work) or self.close_scopes(work)):
                return

    def overrun(self, work: deque[Move]) -> bool:
        """Count one move against the transition's budget (stepbase.STEP_BUDGET). When it is
        spent, the process went round without waiting: the tokens in flight are parked on their
        flows and the case pauses with an incident naming the steps that went round; resuming
        (with the data corrected) moves them on again."""
        self.budget -= 1
        if self.budget > 0:
            return False
        for flow, tok in work:
            self.s.parked.append((IN_FLIGHT + flow.id, tok))
        work.clear()
        if not self.overran:  # once per transition
            self.overran = True
            steps = sorted(set(self.recent))
            self.incident(
                {
                    "error": f"the process went round without waiting ({', '.join(steps)}): "
                    f"more than {self.step_budget} moves in one transition",
                    "steps": steps,
                }
            )
        return True

    def post(self, flow: Flow, tok: Token) -> None:
        """A message along a message flow: kept for its message step until it waits for it."""
        senders = [o for o in tok.origin if o in self.d.steps]
        sender = senders[-1] if senders else flow.source
        target = self.d.steps[flow.target]
        if target.kind is StepKind.BOUNDARY:
            # a message boundary listens only while its activity runs: caught now, or lost
            for t in self.s.active_tasks():
                if t.step == target.attached_to:
                    self.emit(
                        EventType.MESSAGE_RECEIVED,
                        step=target.id,
                        task=t.id,
                        data={"name": target.message, "data": {}, "flow": flow.id,
                              "from_step": sender},
                    )  # fmt: skip
                    self.fire_boundary(target, t)
                    return
            return
        self.s.mailbox.setdefault(flow.target, []).append([flow.id, sender])

    def deliver(self) -> bool:
        """A message step that waits while its mailbox holds a message takes the oldest one and
        moves on (once; the caller asks again). Called when no token is in flight."""
        for node in list(self.s.mailbox):
            waiting = [
                t
                for t in self.s.tasks.values()
                if t.step == node and t.status is TaskStatus.WAITING and t.kind is StepKind.MESSAGE
            ]
            if not waiting:
                continue
            box = self.s.mailbox[node]
            self.budget -= len(self.s.tasks) // 10  # the work of looking (see overrun)
            flow_id, sender = box.pop(0)
            if not box:
                del self.s.mailbox[node]
            t = waiting[0]
            self.emit(
                EventType.MESSAGE_RECEIVED,
                step=node,
                task=t.id,
                data={
                    "name": self.d.steps[node].message,
                    "data": {},
                    "flow": flow_id,
                    "from_step": sender,
                },
            )
            self.finish(t, {})
            return True
        return False

    def enter(self, node: str, tok: Token, work: deque[Move]) -> None:
        step = self.d.steps[node]
        self.recent.append(node)
        if step.kind is StepKind.EVENT_GATEWAY:
            # wait for every event at once; the first that happens wins (see finish())
            self.s.counter += 1
            race = f"{self.s.case_id}:race:{self.s.counter}"
            targets = self.d.outgoing.get(node, ())
            self.gateway_decided(node, list(targets))
            share = str(Fraction(tok.weight) / max(len(targets), 1))
            for f in targets:
                self.create_task(f.target, Token(tok.origin, share, tok.scope), race=race)
        elif step.kind.is_gateway or step.kind in (StepKind.START, StepKind.BOUNDARY):
            work.extend(self.route(node, tok))
        elif step.multi is not None or step.loop is not None:
            work.extend(self.begin_loop(node, tok))  # several runs for one token (loops.py)
        elif step.kind is StepKind.SUBPROCESS:
            self.enter_subprocess(self.create_task(node, tok), work)
        elif step.kind is StepKind.THROW:
            self.throw(step, tok)
            if (tok.scope or "") not in self.dead_scopes:  # unless its catcher interrupted it
                work.extend(self.route(node, tok))
        elif step.kind is StepKind.END and tok.scope is not None:
            # the end of a path inside a sub-process instance: the instance completes when
            # no token is left in it (see close_scopes); a terminate end ends the instance
            if step.throw is not None:
                self.throw(step, tok)
            if step.terminate:
                self.withdraw_scope(tok.scope, f"{node} (terminate)")
        elif step.kind is StepKind.END:
            if step.throw is not None:
                self.throw(step, tok)
            if self.scope is not None:
                # a team cannot see the whole case: it reports the share of it that ended here
                self.emit(
                    EventType.BRANCH_ENDED,
                    step=node,
                    team=self.scope.team,
                    data={"weight": tok.weight, "terminate": step.terminate},
                )
            if step.terminate:
                self.withdraw_all()
                self.terminated = True
            if self.scope is not None and self.scope.keeps_ledger:
                self.tally(tok.weight, step.terminate)
        else:
            self.create_task(node, tok)

    def hand_off(self, flow: Flow, tok: Token) -> None:
        """Choreography: the token leaves this team; the event is the message to the next."""
        assert self.scope is not None
        to_team = self.owner_of(flow.target, self.s.data)
        from_steps = [o for o in tok.origin if o in self.d.steps]
        self.emit(
            EventType.HANDOFF,
            step=self.scope.work_after.get(flow.target, flow.target),
            team=to_team,
            data={
                "flow": flow.id,
                "from_step": from_steps[-1] if from_steps else None,
                "from_team": self.scope.team,
                "to_step": self.scope.work_after.get(flow.target, flow.target),
                "to_node": flow.target,
                "to_team": to_team,
                "origin": list(tok.origin),
                "weight": tok.weight,
                "case_data": self.s.data,
                "versions": self.s.versions,
            },
        )

    def fire_joins(self, work: deque[Move]) -> bool:
        """Fire the first join that can fire, once. The caller moves its token on before asking
        again, so no inclusive join is judged while another join's output is still in flight.
        Tokens of different sub-process instances never meet at a join."""
        for gid in list(self.s.joins):
            slots = self.s.joins[gid]
            incoming = self.d.incoming[gid]
            scopes = list(dict.fromkeys(t.scope for toks in slots.values() for t in toks))
            for sc in scopes:
                view = slots
                if len(scopes) > 1:
                    view = {f: [t for t in v if t.scope == sc] for f, v in slots.items()}
                    view = {f: v for f, v in view.items() if v}
                taking: list[str] = []
                if self.d.steps[gid].kind is StepKind.PARALLEL:
                    if all(view.get(f.id) for f in incoming):
                        taking = [f.id for f in incoming]
                elif self.scope is not None:
                    taking = self.announced(gid, view)
                elif any(view.get(f.id) for f in incoming) and self.inclusive_ready(gid, view):
                    taking = [f.id for f in incoming if view.get(f.id)]
                taken = [view[fid][0] for fid in taking]
                for fid, tok in zip(taking, taken, strict=True):
                    slots[fid].remove(tok)
                for fid in [k for k, v in slots.items() if not v]:
                    del slots[fid]
                if not slots:
                    del self.s.joins[gid]
                if taken:
                    origin = tuple(dict.fromkeys(o for t in taken for o in t.origin))
                    weight = str(sum((Fraction(t.weight) for t in taken), Fraction(0)))
                    work.extend(self.route(gid, Token(origin, weight, sc)))
                    return True
        return False

    def announced(self, gid: str, slots: dict[str, list[Token]]) -> list[str]:
        """Choreography's inclusive join: no team can see every token, so the join waits for
        exactly the branches the deciding team announced, oldest announcement first."""
        queue = self.s.expect.get(gid)
        if not queue or not all(slots.get(fid) for fid in queue[0]):
            return []
        flows = queue.pop(0)
        if not queue:
            del self.s.expect[gid]
        return flows

    def parked_at(self, node: str) -> str:
        """Where a parked token is: its step, or the step its flow leads to (IN_FLIGHT)."""
        if node.startswith(IN_FLIGHT):
            flow = self.d.flow_by_id.get(node[len(IN_FLIGHT) :])
            return flow.target if flow is not None else node
        return node

    def inclusive_ready(self, gid: str, slots: dict[str, list[Token]]) -> bool:
        """BPMN 2.0.2, 13.4.3: the join fires when, for each empty incoming flow, no token has
        a path to it -- except a path through the join itself, or one that passes a node from
        which a flow that already holds a token can be reached."""
        # only tokens of the join's own scope instance can reach it (a sub-process instance's
        # task stands for every token inside it)
        sc = next((t.scope for toks in slots.values() for t in toks), None)
        positions = {t.step for t in self.s.active_tasks() if t.scope == sc}
        positions.update(
            g
            for g, fl in self.s.joins.items()
            if g != gid and any(t.scope == sc for v in fl.values() for t in v)
        )
        positions.update(self.parked_at(node) for node, tok in self.s.parked if tok.scope == sc)
        if not positions:
            return True
        g = graph_of(self.d)
        upstream = g.upstream[gid]
        filled = [f for f in self.d.incoming[gid] if slots.get(f.id)]
        feeds_filled: set[str] = set().union(*(upstream[f.id] for f in filled))
        for f in self.d.incoming[gid]:
            if slots.get(f.id) or not positions & upstream[f.id]:
                continue
            if f.source in feeds_filled or f.source == gid:
                continue
            # nodes that reach this empty flow without passing the join or a node that feeds
            # a filled flow: a token on one of them can still come, so the join must wait
            seen = {f.source}
            queue = deque(seen)
            while queue:
                for p in g.pred[queue.popleft()]:
                    if p != gid and p not in feeds_filled and p not in seen:
                        seen.add(p)
                        queue.append(p)
            if positions & seen:
                return False
        return True

    def create_task(
        self,
        node: str,
        tok: Token,
        resend: str | None = None,
        race: str | None = None,
        *,
        loop: str | None = None,
        instance: int = 0,
    ) -> Task:
        step = self.d.steps[node]
        visit = self.s.visits.get(node, 0) + 1
        self.s.visits[node] = visit
        tid = f"{self.s.case_id}:{node}:{visit}"
        # Without a scope the hub runs everything. A team node sends a step to the hub only
        # in hybrid runs: steps marked central, and steps whose hub criteria hold now.
        hub = self.scope is None or node in self.scope.hub_steps or self.scope.team == HUB
        criteria = step.require_hub_when
        if not hub and self.scope is not None and self.scope.hybrid and criteria is not None:
            try:
                hub = criteria.test(self.s.data)
            except ExpressionError:
                hub = True  # cannot tell: the hub is the safe place for it
        origin = tok.origin
        for src in origin if self.scope is None else ():  # a team node announced it on sending
            src_team = self.d.steps[src].team if src in self.d.steps else None
            if src_team and step.team and src_team != step.team:
                self.emit(
                    EventType.HANDOFF,
                    step=node,
                    team=step.team,
                    task=tid,
                    data={
                        "from_step": src,
                        "from_team": src_team,
                        "to_step": node,
                        "to_team": step.team,
                    },
                )
        waits = step.kind.is_wait or step.kind is StepKind.SUBPROCESS
        status = TaskStatus.WAITING if waits else TaskStatus.READY
        task = self.put(
            Task(
                tid,
                node,
                step.kind,
                status,
                step.team,
                self.at,
                step.role,
                origin=origin,
                hub=hub,
                weight=tok.weight,
                resend=resend,
                race=race,
                scope=tok.scope,
                loop=loop,
                instance=instance,
            )
        )
        inputs = {k: self.s.data[k] for k in step.inputs if k in self.s.data}
        self.emit(
            EventType.TASK_READY,
            step=node,
            team=step.team,
            task=tid,
            data={
                "attempt": 1,
                "hub": hub,
                "kind": step.kind.value,
                "input": inputs,
                **self.instance_of(task),
            },
        )
        self.arm(task)
        if step.kind is StepKind.TIMER and (step.wait is not None or step.date is not None):
            # a date already past is due at once (as a boundary's date is: scopes.py)
            due = self.at + step.wait if step.wait is not None else max(self.at, step.date or 0)
            self.schedule(TimerKind.WAIT, tid, due)
            return task
        if step.sla is not None and step.kind.is_work:
            self.schedule(TimerKind.SLA, tid, self.at + step.sla)
        self.dispatch(task)
        return task

    def dispatch(self, t: Task) -> None:
        step = self.d.steps[t.step]
        if t.kind is StepKind.AUTOMATED and step.handler:
            self.commands.append(
                RunHandler(t.id, t.step, step.handler, t.id, t.attempt, self.task_data(t))
            )
        elif t.kind.is_work:
            self.offer(t)

    def offer(self, t: Task) -> None:
        self.commands.append(OfferTask(t.id, t.step, t.team, t.role, t.hub))

    def release_armed(self) -> bool:
        """With no open work left and tokens waiting at joins: can an event still armed bring a
        token to one of those joins, or withdraw one? A message or signal boundary of an open
        sub-process instance, or one whose timer is set; an event sub-process listening in the
        join's scope or around it. An interrupting one withdraws every join inside its
        sub-process (or scope); a non-interrupting boundary counts when its path can reach an
        empty incoming flow of a join. A negotiation's deadline counts too. What the work such
        an event starts might throw in turn is not followed."""
        if any(tm.kind is TimerKind.ISSUE for tm in self.s.timers.values()):
            return True
        g = graph_of(self.d)
        stuck: list[tuple[str, str | None, set[str]]] = []  # join, its scope, empty flows
        for gid, slots in self.s.joins.items():
            for sc in dict.fromkeys(t.scope for toks in slots.values() for t in toks):
                filled = {f for f, toks in slots.items() if any(t.scope == sc for t in toks)}
                stuck.append((gid, sc, {f.id for f in self.d.incoming[gid]} - filled))

        def inside(outer: str | None, sc: str | None) -> bool:
            while sc is not None:
                if sc == outer:
                    return True
                sc = self.s.tasks[sc].scope if sc in self.s.tasks else None
            return outer is None

        def armed(event: Step, owner: str) -> bool:
            if event.on in ("message", "signal"):
                return True
            return event.on == "timer" and any(
                tm.task == owner and tm.step == event.id for tm in self.s.timers.values()
            )

        for t in self.s.active_tasks():  # sub-process instances only, here
            for b in g.boundaries.get(t.step, ()):
                if not armed(b, t.loop or t.id):
                    continue
                if b.interrupting and any(inside(t.id, sc) for _, sc, _ in stuck):
                    return True
                if any(
                    sc == t.scope and any(b.id in g.upstream[gid][f] for f in empty)
                    for gid, sc, empty in stuck
                ):
                    return True
        for scope, scope_step in self.running_scopes():
            for sub in g.event_subs.get(scope_step, ()):
                if (
                    sub.interrupting
                    and armed(sub, scope or self.s.case_id)
                    and any(inside(scope, sc) for _, sc, _ in stuck)
                ):
                    return True
        return False

    def settle(self) -> None:
        """End the case when nothing is left to do; report a join that can never fire."""
        if self.s.status.ended or self.scope is not None:
            return  # a team sees only its part: the case ends when every branch.ended adds up
        active = [t for t in self.s.tasks.values() if t.status in ACTIVE]
        if self.s.parked or any(t.kind is not StepKind.SUBPROCESS for t in active):
            return  # open work: no verdict while it can still move a token
        # only sub-process instances are open, and they hold tokens at joins alone: those joins
        # are stuck unless an event still armed can release one (release_armed)
        if self.s.joins and not self.terminated:
            if self.release_armed():
                return
            if self.s.incident is None:
                stuck = {g: sorted(fl) for g, fl in self.s.joins.items()}
                self.incident(
                    {"error": f"deadlock: joins {stuck} wait for tokens that cannot come"}
                )
            return
        if active:
            return
        for tid in list(self.s.timers):
            del self.s.timers[tid]
            self.commands.append(CancelTimer(tid))
        self.s.status = CaseStatus.COMPLETED
        self.s.ended_at = self.at
        self.emit(
            EventType.CASE_COMPLETED,
            data={"cycle_s": self.at - self.s.started_at, "terminated": self.terminated},
        )
