"""Choreography by projection: each team's local contract, derived from the global process.

Every flow whose source and target belong to different teams is a handoff: an event the source
team publishes and the target team consumes. A gateway is decided by the team holding the token
when it gets there (the team of the step before it), and a join lives with the team of the step
after it. A team's node holds only its own part of each case; nothing here is instance state.

Some processes cannot be run without a global view, and are refused with the reason:

- an inclusive join that no single inclusive split announces (the team joining could not know
  which branches to wait for without seeing every token);
- an inclusive split whose branches can miss its join (the join would wait for ever);
- a decision that needs data produced on a branch the deciding team may not have heard from.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from accord.errors import DefinitionError, Problem
from accord.kernel.scope import HUB, Scope
from accord.model.types import Flow, Mode, ProcessDefinition, StepKind

Refuse = Callable[[str, str], None]
Match = tuple[str, Mapping[str, str]]


@dataclass(frozen=True, slots=True)
class Handoff:
    """A flow that crosses teams, seen from both ends."""

    flow: str
    from_team: str
    to_team: str
    to_node: str
    to_step: str
    contract_of: tuple[str, ...]


@dataclass(frozen=True)
class TeamPart:
    """One team's local contract."""

    team: str
    steps: tuple[str, ...]
    joins: tuple[str, ...]
    decisions: tuple[str, ...]
    receives: tuple[Handoff, ...]
    sends: tuple[Handoff, ...]
    announces_to: tuple[str, ...]
    scope: Scope


@dataclass(frozen=True)
class Projection:
    """The global process cut into team parts."""

    definition: ProcessDefinition
    initiator: str
    parts: dict[str, TeamPart]
    handoffs: tuple[Handoff, ...]
    owner: dict[str, str] = field(default_factory=dict)

    def part(self, team: str) -> TeamPart:
        """One team's part; raise DefinitionError naming the teams that exist."""
        if team not in self.parts:
            known = ", ".join(sorted(self.parts))
            problem = Problem(self.definition.source, 1, 1, team, f"no such team (teams: {known})")
            raise DefinitionError([problem])
        return self.parts[team]


def _forward(d: ProcessDefinition, node: str) -> list[str]:
    """The first work (or team-owned wait) steps reachable from ``node``, in flow order."""
    found: list[str] = []
    seen = {node}
    queue = deque(f.target for f in d.outgoing.get(node, ()) if not f.message)
    while queue:
        n = queue.popleft()
        if n in seen or n not in d.steps:
            continue
        seen.add(n)
        if d.steps[n].team is not None:
            found.append(n)
            continue
        queue.extend(f.target for f in d.outgoing.get(n, ()) if not f.message)
    return found


def _backward(d: ProcessDefinition, node: str) -> list[str]:
    """The nearest team-owned steps before ``node``."""
    found: list[str] = []
    seen = {node}
    queue = deque(f.source for f in d.incoming.get(node, ()))
    while queue:
        n = queue.popleft()
        if n in seen:
            continue
        seen.add(n)
        if d.steps[n].team is not None:
            found.append(n)
            continue
        queue.extend(f.source for f in d.incoming.get(n, ()))
    return found


