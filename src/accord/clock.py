"""Injected time. The kernel never reads a clock; runtimes take one of these.

Real time in production; virtual time in tests and the simulator, where waiting means jumping
to the next due event, so that months of simulated work run in seconds through the same code.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

# Virtual runs start on a Monday at midnight UTC so that working hours line up with weekdays.
EPOCH = datetime(2026, 1, 5, tzinfo=UTC).timestamp()


class Clock(Protocol):
    """What a runtime needs from time."""

    def now(self) -> float:
        """Seconds since the Unix epoch."""

    def sleep_until(self, t: float) -> None:
        """Return once ``now() >= t``."""


class SystemClock:
    """Wall-clock time."""

    def now(self) -> float:
        """The current time."""
        return time.time()

    def sleep_until(self, t: float) -> None:
        """Sleep (really) until ``t``."""
        delay = t - time.time()
        if delay > 0:
            time.sleep(delay)


class VirtualClock:
    """Time that moves only when told to. ``sleep_until`` jumps instead of waiting."""

    def __init__(self, start: float = EPOCH) -> None:
        self._now = float(start)

    def now(self) -> float:
        """The current virtual time."""
        return self._now

    def advance_to(self, t: float) -> None:
        """Move forward to ``t`` (never backwards)."""
        self._now = max(self._now, float(t))

    def advance(self, seconds: float) -> None:
        """Move forward by ``seconds``."""
        self._now += max(0.0, float(seconds))

    def sleep_until(self, t: float) -> None:
        """Jump to ``t``."""
        self.advance_to(t)
