"""Stores behind one protocol, chosen from a URL."""

from __future__ import annotations

from pathlib import Path

from accord.errors import StoreError
from accord.stores.base import CaseRow, CaseWrite, ConcurrencyError, Store, TaskRow


def open_store(url: str) -> Store:
    """Open (and migrate) the store a URL names: ``sqlite:///file.db``, ``memory://``.

    A bare path is taken as a SQLite file.
    """
    if url.startswith(("sqlite:", "memory:")):
        from accord.stores.sqlite import SqliteStore

        return SqliteStore(url)
    if url.startswith(("postgresql:", "postgres:")):
        raise StoreError("PostgreSQL support is not installed in this version of accord")
    if "://" not in url:
        return open_store("sqlite:///" + str(Path(url)))
    raise StoreError(f"unknown store URL {url!r} (use sqlite:///path.db or memory://)")


__all__ = ["CaseRow", "CaseWrite", "ConcurrencyError", "Store", "TaskRow", "open_store"]
