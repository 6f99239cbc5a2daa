"""Exporting to BPMN 2.0 with a diagram: valid XML, every element drawn, a lane per team, and a
round trip YAML -> BPMN -> YAML that keeps the process."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from bpmnkit import CORPUS
from lxml import etree  # type: ignore[import-untyped]

from accord.bpmn.exporter import export_bpmn, iso, layers
from accord.bpmn.importer import import_bpmn, import_bytes, plain
from accord.bpmn.reader import BPMN_NS, BPMNDI_NS, DC_NS, DI_NS
from accord.errors import DefinitionError
from accord.model import ProcessDefinition, load, loads
from accord.model.types import NOWHERE

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
NS = {"bpmn": BPMN_NS, "bpmndi": BPMNDI_NS, "dc": DC_NS, "di": DI_NS}


def same_process(a: ProcessDefinition, b: ProcessDefinition) -> None:
    """Equal in everything a definition says (positions aside)."""
    for attr in ("id", "version", "name", "owner", "mode", "description", "start"):
        assert getattr(a, attr) == getattr(b, attr), attr
    assert {k: replace(t, loc=NOWHERE) for k, t in a.teams.items()} == {
        k: replace(t, loc=NOWHERE) for k, t in b.teams.items()
    }
    assert list(a.steps) == list(b.steps)
    for sid, step in a.steps.items():
        assert replace(step, loc=NOWHERE) == replace(b.steps[sid], loc=NOWHERE), sid

    def flows(d: ProcessDefinition) -> list[tuple[Any, ...]]:
        return [
            (
                f.id,
                f.source,
                f.target,
                f.condition.source if f.condition else None,
                f.default,
                f.message,
            )
            for f in d.flows
        ]

    assert flows(a) == flows(b)
    assert plain(a.scenario) == plain(b.scenario)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_yaml_to_bpmn_to_yaml_keeps_the_process(path: Path) -> None:
    original = load(path)
    data = export_bpmn(original)
    again = import_bytes(data, "x.bpmn")
    same_process(original, again.definition)
    # and through the YAML `accord import` writes
    from accord.bpmn.importer import to_yaml

    same_process(original, loads(to_yaml(again, "x.bpmn"), "x.yaml"))


def _supported_corpus() -> list[Path]:
    found = []
    for path in sorted(CORPUS.rglob("*")) if CORPUS.is_dir() else []:
        if path.suffix in (".bpmn", ".xml") and path.is_file():
            try:
                import_bpmn(path)
            except DefinitionError:
                continue
            found.append(path)
    return found


@pytest.mark.parametrize("path", _supported_corpus(), ids=lambda p: p.name)
def test_bpmn_to_yaml_to_bpmn_keeps_the_process(path: Path) -> None:
    first = import_bpmn(path).definition
    second = import_bytes(export_bpmn(first), "x.bpmn").definition
    same_process(first, second)


def diagram_of(data: bytes) -> dict[str, Any]:
    root = etree.fromstring(data)
    shapes = {
        s.get("bpmnElement"): s.find("dc:Bounds", NS)
        for s in root.iterfind(".//bpmndi:BPMNShape", NS)
    }
    edges = {
        e.get("bpmnElement"): e.findall("di:waypoint", NS)
        for e in root.iterfind(".//bpmndi:BPMNEdge", NS)
    }
    return {"root": root, "shapes": shapes, "edges": edges}


def box(b: Any) -> tuple[float, float, float, float]:
    return tuple(float(b.get(k)) for k in ("x", "y", "width", "height"))  # type: ignore[return-value]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_element_is_drawn_in_its_lane(path: Path) -> None:
    d = load(path)
    data = export_bpmn(d)
    dia = diagram_of(data)
    root = dia["root"]
    proc = root.find("bpmn:process", NS)
    nodes = [el for el in proc if etree.QName(el).localname.endswith(("Task", "Event", "Gateway"))]
    flows = proc.findall("bpmn:sequenceFlow", NS)
    lanes = proc.findall("bpmn:laneSet/bpmn:lane", NS)
    assert len(lanes) == len(d.teams)
    assert {el.get("id") for el in nodes} <= set(dia["shapes"])
    for f in flows:
        points = dia["edges"][f.get("id")]
        assert len(points) >= 2
    assert root.find("bpmn:collaboration/bpmn:participant", NS).get("id") in dia["shapes"]
    # each node inside its lane, and no two nodes overlapping
    for lane in lanes:
        lx, ly, lw, lh = box(dia["shapes"][lane.get("id")])
        for ref in lane.findall("bpmn:flowNodeRef", NS):
            x, y, w, h = box(dia["shapes"][ref.text])
            assert lx <= x and x + w <= lx + lw and ly <= y and y + h <= ly + lh, ref.text
    boxes = [box(dia["shapes"][el.get("id")]) for el in nodes]
    for i, (x, y, w, h) in enumerate(boxes):
        for x2, y2, w2, h2 in boxes[i + 1 :]:
            assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y


def test_columns_follow_the_longest_path_and_ignore_loops() -> None:
    d = load(ROOT / "examples" / "procurement.yaml")
    col = layers(d)
    assert col["request"] == 0 and col["check-budget"] == 1
    assert col["reviews-done"] > max(col["legal-review"], col["security-review"])
    assert col["received"] == max(col.values())


def test_ids_that_are_not_xml_names_survive_the_trip() -> None:
    d = loads(
        """
