"""A web app over a real store with real users, for the API tests (the fixtures that use
this are in conftest.py).

``world`` serves a SQLite file; ``any_world`` runs the same tests once on SQLite and once on
PostgreSQL (127.0.0.1:5432, database ``test``; override with ACCORD_TEST_PG), skipped locally
when the server is not there and failing the run when ``CI`` is set. Each world has:

- two processes: ``vetting`` (owned by olivia; teams compliance, sales, management) and
  ``other`` (owned by zed; team it);
- one user per role, plus an outsider: kofi (compliance member), ana (sales member), carla
  (compliance lead), olivia (owner of vetting), admin, and ivan (member of it, an outsider to
  vetting) and zed (owner of other);
- a bearer token per user, and helpers to start cases and reach tasks in a given state.

The app runs without its background worker (no timers or handlers are needed here), so every
change a test sees was made by the request it sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
from fastapi.testclient import TestClient

from accord.web.app import create_app
from accord.web.config import WebConfig

PASSWORD = "correct horse battery"

VETTING = """
process: vetting
version: 1
name: Vetting
owner: olivia
teams:
  compliance:
    assignment: pull
    lead: carla
    members: [kofi, carla]
  sales:
    assignment: pull
    members: [ana]
  management:
    members: [olivia]
steps:
  - id: review
    name: Review
    team: compliance
    next:
      - {to: alt, when: route == "alt"}
      - {to: followup, default: true}
  - id: followup
    team: sales
    outputs: [note]
    contract:
      type: object
      required: [note]
      properties:
        note: {type: string, minLength: 1}
    next: done
  - id: alt
    team: sales
    next: done
  - id: done
    type: end
"""

OTHER = """
process: other
version: 1
owner: zed
teams:
  it:
    assignment: pull
    members: [zed, ivan]
steps:
  - id: fix
    team: it
    next: done
  - id: done
    type: end
"""

# (id, teams, roles)
USERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "kofi": (("compliance",), ("member",)),
    "ana": (("sales",), ("member",)),
    "carla": (("compliance",), ("member", "lead")),
    "olivia": (("management",), ("member", "owner")),
    "admin": ((), ("admin",)),
    "ivan": (("it",), ("member",)),
    "zed": (("it",), ("member", "owner")),
}


@dataclass
class World:
    """A served app, its users' tokens, and shortcuts for arranging cases."""

    client: TestClient
    tokens: dict[str, str]
    url: str
    counter: list[int] = field(default_factory=lambda: [0])

    @property
    def app(self) -> Any:
        return self.client.app

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def call(self, user: str, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {**self.auth(user), **kw.pop("headers", {})}
        return self.client.request(method, f"/api/v1{path}", headers=headers, **kw)

    def ok(self, user: str, method: str, path: str, **kw: Any) -> Any:
        r = self.call(user, method, path, **kw)
        assert r.status_code < 300, (r.status_code, r.text)
        return r.json() if r.content else None

    def new_case(self, process: str = "vetting", **data: Any) -> str:
        self.counter[0] += 1
        case_id = f"t{self.counter[0]}-{uuid.uuid4().hex[:8]}"
        body = {"process": process, "id": case_id, "data": {"route": "main", **data}}
        self.ok("admin", "POST", "/cases", json=body)
        return case_id

    def task(self, case_id: str, step: str = "review") -> dict[str, Any]:
        task: dict[str, Any] = self.ok("admin", "GET", f"/tasks/{case_id}:{step}:1")
        return task

    def claimed_by(self, member: str, step: str = "review") -> str:
        """A new case whose first task ``member`` holds."""
        case_id = self.new_case()
        self.ok(member, "POST", f"/tasks/{case_id}:{step}:1/claim")
        return f"{case_id}:{step}:1"

    def failed_task(self) -> str:
        """A new case whose review failed for good (the case is paused by the incident)."""
        case_id = self.new_case()
        tid = f"{case_id}:review:1"
        self.ok("kofi", "POST", f"/tasks/{tid}/fail", json={"error": "no", "retryable": False})
        return tid

    def events(self, case_id: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.ok("admin", "GET", f"/cases/{case_id}/events")
        return events


def _write_definitions(folder: Path) -> tuple[Path, ...]:
    files = []
    for name, text in (("vetting", VETTING), ("other", OTHER)):
        f = folder / f"{name}.yaml"
        f.write_text(text, encoding="utf-8")
        files.append(f)
    return tuple(files)


def make_world(url: str, folder: Path) -> World:
    """A world whose client has not started the app's lifespan (no thread runs): close it
    with ``world.app.state.runtime.close()``."""
    config = WebConfig(
        db=url, processes=_write_definitions(folder), worker=False, secret="test-secret"
    )
    app = create_app(config)
    accounts = app.state.accounts
    tokens = {}
    for uid, (teams, roles) in USERS.items():
        accounts.add(uid, name=uid.title(), password=PASSWORD, teams=teams, roles=roles)
        tokens[uid] = accounts.issue_token(uid, "tests")
    return World(TestClient(app, base_url="http://testserver"), tokens, url)


def build_world(url: str, folder: Path) -> Iterator[World]:
    """A world with the app's lifespan running, for a fixture to yield."""
    world = make_world(url, folder)
    try:
        with world.client:
            yield world
    finally:
        world.app.state.runtime.close()


def login(client: TestClient, user: str, password: str = PASSWORD) -> httpx.Response:
    """Sign in through the login form, as a browser does (CSRF token from the page)."""
    import re

    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None, page.text
    return client.post(
        "/login",
        data={"username": user, "password": password, "csrf_token": token.group(1), "next": "/"},
        follow_redirects=False,
    )
