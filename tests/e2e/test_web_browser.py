"""The web app in a real browser: a compliance member claims and completes a task, and the case
moves on the team board and the dashboard's count changes; every page is opened and
photographed (out/screenshots/web/, or ACCORD_SCREENSHOTS).

`accord serve` runs as a real subprocess over a seeded SQLite file; Debian's Chromium
(``apt-get install -y chromium``) is driven by Playwright (no browser download); bpmn-js and
htmx come from the project's node_modules (``make install`` runs ``npm ci``). Skipped locally
when one is missing; a failure under CI.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from accord.central.engine import Engine
from accord.model import load
from accord.stores import open_store
from accord.web.accounts import Accounts

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("ACCORD_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("ACCORD_SCREENSHOTS", str(ROOT / "out" / "screenshots" / "web")))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip
PASSWORD = "correct horse battery"

KYC = """
process: kyc
version: 1
name: KYC check
description: Compliance checks a new client before sales onboards them.
owner: olivia
teams:
  compliance:
    name: Compliance
    assignment: pull
    wip_limit: 2
    members:
      - {id: kofi, name: Kofi Mensah, roles: [officer]}
  sales:
    name: Sales
    assignment: pull
    members:
      - {id: ana, name: Ana Costa, roles: [rep]}
      - {id: olivia, name: Olivia Chen, roles: [lead]}
