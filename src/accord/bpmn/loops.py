"""BPMN multi-instance and standard loop markers on tasks -> accord's ``multi_instance`` and
``loop`` (see docs/definitions.md#loops and docs/bpmn.md).

Read from BPMN's own elements (``loopCardinality``, ``completionCondition``,
``loopDataInputRef`` / ``inputDataItem``, ``loopDataOutputRef`` / ``outputDataItem``,
``loopCondition``, ``loopMaximum``, ``testBefore``) and the dialects' extensions: Camunda 7's
``camunda:collection`` and ``camunda:elementVariable``, Zeebe's ``zeebe:loopCharacteristics``
(``inputCollection``, ``inputElement``, ``outputCollection``, ``outputElement``). Expressions
are translated like conditions; a collection must name a case data field. Anything else is
refused with the element and its line.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from accord.bpmn.conditions import Untranslatable, translate
from accord.bpmn.elements import LOOPABLE, loop_of
from accord.bpmn.reader import local

if TYPE_CHECKING:
    from accord.bpmn.importer import _Importer

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def loop_settings(imp: _Importer, el: Any) -> dict[str, Any]:
    """``{"multi_instance": {...}}``, ``{"loop": {...}}`` or nothing, for a task's marker."""
    found = loop_of(el)
    if found is None or local(el) not in LOOPABLE:
        return {}
    kind, marker = found
    eid = str(el.get("id"))
    language = imp.doc.root.get("expressionLanguage")

    def expression(child: Any, what: str) -> str | None:
        text = "".join(child.itertext()).strip()
        if not text:
            return None
        try:
            return translate(text, child.get("language") or language)
        except Untranslatable as exc:
            imp.refuse(child, eid, f"{what} {text!r} cannot be translated: {exc}")
            return None

    def field(text: str | None, what: str, where: Any) -> str | None:
        """A case data field named by ``text`` (``items``, ``${items}``, ``= items``)."""
        if not text:
            return None
        raw = text.strip()
        inner = re.fullmatch(r"(?:\$\{|#\{)\s*(.*?)\s*\}|=\s*(.*)", raw)
        name = (inner.group(1) or inner.group(2)).strip() if inner else raw
        if not _NAME.fullmatch(name):
            imp.refuse(
                where,
                eid,
                f"unsupported: {what} {raw!r}: only the name of a case data field can be "
                "imported, not an expression",
            )
            return None
        return name

    children = {local(c): c for c in marker}
    if kind == "standardLoopCharacteristics":
        loop: dict[str, Any] = {}
        if "loopCondition" in children:
            cond = expression(children["loopCondition"], "loopCondition")
            if cond is not None:
                loop["while"] = cond
        maximum = marker.get("loopMaximum")
        if maximum is not None:
            try:
                loop["max"] = int(maximum)
            except ValueError:
                imp.refuse(marker, eid, f"loopMaximum {maximum!r} is not a whole number")
        if marker.get("testBefore") == "true":
            loop["test_before"] = True
        if "while" not in loop and "max" not in loop:
            imp.refuse(marker, eid, "unsupported: a standard loop without loopCondition or "
                       "loopMaximum would never end")  # fmt: skip
            return {}
        return {"loop": loop}

    multi: dict[str, Any] = {}
    if marker.get("isSequential") == "true":
        multi["sequential"] = True
    zeebe = next(
        (x for ext in marker if local(ext) == "extensionElements" for x in ext
         if local(x) == "loopCharacteristics"),
        None,
    )  # fmt: skip
    attrs = {k.rsplit("}", 1)[-1]: v for k, v in marker.attrib.items()}
    if "loopCardinality" in children:
        count = expression(children["loopCardinality"], "loopCardinality")
        if count is not None:
            multi["count"] = count
    collection = field(attrs.get("collection"), "camunda:collection", marker)
    item = attrs.get("elementVariable")
    if zeebe is not None:
        collection = collection or field(zeebe.get("inputCollection"), "inputCollection", zeebe)
        item = item or zeebe.get("inputElement")
        out = field(zeebe.get("outputCollection"), "outputCollection", zeebe)
        if out:
            multi["output"] = out
            element = field(zeebe.get("outputElement"), "outputElement", zeebe)
            if element:
                multi["output_item"] = element
    if "loopDataInputRef" in children:
        collection = collection or field(children["loopDataInputRef"].text, "loopDataInputRef",
                                         children["loopDataInputRef"])  # fmt: skip
    if "inputDataItem" in children:
        item = item or _item_name(children["inputDataItem"])
    if "loopDataOutputRef" in children:
        out = field(children["loopDataOutputRef"].text, "loopDataOutputRef",
                    children["loopDataOutputRef"])  # fmt: skip
        if out:
            multi["output"] = out
            if "outputDataItem" in children:
                multi["output_item"] = _item_name(children["outputDataItem"])
    if collection:
        if "count" in multi:  # BPMN: the cardinality wins; keep one, say so
            imp.note(marker.sourceline or 1, eid, "both loopCardinality and a collection: "
                     "the collection's length decides")  # fmt: skip
            del multi["count"]
        multi["collection"] = collection
    if item:
        multi["item"] = item
    if "completionCondition" in children:
        until = expression(children["completionCondition"], "completionCondition")
        if until is not None:
            multi["until"] = until
    if "count" not in multi and "collection" not in multi:
        imp.refuse(marker, eid, "unsupported: a multi-instance marker without loopCardinality "
                   "or a collection: accord cannot tell how many instances")  # fmt: skip
        return {}
    return {"multi_instance": multi}


def _item_name(el: Any) -> str:
    """A data item's variable: its name if that is a name, else its id (SpiffWorkflow)."""
    name = str(el.get("name") or "")
    return name if _NAME.fullmatch(name) else str(el.get("id") or name)
