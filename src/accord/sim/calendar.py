"""Working hours: when a synthetic member may start, and when work of a given length ends."""

from __future__ import annotations

from datetime import UTC, datetime

from accord.sim.scenario import TeamScenario

DAY = 86400.0


def _weekday(day_start: float) -> int:
    return datetime.fromtimestamp(day_start, UTC).weekday()


def next_open(t: float, hours: TeamScenario) -> float:
    """The first moment at or after ``t`` when the team works."""
    if hours.always:
        return t
    for _ in range(15):
        day_start = (t // DAY) * DAY
        sec = t - day_start
        if _weekday(day_start) in hours.days and sec < hours.close_s:
            return max(t, day_start + hours.open_s)
        t = day_start + DAY
    raise ValueError("a team with working hours must work on at least one day a week")


def add_working(t: float, seconds: float, hours: TeamScenario) -> float:
    """When ``seconds`` of work started at ``t`` end, counting only working hours."""
    if hours.always:
        return t + seconds
    left = seconds
    for _ in range(100_000):
        t = next_open(t, hours)
        day_start = (t // DAY) * DAY
        available = day_start + hours.close_s - t
        if left <= available:
            return t + left
        left -= available
        t = day_start + hours.close_s
    raise ValueError("work too long to schedule")
