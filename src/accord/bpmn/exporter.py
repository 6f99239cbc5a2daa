"""accord -> BPMN 2.0 XML with diagram interchange (BPMNDI), laid out automatically.

The process becomes one pool with a lane per team. Steps map to the BPMN element a modeller
expects (human and approval steps -> ``userTask``, automated -> ``serviceTask``, timers and
messages -> intermediate catch events, gateways and start/end events as themselves); conditions
are written in accord's own expression language (``language="urn:accord:expression"``).

Whatever BPMN has no place for (roles, data contracts, SLAs, retry, error routes, members, the
scenario, ...) travels as JSON in an ``accord:properties`` extension element, which BPMN tools
keep and ignore; :mod:`accord.bpmn.importer` reads it back, so YAML -> BPMN -> YAML keeps the
whole process. A process without a start step gets a start event marked ``accord:synthetic``
(BPMN needs one to show where cases begin; the importer drops it again).

Layout: left to right by the longest path from the start (back edges of loops ignored), one lane
per team, nodes of one column and lane stacked; edges are orthogonal polylines, loops run below
the shapes they connect.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from accord.bpmn.conditions import ACCORD_LANGUAGE
from accord.bpmn.reader import ACCORD_NS, BPMN_NS, BPMNDI_NS, DC_NS, DI_NS, XSI_NS
from accord.model.durations import format_duration, parse_duration
from accord.model.types import (
    ErrorAction,
    Flow,
    Mode,
    ProcessDefinition,
    Retry,
    Step,
    StepKind,
    Team,
)

NSMAP = {
    "bpmn": BPMN_NS,
    "bpmndi": BPMNDI_NS,
    "dc": DC_NS,
    "di": DI_NS,
    "xsi": XSI_NS,
    "accord": ACCORD_NS,
}
_ELEMENT = {
    StepKind.START: "startEvent",
    StepKind.END: "endEvent",
    StepKind.HUMAN: "userTask",
    StepKind.APPROVAL: "userTask",
    StepKind.AUTOMATED: "serviceTask",
    StepKind.EXCLUSIVE: "exclusiveGateway",
    StepKind.PARALLEL: "parallelGateway",
    StepKind.INCLUSIVE: "inclusiveGateway",
    StepKind.EVENT_GATEWAY: "eventBasedGateway",
    StepKind.TIMER: "intermediateCatchEvent",
    StepKind.MESSAGE: "intermediateCatchEvent",
    StepKind.SIGNAL: "intermediateCatchEvent",
    StepKind.SUBPROCESS: "subProcess",
    StepKind.BOUNDARY: "boundaryEvent",
    StepKind.THROW: "intermediateThrowEvent",
}
_SIZE = {"task": (100.0, 80.0), "gateway": (50.0, 50.0), "event": (36.0, 36.0)}
COLUMN = 160.0
ROW = 110.0
LANE_PAD = 25.0
POOL_X, POOL_Y = 20.0, 20.0
POOL_LABEL = 30.0
LANE_LABEL = 30.0
_NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def _b(tag: str) -> str:
    return f"{{{BPMN_NS}}}{tag}"


def _a(tag: str) -> str:
    return f"{{{ACCORD_NS}}}{tag}"


def iso(seconds: float) -> str:
    """A duration as ISO-8601 text that parses back to exactly ``seconds``."""
    text = format_duration(seconds)
    if parse_duration(text) == seconds:
        return text
    return f"PT{seconds!r}S"


def _shape_kind(step: Step) -> str:
    if step.kind.is_work or step.kind is StepKind.SUBPROCESS:
        return "task"
    if step.kind.is_gateway:
        return "gateway"
    return "event"


class _Ids:
    """XML ids (NCNames, unique in the document) for accord ids that may be neither."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def get(self, wanted: str) -> str:
        base = wanted if _NCNAME.match(wanted) else re.sub(r"[^A-Za-z0-9_.\-]", "_", wanted)
        if not base or not re.match(r"[A-Za-z_]", base):
            base = "_" + base
        xid, n = base, 1
        while xid in self.used:
            n += 1
            xid = f"{base}_{n}"
        self.used.add(xid)
        return xid


