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
    StepKind,
)

_WORK = frozenset({StepKind.HUMAN, StepKind.APPROVAL, StepKind.AUTOMATED})
_ONLY_FOR = {
    "wait": frozenset({StepKind.TIMER}),
    "message": frozenset({StepKind.MESSAGE}),
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
                kinds = " and ".join(sorted(k.value for k in allowed))
                add(s.at(key), s.id, f"'{key}' applies to {kinds} steps, not {s.kind} steps")
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
        if s.kind is StepKind.TIMER and s.wait is None:
            add(s.loc, s.id, "a timer step needs 'wait' (an ISO-8601 duration such as PT1H)")
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

    for f in d.flows:
        if f.target not in d.steps:
            add(
                f.loc,
                f.source,
                f"flow to unknown step {f.target!r}{_did_you_mean(f.target, d.steps)}",
            )
        if f.target == d.start and d.steps[d.start].kind is StepKind.START:
            add(f.loc, f.source, f"flow into the start step {d.start!r}")

    for sid, s in d.steps.items():
        out = d.outgoing.get(sid, ())
        inc = d.incoming.get(sid, ())
        if s.kind is StepKind.END and out:
            add(s.loc, sid, "an end step has no outgoing flows")
        if s.kind is StepKind.START and inc:
            add(s.loc, sid, "a start step has no incoming flows")
        if s.kind.is_gateway and not out:
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
        if s.kind.is_gateway and len(out) <= 1 and len(inc) <= 1:
            add(s.loc, sid, f"{s.kind} gateway neither splits nor joins")
    _check_graph(d, add)


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
            if not any(len(d.outgoing.get(a, ())) > 1 for a in ancestors):
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
