"""Reading XES (IEEE 1849: 1.0 and 2.0, plain or gzipped, either namespace or none).

The file is streamed with lxml's ``iterparse``: each event is read into column lists when its
element ends and then cleared, each trace when it ends, so memory holds the columns, never the
document. External entities are never resolved, no network is used, and a document with a DTD
is refused (a DTD is the only way to smuggle entities into XML, and XES never needs one).

Only what the analyses use is kept: the case id (the trace's ``concept:name``), the activity,
timestamps, lifecycle transition, resource and group; nested and list attributes are skipped.
Anything unusable is counted in :class:`~accord.analytics.frame.Skipped`, never silently lost.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import polars as pl
from lxml import etree  # type: ignore[import-untyped]

from accord.analytics.frame import EventLog, LogError, Skipped, build
from accord.analytics.timestamps import parse_times

CHUNK = 100_000  # events kept as Python lists before they are packed into a polars chunk
_ATTRIBUTE_TAGS = frozenset(
    {"string", "date", "int", "float", "boolean", "id", "list", "container"}
)


@dataclass(frozen=True, slots=True)
class XesKeys:
    """Which XES attribute keys feed which columns (the defaults are the standard extensions)."""

    case: str = "concept:name"
    activity: str = "concept:name"
    time: str = "time:timestamp"
    start: str = "start_timestamp"
    lifecycle: str = "lifecycle:transition"
    resource: str = "org:resource"
    team: str = "org:group"

    def event_columns(self) -> dict[str, str]:
        """Event attribute key -> column name."""
        return {
            self.activity: "activity",
            self.time: "ts",
            self.start: "start_ts",
            self.lifecycle: "lifecycle",
            self.resource: "resource",
            self.team: "team",
        }


def is_gzip(path: Path) -> bool:
    """Gzip is recognised by its magic number, whatever the file is called."""
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed on the fly when it is gzipped."""
    if is_gzip(path):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return open(path, "rb")


def _local(tag: Any) -> str:
    if not isinstance(tag, str):  # comments and processing instructions
        return ""
    return tag.rsplit("}", 1)[-1]


def read_xes(path: str | Path, keys: XesKeys | None = None) -> EventLog:
    """Read an XES file into an :class:`EventLog`; raise :class:`LogError` if it is unusable."""
    path = Path(path)
    keys = keys or XesKeys()
    wanted = keys.event_columns()
    cols: dict[str, list[Any]] = {c: [] for c in ("case", *wanted.values())}
    chunks: list[pl.DataFrame] = []
    skipped = Skipped()
    notes: list[str] = []
    tags: dict[Any, str] = {}
    trace_cols: dict[str, list[Any]] = {c: [] for c in wanted.values()}
    traces = 0
    try:
        stream = open_binary(path)
    except OSError as exc:
        raise LogError(f"{path}: cannot open: {exc.strerror or exc}") from None
    try:
        # Python sees only the ends of events and traces; everything else stays in C.
        context = etree.iterparse(
            stream,
            events=("end",),
            tag=("{*}event", "{*}trace", "event", "trace"),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            remove_comments=True,
            remove_pis=True,
        )
        for _, el in context:
            name = tags.get(el.tag)
            if name is None:
                name = tags[el.tag] = _local(el.tag)
            parent = el.getparent()
            pname = "" if parent is None else tags.get(parent.tag)
            if pname is None:
                pname = tags[parent.tag] = _local(parent.tag)
            if name == "event":
                if pname != "trace":
                    skipped.add("events outside any trace", 1, f"line {el.sourceline}")
                    el.clear()
                    if parent is not None:
                        parent.remove(el)
                    continue
                row = dict.fromkeys(wanted.values())
                for child in el:
                    col = wanted.get(child.get("key"))
                    if col is not None:
                        cname = tags.get(child.tag)
                        if cname is None:
                            cname = tags[child.tag] = _local(child.tag)
                        if cname in _ATTRIBUTE_TAGS:
                            row[col] = child.get("value")
                for c, v in row.items():
                    trace_cols[c].append(v)
                # Cleared, the element is a few bytes; the trace's end removes it for good
                # (removing each one here costs more than it saves).
                el.clear()
                continue
            if pname != "log":
                # a trace nested in something else: its events were already counted out
                for vs in trace_cols.values():
                    vs.clear()
                skipped.add("traces not directly inside <log>", 1, _at(el))
                el.clear()
                if parent is not None:
                    parent.remove(el)
                continue
            traces += 1
            case = None
            for child in el:
                cname = tags.get(child.tag)
                if cname is None:
                    cname = tags[child.tag] = _local(child.tag)
                if cname == "event":
                    continue
                if cname not in _ATTRIBUTE_TAGS:
                    skipped.add(f"unknown <{cname}> elements in traces", 1, _at(child))
                elif child.get("key") == keys.case:
                    case = child.get("value")
            n = len(trace_cols["activity"])
            if case is None and n:
                skipped.add("events of traces without a case id", n, f"trace at {_at(el)}")
            elif n:
                cols["case"].extend([case] * n)
                for c, vs in trace_cols.items():
                    cols[c].extend(vs)
                if len(cols["case"]) >= CHUNK:
                    chunks.append(_chunk(cols))
            for vs in trace_cols.values():
                vs.clear()
            el.clear()
            parent.remove(el)
        root = context.root
        if root is None:
            raise LogError(f"{path}: the file holds no XML element")
        _check_root(path, root, skipped)
    except etree.XMLSyntaxError as exc:
        where = exc.position or (0, 0)
        raise LogError(f"{path}:{where[0]}:{where[1]}: not well-formed XML: {exc.msg}") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise LogError(f"{path}: cannot read: {exc}") from None
    finally:
        stream.close()
    if not traces:
        notes.append("the log holds no <trace>")
    chunks.append(_chunk(cols))
    table = pl.concat(chunks)
    return finish(
        {c: table[c] for c in table.columns}, path=path, fmt="xes", skipped=skipped, notes=notes
    )