def step_settings(step: Step) -> dict[str, Any]:
    """The settings of a step that BPMN has no place for, as YAML would write them."""
    out: dict[str, Any] = {}
    if step.kind is StepKind.APPROVAL:
        out["type"] = "approval"
    if step.role is not None:
        out["role"] = step.role
    if step.handler is not None:
        out["handler"] = step.handler
    if step.inputs:
        out["inputs"] = list(step.inputs)
    if step.outputs:
        out["outputs"] = list(step.outputs)
    if step.contract is not None:
        out["contract"] = step.contract
    if step.sla is not None:
        out["sla"] = iso(step.sla)
    if step.escalate_to is not None:
        out["escalate_to"] = step.escalate_to
    if step.retry != Retry():
        r = step.retry
        out["retry"] = {
            "max_attempts": r.max_attempts,
            "backoff": iso(r.backoff),
            "factor": r.factor,
            "max_backoff": iso(r.max_backoff),
        }
    if step.on_error.action is ErrorAction.REROUTE:
        out["on_error"] = {"reroute": step.on_error.to}
    if step.mode is not None:
        out["mode"] = step.mode.value
    if step.require_hub_when is not None:
        out["require_hub_when"] = step.require_hub_when.source
    if step.compliance:
        out["compliance"] = True
    return out


def _loop_marker(el: Any, s: Step, ids: Any) -> None:
    """A multi-instance or standard loop marker, in BPMN's own elements (accord's expression
    language; a collection and the output as the names of case data fields)."""

    def expression(parent: Any, tag: str, source: str) -> None:
        child = etree.SubElement(parent, _b(tag), language=ACCORD_LANGUAGE)
        child.set(f"{{{XSI_NS}}}type", "bpmn:tFormalExpression")
        child.text = source

    if s.multi is not None:
        m = s.multi
        marker = etree.SubElement(el, _b("multiInstanceLoopCharacteristics"))
        if m.sequential:
            marker.set("isSequential", "true")
        if m.count is not None:
            expression(marker, "loopCardinality", m.count.source)
        if m.collection is not None:
            etree.SubElement(marker, _b("loopDataInputRef")).text = m.collection
        if m.output is not None:
            etree.SubElement(marker, _b("loopDataOutputRef")).text = m.output
        if m.item is not None:
            etree.SubElement(marker, _b("inputDataItem"), id=ids.get(f"{s.id}_item"), name=m.item)
        if m.output is not None and m.output_item is not None:
            etree.SubElement(
                marker, _b("outputDataItem"), id=ids.get(f"{s.id}_output"), name=m.output_item
            )
        if m.until is not None:
            expression(marker, "completionCondition", m.until.source)
    elif s.loop is not None:
        marker = etree.SubElement(el, _b("standardLoopCharacteristics"))
        if s.loop.test_before:
            marker.set("testBefore", "true")
        if s.loop.maximum is not None:
            marker.set("loopMaximum", str(s.loop.maximum))
        if s.loop.condition is not None:
            expression(marker, "loopCondition", s.loop.condition.source)


def team_settings(team: Team) -> dict[str, Any]:
    """A team's settings besides its id and name."""
    out: dict[str, Any] = {}
    if team.members:
        out["members"] = [
            {
                "id": m.id,
                **({"name": m.name} if m.name != m.id else {}),
                **({"roles": list(m.roles)} if m.roles else {}),
            }
            for m in team.members
        ]
    if team.lead is not None:
        out["lead"] = team.lead
    if team.wip_limit is not None:
        out["wip_limit"] = team.wip_limit
    if team.assignment != "round-robin":
        out["assignment"] = team.assignment
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _properties(parent: Any, settings: dict[str, Any]) -> None:
    if not settings:
        return
    ext = etree.SubElement(parent, _b("extensionElements"))
    props = etree.SubElement(ext, _a("properties"))
    props.text = json.dumps(_jsonable(settings), ensure_ascii=False, sort_keys=False)


@dataclass
class _Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


