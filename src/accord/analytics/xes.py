"""XES export (IEEE 1849-2016) of an accord event log, readable by pm4py, ProM and Disco.

Each case becomes a trace; the start of each task's work (its ``task.started`` event, or its
claim where work was not reported as started) becomes a ``start`` event and its completion a
``complete`` event, named by the step's name, with the member as ``org:resource``. Only task
lifecycle events are kept in memory to group them by case, not the whole log.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import IO
from xml.sax.saxutils import quoteattr

from accord.events import Event, EventType, iso

_LIFECYCLE = {
    EventType.TASK_CLAIMED: "start",
    EventType.TASK_STARTED: "start",
    EventType.TASK_COMPLETED: "complete",
}

_HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1849-2016" xes.features="nested-attributes" xmlns="http://www.xes-standard.org/">
  <extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>
  <extension name="Time" prefix="time" uri="http://www.xes-standard.org/time.xesext"/>
  <extension name="Organizational" prefix="org" uri="http://www.xes-standard.org/org.xesext"/>
  <extension name="Lifecycle" prefix="lifecycle" uri="http://www.xes-standard.org/lifecycle.xesext"/>
  <global scope="trace"><string key="concept:name" value="UNKNOWN"/></global>
  <global scope="event">
    <string key="concept:name" value="UNKNOWN"/>
    <date key="time:timestamp" value="1970-01-01T00:00:00.000+00:00"/>
    <string key="lifecycle:transition" value="complete"/>
  </global>
  <classifier name="Activity" keys="concept:name"/>
  <classifier name="Activity and transition" keys="concept:name lifecycle:transition"/>
  <string key="concept:name" value="accord event log"/>
"""


def write_xes(events: Iterable[Event], out: IO[str], names: dict[str, str] | None = None) -> int:
    """Write events grouped into traces by case; return the number of XES events written.

    ``names`` maps step ids to readable activity names (defaults to the step id).
    """
    names = names or {}
    traces: dict[str, list[Event]] = defaultdict(list)
    assignee: dict[str, str] = {}
    for e in events:
        if e.type in _LIFECYCLE and e.task:
            traces[e.case].append(e)
    out.write(_HEADER)
    written = 0
    for case, evs in traces.items():
        out.write(f'  <trace>\n    <string key="concept:name" value={quoteattr(case)}/>\n')
        process = evs[0].process
        out.write(f'    <string key="accord:process" value={quoteattr(process)}/>\n')
        reported = {e.task for e in evs if e.type is EventType.TASK_STARTED}
        for e in sorted(evs, key=lambda x: (x.at, x.seq)):
            if e.type is EventType.TASK_CLAIMED:
                assignee[e.task or ""] = str(e.data.get("assignee") or e.actor or "")
                if e.task in reported:
                    continue  # the start of work is its own event
            resource = assignee.get(e.task or "") or e.actor or ""
            activity = names.get(e.step or "", e.step or "")
            out.write("    <event>\n")
            out.write(f'      <string key="concept:name" value={quoteattr(activity)}/>\n')
            out.write(f'      <date key="time:timestamp" value="{iso(e.at)}"/>\n')
            out.write(f'      <string key="lifecycle:transition" value="{_LIFECYCLE[e.type]}"/>\n')
            if resource:
                out.write(f'      <string key="org:resource" value={quoteattr(resource)}/>\n')
            if e.team:
                out.write(f'      <string key="org:group" value={quoteattr(e.team)}/>\n')
            out.write(f'      <string key="accord:task" value={quoteattr(e.task or "")}/>\n')
            out.write("    </event>\n")
            written += 1
        out.write("  </trace>\n")
    out.write("</log>\n")
    return written


def export_xes(
    events: Iterable[Event], path: str | Path, names: dict[str, str] | None = None
) -> int:
    """Write an XES file at ``path``; return the number of events written."""
    with open(path, "w", encoding="utf-8") as f:
        return write_xes(events, f, names)
