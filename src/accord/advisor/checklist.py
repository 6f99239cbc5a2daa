"""The decision checklist: eight questions, each answered from data where data can answer it.

Every item says what it favours (central orchestration, choreography, or neither) and why,
with its source (``definition``, ``log``, ``answers`` or ``unknown``). Data answers first; a
user's answer fills what data cannot say, and a disagreement between the two is shown.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from accord.advisor.evidence import Facts

CENTRAL, CHOREO, NEUTRAL = "central", "choreo", None


@dataclass
class Item:
    """One checklist question, its answer and the evidence behind it."""

    id: str
    question: str
    answer: bool | str | None = None
    source: str = "unknown"
    confidence: str = "low"
    favours: str | None = None
    evidence: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def _settle(item: Item, data: bool | str | None, facts: Facts, *, strong: bool = False) -> None:
    """Take the data's answer, else the user's; note when they disagree."""
    user = facts.answers.get(item.id)
    if data is not None:
        item.answer = data
        item.confidence = "high" if strong else "medium"
        if user is not None and user != data:
            item.evidence.append(f"you answered {_word(user)}; the data says {_word(data)}")
    elif user is not None:
        item.answer, item.source, item.confidence = user, "answers", "stated"
        item.evidence.append(f"you answered {_word(user)}")
    else:
        item.source = "unknown"
        item.evidence.append(f"not known: answer it in --answers ({item.id}: yes|no)")


def _word(v: Any) -> str:
    return "yes" if v is True else "no" if v is False else str(v)


def stable(f: Facts) -> Item:
    """Stable and repeatable: few variants cover most cases, and little rework."""
    it = Item("stable", "Is the process stable and repeatable?")
    d, log = f.definition, f.log
    data: bool | None = None
    if log and log["cases"] >= 20:
        it.source = "log"
        n80, rw = log["variants_for_80pct"], log["rework_rate"]
        it.evidence += [
            f"{log['variants']} variants in {log['cases']} cases; {n80} cover 80% of them "
            f"(the most common: {log['top_variant_share']:.0%})",
            f"rework in {rw:.0%} of cases",
        ]
        data = n80 <= max(3, d.get("decisions", 0) + 2) and rw < 0.15
    elif d:
        it.evidence.append(
            f"definition: {d['decisions']} decisions, {len(d['loops'])} rework loops "
            f"({', '.join(d['loops']) or 'none'}); no log to show how cases really run"
        )
    _settle(it, data, f, strong=bool(log and log["cases"] >= 200))
    it.favours = CENTRAL if it.answer is True else CHOREO if it.answer is False else NEUTRAL
    return it


def adaptation(f: Facts) -> Item:
    """Frequent adaptation: how often the definition changes."""
    it = Item("adaptation", "Does the process need frequent adaptation?")
    d, log = f.definition, f.log
    data: bool | None = None
    versions = (log or {}).get("process_versions")
    if versions:
        it.source = "log"
        it.evidence.append(f"the log runs {len(versions)} definition version(s): "
                           + ", ".join(versions[:6]))  # fmt: skip
        data = len(versions) >= 3
    elif d:
        it.evidence.append(f"definition version {d['version']}"
                           + (" (changed several times)" if d["version"] >= 3 else ""))  # fmt: skip
        if d["version"] >= 3:
            it.source, data = "definition", True
    _settle(it, data, f)
    it.favours = CHOREO if it.answer is True else CENTRAL if it.answer is False else NEUTRAL
    return it


def compliance(f: Facts) -> Item:
    """Compliance or auditability: steps flagged ``compliance: true``, approvals."""
    it = Item("compliance", "Is compliance or auditability critical?")
    d = f.definition
    data: bool | None = None
    if d:
        it.source = "definition"
        it.evidence.append(
            f"compliance steps: {', '.join(d['compliance_steps']) or 'none'}; "
            f"approvals: {', '.join(d['approval_steps']) or 'none'}"
        )
        data = True if d["compliance_steps"] else None
    _settle(it, data, f, strong=True)
    it.favours = CENTRAL if it.answer is True else CHOREO if it.answer is False else NEUTRAL
    return it


def autonomous(f: Facts) -> Item:
    """Autonomous, skilled teams: self-assignment, few escalations, handoffs that stick."""
    it = Item("autonomous", "Are the teams autonomous and skilled?")
    d, log = f.definition, f.log
    if d:
        it.evidence.append(
            f"teams that pull their own work: {', '.join(d['pull_teams']) or 'none'} "
            f"of {d['teams']}"
        )
    data: bool | None = None
    if log and log.get("tasks"):
        it.source = "log"
        esc = (log["escalations"] + log["reassignments"]) / log["tasks"]
        her = log.get("handoff_error_rate") or 0.0
        it.evidence.append(f"escalated or reassigned: {esc:.1%} of tasks; handoff errors "
                           f"{her:.1%}")  # fmt: skip
        data = esc < 0.05 and her < 0.1
    _settle(it, data, f)
    it.favours = CHOREO if it.answer is True else CENTRAL if it.answer is False else NEUTRAL
    return it


def visibility(f: Facts) -> Item:
    """End-to-end visibility: an owner, SLAs, many teams in one case."""
    it = Item("visibility", "Is end-to-end visibility essential?")
    d = f.definition
    data: bool | None = None
    if d:
        it.source = "definition"
        it.evidence.append(
            f"owner: {d['owner'] or 'none'}; SLAs on {len(d['sla_steps'])} steps; "
            f"{d['teams']} teams, {d['cross_team_flows']} handoffs between them"
        )
        if d["sla_steps"] and d["teams"] >= 3:
            data = True
    _settle(it, data, f)
    it.favours = CENTRAL if it.answer is True else NEUTRAL
    return it


def speed(f: Facts) -> Item:
    """Speed first: where cases spend their time waiting rather than being worked on."""
    it = Item("speed", "Is speed the top priority?")
    log = f.log
    if log and log.get("wait_share") is not None:
        it.evidence.append(f"cases wait {log['wait_share']:.0%} of the time they are open "
                           "(coordination, not work, sets the pace)")  # fmt: skip
    if log and log.get("sla_breaches") is not None:
        it.evidence.append(f"{log['sla_breaches']} SLA breaches in the log")
    _settle(it, None, f)  # a priority is a choice: the data only informs it
    it.favours = CHOREO if it.answer is True else NEUTRAL
    return it


def budget(f: Facts) -> Item:
    """Budget for a central tool: only the user knows."""
    it = Item("budget", "Is there budget for a central tool?")
    _settle(it, None, f)
    it.favours = CENTRAL if it.answer is True else CHOREO if it.answer is False else NEUTRAL
    return it


def size(f: Facts) -> Item:
    """Small (<10 people) or large (>50): from the definition's members or the log's people."""
    it = Item("size", "Is the team small (<10) or large (>50)?")
    d, log = f.definition, f.log
    people = max(d.get("members", 0), (log or {}).get("resources", 0))
    data: str | None = None
    if people:
        it.source = "log" if log and log["resources"] > d.get("members", 0) else "definition"
        it.evidence.append(
            f"{people} people ({d.get('members', 0)} named in the definition"
            + (f", {log['resources']} resources in the log" if log else "")
            + ")"
        )
        data = "small" if people < 10 else "large" if people > 50 else "medium"
    _settle(it, data, f, strong=True)
    it.favours = {"small": CHOREO, "large": CENTRAL}.get(str(it.answer), NEUTRAL)
    return it


def checklist(f: Facts) -> list[Item]:
    """All eight items, in the order the checklist asks them."""
    return [q(f) for q in (stable, adaptation, compliance, autonomous, visibility, speed, budget,
                           size)]  # fmt: skip
