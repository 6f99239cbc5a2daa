"""BPMN 2.0 -> accord: the same plain document a YAML file parses to, validated by the same loader.

The importer maps what accord's kernel can run and refuses the rest, all at once, each problem
naming the file, the line, the element id and what is missing (see :mod:`accord.bpmn.elements`).
The document it builds is handed to :func:`accord.model.loader.from_document`, so every check a
YAML definition gets (reachability, gateway rules, expressions, ...) applies here too, and its
problems point at the BPMN element's line: the document's mappings and lists carry the lines of
the XML elements they come from.

Mapping (see docs/bpmn.md for the whole table and the reasons):

- one process per definition: the only pool with flow elements, or the one named by ``process``;
- lanes -> teams (id from the lane name, e.g. "Team Assistant" -> ``team-assistant``); without
  lanes, ``candidateGroups`` / ``potentialOwner`` name the team, else one team named after the
  pool or process;
- ``task``, ``userTask``, ``manualTask`` -> ``human``; ``serviceTask``, ``scriptTask``,
  ``sendTask``, ``businessRuleTask`` -> ``automated`` with :data:`NOOP_HANDLER`;
  ``receiveTask`` and message catch events -> ``message``; timer catch events with a
  ``timeDuration`` -> ``timer``;
- start (none), end, terminate end; exclusive, parallel and inclusive gateways with default flows;
- conditions translated by :mod:`accord.bpmn.conditions` (JUEL, FEEL, plain);
- BPMN's pass-through nodes (a none intermediate event, a gateway with one flow in and one out)
  are joined into the flow around them; none of their behaviour is lost.

Elements that carry no routing (data objects, annotations, listeners, implementations that accord
does not run) are listed in :attr:`Imported.notes`, never dropped silently.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accord.bpmn.calls import Library, called_processes, prefixed
from accord.bpmn.collaboration import Pools, connect, merge_pools
from accord.bpmn.conditions import Untranslatable, translate
from accord.bpmn.elements import (
    AUTOMATED_TASKS,
    DATA_AND_ARTIFACTS,
    FLOW_NODES,
    HUMAN_TASKS,
    PROCESS_DESCRIPTIONS,
    REFUSED,
    classify,
    marker_elements,
    name_duration,
    triggers,
)
from accord.bpmn.loops import loop_settings
from accord.bpmn.reader import (
    ACCORD_NS,
    BpmnDocument,
    is_bpmn,
    line_of,
    local,
    parse_bpmn,
    read_bpmn,
)
from accord.errors import DefinitionError, Problem
from accord.events import parse_iso
from accord.model.durations import parse_cycle, parse_duration
from accord.model.expr import parse as parse_expression
from accord.model.loader import from_document
from accord.model.types import ProcessDefinition

NOOP_HANDLER = "accord.bpmn.handlers:noop"
"""The handler imported automated steps run until they are given one of their own."""

# children of a sub-process that describe the sub-process itself, not its content
_ACTIVITY_PARTS = frozenset(
    {
        "incoming",
        "outgoing",
        "multiInstanceLoopCharacteristics",
        "standardLoopCharacteristics",
        "dataInputAssociation",
        "dataOutputAssociation",
    }
)

_IMPLEMENTATION_ATTRS = (
    "class",
    "delegateExpression",
    "expression",
    "topic",
    "decisionRef",
    "calledDecision",
    "resultVariable",
)


@dataclass
class Imported:
    """An imported process: the validated definition, the document it was built from (what
    ``accord import`` writes as YAML) and notes about what was left out on purpose."""

    definition: ProcessDefinition
    document: dict[str, Any]
    notes: list[Problem] = field(default_factory=list)


class _Lc:
    """Positions in the shape ruamel.yaml gives them, so the loader's problems point at the
    line of the BPMN element a value came from (0-based, like ruamel)."""

    def __init__(self, line: int) -> None:
        self.line = max(line, 1) - 1
        self.col = 0
        self.keys: dict[Any, int] = {}
        self.items: list[int] = []

    def key(self, key: Any) -> tuple[int, int]:
        return self.keys.get(key, self.line + 1) - 1, 0

    def item(self, index: int) -> tuple[int, int]:
        return self.items[index] - 1, 0


class _Map(dict[str, Any]):
    """A mapping that knows the line of each of its keys."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.lc = _Lc(line)

    def put(self, key: str, value: Any, line: int | None = None) -> None:
        self[key] = value
        self.lc.keys[key] = line if line is not None else self.lc.line + 1


class _List(list[Any]):
    """A list that knows the line of each of its items."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.lc = _Lc(line)

    def add(self, value: Any, line: int) -> None:
        self.append(value)
        self.lc.items.append(line)


@dataclass
class _Flow:
    id: str
    el: Any
    source: str
    target: str
    condition: str | None = None
    condition_line: int = 0
    default: bool = False
    message: bool = False  # a message flow between pools (see accord.bpmn.collaboration)


def plain(node: Any) -> Any:
    """The document as plain dicts and lists (what YAML and JSON writers accept)."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node


def slug(text: str) -> str:
    """A readable id from a display name: "Team Assistant" and "teamAssistant" ->
    "team-assistant"."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", text)
    return re.sub(r"[^a-z0-9]+", "-", words.lower()).strip("-")


def clean_name(text: str | None) -> str:
    """A BPMN name on one line ("Invoice\\napproved?" -> "Invoice approved?")."""
    return " ".join((text or "").split())


def load_bpmn(path: str | Path) -> ProcessDefinition:
    """Load a BPMN file as a process definition (what :func:`accord.model.load` calls)."""
    return import_bpmn(path).definition


def import_bpmn(
    path: str | Path, *, process: str | None = None, others: Iterable[str | Path] = ()
) -> Imported:
    """Import a BPMN file; raise :class:`DefinitionError` listing every problem.

    Call activities call processes of this file, of ``others``, or of this file's folder."""
    return _Importer(read_bpmn(path), Library(others)).run(process)


def import_bytes(data: bytes, file: str = "<bytes>", *, process: str | None = None) -> Imported:
    """Import BPMN XML given as bytes."""
    return import_document(parse_bpmn(data, file), process=process)


