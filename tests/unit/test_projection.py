"""Choreography by projection: cutting a process into team parts (SEMANTICS.md, "Choreography
by projection" and "Hybrid").

Each example is cut and checked against an oracle written here (who can hold a token on each
flow, who owns each join); small processes check every refusal and its located message; the pure
kernel run in a team's scope shows inclusive announcements and run-time hub criteria.
"""

from __future__ import annotations

import textwrap
from collections import deque
from pathlib import Path

import pytest
from casekit import TEAMS

from accord.choreo.projection import Projection, project
from accord.errors import DefinitionError, Problem, TaskStateError
from accord.events import EventType
from accord.kernel import ArriveToken, CaseState, CompleteTask, StartCase, advance
from accord.kernel.scope import HUB
from accord.model import ProcessDefinition, load, loads

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
ONBOARDING = ROOT / "examples" / "client-onboarding.yaml"
PROCUREMENT = ROOT / "examples" / "procurement.yaml"


def doc(steps: str, header: str = "") -> str:
    """The full YAML text of a process ``t`` with the standard test teams."""
    body = textwrap.indent(textwrap.dedent(steps).strip("\n"), "  ")
    return f"process: t\n{textwrap.dedent(header)}{TEAMS}steps:\n{body}\n"


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing ``needle``."""
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in document")


def refusal(text: str, **kw: bool) -> list[Problem]:
    d = loads(text)
    with pytest.raises(DefinitionError) as exc:
        project(d, **kw)
    return exc.value.problems


# -- an oracle, written independently of the projection -------------------------------------


def join_owner_oracle(d: ProcessDefinition, join: str) -> str:
    """The team of the first step after the join (else before it): where the join lives."""
    for direction in ("out", "in"):
        seen = {join}
        edges = d.outgoing if direction == "out" else d.incoming
        queue = deque([join])
        while queue:
            node = queue.popleft()
            for f in edges.get(node, ()):
                nxt = f.target if direction == "out" else f.source
                if nxt in seen:
                    continue
                seen.add(nxt)
                if d.steps[nxt].team is not None:
                    return str(d.steps[nxt].team)
                queue.append(nxt)
    raise AssertionError(f"no team around {join}")


def owners_oracle(d: ProcessDefinition) -> dict[str, str]:
    owner = {sid: str(s.team) for sid, s in d.steps.items() if s.team is not None}
    owner.update({sid: join_owner_oracle(d, sid) for sid in d.steps if d.is_join(sid)})
    return owner


def holders_oracle(
    d: ProcessDefinition, owner: dict[str, str], initiator: str, node: str
) -> set[str]:
    """Teams that can hold a token leaving ``node``: its owner, else whoever brought it there."""
    if node in owner:
        return {owner[node]}
    found: set[str] = set()
    seen = {node}
    queue = deque([node])
    while queue:
        n = queue.popleft()
        if n == d.start:
            found.add(initiator)
        for f in d.incoming.get(n, ()):
            if f.source in owner:
                found.add(owner[f.source])
            elif f.source not in seen:
                seen.add(f.source)
                queue.append(f.source)
    return found


def expected_handoffs(d: ProcessDefinition, initiator: str) -> set[tuple[str, str, str]]:
    owner = owners_oracle(d)
    out = set()
    for f in d.flows:
        to_team = owner.get(f.target)
        if to_team is None:
            continue  # a gateway or an end: the token stays with whoever holds it
        for from_team in holders_oracle(d, owner, initiator, f.source):
            if from_team != to_team:
                out.add((f.id, from_team, to_team))
    return out


def handoff_set(p: Projection) -> set[tuple[str, str, str]]:
    return {(h.flow, h.from_team, h.to_team) for h in p.handoffs}


# -- the examples -----------------------------------------------------------------------------

# every example can be choreographed today; a refused one must name steps (checked below)
REFUSED: dict[str, set[str]] = {}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_each_example_projects_or_is_refused_naming_steps(path: Path) -> None:
    d = load(path)
    try:
        p = project(d)
    except DefinitionError as exc:
        assert path.stem in REFUSED, f"{path.name} unexpectedly refused:\n{exc}"
        assert {pr.element for pr in exc.problems} == REFUSED[path.stem]
        assert all(pr.element in d.steps and pr.line > 0 for pr in exc.problems)
        return
    assert path.stem not in REFUSED
    # one part per team; every work step in exactly one part: its team's
    assert set(p.parts) == set(d.teams)
    for sid, step in d.steps.items():
        if step.kind.is_work:
            holders = [t for t, part in p.parts.items() if sid in part.steps]
            assert holders == [step.team], sid
    first_work = next(s for s in d.steps.values() if s.team is not None)
    assert p.initiator == first_work.team
    for part in p.parts.values():
        assert part.scope.team == part.team
        assert part.scope.initiator == p.initiator
        assert not part.scope.hybrid
        assert part.scope.criteria == frozenset()
        assert part.scope.hub_steps == frozenset()
        assert set(part.receives) == {h for h in p.handoffs if h.to_team == part.team}
        assert set(part.sends) == {h for h in p.handoffs if h.from_team == part.team}
    assert HUB not in p.owner.values()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_handoffs_exactly_where_source_and_target_owners_differ(path: Path) -> None:
    d = load(path)
    p = project(d)
    assert handoff_set(p) == expected_handoffs(d, p.initiator)
    for h in p.handoffs:
        f = d.flow_by_id[h.flow]
        assert h.from_team != h.to_team
        assert h.to_node == f.target
        assert h.to_team == p.owner[f.target]
    # flows between two steps of one team never leave it
    for f in d.flows:
        src, tgt = d.steps[f.source].team, d.steps[f.target].team
        if src is not None and src == tgt:
            assert all(h.flow != f.id for h in p.handoffs), f.id


def test_onboarding_parts_and_handoffs() -> None:
    p = project(load(ONBOARDING))
    assert p.initiator == "sales"
    assert handoff_set(p) == {
        ("request->review", "sales", "compliance"),
        ("review->request", "compliance", "sales"),
        ("provision->accounts", "compliance", "it"),
        ("provision->assign-manager", "compliance", "account-management"),
        ("accounts->ready", "it", "account-management"),
    }
    am = p.part("account-management")
    assert am.steps == ("assign-manager", "kickoff")
    assert am.joins == ("ready",)
    assert am.sends == ()
    # the gateway after review is decided by the team holding the token there
    assert p.part("compliance").decisions == ("provision", "review")
    assert p.part("it").decisions == ()
    # a handoff to a join names the work it leads to
    (to_join,) = [h for h in p.handoffs if h.flow == "accounts->ready"]
    assert (to_join.to_node, to_join.to_step) == ("ready", "kickoff")
    assert to_join.contract_of == ("accounts",)


def test_part_of_unknown_team_names_the_teams() -> None:
    p = project(load(ONBOARDING))
    with pytest.raises(
        DefinitionError, match=r"no such team \(teams: account-management, compliance"
    ):
        p.part("marketing")


# -- joins ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [ONBOARDING, PROCUREMENT], ids=lambda p: p.stem)
def test_joins_live_with_the_team_after_them(path: Path) -> None:
    d = load(path)
    p = project(d)
    joins = [sid for sid in d.steps if d.is_join(sid)]
    assert joins
    for j in joins:
        assert p.owner[j] == join_owner_oracle(d, j)
        assert j in p.part(p.owner[j]).joins
        assert all(j not in part.joins for t, part in p.parts.items() if t != p.owner[j])


def test_join_with_nothing_after_lives_with_the_team_before() -> None:
    text = doc("""
    - {id: a, team: sales, next: P}
    - {id: P, type: parallel, next: [b, c]}
    - {id: b, team: ops, next: J}
    - {id: c, team: ops, next: J}
    - {id: J, type: parallel, next: fin}
    - {id: fin, type: end}
    """)
    p = project(loads(text))
    assert p.owner["J"] == "ops"
    assert p.part("ops").joins == ("J",)
    assert "J" not in p.part("ops").scope.work_after


def test_join_across_three_teams_lives_with_the_third() -> None:
    text = doc("""
    - {id: a, team: sales, next: P}
    - {id: P, type: parallel, next: [b, c]}
    - {id: b, team: ops, next: J}
    - {id: c, team: it, next: J}
    - {id: J, type: parallel, next: d}
    - {id: d, team: sales, next: fin}
    - {id: fin, type: end}
    """)
    p = project(loads(text))
    assert p.owner["J"] == "sales"
    assert handoff_set(p) == {
        ("P->b", "sales", "ops"),
        ("P->c", "sales", "it"),
        ("b->J", "ops", "sales"),
        ("c->J", "it", "sales"),
    }
    assert p.part("sales").scope.work_after["J"] == "d"


# -- inclusive split and join -----------------------------------------------------------------


def test_procurement_inclusive_split_is_matched_and_announced() -> None:
    p = project(load(PROCUREMENT))
    join, branch_to_flow = p.part("management").scope.matches["reviews"]
    assert join == "reviews-done"
    assert dict(branch_to_flow) == {
        "reviews->legal-review": "legal-review->reviews-done",
        "reviews->security-review": "security-review->reviews-done",
        "no-review": "no-review",
    }
    assert p.owner["reviews-done"] == "purchasing"
    assert p.part("purchasing").joins == ("reviews-done",)
    assert p.part("management").announces_to == ("purchasing",)
    assert "reviews" in p.part("management").decisions
    assert all(part.announces_to == () for t, part in p.parts.items() if t != "management")


def test_inclusive_decision_announces_the_branches_to_the_joining_team() -> None:
    """Run management's part in the kernel: its split's event says which flows to expect."""
    d = load(PROCUREMENT)
    scope = project(d).part("management").scope
    data = {
        "item": "laptop",
        "amount": 900,
        "supplier": "acme",
        "cost_center": "it",
        "contract_required": True,
        "it_equipment": True,
        "budget_ok": True,
        "budget_remaining": 5000,
    }
    arrive = ArriveToken(
        at=1.0,
        case_id="c1",
        flow="check-budget->manager-approval",
        origin=("check-budget",),
        data=data,
        msg_id="c1#finance#4",
    )
    tr = advance(d, None, arrive, scope)
    (task,) = tr.state.active_tasks()
    assert task.step == "manager-approval"
    assert not task.hub  # a team node's own work: pulled, never pushed
    done = CompleteTask(at=2.0, actor="max", task_id=task.id, data={"outcome": "approve"})
    tr = advance(d, tr.state, done, scope)
    decided = [e for e in tr.events if e.type is EventType.GATEWAY_DECIDED and e.step == "reviews"]
    assert len(decided) == 1
    assert decided[0].data["announce"] == {
        "join": "reviews-done",
        "expect": ["legal-review->reviews-done", "security-review->reviews-done"],
        "to_team": "purchasing",
    }
    handoffs = {e.data["flow"]: e.data for e in tr.events if e.type is EventType.HANDOFF}
    assert set(handoffs) == {"reviews->legal-review", "reviews->security-review"}
    assert {h["to_team"] for h in handoffs.values()} == {"legal", "security"}
    assert {h["weight"] for h in handoffs.values()} == {"1/2"}
    assert tr.state.active_tasks() == []  # nothing of this case is left at management


def test_refuses_inclusive_join_without_an_announcing_split() -> None:
    text = doc("""
    - {id: a, team: sales, next: P}
    - {id: P, type: parallel, next: [b, c]}
    - {id: b, team: ops, next: J}
    - {id: c, team: it, next: J}
    - {id: J, type: inclusive, next: e}
    - {id: e, team: sales, next: fin}
    - {id: fin, type: end}
    """)
    (pr,) = refusal(text)
    assert pr.element == "J"
    assert pr.line == line_of(text, "{id: J,")
    assert "inclusive join with no inclusive split before it to announce" in pr.message
    assert str(pr).startswith(f"<string>:{pr.line}:{pr.col}: J: ")


def test_refuses_inclusive_split_whose_branch_can_end_before_the_join() -> None:
    text = doc("""
    - {id: a, team: sales, next: S}
    - id: S
      type: inclusive
      next: [{to: b, when: x}, {to: c, default: true}]
    - id: b
      team: ops
      next: [{to: J, when: y}, {to: out, default: true}]
    - {id: out, type: end}
    - {id: c, team: it, next: J}
    - {id: J, type: inclusive, next: e}
    - {id: e, team: sales, next: fin}
    - {id: fin, type: end}
    """)
    (pr,) = refusal(text)
    assert pr.element == "S"
    assert pr.line == line_of(text, "- id: S")
    assert pr.message == (
        "branch 'S->b' can end without reaching a join (via ['out']); "
        "a choreographed join would wait for it for ever"
    )


def test_refuses_inclusive_branches_reaching_different_joins() -> None:
    text = doc("""
    - {id: a, team: sales, next: S}
    - id: S
      type: inclusive
      next: [{to: b, when: x}, {to: c, when: y}, {to: f, default: true}]
    - {id: b, team: ops, next: J1}
    - {id: c, team: it, next: J1}
    - {id: J1, type: inclusive, next: g}
    - {id: g, team: sales, next: J2}
    - {id: f, team: it, next: J2}
    - {id: J2, type: inclusive, next: e}
    - {id: e, team: sales, next: fin}
    - {id: fin, type: end}
    """)
    problems = refusal(text)
    by_element = {pr.element: pr for pr in problems}
    assert by_element["S"].message == "its branches meet at different joins ['J1', 'J2']"
    assert by_element["S"].line == line_of(text, "- id: S")
    # and so neither join has one split that could announce it
    assert {"J1", "J2"} <= set(by_element)
    assert [pr.element for pr in problems] == ["S", "J1", "J2"]  # in file order


def test_refuses_decision_on_data_from_a_parallel_branch() -> None:
    text = doc("""
    - {id: a, team: sales, next: P}
    - {id: P, type: parallel, next: [b, c]}
    - {id: b, team: ops, outputs: [x], next: fin1}
    - {id: fin1, type: end}
    - {id: c, team: it, next: G}
    - id: G
      type: exclusive
      next: [{to: e, when: x > 1}, {to: fin2, default: true}]
    - {id: e, team: sales, next: fin2}
    - {id: fin2, type: end}
    """)
    (pr,) = refusal(text)
    assert pr.element == "G"
    assert pr.line == line_of(text, "- id: G")
    assert pr.message.startswith("decides on 'x', which only ['b'] produce; a path reaches")


def test_refuses_decision_on_data_produced_on_only_some_paths() -> None:
    text = doc("""
    - {id: a, team: sales, next: X}
    - id: X
      type: exclusive
      next: [{to: b, when: k}, {to: c, default: true}]
    - {id: b, team: ops, outputs: [x], next: M}
    - {id: c, team: it, next: M}
    - {id: M, type: exclusive, next: G}
    - id: G
      type: exclusive
      next: [{to: e, when: x > 1}, {to: fin, default: true}]
    - {id: e, team: sales, next: fin}
    - {id: fin, type: end}
    """)
    (pr,) = refusal(text)
    assert (pr.element, pr.line) == ("G", line_of(text, "- id: G"))


def test_refuses_a_work_step_deciding_on_a_parallel_branch_data() -> None:
    text = doc("""
    - {id: a, team: sales, next: P}
    - {id: P, type: parallel, next: [b, c]}
    - {id: b, team: ops, outputs: [x], next: fin1}
    - {id: fin1, type: end}
    - id: c
      team: it
      next: [{to: e, when: x > 1}, {to: fin2, default: true}]
    - {id: e, team: sales, next: fin2}
    - {id: fin2, type: end}
    """)
    (pr,) = refusal(text)
    assert pr.element == "c"
    assert "decides on 'x'" in pr.message


def test_accepts_decision_on_data_produced_on_every_path() -> None:
    text = doc("""
    - {id: a, team: sales, next: X}
    - id: X
      type: exclusive
      next: [{to: b, when: k}, {to: c, default: true}]
    - {id: b, team: ops, outputs: [x], next: M}
    - {id: c, team: it, outputs: [x], next: M}
    - {id: M, type: exclusive, next: G}
    - id: G
      type: exclusive
      next: [{to: e, when: x > 1}, {to: fin, default: true}]
    - {id: e, team: sales, next: fin}
    - {id: fin, type: end}
    """)
    p = project(loads(text))
    # G is decided by whichever branch team holds the token; both send on to sales
    assert ("G->e", "ops", "sales") in handoff_set(p)
    assert ("G->e", "it", "sales") in handoff_set(p)
    assert "G" in p.part("ops").decisions and "G" in p.part("it").decisions


def test_accepts_decisions_on_start_data_and_on_own_outputs() -> None:
    text = doc("""
    - id: a
      team: sales
      outputs: [x]
      next: [{to: b, when: x > 1 and vip}, {to: fin, default: true}]
    - {id: b, team: ops, next: fin}
    - {id: fin, type: end}
    """)
    project(loads(text))


def test_all_problems_are_reported_together_in_file_order() -> None:
    text = doc("""
    - {id: a, team: sales, next: P}
    - {id: P, type: parallel, next: [b, c]}
    - {id: b, team: ops, outputs: [x], next: J}
    - id: c
      team: it
      next: [{to: J, when: x > 1}, {to: fin, default: true}]
    - {id: J, type: inclusive, next: e}
    - {id: e, team: sales, next: fin}
    - {id: fin, type: end}
    """)
    problems = refusal(text)
    assert [pr.element for pr in problems] == ["c", "J"]
    assert [pr.line for pr in problems] == sorted(pr.line for pr in problems)


NESTED_INCLUSIVE = """
- {id: a, team: sales, next: S}
- id: S
  type: inclusive
  next: [{to: s, when: x}, {to: z, default: true}]