def project(d: ProcessDefinition, *, hybrid: bool = False) -> Projection:
    """Cut ``d`` into team parts, or raise DefinitionError explaining why it cannot be.

    With ``hybrid`` the steps whose mode is central (the process's own mode unless a step says
    otherwise) belong to the hub, which is then one more part (named ``HUB``); the rest stay
    with their teams, and local steps with hub-involvement criteria go to the hub whenever
    their condition holds.
    """
    problems: list[Problem] = []

    def refuse(node: str, message: str) -> None:
        loc = d.steps[node].loc
        problems.append(Problem(loc.file, loc.line, loc.col, node, message))

    first = _forward(d, d.start) if d.steps[d.start].team is None else [d.start]
    if not first:
        refuse(d.start, "no team does any work in this process: nothing to choreograph")
        raise DefinitionError(problems)

    def step_owner(sid: str) -> str:
        if hybrid and d.mode_of(sid) is Mode.CENTRAL:
            return HUB
        return str(d.steps[sid].team)

    initiator = step_owner(first[0])
    owner: dict[str, str] = {}
    work_after: dict[str, str] = {}
    for sid, step in d.steps.items():
        if step.team is not None:
            owner[sid] = step_owner(sid)
    # a sub-process runs whole at one node, its team's: only that node sees the instance
    # (its tokens, boundaries and end), whoever does the steps inside it
    for sid, step in d.steps.items():
        top, seen = step.parent, 0
        while top is not None and d.steps[top].parent is not None and seen <= len(d.steps):
            top, seen = d.steps[top].parent, seen + 1
        if top is not None and top in owner:
            owner[sid] = owner[top]
    # a boundary event fires at the node running its activity: its token leaves from there
    for sid, step in d.steps.items():
        if step.kind is StepKind.BOUNDARY and step.attached_to in owner:
            owner.setdefault(sid, owner[str(step.attached_to)])
    for sid in d.steps:
        if d.is_join(sid):
            after = _forward(d, sid)
            before = _backward(d, sid)
            if after:
                owner[sid] = owner[after[0]]
                work_after[sid] = after[0]
            elif before:
                owner[sid] = owner[before[0]]
            else:
                owner[sid] = initiator
    owner.setdefault(d.start, initiator)

    _check_scopes(d, owner, refuse)
    matches = _inclusive_matches(d, refuse)
    _check_decisions(d, refuse)
    if problems:
        raise DefinitionError(problems)

    # local steps with hub-involvement criteria run at the hub whenever their condition holds,
    # so flows into and out of them may cross between the hub and their team
    swings = {
        sid
        for sid, st in d.steps.items()
        if hybrid and st.require_hub_when is not None and owner.get(sid) != HUB
    }
    handoffs: list[Handoff] = []
    for f in d.flows:
        to_team = owner.get(f.target)
        if to_team is None:
            continue
        receivers = {to_team} | ({HUB} if f.target in swings else set())
        senders = _holders(d, f, owner)
        if swings & (_backward_flow(d, f) | {f.source}):
            senders |= {HUB}
        to_step = work_after.get(f.target, f.target)
        contract_of = tuple(sorted(_backward_flow(d, f)))
        for from_team in sorted(senders):
            for receiver in sorted(receivers):
                if from_team != receiver:
                    handoffs.append(
                        Handoff(f.id, from_team, receiver, f.target, to_step, contract_of)
                    )

    parts: dict[str, TeamPart] = {}
    hub_steps = frozenset(sid for sid, o in owner.items() if o == HUB)
    criteria = frozenset(swings)
    holders = sorted(set(owner.values()) | ({HUB} if hybrid else set()))
    for team in holders if hybrid else list(d.teams):
        scope = Scope(
            team,
            initiator=initiator,
            owner=dict(owner),
            work_after=dict(work_after),
            matches=matches,
            hub_steps=hub_steps,
            hybrid=hybrid,
            criteria=criteria,
        )
        decisions = tuple(
            sorted(
                sid
                for sid, s in d.steps.items()
                if sum(1 for f in d.outgoing.get(sid, ()) if not f.message) > 1
                and (
                    owner.get(sid) == team
                    or (s.team is None and team in _holder_teams(d, sid, owner))
                )
            )
        )
        parts[team] = TeamPart(
            team=team,
            steps=tuple(
                sid for sid, s in d.steps.items() if owner.get(sid) == team and s.kind.is_work
            ),
            joins=tuple(sorted(j for j in owner if d.is_join(j) and owner[j] == team)),
            decisions=decisions,
            receives=tuple(h for h in handoffs if h.to_team == team),
            sends=tuple(h for h in handoffs if h.from_team == team),
            announces_to=tuple(
                sorted(
                    {
                        owner[j]
                        for s, (j, _) in matches.items()
                        if team in _holder_teams(d, s, owner)
                    }
                )
            ),
            scope=scope,
        )
    return Projection(d, initiator, parts, tuple(handoffs), owner)


def _holder_teams(d: ProcessDefinition, node: str, owner: dict[str, str]) -> set[str]:
    """Teams that can hold a token arriving at ``node`` (it decides there)."""
    if node in owner and not d.is_join(node):
        return {owner[node]}
    if d.is_join(node):
        return {owner[node]}
    teams: set[str] = set()
    for f in d.incoming.get(node, ()):
        teams |= _holders(d, f, owner)
    return teams or ({owner[d.start]} if node == d.start else set())


