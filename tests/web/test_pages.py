"""The pages: who sees what, what anonymous visitors get, and that actions do what they say
(and nothing when refused). Run on SQLite and on PostgreSQL: the read models' SQL differs."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from webkit import login

from accord.central.engine import Engine
from accord.web.app import create_app
from accord.web.config import WebConfig
from pgkit import PG_URL, require_postgres

PASSWORD = "correct horse battery"
KYC = """
process: kyc
version: 1
name: KYC check
owner: olivia
teams:
  compliance:
    assignment: pull
    wip_limit: 3
    lead: carla
    members:
      - {id: kofi, name: Kofi, roles: [officer]}
      - {id: carla, name: Carla, roles: [officer, lead]}
      - {id: trainee, name: Trainee, roles: []}
  sales:
    assignment: pull
    members:
      - {id: ana, name: Ana, roles: [rep]}
      - {id: olivia, name: Olivia, roles: [rep]}
steps:
  - id: review
    name: Compliance review
    type: approval
    team: compliance
    role: officer
    inputs: [client]
    contract:
      type: object
      required: [risk, score]
      properties:
        risk: {enum: [low, medium, high]}
        score: {type: integer, minimum: 0, maximum: 100}
        flagged: {type: boolean}
        tags: {type: array}
    next:
      approve: onboard
      reject: rejected
  - id: onboard
    name: Onboard the client
    team: sales
    next: done
  - id: done
    type: end
  - id: rejected
    type: end
