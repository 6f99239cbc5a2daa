"""Analyses of a definition's graph that the kernel needs at run time, computed once and cached.

The inclusive join asks, while a case runs: "can any live token still reach this incoming flow
without passing through the join?" Answering it from precomputed upstream sets turns a graph
search per event into a set lookup.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from accord.model.types import Flow, ProcessDefinition, Step, StepKind


@dataclass(frozen=True, slots=True)
class Graph:
    """``upstream[join][flow_id]``: the nodes from which that flow's source can be reached
    without going through ``join`` (the source included)."""

    upstream: dict[str, dict[str, frozenset[str]]]
    validators: dict[str, Any]
    pred: dict[str, tuple[str, ...]]
    # scopes: a sub-process's start step; each activity's boundary steps; the event
    # sub-processes of each scope (None: the process itself), all in declared order
    inner_start: dict[str, str] = field(default_factory=dict)
    boundaries: dict[str, tuple[Step, ...]] = field(default_factory=dict)
    event_subs: dict[str | None, tuple[Step, ...]] = field(default_factory=dict)


def is_news(d: ProcessDefinition, f: Flow) -> bool:
    """A message flow into a step that waits for messages (a message step, a message boundary):
    it carries news, no share of the case, and moves no token by itself."""
    target = d.steps.get(f.target)
    return (
        f.message
        and target is not None
        and (target.kind is StepKind.MESSAGE or target.kind is StepKind.BOUNDARY)
    )


@lru_cache(maxsize=256)
def graph_of(d: ProcessDefinition) -> Graph:
    """Compute (once per definition object) the analyses the kernel needs."""
    pred: dict[str, list[str]] = {s: [] for s in d.steps}
    for f in d.flows:
        # a message into a message step moves no token by itself: the step's own token does
        if f.target in pred and not is_news(d, f):
            pred[f.target].append(f.source)
    inner_start: dict[str, str] = {}
    boundaries: dict[str, list[Step]] = {}
    event_subs: dict[str | None, list[Step]] = {}
    for s in d.steps.values():
        if s.kind is StepKind.START and s.parent is not None:
            inner_start.setdefault(s.parent, s.id)
        if s.kind is StepKind.BOUNDARY and s.attached_to in d.steps:
            boundaries.setdefault(s.attached_to, []).append(s)
            pred[s.id].append(s.attached_to)  # a token at the activity may leave by it
        if s.kind is StepKind.SUBPROCESS and s.on is not None:
            event_subs.setdefault(s.parent, []).append(s)
    upstream: dict[str, dict[str, frozenset[str]]] = {}
    for sid in d.steps:
        if not d.is_join(sid):
            continue
        per_flow: dict[str, frozenset[str]] = {}
        for f in d.incoming[sid]:
            seen = {f.source} if f.source != sid else set()
            queue = deque(seen)
            while queue:
                for p in pred[queue.popleft()]:
                    if p != sid and p not in seen:
                        seen.add(p)
                        queue.append(p)
            per_flow[f.id] = frozenset(seen)
        upstream[sid] = per_flow
    validators: dict[str, Any] = {}
    for s in d.steps.values():
        if s.contract is not None:
            import jsonschema

            validators[s.id] = jsonschema.Draft202012Validator(s.contract)
    return Graph(
        upstream,
        validators,
        {k: tuple(v) for k, v in pred.items()},
        inner_start,
        {k: tuple(v) for k, v in boundaries.items()},
        {k: tuple(v) for k, v in event_subs.items()},
    )
