"""What a team node puts on the bus: one event, or a bundle of events, as CloudEvents JSON.

A message holds either one CloudEvent (a JSON object) or several, in CloudEvents' batched JSON
format (a JSON array of events, ``application/cloudevents-batch+json``). A node's relay sends one
bundle per addressee for each batch it reads from its log, so one broker message carries many
handoffs when the node is busy and a single event when it is not. Receivers deduplicate by event
id, whichever way an event arrived, so a bundle published again after a crash (perhaps cut at
different places) changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from accord.events import SCHEMA_VERSION, Event, iso

# A bundle stays well below NATS's default 1 MB message limit.
MAX_BUNDLE_BYTES = 256 * 1024

# (event id, event type, the event as CloudEvent JSON)
Part = tuple[str, str, bytes]


def encode(e: Event, source: str) -> bytes:
    """One event as CloudEvent JSON, with ``source`` as its source."""
    doc = e.to_cloudevent()
    doc["source"] = source
    return orjson.dumps(doc)


def encode_row(r: Any, source: str) -> bytes:
    """An events row (the columns ``SqliteStore.event_rows`` returns: pos, id, case_id, seq,
    type, at, process, step, team, actor, task, data as JSON text, causation, source) as the
    same bytes ``encode`` gives for its Event, without decoding and encoding its data again."""
    doc: dict[str, Any] = {
        "specversion": "1.0",
        "id": r[1],
        "source": source,
        "type": "accord." + r[4],
        "subject": r[2],
        "time": iso(r[5]),
        "datacontenttype": "application/json",
        "accordversion": SCHEMA_VERSION,
        "process": r[6],
        "seq": r[3],
        "data": orjson.Fragment(r[11]),
    }
    # the optional attributes, in Event.to_cloudevent's order
    if r[7] is not None:
        doc["step"] = r[7]
    if r[8] is not None:
        doc["team"] = r[8]
    if r[9] is not None:
        doc["actor"] = r[9]
    if r[10] is not None:
        doc["task"] = r[10]
    if r[12] is not None:
        doc["causation"] = r[12]
    return orjson.dumps(doc)


def bundles(parts: list[Part]) -> Iterator[list[Part]]:
    """Cut ``parts`` into bundles of at most MAX_BUNDLE_BYTES, in order."""
    start = 0
    size = 0
    for i, (_id, _type, doc) in enumerate(parts):
        if i > start and size + len(doc) + 1 > MAX_BUNDLE_BYTES:
            yield parts[start:i]
            start, size = i, 0
        size += len(doc) + 1
    if start < len(parts):
        yield parts[start:]


def bundle_data(bundle: list[Part]) -> bytes:
    """The message body: the event itself when there is one, else a JSON array of them."""
    if len(bundle) == 1:
        return bundle[0][2]
    return b"[" + b",".join(doc for _id, _type, doc in bundle) + b"]"


def bundle_id(bundle: list[Part]) -> str:
    """The message id of a bundle: the event id when it holds one event (so the broker's own
    duplicate window catches a republished event), else its first and last event ids."""
    if len(bundle) == 1:
        return bundle[0][0]
    return f"{bundle[0][0]}..{bundle[-1][0]}"


def bundle_type(bundle: list[Part]) -> str:
    """The event type a bundle's subject names: its events' type, or ``batch`` when mixed."""
    first = bundle[0][1]
    return first if all(t == first for _id, t, _doc in bundle) else "batch"


def decode(data: bytes) -> list[Event | ValueError]:
    """The events a message carries, in order; an element that is not a valid event envelope
    comes back as the ValueError saying why (the others still count)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return [ValueError(f"not JSON: {exc}")]
    docs = doc if isinstance(doc, list) else [doc]
    out: list[Event | ValueError] = []
    for d in docs:
        if not isinstance(d, dict):
            out.append(ValueError(f"malformed event envelope: {type(d).__name__}"))
            continue
        try:
            out.append(Event.from_cloudevent(d))
        except ValueError as exc:
            out.append(exc)
    return out
