"""Stores behind one protocol, chosen from a URL."""

from __future__ import annotations

from pathlib import Path

from accord.errors import StoreError
from accord.stores.base import (
    CaseRow,
    CaseWrite,
    ConcurrencyError,
    ReplicaRow,
    Store,
    StoreUnavailable,
    TaskRow,
)


def open_store(url: str) -> Store:
    """Open (and migrate) the store a URL names: ``sqlite:///file.db``, ``memory://``,
    ``postgresql://host:5432/db`` (optionally ``?schema=name``; see accord.stores.postgres).

    A bare path is taken as a SQLite file.
    """
    if url.startswith(("sqlite:", "memory:")):
        from accord.stores.sqlite import SqliteStore

        return SqliteStore(url)
    if url.startswith(("postgresql:", "postgres:")):
        from accord.stores.postgres import PostgresStore

        return PostgresStore(url)
    if "://" not in url:
        return open_store("sqlite:///" + str(Path(url)))
    raise StoreError(
        f"unknown store URL {url!r} (use sqlite:///path.db, memory:// or postgresql://host/db)"
    )


__all__ = [
    "CaseRow",
    "CaseWrite",
    "ConcurrencyError",
    "ReplicaRow",
    "Store",
    "StoreUnavailable",
    "TaskRow",
    "open_store",
]
