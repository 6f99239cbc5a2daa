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
from accord.kernel.graph import graph_of
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
    Move,
    _Base,
    _Incident,
)
from accord.model.types import (
    Flow,
    StepKind,
)


class _Tokens(_Base):
    """Part of the kernel's _Step: routing, joins, handoffs, new tasks, the end."""

    def route(self, node: str, tok: Token) -> list[Move]:
        """Choose the flows a token leaving ``node`` takes (splitting its weight between them);
        park it on an incident."""
        try:
            flows = self.decide(node)
        except _Incident as inc:
            self.s.parked.append((node, tok))
            self.incident({"step": node, "error": inc.message})
            return []
        if len(flows) == 1:
            return [(flows[0], tok)]
        share = str(Fraction(tok.weight) / len(flows)) if flows else tok.weight
        return [(f, Token(tok.origin, share)) for f in flows]

    def decide(self, node: str) -> list[Flow]:
        out = self.d.outgoing.get(node, ())
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
        for a team node, leaves the team as a handoff."""
        work: deque[Move] = deque(flows)
        for node, tok in enter or ():
            self.enter(node, tok, work)
        while True:
            while work and not self.terminated:
                flow, tok = work.popleft()
                if self.scope is not None and self.scope.elsewhere(
                    flow.target, self.owner_of(flow.target, self.s.data)
                ):
                    self.hand_off(flow, tok)
                elif self.d.is_join(flow.target):
                    slots = self.s.joins.setdefault(flow.target, {})
                    slots.setdefault(flow.id, []).append(tok)
                else:
                    self.enter(flow.target, tok, work)
            if self.terminated or not self.fire_joins(work):
                return

    def enter(self, node: str, tok: Token, work: deque[Move]) -> None:
        step = self.d.steps[node]
        if step.kind is StepKind.EVENT_GATEWAY:
            # wait for every event at once; the first that happens wins (see finish())
            self.s.counter += 1
            race = f"{self.s.case_id}:race:{self.s.counter}"
            targets = self.d.outgoing.get(node, ())
            self.gateway_decided(node, list(targets))
            share = str(Fraction(tok.weight) / max(len(targets), 1))
            for f in targets:
                self.create_task(f.target, Token(tok.origin, share), race=race)
        elif step.kind.is_gateway or step.kind is StepKind.START:
            work.extend(self.route(node, tok))
        elif step.kind is StepKind.END:
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
        again, so no inclusive join is judged while another join's output is still in flight."""
        for gid in list(self.s.joins):
            slots = self.s.joins[gid]
            incoming = self.d.incoming[gid]
            taking: list[str] = []
            if self.d.steps[gid].kind is StepKind.PARALLEL:
                if all(slots.get(f.id) for f in incoming):
                    taking = [f.id for f in incoming]
            elif self.scope is not None:
                taking = self.announced(gid, slots)
            elif any(slots.get(f.id) for f in incoming) and self.inclusive_ready(gid, slots):
                taking = [f.id for f in incoming if slots.get(f.id)]
            taken = [slots[fid].pop(0) for fid in taking]
            for fid in [k for k, v in slots.items() if not v]:
                del slots[fid]
            if not slots:
                del self.s.joins[gid]
            if taken:
                origin = tuple(dict.fromkeys(o for t in taken for o in t.origin))
                weight = str(sum((Fraction(t.weight) for t in taken), Fraction(0)))
                work.extend(self.route(gid, Token(origin, weight)))
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

    def inclusive_ready(self, gid: str, slots: dict[str, list[Token]]) -> bool:
        """BPMN 2.0.2, 13.4.3: the join fires when, for each empty incoming flow, no token has
        a path to it -- except a path through the join itself, or one that passes a node from
        which a flow that already holds a token can be reached."""
        positions = {t.step for t in self.s.tasks.values() if t.status in ACTIVE}
        positions.update(g for g, fl in self.s.joins.items() if g != gid and any(fl.values()))
        positions.update(node for node, _ in self.s.parked)
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
        self, node: str, tok: Token, resend: str | None = None, race: str | None = None
    ) -> None:
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
        status = TaskStatus.WAITING if step.kind.is_wait else TaskStatus.READY
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
            )
        )
        inputs = {k: self.s.data[k] for k in step.inputs if k in self.s.data}
        self.emit(
            EventType.TASK_READY,
            step=node,
            team=step.team,
            task=tid,
            data={"attempt": 1, "hub": hub, "kind": step.kind.value, "input": inputs},
        )
        if step.kind is StepKind.TIMER and step.wait is not None:
            self.schedule(TimerKind.WAIT, tid, self.at + step.wait)
            return
        if step.sla is not None and step.kind.is_work:
            self.schedule(TimerKind.SLA, tid, self.at + step.sla)
        self.dispatch(task)

    def dispatch(self, t: Task) -> None:
        step = self.d.steps[t.step]
        if t.kind is StepKind.AUTOMATED and step.handler:
            self.commands.append(
                RunHandler(t.id, t.step, step.handler, t.id, t.attempt, dict(self.s.data))
            )
        elif t.kind.is_work:
            self.offer(t)

    def offer(self, t: Task) -> None:
        self.commands.append(OfferTask(t.id, t.step, t.team, t.role, t.hub))

    def settle(self) -> None:
        """End the case when nothing is left to do; report a join that can never fire."""
        if self.s.status.ended or self.scope is not None:
            return  # a team sees only its part: the case ends when every branch.ended adds up
        if any(t.status in ACTIVE for t in self.s.tasks.values()) or self.s.parked:
            return
        if self.s.joins and not self.terminated:
            if self.s.incident is None:
                stuck = {g: sorted(fl) for g, fl in self.s.joins.items()}
                self.incident(
                    {"error": f"deadlock: joins {stuck} wait for tokens that cannot come"}
                )
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
