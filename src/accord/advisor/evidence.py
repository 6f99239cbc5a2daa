"""What the advisor knows before it asks: facts from the definition, the log and the answers.

Each fact is a plain number or flag with a sentence saying where it came from, so every
checklist answer can show its evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from accord.errors import AccordError
from accord.model.types import ProcessDefinition, StepKind

QUESTIONS = ("stable", "adaptation", "compliance", "autonomous", "visibility", "speed",
             "budget", "size")  # fmt: skip
YES = {"yes", "y", "true", "1"}
NO = {"no", "n", "false", "0"}


class AnswersError(AccordError):
    """The answers file cannot be used; the message names the file, line and key."""


@dataclass
class Facts:
    """Everything measured about the process, from its definition and (optionally) its log."""

    definition: dict[str, Any] = field(default_factory=dict)
    log: dict[str, Any] | None = None
    answers: dict[str, Any] = field(default_factory=dict)


def from_definition(d: ProcessDefinition) -> dict[str, Any]:
    """Structural facts: steps, teams, members, compliance, SLAs, contracts, modes, loops."""
    work = [s for s in d.steps.values() if s.kind.is_work]
    flows_back = _back_edges(d)
    return {
        "process": d.id,
        "version": d.version,
        "owner": d.owner,
        "mode": d.mode.value,
        "steps": len(work),
        "teams": len(d.teams),
        "members": sum(len(t.members) for t in d.teams.values()),
        "pull_teams": sorted(t.id for t in d.teams.values() if t.assignment == "pull"),
        "compliance_steps": sorted(s.id for s in work if s.compliance),
        "approval_steps": sorted(s.id for s in work if s.kind is StepKind.APPROVAL),
        "sla_steps": sorted(s.id for s in d.steps.values() if s.sla is not None),
        "escalating_steps": sorted(s.id for s in d.steps.values() if s.escalate_to),
        "contract_steps": sorted(s.id for s in work if s.contract),
        "local_steps": sorted(s.id for s in work if d.mode_of(s.id).value == "local"),
        "hub_rules": sorted(s.id for s in work if s.require_hub_when is not None),
        # a decision: a choosing gateway, or a step (an approval) with several ways out
        "decisions": sum(
            1 for s in d.steps.values()
            if s.kind in (StepKind.EXCLUSIVE, StepKind.INCLUSIVE)
            or (s.kind.is_work and len(d.outgoing.get(s.id, ())) > 1)
        ),
        "parallel_splits": sum(
            1 for s in d.steps.values()
            if s.kind is StepKind.PARALLEL and len(d.outgoing.get(s.id, ())) > 1
        ),
        "loops": flows_back,
        "cross_team_flows": _cross_team(d),
    }  # fmt: skip


def _back_edges(d: ProcessDefinition) -> list[str]:
    """Flows that go back to an earlier step (rework loops), by depth-first search."""
    seen: dict[str, int] = {}
    back: list[str] = []
    stack = [(d.start, iter(d.outgoing.get(d.start, ())))]
    seen[d.start] = 1
    while stack:
        node, it = stack[-1]
        f = next(it, None)
        if f is None:
            seen[node] = 2
            stack.pop()
        elif seen.get(f.target) == 1:
            back.append(f"{f.source} -> {f.target}")
        elif f.target not in seen:
            seen[f.target] = 1
            stack.append((f.target, iter(d.outgoing.get(f.target, ()))))
    return back


def _cross_team(d: ProcessDefinition) -> int:
    """Flows between work steps of different teams (looking through gateways)."""
    count = 0
    for s in d.steps.values():
        if not s.kind.is_work:
            continue
        todo = [f.target for f in d.outgoing.get(s.id, ())]
        seen: set[str] = set()
        while todo:
            t = todo.pop()
            if t in seen:
                continue
            seen.add(t)
            step = d.steps[t]
            if step.kind.is_work:
                count += step.team != s.team
            elif step.kind.is_gateway:
                todo += [f.target for f in d.outgoing.get(t, ())]
    return count


def from_log(path: Path) -> dict[str, Any]:
    """Behavioural facts from an event log: variety, rework, duplication, people, versions."""
    from accord.analytics import discovery, findings
    from accord.analytics.logs import accord_events, read_log

    log = read_log(path)
    cases = discovery.cases(log)
    variants = discovery.variants(cases)
    items = findings.work_items(log)
    rework = findings.rework(items)
    dup = findings.duplication(items)
    cover = variants["share"].cum_sum()
    facts: dict[str, Any] = {
        "source": str(path),
        "cases": cases.height,
        "events": log.events,
        "variants": variants.height,
        "top_variant_share": float(variants["share"][0]) if variants.height else 0.0,
        "variants_for_80pct": int((cover < 0.8).sum()) + 1 if variants.height else 0,
        "rework_rate": rework["rate"],
        "duplication_rate": dup["rate"],
        "resources": int(log.frame["resource"].drop_nulls().n_unique()),
        "wait_share": _wait_share(items),
    }
    own = accord_events(path)
    if own:
        from accord.analytics.measures import measure

        m = measure(own)
        versions = sorted({e.process for e in own})
        facts.update(
            {
                "process_versions": versions,
                "handoff_error_rate": m["handoffs"].get("error_rate"),
                "hub_peak_per_hour": m["hub"]["per_hour_peak"],
                "hub_share_of_events": m["hub"]["share_of_events"],
                "sla_breaches": m["sla_breaches"],
                "escalations": sum(1 for e in own if e.type.value == "task.escalated"),
                "reassignments": sum(1 for e in own if e.type.value == "task.reassigned"),
                "tasks": sum(1 for e in own if e.type.value == "task.ready"),
                "satisfaction": (m["satisfaction"] or {}).get("mean"),
            }
        )
    return facts


def _wait_share(items: pl.DataFrame) -> float | None:
    """Share of case time spent waiting rather than worked (None without start times)."""
    work = items["work_s"].drop_nulls()
    if work.len() == 0:
        return None
    wait = float(items.filter(pl.col("work_s").is_not_null())["wait_s"].sum())
    total = wait + float(work.sum())
    return wait / total if total > 0 else None


def read_answers(path: Path) -> dict[str, Any]:
    """The user's answers: ``stable: yes``, ``size: 40`` (or small/medium/large), ..."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AnswersError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        doc = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{mark.line + 1}:{mark.column + 1}" if mark else "1:1"
        raise AnswersError(f"{path}:{where}: malformed YAML: {exc.problem}") from None
    except YAMLError as exc:
        raise AnswersError(f"{path}: malformed YAML: {exc}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise AnswersError(f"{path}:1:1: expected a mapping of question: answer")
    out: dict[str, Any] = {}
    for key, value in doc.items():
        line = doc.lc.key(key)[0] + 1 if hasattr(doc, "lc") else 1
        if key not in QUESTIONS:
            raise AnswersError(
                f"{path}:{line}: unknown question {key!r}; the questions are: "
                + ", ".join(QUESTIONS)
            )
        out[key] = _answer(path, line, key, value)
    return out


def _answer(path: Path, line: int, key: str, value: Any) -> Any:
    if key == "size":
        if isinstance(value, int) and value > 0:
            return "small" if value < 10 else "large" if value > 50 else "medium"
        if str(value).lower() in ("small", "medium", "large"):
            return str(value).lower()
        raise AnswersError(
            f"{path}:{line}: size: give a head count or small, medium or large, not {value!r}"
        )
    text = str(value).lower() if not isinstance(value, bool) else ("yes" if value else "no")
    if text in YES:
        return True
    if text in NO:
        return False
    raise AnswersError(f"{path}:{line}: {key}: answer yes or no, not {value!r}")
