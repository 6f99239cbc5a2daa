"""BPMN 2.0 interchange: import (:mod:`.importer`), export (:mod:`.exporter`) and the
conformance check over a folder of models (:mod:`.check`). See docs/bpmn.md."""

from accord.bpmn.importer import Imported, import_bpmn, load_bpmn
from accord.bpmn.reader import MAX_BPMN_BYTES, is_bpmn_path

__all__ = ["MAX_BPMN_BYTES", "Imported", "import_bpmn", "is_bpmn_path", "load_bpmn"]
