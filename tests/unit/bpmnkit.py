"""Test helpers for BPMN: build small documents, import them, read refusals."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from accord.bpmn.importer import Imported, import_bytes
from accord.errors import DefinitionError, Problem

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "bpmn"
HEAD = """\
<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
    id="defs" targetNamespace="urn:test">
"""


def document(body: str, *, outside: str = "", pid: str = "p", name: str = "Claims") -> bytes:
    """A BPMN document with one process ``pid`` holding ``body`` (and ``outside`` before it)."""
    return (
        HEAD
        + textwrap.indent(textwrap.dedent(outside).strip("\n"), "  ")
        + f'\n  <process id="{pid}" name="{name}" isExecutable="true">\n'
        + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
        + "\n  </process>\n</definitions>\n"
    ).encode()


def imported(body: str, **kw: str) -> Imported:
    """Import a one-process document."""
    return import_bytes(document(body, **kw), "t.bpmn")


def refused(data: bytes) -> list[Problem]:
    """The problems an import of ``data`` is refused with (fails if it is not refused)."""
    with pytest.raises(DefinitionError) as info:
        import_bytes(data, "t.bpmn")
    return info.value.problems


def line_with(data: bytes, needle: str) -> int:
    """The 1-based line of ``data`` on which ``needle`` first appears."""
    for i, line in enumerate(data.decode().splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in the document")


START_TASK_END = """
<startEvent id="start"/>
<sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
<userTask id="work" name="Work"/>
<sequenceFlow id="f2" sourceRef="work" targetRef="end"/>
<endEvent id="end"/>
"""
