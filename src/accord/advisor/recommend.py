"""From the checklist to a recommendation: a model for the process, a place for each step, and
the risks of the chosen model with what mitigates them.

Scoring is deliberately simple and visible: each answered item adds a point to the side it
favours (compliance and visibility count double: they are hard requirements, not preferences).
A clear winner (a margin of two points or more) is recommended; otherwise, or when the winner
is choreography but compliance steps exist, the recommendation is **hybrid**: the hub keeps
the steps that need control and the teams run the rest.
"""

from __future__ import annotations

from typing import Any

from accord.advisor.checklist import CENTRAL, CHOREO, Item
from accord.advisor.evidence import Facts
from accord.model.types import ProcessDefinition, StepKind

WEIGHT = {"compliance": 2, "visibility": 2}


def score(items: list[Item]) -> dict[str, int]:
    """Points for each model from the answered items."""
    points = {CENTRAL: 0, CHOREO: 0}
    for it in items:
        if it.favours in points:
            points[it.favours] += WEIGHT.get(it.id, 1)
    return points


def model(items: list[Item], facts: Facts) -> tuple[str, list[str]]:
    """The recommended model and the reasons, in words."""
    pts = score(items)
    why = [f"{it.question} {_ans(it)} -> {it.favours}" for it in items if it.favours]
    margin = pts[CENTRAL] - pts[CHOREO]
    control = bool(facts.definition.get("compliance_steps") or facts.definition.get("hub_rules"))
    if margin >= 2:
        return "central", why
    if margin <= -2 and not control:
        return "choreo", why
    if margin <= -2:
        why.append("choreography wins the checklist, but compliance steps need the hub: hybrid")
    else:
        why.append(f"no clear winner ({pts[CENTRAL]} central, {pts[CHOREO]} choreo): hybrid")
    return "hybrid", why


def _ans(it: Item) -> str:
    return "yes" if it.answer is True else "no" if it.answer is False else str(it.answer)


def placements(
    d: ProcessDefinition, choice: str, log_steps: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Where each work step should run (``hub`` or ``local``) under ``choice``, and why."""
    out = []
    for s in d.steps.values():
        if not s.kind.is_work:
            continue
        reasons: list[str] = []
        if s.compliance:
            reasons.append("compliance step: its audit trail belongs on the hub")
        if s.kind is StepKind.APPROVAL:
            reasons.append("an approval: a decision others depend on")
        if s.require_hub_when is not None:
            reasons.append(f"the definition pulls it to the hub when {s.require_hub_when.source}")
        if s.escalate_to:
            reasons.append(f"escalates to {s.escalate_to} when its SLA passes")
        incoming = {
            d.steps[f.source].team for f in d.incoming.get(s.id, ()) if d.steps[f.source].team
        }
        if len(incoming - {s.team}) >= 2:
            reasons.append("work arrives from several teams: a coordination point")
        keep = bool(reasons) and not (len(reasons) == 1 and s.escalate_to and not s.compliance)
        if choice == "central":
            where = "hub"
            reasons = reasons or ["central: every step runs on the hub"]
        elif choice == "choreo":
            where = "local"
            reasons = ["choreography: the owning team runs it", *reasons]
        else:
            where = "hub" if keep else "local"
            if not keep:
                reasons = [
                    "no control needed: the team runs it and hands off directly",
                    *reasons,
                ]
        if s.kind is StepKind.AUTOMATED and where == "local" and not reasons:
            reasons.append("an automated step: a worker in its team runs it")
        out.append({"step": s.id, "name": s.name, "team": s.team, "kind": s.kind.value,
                    "placement": where, "reasons": reasons})  # fmt: skip
    return out


def risks(choice: str, facts: Facts, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The model's risks, the evidence that makes each one real here, and the mitigation."""
    d, log = facts.definition, facts.log or {}
    hub_steps = sum(1 for s in steps if s["placement"] == "hub")
    out = []
    if choice in ("central", "hybrid"):
        out.append({
            "risk": "single point of failure",
            "evidence": f"{hub_steps} of {len(steps)} steps depend on the hub",
            "mitigation": "run engine replicas on one PostgreSQL database (they share the work "
            "with FOR UPDATE SKIP LOCKED); keep the store backed up",
        })  # fmt: skip
        ev = f"{hub_steps} steps on the hub"
        if log.get("hub_peak_per_hour") is not None:
            ev += (f"; the hub handled {log['hub_share_of_events']:.0%} of the log's events, "
                   f"up to {log['hub_peak_per_hour']} an hour")  # fmt: skip
        out.append({
            "risk": "the hub becomes a bottleneck",
            "evidence": ev,
            "mitigation": "involvement criteria: keep on the hub only steps that need control "
            "(compliance, approvals), and pull others in case by case with require_hub_when",
        })  # fmt: skip
    if choice in ("choreo", "hybrid"):
        local = [s for s in steps if s["placement"] == "local"]
        bare = sorted({s["step"] for s in local} - set(d.get("contract_steps", [])))
        out.append({
            "risk": "fragmentation",
            "evidence": f"{len(local)} steps run in their teams; without a data contract: "
            + (", ".join(bare) or "none"),
            "mitigation": "contracts: give every handed-off step a data contract (schema) so a "
            "team cannot hand over work the next one cannot use",
        })  # fmt: skip
        out.append({
            "risk": "no end-to-end owner",
            "evidence": f"process owner: {d.get('owner') or 'none named'}",
            "mitigation": "name a process owner and give them the status board (built from "
            "everyone's events) so somebody is accountable for each case end to end",
        })  # fmt: skip
        if log.get("duplication_rate"):
            out.append({
                "risk": "duplicated effort",
                "evidence": f"the log already shows duplicated work in "
                f"{log['duplication_rate']:.0%} of cases",
                "mitigation": "claims are exclusive: a team claims a task before working it, "
                "and the status board shows who holds what",
            })  # fmt: skip
    return out