process: "2nd process"
teams:
  "back office": {}
steps:
  - id: "1st step"
    team: "back office"
    next:
      - {to: "end: done", when: 'x > 1', id: "a->b"}
      - {to: "other one", default: true}
  - id: "other one"
    team: "back office"
  - id: "end: done"
    type: end
"""
    )
    data = export_bpmn(d)
    root = etree.fromstring(data)
    ids = [el.get("id") for el in root.iter() if el.get("id")]
    assert len(ids) == len(set(ids))
    for xid in ids:  # every id an NCName: letters, digits, _ - . and no leading digit
        assert xid[0].isalpha() or xid[0] == "_", xid
        assert all(c.isalnum() or c in "_-." for c in xid), xid
    same_process(d, import_bytes(data, "x.bpmn").definition)


def test_durations_round_trip_exactly() -> None:
    from accord.model.durations import parse_duration

    for seconds in (0.5, 30.0, 90.0, 3600.0, 5400.0, 86400.0, 129600.0, 1.25):
        assert parse_duration(iso(seconds)) == seconds


def test_exported_bpmn_is_schema_valid_where_the_omg_schema_is_at_hand() -> None:
    try:
        import SpiffWorkflow  # type: ignore[import-not-found]
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("the OMG BPMN 2.0 XSD ships with SpiffWorkflow (pip install -e '.[dev]')")
    xsd = Path(SpiffWorkflow.__file__).parent / "bpmn" / "parser" / "schema" / "BPMN20.xsd"
    schema = etree.XMLSchema(etree.parse(str(xsd)))
    for path in EXAMPLES:
        doc = etree.fromstring(export_bpmn(load(path)))
        assert schema.validate(doc), (path.name, [str(e) for e in schema.error_log][:3])


@pytest.mark.parametrize(
    "name",
    [
        "miwg-reference/A.3.0.bpmn",
        "miwg-reference/A.4.0.bpmn",
        "miwg-reference/A.4.1.bpmn",
        "miwg-reference/C.1.0.bpmn",
        "camunda-platform/invoice/invoice.v2.bpmn",
        "spiffworkflow/boundary.bpmn",
        "spiffworkflow/spiff_error_event_payload.bpmn",
        "camunda-platform/engine-tests/MultiInstanceTest.testParallelSubProcess.bpmn20.xml",
    ],
)
def test_exports_of_imported_corpus_models_are_schema_valid(name: str) -> None:
    """Sub-processes, boundary events, message flows and loop markers come out as valid BPMN."""
    try:
        import SpiffWorkflow
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("the OMG BPMN 2.0 XSD ships with SpiffWorkflow (pip install -e '.[dev]')")
    xsd = Path(SpiffWorkflow.__file__).parent / "bpmn" / "parser" / "schema" / "BPMN20.xsd"
    schema = etree.XMLSchema(etree.parse(str(xsd)))
    d = import_bpmn(CORPUS / name).definition
    data = export_bpmn(d)
    assert schema.validate(etree.fromstring(data)), (name, [str(e) for e in schema.error_log][:3])
    same_process(d, import_bytes(data, "x.bpmn").definition)
