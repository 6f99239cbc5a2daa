"""BPMN collaborations, message flows and link events: several pools as one accord process.

A collaboration whose pools hold processes is imported as **one** process (see docs/bpmn.md,
"Collaborations"):

- every pool becomes a team, every lane inside a pool a team of its own (a pool without lanes
  gets one lane named after it), so choreography runs each pool, or lane, as its own node;
- the pools whose start is a plain (none) start event, or a message start that no message flow
  of the file reaches, start with the case: when several do, a synthetic start step forks them;
- a message flow between elements of two pools becomes an accord **message flow**
  (``{to: X, message: true}``), which the kernel takes whenever its source moves on, whatever
  the source decided:

  - into a receive task or a message catch event (a ``message`` step): the message is kept for
    the step until it waits for it, and moves it on then (sent in a loop, messages queue up;
    never read, they do not hold the case open; never sent, the step waits for ever);
  - into a message start event: the sender starts that pool's path (once per message);
  - into any other activity: a ``message`` step is put before it, so it starts only when the
    message has arrived;
  - out of a task (or a catch): sent when it completes; out of a message end or intermediate
    throw event: sent when a token reaches it; out of a task that also receives a message
    flow (request and reply): sent when it becomes active, before it waits for the reply, so
    two pools answering each other through one task do not wait for each other;

- a message flow to or from a pool without a process (a black box) or the pool itself rather
  than one of its elements is the outside world: what it sends is delivered with
  ``send_message`` (the simulator sends it), what goes to it is a note.

Link events (an intermediate link throw and the catch of the same name) become a plain flow.
The importer calls :func:`merge_pools` when several pools hold processes and :func:`connect`
once the flow nodes are read; everything else is here.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lxml import etree  # type: ignore[import-untyped]

from accord.bpmn.elements import FLOW_NODES, TASKS, triggers
from accord.bpmn.reader import ACCORD_NS, BPMN_NS, is_bpmn, line_of, local

if TYPE_CHECKING:
    from accord.bpmn.importer import _Flow, _Importer, _Map

# what a message flow may end at inside the case, and what it may start from
_ACTIVITIES = TASKS | frozenset({"subProcess", "callActivity", "transaction", "adHocSubProcess"})
_DESCRIPTIONS = frozenset(
    {"documentation", "extensionElements", "auditing", "monitoring", "ioSpecification"}
)


@dataclass
class Pools:
    """The pools of a collaboration imported together, and the merged process element."""

    collaboration: Any
    merged: Any
    pool_of: dict[str, str] = field(default_factory=dict)  # flow node id -> participant id
    names: dict[str, str] = field(default_factory=dict)  # participant id -> its name
    black_boxes: set[str] = field(default_factory=set)  # participants without a process
    lane_of: dict[str, Any] = field(default_factory=dict)  # flow node id -> its (copied) lane
    collaborations: list[Any] = field(default_factory=list)  # where message flows are drawn


def merge_pools(imp: _Importer, runnable: list[Any]) -> tuple[Any, Any] | None:
    """When several pools hold processes: one process element holding all of them (copies:
    the document is left as it was), each pool's nodes in its own lanes. The pools may be
    drawn in several collaborations (some tools write one per pool); a process of the file
    that no pool shows is a pool of its own. None without a collaboration, or with one pool."""
    root = imp.doc.root
    collabs = [c for c in root if is_bpmn(c) and local(c) == "collaboration"]
    ids = {p.get("id") for p in runnable}
    parts = [p for c in collabs for p in c if is_bpmn(p) and local(p) == "participant"]
    shown = {p.get("processRef") for p in parts}
    pooled: list[tuple[str, str, Any]] = [  # (pool id, name, process)
        (str(p.get("id") or ""), _name(p), proc)
        for p in parts
        for proc in runnable
        if p.get("processRef") == proc.get("id")
    ]
    pooled += [
        (str(proc.get("id")), _name(proc) or str(proc.get("id")), proc)
        for proc in runnable
        if proc.get("id") not in shown
    ]
    if not collabs or len(pooled) < 2:
        return None
    collab = max(collabs, key=lambda c: sum(1 for m in c if local(m) == "messageFlow"))
    merged = etree.Element(f"{{{BPMN_NS}}}process")
    merged.sourceline = line_of(collab)
    cid = str(collab.get("id") or "collaboration")
    merged.set("id", cid)
    names = " + ".join(n for _, n, _ in pooled if n)
    merged.set("name", str(collab.get("name") or names or cid))
    pools = Pools(collab, merged, collaborations=collabs)
    for part in parts:
        pid = str(part.get("id") or "")
        pools.names[pid] = _name(part) or pid
        if part.get("processRef") not in ids:
            pools.black_boxes.add(pid)
    for pid, name, proc in pooled:
        pools.names.setdefault(pid, name or pid)
        laned = False
        for child in proc:
            if not is_bpmn(child) or local(child) in _DESCRIPTIONS:
                continue
            copied = copy.deepcopy(child)
            merged.append(copied)
            if local(child) == "laneSet" and any(local(x) == "lane" for x in child):
                laned = True
                for lane in copied.iter(f"{{{BPMN_NS}}}lane"):
                    if not _name(lane):  # an unnamed lane is the pool's own team
                        lane.set("name", pools.names[pid])
        members = [
            str(el.get("id"))
            for el in proc.iter()
            if is_bpmn(el) and local(el) in FLOW_NODES and el.get("id")
        ]
        for m in members:
            pools.pool_of[m] = pid
        if not laned:  # the pool is one team: a lane named after it
            lane_set = etree.SubElement(merged, f"{{{BPMN_NS}}}laneSet")
            lane_set.sourceline = line_of(proc)
            lane = etree.SubElement(lane_set, f"{{{BPMN_NS}}}lane")
            lane.sourceline = line_of(proc)
            lane.set("id", f"{pid}-lane")
            lane.set("name", pools.names[pid])
            for m in members:
                ref = etree.SubElement(lane, f"{{{BPMN_NS}}}flowNodeRef")
                ref.text = m
    for lane in merged.iter(f"{{{BPMN_NS}}}lane"):
        for ref in lane:
            if local(ref) == "flowNodeRef" and ref.text:
                pools.lane_of[ref.text.strip()] = lane  # the innermost lane wins (later)
    imp.collab = pools
    return merged, collab


def _name(el: Any) -> str:
    return " ".join(str(el.get("name") or "").split())


class _Connect:
    """The work of :func:`connect`: new steps and flows, and the problems found."""

    def __init__(
        self, imp: _Importer, steps: dict[str, _Map], flows: list[_Flow], nodes: dict[str, Any]
    ) -> None:
        self.imp = imp
        self.steps = steps
        self.flows = flows
        self.nodes = nodes
        self.pools: Pools | None = imp.collab
        self.made_for: dict[str, Any] = {}
        self.receivers: set[str] = set()
        self.waits: dict[str, str] = {}  # an activity that receives -> the message step before
        self.sends_from: dict[str, str] = {}  # a sender -> the step its message flows leave

    # -- helpers --------------------------------------------------------------------------------

    def fresh(self, base: str) -> str:
        sid, n = base, 1
        while sid in self.steps or sid in self.nodes or sid in self.imp.doc.by_id:
            n += 1
            sid = f"{base}-{n}"
        return sid

    def new_step(self, base: str, kind: str, like: str, line: int, **keys: Any) -> str:
        """A step the BPMN file does not draw, in the same sub-process and lane as ``like``."""
        from accord.bpmn.importer import _Map

        sid = self.fresh(base)
        step = _Map(line)
        step.put("id", sid)
        step.put("type", kind)
        for key, value in keys.items():
            step.put(key, value)
        self.steps[sid] = step
        self.made_for[sid] = self.element(like)
        parent = self.imp.parent_of.get(like)
        if parent is not None:
            self.imp.parent_of[sid] = parent
        lane = self.pools.lane_of.get(like) if self.pools is not None else None
        if lane is not None:
            ref = etree.SubElement(lane, f"{{{BPMN_NS}}}flowNodeRef")
            ref.text = sid
            self.pools.lane_of[sid] = lane  # type: ignore[union-attr]
        return sid

    def new_flow(self, source: str, target: str, el: Any, *, message: bool = False) -> _Flow:
        from accord.bpmn.importer import _Flow

        fid = f"{source}->{target}"
        taken = {f.id for f in self.flows}
        n = 1
        while fid in taken:
            n += 1
            fid = f"{source}->{target}[{n}]"
        flow = _Flow(fid, el, source, target)
        flow.message = message
        self.flows.append(flow)
        return flow

    def incoming(self, node: str) -> list[_Flow]:
        return [f for f in self.flows if f.target == node and not f.message]

    def outgoing(self, node: str) -> list[_Flow]:
        return [f for f in self.flows if f.source == node and not f.message]

    def before(self, node: str, kind: str, base: str, line: int, **keys: Any) -> str:
        """Put a new step in front of ``node``: its incoming flows lead to the new step, which
        leads to ``node``."""
        new = self.new_step(base, kind, node, line, **keys)
        for f in self.incoming(node):
            f.target = new
        self.new_flow(new, node, self.element(node))
        return new

    def element(self, node: str) -> Any:
        """The BPMN element a step comes from (for a new step: the one it was made for)."""
        return self.nodes.get(node, self.made_for.get(node))

    def single_entry(self, node: str, line: int) -> None:
        """Several flows into a node that is about to become a parallel gateway would make it
        a join: merge them first."""
        if len(self.incoming(node)) > 1:
            self.before(node, "exclusive", f"{node}-merge", line)

    # -- link events ----------------------------------------------------------------------------

    def links(self) -> None:
        throws: dict[tuple[str, str], list[str]] = {}
        catches: dict[tuple[str, str], list[str]] = {}
        for nid, el in self.nodes.items():
            if nid not in self.steps or triggers(el) != ["link"]:
                continue
            name = _link_name(el)
            where = self.imp.parent_of.get(nid) or (
                self.pools.pool_of.get(nid, "") if self.pools is not None else ""
            )
            if local(el) == "intermediateThrowEvent":
                throws.setdefault((where, name), []).append(nid)
            elif local(el) == "intermediateCatchEvent":
                catches.setdefault((where, name), []).append(nid)
        for key, sources in throws.items():
            targets = catches.get(key, [])
            for t in sources:
                if len(targets) != 1:
                    how = "no link catch event" if not targets else f"{len(targets)} catch events"
                    self.imp.refuse(
                        self.nodes[t],
                        t,
                        f"link throw event names link {key[1]!r}, which {how} in the same "
                        "process level catches (a link pairs one name with one catch)",
                    )
                    continue
                self.new_flow(t, targets[0], self.nodes[t])
        for key, targets in catches.items():
            if key not in throws:
                for c in targets:
                    self.imp.refuse(
                        self.nodes[c],
                        c,
                        f"link catch event {key[1]!r}: no link throw event of the same process "
                        "level names it",
                    )

    # -- pools ----------------------------------------------------------------------------------

    def message_flows(self) -> list[Any]:
        if self.pools is None:
            return []
        return [
            m
            for c in self.pools.collaborations
            for m in c
            if is_bpmn(m) and local(m) == "messageFlow"
        ]

    def end(self, ref: str) -> str:
        """What a message flow's end is: ``node`` (a flow node of a pool that runs here),
        ``outside`` (a black-box pool, a pool rather than one of its elements), ``unknown``."""
        assert self.pools is not None
        if ref in self.nodes and ref in self.pools.pool_of:
            return "node"
        el = self.imp.doc.by_id.get(ref)
        if el is not None and local(el) == "participant":
            return "outside"
        return "unknown"

    def starts(self, internal: list[tuple[Any, str, str]]) -> None:
        """The pools' starts: which start with the case, which are started by a message."""
        assert self.pools is not None
        started_by_message = {t for _, _, t in internal if local(self.nodes[t]) == "startEvent"}
        per_pool: dict[str, list[str]] = {}
        for nid, pid in self.pools.pool_of.items():
            if nid not in self.steps or nid in self.imp.parent_of:
                continue
            el = self.nodes[nid]
            if local(el) != "startEvent" or nid in started_by_message:
                continue
            per_pool.setdefault(pid, []).append(nid)
        for nid in started_by_message:
            self.steps[nid].put("type", "milestone")  # the message flow leads past it
        for pid, found in per_pool.items():
            if len(found) > 1:
                self.imp.refuse(
                    self.nodes[found[1]],
                    found[1],
                    f"pool {self.pools.names.get(pid, pid)!r} has several start events "
                    f"({', '.join(found)}) that start with the case; BPMN starts one of them "
                    "per instance: give the pool one start event",
                )
        firsts = [found[0] for found in per_pool.values()]
        if not firsts:
            collab = self.pools.collaboration
            self.imp.refuse(
                collab,
                str(collab.get("id")),
                "no pool starts with the case: every start event waits for a message from "
                "another pool",
            )
            return
        if len(firsts) == 1:
            return
        sid = self.fresh("start")
        from accord.bpmn.importer import _Map

        start = _Map(line_of(self.pools.collaboration))
        start.put("id", sid)
        start.put("type", "start")
        start.put("name", "case start")
        rest = dict(self.steps)
        self.steps.clear()
        self.steps[sid] = start
        self.steps.update(rest)
        for first in firsts:
            self.steps[first].put("type", "milestone")
            self.new_flow(sid, first, self.pools.collaboration)
        self.imp.note(
            line_of(self.pools.collaboration),
            sid,
            f"the case starts {len(firsts)} pools at once ({', '.join(firsts)}): a start step "
            "forks them",
        )

    def connect_pools(self) -> None:
        assert self.pools is not None
        internal: list[tuple[Any, str, str]] = []
        for mf in self.message_flows():
            mid = str(mf.get("id") or "")
            src, tgt = str(mf.get("sourceRef") or ""), str(mf.get("targetRef") or "")
            ends = (self.end(src), self.end(tgt))
            if "unknown" in ends:
                bad = src if ends[0] == "unknown" else tgt
                what = self.imp.doc.by_id.get(bad)
                why = (
                    "no element has this id"
                    if what is None
                    else f"<{local(what)}> is neither a flow node of a pool nor a pool"
                )
                self.imp.refuse(mf, mid, f"message flow end {bad!r}: {why}")
                continue
            if ends == ("node", "node"):
                if self.pools.pool_of[src] == self.pools.pool_of[tgt]:
                    self.imp.refuse(
                        mf, mid, "a message flow connects two pools; both ends are in one pool"
                    )
                    continue
                if src not in self.steps or tgt not in self.steps:
                    continue  # refused for its own reasons already
                internal.append((mf, src, tgt))
            elif ends == ("outside", "node"):
                self.from_outside(mf, src, tgt)
            elif ends == ("node", "outside"):
                self.imp.note(
                    line_of(mf),
                    mid,
                    f"message flow from {src!r} to pool {self.pools.names.get(tgt, tgt)!r}: "
                    "sent outside the case (documentation only)",
                )
            else:
                self.imp.note(line_of(mf), mid, "a message flow between two pools themselves "
                              "(not their elements) is documentation only")  # fmt: skip
        internal += self.by_name({s for _, s, _ in internal}, {t for _, _, t in internal})
        self.starts(internal)
        self.receivers = {t for _, _, t in internal}
        for mf, src, tgt in internal:
            target = self.receiver(mf, src, tgt)
            if target is None:
                continue
            source = self.sender(mf, src)
            if source is None:
                continue
            flow = self.new_flow(source, target, mf, message=True)
            flow.id = str(mf.get("id") or flow.id)

    def by_name(self, senders: set[str], receivers: set[str]) -> list[tuple[Any, str, str]]:
        """Messages no message flow draws: a throw (message end or intermediate event, send
        task) and the catches of another pool that name the same ``<message>`` (as
        SpiffWorkflow correlates them). Each pair becomes a message flow."""
        assert self.pools is not None
        throws: dict[str, list[str]] = {}
        catches: dict[str, list[str]] = {}
        for nid, el in self.nodes.items():
            if nid not in self.steps or nid not in self.pools.pool_of:
                continue
            ref = _message_ref(el)
            if not ref:
                continue
            tag = local(el)
            if tag in ("intermediateThrowEvent", "endEvent", "sendTask") and nid not in senders:
                throws.setdefault(ref, []).append(nid)
            elif (
                tag in ("receiveTask", "intermediateCatchEvent", "startEvent", "boundaryEvent")
                and nid not in receivers
            ):
                catches.setdefault(ref, []).append(nid)
        # a pool whose start event waits for a signal that a throw of another pool sends
        for nid, el in self.nodes.items():
            if nid not in self.steps or nid not in self.pools.pool_of:
                continue
            sig = _signal_ref(el)
            if not sig:
                continue
            if local(el) in ("intermediateThrowEvent", "endEvent"):
                throws.setdefault(f"signal:{sig}", []).append(nid)
            elif local(el) == "startEvent" and nid not in self.imp.parent_of:
                catches.setdefault(f"signal:{sig}", []).append(nid)
        found: list[tuple[Any, str, str]] = []
        for ref, sources in throws.items():
            for src in sources:
                for tgt in catches.get(ref, ()):
                    if self.pools.pool_of[src] == self.pools.pool_of[tgt]:
                        continue
                    mf = etree.Element(f"{{{BPMN_NS}}}messageFlow")
                    mf.sourceline = line_of(self.nodes[src])
                    mf.set("id", f"{src}->{tgt}")
                    what, name = "message", ref
                    if ref.startswith("signal:"):
                        what, name = "signal", ref.removeprefix("signal:")
                    else:
                        mf.set("messageRef", ref)
                    found.append((mf, src, tgt))
                    self.imp.note(
                        line_of(self.nodes[src]),
                        src,
                        f"sends {what} {name!r} to {tgt!r} in another pool (no message flow is "
                        f"drawn; they name the same {what})",
                    )
        return found

    def within_one_pool(self) -> None:
        """A message flow between two elements of the one process imported: what accord's own
        export writes for the message flows of an imported collaboration (BPMN itself draws
        them between pools only). Taken as accord's message flow, as it is."""
        for c in self.imp.doc.root:
            if not is_bpmn(c) or local(c) != "collaboration":
                continue
            for mf in c:
                if not is_bpmn(mf) or local(mf) != "messageFlow":
                    continue
                src, tgt = str(mf.get("sourceRef") or ""), str(mf.get("targetRef") or "")
                if src in self.steps and tgt in self.steps:
                    flow = self.new_flow(src, tgt, mf, message=True)
                    flow.id = str(mf.get(f"{{{ACCORD_NS}}}id") or mf.get("id") or flow.id)

    def from_outside(self, mf: Any, src: str, tgt: str) -> None:
        assert self.pools is not None
        el = self.nodes[tgt]
        tag = local(el)
        who = self.pools.names.get(src, src)
        if tag in ("receiveTask", "intermediateCatchEvent", "boundaryEvent", "startEvent"):
            how = "starts the case" if tag == "startEvent" else "is delivered with send_message"
            self.imp.note(
                line_of(mf),
                str(mf.get("id")),
                f"message flow from pool {who!r} (outside the case) to {tgt!r}: the message {how}",
            )
        else:
            self.imp.note(
                line_of(mf),
                str(mf.get("id")),
                f"message flow from pool {who!r} (outside the case) to {tgt!r}: documentation "
                "only (the activity does not wait for it)",
            )

    def message_name(self, mf: Any, src: str, tgt: str) -> str:
        ref = mf.get("messageRef")
        msg = self.imp.messages.get(ref) if ref else None
        if msg is not None and _name(msg):
            return _name(msg)
        return (
            _name(mf)
            or _name(self.nodes[src])
            or _name(self.nodes[tgt])
            or str(mf.get("id") or f"{src}->{tgt}")
        )

    def receiver(self, mf: Any, src: str, tgt: str) -> str | None:
        """The step a message flow into ``tgt`` leads to (None: refused)."""
        el = self.nodes[tgt]
        tag = local(el)
        mid = str(mf.get("id"))
        kind = self.steps[tgt].get("type")
        waits = self.waits
        if kind == "message" or (tag == "startEvent" and kind == "milestone"):
            return tgt
        if tag in _ACTIVITIES:
            if tgt not in waits:
                name = self.message_name(mf, src, tgt)
                waits[tgt] = self.before(
                    tgt,
                    "message",
                    f"{tgt}-message",
                    line_of(mf),
                    name=f"{_name(el) or tgt}: {name} arrives",
                    message=name,
                )
            return waits[tgt]
        if tag == "boundaryEvent" and self.steps[tgt].get("on") == "message":
            return tgt  # caught while its activity runs, else lost (BPMN)
        self.imp.refuse(
            mf,
            mid,
            f"unsupported: a message flow into {local(el)} {tgt!r}: only receive tasks, "
            "message catch and start events and activities receive messages",
        )
        return None

    def sender(self, mf: Any, src: str) -> str | None:
        """The step a message flow from ``src`` leaves (None: refused)."""
        receivers, sends_from, waits = self.receivers, self.sends_from, self.waits
        if src in sends_from:
            return sends_from[src]
        el = self.nodes[src]
        tag = local(el)
        line = line_of(mf)
        kind = self.steps[src].get("type")
        if tag in _ACTIVITIES and src in receivers and kind != "message":
            # request and reply: sent when it becomes active, before it waits for the reply
            wait = waits.get(src, src)
            self.single_entry(wait, line)
            sends_from[src] = self.before(wait, "parallel", f"{src}-request", line)
        elif tag in _ACTIVITIES or kind == "message":
            sends_from[src] = src  # sent when it completes
        elif tag == "intermediateThrowEvent" and kind == "throw":
            sends_from[src] = src  # it throws its signal, then moves on: sent then
        elif tag == "intermediateThrowEvent":
            self.single_entry(src, line)
            self.steps[src].put("type", "parallel")
            if not self.outgoing(src):
                self.new_flow(src, self.new_step(f"{src}-end", "end", src, line), el)
            sends_from[src] = src
        elif tag == "endEvent":
            self.single_entry(src, line)
            sends_from[src] = self.before(src, "parallel", f"{src}-send", line)
        else:
            self.imp.refuse(
                mf,
                str(mf.get("id")),
                f"unsupported: a message flow out of {local(el)} {src!r}: messages are sent by "
                "activities, message throw events and message end events",
            )
            return None
        return sends_from[src]


