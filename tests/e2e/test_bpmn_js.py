"""Exported diagrams open in bpmn-js (the library behind Camunda Modeler) with no import warnings.

Needs bpmn-js in the project's node_modules (``make install`` runs ``npm ci``), Debian's Chromium
(``apt-get install -y chromium``) and Playwright for Python (the ``dev`` extra; it drives the
system's Chromium, no browser is downloaded). Skipped locally when one is missing; a failure
under CI, where .ci/run installs them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from accord.bpmn.exporter import export_bpmn
from accord.bpmn.importer import import_bpmn
from accord.model import load

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "bpmn"
CHROMIUM = os.environ.get("ACCORD_CHROMIUM", "/usr/bin/chromium")
# bpmn-js as package.json pins it: the same copy the web app serves
NODE_MODULES = Path(os.environ.get("ACCORD_NODE_MODULES", str(ROOT / "node_modules")))
EXAMPLES = ["client-onboarding.yaml", "loan-processing.yaml", "procurement.yaml"]

IMPORT = """async (xml) => {
  if (window.viewer) { window.viewer.destroy(); }
  window.viewer = new BpmnJS({ container: '#canvas' });
  try {
    const result = await window.viewer.importXML(xml);
    window.viewer.get('canvas').zoom('fit-viewport');
    const elements = window.viewer.get('elementRegistry').getAll();
    return {
      warnings: result.warnings.map((w) => w.message),
      shapes: elements.filter((e) => !e.waypoints && e.type !== 'label').length,
      connections: elements.filter((e) => e.waypoints).length,
    };
  } catch (err) {
    return { error: err.message, warnings: (err.warnings || []).map((w) => w.message) };
  }
}"""


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def bpmn_js() -> Path:
    """The bpmn-js viewer bundle the project installs (``make install`` runs ``npm ci``)."""
    bundle = NODE_MODULES / "bpmn-js" / "dist" / "bpmn-viewer.development.js"
    if not bundle.is_file():
        _missing(f"bpmn-js is not installed in {NODE_MODULES}: run `make install` (npm ci)")
    return bundle


@pytest.fixture(scope="module")
def page(bpmn_js: Path) -> Iterator[Any]:
    """A headless Chromium page with bpmn-js loaded."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM).is_file():
        _missing(f"Chromium is needed at {CHROMIUM}: apt-get install -y chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--headless"], timeout=30_000
        )
        try:
            tab = browser.new_page(viewport={"width": 1600, "height": 900})
            tab.set_content(
                "<html><body style='margin:0'>"
                "<div id='canvas' style='width:1600px;height:900px'></div></body></html>"
            )
            tab.add_script_tag(path=str(bpmn_js))
            yield tab
        finally:
            browser.close()


def _open(page: Any, data: bytes, shot: Path) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(IMPORT, data.decode("utf-8"))
    page.screenshot(path=str(shot))
    return result


@pytest.mark.parametrize("name", EXAMPLES)
def test_exported_examples_open_in_bpmn_js_without_warnings(
    page: Any, name: str, tmp_path: Path
) -> None:
    d = load(ROOT / "examples" / name)
    shot = tmp_path / f"{Path(name).stem}.png"
    result = _open(page, export_bpmn(d), shot)
    assert "error" not in result, result
    assert result["warnings"] == []
    # every step, the pool and each lane is a shape; every flow a connection
    assert result["shapes"] >= len(d.steps) + len(d.teams) + 1
    assert result["connections"] >= len(d.flows)
    assert shot.stat().st_size > 10_000


@pytest.mark.parametrize(
    "model", ["miwg-reference/C.1.1.bpmn", "spiffworkflow/inclusive_gateway.bpmn"]
)
def test_imported_models_export_back_to_diagrams_bpmn_js_opens(
    page: Any, model: str, tmp_path: Path
) -> None:
    if not (CORPUS / model).is_file():
        _missing(f"no BPMN corpus at {CORPUS}")
    d = import_bpmn(CORPUS / model).definition
    result = _open(page, export_bpmn(d), tmp_path / "model.png")
    assert "error" not in result, result
    assert result["warnings"] == []
    assert result["connections"] >= len(d.flows)
