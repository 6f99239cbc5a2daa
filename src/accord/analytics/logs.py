"""Open any event log the analytics read: XES, CSV, accord's CloudEvents JSON lines, or an
accord store, into one :class:`~accord.analytics.frame.EventLog`.

The format is recognised from the content (gzip magic, ``<`` for XML, ``{`` for JSON lines,
the SQLite header), not only from the file name, so ``log.xes.gz`` and ``export.txt`` both work.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from pathlib import Path

import orjson

from accord.analytics.csv_read import Columns, read_csv
from accord.analytics.frame import EventLog, LogError, Skipped, build, empty_error
from accord.analytics.xes_fast import NotSimple, read_xes_fast
from accord.analytics.xes_read import XesKeys, is_gzip, open_binary, read_xes
from accord.events import Event, EventType

# The vectorized reader's peak memory is about four times the text: above this size the
# streaming reader (a third of the speed, about half a gigabyte per million events) takes over,
# so memory stays under 2 GB for the logs people bring and grows slowly for the rest.
FAST_LIMIT = 480 * 1024 * 1024
_SQLITE = b"SQLite format 3\x00"


def read_log(
    path: str | Path, columns: Columns | None = None, *, allow_empty: bool = False
) -> EventLog:
    """Read an event log file; raise :class:`LogError` for what cannot be read or is empty."""
    path = Path(path)
    if not path.exists():
        raise LogError(f"{path}: no such file")
    if path.is_dir():
        raise LogError(f"{path}: is a directory, not an event log")
    kind = sniff(path)
    if kind == "xes":
        log = _read_xes(path, columns or Columns())
    elif kind == "sqlite":
        log = read_store(f"sqlite:///{path}", source=str(path))
    elif kind == "jsonl":
        log = read_jsonl(path)
    else:
        log = read_csv(path, columns)
    if log.events == 0 and not allow_empty:
        raise empty_error(log)
    return log


def sniff(path: Path) -> str:
    """``xes``, ``csv``, ``jsonl`` or ``sqlite``, from the first bytes of the file."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(b"\x1f\x8b"):
        try:
            with gzip.open(path, "rb") as g:
                head = g.read(512)
        except (OSError, EOFError) as exc:
            raise LogError(f"{path}: a damaged gzip file: {exc}") from None
    if head.startswith(_SQLITE):
        return "sqlite"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        return "xes"
    if text.startswith(b"{"):
        return "jsonl"
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".xes", ".xml")):
        return "xes"
    return "csv"


def _read_xes(path: Path, columns: Columns) -> EventLog:
    keys = XesKeys(
        case=columns.case or "concept:name",
        activity=columns.activity or "concept:name",
        time=columns.time or "time:timestamp",
        start=columns.start or "start_timestamp",
        lifecycle=columns.lifecycle or "lifecycle:transition",
        resource=columns.resource or "org:resource",
        team=columns.team or "org:group",
    )
    size = path.stat().st_size
    try:
        if is_gzip(path):
            if size * 12 < FAST_LIMIT:  # gzip packs event logs about ten to one
                with gzip.open(path, "rb") as g:
                    return read_xes_fast(g.read(), path, keys)
        elif size < FAST_LIMIT:
            return read_xes_fast(path, path, keys)
    except (NotSimple, OSError, EOFError):
        pass  # the streaming reader decides, and names the line if the file is broken
    return read_xes(path, keys)


def accord_events(path: str | Path) -> list[Event] | None:
    """The accord events in ``path`` (a store or CloudEvents JSON lines), else None."""
    path = Path(path)
    kind = sniff(path)
    if kind == "sqlite":
        from accord.stores import open_store

        store = open_store(f"sqlite:///{path}")
        try:
            return [e for _, e in store.events()]
        finally:
            store.close()
    if kind == "jsonl":
        out = []
        with open_binary(path) as f:
            for line in f:
                try:
                    out.append(Event.from_cloudevent(orjson.loads(line)))
                except (orjson.JSONDecodeError, ValueError):
                    continue  # counted when the log itself was read
        return out
    return None


def read_jsonl(path: Path) -> EventLog:
    """Read accord events as CloudEvents JSON, one per line (``accord events --json``)."""
    skipped = Skipped()

    def events() -> Iterable[Event]:
        with open_binary(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield Event.from_cloudevent(orjson.loads(line))
                except (orjson.JSONDecodeError, ValueError) as exc:
                    skipped.add("lines that are not accord events", 1, f"line {n}: {exc}")

    try:
        log = from_events(events(), source=str(path), fmt="jsonl")
    except OSError as exc:
        raise LogError(f"{path}: cannot read: {exc}") from None
    for reason, n in skipped.counts.items():
        log.skipped.add(reason, n, skipped.examples.get(reason))
    return log


def read_store(url: str, source: str | None = None) -> EventLog:
    """Read every event of an accord store (a SQLite file or URL)."""
    from accord.errors import StoreError
    from accord.stores import open_store

    try:
        store = open_store(url)
    except StoreError as exc:
        raise LogError(f"{source or url}: {exc}") from None
    try:
        names = step_names(store)
        return from_events((e for _, e in store.events()), source=source or url, names=names)
    finally:
        store.close()


def step_names(store: object) -> dict[str, str]:
    """Readable step names from the definitions deployed in a store (step id when unknown)."""
    from accord.errors import AccordError
    from accord.model import loads

    names: dict[str, str] = {}
    for key, _name, text in store.definitions():  # type: ignore[attr-defined]
        if not text:
            continue
        try:
            d = loads(text, key)
        except AccordError:
            continue
        names.update({sid: step.name for sid, step in d.steps.items()})
    return names


def from_events(
    events: Iterable[Event],
    *,
    source: str = "<events>",
    fmt: str = "accord",
    names: dict[str, str] | None = None,
) -> EventLog:
    """accord events as an event log: one ``start`` row per claim and one ``complete`` row per
    completion, named by the step, with the member as resource and the team as group (the
    same view :func:`accord.analytics.xes.write_xes` exports)."""
    names = names or {}
    cols: dict[str, list[object]] = {
        c: [] for c in ("case", "activity", "ts", "lifecycle", "resource", "team")
    }
    holder: dict[str, str] = {}
    for e in events:
        if e.type is EventType.TASK_CLAIMED:
            holder[e.task or ""] = str(e.data.get("assignee") or e.actor or "")
            transition = "start"
        elif e.type is EventType.TASK_COMPLETED:
            transition = "complete"
        else:
            continue
        cols["case"].append(e.case)
        cols["activity"].append(names.get(e.step or "", e.step or ""))
        cols["ts"].append(e.at)
        cols["lifecycle"].append(transition)
        cols["resource"].append(holder.get(e.task or "") or e.actor)
        cols["team"].append(e.team)
    return build(cols, source=source, fmt=fmt)  # type: ignore[arg-type]


__all__ = ["Columns", "EventLog", "LogError", "from_events", "read_log", "sniff"]
