"""What the kernel asks its driver to do. The driver performs the I/O; the kernel never does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from accord.fastinit import fast_init


@dataclass(frozen=True, slots=True)
class ScheduleTimer:
    """Deliver FireTimer(timer_id) at ``due``."""

    timer_id: str
    due: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    """The timer is no longer needed (firing it anyway is harmless)."""

    timer_id: str


@fast_init
@dataclass(frozen=True, slots=True)
class RunHandler:
    """Run an automated step's handler. ``key`` is the idempotency key for its effects."""

    task_id: str
    step: str
    handler: str
    key: str
    attempt: int
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OfferTask:
    """A human task is ready: the hub may allocate it (push) or the team may claim it (pull)."""

    task_id: str
    step: str
    team: str | None
    role: str | None
    hub: bool


Command = ScheduleTimer | CancelTimer | RunHandler | OfferTask
