"""The event vocabulary: one typed, versioned, CloudEvents-shaped envelope for everything.

Every runtime (central engine, team nodes, simulator) writes exactly these events; metrics,
audit, XES export and the status board read them and never care which mode produced them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from accord.fastinit import fast_init

SCHEMA_VERSION = 1


class EventType(StrEnum):
    """What happened. The dotted names are the CloudEvents ``type`` (prefixed ``accord.``)."""

    CASE_REQUESTED = "case.requested"
    CASE_STARTED = "case.started"
    CASE_COMPLETED = "case.completed"
    CASE_CANCELLED = "case.cancelled"
    CASE_PAUSED = "case.paused"
    CASE_RESUMED = "case.resumed"
    CASE_REROUTED = "case.rerouted"
    TASK_READY = "task.ready"
    TASK_CLAIMED = "task.claimed"
    TASK_STARTED = "task.started"
    TASK_RELEASED = "task.released"
    TASK_COMPLETED = "task.completed"
    TASK_FAILED = "task.failed"
    TASK_REASSIGNED = "task.reassigned"
    TASK_CANCELLED = "task.cancelled"
    TASK_ESCALATED = "task.escalated"
    HANDOFF = "handoff"
    GATEWAY_DECIDED = "gateway.decided"
    SLA_BREACHED = "sla.breached"
    MESSAGE_RECEIVED = "message.received"
    BRANCH_ENDED = "branch.ended"
    HANDOFF_REJECTED = "handoff.rejected"
    ISSUE_RAISED = "issue.raised"
    ISSUE_ACCEPTED = "issue.accepted"
    ISSUE_COUNTERED = "issue.countered"
    ISSUE_RESOLVED = "issue.resolved"
    ISSUE_ESCALATED = "issue.escalated"
    ISSUE_RULED = "issue.ruled"
    BOUNDARY_FIRED = "boundary.fired"
    ERROR_THROWN = "error.thrown"
    ESCALATION_THROWN = "escalation.thrown"
    SIGNAL_THROWN = "signal.thrown"


_TYPES = {t.value: t for t in EventType}


def event_type(text: str) -> EventType:
    """``EventType(text)`` by a dict lookup (every event read or received is typed so);
    an unknown type raises ValueError as ``EventType`` does."""
    t = _TYPES.get(text)
    return t if t is not None else EventType(text)


@fast_init
@dataclass(frozen=True, slots=True)
class Event:
    """One fact in a case's history. ``at`` is seconds since the epoch on the runtime's clock."""

    id: str
    type: EventType
    case: str
    process: str
    at: float
    seq: int
    step: str | None = None
    team: str | None = None
    actor: str | None = None
    task: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    causation: str | None = None
    source: str = "accord/central"

    def to_cloudevent(self) -> dict[str, Any]:
        """The CloudEvents 1.0 JSON form (extensions hold accord's own attributes)."""
        out: dict[str, Any] = {
            "specversion": "1.0",
            "id": self.id,
            "source": self.source,
            "type": f"accord.{self.type.value}",
            "subject": self.case,
            "time": iso(self.at),
            "datacontenttype": "application/json",
            "accordversion": SCHEMA_VERSION,
            "process": self.process,
            "seq": self.seq,
            "data": self.data,
        }
        for key in ("step", "team", "actor", "task", "causation"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    @classmethod
    def from_cloudevent(cls, doc: dict[str, Any]) -> Event:
        """Inverse of :meth:`to_cloudevent`; raise ValueError on a malformed envelope."""
        try:
            etype = str(doc["type"]).removeprefix("accord.")
            return cls(
                id=str(doc["id"]),
                type=event_type(etype),
                case=str(doc["subject"]),
                process=str(doc["process"]),
                at=parse_iso(str(doc["time"])),
                seq=int(doc["seq"]),
                step=doc.get("step"),
                team=doc.get("team"),
                actor=doc.get("actor"),
                task=doc.get("task"),
                data=dict(doc.get("data") or {}),
                causation=doc.get("causation"),
                source=str(doc.get("source", "accord/central")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed event envelope: {exc}") from None


def iso(at: float) -> str:
    """Seconds since the epoch as an RFC 3339 UTC timestamp with microseconds: the text of
    ``datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds")`` with ``Z``, in
    about 40% of the time (every event relayed is stamped so). The microseconds are rounded half
    to even, as ``datetime`` rounds them; the date and time of day come from a cache per
    second."""
    if at < 0:
        return _iso_slow(at)
    frac, whole = math.modf(at)
    us = round(frac * 1e6)
    second = int(whole)
    if us >= 1_000_000:
        second += 1
        us -= 1_000_000
    return f"{_iso_second(second)}.{us:06d}Z"


@lru_cache(maxsize=1024)
def _iso_second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _iso_slow(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> float:
    """RFC 3339 / ISO-8601 timestamp to seconds since the epoch (naive times are UTC).

    The form :func:`iso` writes (every event received from the bus has one) is read without
    ``datetime``, with the seconds from a cache, to the same float: ``datetime.timestamp``
    divides the whole microseconds by a million, as this does."""
    if len(text) == 27 and text[19] == "." and text[26] == "Z":
        us = text[20:26]
        if us.isascii() and us.isdigit():
            return (_epoch_second(text[:19]) * 1_000_000 + int(us)) / 1_000_000
    return _parse_iso(text)


@lru_cache(maxsize=1024)
def _epoch_second(text: str) -> int:
    return int(_parse_iso(text + "Z"))


@lru_cache(maxsize=1024)
def _parse_iso(text: str) -> float:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()
