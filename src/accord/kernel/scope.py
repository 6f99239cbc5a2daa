"""A team's view of a process, for running the kernel choreographed (see accord.choreo).

With a scope, the kernel moves only the tokens of one team: a token bound for a step another
team owns leaves as a ``handoff`` event instead of starting a task, and arrives at that team's
node as an ``ArriveToken`` action. The projection (accord.choreo.projection) builds scopes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

HUB = "@hub"  # the owner name of steps the central engine runs in a hybrid process


@dataclass(frozen=True)
class Scope:
    """What the kernel must know to run one team's part of a process.

    ``owner`` maps a node to the team that takes a token arriving there (work steps, and joins,
    which live with the team after them); nodes absent from it stay with whoever holds the token.
    ``work_after`` names the first work step after a join, so a handoff to a join says where it
    leads. ``matches`` maps an inclusive split to its join and, per branch flow, the join's
    incoming flow that branch reaches: what the deciding team announces to the joining team.
    """

    team: str
    initiator: str = ""
    owner: Mapping[str, str] = field(default_factory=dict)
    work_after: Mapping[str, str] = field(default_factory=dict)
    matches: Mapping[str, tuple[str, Mapping[str, str]]] = field(default_factory=dict)
    hub_steps: frozenset[str] = frozenset()
    hybrid: bool = False
    criteria: frozenset[str] = frozenset()

    @property
    def keeps_ledger(self) -> bool:
        """The initiating team adds up the branches that ended and declares the case done."""
        return self.team == self.initiator

    def elsewhere(self, node: str, owner: str | None = None) -> bool:
        """Whether a token arriving at ``node`` belongs to another team."""
        owner = owner if owner is not None else self.owner.get(node)
        return owner is not None and owner != self.team
