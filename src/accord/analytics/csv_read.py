"""Reading CSV event logs: one row per event, columns named by the user or recognised by name.

Column names are matched case-insensitively against the names process-mining tools write
(``case:concept:name``, ``Case ID``, ``activity``, ``time:timestamp``, ...). Every value is
read as text and timestamps are parsed by :mod:`accord.analytics.timestamps`, so a column
with several layouts, or some garbage, is read as far as it can be and the rest is counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from accord.analytics.frame import EventLog, LogError, Skipped
from accord.analytics.xes_read import finish, is_gzip

GUESSES: dict[str, tuple[str, ...]] = {
    "case": ("case:concept:name", "case_id", "case id", "caseid", "case", "case_concept_name"),
    "activity": ("concept:name", "activity", "activity_name", "event", "task", "action"),
    "ts": (
        "time:timestamp",
        "timestamp",
        "complete_timestamp",
        "complete timestamp",
        "end_timestamp",
        "end time",
        "time",
        "date",
    ),
    "start_ts": ("start_timestamp", "start timestamp", "start_time", "start time", "time:start"),
    "lifecycle": ("lifecycle:transition", "lifecycle", "transition"),
    "resource": ("org:resource", "resource", "user", "performer", "actor"),
    "team": ("org:group", "group", "team", "department"),
}
REQUIRED = ("case", "activity", "ts")
OPTION = {
    "case": "--case",
    "activity": "--activity",
    "ts": "--time",
    "start_ts": "--start",
    "lifecycle": "--lifecycle",
    "resource": "--resource",
    "team": "--team",
}


@dataclass(frozen=True, slots=True)
class Columns:
    """Which source column feeds which log column (None: recognise it by name)."""

    case: str | None = None
    activity: str | None = None
    time: str | None = None
    start: str | None = None
    lifecycle: str | None = None
    resource: str | None = None
    team: str | None = None

    def chosen(self) -> dict[str, str | None]:
        """Log column -> source column as the user gave it."""
        return {
            "case": self.case,
            "activity": self.activity,
            "ts": self.time,
            "start_ts": self.start,
            "lifecycle": self.lifecycle,
            "resource": self.resource,
            "team": self.team,
        }


def read_csv(
    path: str | Path, columns: Columns | None = None, separator: str | None = None
) -> EventLog:
    """Read a CSV (or gzipped CSV) event log; raise :class:`LogError` naming what is wrong."""
    path = Path(path)
    columns = columns or Columns()
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError as exc:
        raise LogError(f"{path}: cannot open: {exc.strerror or exc}") from None
    if is_gzip(path):
        import gzip

        with gzip.open(path, "rb") as g:
            head = g.read(65536)
    if not head.strip():
        raise LogError(f"{path}: the file is empty")
    sep = separator or _sniff(head)
    try:
        df = pl.read_csv(
            path,
            separator=sep,
            infer_schema=False,
            encoding="utf8-lossy",
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LogError(f"{path}: not a readable CSV file: {first}") from None
    mapping = _map(df.columns, columns, path)
    cols: dict[str, Any] = {target: df[source] for target, source in mapping.items()}
    notes = [f"columns: {', '.join(f'{t}={s!r}' for t, s in mapping.items())}"]
    return finish(cols, path=path, fmt="csv", skipped=Skipped(), notes=notes)


def _sniff(head: bytes) -> str:
    line = head.split(b"\n", 1)[0].decode("utf-8", "replace")
    counts = {c: line.count(c) for c in (",", ";", "\t", "|")}
    best = max(counts, key=lambda c: counts[c])
    return best if counts[best] else ","


def _map(found: list[str], columns: Columns, path: Path) -> dict[str, str]:
    lower = {c.strip().lower(): c for c in found}
    mapping: dict[str, str] = {}
    for target, given in columns.chosen().items():
        if given is not None:
            if given in found:
                mapping[target] = given
            elif given.lower() in lower:
                mapping[target] = lower[given.lower()]
            else:
                raise LogError(
                    f"{path}: no column {given!r} (given with {OPTION[target]}); "
                    f"the columns are: {', '.join(found)}"
                )
            continue
        for guess in GUESSES[target]:
            if guess in lower and lower[guess] not in mapping.values():
                mapping[target] = lower[guess]
                break
    missing = [t for t in REQUIRED if t not in mapping]
    if missing:
        need = ", ".join(f"{OPTION[t]} COLUMN" for t in missing)
        raise LogError(
            f"{path}: cannot tell which column holds the "
            f"{' and the '.join(_WHAT[t] for t in missing)}; name it with {need} "
            f"(the columns are: {', '.join(found)})"
        )
    return mapping


_WHAT = {"case": "case id", "activity": "activity", "ts": "timestamp"}
