"""Real services for integration tests: skipped locally when absent, a failure under CI."""

from __future__ import annotations

import os
import socket

import pytest

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
