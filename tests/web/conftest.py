"""Fixtures: ``world`` (SQLite) and ``any_world`` (SQLite, then PostgreSQL); see webkit.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from webkit import World, build_world

from pgkit import PG_URL, require_postgres


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("web")
    yield from build_world(f"sqlite:///{folder}/web.db", folder)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def any_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("web")
    if request.param == "sqlite":
        yield from build_world(f"sqlite:///{folder}/web.db", folder)
        return
    url = f"{PG_URL}?schema=accord_web_{uuid.uuid4().hex[:12]}"
    require_postgres(url)
    try:
        yield from build_world(url, folder)
    finally:
        from accord.stores.postgres import drop_schema

        drop_schema(url)
