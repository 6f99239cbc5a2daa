"""Users, login sessions and API tokens, kept in the engine's own database (migration 3).

People log in with a password (argon2id hashes, never the password); programs send a bearer
token. Neither a session cookie nor a token is stored as such: only its SHA-256, so a copy of
the database lets nobody in. Tokens and cookies are 256-bit random strings, so a plain hash is
enough (a slow hash protects low-entropy secrets such as passwords).

**Verified credentials are remembered briefly.** A session or token that checked out is kept in
memory, keyed by its hash, for ``cache_s`` seconds (default 5): requests within that window cost
no database read. Logging out, revoking a token, changing a password or removing a user through
*this* process forgets the affected entries at once; a change made elsewhere (another server
process, ``accord users`` on the command line) takes effect here within ``cache_s`` seconds at
the latest. An unknown or revoked credential is never remembered: it is looked up every time. A
token's ``last_used_at`` is written at most once a minute per token (per process), not on every
request.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from accord.errors import AccordError
from accord.stores.base import ConcurrencyError, Store

ROLES = ("member", "lead", "owner", "admin")
SESSION_TTL_S = 12 * 3600.0
# how long a verified session or token is trusted without asking the database again
AUTH_CACHE_S = 5.0
# a token's last_used_at is written at most this often
LAST_USED_EVERY_S = 60.0
_CACHE_MAX = 10_000
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_TOKEN_PREFIX = "acc_"
_hasher = PasswordHasher()
# Verified against when a user does not exist, so that "no such user" and "wrong password"
# take the same time and cannot be told apart.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(AccordError):
    """A user cannot be added or changed as asked (bad id or role, already there, unknown)."""


@dataclass(frozen=True, slots=True)
class User:
    """Someone signed in: a person (password) or a program (token). ``id`` is the member id
    process definitions use, so the tasks the hub assigns to a member are this user's."""

    id: str
    name: str
    teams: tuple[str, ...] = ()
    roles: tuple[str, ...] = ("member",)

    def has(self, *roles: str) -> bool:
        """Whether the user holds any of ``roles`` (an admin holds every role)."""
        return "admin" in self.roles or any(r in self.roles for r in roles)

    @property
    def is_admin(self) -> bool:
        """Admins may do everything, including managing users."""
        return "admin" in self.roles


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token as listed (never its secret)."""

    id: str
    user_id: str
    name: str
    created_at: float
    last_used_at: float | None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _clean(values: Iterable[str], what: str) -> tuple[str, ...]:
    out: list[str] = []
    for raw in values:
        v = raw.strip()
        if not v:
            continue
        if not _ID.match(v):
            raise AccountError(f"{what} {v!r} is not a plain name (letters, digits, _ . @ -)")
        if v not in out:
            out.append(v)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class _Verified:
    """A credential that checked out: whose it is, until when it may be trusted unasked."""

    user: User
    until: float  # time.monotonic() after which the database is asked again
    expires_at: float | None  # a session's own end (wall clock), None for tokens
    token_id: str | None


class Accounts:
    """Users, sessions and tokens over a store (see ``Store.run_sql``).

    ``cache_s`` is how long a verified session or token is trusted without a database read
    (0 turns the memory off; see the module's description for how revocation reaches it).
    """

    def __init__(
        self, store: Store, session_ttl_s: float = SESSION_TTL_S, cache_s: float = AUTH_CACHE_S
    ) -> None:
        self.store = store
        self.session_ttl_s = session_ttl_s
        self.cache_s = cache_s
        self._verified: OrderedDict[str, _Verified] = OrderedDict()
        self._used: dict[str, float] = {}  # token id -> when its last_used_at was written
        self._mutex = threading.Lock()
        # moves on whenever something is forgotten: a lookup that started before a logout or a
        # revocation does not remember what it read
        self._generation = 0

    # -- the memory of verified credentials -----------------------------------------------------

    def _recall(self, digest: str) -> User | None:
        if self.cache_s <= 0:
            return None
        with self._mutex:
            hit = self._verified.get(digest)
            if hit is None:
                return None
            if time.monotonic() >= hit.until or (
                hit.expires_at is not None and time.time() >= hit.expires_at
            ):
                del self._verified[digest]
                return None
        if hit.token_id is not None:
            self._note_use(hit.token_id)
        return hit.user

    def _remember(self, generation: int, digest: str, user: User, expires_at: float | None,
                  token_id: str | None) -> None:  # fmt: skip
        if self.cache_s <= 0:
            return
        entry = _Verified(user, time.monotonic() + self.cache_s, expires_at, token_id)
        with self._mutex:
            if generation != self._generation:
                return  # something was revoked meanwhile: what was read may be stale
            self._verified[digest] = entry
            self._verified.move_to_end(digest)
            while len(self._verified) > _CACHE_MAX:
                self._verified.popitem(last=False)

    def _forget(self, *, digest: str | None = None, user_id: str | None = None,
                token_id: str | None = None, sessions_only: bool = False) -> None:  # fmt: skip
        """Drop remembered credentials: one by hash, a token by id, or a user's."""
        with self._mutex:
            self._generation += 1
            if digest is not None:
                self._verified.pop(digest, None)
            if user_id is None and token_id is None:
                return
            for key, v in list(self._verified.items()):
                same_token = token_id is not None and v.token_id == token_id
                users = v.user.id == user_id and not (sessions_only and v.token_id is not None)
                if same_token or users:
                    del self._verified[key]

    def _note_use(self, token_id: str) -> None:
        """Record that a token was used: at most one write a minute per token."""
        now = time.time()
        with self._mutex:
            last = self._used.get(token_id)
            if last is not None and now - last < LAST_USED_EVERY_S:
                return
            self._used[token_id] = now
            if len(self._used) > _CACHE_MAX:
                self._used.clear()
        # the WHERE clause keeps other processes to one write a minute as well
        self.store.run_sql(
            "UPDATE api_tokens SET last_used_at = ? WHERE id = ? "
            "AND (last_used_at IS NULL OR last_used_at < ?)",
            (now, token_id, now - LAST_USED_EVERY_S),
        )

    # -- users ----------------------------------------------------------------------------------

    def add(
        self,
        user_id: str,
        *,
        name: str | None = None,
        password: str | None = None,
        teams: Iterable[str] = (),
        roles: Iterable[str] = ("member",),
    ) -> User:
        """Create a user; refuse an id that is taken. No password: token login only."""
        if not _ID.match(user_id):
            raise AccountError(f"user id {user_id!r} is not a plain name (letters, digits, _.@-)")
        role_list = _clean(roles, "role") or ("member",)
        unknown = [r for r in role_list if r not in ROLES]
        if unknown:
            raise AccountError(f"unknown role {unknown[0]!r} (roles: {', '.join(ROLES)})")
        if password is not None and len(password) < 8:
            raise AccountError("a password needs at least 8 characters")
        user = User(user_id, name or user_id, _clean(teams, "team"), role_list)
        hashed = _hasher.hash(password) if password is not None else None
        try:
            self.store.run_sql(
                "INSERT INTO users (id, name, password, teams, roles, created_at) "
                "VALUES (?,?,?,?,?,?)",
                (user.id, user.name, hashed, orjson.dumps(list(user.teams)).decode(),
                 orjson.dumps(list(user.roles)).decode(), time.time()),
            )  # fmt: skip
        except ConcurrencyError:
            raise AccountError(f"user {user_id!r} already exists") from None
        return user

    def get(self, user_id: str) -> User | None:
        """A user by id, or None."""
        rows = self.store.run_sql(
            "SELECT id, name, teams, roles FROM users WHERE id = ?", (user_id,)
        )
        return _user(rows[0]) if rows else None

    def users(self) -> list[User]:
        """Every user, by id."""
        rows = self.store.run_sql("SELECT id, name, teams, roles FROM users ORDER BY id")
        return [_user(r) for r in rows]

    def remove(self, user_id: str) -> bool:
        """Delete a user with their sessions and tokens; False if there was none."""
        if self.get(user_id) is None:
            return False
        self.store.run_sql("DELETE FROM web_sessions WHERE user_id = ?", (user_id,))
        self.store.run_sql("DELETE FROM api_tokens WHERE user_id = ?", (user_id,))
        self.store.run_sql("DELETE FROM users WHERE id = ?", (user_id,))
        self._forget(user_id=user_id)
        return True

    def set_password(self, user_id: str, password: str) -> None:
        """Replace a user's password and end their sessions (a password change logs out)."""
        if len(password) < 8:
            raise AccountError("a password needs at least 8 characters")
        if self.get(user_id) is None:
            raise AccountError(f"no user {user_id!r}")
        self.store.run_sql(
            "UPDATE users SET password = ? WHERE id = ?", (_hasher.hash(password), user_id)
        )
        self.store.run_sql("DELETE FROM web_sessions WHERE user_id = ?", (user_id,))
        self._forget(user_id=user_id, sessions_only=True)

    def check_password(self, user_id: str, password: str) -> User | None:
        """The user if ``password`` is theirs, else None (in about the same time either way)."""
        rows = self.store.run_sql(
            "SELECT id, name, teams, roles, password FROM users WHERE id = ?", (user_id,)
        )
        stored = rows[0][4] if rows else None
        try:
            _hasher.verify(stored or _DUMMY_HASH, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if not rows or stored is None:
            return None
        if _hasher.check_needs_rehash(stored):
            self.store.run_sql(
                "UPDATE users SET password = ? WHERE id = ?", (_hasher.hash(password), user_id)
            )
        return _user(rows[0])

    # -- sessions -------------------------------------------------------------------------------

    def open_session(self, user_id: str) -> str:
        """Start a login session; return the cookie value (shown once, stored hashed)."""
        secret = secrets.token_urlsafe(32)
        now = time.time()
        self.store.run_sql(
            "INSERT INTO web_sessions (hash, user_id, created_at, expires_at) VALUES (?,?,?,?)",
            (_digest(secret), user_id, now, now + self.session_ttl_s),
        )
        # now and then, forget sessions that ran out
        if secrets.randbelow(50) == 0:
            self.store.run_sql("DELETE FROM web_sessions WHERE expires_at < ?", (now,))
        return secret

    def session_user(self, secret: str) -> User | None:
        """The user a session cookie belongs to, while the session lasts."""
        digest = _digest(secret)
        known = self._recall(digest)
        if known is not None:
            return known
        generation = self._generation
        rows = self.store.run_sql(
            "SELECT u.id, u.name, u.teams, u.roles, s.expires_at FROM web_sessions s "
            "JOIN users u ON u.id = s.user_id WHERE s.hash = ? AND s.expires_at > ?",
            (digest, time.time()),
        )
        if not rows:
            return None
        user = _user(rows[0])
        self._remember(generation, digest, user, float(rows[0][4]), None)
        return user

    def close_session(self, secret: str) -> None:
        """End a session (logout)."""
        digest = _digest(secret)
        self.store.run_sql("DELETE FROM web_sessions WHERE hash = ?", (digest,))
        self._forget(digest=digest)

    # -- API tokens -----------------------------------------------------------------------------

    def issue_token(self, user_id: str, name: str = "api") -> str:
        """Create a bearer token for ``user_id``; return it (the only time it is seen)."""
        if self.get(user_id) is None:
            raise AccountError(f"no user {user_id!r}")
        token_id = secrets.token_hex(4)
        secret = f"{_TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        self.store.run_sql(
            "INSERT INTO api_tokens (id, hash, user_id, name, created_at) VALUES (?,?,?,?,?)",
            (token_id, _digest(secret), user_id, name, time.time()),
        )
        return secret

    def token_user(self, secret: str) -> User | None:
        """The user a bearer token belongs to (and note that it was used)."""
        if not secret.startswith(_TOKEN_PREFIX):
            return None
        digest = _digest(secret)
        known = self._recall(digest)
        if known is not None:
            return known
        generation = self._generation
        rows = self.store.run_sql(
            "SELECT u.id, u.name, u.teams, u.roles, t.id FROM api_tokens t "
            "JOIN users u ON u.id = t.user_id WHERE t.hash = ?",
            (digest,),
        )
        if not rows:
            return None
        user = _user(rows[0])
        token_id = str(rows[0][4])
        self._remember(generation, digest, user, None, token_id)
        self._note_use(token_id)
        return user

    def tokens(self, user_id: str | None = None) -> list[TokenInfo]:
        """API tokens (of one user, or all), oldest first."""
        sql = "SELECT id, user_id, name, created_at, last_used_at FROM api_tokens"
        args: tuple[str, ...] = ()
        if user_id is not None:
            sql += " WHERE user_id = ?"
            args = (user_id,)
        rows = self.store.run_sql(sql + " ORDER BY created_at, id", args)
        return [TokenInfo(r[0], r[1], r[2], float(r[3]), r[4]) for r in rows]

    def revoke_token(self, token_id: str) -> bool:
        """Delete a token by its id (the part after ``acc_``); False if there was none."""
        found = self.store.run_sql("SELECT id FROM api_tokens WHERE id = ?", (token_id,))
        self.store.run_sql("DELETE FROM api_tokens WHERE id = ?", (token_id,))
        self._forget(token_id=token_id)
        return bool(found)


def _user(row: tuple[object, ...]) -> User:
    teams = orjson.loads(str(row[2]))
    roles = orjson.loads(str(row[3]))
    return User(str(row[0]), str(row[1]), tuple(teams), tuple(roles))


# Demo people for the client-onboarding example (examples/client-onboarding.yaml): their ids
# are the members the definition names, so the hub assigns them real tasks.
DEMO_USERS: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("ana", "Ana Costa", ("sales",), ("member",)),
    ("kofi", "Kofi Mensah", ("compliance",), ("member",)),
    ("carla", "Carla Mendes", ("compliance",), ("member", "lead")),
    ("olivia", "Olivia Chen", ("account-management",), ("member", "lead", "owner")),
    ("admin", "Administrator", (), ("admin",)),
)


def seed_demo(accounts: Accounts) -> dict[str, str]:
    """Create the demo users that do not exist yet; return {id: password} for those created
    (random passwords, to be shown once)."""
    created: dict[str, str] = {}
    for uid, name, teams, roles in DEMO_USERS:
        if accounts.get(uid) is not None:
            continue
        password = secrets.token_urlsafe(12)
        accounts.add(uid, name=name, password=password, teams=teams, roles=roles)
        created[uid] = password
    return created
