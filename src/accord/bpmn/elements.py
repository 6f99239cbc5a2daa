"""What each BPMN element is, and whether accord can run it yet.

One classification serves the importer (which refuses what it cannot map, naming the element and
the reason) and ``accord bpmn-check`` (whose coverage table counts elements by kind). Kinds follow
the corpus README's vocabulary: ``startEvent:none``, ``boundaryEvent[non-interrupting]:timer``,
``multiInstance[parallel]``, ``eventSubProcess``, ...

Statuses: ``supported`` (imported and run), ``refused`` (the importer refuses the file, naming
the element; the reason says what the kernel lacks), ``ignored`` (no effect on routing: data
objects, annotations, diagrams; reported as a note, never silently).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from accord.bpmn.reader import BpmnDocument, is_bpmn, line_of, local

SUPPORTED = "supported"
REFUSED = "refused"
IGNORED = "ignored"

TASKS = frozenset(
    {
        "task",
        "userTask",
        "manualTask",
        "serviceTask",
        "scriptTask",
        "sendTask",
        "businessRuleTask",
        "receiveTask",
    }
)
HUMAN_TASKS = frozenset({"task", "userTask", "manualTask"})
AUTOMATED_TASKS = frozenset({"serviceTask", "scriptTask", "sendTask", "businessRuleTask"})
GATEWAYS = frozenset(
    {
        "exclusiveGateway",
        "parallelGateway",
        "inclusiveGateway",
        "eventBasedGateway",
        "complexGateway",
    }
)
EVENTS = frozenset(
    {
        "startEvent",
        "endEvent",
        "intermediateCatchEvent",
        "intermediateThrowEvent",
        "boundaryEvent",
        "implicitThrowEvent",
    }
)
CONTAINERS = frozenset({"subProcess", "transaction", "adHocSubProcess", "callActivity"})
FLOW_NODES = TASKS | GATEWAYS | EVENTS | CONTAINERS
# Flow elements and artifacts that carry data or documentation, not routing.
DATA_AND_ARTIFACTS = frozenset(
    {
        "dataObject",
        "dataObjectReference",
        "dataStoreReference",
        "association",
        "textAnnotation",
        "group",
        "dataInput",
        "dataOutput",
    }
)
# Children of a process that describe it without being flow elements.
PROCESS_DESCRIPTIONS = frozenset(
    {
        "documentation",
        "extensionElements",
        "auditing",
        "monitoring",
        "property",
        "ioSpecification",
        "ioBinding",
        "laneSet",
        "correlationSubscription",
        "resourceRole",
        "performer",
        "humanPerformer",
        "potentialOwner",
        "supports",
    }
)

_ARE = "are not supported by the kernel yet"
_CONTAINER_REASONS = {
    "transaction": f"a transaction: transactions (cancel, compensation) {_ARE}",
    "adHocSubProcess": f"an ad-hoc sub-process: ad-hoc sub-processes {_ARE}",
}
# what boundary events and event sub-processes can be started by (see accord.kernel.scopes)
CATCHABLE = frozenset({"timer", "message", "error", "escalation", "signal"})
_TRIGGER_REASONS = {
    "compensate": "compensation is not supported by the kernel yet",
    "cancel": "cancel events (transactions) are not supported by the kernel yet",
    "conditional": "conditional events are not supported by the kernel yet",
    "link": "link events are not supported yet",
}


@dataclass(frozen=True, slots=True)
class Element:
    """One BPMN element, classified."""

    kind: str
    id: str
    line: int
    status: str
    reason: str = ""


def triggers(el: Any) -> list[str]:
    """An event's triggers: ``message``, ``timer``, ... (``terminate`` for a terminate end)."""
    out: list[str] = []
    for child in el:
        name = local(child)
        if name.endswith("EventDefinition") and is_bpmn(child):
            out.append(name.removesuffix("EventDefinition"))
        elif name == "eventDefinitionRef" and is_bpmn(child):
            out.append("ref")
    return out


def trigger_of(el: Any) -> str:
    """One word for an event's trigger: ``none``, ``message``, ``multiple(message+timer)``."""
    found = triggers(el)
    if not found:
        return "none"
    if len(found) == 1:
        return found[0]
    return f"multiple({'+'.join(found)})"


