"""The hub's push assignment (accord.central.assignment.Assigner), on its own."""

from __future__ import annotations

from dataclasses import replace

import pytest

from accord.central.assignment import DEFAULT_WIP, Assigner
from accord.model import ProcessDefinition, loads
from accord.model.types import Team

D = loads(
    """
process: a
teams:
  rr:
    wip_limit: 2
    members:
      - {id: ann, roles: [rep, lead]}
      - {id: bob, roles: [rep]}
      - {id: cy}
  ll:
    assignment: least-loaded
    wip_limit: 3
    members: [lea, lou, lux]
  solo:
    members: [sol]
  pullers:
    assignment: pull
    members: [pat, pia]
steps:
  - {id: s1, team: rr, next: s2}
  - {id: s2, team: ll, next: s3}
  - {id: s3, team: solo, next: s4}
  - {id: s4, team: pullers, next: end}
  - {id: end, type: end}
"""
)


def take(a: Assigner, d: ProcessDefinition, team: str, role: str | None = None) -> str | None:
    """Choose and record the allocation, as the engine does after a successful claim."""
    member = a.choose(d, team, role)
    if member is not None:
        a.taken(member)
    return member


def test_round_robin_cycles_in_member_order() -> None:
    a = Assigner()
    assert [take(a, D, "rr") for _ in range(6)] == ["ann", "bob", "cy"] * 2
    assert take(a, D, "rr") is None  # everyone holds wip_limit (2) tasks


def test_round_robin_respects_roles() -> None:
    a = Assigner()
    assert [take(a, D, "rr", "rep") for _ in range(4)] == ["ann", "bob", "ann", "bob"]
    assert take(a, D, "rr", "rep") is None  # cy has no rep role and is never chosen
    assert take(a, D, "rr", "lead") is None  # ann, the only lead, is full
    assert take(a, D, "rr") == "cy"
    assert take(a, D, "rr", "unknown-role") is None


def test_round_robin_skips_full_members_and_keeps_its_place() -> None:
    a = Assigner()
    a.load["ann"] = 2  # ann is at the limit
    assert [take(a, D, "rr") for _ in range(3)] == ["bob", "cy", "bob"]
    a.freed("ann")
    assert take(a, D, "rr") == "cy"
    assert take(a, D, "rr") == "ann"


def test_least_loaded_picks_the_lightest_member_first_in_order_on_ties() -> None:
    a = Assigner()
    assert [take(a, D, "ll") for _ in range(3)] == ["lea", "lou", "lux"]
    a.freed("lou")
    assert take(a, D, "ll") == "lou"  # lou has 0, the others 1
    a.freed("lux")
    a.freed("lea")
    assert take(a, D, "ll") == "lea"  # lea and lux tie on 0: the first listed wins
    a.load.update({"lea": 3, "lou": 3, "lux": 3})
    assert take(a, D, "ll") is None


def test_default_wip_is_one() -> None:
    assert DEFAULT_WIP == 1
    a = Assigner()
    assert take(a, D, "solo") == "sol"
    assert take(a, D, "solo") is None
    a.freed("sol")
    assert take(a, D, "solo") == "sol"


def test_load_is_counted_per_member_across_teams() -> None:
    d = loads(
        """
process: shared
teams:
  x: {members: [kim]}
  y: {wip_limit: 1, members: [kim, lee]}
steps:
  - {id: s1, team: x, next: s2}
  - {id: s2, team: y, next: end}
  - {id: end, type: end}
"""
    )
    a = Assigner()
    assert take(a, d, "x") == "kim"
    assert take(a, d, "y") == "lee"  # kim already holds a task from team x


def test_pull_teams_and_unknown_or_empty_teams_get_nobody() -> None:
    a = Assigner()
    assert a.choose(D, "pullers", None) is None
    assert a.choose(D, "nope", None) is None
    assert a.choose(D, None, None) is None
    empty = replace(D, teams={**D.teams, "ghosts": Team("ghosts", "Ghosts")})
    assert a.choose(empty, "ghosts", None) is None
    assert not a.load


def test_freed_never_goes_below_zero() -> None:
    a = Assigner()
    a.freed("ann")
    assert a.load["ann"] == 0
    a.taken("ann")
    a.taken("ann")
    a.freed("ann")
    a.freed("ann")
    a.freed("ann")
    assert a.load["ann"] == 0


def test_defer_keeps_a_fifo_backlog_per_team() -> None:
    a = Assigner()
    a.defer("rr", "c1:s1:1", "a@1", None)
    a.defer("ll", "c2:s2:1", "a@1", None)
    a.defer("rr", "c3:s1:1", "a@1", "rep")
    assert list(a.backlog["rr"]) == [("c1:s1:1", "a@1", None), ("c3:s1:1", "a@1", "rep")]
    assert list(a.backlog["ll"]) == [("c2:s2:1", "a@1", None)]


@pytest.mark.parametrize("team", ["rr", "ll"])
def test_choose_alone_does_not_change_load(team: str) -> None:
    a = Assigner()
    first = a.choose(D, team, None)
    assert first is not None
    assert a.load[first] == 0
