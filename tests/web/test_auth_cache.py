"""The memory of verified credentials (accord.web.accounts): a token or session that checked
out costs no database read for ``cache_s`` seconds; logout, revocation, a password change and
removing a user in this process take effect at once, and a change made by another process
within ``cache_s``; ``last_used_at`` is written at most once a minute per token."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from accord.stores import open_store
from accord.stores.base import Store
from accord.web.accounts import Accounts


class Counting:
    """A store whose run_sql statements are recorded."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.statements: list[str] = []

    def run_sql(self, statement: str, args: Any = ()) -> list[tuple[Any, ...]]:
        self.statements.append(statement.split(maxsplit=1)[0])
        return self.store.run_sql(statement, args)

    def reset(self) -> None:
        self.statements.clear()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path}/auth.db")
    yield s
    s.close()


def _accounts(store: Store, cache_s: float = 5.0) -> tuple[Accounts, Counting]:
    counting = Counting(store)
    accounts = Accounts(counting, cache_s=cache_s)  # type: ignore[arg-type]
    return accounts, counting


def test_a_verified_token_is_not_looked_up_again(store: Store) -> None:
    accounts, sql = _accounts(store)
    accounts.add("bot", teams=("it",))
    token = accounts.issue_token("bot")
    sql.reset()
    assert accounts.token_user(token) is not None
    assert sql.statements == ["SELECT", "UPDATE"]  # looked up, and its first use noted
    sql.reset()
    for _ in range(50):
        user = accounts.token_user(token)
        assert user is not None and user.id == "bot"
    assert sql.statements == []  # neither a read nor a write of last_used_at


def test_unknown_tokens_are_never_remembered(store: Store) -> None:
    accounts, sql = _accounts(store)
    for _ in range(3):
        assert accounts.token_user("acc_00000000_nope") is None
    assert sql.statements.count("SELECT") == 3


def test_revocation_here_takes_effect_at_once(store: Store) -> None:
    accounts, _ = _accounts(store)
    accounts.add("bot", teams=("it",))
    accounts.add("amy", password="long enough", teams=("it",))
    token = accounts.issue_token("bot")
    token_id = token.split("_")[1]
    assert accounts.token_user(token) is not None
    assert accounts.revoke_token(token_id)
    assert accounts.token_user(token) is None
    # logout
    session = accounts.open_session("amy")
    assert accounts.session_user(session) is not None
    accounts.close_session(session)
    assert accounts.session_user(session) is None
    # a password change ends the sessions, not the tokens
    session = accounts.open_session("amy")
    amy_token = accounts.issue_token("amy")
    assert accounts.session_user(session) is not None
    assert accounts.token_user(amy_token) is not None
    accounts.set_password("amy", "another long one")
    assert accounts.session_user(session) is None
    assert accounts.token_user(amy_token) is not None
    # removing the user ends everything
    accounts.remove("amy")
    assert accounts.token_user(amy_token) is None


def test_revocation_elsewhere_takes_effect_within_the_cache_time(store: Store) -> None:
    here, _ = _accounts(store, cache_s=0.3)
    there = Accounts(store)  # another server process, or `accord users token --revoke`
    here.add("bot", teams=("it",))
    token = here.issue_token("bot")
    assert here.token_user(token) is not None
    assert there.revoke_token(token.split("_")[1])
    deadline = time.monotonic() + 5
    while here.token_user(token) is not None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert time.monotonic() < deadline


def test_a_lookup_racing_a_revocation_does_not_remember_what_it_read(store: Store) -> None:
    accounts, _ = _accounts(store)
    accounts.add("bot", teams=("it",))
    token = accounts.issue_token("bot")
    token_id = token.split("_")[1]
    real = store.run_sql

    def revoke_during_lookup(statement: str, args: Any = ()) -> list[tuple[Any, ...]]:
        rows = real(statement, args)
        if statement.startswith("SELECT u.id"):
            accounts.revoke_token(token_id)  # revoked after the read, before it is remembered
        return rows

    store.run_sql = revoke_during_lookup  # type: ignore[method-assign]
    try:
        accounts.token_user(token)  # read just before the revocation: may be let in this once
    finally:
        store.run_sql = real  # type: ignore[method-assign]
    assert accounts.token_user(token) is None


def test_no_cache_means_every_request_is_checked(store: Store) -> None:
    accounts, sql = _accounts(store, cache_s=0)
    accounts.add("bot", teams=("it",))
    token = accounts.issue_token("bot")
    sql.reset()
    for _ in range(3):
        assert accounts.token_user(token) is not None
    assert sql.statements.count("SELECT") == 3
    assert sql.statements.count("UPDATE") == 1  # last_used_at: still once a minute