def import_document(doc: BpmnDocument, *, process: str | None = None) -> Imported:
    """Import a parsed BPMN document (one process of it)."""
    return _Importer(doc).run(process)


class _Importer:
    def __init__(
        self, doc: BpmnDocument, library: Library | None = None, chain: tuple[str, ...] = ()
    ) -> None:
        self.doc = doc
        self.library = library or Library()
        self.chain = chain  # the processes calling this one (call activities), outermost first
        self.parent_of: dict[str, str] = {}  # flow node -> the sub-process it is declared in
        self.attached: dict[str, str] = {}  # boundary -> the activity it is attached to
        self.inlined_teams: dict[str, Any] = {}
        self.event_starts: set[str] = set()  # start events of event sub-processes
        self.inlined_branches: dict[str, Any] = {}
        self.file = doc.file
        self.problems: list[Problem] = []
        self.notes: list[Problem] = []
        self.ignored: Counter[str] = Counter()
        self.ignored_line: dict[str, int] = {}
        self.messages = {m.get("id"): m for m in doc.root if is_bpmn(m) and local(m) == "message"}
        self.pid = "process"
        self.proc: Any = doc.root
        self.pool: Any = None
        self.collab: Pools | None = None  # several pools imported together

    # -- reporting ------------------------------------------------------------------------------

    def refuse(self, el: Any, element: str, message: str) -> None:
        self.problems.append(self.doc.problem(el, element, message))

    def note(self, line: int, element: str, message: str) -> None:
        self.notes.append(Problem(self.file, line, 1, element, message))

    def ignore(self, el: Any, what: str) -> None:
        self.ignored[what] += 1
        self.ignored_line.setdefault(what, line_of(el))

    # -- the process ----------------------------------------------------------------------------

    def choose(self, wanted: str | None) -> tuple[Any, Any | None]:
        root = self.doc.root
        processes = [p for p in root if is_bpmn(p) and local(p) == "process"]
        participants = [
            p
            for c in root
            if is_bpmn(c) and local(c) == "collaboration"
            for p in c
            if is_bpmn(p) and local(p) == "participant"
        ]
        pool_of = {p.get("processRef"): p for p in participants if p.get("processRef")}
        if wanted is not None:
            for p in processes:
                if p.get("id") == wanted:
                    return p, pool_of.get(wanted)
            for part in participants:
                if wanted in (part.get("id"), part.get("name")):
                    ref = part.get("processRef")
                    for p in processes:
                        if p.get("id") == ref:
                            return p, part
            known = ", ".join(str(p.get("id")) for p in processes) or "none"
            self.refuse(root, wanted, f"no process or pool {wanted!r} (processes: {known})")
            raise DefinitionError(self.problems)
        runnable = [p for p in processes if any(local(c) in FLOW_NODES for c in p if is_bpmn(c))]
        called = called_processes(root)
        if len(runnable) > 1 and any(p.get("id") not in called for p in runnable):
            # processes that call activities of this file call are run inside their callers
            runnable = [p for p in runnable if p.get("id") not in called]
        if not runnable:
            self.refuse(root, "definitions", "no process with any flow elements to import")
            raise DefinitionError(self.problems)
        if len(runnable) > 1:
            merged = merge_pools(self, runnable)
            if merged is not None:
                return merged
        if len(runnable) > 1:
            ids = ", ".join(repr(p.get("id")) for p in runnable)
            where = next((c for c in root if local(c) == "collaboration"), root)
            self.refuse(
                where,
                where.get("id") or "definitions",
                f"unsupported: {len(runnable)} processes hold flow elements ({ids}): running "
                "several together (pools that exchange messages, processes called by call "
                "activities) is not supported yet; import one with --process ID",
            )
            for p in runnable:  # and what else each of them would need
                for child in p:
                    if is_bpmn(child) and local(child) in FLOW_NODES:
                        self.node(child)
            raise DefinitionError(self.problems)
        proc = runnable[0]
        return proc, pool_of.get(proc.get("id"))

    def run(self, wanted: str | None) -> Imported:
        proc, pool = self.choose(wanted)
        pid = str(proc.get("id") or "process")
        props = self.properties(proc, pid)
        pid = str(proc.get(f"{{{ACCORD_NS}}}id") or pid)
        self.pid = pid
        self.pool = pool
        self.proc = proc

        nodes: dict[str, Any] = {}
        steps: dict[str, _Map] = {}
        flows: list[_Flow] = []
        lane_sets: list[Any] = []
        synthetic = self.collect(
            proc, None, nodes=nodes, steps=steps, flows=flows, lane_sets=lane_sets
        )
        self.check_flows(flows, nodes, steps)
        self.collaboration_notes()
        if self.problems:
            raise DefinitionError(self.problems)

        if synthetic is not None:
            # accord's own export: a start event stands for "the first step"; drop it again
            first = [f.target for f in flows if f.source == synthetic]
            flows = [f for f in flows if f.source != synthetic]
            if first and first[0] in steps:
                steps = {first[0]: steps[first[0]], **steps}
        flows = connect(self, steps, flows, nodes)  # link events; pools and message flows
        if self.problems:
            raise DefinitionError(self.problems)
        flows = self.splice(steps, flows, nodes)
        self.defaults(flows, nodes)
        teams, team_of = self.teams(lane_sets, steps, nodes)
        branches = self.routes(steps, flows, nodes)
        self.start(steps, flows, nodes, synthetic is not None)
        if self.problems:
            raise DefinitionError(self.problems)

        aid = {bid: str(step["id"]) for bid, step in steps.items()}
        doc = _Map(line_of(proc))
        doc.put("process", pid)
        name = clean_name((pool.get("name") if pool is not None else None) or proc.get("name"))
        if name and name != pid:
            doc.put("name", name)
        documentation = _documentation(proc)
        if documentation:
            doc.put("description", documentation)
        for key in ("version", "owner", "mode"):
            if key in props:
                doc.put(key, props[key])
        doc.put("teams", teams, line_of(lane_sets[0]) if lane_sets else None)
        step_list = _List(line_of(proc))
        outgoing: dict[str, list[_Flow]] = {}
        for f in flows:
            outgoing.setdefault(f.source, []).append(f)
        inner: dict[str, _List] = {}
        for bid, step in steps.items():
            tid = team_of.get(bid)
            if tid is not None:
                step.put("team", tid)
            if bid in self.attached and self.attached[bid] in aid:
                step.put("attached_to", aid[self.attached[bid]])
            nxt = _next_of(step, outgoing.get(bid, []), aid)
            if nxt is not None:
                step.put("next", nxt)
            parent = self.parent_of.get(bid)
            if parent is None:
                step_list.add(step, step.lc.line + 1)
            elif parent in steps:
                if parent not in inner:
                    inner[parent] = _List(steps[parent].lc.line + 1)
                    steps[parent].put("steps", inner[parent])
                inner[parent].add(step, step.lc.line + 1)
        for tid, body in self.inlined_teams.items():
            if tid not in teams:
                teams.put(tid, body)
        doc.put("steps", step_list)
        if props:  # accord's own export: its scenario, or none
            if "scenario" in props:
                doc.put("scenario", props["scenario"])
        else:
            scenario: dict[str, Any] = {"teams": {t: {"size": 1} for t in teams}}
            if branches or self.inlined_branches:
                scenario["branches"] = {
                    aid[g]: {aid[t]: w for t, w in targets.items()}
                    for g, targets in branches.items()
                }
                scenario["branches"].update(self.inlined_branches)
            doc.put("scenario", scenario)
        self.summary_notes(steps)
        definition = from_document(doc, self.file)
        return Imported(definition, plain(doc), self.notes)

    def collect(
        self,
        container: Any,
        parent: str | None,
        *,
        nodes: dict[str, Any],
        steps: dict[str, _Map],
        flows: list[_Flow],
        lane_sets: list[Any],
    ) -> str | None:
        """Read a process's (or an embedded sub-process's) flow elements into the flat maps,
        remembering which sub-process each is declared in; return accord's synthetic start."""
        synthetic: str | None = None
        for child in container:
            if not is_bpmn(child):
                continue
            tag = local(child)
            eid = child.get("id")
            if tag in FLOW_NODES:
                if not eid:
                    self.refuse(child, f"<{tag}>", "a flow element without an id")
                    continue
                nodes[eid] = child
                if parent is not None:
                    self.parent_of[eid] = parent
                if (
                    parent is None
                    and tag == "startEvent"
                    and child.get(f"{{{ACCORD_NS}}}synthetic") == "true"
                ):
                    synthetic = eid
                    continue
                step = self.node(child)
                if step is not None:
                    steps[eid] = step
                if tag == "subProcess" and step is not None and step.get("type") == "subprocess":
                    self.collect(
                        child, eid, nodes=nodes, steps=steps, flows=flows, lane_sets=lane_sets
                    )
            elif tag == "sequenceFlow":
                flow = self.flow(child)
                if flow is not None:
                    flows.append(flow)
            elif tag == "laneSet":
                lane_sets.append(child)
            elif tag in DATA_AND_ARTIFACTS:
                self.ignore(child, tag)
            elif tag in PROCESS_DESCRIPTIONS or (parent is not None and tag in _ACTIVITY_PARTS):
                continue  # a sub-process's own parts (its markers are refused by node())
            else:
                self.refuse(child, eid or f"<{tag}>", f"<{tag}> is not a flow element accord knows")
        return synthetic

    # -- flow nodes -----------------------------------------------------------------------------

    def node(self, el: Any) -> _Map | None:
        found = classify(el)
        markers = [m for m in marker_elements(el) if m.status == REFUSED]
        if found.status == REFUSED:
            self.refuse(el, found.id, f"unsupported: {found.reason}")
        for m in markers:
            self.problems.append(Problem(self.file, m.line, 1, m.id, f"unsupported: {m.reason}"))
        if found.status == REFUSED or markers:
            return None
        tag = local(el)
        eid = str(el.get("id"))
        step = _Map(line_of(el))
        step.put("id", str(el.get(f"{{{ACCORD_NS}}}id") or eid))
        name = clean_name(el.get("name"))
        if name:
            step.put("name", name)
        if tag in HUMAN_TASKS:
            step.put("type", "human")
        elif tag in AUTOMATED_TASKS:
            step.put("type", "automated")
            step.put("handler", NOOP_HANDLER)
        elif tag == "receiveTask":
            step.put("type", "message")
            step.put("message", self.message_name(el, el.get("messageRef"), el))
        elif tag == "startEvent":
            step.put("type", "start")
        elif tag == "endEvent":
            step.put("type", "end")
            if "terminate" in triggers(el):
                step.put("terminate", True)
            self.throws(el, step)
        elif tag == "subProcess":
            if el.get("triggeredByEvent") == "true":
                step.put("type", "subprocess")
                self.event_subprocess(el, step)
            elif not any(is_bpmn(c) and local(c) in FLOW_NODES for c in el):
                step.put("type", "human")  # collapsed, without content: work for a person
                self.note(
                    line_of(el),
                    eid,
                    "a sub-process without content (collapsed): imported as a task for a person",
                )
            else:
                step.put("type", "subprocess")
        elif tag == "callActivity":
            if not self.call(el, step):
                return None
        elif tag == "boundaryEvent":
            step.put("type", "boundary")
            self.attached[eid] = str(el.get("attachedToRef") or "")
            if el.get("cancelActivity") == "false":
                step.put("interrupting", False)
            if not self.catches(el, step):
                return None
        elif tag == "intermediateThrowEvent" and set(triggers(el)) - {"message", "link"}:
            step.put("type", "throw")
            self.throws(el, step)
        elif tag == "intermediateCatchEvent" and triggers(el) == ["signal"]:
            step.put("type", "signal")
            self.catches(el, step)
            step.pop("on", None)
        elif tag == "intermediateCatchEvent" and triggers(el) == ["link"]:
            step.put("type", "milestone")  # paired with its link throw, then spliced
        elif tag == "intermediateCatchEvent":
            definition = next(c for c in el if local(c).endswith("EventDefinition"))
            if local(definition) == "messageEventDefinition":
                step.put("type", "message")
                step.put("message", self.message_name(el, definition.get("messageRef"), el))
            else:
                step.put("type", "timer")
                if not self.catch_timer(el, definition, step):
                    return None
        elif tag == "intermediateThrowEvent":
            step.put("type", "milestone")  # a pass-through: spliced out of the flow below
        elif tag == "eventBasedGateway":
            step.put("type", "event-gateway")
        else:
            step.put("type", tag.removesuffix("Gateway"))
        for key, value in loop_settings(self, el).items():  # multi-instance, standard loop
            step.put(key, value, line_of(el))
        for key, value in self.properties(el, eid).items():
            if key not in ("id", "next", "team"):
                step.put(key, value)
        return step

    # -- scopes and events ----------------------------------------------------------------------

    def _code(self, definition: Any, ref_attr: str, tag: str, code_attr: str) -> str | None:
        """The code an error or escalation definition names (None: none, a catch-all)."""
        ref = definition.get(ref_attr)
        if not ref:
            return None
        target = self.doc.by_id.get(ref)
        if target is None or local(target) != tag:
            return str(ref)
        return str(target.get(code_attr) or target.get("name") or ref)

    def _signal(self, el: Any, definition: Any) -> str:
        ref = definition.get("signalRef")
        target = self.doc.by_id.get(ref) if ref else None
        if target is not None:
            return clean_name(target.get("name")) or str(ref)
        return str(ref or clean_name(el.get("name")) or el.get("id"))

    def catches(self, el: Any, step: _Map) -> bool:
        """What starts a boundary event or an event sub-process's start: ``on`` and the
        trigger's settings. classify() refused the triggers accord cannot catch."""
        definition = next((c for c in el if local(c).endswith("EventDefinition")), None)
        if definition is None:
            self.refuse(el, str(el.get("id")), "unsupported: an event without a trigger here")
            return False
        on = local(definition).removesuffix("EventDefinition")
        step.put("on", on, line_of(definition))
        if on == "message":
            step.put("message", self.message_name(el, definition.get("messageRef"), el))
        elif on == "signal":
            step.put("signal", self._signal(el, definition))
        elif on in ("error", "escalation"):
            ref_attr, code_attr = f"{on}Ref", f"{on}Code"
            code = self._code(definition, ref_attr, on, code_attr)
            if code is not None:
                step.put("code", code)
        elif on == "timer":
            return self.timer_fields(el, definition, step)
        return True

    def throws(self, el: Any, step: _Map) -> None:
        """An end or intermediate throw event's error, escalation or signal."""
        definition = next((c for c in el if local(c).endswith("EventDefinition")), None)
        if definition is None:
            return
        what = local(definition).removesuffix("EventDefinition")
        if what not in ("error", "escalation", "signal"):
            return
        step.put("throw", what, line_of(definition))
        if what == "signal":
            step.put("signal", self._signal(el, definition))
        else:
            code = self._code(definition, f"{what}Ref", what, f"{what}Code")
            if code is not None:
                step.put("code", code)

    def event_subprocess(self, el: Any, step: _Map) -> None:
        """An event sub-process: its start event's trigger becomes the sub-process's ``on``."""
        start = next(
            (c for c in el if is_bpmn(c) and local(c) == "startEvent" and triggers(c)), None
        )
        if start is None:
            self.refuse(el, str(el.get("id")), "an event sub-process needs a start event with a "
                        "trigger")  # fmt: skip
            return
        if not self.catches(start, step):
            return
        if start.get("isInterrupting") == "false":
            step.put("interrupting", False)
        self.event_starts.add(str(start.get("id")))

    def timer_fields(self, el: Any, definition: Any, step: _Map) -> bool:
        eid = str(el.get("id"))
        parts = {local(c): c for c in definition if is_bpmn(c)}
        for key, part in parts.items():
            raw = (part.text or "").strip()
            text = _literal(raw)
            try:
                if key == "timeDuration":
                    parse_duration(text)
                    step.put("wait", text, line_of(part))
                elif key == "timeCycle":
                    parse_cycle(text)
                    step.put("cycle", text, line_of(part))
                elif key == "timeDate":
                    parse_iso(text)
                    step.put("date", text, line_of(part))
                else:
                    continue
            except ValueError as exc:
                if not raw and name_duration(el) is not None:
                    break  # an empty definition: the name says how long
                self.refuse(part, eid, f"unsupported: {key} {raw!r}: {exc}")
                return False
            return True
        named = name_duration(el)
        if named is not None:
            step.put("wait", named, line_of(definition))
            self.note(line_of(el), eid, f"a timer without a definition: it waits {named}, as "
                      f"its name {clean_name(el.get('name'))!r} says")  # fmt: skip
            return True
        self.refuse(el, eid, "a timer without timeDuration, timeDate or timeCycle")
        return False

    def call(self, el: Any, step: _Map) -> bool:
        """A call activity: the called process, imported on its own and inlined here as an
        embedded sub-process (see accord.bpmn.calls)."""
        eid = str(el.get("id"))
        called = el.get("calledElement")
        if not called:
            self.refuse(el, eid, "unsupported: a call activity without a calledElement")
            return False
        if called in self.chain or called == self.pid:
            chain = " -> ".join((*self.chain, self.pid, called))
            self.refuse(el, eid, f"unsupported: recursive call activities ({chain})")
            return False
        doc = self.library.find(called, self.doc)
        if doc is None:
            self.refuse(
                el,
                eid,
                f"calls process {called!r}, which is not in this file, the files given or "
                f"its folder",
            )
            return False
        try:
            callee = _Importer(doc, self.library, (*self.chain, self.pid)).run(called)
        except DefinitionError as exc:
            first = exc.problems[0]
            more = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
            self.refuse(
                el,
                eid,
                f"calls process {called!r} ({Path(doc.file).name}), which cannot be run: "
                f"line {first.line}: {first.element}: {first.message}{more}",
            )
            return False
        prefix = str(step["id"])
        inner = prefixed(callee.document["steps"], prefix)
        if inner and not any(x.get("type") == "start" for x in inner):
            first_id = inner[0]["id"]
            inner.insert(0, {"id": f"{prefix}/start", "type": "start", "next": first_id})
        step.put("type", "subprocess")
        step.put("steps", inner)
        self.inlined_teams.update(callee.document.get("teams") or {})
        branches = (callee.document.get("scenario") or {}).get("branches") or {}
        for gateway, targets in branches.items():
            self.inlined_branches[f"{prefix}/{gateway}"] = {
                f"{prefix}/{t}": w for t, w in targets.items()
            }
        mappings = [
            local(m) for ext in el if local(ext) == "extensionElements" for m in ext
            if local(m) in ("in", "out")
        ]  # fmt: skip
        self.note(
            line_of(el),
            eid,
            f"calls {called!r} ({Path(doc.file).name}): inlined as an embedded sub-process "
            "sharing the case's data"
            + (f"; {len(mappings)} camunda:in/out mapping(s) not applied" if mappings else ""),
        )
        return True

    def message_name(self, el: Any, ref: str | None, where: Any) -> str:
        if ref:
            msg = self.messages.get(ref)
            if msg is None:
                self.refuse(where, str(el.get("id")), f"messageRef {ref!r} names no <message>")
                return ref
            return clean_name(msg.get("name")) or str(ref)
        name = clean_name(el.get("name")) or str(el.get("id"))
        self.note(
            line_of(el),
            str(el.get("id")),
            f"waits for a message without a messageRef: the message is called {name!r}",
        )
        return name

    def catch_timer(self, el: Any, definition: Any, step: _Map) -> bool:
        """A timer catch event's timer step: it waits a duration, until a date (``timeDate``),
        or for the first occurrence of a cycle (``timeCycle``: a timer step fires once)."""
        eid = str(el.get("id"))
        parts = {local(c): c for c in definition if is_bpmn(c)}
        texts = {key: _literal((part.text or "").strip()) for key, part in parts.items()}
        if "timeDuration" not in parts and texts.get("timeDate"):
            try:
                parse_iso(texts["timeDate"])
            except ValueError:
                self.refuse(parts["timeDate"], eid, f"unsupported: timeDate {texts['timeDate']!r}"
                            ": only a literal ISO-8601 date-time can be imported")  # fmt: skip
                return False
            step.put("date", texts["timeDate"], line_of(parts["timeDate"]))
            return True
        if "timeDuration" not in parts and texts.get("timeCycle"):
            text = texts["timeCycle"]
            try:
                parse_cycle(text)
            except ValueError as exc:
                self.refuse(parts["timeCycle"], eid, f"unsupported: timeCycle {text!r}: {exc}")
                return False
            first = text.split("/", 1)[1]
            step.put("wait", first, line_of(parts["timeCycle"]))
            self.note(
                line_of(el),
                eid,
                f"a timer catch event with timeCycle {text!r}: a token passes it once, so it "
                f"waits for the first occurrence ({first})",
            )
            return True
        wait = self.timer(el, definition)
        if wait is None:
            return False
        step.put("wait", wait, line_of(definition))
        return True

    def timer(self, el: Any, definition: Any) -> str | None:
        eid = str(el.get("id"))
        parts = {local(c): c for c in definition if is_bpmn(c)}  # classify saw a timeDuration
        if "timeDuration" not in parts:  # or none at all, and a name that says how long
            named = name_duration(el)
            self.note(
                line_of(el),
                eid,
                f"a timer without a definition: it waits {named}, as its name "
                f"{clean_name(el.get('name'))!r} says",
            )
            return named
        raw = (parts["timeDuration"].text or "").strip()
        text = raw
        feel = re.fullmatch(r'=\s*(?:duration\(\s*)?"([^"]*)"\s*\)?', text)
        if feel:
            text = feel.group(1)
        elif re.fullmatch(r"""(['"])[^'"]*\1""", text):
            text = text[1:-1]  # a quoted literal (SpiffWorkflow's Python)
        elif text.startswith(("${", "#{", "=")):
            self.refuse(
                parts["timeDuration"],
                eid,
                f"unsupported: timeDuration {raw!r} is an expression; only a literal ISO-8601 "
                "duration can be imported",
            )
            return None
        try:
            parse_duration(text)
        except ValueError as exc:
            self.refuse(parts["timeDuration"], eid, f"timeDuration: {exc}")
            return None
        return text

    def properties(self, el: Any, eid: str) -> dict[str, Any]:
        """accord's own settings, written by ``accord export`` as JSON in extensionElements."""
        for ext in el:
            if local(ext) != "extensionElements":
                continue
            for item in ext:
                if item.tag == f"{{{ACCORD_NS}}}properties":
                    try:
                        value = json.loads(item.text or "{}")
                    except ValueError as exc:
                        self.refuse(item, eid, f"accord:properties is not valid JSON: {exc}")
                        return {}
                    if not isinstance(value, dict):
                        self.refuse(item, eid, "accord:properties must be a JSON object")
                        return {}
                    return value
        return {}

    # -- sequence flows -------------------------------------------------------------------------

    def flow(self, el: Any) -> _Flow | None:
        source, target = el.get("sourceRef") or "", el.get("targetRef") or ""
        # the id is optional in BPMN (Camunda's engine tests leave it out): accord's default then
        fid = el.get("id") or f"{source}->{target}"
        flow = _Flow(str(el.get(f"{{{ACCORD_NS}}}id") or fid), el, source, target)
        for cond in el:
            if local(cond) != "conditionExpression" or not is_bpmn(cond):
                continue
            text = "".join(cond.itertext()).strip()
            if not text:
                continue  # an empty condition is no condition (some modellers write them)
            language = cond.get("language") or self.doc.root.get("expressionLanguage")
            try:
                flow.condition = translate(text, language)
            except Untranslatable as exc:
                lang = f" ({language})" if language else ""
                self.refuse(
                    cond,
                    fid,
                    f"condition {text!r}{lang} cannot be translated into accord's expression "
                    f"language: {exc}",
                )
            flow.condition_line = line_of(cond)
        return flow

    def check_flows(
        self, flows: list[_Flow], nodes: dict[str, Any], steps: dict[str, _Map]
    ) -> None:
        for f in flows:
            for end, ref in (("sourceRef", f.source), ("targetRef", f.target)):
                if not ref:
                    self.refuse(f.el, f.id, f"sequence flow without a {end}")
                elif ref not in nodes:
                    elsewhere = self.doc.by_id.get(ref)
                    if elsewhere is not None:
                        where = f"<{local(elsewhere)}> at line {line_of(elsewhere)}, "
                        where += f"not a flow node of process {self.pid!r}"
                    else:
                        where = "no element has this id"
                    self.refuse(f.el, f.id, f"{end} {ref!r}: {where}")
        by_source: dict[str, list[_Flow]] = {}
        for f in flows:
            by_source.setdefault(f.source, []).append(f)
        for nid, el in nodes.items():
            default = el.get("default")
            if not default:
                continue
            mine = [f for f in by_source.get(nid, []) if f.el.get("id") == default]
            if not mine:
                self.refuse(el, nid, f"default flow {default!r} is not a flow leaving {nid!r}")
                continue
            mine[0].default = True

    def splice(
        self, steps: dict[str, _Map], flows: list[_Flow], nodes: dict[str, Any]
    ) -> list[_Flow]:
        """Join pass-through nodes into the flow around them (BPMN allows them, accord's
        validation does not: a gateway must split or join). Linear in the size of the model."""
        inc: dict[str, list[_Flow]] = {}
        out: dict[str, list[_Flow]] = {}
        for f in flows:
            inc.setdefault(f.target, []).append(f)
            out.setdefault(f.source, []).append(f)
        dead: set[int] = set()
        for sid in list(steps):
            step = steps[sid]
            kind = step.get("type")
            if kind != "milestone" and kind not in ("exclusive", "parallel", "inclusive"):
                continue
            i, o = inc.get(sid, []), out.get(sid, [])
            if len(i) == 1 and len(o) == 1 and o[0].condition is None and i[0] is not o[0]:
                f_in, f_out = i[0], o[0]
                f_in.target = f_out.target
                after = inc[f_out.target]
                after[next(n for n, f in enumerate(after) if f is f_out)] = f_in
                inc[sid], out[sid] = [], []
                dead.add(id(f_out))
                del steps[sid]
                what = "intermediate event" if kind == "milestone" else f"{kind} gateway"
                self.note(
                    step.lc.line + 1,
                    sid,
                    f"a pass-through {what}: its flows were joined "
                    f"({f_in.id} now leads to {f_out.target!r})",
                )
                continue
            if kind != "milestone":
                continue
            # a none intermediate event that merges or forks behaves as a gateway
            if len(o) == 1 and len(i) > 1:
                step.put("type", "exclusive")
            elif len(i) <= 1 and len(o) > 1:
                step.put("type", "parallel")
            elif not o:
                step.put("type", "end")
            else:
                self.refuse(
                    nodes[sid], sid, "unsupported: an intermediate event that both merges and forks"
                )
                step.put("type", "exclusive")
        return [f for f in flows if id(f) not in dead]

    def defaults(self, flows: list[_Flow], nodes: dict[str, Any]) -> None:
        by_source: dict[str, list[_Flow]] = {}
        for f in flows:
            by_source.setdefault(f.source, []).append(f)
        for sid, out in by_source.items():
            el = nodes.get(sid)
            tag = local(el) if el is not None else ""
            for f in out:
                if f.default and f.condition is not None:
                    self.note(line_of(f.el), f.id, "a default flow's condition is ignored (BPMN)")
                    f.condition = None
            if tag == "parallelGateway":
                for f in out:
                    if f.condition is not None or f.default:
                        self.note(
                            line_of(f.el),
                            f.id,
                            "a parallel gateway takes every flow: "
                            "the flow's condition or default mark is ignored (BPMN)",
                        )
                        f.condition, f.default = None, False
                continue
            if len(out) == 1 and out[0].default:
                self.note(
                    line_of(out[0].el),
                    out[0].id,
                    f"the only flow out of {sid!r} cannot be a default; it is a plain flow",
                )
                out[0].default = False

    # -- teams ----------------------------------------------------------------------------------

    def teams(
        self, lane_sets: list[Any], steps: dict[str, _Map], nodes: dict[str, Any]
    ) -> tuple[_Map, dict[str, str]]:
        teams = _Map(line_of(lane_sets[0]) if lane_sets else line_of(self.proc))
        team_of: dict[str, str] = {}
        used: set[str] = set()

        def new_team(tid: str, name: str, line: int, body: dict[str, Any] | None = None) -> str:
            base = tid or "team"
            tid, n = base, 1
            while tid in used:
                n += 1
                tid = f"{base}-{n}"
            used.add(tid)
            team = _Map(line)
            if name and name != tid:
                team.put("name", name)
            for key, value in (body or {}).items():
                if key not in ("id",):
                    team.put(key, value)
            teams.put(tid, team, line)
            return tid

        lanes: list[tuple[Any, int, bool, list[str]]] = []  # lane, depth, leaf, its steps

        def walk(lane_set: Any, depth: int) -> None:
            for lane in lane_set:
                if local(lane) != "lane" or not is_bpmn(lane):
                    continue
                lid = str(lane.get("id") or "")
                children = [c for c in lane if local(c) == "childLaneSet"]
                mine: list[str] = []
                for r in lane:
                    if local(r) != "flowNodeRef":
                        continue
                    ref = (r.text or "").strip()
                    if ref in steps:
                        mine.append(ref)
                    elif ref not in nodes and ref not in self.doc.by_id:
                        self.refuse(r, lid, f"flowNodeRef {ref!r}: no element has this id")
                lanes.append((lane, depth, not children, mine))
                for c in children:
                    walk(c, depth + 1)

        for lane_set in lane_sets:
            walk(lane_set, 0)
        innermost: dict[str, tuple[int, int]] = {}  # step -> (depth, lane index)
        for i, (_, depth, _, mine) in enumerate(lanes):
            for sid in mine:
                if sid not in innermost or depth >= innermost[sid][0]:
                    innermost[sid] = (depth, i)
        members: dict[int, list[str]] = {}
        for sid, (_, i) in innermost.items():
            members.setdefault(i, []).append(sid)
        owners = set(members)
        for i, (lane, _, leaf, _) in enumerate(lanes):
            if not leaf and i not in owners:
                continue  # a lane that only groups other lanes is not a team
            lid = str(lane.get("id") or "")
            name = clean_name(lane.get("name"))
            tid = str(lane.get(f"{{{ACCORD_NS}}}id") or slug(name) or lid)
            tid = new_team(tid, name, line_of(lane), self.properties(lane, lid))
            for sid in members.get(i, ()):
                team_of[sid] = tid
        default_team: str | None = None
        for sid, step in steps.items():
            if sid in team_of or step.get("type") not in ("human", "automated", "approval"):
                continue
            scope = self.parent_of.get(sid)
            while scope is not None and scope not in team_of:
                scope = self.parent_of.get(scope)
            if scope is not None:  # a step inside a sub-process in a lane: that lane's team
                team_of[sid] = team_of[scope]
                continue
            group = self.assigned_group(nodes[sid])
            if group:
                existing = next((t for t in teams if t == slug(group)), None)
                team_of[sid] = existing or new_team(slug(group) or group, group, step.lc.line + 1)
                continue
            if default_team is None:
                name = (
                    clean_name(
                        (self.pool.get("name") if self.pool is not None else None)
                        or self.proc.get("name")
                    )
                    or self.pid
                )
                default_team = new_team(slug(name) or self.pid, name, line_of(self.proc))
            team_of[sid] = default_team
        return teams, team_of

    def assigned_group(self, el: Any) -> str | None:
        """The group a task is offered to, where no lane says (a literal, not an expression)."""
        for attr, value in el.attrib.items():
            if attr.rsplit("}", 1)[-1] == "candidateGroups" and value:
                first = str(value).split(",")[0].strip()
                if first and "{" not in first:
                    return first
        for role in el:
            if local(role) not in ("potentialOwner", "humanPerformer", "performer"):
                continue
            for part in role.iter():
                if local(part) == "resourceRef" and part.text:
                    res = self.doc.by_id.get(part.text.strip())
                    if res is not None and clean_name(res.get("name")):
                        return clean_name(res.get("name"))
                if local(part) == "formalExpression" and part.text:
                    text = str(part.text).strip()
                    if text and "{" not in text and "(" not in text:
                        return text
        return None

    # -- routing --------------------------------------------------------------------------------

    def routes(
        self, steps: dict[str, _Map], flows: list[_Flow], nodes: dict[str, Any]
    ) -> dict[str, dict[str, float]]:
        """Make BPMN's implicit rules explicit, and pick the branches the default scenario draws
        where conditions read data that no step of an imported model provides."""
        by_source: dict[str, list[_Flow]] = {}
        for f in flows:
            by_source.setdefault(f.source, []).append(f)
        branches: dict[str, dict[str, float]] = {}
        outputs = {o for s in steps.values() for o in s.get("outputs", ()) or ()}
        for sid, out in by_source.items():
            step = steps.get(sid)
            if step is None:
                continue
            kind = step.get("type")
            conditional = [f for f in out if f.condition is not None]
            plain_flows = [f for f in out if f.condition is None and not f.default]
            always = False
            if kind == "exclusive" and len(out) > 1 and plain_flows:
                always = True
                self.note(
                    line_of(plain_flows[0].el),
                    sid,
                    "flows without a condition out of an exclusive gateway count as true "
                    "(Camunda's rule: the first in document order wins); the default scenario "
                    "draws among them",
                )
            elif kind not in ("exclusive", "parallel", "inclusive") and conditional and plain_flows:
                always = True  # BPMN: an uncontrolled flow out of an activity is always taken
            if always:
                for f in plain_flows:
                    f.condition = "true"
            names: set[str] = set()
            for f in conditional:
                if f.condition is not None:
                    names |= set(parse_expression(f.condition).names)
            undecided = (names - outputs) or (kind == "exclusive" and len(out) > 1 and always)
            if undecided and kind != "parallel":
                targets = list(dict.fromkeys(f.target for f in out))
                weight = 0.5 if kind == "inclusive" else 1.0
                branches[sid] = dict.fromkeys(targets, weight)
        return branches

    def start(
        self, steps: dict[str, _Map], flows: list[_Flow], nodes: dict[str, Any], own: bool
    ) -> None:
        top = {
            sid: s
            for sid, s in steps.items()
            if sid not in self.parent_of and s.get("type") != "boundary" and not s.get("on")
        }
        if own or any(s.get("type") == "start" for s in top.values()):
            return
        targets = {f.target for f in flows}
        roots = [sid for sid in top if sid not in targets]
        if len(roots) == 1:
            first = roots[0]
            moved = {first: steps.pop(first)}
            moved.update(steps)
            steps.clear()
            steps.update(moved)
            self.note(
                line_of(nodes[first]),
                first,
                "no start event: the case starts here, at "
                "the only flow node without an incoming flow",
            )
            return
        where = ", ".join(repr(r) for r in roots[:5]) or "none"
        self.refuse(
            self.proc,
            self.pid,
            "no start event, and not exactly one flow node without incoming flows "
            f"({where}): add a start event",
        )

    # -- notes ----------------------------------------------------------------------------------

    def collaboration_notes(self) -> None:
        if self.collab is not None:
            return  # every message flow is imported or noted (accord.bpmn.collaboration)
        ours = {str(n.get("id")) for n in self.proc.iter() if is_bpmn(n)}
        flows = [
            m
            for c in self.doc.root
            if is_bpmn(c) and local(c) == "collaboration"
            for m in c
            if is_bpmn(m)
            and local(m) == "messageFlow"
            # both ends in this process: accord's own export of a collaboration's messages
            and not {m.get("sourceRef"), m.get("targetRef")} <= ours
        ]
        if flows:
            self.note(
                line_of(flows[0]),
                str(flows[0].get("id")),
                f"{len(flows)} message flow(s) to or from pools that are not run here are "
                "documentation only",
            )

    def summary_notes(self, steps: dict[str, _Map]) -> None:
        for what, n in sorted(self.ignored.items()):
            self.note(
                self.ignored_line[what],
                what,
                f"{n} ignored: data and artifacts do not affect routing",
            )
        impl: list[tuple[int, str]] = []
        listeners: list[tuple[int, str]] = []
        for el in self.proc.iter():
            if not is_bpmn(el):
                continue
            tag = local(el)
            step = steps.get(str(el.get("id")))
            noop = step is not None and step.get("handler") == NOOP_HANDLER
            if tag in AUTOMATED_TASKS and noop:
                impl.append((line_of(el), f"{el.get('id')} ({_implementation(el)})"))
            if tag == "extensionElements":
                for ext in el:
                    name = local(ext)
                    if name in ("executionListener", "taskListener"):
                        owner = el.getparent()
                        listeners.append((line_of(ext), f"{owner.get('id')} ({name})"))
        if impl:
            self.note(
                impl[0][0],
                "handlers",
                f"automated steps run {NOOP_HANDLER} (it does nothing) until they are given "
                "handlers of their own: " + ", ".join(t for _, t in impl),
            )
        if listeners:
            self.note(
                listeners[0][0],
                "listeners",
                "listeners are not run: " + ", ".join(t for _, t in listeners),
            )


