"""FastAPI dependencies shared by the HTTP API and the pages: the engine, the signed-in user,
roles, and CSRF tokens.

Who is calling: a browser sends the session cookie (HttpOnly, SameSite=Lax) set at /login; a
program sends ``Authorization: Bearer acc_...``. A request that changes something and rides on
the cookie must also prove it came from one of our own pages: forms carry a ``csrf_token`` field
and htmx or fetch calls an ``X-CSRF-Token`` header, both from :func:`csrf_token`. Bearer calls
need no CSRF token (a browser never adds that header by itself).

CSRF tokens are signed double-submit tokens: an HMAC (keyed by the app's secret) of a random
value kept in the ``accord_csrf`` cookie and of the session, so a token works only for the
browser and the session it was made for, and needs no server-side state.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from base64 import urlsafe_b64encode
from collections.abc import Callable

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accord.central.engine import Engine
from accord.web.accounts import Accounts, User
from accord.web.config import WebConfig
from accord.web.problems import ProblemError

CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_SEED_KEY = "accord.csrf_seed"
_USER_KEY = "accord.user"

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "User",
    "api_user",
    "csrf_token",
    "current_user",
    "engine_dep",
    "get_accounts",
    "get_config",
    "get_engine",
    "optional_user",
    "require_role",
    "verify_csrf",
]


def get_engine(request: Request) -> Engine:
    """The app's engine."""
    engine: Engine = request.app.state.engine
    return engine


async def engine_dep(request: Request) -> Engine:
    """:func:`get_engine` as a dependency that runs on the event loop (FastAPI sends a plain
    function dependency through the thread pool: a hop per request for an attribute read)."""
    return get_engine(request)


def get_accounts(request: Request) -> Accounts:
    """Users, sessions and tokens."""
    accounts: Accounts = request.app.state.accounts
    return accounts


def get_config(request: Request) -> WebConfig:
    """The app's configuration."""
    config: WebConfig = request.app.state.config
    return config


def _authenticate(request: Request) -> tuple[User | None, str | None]:
    """(user, how) for this request, worked out once: ``how`` is "token" or "session"."""
    cached = request.scope.get(_USER_KEY)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    accounts = get_accounts(request)
    found: tuple[User | None, str | None] = (None, None)
    auth = request.headers.get("authorization", "")
    scheme, _, credentials = auth.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        user = accounts.token_user(credentials.strip())
        found = (user, "token" if user is not None else "bad-token")
    else:
        cookie = request.cookies.get(get_config(request).session_cookie)
        if cookie:
            user = accounts.session_user(cookie)
            found = (user, "session" if user is not None else None)
    request.scope[_USER_KEY] = found
    return found


def optional_user(request: Request) -> User | None:
    """The signed-in user, or None (pages send such visitors to /login)."""
    return _authenticate(request)[0]


def current_user(request: Request) -> User:
    """The signed-in user; else a 401 problem (a browser asking for a page goes to /login)."""
    user, how = _authenticate(request)
    if user is None:
        if how == "bad-token":
            raise ProblemError(401, "the bearer token is unknown or was revoked")
        raise ProblemError(401, "sign in first: a session cookie from /login or a bearer token")
    return user


async def api_user(request: Request) -> User:
    """:func:`current_user` for the API: a change made with the session cookie must carry
    the ``X-CSRF-Token`` header (bearer calls need not)."""
    user = current_user(request)
    _, how = _authenticate(request)
    if how == "session" and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent, csrf_token(request)):
            raise ProblemError(403, "missing or wrong X-CSRF-Token header; reload the page")
    return user


def require_role(*roles: str) -> Callable[[Request], User]:
    """A dependency that lets in users holding any of ``roles`` (admins always)."""

    def check(request: Request) -> User:
        user = current_user(request)
        if not user.has(*roles):
            raise ProblemError(403, f"this needs the role {' or '.join(roles)}")
        return user

    return check


def csrf_token(request: Request) -> str:
    """The CSRF token to put in this browser's forms (``csrf_token`` field) or headers."""
    seed = request.scope.get(_SEED_KEY) or request.cookies.get(get_config(request).csrf_cookie, "")
    session = request.cookies.get(get_config(request).session_cookie, "")
    bound = hashlib.sha256(session.encode()).hexdigest() if session else ""
    secret: bytes = request.app.state.secret
    mac = hmac.new(secret, f"{seed}|{bound}".encode(), hashlib.sha256).digest()
    return urlsafe_b64encode(mac).decode().rstrip("=")


async def verify_csrf(request: Request) -> None:
    """Refuse (403) a form post or call whose CSRF token is missing or wrong."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, csrf_token(request)):
        raise ProblemError(403, "missing or wrong CSRF token; reload the page and try again")


class CsrfCookie:
    """ASGI middleware: give every browser the random ``accord_csrf`` cookie CSRF tokens are
    made from (pure ASGI, so streamed responses such as the event stream are not buffered)."""

    def __init__(self, app: ASGIApp, cookie: str, secure: bool) -> None:
        self.app = app
        self.cookie = cookie
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seed = _cookie(scope, self.cookie)
        programs = any(k == b"authorization" for k, _ in scope.get("headers", ()))
        if programs or (seed is not None and 16 <= len(seed) <= 64):
            # a program (bearer token) has no use for the cookie: it never needs CSRF tokens
            if seed is not None:
                scope[_SEED_KEY] = seed
            await self.app(scope, receive, send)
            return
        seed = secrets.token_urlsafe(24)
        scope[_SEED_KEY] = seed
        flags = "; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if self.secure else "")

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("set-cookie", f"{self.cookie}={seed}{flags}")
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == name:
                    return str(v)
    return None