def export_bpmn(d: ProcessDefinition) -> bytes:
    """The definition as BPMN 2.0 XML (UTF-8 bytes) with a diagram."""
    ids = _Ids()
    sid = {s: ids.get(s) for s in d.steps}
    synthetic = None if d.steps[d.start].kind is StepKind.START else ids.get("StartEvent_accord")
    fid = {f.id: ids.get(f.id) for f in d.flows}
    start_flow = ids.get(f"Flow_start_{d.start}") if synthetic else None
    pid = ids.get(d.id)
    lane_id = {t: ids.get(f"Lane_{t}") for t in d.teams}
    collab_id = ids.get(f"Collaboration_{d.id}")
    part_id = ids.get(f"Participant_{d.id}")

    root = etree.Element(
        _b("definitions"),
        nsmap=NSMAP,
        attrib={
            "id": ids.get(f"Definitions_{d.id}"),
            "targetNamespace": "urn:accord:process",
            "exporter": "accord",
            "exporterVersion": "1",
        },
    )
    messages: dict[str, str] = {}
    for s in d.steps.values():
        if s.message and s.message not in messages:
            messages[s.message] = ids.get(f"Message_{s.message}")
            etree.SubElement(root, _b("message"), id=messages[s.message], name=s.message)
    refs = _event_refs(root, d, ids)
    collab = etree.SubElement(root, _b("collaboration"), id=collab_id)
    etree.SubElement(collab, _b("participant"), id=part_id, name=d.name, processRef=pid)

    proc = etree.SubElement(root, _b("process"), id=pid, name=d.name, isExecutable="true")
    if pid != d.id:
        proc.set(_a("id"), d.id)
    if d.description:
        etree.SubElement(proc, _b("documentation")).text = d.description
    settings: dict[str, Any] = {"version": d.version}
    if d.owner is not None:
        settings["owner"] = d.owner
    if d.mode is not Mode.CENTRAL:
        settings["mode"] = d.mode.value
    if d.scenario is not None:
        settings["scenario"] = _jsonable(d.scenario)
    _properties(proc, settings)

    lane_set = etree.SubElement(proc, _b("laneSet"), id=ids.get(f"LaneSet_{d.id}"))
    for tid, team in d.teams.items():
        lane = etree.SubElement(lane_set, _b("lane"), id=lane_id[tid], name=team.name)
        lane.set(_a("id"), tid)  # the lane id must be an NCName; the team id need not be
        _properties(lane, team_settings(team))
        for s in d.steps.values():
            if s.team == tid:
                etree.SubElement(lane, _b("flowNodeRef")).text = sid[s.id]

    incoming: dict[str, list[str]] = {s: [] for s in d.steps}
    outgoing: dict[str, list[str]] = {s: [] for s in d.steps}
    for f in d.flows:
        if f.message:
            continue  # a message flow is no sequence flow: nodes do not list it
        outgoing[f.source].append(fid[f.id])
        incoming[f.target].append(fid[f.id])
    if synthetic and start_flow:
        incoming[d.start].insert(0, start_flow)
        ev = etree.SubElement(proc, _b("startEvent"), id=synthetic, name="Start")
        ev.set(_a("synthetic"), "true")
        etree.SubElement(ev, _b("outgoing")).text = start_flow
    container: dict[str, Any] = {}
    for s in d.steps.values():
        parent = container.get(s.parent or "", proc)
        el = etree.SubElement(parent, _b(_ELEMENT[s.kind]), id=sid[s.id])
        if s.kind is StepKind.SUBPROCESS:
            container[s.id] = el
            if s.on is not None:
                el.set("triggeredByEvent", "true")
        if sid[s.id] != s.id:
            el.set(_a("id"), s.id)
        if s.name != s.id:
            el.set("name", s.name)
        if s.kind is StepKind.BOUNDARY:
            el.set("attachedToRef", sid[s.attached_to or ""])
            if not s.interrupting:
                el.set("cancelActivity", "false")
        default = next((f for f in d.outgoing.get(s.id, ()) if f.default), None)
        if default is not None:
            el.set("default", fid[default.id])
        _properties(el, step_settings(s))
        for ref in incoming[s.id]:
            etree.SubElement(el, _b("incoming")).text = ref
        for ref in outgoing[s.id]:
            etree.SubElement(el, _b("outgoing")).text = ref
        _loop_marker(el, s, ids)
        if s.kind is StepKind.END and s.terminate:
            etree.SubElement(el, _b("terminateEventDefinition"), id=ids.get(f"{s.id}_terminate"))
        elif s.kind is StepKind.TIMER:
            timer = etree.SubElement(el, _b("timerEventDefinition"), id=ids.get(f"{s.id}_timer"))
            dated = s.date is not None and s.wait is None
            duration = etree.SubElement(timer, _b("timeDate" if dated else "timeDuration"))
            duration.set(f"{{{XSI_NS}}}type", "bpmn:tFormalExpression")
            duration.text = iso_date(s.date or 0.0) if dated else iso(s.wait or 0.0)
        elif s.kind is StepKind.MESSAGE:
            etree.SubElement(
                el,
                _b("messageEventDefinition"),
                id=ids.get(f"{s.id}_message"),
                messageRef=messages[s.message or ""],
            )
        elif s.kind is StepKind.SIGNAL:
            _definition(el, "signal", s, owner=s, ids=ids, refs=refs, messages=messages)
        elif s.kind is StepKind.BOUNDARY and s.on is not None:
            _definition(el, s.on, s, owner=s, ids=ids, refs=refs, messages=messages)
        elif s.throw is not None:
            _definition(el, s.throw, s, owner=s, ids=ids, refs=refs, messages=messages)
        elif s.kind is StepKind.START and s.parent is not None:
            sub = d.steps[s.parent]
            if sub.on is not None:  # an event sub-process: its start carries the trigger
                if not sub.interrupting:
                    el.set("isInterrupting", "false")
                _definition(el, sub.on, sub, owner=s, ids=ids, refs=refs, messages=messages)
    if synthetic and start_flow:
        etree.SubElement(
            proc,
            _b("sequenceFlow"),
            id=start_flow,
            sourceRef=synthetic,
            targetRef=sid[d.start],
            attrib={_a("synthetic"): "true"},
        )
    for f in d.flows:
        if f.message:  # between the pools a collaboration was imported from: a message flow
            el = etree.SubElement(
                collab, _b("messageFlow"), id=fid[f.id], sourceRef=sid[f.source],
                targetRef=sid[f.target],
            )  # fmt: skip
            if fid[f.id] != f.id:
                el.set(_a("id"), f.id)
            continue
        el = etree.SubElement(
            container.get(d.steps[f.source].parent or "", proc),
            _b("sequenceFlow"),
            id=fid[f.id],
            sourceRef=sid[f.source],
            targetRef=sid[f.target],
        )
        if fid[f.id] != f.id:
            el.set(_a("id"), f.id)
        label = _flow_label(d, f)
        if label:
            el.set("name", label)
        if f.condition is not None:
            cond = etree.SubElement(el, _b("conditionExpression"), language=ACCORD_LANGUAGE)
            cond.set(f"{{{XSI_NS}}}type", "bpmn:tFormalExpression")
            cond.text = f.condition.source

    _diagram(
        root,
        d,
        ids=ids,
        sid=sid,
        fid=fid,
        lane_id=lane_id,
        collab_id=collab_id,
        part_id=part_id,
        synthetic=synthetic,
        start_flow=start_flow,
    )
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _event_refs(root: Any, d: ProcessDefinition, ids: _Ids) -> dict[tuple[str, str], str]:
    """The root ``error``, ``escalation`` and ``signal`` elements events refer to, by
    (kind, code or name)."""
    refs: dict[tuple[str, str], str] = {}
    for s in d.steps.values():
        kind = s.on if s.on in ("error", "escalation", "signal") else s.throw
        if s.kind is StepKind.SIGNAL:
            kind = "signal"
        name = s.signal if kind == "signal" else s.code
        if kind is None or name is None or (kind, name) in refs:
            continue
        xid = ids.get(f"{kind.capitalize()}_{name}")
        refs[(kind, name)] = xid
        attrs = {"id": xid, "name": name}
        if kind != "signal":
            attrs[f"{kind}Code"] = name
        etree.SubElement(root, _b(kind), **attrs)
    return refs


