"""The PostgreSQL server the tests use, and what they do when it is not there.

Lives at the top of tests/ (not in conftest) so test modules and kits anywhere below can import
it by name. The server is the one CI starts (.ci/run): 127.0.0.1:5432, database ``test``;
ACCORD_TEST_PG names another.
"""

from __future__ import annotations

import os

import pytest

from accord.stores import open_store

PG_URL = os.environ.get("ACCORD_TEST_PG", "postgresql://127.0.0.1:5432/test")


def require_postgres(url: str = PG_URL) -> None:
    """Skip (locally) or fail (under CI) when the store at ``url`` cannot be opened."""
    try:
        open_store(url).close()
    except Exception as exc:
        message = f"PostgreSQL at {url!r} is not reachable: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