def _next_of(step: _Map, out: list[_Flow], aid: dict[str, str]) -> Any:
    """A step's ``next``: the short forms where they say the same, the list form otherwise."""
    if not out:
        return None
    sid = str(step["id"])
    if (
        len(out) == 1
        and out[0].condition is None
        and not out[0].message
        and not out[0].default
        and out[0].id == f"{sid}->{aid[out[0].target]}"
    ):
        return aid[out[0].target]
    if step.get("type") == "approval":
        mapping = _outcome_mapping(sid, out, aid)
        if mapping is not None:
            return mapping
    items = _List(line_of(out[0].el))
    for f in out:
        entry = _Map(line_of(f.el))
        target = aid[f.target]
        entry.put("to", target)
        if f.id != f"{sid}->{target}":
            entry.put("id", f.id)
        if f.condition is not None:
            entry.put("when", f.condition, f.condition_line or None)
        if f.default:
            entry.put("default", True)
        if f.message:
            entry.put("message", True)
        items.add(entry, line_of(f.el))
    return items


def _outcome_mapping(sid: str, out: Iterable[_Flow], aid: dict[str, str]) -> dict[str, str] | None:
    """The ``{approve: X, ...}`` form of an approval's flows, when that is what they are."""
    mapping: dict[str, str] = {}
    expected: list[str] = []
    for f in out:
        m = re.fullmatch(r"outcome == '(approve|reject|rework)'", f.condition or "")
        if m is None or f.default or m.group(1) in mapping:
            return None
        target = aid[f.target]
        fid = f"{sid}->{target}"
        if fid in expected:
            fid = f"{sid}->{target}[{m.group(1)}]"
        if f.id != fid:
            return None
        expected.append(fid)
        mapping[m.group(1)] = target
    return mapping


