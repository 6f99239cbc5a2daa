"""The in-process bus: the embedded default, and the one the simulator uses.

Messages are queued and delivered in publication order by ``pump`` (never from inside a
handler, so a node never re-enters itself). A ``schedule`` hook lets a driver decide when each
delivery happens: the simulator uses it to add network latency on its virtual clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from accord.buses.base import BatchHandler, Handler, Message, matches

Schedule = Callable[[Callable[[], None]], None]


class MemoryBus:
    """A bus inside one process (``memory://``)."""

    def __init__(self, url: str = "memory://", schedule: Schedule | None = None) -> None:
        self.url = url
        self._subs: list[tuple[str, str, Handler]] = []
        self._queue: deque[tuple[Handler, Message]] = deque()
        self._pumping = False
        self._schedule = schedule
        self.published = 0
        self.delivered = 0

    def publish(self, subject: str, data: bytes, msg_id: str) -> None:
        """Queue the message for every matching subscriber."""
        self.published += 1
        msg = Message(subject, data, msg_id)
        for pattern, _durable, handler in self._subs:
            if matches(pattern, subject):
                if self._schedule is not None:
                    self._schedule(self._later(handler, msg))
                else:
                    self._queue.append((handler, msg))
        if self._schedule is None:
            self.pump()

    def publish_many(self, items: list[tuple[str, bytes, str]]) -> None:
        """Publish each item in order."""
        for subject, data, msg_id in items:
            self.publish(subject, data, msg_id)

    def _later(self, handler: Handler, msg: Message) -> Callable[[], None]:
        return lambda: self._deliver(handler, msg)

    def _deliver(self, handler: Handler, msg: Message) -> None:
        self.delivered += 1
        handler(msg)

    def pump(self) -> None:
        """Deliver queued messages until none are left."""
        if self._pumping:
            return
        self._pumping = True
        try:
            while self._queue:
                handler, msg = self._queue.popleft()
                self._deliver(handler, msg)
        finally:
            self._pumping = False

    def subscribe(
        self,
        subject: str,
        durable: str,
        handler: Handler,
        batch_handler: BatchHandler | None = None,
    ) -> None:
        """Subscribe (the durable name only matters to brokers that persist; messages come
        one at a time, so ``batch_handler`` is not used)."""
        self._subs.append((subject, durable, handler))

    def close(self) -> None:
        """Drop every subscription."""
        self._subs.clear()
        self._queue.clear()
