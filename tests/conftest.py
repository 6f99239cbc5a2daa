"""Real services for integration tests: skipped locally when absent, a failure under CI."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgkit import PG_URL, require_postgres

NATS_URL = os.environ.get("ACCORD_TEST_NATS", "nats://127.0.0.1:4222")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def nats_url() -> str:
    """The NATS JetStream server tests use (started by .ci/run in CI)."""
    if not _reachable("127.0.0.1", 4222):
        if os.environ.get("CI"):
            pytest.fail("NATS JetStream is not reachable on 127.0.0.1:4222 (CI must start it)")
        pytest.skip("NATS JetStream is not running on 127.0.0.1:4222")
    return NATS_URL


@pytest.fixture(params=["sqlite", "postgres"])
def shared_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store several engines can share: a SQLite file, or a fresh PostgreSQL schema (the
    server .ci/run starts; dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/shared.db"
        return
    target = f"{PG_URL}?schema=accord_test_{uuid.uuid4().hex[:12]}"
    require_postgres(target)
    from accord.stores.postgres import drop_schema

    try:
        yield target
    finally:
        drop_schema(target)
