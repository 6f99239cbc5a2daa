"""Signing in: password login and its session cookie, CSRF protection, bearer tokens, and what
is stored and logged (hashes only, never a password, cookie or token)."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi.testclient import TestClient
from webkit import PASSWORD, World, login

from accord.web.app import create_app
from accord.web.config import WebConfig


def browser(world: World) -> TestClient:
    """A fresh browser (its own cookie jar) on the world's app."""
    return TestClient(world.app, base_url="http://testserver")


def set_cookies(response: object) -> dict[str, str]:
    headers = response.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    return {h.split("=", 1)[0]: h for h in headers}


def test_login_sets_an_httponly_samesite_session_cookie(world: World) -> None:
    b = browser(world)
    r = login(b, "kofi")
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = set_cookies(r)["accord_session"]
    flags = [f.strip().lower() for f in cookie.split(";")]
    assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags
    assert any(f.startswith("max-age=") for f in flags)
    assert "secure" not in flags  # plain http here; see the next test
    me = b.get("/api/v1/me")
    assert me.status_code == 200 and me.json()["id"] == "kofi"
    csrf = set_cookies(b.get("/login", headers={"cookie": ""}))["accord_csrf"].lower()
    assert "httponly" in csrf and "samesite=lax" in csrf


def test_secure_cookies_when_served_over_https(tmp_path: object) -> None:
    app = create_app(WebConfig(db="memory://", worker=False, secure_cookies=True, secret="s"))
    app.state.accounts.add("pat", password=PASSWORD, teams=("x",))
    try:
        with TestClient(app, base_url="https://testserver") as b:
            r = login(b, "pat")
            assert r.status_code == 303
            assert "; secure" in set_cookies(r)["accord_session"].lower()
            assert (
                "; secure"
                in set_cookies(b.get("/login", headers={"cookie": ""}))["accord_csrf"].lower()
            )
    finally:
        app.state.runtime.close()


def test_wrong_password_and_unknown_user_look_the_same(world: World) -> None:
    b = browser(world)
    wrong = login(b, "kofi", "not the password")
    nobody = login(b, "nobody", "not the password")
    for r in (wrong, nobody):
        assert r.status_code == 401 and "Wrong user or password" in r.text
        assert "accord_session" not in set_cookies(r)
    assert b.get("/api/v1/me").status_code == 401


