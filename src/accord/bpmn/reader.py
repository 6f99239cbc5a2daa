"""Reading BPMN 2.0 XML safely: bounded size, no DTD, no entities, no network, precise errors.

A BPMN file is outside input, so it is read in two passes:

1. **Screen** with defusedxml's expat parser (``forbid_dtd``, ``forbid_entities``,
   ``forbid_external``) into a target that keeps nothing. A document type declaration is the only
   way to declare entities, so billion-laughs and external-entity documents (``file:///etc/passwd``)
   are refused here, with the line of the declaration, before anything expands or is fetched.
   Malformed XML is reported here too, with line and column.
2. **Parse** with lxml, hardened the same way (``resolve_entities=False``, ``no_network=True``,
   ``load_dtd=False``, ``huge_tree=False``, which also bounds nesting depth and text size), to get
   a tree whose elements know their ``sourceline``: every later problem names its line.

Files larger than :data:`MAX_BPMN_BYTES` are refused before they are read; only that many bytes
are ever read, so a FIFO or a device cannot make the reader wait or grow. The BPMN checks made
here are the document-wide ones: the root must be BPMN 2.0 ``definitions`` and ids must be
unique. Everything else is the importer's job (:mod:`accord.bpmn.importer`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml.ElementTree import DefusedXMLParser  # type: ignore[import-untyped]
from lxml import etree  # type: ignore[import-untyped]

from accord.errors import DefinitionError, Problem

MAX_BPMN_BYTES = 10 * 1024 * 1024

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DC_NS = "http://www.omg.org/spec/DD/20100524/DC"
DI_NS = "http://www.omg.org/spec/DD/20100524/DI"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
ACCORD_NS = "urn:accord:bpmn:1"
"""accord's extension namespace: settings BPMN has no place for, so that a round trip
YAML -> BPMN -> YAML keeps the whole process."""
# ids of these namespaces share one xsd:ID space; extension namespaces are not checked
_ID_NAMESPACES = frozenset({BPMN_NS, BPMNDI_NS, DC_NS, DI_NS})

BPMN_SUFFIXES = (".bpmn", ".bpmn2", ".bpmn20.xml")


def is_bpmn_path(path: str | Path) -> bool:
    """Whether a file name says BPMN (``.bpmn``, ``.bpmn2``, Camunda's ``.bpmn20.xml``)."""
    name = Path(path).name.lower()
    return name.endswith(BPMN_SUFFIXES)


def local(el: Any) -> str:
    """An element's tag without its namespace (empty for comments and the like)."""
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def is_bpmn(el: Any) -> bool:
    """An element of the BPMN 2.0 model namespace."""
    tag = el.tag
    return isinstance(tag, str) and tag.startswith("{" + BPMN_NS + "}")


def line_of(el: Any) -> int:
    """The 1-based line an element starts on (1 if lxml does not know)."""
    line = getattr(el, "sourceline", None)
    return int(line) if isinstance(line, int) and line > 0 else 1


@dataclass
class BpmnDocument:
    """A parsed BPMN file: its root ``definitions`` element and an index of ids."""

    file: str
    root: Any
    by_id: dict[str, Any] = field(default_factory=dict)

    def problem(self, el: Any, element: str, message: str) -> Problem:
        """A problem located at ``el``'s line in this file."""
        return Problem(self.file, line_of(el) if el is not None else 1, 1, element, message)


class _Discard:
    """An expat target that keeps nothing: the screening pass needs only the verdict."""

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        pass

    def end(self, tag: str) -> None:
        pass

    def data(self, data: str) -> None:
        pass

    def close(self) -> None:
        return None


def read_bpmn(path: str | Path) -> BpmnDocument:
    """Read and parse a BPMN file; raise :class:`DefinitionError` with the line on any problem."""
    p = Path(path)
    file = str(path)
    try:
        size = p.stat().st_size
        if size > MAX_BPMN_BYTES:
            raise DefinitionError(
                [
                    Problem(
                        file,
                        1,
                        1,
                        "file",
                        f"file is {size} bytes; the limit for BPMN is "
                        f"{MAX_BPMN_BYTES // (1024 * 1024)} MiB",
                    )
                ]
            )
        with p.open("rb") as f:
            data = f.read(MAX_BPMN_BYTES + 1)
    except OSError as exc:
        raise DefinitionError([Problem(file, 1, 1, "file", f"cannot read: {exc}")]) from None
    return parse_bpmn(data, file)


def parse_bpmn(data: bytes, file: str = "<bytes>") -> BpmnDocument:
    """Parse BPMN XML bytes (see the module docstring for what is refused and why)."""
    if len(data) > MAX_BPMN_BYTES:
        limit = MAX_BPMN_BYTES // (1024 * 1024)
        raise DefinitionError(
            [
                Problem(
                    file, 1, 1, "file", f"more than {limit} MiB of BPMN; the limit is {limit} MiB"
                )
            ]
        )
    if not data.strip():
        raise DefinitionError([Problem(file, 1, 1, "xml", "the file is empty: not BPMN XML")])
    _screen(data, file)
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or 1
        col = (exc.position[1] if exc.position else 0) or 1
        raise DefinitionError(
            [Problem(file, line, col, "xml", f"not well-formed XML: {exc.msg}")]
        ) from None
    if root is None:  # pragma: no cover - lxml raises instead, kept for the type checker
        raise DefinitionError([Problem(file, 1, 1, "xml", "no root element")])
    if local(root) != "definitions" or not is_bpmn(root):
        ns = etree.QName(root).namespace or "no namespace"
        raise DefinitionError(
            [
                Problem(
                    file,
                    line_of(root),
                    1,
                    local(root) or "xml",
                    f"not a BPMN 2.0 document: the root element is <{local(root)}> in {ns}; "
                    f"BPMN has <definitions> in {BPMN_NS}",
                )
            ]
        )
    doc = BpmnDocument(file, root)
    problems: list[Problem] = []
    for el in root.iter():
        tag = el.tag
        if not isinstance(tag, str):
            continue
        ns = tag[1:].split("}", 1)[0] if tag.startswith("{") else ""
        if ns not in _ID_NAMESPACES:
            continue
        eid = el.get("id")
        if eid is None:
            continue
        first = doc.by_id.get(eid)
        if first is not None:
            problems.append(
                doc.problem(el, eid, f"duplicate id (first used at line {line_of(first)})")
            )
            continue
        doc.by_id[eid] = el
    if problems:
        raise DefinitionError(problems)
    return doc


def _screen(data: bytes, file: str) -> None:
    parser = DefusedXMLParser(
        target=_Discard(), forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(data)
        parser.close()
    except ParseError as exc:
        line, col = exc.position
        msg = str(exc).split(": line ")[0]
        raise DefinitionError(
            [Problem(file, line or 1, (col or 0) + 1, "xml", f"not well-formed XML: {msg}")]
        ) from None
    except DefusedXmlException as exc:
        line = int(getattr(parser.parser, "CurrentLineNumber", 1) or 1)
        what = type(exc).__name__
        reason = {
            "DTDForbidden": "a document type declaration (<!DOCTYPE ...>)",
            "EntitiesForbidden": "an entity declaration",
            "ExternalReferenceForbidden": "a reference to an external resource",
        }.get(what, "an unsafe construct")
        raise DefinitionError(
            [
                Problem(
                    file,
                    line,
                    1,
                    "xml",
                    f"refused: {reason}; BPMN never needs one, and it could expand entities "
                    "or read other files",
                )
            ]
        ) from None
    except (ValueError, LookupError) as exc:  # e.g. an unknown encoding declaration
        raise DefinitionError([Problem(file, 1, 1, "xml", f"cannot decode: {exc}")]) from None