steps:
  - id: review
    name: Compliance review
    type: approval
    team: compliance
    role: officer
    sla: P1D
    inputs: [client]
    contract:
      type: object
      required: [risk, score]
      properties:
        risk: {enum: [low, medium, high]}
        score: {type: integer, minimum: 0, maximum: 100, title: Risk score}
        note: {type: string}
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


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    base: str
    cases: list[str]
    log: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`accord serve` over a SQLite file holding the KYC process, three cases and users."""
    if not (ROOT / "node_modules" / "bpmn-js").is_dir():
        _missing("bpmn-js is not installed: run `make install` (npm ci)")
    folder = tmp_path_factory.mktemp("web-e2e")
    definition = folder / "kyc.yaml"
    definition.write_text(KYC, encoding="utf-8")
    db = f"sqlite:///{folder / 'web.db'}"
    engine = Engine(open_store(db), [load(definition)])
    cases = [engine.start_case("kyc", {"client": f"Client {i}"}, case_id=f"kyc-{i}")
             for i in range(1, 4)]  # fmt: skip
    accounts = Accounts(engine.store)
    for uid, teams, roles in (("kofi", ("compliance",), ("member",)),
                              ("olivia", ("sales",), ("member", "owner"))):  # fmt: skip
        accounts.add(uid, name=uid.title(), password=PASSWORD, teams=teams, roles=roles)
    engine.close()
    port = _free_port()
    log = folder / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "accord.cli", "serve", "--db", db, "--port", str(port),
             "--log-level", "warning"],
            stdout=out, stderr=subprocess.STDOUT, cwd=folder,
            env={**os.environ, "ACCORD_NODE_MODULES": str(ROOT / "node_modules")},
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/login", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"accord serve did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)
        yield Server(base, cases, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM).is_file():
        _missing(f"Chromium is needed at {CHROMIUM}: apt-get install -y chromium")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, timeout=60_000)
        try:
            yield b
        finally:
            b.close()


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _login(page: Any, base: str, user: str) -> None:
    page.goto(f"{base}/inbox")
    assert "/login" in page.url  # anonymous: sent to sign in first
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login button[type=submit]")
    page.wait_for_url(re.compile(r".*/inbox$"))


def _diagram_ready(page: Any) -> None:
    page.wait_for_selector("#diagram[data-state=ready]", timeout=30_000)
    assert page.locator("#diagram .djs-element").count() > 5


def _count(page: Any, selector: str) -> int:
    return int(page.locator(selector).inner_text().replace(",", ""))


def test_a_compliance_member_claims_and_completes_a_task(server: Server, browser: Any) -> None:
    errors: list[str] = []
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    base = server.base
    _login(page, base, "kofi")

    page.goto(f"{base}/")
    assert page.locator("#catalogue >> text=KYC check").count() == 1
    _shot(page, "01-catalogue")

    page.goto(f"{base}/processes/kyc@1")
    _diagram_ready(page)
    review = page.locator("#diagram .ov", has_text="3 ready")
    assert review.count() == 1  # the live count on the review step
    _shot(page, "02-process")

    page.goto(f"{base}/dashboard")
    done_before = _count(page, "#tasks-completed")
    assert _count(page, "#running") == 3
    _shot(page, "03-dashboard-before")

    case = server.cases[0]
    task = f"{case}:review:1"
    page.goto(f"{base}/teams/compliance/board")
    assert page.locator(f"#col-ready .kcard[data-case='{case}']").count() == 1
    _shot(page, "04-board-before")

    # claim from the inbox (htmx: the inbox is swapped in place, no reload)
    page.goto(f"{base}/inbox")
    _shot(page, "05-inbox")
    page.evaluate("window.__marker = 'same page'")
    page.locator(f"#ready tr[data-task='{task}'] button").click()
    mine = page.locator(f"section.mine[data-task='{task}']")
    mine.wait_for()
    assert page.evaluate("window.__marker") == "same page"
    assert mine.locator("select[name='f.outcome']").count() == 1  # an approval: its outcome
    assert mine.locator("select[name='f.risk'] option").count() == 4  # choose... + 3 values
    assert mine.locator("input[name='f.score'][type=number][min='0'][max='100']").count() == 1
    assert mine.locator(".inputs", has_text="Client 1").count() == 1

    page.goto(f"{base}/teams/compliance/board")
    assert page.locator(f"#col-progress .kcard[data-case='{case}']").count() == 1
    assert page.locator("#col-progress .count").inner_text().strip() == "1 / 2"  # WIP limit
    _shot(page, "06-board-claimed")

    # a form the contract refuses is answered next to the inputs, and nothing is completed
    page.goto(f"{base}/inbox")
    mine = page.locator(f"section.mine[data-task='{task}']")
    mine.locator("select[name='f.outcome']").select_option("approve")
    mine.locator("select[name='f.risk']").select_option("low")
    mine.locator("input[name='f.score']").fill("250")
    mine.locator("button", has_text="Complete").click()
    page.locator(f"section.mine[data-task='{task}'] .field-error").wait_for()
    mine = page.locator(f"section.mine[data-task='{task}']")
    assert "100" in mine.locator(".field-error").inner_text()  # maximum 100
    _shot(page, "07-inbox-invalid")

    mine.locator("input[name='f.score']").fill("72")
    mine.locator("select[name='rating']").select_option("4")
    mine.locator("button", has_text="Complete").click()
    page.locator(".notice", has_text="is done").wait_for()
    assert page.locator(f"section.mine[data-task='{task}']").count() == 0
    _shot(page, "08-inbox-done")

    page.goto(f"{base}/teams/compliance/board")
    assert page.locator(f"#col-done .kcard[data-case='{case}']").count() == 1
    assert page.locator(f"#col-progress .kcard[data-case='{case}']").count() == 0
    _shot(page, "09-board-after")

    page.goto(f"{base}/teams/sales/board")  # the case moved on to sales
    assert page.locator(f"#col-ready .kcard[data-case='{case}']").count() == 1
    _shot(page, "10-board-sales")

    page.goto(f"{base}/dashboard")
    assert _count(page, "#tasks-completed") == done_before + 1
    _shot(page, "11-dashboard-after")

    page.goto(f"{base}/cases/{case}")
    _diagram_ready(page)
    assert page.locator("#timeline li", has_text="task.completed").count() == 1
    assert page.locator("#case-data", has_text='"score": 72').count() == 1
    assert page.locator("#diagram .accord-current").count() >= 1  # where the case stands
    _shot(page, "12-case")

    page.goto(f"{base}/operator")
    assert page.locator("text=the operator console is for leads").count() == 1  # a member
    page.goto(f"{base}/processes/kyc@1/status")
    assert page.locator(f"#status-board tr >> text={case}").count() == 1
    assert page.locator("#status-board", has_text="Onboard the client").count() >= 1
    _shot(page, "13-status-board")
    assert errors == [], errors


def test_an_owner_works_the_operator_console(server: Server, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    base = server.base
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "olivia")
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login button[type=submit]")
    page.wait_for_url(re.compile(rf"{re.escape(base)}/$"))
    case = server.cases[2]
    page.goto(f"{base}/cases/{case}")
    _diagram_ready(page)
    page.locator("button", has_text="Pause").click()
    page.locator("#case-status", has_text="paused").wait_for()
    page.goto(f"{base}/operator")
    row = page.locator(f"#paused tr[data-case='{case}']")
    assert row.count() == 1
    _shot(page, "14-operator")
    row.locator("button", has_text="Resume").click()
    page.locator(".notice", has_text="resume").wait_for()
    assert page.locator(f"#paused tr[data-case='{case}']").count() == 0
    _shot(page, "15-operator-resumed")