def loop_of(el: Any) -> tuple[str, Any] | None:
    """The loop marker of an activity, as (kind, element), or None."""
    for child in el:
        if not is_bpmn(child):
            continue
        name = local(child)
        if name == "multiInstanceLoopCharacteristics":
            sequential = child.get("isSequential") == "true"
            return f"multiInstance[{'sequential' if sequential else 'parallel'}]", child
        if name == "standardLoopCharacteristics":
            return "standardLoopCharacteristics", child
    return None


def kind_of(el: Any) -> str:
    """The coverage kind of a flow node or other BPMN element."""
    tag = local(el)
    if tag in ("startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent"):
        return f"{tag}:{trigger_of(el)}"
    if tag == "boundaryEvent":
        marker = "[non-interrupting]" if el.get("cancelActivity") == "false" else ""
        return f"boundaryEvent{marker}:{trigger_of(el)}"
    if tag == "subProcess" and el.get("triggeredByEvent") == "true":
        return "eventSubProcess"
    return tag


def classify(el: Any) -> Element:
    """Classify one flow node (the loop markers and compensation flag are separate elements)."""
    tag = local(el)
    kind = kind_of(el)
    eid = el.get("id") or f"<{tag}>"
    line = line_of(el)

    def ok() -> Element:
        return Element(kind, eid, line, SUPPORTED)

    def no(reason: str) -> Element:
        return Element(kind, eid, line, REFUSED, reason)

    if tag in TASKS:
        return ok()
    if tag in ("exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway"):
        return ok()
    if tag == "complexGateway":
        return no("a complex gateway: it has no equivalent in accord")
    if kind in _CONTAINER_REASONS:
        return no(_CONTAINER_REASONS[kind])
    if tag in ("subProcess", "callActivity"):
        return ok()  # a call activity is inlined (the importer refuses what it cannot find)
    trigger = trigger_of(el)
    if tag == "startEvent" and _starts_event_subprocess(el):
        if trigger in CATCHABLE:
            problem = _boundary_timer_problem(el) if trigger == "timer" else None
            return no(problem) if problem else ok()
        return no(f"an event sub-process started by {an(trigger)} event: {_reason(trigger)}")
    if tag == "startEvent":
        # a message start starts the case (the case start is the message), or, in a
        # collaboration, the pool a message flow reaches it from (accord.bpmn.collaboration)
        if trigger == "none" or set(triggers(el)) in ({"message"}, {"signal"}):
            return ok()
        if trigger in ("message", "timer"):
            how = "on a message" if trigger == "message" else "on a timer (simulate a schedule "
            how += "" if trigger == "message" else "with the scenario's arrivals)"
            return no(
                f"a {trigger} start event: cases are started explicitly (`accord run`, the API); "
                f"starting a case {how} is not supported yet"
            )
        return no(f"{an(trigger)} start event: {_reason(trigger)}")
    if tag == "endEvent":
        if trigger in ("none", "terminate", "error", "escalation", "signal", "message"):
            return ok()
        return no(f"{an(trigger)} end event: {_reason(trigger)}")
    if tag == "intermediateCatchEvent":
        problem = _timer_problem(el) if trigger == "timer" else None
        if problem:
            return no(problem)
        if trigger in ("message", "timer", "signal", "link"):
            return ok()
        return no(f"an intermediate {trigger} catch event: {_reason(trigger)}")
    if tag == "intermediateThrowEvent":
        if trigger in ("none", "escalation", "signal", "message", "link"):
            return ok()
        return no(f"an intermediate {trigger} throw event: {_reason(trigger)}")
    if tag == "boundaryEvent":
        attached = el.get("attachedToRef") or "?"
        mode = "non-interrupting" if el.get("cancelActivity") == "false" else "interrupting"
        if trigger in CATCHABLE:
            problem = _boundary_timer_problem(el) if trigger == "timer" else None
            return no(problem) if problem else ok()
        return no(f"{an(trigger)} boundary event ({mode}) on {attached!r}: {_reason(trigger)}")
    return no(f"<{tag}> is not a flow element accord knows")


def _starts_event_subprocess(el: Any) -> bool:
    parent = el.getparent()
    return (
        parent is not None
        and local(parent) == "subProcess"
        and parent.get("triggeredByEvent") == "true"
    )


