"""Call activities: find the called process, and inline it as an embedded sub-process.

accord runs a call activity as an embedded sub-process (one case, data shared with the caller;
see docs/architecture.md): the called process is imported on its own, as any BPMN process is,
and its steps are copied into the call activity's ``steps`` with ids prefixed by the call
activity's id (``call/step``), so that two calls of one process, or a called process whose ids
repeat the caller's, stay apart.

The called process is looked for in the calling file, then in the files given, then in the
BPMN files of the calling file's folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from accord.bpmn.reader import BpmnDocument, is_bpmn, is_bpmn_path, local, read_bpmn
from accord.errors import DefinitionError


class Library:
    """The BPMN files a call activity may call into, parsed once each, on demand."""

    def __init__(self, files: Iterable[str | Path] = ()) -> None:
        self.files = [Path(f) for f in files]
        self._docs: dict[Path, BpmnDocument | None] = {}

    def _doc(self, path: Path) -> BpmnDocument | None:
        key = path.resolve()
        if key not in self._docs:
            try:
                self._docs[key] = read_bpmn(path)
            except DefinitionError:
                self._docs[key] = None  # an unreadable neighbour cannot be called
        return self._docs[key]

    def find(self, called: str, caller: BpmnDocument) -> BpmnDocument | None:
        """The document holding process ``called`` (an id, or a name as some tools write)."""
        if _holds(caller, called):
            return caller
        candidates = list(self.files)
        folder = Path(caller.file).parent
        if Path(caller.file).is_file() and folder.is_dir():
            candidates += sorted(p for p in folder.iterdir() if is_bpmn_path(p))
        for path in candidates:
            if path.resolve() == Path(caller.file).resolve():
                continue
            doc = self._doc(path)
            if doc is not None and _holds(doc, called):
                return doc
        return None


def _holds(doc: BpmnDocument, called: str) -> bool:
    return any(is_bpmn(p) and local(p) == "process" and p.get("id") == called for p in doc.root)


def called_processes(root: Any) -> set[str]:
    """Ids named by the call activities of a document (those processes are not run alone)."""
    return {
        str(el.get("calledElement"))
        for el in root.iter()
        if is_bpmn(el) and local(el) == "callActivity" and el.get("calledElement")
    }


def prefixed(steps: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """A called process's steps with every id, and every reference to one, prefixed."""

    def ref(sid: str) -> str:
        return f"{prefix}/{sid}"

    out: list[dict[str, Any]] = []
    for step in steps:
        copy = dict(step)
        sid = str(step["id"])
        copy["id"] = ref(sid)
        if "attached_to" in step:
            copy["attached_to"] = ref(str(step["attached_to"]))
        if isinstance(step.get("steps"), list):
            copy["steps"] = prefixed(step["steps"], prefix)
        nxt = step.get("next")
        if isinstance(nxt, str):
            copy["next"] = [{"to": ref(nxt), "id": ref(f"{sid}->{nxt}")}]
        elif isinstance(nxt, dict):  # an approval's outcomes
            copy["next"] = {k: ref(str(v)) for k, v in nxt.items()}
        elif isinstance(nxt, list):
            items: list[Any] = []
            for item in nxt:
                if isinstance(item, str):
                    items.append({"to": ref(item), "id": ref(f"{sid}->{item}")})
                    continue
                entry = dict(item)
                target = str(item["to"])
                entry["to"] = ref(target)
                entry["id"] = ref(str(item.get("id") or f"{sid}->{target}"))
                items.append(entry)
            copy["next"] = items
        out.append(copy)
    return out
