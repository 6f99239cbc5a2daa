"""Push assignment by the hub: round-robin, least-loaded or by role, within WIP limits.

This is the resource side of the centralized model (Russell et al.'s push patterns). It needs
every member's load across all cases, which only a hub has; team nodes in choreography use
pull instead. The load table is rebuilt from the store at start-up, so it survives restarts.
"""

from __future__ import annotations

from collections import Counter, deque

from accord.model.types import ProcessDefinition

# A person works on one thing at a time unless the team says otherwise: the hub keeps the rest
# in the team's queue, where waiting is visible, instead of in someone's private pile.
DEFAULT_WIP = 1


class Assigner:
    """Chooses a member for a ready task, or None when everyone eligible is at their limit."""

    def __init__(self) -> None:
        self.load: Counter[str] = Counter()
        self._next: dict[str, int] = {}
        self.backlog: dict[str, deque[tuple[str, str, str | None]]] = {}

    def choose(self, d: ProcessDefinition, team_id: str | None, role: str | None) -> str | None:
        """Pick a member of ``team_id`` (holding ``role``) by the team's policy."""
        team = d.teams.get(team_id or "")
        if team is None or not team.members or team.assignment == "pull":
            return None
        eligible = [m.id for m in team.members if role is None or role in m.roles]
        limit = team.wip_limit or DEFAULT_WIP
        eligible = [m for m in eligible if self.load[m] < limit]
        if not eligible:
            return None
        if team.assignment == "least-loaded":
            return min(eligible, key=lambda m: (self.load[m], eligible.index(m)))
        i = self._next.get(team.id, 0)
        ordered = [m.id for m in team.members]
        for k in range(len(ordered)):
            candidate = ordered[(i + k) % len(ordered)]
            if candidate in eligible:
                self._next[team.id] = (i + k + 1) % len(ordered)
                return candidate
        return None

    def defer(self, team: str, task_id: str, process: str, role: str | None) -> None:
        """Remember a task nobody could take yet; it is offered again when someone frees up."""
        self.backlog.setdefault(team, deque()).append((task_id, process, role))

    def taken(self, member: str) -> None:
        """A member was given a task."""
        self.load[member] += 1

    def freed(self, member: str) -> None:
        """A member finished, released or lost a task."""
        if self.load[member] > 0:
            self.load[member] -= 1