def _boundary_timer_problem(el: Any) -> str | None:
    """Why a timer boundary (or event sub-process timer) cannot be imported (None: it can)."""
    from accord.events import parse_iso
    from accord.model.durations import parse_cycle, parse_duration

    parts = [
        part
        for definition in el
        if local(definition) == "timerEventDefinition"
        for part in definition
        if is_bpmn(part)
    ]
    if not any((p.text or "").strip() for p in parts) and name_duration(el) is not None:
        return None  # drawn without a definition, but its name says how long it waits
    if not parts:
        return "a timer without timeDuration, timeDate or timeCycle"
    part = parts[0]
    raw = (part.text or "").strip()
    if not raw:
        return f"a timer with an empty {local(part)} (and no duration in its name)"
    text = raw[1:-1] if len(raw) > 1 and raw[0] == raw[-1] and raw[0] in "'\"" else raw
    parse: dict[str, Callable[[str], object]] = {
        "timeDuration": parse_duration,
        "timeCycle": parse_cycle,
        "timeDate": parse_iso,
    }
    try:
        parse.get(local(part), parse_duration)(text)
    except ValueError as exc:
        return f"a timer with {local(part)} {raw!r}: {exc}"
    return None


def _timer_problem(el: Any) -> str | None:
    """Why a timer catch event cannot be a timer step (None if it waits a duration, until a
    date, or for the first occurrence of a cycle)."""
    parts = [
        part
        for definition in el
        if local(definition) == "timerEventDefinition"
        for part in definition
        if is_bpmn(part)
    ]
    if any(local(p) == "timeDuration" for p in parts):
        return None
    if not any((p.text or "").strip() for p in parts) and name_duration(el) is not None:
        return None  # drawn without a definition, but its name says how long it waits
    if not parts:
        return "a timer without timeDuration, timeDate or timeCycle"
    if not (parts[0].text or "").strip():
        return f"a timer with an empty {local(parts[0])} (and no duration in its name)"
    return _boundary_timer_problem(el)  # a date or a cycle (its first occurrence)


_UNITS = {
    "s": "S", "sec": "S", "secs": "S", "second": "S", "seconds": "S",
    "m": "M", "min": "M", "mins": "M", "minute": "M", "minutes": "M",
    "h": "H", "hr": "H", "hrs": "H", "hour": "H", "hours": "H",
    "d": "D", "day": "D", "days": "D",
    "w": "W", "week": "W", "weeks": "W",
}  # fmt: skip


def name_duration(el: Any) -> str | None:
    """The ISO-8601 duration a timer's name states ("7 days" -> ``P7D``, "60 minutes" ->
    ``PT60M``), for timers drawn without a definition (models not meant for an engine)."""
    import re

    name = " ".join(str(el.get("name") or "").split())
    m = re.fullmatch(r"(\d{1,6})\s*([a-zA-Z]+)\.?", name)
    if m is None or m.group(2).lower() not in _UNITS:
        return None
    unit = _UNITS[m.group(2).lower()]
    return f"PT{m.group(1)}{unit}" if unit in "HMS" else f"P{m.group(1)}{unit}"


