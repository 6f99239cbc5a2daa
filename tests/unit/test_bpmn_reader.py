"""Reading BPMN safely: bad input gets a precise error with its line, in bounded time and memory,
and nothing is ever fetched, expanded or executed."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest
from bpmnkit import CORPUS, START_TASK_END, document, line_with

from accord.bpmn.reader import MAX_BPMN_BYTES, parse_bpmn, read_bpmn
from accord.errors import DefinitionError, Problem
from accord.model import load


def problems(data: bytes) -> list[Problem]:
    with pytest.raises(DefinitionError) as info:
        parse_bpmn(data, "bad.bpmn")
    return info.value.problems


def test_a_good_document_parses_and_indexes_ids() -> None:
    doc = parse_bpmn(document(START_TASK_END), "ok.bpmn")
    assert {"p", "start", "work", "end", "f1", "f2"} <= set(doc.by_id)
    assert doc.by_id["work"].sourceline == line_with(document(START_TASK_END), 'id="work"')


def test_not_xml() -> None:
    [p] = problems(b"this is not XML at all\n")
    assert (p.file, p.line, p.element) == ("bad.bpmn", 1, "xml")
    assert "not well-formed XML" in p.message


def test_malformed_xml_names_the_line_and_column() -> None:
    [p] = problems(b'<?xml version="1.0"?>\n<definitions>\n  <process>\n</definitions>\n')
    assert (p.line, p.element) == (4, "xml")
    assert "mismatched tag" in p.message
    assert p.col > 1


def test_empty_file() -> None:
    [p] = problems(b"  \n")
    assert "empty" in p.message


def test_xml_that_is_not_bpmn() -> None:
    [p] = problems(b'<?xml version="1.0"?>\n<note><to>you</to></note>\n')
    assert (p.line, p.element) == (2, "note")
    assert "not a BPMN 2.0 document" in p.message and "<definitions>" in p.message


def test_definitions_in_another_namespace_is_not_bpmn() -> None:
    [p] = problems(b'<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/"/>')
    assert "not a BPMN 2.0 document" in p.message and "DMN" in p.message


def test_duplicate_ids_are_reported_with_both_lines() -> None:
    data = document(
        """
        <startEvent id="start"/>
        <sequenceFlow id="f1" sourceRef="start" targetRef="end"/>
        <endEvent id="start"/>
        """
    )
    [p] = problems(data)
    assert p.element == "start"
    assert p.line == line_with(data, '<endEvent id="start"')
    assert f"first used at line {line_with(data, '<startEvent')}" in p.message


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">
  <process id="p"><task id="t" name="&lol9;"/></process>
</definitions>
"""


def test_billion_laughs_is_refused_quickly_in_little_memory() -> None:
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        [p] = problems(BILLION_LAUGHS)
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (p.line, p.element) == (2, "xml")
    assert "document type declaration" in p.message
    assert elapsed < 1.0
    assert peak < 5_000_000


def test_an_external_entity_is_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    data = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE d [<!ENTITY xxe SYSTEM "file://{secret}">'
        '<!ENTITY pw SYSTEM "file:///etc/passwd">]>\n'
        '<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">\n'
        '  <process id="p"><task id="t" name="&xxe;&pw;"/></process>\n'
        "</definitions>\n"
    ).encode()
    with pytest.raises(DefinitionError) as info:
        parse_bpmn(data, "xxe.bpmn")
    text = str(info.value)
    assert "TOP-SECRET-CONTENT" not in text and "root:" not in text
    assert info.value.problems[0].line == 2
    assert "refused" in text


def test_an_external_dtd_is_refused_without_network() -> None:
    data = (
        b'<?xml version="1.0"?>\n'
        b'<!DOCTYPE definitions SYSTEM "http://127.0.0.1:9/never.dtd">\n'
        b'<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"/>\n'
    )
    t0 = time.perf_counter()
    [p] = problems(data)
    assert p.line == 2 and "document type declaration" in p.message
    assert time.perf_counter() - t0 < 1.0


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "huge.bpmn"
    with big.open("wb") as f:  # sparse: 200 MB on paper, nothing on disk
        f.truncate(200 * 1024 * 1024)
    t0 = time.perf_counter()
    with pytest.raises(DefinitionError) as info:
        read_bpmn(big)
    assert time.perf_counter() - t0 < 0.5
    [p] = info.value.problems
    assert (p.file, p.element) == (str(big), "file")
    assert "209715200 bytes" in p.message and "limit" in p.message
    with pytest.raises(DefinitionError, match="limit"):  # and through accord.model.load
        load(big)


def test_bytes_over_the_limit_are_refused() -> None:
    [p] = problems(b" " * (MAX_BPMN_BYTES + 1))
    assert p.element == "file"


def test_deep_nesting_is_refused_not_recursed() -> None:
    depth = 100_000
    data = (
        b'<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">'
        + b"<a>" * depth
        + b"</a>" * depth
        + b"</definitions>"
    )
    t0 = time.perf_counter()
    [p] = problems(data)
    assert p.element == "xml" and "depth" in p.message.lower()
    assert time.perf_counter() - t0 < 2.0


def test_a_missing_file() -> None:
    with pytest.raises(DefinitionError, match="cannot read"):
        read_bpmn("/nonexistent/model.bpmn")


def test_latin1_documents_from_the_corpus_parse() -> None:
    doc = read_bpmn(CORPUS / "miwg-reference" / "A.1.0.bpmn")  # encoding="ISO-8859-1"
    assert "WFP-6-" in doc.by_id