- id: s
  type: inclusive
  next: [{to: p, when: y}, {to: q, default: true}]
- {id: p, team: ops, next: j}
- {id: q, team: it, next: j}
- {id: j, type: inclusive, next: J}
- {id: z, team: it, next: J}
- {id: J, type: inclusive, next: e}
- {id: e, team: sales, next: fin}
- {id: fin, type: end}
"""


def test_nested_inclusive_blocks_can_be_choreographed() -> None:
    p = project(loads(doc(NESTED_INCLUSIVE)))
    assert p.part("sales").scope.matches["S"][0] == "J"
    assert p.part("sales").scope.matches["s"][0] == "j"


def test_decision_after_a_parallel_join_is_accepted() -> None:
    text = doc("""
    - {id: a, team: sales, next: P}
    - {id: P, type: parallel, next: [b, c]}
    - {id: b, team: ops, outputs: [x], next: J}
    - {id: c, team: it, next: J}
    - {id: J, type: parallel, next: G}
    - id: G
      type: exclusive
      next: [{to: e, when: x > 1}, {to: fin, default: true}]
    - {id: e, team: sales, next: fin}
    - {id: fin, type: end}
    """)
    project(loads(text))


# -- hybrid -----------------------------------------------------------------------------------


def test_hybrid_onboarding_central_steps_go_to_the_hub() -> None:
    d = load(ONBOARDING)
    p = project(d, hybrid=True)
    # the process is mode: central; only accounts, assign-manager and kickoff are local
    assert p.owner["request"] == p.owner["review"] == HUB
    assert p.owner["accounts"] == "it"
    assert p.owner["assign-manager"] == p.owner["kickoff"] == "account-management"
    assert p.owner["ready"] == "account-management"
    assert p.initiator == HUB
    assert set(p.parts) == {HUB, "it", "account-management"}
    assert p.part(HUB).steps == ("request", "review")
    assert handoff_set(p) >= {
        ("provision->accounts", HUB, "it"),
        ("provision->assign-manager", HUB, "account-management"),
        ("accounts->ready", "it", "account-management"),
    }
    assert ("request->review", "sales", "compliance") not in handoff_set(p)
    for part in p.parts.values():
        assert part.scope.hybrid
        assert part.scope.hub_steps == {"request", "review"}
        assert part.scope.criteria == {"assign-manager"}


def test_hybrid_criteria_lists_only_local_steps_with_criteria() -> None:
    text = doc(
        """
    - {id: a, team: sales, next: b}
    - {id: b, team: ops, mode: central, require_hub_when: amount > 10, next: c}
    - {id: c, team: it, require_hub_when: amount > 100, next: d}
    - {id: d, team: sales, next: fin}
    - {id: fin, type: end}
    """,
        header="mode: local\n",
    )
    d = loads(text)
    p = project(d, hybrid=True)
    assert p.owner == {"a": "sales", "b": HUB, "c": "it", "d": "sales"}
    assert p.part("it").scope.criteria == {"c"}  # b is the hub's anyway
    assert p.part(HUB).steps == ("b",)
    assert handoff_set(p) >= {("a->b", "sales", HUB), ("b->c", HUB, "it")}
    # without hybrid there is no hub at all and no criteria
    plain = project(d)
    assert HUB not in plain.parts and HUB not in plain.owner.values()
    assert all(part.scope.criteria == frozenset() for part in plain.parts.values())


def _hub_run(amount: float) -> tuple[ProcessDefinition, Projection, CaseState, list]:
    """Run the hub's part of onboarding (hybrid) up to the provisioning split."""
    d = load(ONBOARDING)
    p = project(d, hybrid=True)
    scope = p.part(HUB).scope
    tr = advance(d, None, StartCase(at=0.0, case_id="c1"), scope)
    (req,) = tr.state.active_tasks()
    assert req.hub  # a central step is pushed by the hub
    data = {"client": "acme", "amount": amount, "risk": "low"}
    tr = advance(d, tr.state, CompleteTask(at=1.0, actor="sam", task_id=req.id, data=data), scope)
    (rev,) = tr.state.active_tasks()
    done = CompleteTask(at=2.0, actor="carla", task_id=rev.id, data={"outcome": "approve"})
    tr = advance(d, tr.state, done, scope)
    return d, p, tr.state, tr.events