def _definition(
    el: Any,
    on: str,
    step: Step,
    *,
    owner: Step,
    ids: _Ids,
    refs: dict[tuple[str, str], str],
    messages: dict[str, str],
) -> None:
    """An event definition for ``step``'s trigger (or throw), written into ``el``."""
    ev = etree.SubElement(el, _b(f"{on}EventDefinition"), id=ids.get(f"{owner.id}_{on}"))
    if on == "message" and step.message:
        ev.set("messageRef", messages[step.message])
    elif on == "signal" and step.signal:
        ev.set("signalRef", refs[("signal", step.signal)])
    elif on in ("error", "escalation") and step.code is not None:
        ev.set(f"{on}Ref", refs[(on, step.code)])
    elif on == "timer":
        if step.date is not None:
            part, text = "timeDate", iso_date(step.date)
        elif step.repeat:
            count = "" if step.repeat < 0 else str(step.repeat)
            part, text = "timeCycle", f"R{count}/{iso(step.wait or 0.0)}"
        else:
            part, text = "timeDuration", iso(step.wait or 0.0)
        when = etree.SubElement(ev, _b(part))
        when.set(f"{{{XSI_NS}}}type", "bpmn:tFormalExpression")
        when.text = text


def iso_date(at: float) -> str:
    """A moment as an ISO-8601 UTC date-time."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def _flow_label(d: ProcessDefinition, f: Flow) -> str:
    if f.condition is None:
        return ""
    m = re.fullmatch(r"outcome == '(approve|reject|rework)'", f.condition.source)
    if m and d.steps[f.source].kind is StepKind.APPROVAL:
        return m.group(1)
    text = f.condition.source
    return text if len(text) <= 40 else text[:39] + "\u2026"


# -- layout --------------------------------------------------------------------------------------


def layers(d: ProcessDefinition) -> dict[str, int]:
    """Column of each step: the longest path from the start, ignoring loops' back edges."""
    succ: dict[str, list[str]] = {s: [] for s in d.steps}
    for f in d.flows:
        succ[f.source].append(f.target)
    for s in d.steps.values():  # a boundary leaves from its activity
        if s.kind is StepKind.BOUNDARY and s.attached_to in succ:
            succ[s.attached_to].append(s.id)
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    order: list[str] = []
    roots = [d.start] + [s for s in d.steps if s != d.start]
    for root in roots:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, i = stack[-1]
            if i < len(succ[node]):
                stack[-1] = (node, i + 1)
                nxt = succ[node][i]
                if state.get(nxt) == 1:
                    back.add((node, nxt))
                elif nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, 0))
            else:
                stack.pop()
                state[node] = 2
                order.append(node)
    layer = dict.fromkeys(d.steps, 0)
    for node in reversed(order):  # reverse post-order is a topological order of the DAG
        for nxt in succ[node]:
            if (node, nxt) not in back:
                layer[nxt] = max(layer[nxt], layer[node] + 1)
    return layer