def _chunk(cols: dict[str, list[Any]]) -> pl.DataFrame:
    """Move the rows read so far into a compact columnar chunk and empty the lists (Python
    strings take several times the memory of the same text in a polars column)."""
    chunk = pl.DataFrame({c: pl.Series(c, vs, dtype=pl.Utf8) for c, vs in cols.items()})
    for vs in cols.values():
        vs.clear()
    return chunk


def _at(el: Any) -> str:
    return f"line {el.sourceline}"


def _check_root(path: Path, root: Any, skipped: Skipped) -> None:
    if root.getroottree().docinfo.doctype:
        raise LogError(
            f"{path}:{root.sourceline}: a DTD is not accepted in an event log (entities are "
            "never expanded); remove the <!DOCTYPE> declaration"
        )
    if _local(root.tag) != "log":
        raise LogError(
            f"{path}:{root.sourceline}: the root element is <{_local(root.tag)}>, not <log>: "
            "this is not an XES event log"
        )
    for child in root:
        name = _local(child.tag)
        if name not in _ATTRIBUTE_TAGS and name not in ("extension", "global", "classifier"):
            skipped.add(f"unknown <{name}> elements in the log", 1, _at(child))


def finish(
    cols: dict[str, Any], *, path: Path, fmt: str, skipped: Skipped, notes: list[str]
) -> EventLog:
    """Parse the timestamp columns, then type, clean and sort the frame."""
    data: dict[str, Any] = {}
    for name, values in cols.items():
        series = values if isinstance(values, pl.Series) else pl.Series(name, values, pl.Utf8)
        if name in ("ts", "start_ts"):
            if name == "start_ts" and series.null_count() == len(series):
                continue
            parsed = parse_times(series)
            if parsed.failed:
                what = "timestamps" if name == "ts" else "start timestamps"
                skipped.add(
                    f"unparseable {what}" + ("" if name == "ts" else " (start ignored)"),
                    parsed.failed,
                    ", ".join(repr(x) for x in parsed.examples),
                )
            odd = [f for f in parsed.layouts if not f.startswith("%Y-%m-%dT")]
            if odd:
                notes.append(f"{name}: read non-ISO timestamps as {' and '.join(odd)} (UTC)")
            series = parsed.seconds
        data[name] = series
    return build(data, source=str(path), fmt=fmt, skipped=skipped, notes=notes)
