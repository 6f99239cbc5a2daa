"""Status boards of choreographed processes, fed from the bus (``accord serve --bus URL``).

Nobody holds a choreographed case whole, so the server listens, like ``accord board``, to every
event the team nodes publish for a process and keeps one :class:`StatusBoard` per process id.
Without a bus there are no boards (the central engine's own cases are in the API's case views).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

import orjson

from accord.buses.base import Bus, Message
from accord.choreo.board import StatusBoard
from accord.events import Event
from accord.model.types import ProcessDefinition

log = logging.getLogger("accord.web")


class Boards:
    """One status board per process id, each subscribed to ``accord.<id>.>`` on the bus."""

    def __init__(self, bus_url: str | None) -> None:
        self.bus_url = bus_url
        self._bus: Bus | None = None
        self._boards: dict[str, StatusBoard] = {}
        self._lock = threading.Lock()

    @property
    def bus(self) -> Bus | None:
        """The bus listened to, once started."""
        return self._bus

    @property
    def attached(self) -> bool:
        """Whether a bus is configured."""
        return self.bus_url is not None

    def start(self, definitions: Iterable[ProcessDefinition]) -> None:
        """Connect to the bus and follow every process given."""
        if self.bus_url is None:
            return
        from accord.buses import open_bus

        self._bus = open_bus(self.bus_url)
        for d in definitions:
            self.follow(d)

    def follow(self, d: ProcessDefinition) -> None:
        """Follow a process (its latest version's definition draws the expected steps)."""
        if self._bus is None:
            return
        with self._lock:
            known = self._boards.get(d.id)
            if known is not None:
                if known.d.version < d.version:
                    known.d = d
                return
            board = self._boards[d.id] = StatusBoard(d)

        def hear(msg: Message) -> None:
            try:
                e = Event.from_cloudevent(orjson.loads(msg.data))
            except (ValueError, orjson.JSONDecodeError):
                return
            with self._lock:
                board.observe(e)

        self._bus.subscribe(f"accord.{d.id}.>", f"web-board-{d.id}", hear)

    def view(self, process_id: str) -> dict[str, Any] | None:
        """A board as plain data, or None when that process has none."""
        with self._lock:
            board = self._boards.get(process_id)
            if board is None:
                return None
            cases = board.view(time.time())
            return {"process": process_id, "counts": board.counts(), "cases": cases}

    def close(self) -> None:
        """Stop listening."""
        if self._bus is not None:
            try:
                self._bus.close()
            except Exception as exc:
                log.warning("closing the bus failed: %s", exc)
            self._bus = None
        with self._lock:
            self._boards.clear()
