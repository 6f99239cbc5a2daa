"""What ``accord serve`` (and a test) configures the web app with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import fields as dc_fields
from pathlib import Path

from accord.central.group import DEFAULT_WINDOW_S
from accord.web.accounts import AUTH_CACHE_S, SESSION_TTL_S


@dataclass(slots=True)
class WebConfig:
    """Settings of one web app process.

    ``db`` is a store URL (``sqlite:///file.db``, ``memory://``, ``postgresql://...``) or a
    SQLite path. ``secret`` keys the CSRF tokens; when None, one is made once and kept in the
    store, so every server process on one database shares it. ``secure_cookies`` marks the
    cookies Secure (set it whenever the app is served over HTTPS, e.g. behind a proxy).
    """

    db: str = "sqlite:///accord.db"
    bus: str | None = None
    secret: str | None = None
    secure_cookies: bool = False
    session_ttl_s: float = SESSION_TTL_S
    session_cookie: str = "accord_session"
    csrf_cookie: str = "accord_csrf"
    # definitions to deploy on start (the ones stored in the database are loaded as well)
    processes: tuple[Path, ...] = ()
    handler_paths: tuple[Path, ...] = ()
    # run timers, automated steps and hub assignment in this process (accord serve --no-worker)
    worker: bool = True
    handler_timeout: float = 20.0
    # create the demo users (accord.web.accounts.DEMO_USERS) if missing; passwords are printed
    seed_demo: bool = False
    # how long the event stream waits between polls of the event log, and its keep-alives
    stream_poll_s: float = 0.5
    stream_keepalive_s: float = 15.0
    # how long a verified session or token is trusted without a database read (0: never);
    # a revocation made by another process takes effect here within this time
    auth_cache_s: float = AUTH_CACHE_S
    # concurrent requests' units of work share one commit (accord.central.group); a commit
    # waits up to group_window_s for units still being computed
    group_commit: bool = True
    group_window_s: float = DEFAULT_WINDOW_S
    # failed sign-ins allowed per user name and per client address within login_window_s,
    # before the login form refuses that side until the oldest failure ages out
    # (accord.web.throttle; counted in each server process)
    login_attempts_per_user: int = 5
    login_attempts_per_client: int = 20
    login_window_s: float = 900.0

    def to_json(self) -> str:
        """These settings as JSON (for the worker processes of ``accord serve --workers``)."""
        fields: dict[str, object] = {f.name: getattr(self, f.name) for f in dc_fields(self)}
        fields["processes"] = [str(p) for p in self.processes]
        fields["handler_paths"] = [str(p) for p in self.handler_paths]
        return json.dumps(fields)

    @classmethod
    def from_json(cls, text: str) -> WebConfig:
        """Settings written by :meth:`to_json`."""
        fields = json.loads(text)
        fields["processes"] = tuple(Path(p) for p in fields["processes"])
        fields["handler_paths"] = tuple(Path(p) for p in fields["handler_paths"])
        return cls(**fields)

    @property
    def store_url(self) -> str:
        """``db`` as a store URL (a bare path is a SQLite file)."""
        return self.db if "://" in self.db else f"sqlite:///{self.db}"
