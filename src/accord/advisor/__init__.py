"""The advisor: should this process run centralized, choreographed or hybrid?

``advise(definition, log=..., answers=...)`` answers the decision checklist from the
definition and the event log where it can, from the user's answers otherwise, recommends a
model for the process and a place (hub or team) for each step, and lists the chosen model's
risks with their mitigations. Every answer carries its evidence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accord.advisor import checklist, evidence, recommend
from accord.advisor.evidence import AnswersError, Facts
from accord.model import load


def advise(
    definition: str | Path, *, log: str | Path | None = None, answers: str | Path | None = None
) -> dict[str, Any]:
    """The advice for the process in ``definition`` (a YAML file) as one JSON-ready object."""
    d = load(definition)
    facts = Facts(
        definition=evidence.from_definition(d),
        log=evidence.from_log(Path(log)) if log is not None else None,
        answers=evidence.read_answers(Path(answers)) if answers is not None else {},
    )
    items = checklist.checklist(facts)
    choice, why = recommend.model(items, facts)
    steps = recommend.placements(d, choice)
    return {
        "process": d.key,
        "name": d.name,
        "recommendation": {
            "model": choice,
            "score": recommend.score(items),
            "why": why,
            "hub_steps": [s["step"] for s in steps if s["placement"] == "hub"],
            "local_steps": [s["step"] for s in steps if s["placement"] == "local"],
        },
        "checklist": [it.to_dict() for it in items],
        "steps": steps,
        "risks": recommend.risks(choice, facts, steps),
        "facts": {"definition": facts.definition, "log": facts.log},
        "unanswered": [it.id for it in items if it.answer is None],
    }


__all__ = ["AnswersError", "advise"]
