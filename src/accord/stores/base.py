"""The storage seam: what the engine needs from a database, whichever database it is.

A store keeps the append-only event log, each case's current state (a projection of its events,
kept so that a restart need not replay history), the task queue and the timers, plus the
idempotency records handlers write. One ``commit`` call writes a whole batch atomically: either
every case in it moves on, or none does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from accord.errors import StoreError
from accord.events import Event
from accord.kernel.state import CaseState, Task


@dataclass(slots=True)
class CaseWrite:
    """Everything one case's transitions in a batch change. ``expected_version`` guards races:
    None means the case is new; otherwise the stored version must still match."""

    state: CaseState
    expected_version: int | None
    events: list[Event] = field(default_factory=list)
    tasks: dict[str, Task] = field(default_factory=dict)
    timers_set: dict[str, float] = field(default_factory=dict)
    timers_cleared: set[str] = field(default_factory=set)
    # The state the stored row holds at ``expected_version``, when the writer knows it (the
    # state it read): a store may then leave unchanged indexed columns alone.
    stored: CaseState | None = None


@dataclass(frozen=True, slots=True)
class TaskRow:
    """A task as the queue sees it (no case state needed to list or assign work)."""

    id: str
    case_id: str
    process: str
    step: str
    kind: str
    team: str | None
    role: str | None
    status: str
    assignee: str | None
    ready_at: float
    claimed_at: float | None
    attempt: int
    hub: bool


@dataclass(frozen=True, slots=True)
class CaseRow:
    """A case's headline (no state blob)."""

    id: str
    process: str
    status: str
    started_at: float
    ended_at: float | None
    updated_at: float
    incident: str | None


@dataclass(frozen=True, slots=True)
class ReplicaRow:
    """A live engine replica or worker, as its last heartbeat described it."""

    id: str
    role: str
    host: str
    pid: int
    started_at: float
    seen_at: float
    state: str
    info: dict[str, Any] = field(default_factory=dict)


class Store(Protocol):
    """Implemented by every backend; the contract tests in tests/contract run against each."""

    url: str
    # Successful commit() calls through this object so far (not other processes'): a reader of
    # the log, such as a team node's relay, looks again only when it moved.
    commits: int

    def close(self) -> None:
        """Release connections. The store cannot be used afterwards."""

    def schema_version(self) -> int:
        """The migration number the database is at."""

    def put_definition(self, key: str, name: str, source: str, at: float) -> None:
        """Record a deployed definition's source (idempotent per key; an empty source never
        replaces a stored one, so a replica that deployed from the store keeps it intact)."""

    def definitions(self) -> list[tuple[str, str, str]]:
        """Every deployed definition as (key, name, source)."""

    def load_case(self, case_id: str) -> tuple[CaseState, int] | None:
        """The case's state and version, or None."""

    def load_cases(self, case_ids: Sequence[str]) -> dict[str, tuple[CaseState, int]]:
        """States and versions of several cases in one read (unknown ids are left out)."""

    def commit(self, writes: list[CaseWrite], at: float) -> list[int]:
        """Write a batch atomically; return each case's new version.

        Raise :class:`ConcurrencyError` (changing nothing) when a case's version moved on.
        """

    def events(
        self, case_id: str | None = None, after: int = 0, limit: int | None = None
    ) -> Iterator[tuple[int, Event]]:
        """The event log in append order, as (global position, event)."""

    def tasks(
        self,
        *,
        team: str | None = None,
        assignee: str | None = None,
        status: str | None = None,
        kind: str | None = None,
        case_id: str | None = None,
        limit: int | None = None,
    ) -> list[TaskRow]:
        """Tasks matching every filter given, oldest ready first (ended cases' tasks are all
        completed or cancelled, so a filter on an open status sees open cases only)."""

    def cases(self, status: str | None = None, limit: int | None = None) -> list[CaseRow]:
        """Cases, oldest first."""

    def count_cases(self) -> dict[str, int]:
        """Number of cases per status."""

    def due_timers(self, now: float, limit: int = 1000) -> list[tuple[str, str, float]]:
        """Timers due at or before ``now`` as (timer id, case id, due), earliest first."""

    def delete_timers(self, timer_ids: list[str]) -> None:
        """Remove timers outright (used for timers of cases that have ended)."""

    def next_timer(self) -> float | None:
        """The earliest due time of any timer."""

    def lease_tasks(
        self,
        owner: str,
        now: float,
        until: float,
        limit: int,
        *,
        kind: str = "automated",
        teams: Sequence[str] | None = None,
    ) -> list[TaskRow]:
        """Take up to ``limit`` ready tasks of ``kind`` (of running cases, in ``teams`` if given)
        that nobody holds a live lease on, oldest first, leasing them to ``owner`` until
        ``until``. Concurrent callers never get the same task while its lease lasts. A commit
        that writes a task ends its lease."""

    def lease_timers(
        self, owner: str, now: float, until: float, limit: int
    ) -> list[tuple[str, str, float]]:
        """Like :meth:`due_timers`, but only timers nobody holds a live lease on, leased to
        ``owner`` until ``until``, so that replicas firing timers never fire the same one."""

    def renew_leases(self, owner: str, until: float, ids: Sequence[str]) -> int:
        """Extend ``owner``'s leases on these task or timer ids to ``until`` (a live replica's
        heartbeat renews the work it is doing, so long handlers keep their jobs while a dead
        replica's leases run out); return how many."""

    def release_leases(self, owner: str, ids: Sequence[str] | None = None) -> int:
        """End ``owner``'s leases on these ids (all of them when None: a replica shutting
        down); return how many."""

    def member_loads(self, members: Sequence[str]) -> dict[str, int]:
        """How many claimed tasks each member holds (members holding none are left out)."""

    def heartbeat(self, replica: ReplicaRow) -> None:
        """Record that a replica is alive (and what it is doing)."""

    def replicas(self) -> list[ReplicaRow]:
        """Every replica that has sent a heartbeat and not signed off, oldest first."""

    def forget_replica(self, replica_id: str) -> None:
        """Remove a replica's heartbeat (it shut down cleanly)."""

    def record_effect(self, key: str, kind: str, value: str, at: float) -> bool:
        """Record a handler's effect under its idempotency key; False if it was already there."""

    def effects(self, kind: str | None = None) -> list[tuple[str, str, str]]:
        """Recorded effects as (key, kind, value)."""

    def get_meta(self, key: str) -> str | None:
        """A small persistent setting (used by runs to resume)."""

    def set_meta(self, key: str, value: str) -> None:
        """Set a small persistent setting."""

    def run_sql(self, statement: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on accord's own side tables in its own transaction; return its
        rows (none for a write). Placeholders are ``?`` whatever the backend.

        For small tables outside the unit of work (the web app's users, sessions and tokens:
        accord.web.accounts); a duplicate key raises :class:`ConcurrencyError`.
        """


class StoreUnavailable(StoreError):
    """The database cannot be reached right now (down, restarting, network). Retry later.

    A commit interrupted this way may or may not have been applied: callers reload before
    trying again, and the version check and idempotency keys make the retry safe.
    """


class ConcurrencyError(Exception):
    """Another writer changed a case first; reload and try again."""