def _lane_of(d: ProcessDefinition) -> dict[str, str | None]:
    """The lane each step is drawn in: its team, else the lane of the nearest step before it
    that has one, else after it, else the first lane (gateways and events without a team)."""
    lane: dict[str, str | None] = {s: d.steps[s].team for s in d.steps}
    for forward in (True, False):
        queue = deque(s for s, t in lane.items() if t is not None)
        while queue:
            s = queue.popleft()
            near = d.outgoing.get(s, ()) if forward else d.incoming.get(s, ())
            for f in near:
                n = f.target if forward else f.source
                if lane[n] is None:
                    lane[n] = lane[s]
                    queue.append(n)
    first = next(iter(d.teams), None)
    return {s: (t if t is not None else first) for s, t in lane.items()}


def _diagram(
    root: Any,
    d: ProcessDefinition,
    *,
    ids: _Ids,
    sid: dict[str, str],
    fid: dict[str, str],
    lane_id: dict[str, str],
    collab_id: str,
    part_id: str,
    synthetic: str | None,
    start_flow: str | None,
) -> None:
    col = layers(d)
    shift = 1 if synthetic else 0
    lane = _lane_of(d)
    rows: dict[tuple[str | None, int], int] = {}
    row_of: dict[str, int] = {}
    position = {s: i for i, s in enumerate(d.steps)}
    # the process's own plane shows its top-level steps; boundaries sit on their activity;
    # each sub-process gets a plane of its own (bpmn-js opens it from the sub-process)
    top = [
        s
        for s, step in d.steps.items()
        if step.parent is None and step.kind is not StepKind.BOUNDARY
    ]
    order = sorted(top, key=lambda s: (col[s], position[s]))
    for s in order:
        key = (lane[s], col[s])
        row_of[s] = rows.get(key, 0)
        rows[key] = row_of[s] + 1
    lane_rows = {t: max([n for (ln, _), n in rows.items() if ln == t], default=1) for t in d.teams}
    width = (max(col.values(), default=0) + 1 + shift) * COLUMN + 2 * LANE_PAD
    x0 = POOL_X + POOL_LABEL + LANE_LABEL + LANE_PAD
    lane_box: dict[str, _Box] = {}
    y = POOL_Y
    for t in d.teams:
        h = lane_rows[t] * ROW + 2 * LANE_PAD
        lane_box[t] = _Box(POOL_X + POOL_LABEL, y, LANE_LABEL + width, h)
        y += h
    pool = _Box(POOL_X, POOL_Y, POOL_LABEL + LANE_LABEL + width, max(y - POOL_Y, ROW))

    boxes: dict[str, _Box] = {}
    for s in top:
        step = d.steps[s]
        w, h = _SIZE[_shape_kind(step)]
        lb = lane_box.get(lane[s] or "") or _Box(POOL_X + POOL_LABEL, POOL_Y, 0, ROW)
        cx = x0 + (col[s] + shift) * COLUMN + _SIZE["task"][0] / 2
        cy = lb.y + LANE_PAD + row_of[s] * ROW + ROW / 2 - 10
        boxes[s] = _Box(cx - w / 2, cy - h / 2, w, h)

    diagram = etree.SubElement(
        root, f"{{{BPMNDI_NS}}}BPMNDiagram", id=ids.get(f"BPMNDiagram_{d.id}")
    )
    plane = etree.SubElement(
        diagram,
        f"{{{BPMNDI_NS}}}BPMNPlane",
        id=ids.get(f"BPMNPlane_{d.id}"),
        bpmnElement=collab_id,
    )

    def shape(element: str, box: _Box, **extra: str) -> None:
        el = etree.SubElement(
            plane,
            f"{{{BPMNDI_NS}}}BPMNShape",
            id=ids.get(f"{element}_di"),
            bpmnElement=element,
            **extra,
        )
        etree.SubElement(
            el,
            f"{{{DC_NS}}}Bounds",
            x=_n(box.x),
            y=_n(box.y),
            width=_n(box.w),
            height=_n(box.h),
        )

    def edge(element: str, points: list[tuple[float, float]]) -> None:
        el = etree.SubElement(
            plane, f"{{{BPMNDI_NS}}}BPMNEdge", id=ids.get(f"{element}_di"), bpmnElement=element
        )
        for px, py in points:
            etree.SubElement(el, f"{{{DI_NS}}}waypoint", x=_n(px), y=_n(py))

    shape(part_id, pool, isHorizontal="true")
    for t, box in lane_box.items():
        shape(lane_id[t], box, isHorizontal="true")
    start_box: _Box | None = None
    if synthetic:
        first = boxes[d.start]
        w, h = _SIZE["event"]
        start_box = _Box(x0 + _SIZE["task"][0] / 2 - w / 2, first.cy - h / 2, w, h)
        shape(synthetic, start_box)
    for s in top:
        extra = {"isMarkerVisible": "true"} if d.steps[s].kind is StepKind.EXCLUSIVE else {}
        if d.steps[s].kind is StepKind.SUBPROCESS:
            extra = {"isExpanded": "false"}
        shape(sid[s], boxes[s], **extra)
    _boundaries(d, None, boxes, lambda e, b, **x: shape(sid[e], b, **x))
    if synthetic and start_flow and start_box is not None:
        edge(start_flow, _route(start_box, boxes[d.start], forward=True))
    for f in d.flows:
        if f.source in boxes and f.target in boxes:  # flows inside sub-processes: their plane
            forward = col[f.target] > col[f.source]
            edge(fid[f.id], _route(boxes[f.source], boxes[f.target], forward=forward))
    for sub in d.steps.values():
        if sub.kind is StepKind.SUBPROCESS:
            _sub_plane(root, d, sub.id, col, ids=ids, sid=sid, fid=fid)


