"""ISO-8601 durations (``PT4H``, ``P2D``, ``P1W``) and repeating cycles (``R3/PT1H``).

Months and years have no fixed length, so they are refused rather than guessed; a cron string
(seen in some Camunda models) is refused with a message saying so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_SECONDS = {"weeks": 604800.0, "days": 86400.0, "hours": 3600.0, "minutes": 60.0, "seconds": 1.0}


def parse_duration(text: str) -> float:
    """Return the number of seconds in an ISO-8601 duration; raise ValueError with the reason."""
    s = str(text).strip().upper()
    m = _DURATION.match(s)
    if not m:
        if re.match(r"^P(\d+Y|\d+M)", s):
            raise ValueError(f"{text!r}: years and months have no fixed length; use days or weeks")
        if len(str(text).split()) >= 5:
            raise ValueError(f"{text!r} looks like a cron expression; use an ISO-8601 duration")
        raise ValueError(f"{text!r} is not an ISO-8601 duration (e.g. PT30M, PT4H, P2D)")
    return sum(float(v) * _SECONDS[k] for k, v in m.groupdict().items() if v)


@dataclass(frozen=True, slots=True)
class Cycle:
    """A repeating interval: ``repeat`` times (None = unbounded) every ``every`` seconds."""

    repeat: int | None
    every: float


def parse_cycle(text: str) -> Cycle:
    """Parse ``R3/PT1H`` or ``R/PT1H``; raise ValueError with the reason."""
    s = str(text).strip().upper()
    m = re.match(r"^R(\d*)/(P.+)$", s)
    if not m:
        raise ValueError(f"{text!r} is not an ISO-8601 repeating interval (e.g. R3/PT1H)")
    return Cycle(int(m.group(1)) if m.group(1) else None, parse_duration(m.group(2)))


def format_duration(seconds: float) -> str:
    """Format seconds as a compact ISO-8601 duration (inverse of :func:`parse_duration`)."""
    if seconds <= 0:
        return "PT0S"
    days, rest = divmod(float(seconds), 86400.0)
    hours, rest = divmod(rest, 3600.0)
    minutes, secs = divmod(rest, 60.0)
    out = "P" + (f"{int(days)}D" if days else "")
    t = ""
    if hours:
        t += f"{int(hours)}H"
    if minutes:
        t += f"{int(minutes)}M"
    if secs:
        t += f"{secs:g}S"
    return out + ("T" + t if t else "")
