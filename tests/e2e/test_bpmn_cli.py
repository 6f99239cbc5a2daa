"""The BPMN commands as a user runs them: import, export, bpmn-check; run and validate .bpmn."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from clikit import accord

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "bpmn"
A21 = CORPUS / "miwg-reference" / "A.2.1.bpmn"
INVOICE = CORPUS / "camunda-platform" / "invoice" / "invoice.v2.bpmn"
TRANSACTION = (
    CORPUS
    / "camunda-platform"
    / "engine-tests"
    / "TransactionSubProcessTest.testSimpleCase.bpmn20.xml"
)

pytestmark = pytest.mark.skipif(
    not CORPUS.is_dir() and not os.environ.get("CI"), reason=f"no BPMN corpus at {CORPUS}"
)


def test_import_writes_yaml_that_validates_and_runs(tmp_path: Path) -> None:
    out = tmp_path / "a21.yaml"
    res = accord("import", A21, "-o", out)
    assert res.returncode == 0, res.stderr
    assert "note:" in res.stderr and "count as true" in res.stderr
    text = out.read_text(encoding="utf-8")
    assert text.startswith(f"# Imported from {A21}")
    res = accord("validate", out, A21)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count(": ok (") == 2
    res = accord("run", A21, "--cases", "5", "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["cases_completed"] == 5


def test_import_refuses_with_located_problems() -> None:
    res = accord("import", TRANSACTION)
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert f"{TRANSACTION}:13:1: tx: unsupported: a transaction" in res.stderr
    assert res.stdout == ""


def test_import_resolves_the_call_activity_beside_the_file(tmp_path: Path) -> None:
    out = tmp_path / "invoice.yaml"
    res = accord("import", INVOICE, "-o", out)
    assert res.returncode == 0, res.stderr
    assert "reviewInvoice" in out.read_text(encoding="utf-8")
    res = accord("run", INVOICE, "--cases", "4", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["cases_completed"] == 4


def test_import_refuses_what_is_not_bpmn(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bpmn"
    bad.write_text(
        "<?xml version='1.0'?>\n<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>\n<x/>"
    )
    res = accord("import", bad)
    assert res.returncode == 1
    assert f"{bad}:2:1: xml: refused" in res.stderr
    assert "root:" not in res.stderr + res.stdout


def test_export_writes_bpmn(tmp_path: Path) -> None:
    out = tmp_path / "procurement.bpmn"
    res = accord("export", ROOT / "examples" / "procurement.yaml", "-o", out)
    assert res.returncode == 0, res.stderr
    data = out.read_bytes()
    assert data.startswith(b"<?xml") and b"bpmndi:BPMNDiagram" in data
    res = accord("validate", out)
    assert res.returncode == 0, res.stdout + res.stderr


def test_bpmn_check_over_the_corpus() -> None:
    res = accord("bpmn-check", CORPUS, "--cases", "2", "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["counts"]["ran"] >= 11
    assert sum(report["counts"].values()) >= 90
    by_path = {f["path"]: f for f in report["files"]}
    assert by_path["miwg-reference/A.1.0.bpmn"]["status"] == "ran"
    assert by_path["camunda-platform/invoice/invoice.v2.bpmn"]["status"] == "ran"
    assert by_path["miwg-reference/C.1.0.bpmn"]["status"] == "ran"
    assert "compensat" in by_path["spiffworkflow/transaction.bpmn"]["reason"].lower() or (
        "transaction" in by_path["spiffworkflow/transaction.bpmn"]["reason"]
    )
    res = accord("bpmn-check", CORPUS / "miwg-reference", "--cases", "1")
    assert res.returncode == 0, res.stderr
    assert "Coverage by element type" in res.stdout and "A.1.0.bpmn" in res.stdout
    assert "refused" in res.stdout and "boundaryEvent" in res.stdout
