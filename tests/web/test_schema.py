"""schemathesis over the whole OpenAPI document, as an admin: whatever it sends, no response
is a 5xx and every response matches the schema the document gives for it.

The event stream is left out: it is endless by design (tests/web/test_api.py covers it). The
world holds cases in every state first, so the lists and details it returns are real ones.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from webkit import World, make_world

# schemathesis reads the schema when this module is imported, so the world is made then; its
# client does not start the app's lifespan, so nothing keeps running if no test here is run.
_folder = Path(tempfile.mkdtemp(prefix="accord-schema-"))
WORLD = make_world(f"sqlite:///{_folder}/web.db", _folder)


def _seed(world: World) -> None:
    world.claimed_by("kofi")
    world.failed_task()
    done = world.new_case(route="alt")
    world.ok("kofi", "POST", f"/tasks/{done}:review:1/complete", json={"feedback": {"rating": 3}})
    world.ok("ana", "POST", f"/tasks/{done}:alt:1/complete", json={})
    cancelled = world.new_case()
    world.ok("admin", "POST", f"/cases/{cancelled}/cancel", json={})
    world.ok("admin", "POST", "/cases", json={"process": "vetting", "id": "fixed-case",
                                              "data": {"route": "main"}})  # fmt: skip


_seed(WORLD)
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", WORLD.app).exclude(
    path="/api/v1/events/stream"
)


@pytest.fixture(scope="module", autouse=True)
def _close_world() -> Iterator[None]:
    yield
    WORLD.app.state.runtime.close()
    shutil.rmtree(_folder, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_schema(case: Any) -> None:
    case.call_and_validate(
        headers=WORLD.auth("admin"),
        checks=[not_a_server_error, response_schema_conformance],
    )


def test_openapi_document_lists_every_endpoint() -> None:
    doc = WORLD.client.get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    paths = set(doc["paths"])
    for path in ("/api/v1/processes", "/api/v1/cases", "/api/v1/cases/{case_id}/reroute",
                 "/api/v1/tasks/{task_id}/complete", "/api/v1/events/stream", "/api/v1/metrics",
                 "/api/v1/users", "/api/v1/processes/{process}/board"):  # fmt: skip
        assert path in paths, path
    # errors are documented as problem details
    err = doc["paths"]["/api/v1/cases/{case_id}"]["get"]["responses"]["404"]
    assert "application/problem+json" in err["content"]
