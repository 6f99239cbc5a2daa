"""What the SQL backends share: the columns they read, rows to objects, and task filters."""

from __future__ import annotations

from typing import Any

import orjson

from accord.events import Event, event_type
from accord.stores.base import TaskRow

TASK_COLS = (
    "id, case_id, process, step, kind, team, role, status, assignee, ready_at, claimed_at,"
    " attempt, hub"
)


def task_row(r: Any) -> TaskRow:
    """A ``SELECT TASK_COLS`` row as a TaskRow."""
    return TaskRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
                   bool(r[12]))  # fmt: skip


def event_row(r: Any) -> Event:
    """An events row (pos, id, case_id, seq, type, at, process, ..., data as JSON text, ...)."""
    return Event(
        id=r[1],
        type=event_type(r[4]),
        case=r[2],
        seq=r[3],
        at=r[5],
        process=r[6],
        step=r[7],
        team=r[8],
        actor=r[9],
        task=r[10],
        data=orjson.loads(r[11]),
        causation=r[12],
        source=r[13],
    )


def task_filter(placeholder: str, **filters: str | None) -> tuple[str, list[Any]]:
    """``WHERE col = ? AND ...`` for the filters given (None means any), in the driver's
    placeholder style (``?`` for sqlite3, ``%s`` for psycopg)."""
    where: list[str] = []
    args: list[Any] = []
    for col, val in filters.items():
        if val is not None:
            where.append(f"{col} = {placeholder}")
            args.append(val)
    return (" WHERE " + " AND ".join(where) if where else ""), args