def test_hybrid_criteria_send_a_local_step_to_the_hub_at_run_time() -> None:
    _d, _p, state, events = _hub_run(60000)
    handoffs = {e.data["flow"]: e.data["to_team"] for e in events if e.type is EventType.HANDOFF}
    assert handoffs == {"provision->accounts": "it"}  # assign-manager stays at the hub
    (am,) = [t for t in state.active_tasks() if t.step == "assign-manager"]
    assert am.hub


def test_hybrid_criteria_false_leaves_the_step_with_its_team() -> None:
    d, p, state, events = _hub_run(1000)
    handoffs = {e.data["flow"]: e.data["to_team"] for e in events if e.type is EventType.HANDOFF}
    assert handoffs == {
        "provision->accounts": "it",
        "provision->assign-manager": "account-management",
    }
    assert state.active_tasks() == []
    # the team itself refuses a handoff whose data now puts the step at the hub
    scope = p.part("account-management").scope
    arrive = ArriveToken(
        at=3.0, case_id="c1", flow="provision->assign-manager", data={"amount": 90000}
    )
    with pytest.raises(TaskStateError, match="belongs to team '@hub'"):
        advance(d, None, arrive, scope)


def test_hybrid_projection_lists_handoffs_caused_by_criteria() -> None:
    p = project(load(ONBOARDING), hybrid=True)
    assert ("assign-manager->ready", HUB, "account-management") in handoff_set(p)