def _documentation(el: Any) -> str:
    parts = [
        "".join(d.itertext()).strip() for d in el if local(d) == "documentation" and is_bpmn(d)
    ]
    return "\n".join(p for p in parts if p)


def _implementation(el: Any) -> str:
    found: list[str] = []
    for attr, value in el.attrib.items():
        name = attr.rsplit("}", 1)[-1]
        if name in _IMPLEMENTATION_ATTRS or (name == "type" and attr.startswith("{")):
            found.append(f"{name}={value}")
    for child in el:
        if local(child) == "script" and (child.text or "").strip():
            text = " ".join((child.text or "").split())
            found.append(f"script {text[:40]!r}" + ("..." if len(text) > 40 else ""))
    return ", ".join(found) or local(el)


def to_yaml(imported: Imported, source: str) -> str:
    """The imported process as a YAML definition, headed by the import's notes."""
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    def build(node: Any, flow: bool = False) -> Any:
        if isinstance(node, dict):
            m = CommentedMap((k, build(v, flow)) for k, v in node.items())
            if flow or not node:
                m.fa.set_flow_style()
            return m
        if isinstance(node, list):
            s = CommentedSeq(build(v, flow) for v in node)
            if flow or all(isinstance(v, str) for v in node):
                s.fa.set_flow_style()
            return s
        return node

    first = ("id", "name", "type", "team", "handler", "message", "wait", "terminate")
    doc = CommentedMap()
    for key, value in imported.document.items():
        if key == "steps":
            steps = CommentedSeq()
            for step in value:
                m = CommentedMap()
                order = [k for k in first if k in step]
                order += [k for k in step if k not in first and k != "next"]
                order += ["next"] if "next" in step else []
                for k in order:
                    v = step[k]
                    if k == "next" and isinstance(v, list):
                        m[k] = CommentedSeq(build(item, flow=True) for item in v)
                    else:
                        m[k] = build(v)
                steps.append(m)
            doc[key] = steps
        else:
            doc[key] = build(value)
    lines = [f"Imported from {source} by `accord import`."]
    if imported.notes:
        lines.append("Notes:")
        for n in imported.notes:
            lines.extend(
                textwrap.wrap(
                    f"line {n.line}: {n.element}: {n.message}",
                    width=96,
                    initial_indent="- ",
                    subsequent_indent="  ",
                )
            )
    doc.yaml_set_start_comment("\n".join(lines))
    yaml = YAML()
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    buf = io.StringIO()
    yaml.dump(doc, buf)
    return buf.getvalue()


def _literal(text: str) -> str:
    """A timer's text without the quoting of SpiffWorkflow's Python or FEEL's literals."""
    feel = re.fullmatch(r'=\s*(?:duration\(\s*)?"([^"]*)"\s*\)?', text)
    if feel:
        return feel.group(1)
    if re.fullmatch(r"""(['"])[^'"]*\1""", text):
        return text[1:-1]
    return text
