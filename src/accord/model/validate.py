"""Graph and reference checks on a loaded definition. Appends Problems; never raises."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable

from accord.errors import Problem
from accord.model.types import (
    ErrorAction,
    Location,
    ProcessDefinition,
    Step,
    StepKind,
)

_WORK = frozenset({StepKind.HUMAN, StepKind.APPROVAL, StepKind.AUTOMATED})
_EVENTFUL = frozenset({StepKind.BOUNDARY, StepKind.SUBPROCESS})  # started by an event (`on`)
_ONLY_FOR = {
    "wait": frozenset({StepKind.TIMER}) | _EVENTFUL,
    "date": frozenset({StepKind.TIMER}) | _EVENTFUL,
    "cycle": _EVENTFUL,
    "message": frozenset({StepKind.MESSAGE}) | _EVENTFUL,
    "signal": frozenset({StepKind.SIGNAL, StepKind.END, StepKind.THROW}) | _EVENTFUL,
    "code": frozenset({StepKind.END, StepKind.THROW}) | _EVENTFUL,
    "throw": frozenset({StepKind.END, StepKind.THROW}),
    "on": _EVENTFUL,
    "interrupting": _EVENTFUL,
    "attached_to": frozenset({StepKind.BOUNDARY}),
    "multi_instance": _WORK | {StepKind.SUBPROCESS},
    "loop": _WORK | {StepKind.SUBPROCESS},
    "sla": _WORK,
    "escalate_to": _WORK,
    "retry": _WORK,
    "role": _WORK - {StepKind.AUTOMATED},
    "contract": _WORK | {StepKind.MESSAGE},
    "outputs": _WORK | {StepKind.MESSAGE},
}
Report = Callable[[Location, str, str], None]
_HANDLER = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _did_you_mean(word: str, choices: object) -> str:
    from accord.model.loader import suggest

    return suggest(word, choices)


def validate(d: ProcessDefinition, problems: list[Problem], owner_loc: Location) -> None:
    """Check references, step settings and the shape of the graph; append every problem."""

    def add(loc: Location, element: str, message: str) -> None:
        problems.append(Problem(loc.file, loc.line, loc.col, element, message))

    members = {m.id for t in d.teams.values() for m in t.members}
    if d.owner is not None and d.owner not in members and d.owner not in d.teams:
        add(owner_loc, d.id, f"owner {d.owner!r} is not a member{_did_you_mean(d.owner, members)}")

    for s in d.steps.values():
        if s.kind.is_work:
            if s.team is None:
                add(s.loc, s.id, f"a {s.kind} step needs a 'team'")
            elif s.team not in d.teams:
                add(s.at("team"), s.id, f"unknown team {s.team!r}{_did_you_mean(s.team, d.teams)}")
            elif s.role is not None:
                team = d.teams[s.team]
                roles = {r for m in team.members for r in m.roles}
                if team.members and s.role not in roles:
                    add(
                        s.at("role"),
                        s.id,
                        f"no member of team {s.team!r} has role {s.role!r}"
                        f"{_did_you_mean(s.role, roles)}",
                    )
        elif s.team is not None and s.team not in d.teams:
            add(s.at("team"), s.id, f"unknown team {s.team!r}{_did_you_mean(s.team, d.teams)}")
        for key, allowed in _ONLY_FOR.items():
            if key in s.key_locs and s.kind not in allowed:
                kinds = " and ".join(sorted(k.value for k in allowed - _EVENTFUL))
                also = " (and to boundary steps and event sub-processes)"
                also = also if allowed >= _EVENTFUL and kinds else ""
                kinds = kinds or "boundary and subprocess"
                add(s.at(key), s.id, f"'{key}' applies to {kinds} steps, not {s.kind} steps{also}")
        if s.kind is StepKind.AUTOMATED:
            if not s.handler:
                add(s.loc, s.id, "an automated step needs a 'handler' (module:function)")
            elif not _HANDLER.match(s.handler):
                add(
                    s.at("handler"),
                    s.id,
                    f"handler {s.handler!r} must look like 'package.module:function'",
                )
        elif s.handler:
            add(
                s.at("handler"),
                s.id,
                f"only automated steps take a handler (this is a {s.kind} step)",
            )
        if s.kind is StepKind.TIMER and s.wait is None and s.date is None:
            add(
                s.loc,
                s.id,
                "a timer step needs 'wait' (an ISO-8601 duration such as PT1H) or 'date'",
            )
        elif s.kind is StepKind.TIMER and s.wait is not None and s.date is not None:
            add(s.at("date"), s.id, "a timer step waits a duration ('wait') or until a 'date', "
                "not both")  # fmt: skip
        if s.kind is StepKind.MESSAGE and not s.message:
            add(s.loc, s.id, "a message step needs 'message' (the name it waits for)")
        if s.escalate_to is not None and s.escalate_to not in d.teams | dict.fromkeys(members):
            choices = list(d.teams) + sorted(members)
            add(
                s.at("escalate_to"),
                s.id,
                f"escalate_to {s.escalate_to!r} is neither a team nor a member"
                f"{_did_you_mean(s.escalate_to, choices)}",
            )
        if s.escalate_to is not None and s.sla is None and "sla" not in s.key_locs:
            add(s.loc, s.id, "escalate_to needs an 'sla' to know when to escalate")
        if s.on_error.action is ErrorAction.REROUTE and s.on_error.to not in d.steps:
            add(
                s.at("on_error"),
                s.id,
                f"on_error reroutes to unknown step {s.on_error.to!r}"
                f"{_did_you_mean(str(s.on_error.to), d.steps)}",
            )
        if s.terminate and s.kind is not StepKind.END:
            add(s.loc, s.id, "only end steps can terminate")
        _check_events(d, s, add)

    for f in d.flows:
        if f.target not in d.steps:
            add(
                f.loc,
                f.source,
                f"flow to unknown step {f.target!r}{_did_you_mean(f.target, d.steps)}",
            )
        if f.target == d.start and d.steps[d.start].kind is StepKind.START:
            add(f.loc, f.source, f"flow into the start step {d.start!r}")
        source, target = d.steps.get(f.source), d.steps.get(f.target)
        if (
            source is not None
            and target is not None
            and source.parent != target.parent
            and not f.message  # a message goes between pools, whatever their scopes
        ):
            add(
                f.loc,
                f.source,
                f"flow to {f.target!r} crosses a sub-process's border ({f.source!r} is in "
                f"{source.parent or 'the process'}, {f.target!r} in "
                f"{target.parent or 'the process'}): leave a sub-process by its own flows",
            )
        if (
            target is not None
            and (target.kind is StepKind.BOUNDARY or target.on)
            and not (f.message and target.kind is StepKind.BOUNDARY and target.on == "message")
        ):  # a message flow may reach a message boundary
            add(f.loc, f.source, f"flow into {f.target!r}: an event starts it, not a flow")

    for sid, s in d.steps.items():
        _check_messages(d, sid, add)
        # message flows are always taken and join nothing: the rules below are for the others
        out = tuple(f for f in d.outgoing.get(sid, ()) if not f.message)
        inc = tuple(f for f in d.incoming.get(sid, ()) if not f.message)
        if s.kind is StepKind.END and d.outgoing.get(sid):
            add(s.loc, sid, "an end step has no outgoing flows")
        if s.kind is StepKind.START and inc:
            add(s.loc, sid, "a start step has no incoming flows")
        if s.kind.is_gateway and not d.outgoing.get(sid):
            add(s.loc, sid, f"{s.kind} gateway has no outgoing flows")
        defaults = [f for f in out if f.default]
        if len(defaults) > 1:
            add(defaults[1].loc, sid, "more than one default flow")
        if defaults and len(out) == 1:
            add(defaults[0].loc, sid, "a default flow needs at least one conditional sibling")
        conditional = [f for f in out if f.condition is not None]
        if s.kind is StepKind.PARALLEL and (conditional or defaults):
            add(s.loc, sid, "a parallel gateway takes every flow: remove 'when'/'default'")
        if s.kind is StepKind.EVENT_GATEWAY:
            if conditional or defaults:
                add(s.loc, sid, "an event gateway waits for events, not conditions: remove "
                    "'when'/'default'")  # fmt: skip
            if len(out) < 2:
                add(s.loc, sid, "an event gateway races at least two events")
            if len(inc) > 1:
                add(s.loc, sid, "an event gateway does not join: merge the flows before it")
            for f in out:
                target = d.steps.get(f.target)
                if target is not None and not target.kind.is_wait:
                    add(f.loc, sid, f"an event gateway leads to timer or message steps, not "
                        f"to {f.target!r} ({target.kind.value})")  # fmt: skip
        if s.kind is StepKind.EXCLUSIVE and len(out) > 1:
            plain = [f for f in out if f.condition is None and not f.default]
            if plain:
                add(
                    plain[0].loc,
                    sid,
                    f"flow to {plain[0].target!r} from an exclusive gateway needs 'when' "
                    "or 'default: true'",
                )
        if not s.kind.is_gateway and conditional and len(conditional) + len(defaults) < len(out):
            add(
                s.loc,
                sid,
                "mix of conditional and unconditional flows: make every flow "
                "conditional (with one default), or use a gateway",
            )
        if s.kind.is_gateway and len(d.outgoing.get(sid, ())) <= 1 and len(inc) <= 1:
            add(s.loc, sid, f"{s.kind} gateway neither splits nor joins")
    _check_graph(d, add)


def _check_messages(d: ProcessDefinition, sid: str, add: Report) -> None:
    """Message flows leave a step that sends when its token moves on (work, waits, a start or
    a parallel gateway), never a decision; and lead to a step that can take them."""
    s = d.steps[sid]
    for f in d.outgoing.get(sid, ()):
        if not f.message:
            continue
        if s.kind in (StepKind.EXCLUSIVE, StepKind.INCLUSIVE, StepKind.EVENT_GATEWAY):
            add(f.loc, sid, f"a message flow cannot leave {s.kind} gateway {sid!r}: send it "
                "from the step before or after the decision")  # fmt: skip
        target = d.steps.get(f.target)
        if target is not None and target.kind in (StepKind.END, StepKind.START):
            add(f.loc, sid, f"a message flow leads to a step that waits for it or starts "
                f"work, not to {target.kind} step {f.target!r}")  # fmt: skip


def _check_graph(d: ProcessDefinition, report: Report) -> None:
    steps = d.steps
    valid_flows = [f for f in d.flows if f.target in steps]
    succ: dict[str, list[str]] = {s: [] for s in steps}
    pred: dict[str, list[str]] = {s: [] for s in steps}
    for f in valid_flows:
        succ[f.source].append(f.target)
        pred[f.target].append(f.source)
    for s in steps.values():
        if s.on_error.action is ErrorAction.REROUTE and s.on_error.to in steps:
            succ[s.id].append(s.on_error.to)
        # a scope leads to its start and its event sub-processes; an activity to its boundaries
        if s.kind is StepKind.START and s.parent is not None and s.parent in steps:
            succ[s.parent].append(s.id)
            pred[s.id].append(s.parent)
        if s.on is not None and s.kind is StepKind.SUBPROCESS:
            scope = s.parent if s.parent in steps else d.start
            succ[scope].append(s.id)
            pred[s.id].append(scope)
        if s.kind is StepKind.BOUNDARY and s.attached_to in steps:
            succ[s.attached_to].append(s.id)
            pred[s.id].append(s.attached_to)
    reached = _bfs(d.start, succ)
    for sid, s in steps.items():
        if sid not in reached:
            report(s.loc, sid, f"unreachable: no path leads here from the start {d.start!r}")
    ends = {sid for sid in steps if not d.outgoing.get(sid)}
    can_end: set[str] = set()
    for e in ends:
        can_end |= _bfs(e, pred)
    for sid in reached:
        if sid not in can_end:
            report(steps[sid].loc, sid, "no path from here reaches an end")
    for sid, s in steps.items():
        if d.is_join(sid) and sid in reached:
            ancestors = _bfs(sid, pred) - {sid}
            if not any(len(succ.get(a, ())) > 1 for a in ancestors):
                report(s.loc, sid, f"{s.kind} join without a split before it")


def _bfs(start: str, edges: dict[str, list[str]]) -> set[str]:
    seen = {start}
    queue = deque([start])
    while queue:
        for nxt in edges.get(queue.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def _check_events(d: ProcessDefinition, s: Step, add: Report) -> None:
    """Sub-processes, boundary events, throws and catches: what each needs to run."""
    if s.parent is not None and s.parent not in d.steps:
        add(s.loc, s.id, f"declared in unknown sub-process {s.parent!r}")
    if s.kind is StepKind.SUBPROCESS:
        inner = [c for c in d.steps.values() if c.parent == s.id]
        starts = [c.id for c in inner if c.kind is StepKind.START]
        if inner and len(starts) != 1:
            add(
                s.loc,
                s.id,
                f"a sub-process needs exactly one start step among its steps, not {len(starts)}",
            )
        if s.on is not None:
            if d.incoming.get(s.id) or d.outgoing.get(s.id):
                add(s.loc, s.id, "an event sub-process has no flows in or out: an event starts it")
            if not inner:
                add(s.loc, s.id, "an event sub-process needs steps")
    if s.kind is StepKind.BOUNDARY:
        target = d.steps.get(s.attached_to or "")
        if s.attached_to is None:
            add(s.loc, s.id, "a boundary step needs 'attached_to' (the activity it watches)")
        elif target is None:
            add(
                s.at("attached_to"),
                s.id,
                f"attached_to unknown step {s.attached_to!r}"
                + _did_you_mean(s.attached_to, d.steps),
            )
        elif not (target.kind.is_work or target.kind.is_wait or target.kind is StepKind.SUBPROCESS):
            add(
                s.at("attached_to"),
                s.id,
                f"a boundary watches a work step, a wait or a sub-process, not {target.kind} "
                f"step {target.id!r}",
            )
        elif target.parent != s.parent or target.on is not None:
            add(s.at("attached_to"), s.id, f"a boundary sits in the same scope as {target.id!r}")
        if s.on is None:
            add(s.loc, s.id, "a boundary step needs 'on' (timer, message, error, ...)")
        if any(not f.message for f in d.incoming.get(s.id, ())):  # a message may come in
            add(s.loc, s.id, "a boundary step has no incoming flows")
    if s.on is not None:
        if s.on == "timer" and s.wait is None and s.date is None:
            add(s.loc, s.id, "a timer event needs 'wait', 'date' or 'cycle'")
        if s.repeat and s.interrupting:
            add(s.at("cycle"), s.id, "a cycle fires again only if the event is not interrupting")
        if s.on == "message" and not s.message:
            add(s.loc, s.id, "a message event needs 'message' (the name it waits for)")
        if s.on == "signal" and not s.signal:
            add(s.loc, s.id, "a signal event needs 'signal' (the name it waits for)")
        if s.on == "error" and not s.interrupting:
            add(s.at("interrupting"), s.id, "an error always interrupts (BPMN)")
        if s.on != "timer":
            for key in ("wait", "date", "cycle"):
                if key in s.key_locs:
                    add(s.at(key), s.id, f"'{key}' applies to timer events, not {s.on} events")
    if s.kind is StepKind.THROW and s.throw not in ("escalation", "signal"):
        add(s.loc, s.id, "a throw step needs 'throw: escalation' or 'throw: signal'")
    if s.throw == "signal" and not s.signal:
        add(s.loc, s.id, "a signal throw needs 'signal' (the name it broadcasts)")
    if s.kind is StepKind.SIGNAL and not s.signal:
        add(s.loc, s.id, "a signal step needs 'signal' (the name it waits for)")
    if s.terminate and s.throw is not None:
        add(s.loc, s.id, "an end step terminates or throws, not both")