def _holders(d: ProcessDefinition, f: Flow, owner: dict[str, str], depth: int = 0) -> set[str]:
    """Teams that can send a token along ``f``."""
    src = f.source
    if src in owner:
        return {owner[src]}
    if depth > len(d.steps):
        return set()
    teams: set[str] = set()
    for g in d.incoming.get(src, ()):
        teams |= _holders(d, g, owner, depth + 1)
    if not teams and src == d.start:
        teams = {owner[d.start]}
    return teams


def _backward_flow(d: ProcessDefinition, f: Flow) -> set[str]:
    """The work steps whose output a token on ``f`` carries (its data contracts apply)."""
    if d.steps[f.source].team is not None:
        return {f.source}
    return set(_backward(d, f.source))


def _inclusive_matches(d: ProcessDefinition, report: Refuse) -> dict[str, Match]:
    """Pair each inclusive split with the inclusive join its branches meet at.

    Inner blocks are matched first: a branch that passes an inner inclusive split jumps to
    that split's join, so nested inclusive blocks pair up from the inside out.
    """
    splits = [
        sid
        for sid, s in d.steps.items()
        if s.kind is StepKind.INCLUSIVE and len(d.outgoing.get(sid, ())) >= 2
    ]
    matches: dict[str, Match] = {}
    complaints: dict[str, list[str]] = {}
    claimed: set[str] = set()
    for _ in range(len(splits) + 1):
        progressed = False
        complaints = {}
        for sid in splits:
            if sid in matches:
                continue
            found, problems, reached = _match(d, sid, matches)
            if found is not None:
                matches[sid] = found
                progressed = True
            else:
                complaints[sid] = problems
                claimed |= reached
        if not progressed:
            break
    for sid, problems in complaints.items():
        for message in problems:
            report(sid, message)
    announced = {join for join, _ in matches.values()} | claimed
    for jid, j in d.steps.items():
        if j.kind is StepKind.INCLUSIVE and d.is_join(jid) and jid not in announced:
            report(jid, "inclusive join with no inclusive split before it to announce its "
                   "branches: without a global view no team can tell what to wait for")  # fmt: skip
    return matches


def _match(
    d: ProcessDefinition, sid: str, matches: dict[str, Match]
) -> tuple[Match | None, list[str], set[str]]:
    """The split's join and branch map, or the problems (and the joins it did reach, which
    then need no second complaint)."""
    problems: list[str] = []
    branch_to_flow: dict[str, str] = {}
    joins_met: set[str] = set()
    for branch in d.outgoing[sid]:
        reached, leaks = _branch_reach(d, branch, matches)
        joins_met |= {j for j, _ in reached}
        if leaks:
            problems.append(
                f"branch {branch.id!r} can end without reaching a join (via {leaks}); "
                "a choreographed join would wait for it for ever"
            )
        if len(reached) > 1:
            problems.append(
                f"branch {branch.id!r} reaches several join flows "
                f"{sorted(f for _, f in reached)}; no team could say which to expect"
            )
        for _j, fid in reached:
            branch_to_flow[branch.id] = fid
    if len(joins_met) > 1:
        problems.append(f"its branches meet at different joins {sorted(joins_met)}")
    if problems or not joins_met:
        # a split refused for its own reasons still owns its one join: no second complaint
        return None, problems, joins_met if len(joins_met) == 1 else set()
    return (joins_met.pop(), branch_to_flow), [], set()


def _branch_reach(
    d: ProcessDefinition, branch: Flow, matches: dict[str, Match]
) -> tuple[set[tuple[str, str]], list[str]]:
    """Inclusive-join incoming flows this branch reaches first, and the ends it can reach
    without passing one. Matched inner inclusive blocks are stepped over."""
    reached: set[tuple[str, str]] = set()
    leaks: list[str] = []
    seen: set[str] = set()
    queue: deque[Flow] = deque([branch])
    while queue:
        f = queue.popleft()
        t = f.target
        if t in matches:
            inner_join = matches[t][0]
            if inner_join not in seen:
                seen.add(inner_join)
                queue.extend(d.outgoing.get(inner_join, ()))
            continue
        if d.steps[t].kind is StepKind.INCLUSIVE and d.is_join(t):
            reached.add((t, f.id))
            continue
        if t in seen:
            continue
        seen.add(t)
        out = tuple(f for f in d.outgoing.get(t, ()) if not f.message)  # messages are no branch
        if not out:
            leaks.append(t)
        queue.extend(out)
    return reached, leaks