def _message_ref(el: Any) -> str | None:
    """The ``<message>`` a task or a message event names."""
    if el.get("messageRef"):
        return str(el.get("messageRef"))
    for d in el:
        if local(d) == "messageEventDefinition" and d.get("messageRef"):
            return str(d.get("messageRef"))
    return None


def _signal_ref(el: Any) -> str | None:
    """The ``<signal>`` an event names."""
    for d in el:
        if local(d) == "signalEventDefinition" and d.get("signalRef"):
            return str(d.get("signalRef"))
    return None


def _link_name(el: Any) -> str:
    for d in el:
        if local(d) == "linkEventDefinition":
            return " ".join(str(d.get("name") or el.get("name") or "").split())
    return " ".join(str(el.get("name") or "").split())


def connect(
    imp: _Importer, steps: dict[str, _Map], flows: list[_Flow], nodes: dict[str, Any]
) -> list[_Flow]:
    """Pair link events; for a collaboration, start the pools and turn message flows into
    accord's (see the module docstring). Problems go to the importer; returns the flows."""
    work = _Connect(imp, steps, flows, nodes)
    work.links()
    for nid, el in nodes.items():  # BPMN lets an event-based gateway merge; accord merges first
        if nid in steps and local(el) == "eventBasedGateway":
            work.single_entry(nid, line_of(el))
    if imp.collab is not None:
        work.connect_pools()
    else:
        work.within_one_pool()
    return work.flows
