"""Failed sign-ins are counted per user name and per client address; past the limit the login
form refuses that side, without checking the password, until the oldest failure ages out."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from webkit import PASSWORD, login

from accord.web import throttle as throttle_mod
from accord.web.app import create_app
from accord.web.config import WebConfig
from accord.web.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_name_is_refused_after_its_limit_until_the_oldest_failure_ages_out() -> None:
    clock = Clock()
    t = LoginThrottle(per_user=3, per_client=100, window_s=60, clock=clock)
    for i in range(3):
        assert t.retry_after("kofi", "10.0.0.1") == 0
        t.failed("kofi", f"10.0.0.{i}")  # from anywhere: the name is what is guessed at
        clock.now += 10
    assert t.retry_after("kofi", "10.0.0.9") == pytest.approx(30)  # the first failed at 1000
    assert t.retry_after("KOFI", "10.0.0.9") > 0  # names are counted without case
    assert t.retry_after("ama", "10.0.0.9") == 0
    clock.now += 30
    assert t.retry_after("kofi", "10.0.0.9") == 0  # one failure aged out: one more try
    t.failed("kofi", "10.0.0.9")
    assert t.retry_after("kofi", "10.0.0.9") == pytest.approx(10)


def test_an_address_is_refused_after_its_limit_whatever_the_names() -> None:
    clock = Clock()
    t = LoginThrottle(per_user=100, per_client=4, window_s=60, clock=clock)
    for i in range(4):
        t.failed(f"user{i}", "10.0.0.1")
    assert t.retry_after("someone-else", "10.0.0.1") == pytest.approx(60)
    assert t.retry_after("someone-else", "10.0.0.2") == 0


def test_success_clears_the_name_but_not_the_address() -> None:
    t = LoginThrottle(per_user=2, per_client=3, window_s=60, clock=Clock())
    t.failed("kofi", "10.0.0.1")
    t.failed("kofi", "10.0.0.1")
    assert t.retry_after("kofi", "10.0.0.2") > 0
    t.succeeded("kofi")
    assert t.retry_after("kofi", "10.0.0.2") == 0
    t.failed("ama", "10.0.0.1")
    assert t.retry_after("ama", "10.0.0.1") > 0  # the address's third failure


def test_made_up_names_cannot_grow_the_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(throttle_mod, "MAX_KEYS", 50)
    t = LoginThrottle(per_user=1, per_client=10_000, window_s=60, clock=Clock())
    for i in range(500):
        t.failed(f"name{i}", "10.0.0.1")
    assert len(t._users._by_key) == 50
    assert t.retry_after("name499", "10.0.0.2") > 0  # the most recent are kept
    assert t.retry_after("name0", "10.0.0.2") == 0
    t.failed("x" * 1_000_000, "10.0.0.1")  # a megabyte of name is kept as 64 characters
    assert max(len(k) for k in t._users._by_key) == throttle_mod.MAX_NAME


def test_limits_must_make_sense() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LoginThrottle(per_user=0)


@pytest.fixture
def app_client() -> Iterator[TestClient]:
    config = WebConfig(db="memory://", worker=False, secret="s", login_attempts_per_user=3,
                       login_attempts_per_client=5)  # fmt: skip
    app = create_app(config)
    app.state.accounts.add("pat", password=PASSWORD, teams=("x",))
    app.state.accounts.add("lee", password=PASSWORD, teams=("x",))
    try:
        with TestClient(app, base_url="http://testserver") as client:
            yield client
    finally:
        app.state.runtime.close()


def test_the_login_form_refuses_a_guessed_at_name_even_with_the_right_password(
    app_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(3):
        assert login(app_client, "pat", "guess").status_code == 401
    refused = login(app_client, "pat")  # the right password, too late
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 900
    assert "Too many failed sign-ins. Try again in 15 minutes." in refused.text
    assert "accord_session" not in refused.headers.get("set-cookie", "")
    assert "too many failed sign-ins" in caplog.text and PASSWORD not in caplog.text
    assert login(app_client, "lee").status_code == 303  # another name signs in as before


def test_the_login_form_refuses_an_address_that_tries_many_names(app_client: TestClient) -> None:
    for i in range(5):
        assert login(app_client, f"nobody{i}", "guess").status_code == 401
    assert login(app_client, "lee").status_code == 429  # same client address
