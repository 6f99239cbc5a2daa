"""The BPMN diagram a page draws with bpmn-js, and which shape stands for which step.

A process imported from BPMN is shown as its authors drew it: the store keeps the source file
it was deployed from, and when that is BPMN with a diagram, that document is served. Any other
process (YAML) is drawn by accord.bpmn.exporter's automatic layout. Either way the page needs
the shape id of each step to put counts, heat and the case's position on it: an exported or
re-imported shape carries the step id as its own id or as ``accord:id``.
"""

from __future__ import annotations

import threading

from accord.bpmn.exporter import export_bpmn
from accord.bpmn.reader import ACCORD_NS, BPMN_NS, parse_bpmn
from accord.errors import AccordError
from accord.model.types import ProcessDefinition
from accord.stores.base import Store

_cache: dict[tuple[str, int], tuple[bytes, dict[str, str], bool]] = {}
_lock = threading.Lock()


def _is_bpmn(source: str) -> bool:
    head = source.lstrip()[:2000]
    return head.startswith("<") and BPMN_NS in head and "BPMNDiagram" in source


def _element_ids(xml: bytes, d: ProcessDefinition) -> dict[str, str]:
    out: dict[str, str] = {}
    for el in parse_bpmn(xml, d.key).root.iter():
        if not isinstance(el.tag, str) or not el.tag.startswith(f"{{{BPMN_NS}}}"):
            continue
        xid = el.get("id")
        step = el.get(f"{{{ACCORD_NS}}}id") or xid
        if xid and step in d.steps and step not in out:
            out[step] = xid
    return out


def diagram(store: Store, d: ProcessDefinition) -> tuple[bytes, dict[str, str], bool]:
    """(BPMN XML, step id -> shape id, whether it is the original drawing) for ``d``."""
    key = (d.key, id(d))
    with _lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    source = next((s for k, _n, s in store.definitions() if k == d.key), "")
    xml: bytes | None = None
    original = False
    ids: dict[str, str] = {}
    if source and _is_bpmn(source):
        try:
            xml = source.encode("utf-8")
            ids = _element_ids(xml, d)
            original = True
        except AccordError:
            xml = None  # not readable after all: draw it ourselves
    if xml is None:
        xml = export_bpmn(d)
        ids = _element_ids(xml, d)
    result = (xml, ids, original)
    with _lock:
        _cache[key] = result
    return result