def _boundaries(
    d: ProcessDefinition, scope: str | None, boxes: dict[str, _Box], shape: Any
) -> None:
    """Boundary events drawn on the lower edge of their activity, side by side."""
    seen: dict[str, int] = {}
    for b in d.steps.values():
        if b.kind is not StepKind.BOUNDARY or b.parent != scope or b.attached_to not in boxes:
            continue
        host = boxes[b.attached_to]
        n = seen.get(b.attached_to, 0)
        seen[b.attached_to] = n + 1
        w, h = _SIZE["event"]
        boxes[b.id] = _Box(host.x + 10 + n * (w + 6), host.y + host.h - h / 2, w, h)
        shape(b.id, boxes[b.id])


def _sub_plane(
    root: Any,
    d: ProcessDefinition,
    sub: str,
    col: dict[str, int],
    *,
    ids: _Ids,
    sid: dict[str, str],
    fid: dict[str, str],
) -> None:
    """A plane of its own for a sub-process's steps (BPMN DI's drill-down)."""
    inner = [
        s for s, st in d.steps.items() if st.parent == sub and st.kind is not StepKind.BOUNDARY
    ]
    diagram = etree.SubElement(
        root, f"{{{BPMNDI_NS}}}BPMNDiagram", id=ids.get(f"BPMNDiagram_{sub}")
    )
    plane = etree.SubElement(
        diagram, f"{{{BPMNDI_NS}}}BPMNPlane", id=ids.get(f"BPMNPlane_{sub}"), bpmnElement=sid[sub]
    )
    low = min((col[s] for s in inner), default=0)
    rows: dict[int, int] = {}
    boxes: dict[str, _Box] = {}
    for s in inner:
        c = col[s] - low
        r = rows.get(c, 0)
        rows[c] = r + 1
        w, h = _SIZE[_shape_kind(d.steps[s])]
        cx = POOL_X + LANE_PAD + c * COLUMN + _SIZE["task"][0] / 2
        cy = POOL_Y + LANE_PAD + r * ROW + ROW / 2
        boxes[s] = _Box(cx - w / 2, cy - h / 2, w, h)

    def shape(element: str, box: _Box, **extra: str) -> None:
        el = etree.SubElement(
            plane,
            f"{{{BPMNDI_NS}}}BPMNShape",
            id=ids.get(f"{sid[element]}_di"),
            bpmnElement=sid[element],
            **extra,
        )
        etree.SubElement(
            el, f"{{{DC_NS}}}Bounds", x=_n(box.x), y=_n(box.y), width=_n(box.w), height=_n(box.h)
        )

    for s in inner:
        extra = {"isExpanded": "false"} if d.steps[s].kind is StepKind.SUBPROCESS else {}
        shape(s, boxes[s], **extra)
    _boundaries(d, sub, boxes, shape)
    for f in d.flows:
        if d.steps[f.source].parent != sub or f.source not in boxes or f.target not in boxes:
            continue
        el = etree.SubElement(
            plane, f"{{{BPMNDI_NS}}}BPMNEdge", id=ids.get(f"{fid[f.id]}_di"), bpmnElement=fid[f.id]
        )
        forward = col[f.target] > col[f.source]
        for px, py in _route(boxes[f.source], boxes[f.target], forward=forward):
            etree.SubElement(el, f"{{{DI_NS}}}waypoint", x=_n(px), y=_n(py))


def _route(a: _Box, b: _Box, *, forward: bool) -> list[tuple[float, float]]:
    if forward:
        sx, sy = a.x + a.w, a.cy
        tx, ty = b.x, b.cy
        if abs(sy - ty) < 0.5:
            return [(sx, sy), (tx, ty)]
        mid = (sx + tx) / 2
        return [(sx, sy), (mid, sy), (mid, ty), (tx, ty)]
    low = max(a.y + a.h, b.y + b.h) + 20
    return [(a.cx, a.y + a.h), (a.cx, low), (b.cx, low), (b.cx, b.y + b.h)]


def _n(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.1f}"
