"""Signing in and out: ``GET/POST /login`` and ``POST /logout`` (both forms CSRF-checked).

A successful login sets the session cookie: HttpOnly (scripts cannot read it), SameSite=Lax
(other sites' forms do not send it), Secure when the app is served over HTTPS, and lasting as
long as the session. The password is checked against its argon2 hash and never logged.
"""

from __future__ import annotations

import logging
import math
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from accord.web.deps import get_accounts, get_config, optional_user, verify_csrf
from accord.web.templating import render
from accord.web.throttle import LoginThrottle

log = logging.getLogger("accord.web")
router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Where to go after login: a path on this site only (never ``//host`` or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    """The login form (a signed-in user goes straight on)."""
    if optional_user(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", {"next": safe_next(next), "error": None, "username": ""})


@router.post("/login", dependencies=[Depends(verify_csrf)])
def login(
    request: Request,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Check the password; on success start a session and go on to ``next``. A name or an
    address with too many recent failures is refused before the password is looked at
    (accord.web.throttle)."""
    accounts = get_accounts(request)
    throttle: LoginThrottle = request.app.state.login_throttle
    name = username.strip()
    client = request.client.host if request.client else "?"
    wait = throttle.retry_after(name, client)
    if wait > 0:
        seconds = math.ceil(wait)
        log.warning("login for %r from %s refused: too many failed sign-ins (%d s to wait)",
                    name[:64], client, seconds)  # fmt: skip
        minutes = math.ceil(seconds / 60)
        context = {"next": safe_next(next), "username": username,
                   "error": "Too many failed sign-ins. Try again in "
                            f"{minutes} minute{'s' if minutes != 1 else ''}."}  # fmt: skip
        response = render(request, "login.html", context, status_code=429)
        response.headers["Retry-After"] = str(seconds)
        return response
    user = accounts.check_password(name, password)
    if user is None:
        throttle.failed(name, client)
        log.info("failed login for %r from %s", username[:64], client)
        context = {"next": safe_next(next), "error": "Wrong user or password.",
                   "username": username}  # fmt: skip
        return render(request, "login.html", context, status_code=401)
    throttle.succeeded(name)
    config = get_config(request)
    session = accounts.open_session(user.id)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        config.session_cookie,
        session,
        max_age=int(config.session_ttl_s),
        httponly=True,
        samesite="lax",
        secure=config.secure_cookies,
        path="/",
    )
    log.info("%s signed in", user.id)
    return response


@router.post("/logout", dependencies=[Depends(verify_csrf)])
def logout(request: Request) -> Response:
    """End the session and forget the cookie."""
    config = get_config(request)
    cookie = request.cookies.get(config.session_cookie)
    if cookie:
        get_accounts(request).close_session(cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        config.session_cookie, path="/", httponly=True, samesite="lax",
        secure=config.secure_cookies,
    )  # fmt: skip
    return response
