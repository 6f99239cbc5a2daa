"""``accord serve`` as a real process: users made with ``accord users``, a person signs in
through the login form, works a task through the API with the session cookie and CSRF header,
an automated step is run by the server's own worker, and SIGTERM stops the server promptly even
while an event stream is open."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2 as httpx
from webkit import PASSWORD

ACCORD = [sys.executable, "-m", "accord.cli"]

PROCESS = """
process: intake
version: 1
owner: olivia
teams:
  desk:
    assignment: pull
    members: [kofi]
  robots:
    members: [olivia]
steps:
  - id: check
    team: desk
    next: stamp
  - id: stamp
    type: automated
    team: robots
    handler: stamper:stamp
    next: done
  - id: done
    type: end
"""

HANDLER = """
def stamp(ctx):
    return {"stamped": ctx.key}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(*args: str, stdin: str | None = None, cwd: Path) -> str:
    done = subprocess.run(
        [*ACCORD, *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_serve_login_work_and_stop(tmp_path: Path) -> None:
    (tmp_path / "intake.yaml").write_text(PROCESS, encoding="utf-8")
    (tmp_path / "stamper.py").write_text(HANDLER, encoding="utf-8")
    db = str(tmp_path / "serve.db")
    run("users", "add", "kofi", "--db", db, "--team", "desk", "--password-stdin",
        stdin=PASSWORD + "\n", cwd=tmp_path)  # fmt: skip
    run("users", "add", "olivia", "--db", db, "--role", "owner", "--role", "member",
        "--team", "robots", "--no-password", cwd=tmp_path)  # fmt: skip
    token = run("users", "token", "olivia", "--db", db, cwd=tmp_path).strip()
    assert token.startswith("acc_")
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    env = {**os.environ, "ACCORD_SECRET": "e2e-secret"}
    server = subprocess.Popen(
        [*ACCORD, "serve", "--db", db, "--port", str(port), "--process", "intake.yaml",
         "--log-level", "warning"],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, server)
        with httpx.Client(base_url=base, timeout=10) as owner:
            owner.headers["Authorization"] = f"Bearer {token}"
            started = owner.post("/api/v1/cases", json={"process": "intake", "id": "e2e-1"})
            assert started.status_code == 201, started.text

        with httpx.Client(base_url=base, timeout=10, follow_redirects=False) as browser:
            page = browser.get("/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert csrf is not None
            form = {"username": "kofi", "password": PASSWORD, "csrf_token": csrf.group(1)}
            signed_in = browser.post("/login", data=form)
            assert signed_in.status_code == 303 and "accord_session" in browser.cookies
            me = browser.get("/api/v1/me").json()
            assert me["id"] == "kofi"
            queue = browser.get("/api/v1/tasks", params={"team": "desk", "status": "ready"})
            assert [t["id"] for t in queue.json()] == ["e2e-1:check:1"]
            done = browser.post(
                "/api/v1/tasks/e2e-1:check:1/complete",
                json={"data": {"checked": True}, "feedback": {"rating": 5}},
                headers={"X-CSRF-Token": me["csrf_token"]},
            )
            assert done.status_code == 200, done.text
            # the server's worker runs the automated step, and the case completes
            case = _wait_for(browser, "/api/v1/cases/e2e-1", lambda c: c["status"] == "completed")
            assert case["data"]["stamped"] == "e2e-1:stamp:1"
            actors = {(e["type"], e["actor"]) for e in case["events"]}
            assert ("task.completed", "kofi") in actors and ("task.completed", "worker") in actors

        # an open event stream must not hold up shutdown
        opened = threading.Event()

        def listen() -> None:
            with (
                httpx.Client(base_url=base, timeout=30) as c,
                c.stream(
                    "GET", "/api/v1/events/stream", headers={"Authorization": f"Bearer {token}"}
                ) as r,
            ):
                for _ in r.iter_bytes():
                    opened.set()

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        assert opened.wait(10)
        t0 = time.monotonic()
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0
        assert time.monotonic() - t0 < 8
        listener.join(timeout=10)
        assert not listener.is_alive()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
        log.close()
    text = (tmp_path / "serve.log").read_text()
    assert PASSWORD not in text and token not in text


def _wait_until_up(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.poll() is None, "accord serve exited early"
        try:
            if httpx.get(f"{base}/api/v1/openapi.json", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("accord serve did not come up in 30 s")


def _wait_for(client: httpx.Client, path: str, done: object) -> dict[str, object]:
    deadline = time.monotonic() + 20
    body: dict[str, object] = {}
    while time.monotonic() < deadline:
        body = client.get(path).json()
        if done(body):  # type: ignore[operator]
            return body
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting: {body}")


def test_serve_with_workers(tmp_path: Path) -> None:
    """``accord serve --workers 2``: two processes on one port and one store (replicas of one
    another). Work done through either is seen by both, a session made by one is honoured by
    the other (one shared CSRF secret), and SIGTERM stops them all with status 0."""
    (tmp_path / "intake.yaml").write_text(PROCESS, encoding="utf-8")
    (tmp_path / "stamper.py").write_text(HANDLER, encoding="utf-8")
    db = str(tmp_path / "workers.db")
    run("users", "add", "kofi", "--db", db, "--team", "desk", "--password-stdin",
        stdin=PASSWORD + "\n", cwd=tmp_path)  # fmt: skip
    run("users", "add", "olivia", "--db", db, "--role", "owner", "--role", "member",
        "--team", "robots", "--no-password", cwd=tmp_path)  # fmt: skip
    token = run("users", "token", "olivia", "--db", db, cwd=tmp_path).strip()
    kofi = run("users", "token", "kofi", "--db", db, cwd=tmp_path).strip()
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    env = {k: v for k, v in os.environ.items() if k != "ACCORD_SECRET"}
    server = subprocess.Popen(
        [*ACCORD, "serve", "--db", db, "--port", str(port), "--process", "intake.yaml",
         "--workers", "2", "--log-level", "warning"],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, server)
        auth = {"Authorization": f"Bearer {token}"}
        for i in range(12):  # fresh connections: the kernel spreads them over the workers
            with httpx.Client(base_url=base, timeout=10, headers=auth) as c:
                started = c.post("/api/v1/cases", json={"process": "intake", "id": f"w-{i}"})
                assert started.status_code == 201, started.text
        for i in range(12):
            worker = {"Authorization": f"Bearer {kofi}"}
            with httpx.Client(base_url=base, timeout=10, headers=worker) as c:
                done = c.post(f"/api/v1/tasks/w-{i}:check:1/complete", json={"data": {}})
                assert done.status_code == 200, done.text
                assert done.json()["status"] == "completed"
        for _ in range(4):  # each sign-in and its use may meet a different worker
            with httpx.Client(base_url=base, timeout=10, follow_redirects=False) as browser:
                page = browser.get("/login")
                csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
                assert csrf is not None
                form = {"username": "kofi", "password": PASSWORD, "csrf_token": csrf.group(1)}
                assert browser.post("/login", data=form).status_code == 303
                assert browser.get("/api/v1/me").json()["id"] == "kofi"
        with httpx.Client(base_url=base, timeout=10, headers=auth) as c:
            for i in range(12):
                _wait_for(c, f"/api/v1/cases/w-{i}", lambda b: b["status"] == "completed")
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
        log.close()
    text = (tmp_path / "serve.log").read_text()
    assert PASSWORD not in text and token not in text