"""
USERS = {
    "kofi": (("compliance",), ("member",)),
    "trainee": (("compliance",), ("member",)),
    "carla": (("compliance",), ("member", "lead")),
    "ana": (("sales",), ("member",)),
    "olivia": (("sales",), ("member", "owner")),
    "admin": ((), ("admin",)),
    "ivan": (("it",), ("member",)),
}
PAGES = ["/", "/processes/kyc@1", "/processes/kyc@1/diagram.bpmn", "/processes/kyc@1/status",
         "/inbox", "/teams/compliance/board", "/dashboard", "/operator"]  # fmt: skip


@dataclass
class Site:
    app: Any
    clients: dict[str, TestClient]
    anonymous: TestClient

    @property
    def engine(self) -> Engine:
        engine: Engine = self.app.state.engine
        return engine

    def new_case(self) -> str:
        return self.engine.start_case(
            "kyc", {"client": "Acme"}, case_id=f"k-{uuid.uuid4().hex[:8]}"
        )

    def csrf(self, user: str, path: str = "/inbox") -> str:
        page = self.clients[user].get(path)
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found is not None, page.text
        return found.group(1)

    def post(self, user: str, path: str, data: dict[str, Any] | None = None, *,
             htmx: bool = False, csrf: bool = True) -> Any:  # fmt: skip
        form = dict(data or {})
        if csrf:
            form["csrf_token"] = self.csrf(user)
        headers = {"HX-Request": "true"} if htmx else {}
        return self.clients[user].post(path, data=form, headers=headers, follow_redirects=False)

    def task(self, task_id: str) -> Any:
        case_id = task_id.rsplit(":", 2)[0]
        return next(t for t in self.engine.tasks(case_id=case_id, status=None) if t.id == task_id)


def _site(url: str, folder: Path) -> Iterator[Site]:
    f = folder / "kyc.yaml"
    f.write_text(KYC, encoding="utf-8")
    app = create_app(WebConfig(db=url, processes=(f,), worker=False, secret="pages-secret"))
    for uid, (teams, roles) in USERS.items():
        app.state.accounts.add(uid, name=uid.title(), password=PASSWORD, teams=teams, roles=roles)
    with TestClient(app, base_url="http://testserver") as main:
        clients = {}
        for uid in USERS:
            c = main if uid == "kofi" else TestClient(app, base_url="http://testserver")
            assert login(c, uid, PASSWORD).status_code == 303
            clients[uid] = c
        yield Site(app, clients, TestClient(app, base_url="http://testserver"))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("pages")
    if request.param == "sqlite":
        yield from _site(f"sqlite:///{folder}/pages.db", folder)
        return
    url = f"{PG_URL}?schema=accord_pages_{uuid.uuid4().hex[:12]}"
    require_postgres(url)
    try:
        yield from _site(url, folder)
    finally:
        from accord.stores.postgres import drop_schema

        drop_schema(url)


@pytest.mark.parametrize("path", [*PAGES, "/cases/any", "/board"])
def test_anonymous_visitors_are_sent_to_login(site: Site, path: str) -> None:
    r = site.anonymous.get(path, follow_redirects=False)
    assert r.status_code == 302
    assert r.headers["location"].startswith("/login?next=")


def test_anonymous_actions_change_nothing(site: Site) -> None:
    case = site.new_case()
    r = site.anonymous.post(f"/tasks/{case}:review:1/claim", follow_redirects=False)
    assert r.status_code == 302
    assert site.task(f"{case}:review:1").status == "ready"


@pytest.mark.parametrize("user", ["kofi", "ana", "carla", "olivia", "admin", "ivan"])
def test_every_page_renders_for_every_signed_in_user(site: Site, user: str) -> None:
    case = site.new_case()
    for path in [*PAGES, f"/cases/{case}", "/processes/kyc@1/stats.json"]:
        r = site.clients[user].get(path)
        if path == "/operator" and user in ("kofi", "ana", "ivan"):
            assert r.status_code == 403, (path, r.status_code)
            assert "operator console is for leads" in r.text
            continue
        assert r.status_code == 200, (path, r.status_code, r.text[:500])
    nav = site.clients[user].get("/inbox").text
    assert ('href="/operator"' in nav) == (user in ("carla", "olivia", "admin"))


def test_the_dashboard_takes_its_window(site: Site) -> None:
    c = site.clients["ana"]
    assert "per day" in c.get("/dashboard?days=7").text
    assert "per week" in c.get("/dashboard?days=120").text  # long windows: weekly buckets
    assert "The 30 days to" in c.get("/dashboard?days=nonsense").text
    assert "The 366 days to" in c.get("/dashboard?days=5000").text


def test_pages_show_the_work(site: Site) -> None:
    case = site.new_case()
    task = f"{case}:review:1"
    inbox = site.clients["kofi"].get("/inbox").text
    assert f'data-task="{task}"' in inbox
    board = site.clients["kofi"].get("/teams/compliance/board").text
    assert re.search(rf'id="col-ready".*data-case="{case}".*id="col-progress"', board, re.S)
    stats = site.clients["kofi"].get("/processes/kyc@1/stats.json").json()
    assert stats["steps"]["review"]["ready"] >= 1
    assert stats["steps"]["review"]["element"] == "review"  # the shape in the exported diagram
    xml = site.clients["kofi"].get("/processes/kyc@1/diagram.bpmn")
    assert xml.headers["content-type"].startswith("application/xml")
    assert b"bpmndi:BPMNShape" in xml.content
    page = site.clients["ana"].get(f"/cases/{case}").text
    assert "case.started" in page and "Compliance review" in page
    assert site.clients["ana"].get("/cases/nope").status_code == 404
    assert site.clients["ana"].get("/processes/nope").status_code == 404
    assert site.clients["ana"].get("/teams/nope/board").status_code == 404


def test_a_member_claims_in_place_and_completes_with_the_contract_checked(site: Site) -> None:
    case = site.new_case()
    task = f"{case}:review:1"
    r = site.post("kofi", f"/tasks/{task}/claim", {"next": "/inbox"}, htmx=True)
    assert r.status_code == 200
    assert '<div id="inbox">' in r.text and f'data-task="{task}"' in r.text
    assert site.task(task).assignee == "kofi"
    # the form follows the contract: an outcome, an enum, bounded integer, a checkbox, JSON
    assert 'name="f.outcome"' in r.text and 'name="f.risk"' in r.text
    assert re.search(r'name="f.score" type="number"[^>]*min="0" max="100"', r.text)
    assert 'type="checkbox" name="f.flagged"' in r.text
    assert 'textarea name="f.tags"' in r.text

    bad = site.post("kofi", f"/tasks/{task}/complete",
                    {"next": "/inbox", "f.outcome": "approve", "f.score": "many",
                     "f.tags": "[1,"})  # fmt: skip
    assert bad.status_code == 422
    assert "must be a whole number" in bad.text and "must be JSON" in bad.text
    assert re.search(r"risk.*required", bad.text, re.S)
    assert site.task(task).status == "claimed"

    out_of_range = site.post("kofi", f"/tasks/{task}/complete",
                             {"next": "/inbox", "f.outcome": "approve", "f.risk": "low",
                              "f.score": "101"}, htmx=True)  # fmt: skip
    assert out_of_range.status_code == 200  # htmx swaps it in: errors shown inline
    assert "101 is greater than the maximum of 100" in out_of_range.text
    assert site.task(task).status == "claimed"

    before = _tasks_completed(site)
    ok = site.post("kofi", f"/tasks/{task}/complete",
                   {"next": "/inbox", "f.outcome": "approve", "f.risk": "low", "f.score": "7",
                    "f.flagged": "true", "f.tags": '["pep"]', "rating": "5",
                    "comment": "clear file"})  # fmt: skip
    assert ok.status_code == 303
    assert site.task(task).status == "completed"
    done = [e for e in site.engine.events(case) if e.type.value == "task.completed"]
    assert done[0].data["data"] == {"outcome": "approve", "risk": "low", "score": 7,
                                    "flagged": True, "tags": ["pep"],
                                    "feedback": {"rating": 5, "comment": "clear file"}}  # fmt: skip
    assert _tasks_completed(site) == before + 1
    board = site.clients["kofi"].get("/teams/compliance/board").text
    assert re.search(rf'id="col-done".*data-case="{case}"', board, re.S)


def _tasks_completed(site: Site) -> int:
    page = site.clients["admin"].get("/dashboard").text
    found = re.search(r'id="tasks-completed">(\d+)<', page)
    assert found is not None
    return int(found.group(1))


def test_refused_actions_change_nothing(site: Site) -> None:
    case = site.new_case()
    task = f"{case}:review:1"
    no_csrf = site.post("kofi", f"/tasks/{task}/claim", csrf=False)
    assert no_csrf.status_code == 403
    outsider = site.post("ivan", f"/tasks/{task}/claim", {"next": "/inbox"})
    assert outsider.status_code == 403
    assert "only its members may claim" in outsider.text
    wrong_role = site.post("trainee", f"/tasks/{task}/claim", {"next": "/inbox"})
    assert wrong_role.status_code == 409  # the kernel: the step needs the officer role
    assert site.task(task).status == "ready"
    inbox = site.clients["trainee"].get("/inbox").text
    assert re.search(rf'data-task="{re.escape(task)}".*?disabled', inbox, re.S)
    for user, action in (("kofi", "cancel"), ("ana", "pause"), ("carla", "reroute")):
        r = site.post(user, f"/cases/{case}/{action}", {"step": "onboard", "next": "/operator"})
        assert r.status_code == 403, (user, action, r.status_code)
    assert site.engine.case(case).status.value == "running"


def test_operators_pause_resume_reroute_retry_and_cancel(site: Site) -> None:
    case = site.new_case()
    assert site.post("carla", f"/cases/{case}/pause", {"next": "/operator"}).status_code == 303
    console = site.clients["carla"].get("/operator").text
    assert f'data-case="{case}"' in console
    r = site.post("olivia", f"/cases/{case}/resume", {"next": "/operator", "data": "[1]"})
    assert r.status_code == 422 and site.engine.case(case).status.value == "paused"
    r = site.post("olivia", f"/cases/{case}/resume",
                  {"next": "/operator", "data": '{"client": "Acme Corp"}'}, htmx=True)  # fmt: skip
    assert r.status_code == 200 and '<div id="ops">' in r.text
    state = site.engine.case(case)
    assert state.status.value == "running" and state.data["client"] == "Acme Corp"
    r = site.post("olivia", f"/cases/{case}/reroute", {"step": "onboard", "next": f"/cases/{case}"})
    assert r.status_code == 303
    assert [t.step for t in site.engine.case(case).active_tasks()] == ["onboard"]

    failing = site.new_case()
    task = f"{failing}:review:1"
    site.engine.fail(task, "kofi", "registry down", retryable=False)
    console = site.clients["carla"].get("/operator").text
    assert f'data-task="{task}"' in console
    assert site.post("kofi", f"/tasks/{task}/retry", {"next": "/operator"}).status_code == 403
    assert site.post("carla", f"/tasks/{task}/retry", {"next": "/operator"}).status_code == 303
    assert site.task(task).status == "ready"
    r = site.post("admin", f"/cases/{failing}/cancel", {"next": "/operator"})
    assert r.status_code == 303 and site.engine.case(failing).status.value == "cancelled"


def test_vendor_files_come_from_node_modules_and_nothing_else(site: Site) -> None:
    from accord.web.assets import node_modules

    c = site.anonymous
    assert c.get("/static/accord.css").status_code == 200
    assert c.get("/static/../pages.py").status_code == 404
    assert c.get("/static/vendor/left-pad/index.js").status_code == 404
    assert c.get("/static/vendor/htmx/../../package.json").status_code == 404
    if node_modules() is None:
        pytest.skip("node_modules is not installed (make install)")
    r = c.get("/static/vendor/htmx/htmx.min.js")
    assert r.status_code == 200 and b"htmx" in r.content[:2000]
    assert (
        c.get("/static/vendor/bpmn-js/bpmn-navigated-viewer.production.min.js").status_code == 200
    )