def test_login_form_without_csrf_token_is_refused(world: World) -> None:
    b = browser(world)
    b.get("/login")
    r = b.post("/login", data={"username": "kofi", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    assert "accord_session" not in set_cookies(r)


def test_login_goes_on_to_local_pages_only(world: World) -> None:
    b = browser(world)
    page = b.get("/login?next=//evil.example/x")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    assert 'value="/"' in page.text
    for target, expected in (("/cases?x=1", "/cases?x=1"), ("https://evil.example", "/"),
                             ("//evil.example", "/"), ("/\\evil", "/")):  # fmt: skip
        b.cookies.clear()
        page = b.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        form = {"username": "kofi", "password": PASSWORD, "next": target,
                "csrf_token": token.group(1)}  # fmt: skip
        r = b.post("/login", data=form, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == expected


def test_cookie_writes_to_the_api_need_the_csrf_header(world: World) -> None:
    b = browser(world)
    login(b, "ana")
    body = {"process": "vetting", "data": {"route": "main"}}
    refused = b.post("/api/v1/cases", json=body)
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
    wrong = b.post("/api/v1/cases", json=body, headers={"X-CSRF-Token": "forged"})
    assert wrong.status_code == 403
    token = b.get("/api/v1/me").json()["csrf_token"]
    ok = b.post("/api/v1/cases", json=body, headers={"X-CSRF-Token": token})
    assert ok.status_code == 201 and ok.json()["events"][0]["actor"] == "ana"
    # reads need no token; bearer calls never do
    assert b.get("/api/v1/cases").status_code == 200
    assert world.call("ana", "POST", "/cases", json=body).status_code == 201


def test_a_csrf_token_works_only_in_its_own_browser(world: World) -> None:
    mine, theirs = browser(world), browser(world)
    login(mine, "ana")
    login(theirs, "ana")
    token = theirs.get("/api/v1/me").json()["csrf_token"]
    r = mine.post("/api/v1/cases", json={"process": "vetting"}, headers={"X-CSRF-Token": token})
    assert r.status_code == 403


def test_logout_ends_the_session(world: World) -> None:
    b = browser(world)
    login(b, "carla")
    session = b.cookies.get("accord_session")
    assert session
    refused = b.post("/logout", follow_redirects=False)
    assert refused.status_code == 403  # logout is a form post too: CSRF-checked
    token = b.get("/api/v1/me").json()["csrf_token"]
    r = b.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    stale = browser(world)
    stale.cookies.set("accord_session", session)
    assert stale.get("/api/v1/me").status_code == 401


def test_bearer_tokens(world: World) -> None:
    c = browser(world)
    none = c.get("/api/v1/me")
    assert none.status_code == 401 and none.headers["www-authenticate"].startswith("Bearer")
    bad = c.get("/api/v1/me", headers={"Authorization": "Bearer acc_00000000_nope"})
    assert bad.status_code == 401 and "unknown" in bad.json()["detail"]
    good = c.get("/api/v1/me", headers=world.auth("olivia"))
    assert good.status_code == 200 and good.json()["id"] == "olivia"
    used = [t for t in world.app.state.accounts.tokens("olivia") if t.last_used_at is not None]
    assert used


def test_only_hashes_are_stored(world: World) -> None:
    run = world.app.state.engine.store.run_sql
    b = browser(world)
    login(b, "kofi")
    session = b.cookies.get("accord_session")
    token = world.tokens["kofi"]
    stored = repr(run("SELECT * FROM web_sessions")) + repr(run("SELECT * FROM api_tokens"))
    stored += repr(run("SELECT * FROM users"))
    assert session not in stored and token not in stored and PASSWORD not in stored
    hashes = [r[0] for r in run("SELECT password FROM users WHERE id = ?", ("kofi",))]
    assert hashes[0].startswith("$argon2id$")


def test_no_secret_reaches_the_log(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    b = browser(world)
    login(b, "kofi")
    login(browser(world), "kofi", "wrong but secret")
    session = b.cookies.get("accord_session")
    world.call("kofi", "GET", "/me")
    new = world.ok("admin", "POST", "/users/kofi/tokens", json={"name": "logged?"})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "kofi signed in" in text  # the log does say what happened...
    for secret in (PASSWORD, "wrong but secret", session, world.tokens["kofi"], new["token"]):
        assert secret not in text  # ...but never with a secret in it


def test_users_must_be_plain_names_and_roles_known(world: World) -> None:
    from accord.web.accounts import AccountError

    accounts = world.app.state.accounts
    with pytest.raises(AccountError, match="plain name"):
        accounts.add("bad name")
    with pytest.raises(AccountError, match="unknown role"):
        accounts.add("someone", roles=("boss",))
    with pytest.raises(AccountError, match="8 characters"):
        accounts.add("someone", password="short")
    with pytest.raises(AccountError, match="already exists"):
        accounts.add("kofi")


def test_password_change_ends_sessions(world: World) -> None:
    accounts = world.app.state.accounts
    accounts.add("temp", password="first password", teams=("sales",))
    b = browser(world)
    login(b, "temp", "first password")
    assert b.get("/api/v1/me").status_code == 200
    accounts.set_password("temp", "second password")
    assert b.get("/api/v1/me").status_code == 401
    assert login(browser(world), "temp", "second password").status_code == 303


def test_sessions_run_out() -> None:
    from accord.stores import open_store
    from accord.web.accounts import Accounts

    store = open_store("memory://")
    try:
        lasting, expired = Accounts(store), Accounts(store, session_ttl_s=-1.0)
        lasting.add("sam", password=PASSWORD)
        assert lasting.session_user(lasting.open_session("sam")) is not None
        assert expired.session_user(expired.open_session("sam")) is None
        assert lasting.session_user("made-up") is None
    finally:
        store.close()