def an(word: str) -> str:
    """``word`` with its indefinite article."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def _reason(trigger: str) -> str:
    if trigger.startswith("multiple"):
        return "events with several triggers are not supported"
    return _TRIGGER_REASONS.get(trigger, f"{trigger} events are not supported yet")


LOOPABLE = TASKS | frozenset({"subProcess", "callActivity"})
"""Activities that may carry a multi-instance or standard loop marker."""
_PLURAL = {
    "subProcess": "sub-processes",
    "callActivity": "call activities",
    "transaction": "transactions",
    "adHocSubProcess": "ad-hoc sub-processes",
}


def marker_elements(el: Any) -> Iterator[Element]:
    """The loop and compensation markers of an activity, each refused as its own element."""
    eid = el.get("id") or f"<{local(el)}>"
    loop = loop_of(el)
    if loop is not None and local(el) in LOOPABLE:  # accord's multi_instance and loop
        kind, child = loop
        names = {local(c) for c in child.iter()} | {
            k.rsplit("}", 1)[-1] for c in child.iter() for k in c.attrib
        }
        if kind == "standardLoopCharacteristics":
            known = {"loopCondition", "loopMaximum"} & names
            why = "a standard loop without loopCondition or loopMaximum would never end"
        else:
            known = {"loopCardinality", "loopDataInputRef", "collection", "inputCollection"}
            known &= names
            why = "a multi-instance marker without loopCardinality or a collection: accord "
            why += "cannot tell how many instances"
        yield Element(kind, eid, line_of(child), SUPPORTED if known else REFUSED, why)
    elif loop is not None:
        kind, child = loop
        what = _PLURAL.get(local(el), local(el))
        if kind == "standardLoopCharacteristics":
            reason = (
                f"a standard loop on {eid!r}: loops on {what} are not supported yet "
                "(loops on tasks are; or model the loop with an exclusive gateway)"
            )
        else:
            reason = f"{kind.replace('[', ' (').replace(']', ')')} on {eid!r}: multi-instance " + (
                f"{what} are not supported yet (multi-instance tasks are)"
            )
        yield Element(kind, eid, line_of(child), REFUSED, reason)
    if el.get("isForCompensation") == "true":
        yield Element(
            "isForCompensation",
            eid,
            line_of(el),
            REFUSED,
            f"{eid!r} is a compensation handler: compensation is not supported by the kernel yet",
        )


def survey(doc: BpmnDocument) -> list[Element]:
    """Every element of every process in the document, classified (nested ones included),
    for the coverage table. The importer refuses by the same rules."""
    out: list[Element] = []
    executable = [p for p in doc.root if local(p) == "process" and is_bpmn(p) and _has_nodes(p)]
    for proc in doc.root:
        if not is_bpmn(proc):
            continue
        tag = local(proc)
        if tag == "process":
            _survey_container(proc, out, top=True, language=doc.root.get("expressionLanguage"))
        elif tag == "collaboration":
            for child in proc:
                name = local(child)
                if not is_bpmn(child):
                    continue
                if name == "participant":  # several pools run as one (collaboration.py)
                    status, reason = SUPPORTED, ""
                    out.append(
                        Element(
                            "participant", child.get("id") or "", line_of(child), status, reason
                        )
                    )
                elif name == "messageFlow":
                    status, reason = IGNORED, "a message flow to or from a pool that is not run"
                    ends = [doc.by_id.get(child.get(k) or "") for k in ("sourceRef", "targetRef")]
                    inside = [e for e in ends if e is not None and local(e) in FLOW_NODES]
                    if len(executable) > 1 and len(inside) == 2:
                        status, reason = SUPPORTED, ""  # between pools run together
                    out.append(
                        Element(
                            "messageFlow", child.get("id") or "", line_of(child), status, reason
                        )
                    )
    return out


def _has_nodes(proc: Any) -> bool:
    return any(is_bpmn(c) and local(c) in FLOW_NODES for c in proc)


def _condition(flow: Any, cond: Any, language: str | None) -> Element:
    from accord.bpmn.conditions import Untranslatable, translate

    fid = flow.get("id") or ""
    text = "".join(cond.itertext()).strip()
    if text:
        try:
            translate(text, cond.get("language") or language)
        except Untranslatable as exc:
            return Element(
                "conditionExpression",
                fid,
                line_of(cond),
                REFUSED,
                f"condition {text!r}: cannot be translated: {exc}",
            )
    return Element("conditionExpression", fid, line_of(cond), SUPPORTED)


def _survey_container(
    container: Any, out: list[Element], *, top: bool, language: str | None = None
) -> None:
    for child in container:
        if not is_bpmn(child):
            continue
        tag = local(child)
        if tag in FLOW_NODES:
            found = classify(child)
            if not top and container.get("triggeredByEvent") == "true" and tag == "startEvent":
                found = Element(
                    f"eventSubProcess.{found.kind}"
                    + ("[non-interrupting]" if child.get("isInterrupting") == "false" else ""),
                    found.id,
                    found.line,
                    found.status,
                    found.reason,
                )
            out.append(found)
            out.extend(marker_elements(child))
            if tag in ("subProcess", "transaction", "adHocSubProcess"):
                _survey_container(child, out, top=False, language=language)
        elif tag == "sequenceFlow":
            out.append(Element("sequenceFlow", child.get("id") or "", line_of(child), SUPPORTED))
            for cond in child:
                if local(cond) == "conditionExpression" and is_bpmn(cond):
                    out.append(_condition(child, cond, language))
        elif tag == "laneSet":
            for lane in child.iter("{*}lane"):
                out.append(Element("lane", lane.get("id") or "", line_of(lane), SUPPORTED))
        elif tag in DATA_AND_ARTIFACTS:
            out.append(
                Element(
                    tag,
                    child.get("id") or "",
                    line_of(child),
                    IGNORED,
                    "data and artifacts do not affect routing",
                )
            )