def _check_decisions(d: ProcessDefinition, report: Refuse) -> None:
    """A decision may only use data that reaches the deciding team on every path."""
    producers: dict[str, set[str]] = {}
    for sid, s in d.steps.items():
        for name in s.outputs:
            producers.setdefault(name, set()).add(sid)
    for sid in d.steps:
        conds = [f.condition for f in d.outgoing.get(sid, ()) if f.condition is not None]
        for cond in conds:
            for name in sorted(cond.names):
                if name == "outcome" or name not in producers:
                    continue  # an approval's own outcome, or start data: it travels everywhere
                made_by = producers[name]
                if sid in made_by:
                    continue
                if _reachable_avoiding(d, d.start, sid, made_by):
                    report(
                        sid,
                        f"decides on {name!r}, which only {sorted(made_by)} produce; "
                        "a path reaches this decision without passing them, so the deciding "
                        "team may not have that data (use a join first, or the hub)",
                    )


def _check_scopes(d: ProcessDefinition, owner: dict[str, str], report: Refuse) -> None:
    """What choreography cannot run without a global view of a case's scopes: a sub-process
    no one team owns whose steps several teams do (its instance would live at several nodes),
    event sub-processes of the whole process (they listen to the whole case), and signals
    between teams (a broadcast reaches only the node that throws it)."""
    for sid, step in d.steps.items():
        if step.kind is not StepKind.SUBPROCESS or sid in owner:
            continue
        inner = _inner(d, sid)
        teams = sorted({str(d.steps[i].team) for i in inner if d.steps[i].kind.is_work})
        if len(teams) > 1 and step.parent is None:
            report(
                sid,
                f"a sub-process spanning teams {', '.join(teams)} (steps "
                f"{', '.join(sorted(i for i in inner if d.steps[i].kind.is_work))}) cannot be "
                "choreographed: give the sub-process a team, whose node then runs it whole",
            )
        if step.on is not None and step.parent is None:
            # (even with one team: a team node does not arm the process's own listeners)
            report(
                sid,
                "an event sub-process of the whole process cannot be choreographed: no team's "
                "node sees the whole case",
            )
    signals = [
        s for s in d.steps.values() if s.signal and (s.throw or s.on or s.kind is StepKind.SIGNAL)
    ]
    holders = {owner.get(s.attached_to or s.id) or owner.get(s.parent or "") for s in signals}
    if len(holders) > 1:
        for s in signals:
            report(
                s.id,
                f"signal {s.signal!r} is thrown or caught at more than one team's node: a "
                "signal reaches only the node that throws it, so it cannot be choreographed",
            )


def _inner(d: ProcessDefinition, sub: str) -> list[str]:
    """Every step inside a sub-process, nested ones included."""
    out: list[str] = []
    for sid, step in d.steps.items():
        scope = step.parent
        while scope is not None and scope != sub:
            scope = d.steps[scope].parent
        if scope == sub:
            out.append(sid)
    return out


def _reachable_avoiding(d: ProcessDefinition, start: str, goal: str, avoid: set[str]) -> bool:
    """Can a token reach ``goal`` from ``start`` without passing ``avoid``? A parallel join is
    passed only when every one of its incoming branches can be reached (it waits for all)."""
    if start in avoid:
        return False
    reached = {start}
    changed = True
    while changed:
        changed = False
        for f in d.flows:
            t = f.target
            if f.source not in reached or t in reached or t in avoid:
                continue
            waits_for_all = d.is_join(t) and d.steps[t].kind is StepKind.PARALLEL
            if waits_for_all and not all(g.source in reached for g in d.incoming[t]):
                continue
            reached.add(t)
            changed = True
    return goal in reached
