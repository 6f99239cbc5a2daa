"""Analyses of a definition's graph that the kernel needs at run time, computed once and cached.

The inclusive join asks, while a case runs: "can any live token still reach this incoming flow
without passing through the join?" Answering it from precomputed upstream sets turns a graph
search per event into a set lookup.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from accord.model.types import ProcessDefinition


@dataclass(frozen=True, slots=True)
class Graph:
    """``upstream[join][flow_id]``: the nodes from which that flow's source can be reached
    without going through ``join`` (the source included)."""

    upstream: dict[str, dict[str, frozenset[str]]]
    validators: dict[str, Any]
    pred: dict[str, tuple[str, ...]]


@lru_cache(maxsize=256)
def graph_of(d: ProcessDefinition) -> Graph:
    """Compute (once per definition object) the analyses the kernel needs."""
    pred: dict[str, list[str]] = {s: [] for s in d.steps}
    for f in d.flows:
        if f.target in pred:
            pred[f.target].append(f.source)
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
    return Graph(upstream, validators, {k: tuple(v) for k, v in pred.items()})
