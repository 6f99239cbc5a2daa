"""The web app: the HTTP API under /api/v1 and the pages, served from one process.

:func:`create_app` opens the engine on the store the config names (SQLite file, ``memory://``
or PostgreSQL) with every definition stored there, and puts the shared objects on
``app.state``: ``engine``, ``accounts`` (users, sessions, tokens), ``config``, ``secret``,
``boards`` and ``stopping`` (an event set at shutdown, which ends event streams). The engine
runs in shared mode, so ``accord engine`` replicas may work the same database alongside; unless
``config.worker`` is off, this process also runs a replica loop of its own (timers, automated
steps, hub assignment) in a background thread.

The pages (``accord.web.pages.router``) are included when that module exists; the API and
login routes always are. See docs/web.md.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import secrets
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from accord.central.engine import Engine
from accord.central.group import GroupCommit
from accord.errors import AccordError
from accord.handlers import HandlerRegistry
from accord.model.types import ProcessDefinition
from accord.stores import Store, open_store
from accord.web.accounts import Accounts, seed_demo
from accord.web.boards import Boards
from accord.web.config import WebConfig
from accord.web.deps import CsrfCookie
from accord.web.problems import install as install_problems
from accord.web.throttle import LoginThrottle

log = logging.getLogger("accord.web")
API_PREFIX = "/api/v1"


def stored_definitions(store: Store) -> list[ProcessDefinition]:
    """Every definition whose source the store keeps (unreadable ones are skipped, logged)."""
    from accord.model import loads

    out: list[ProcessDefinition] = []
    for key, _name, source in store.definitions():
        if not source:
            continue
        try:
            out.append(loads(source, f"{key} (stored)"))
        except AccordError as exc:
            log.warning("stored definition %s cannot be loaded: %s", key, exc)
    return out


def _secret(config: WebConfig, store: Store) -> bytes:
    if config.secret:
        return config.secret.encode()
    kept = store.get_meta("web.secret")
    if kept is None:
        kept = secrets.token_urlsafe(32)
        store.set_meta("web.secret", kept)
    return kept.encode()


def open_engine(config: WebConfig) -> Engine:
    """The engine a web app serves: stored definitions, then the configured files on top."""
    from accord.model import load

    store = open_store(config.store_url)
    try:
        defs = stored_definitions(store) + [load(p) for p in config.processes]
        registry = HandlerRegistry([Path.cwd(), *config.handler_paths])
        group = GroupCommit(store.commit, config.group_window_s) if config.group_commit else None
        return Engine(store, defs, handlers=registry, shared=True, group_commit=group)
    except BaseException:
        store.close()
        raise


def create_app(config: WebConfig, *, own_engine: bool = False) -> FastAPI:
    """Build the app over a newly opened engine. Its lifespan starts and stops the background
    work; whoever built the app closes the engine with ``app.state.runtime.close()`` (or, with
    ``own_engine``, the lifespan's end does)."""
    engine = open_engine(config)
    try:
        accounts = Accounts(engine.store, config.session_ttl_s, config.auth_cache_s)
        seeded = seed_demo(accounts) if config.seed_demo else {}
        secret = _secret(config, engine.store)
    except BaseException:
        engine.close()
        raise
    runtime = Runtime(engine, config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        try:
            yield
        finally:
            if own_engine:
                runtime.close()
            else:
                runtime.stop()

    app = FastAPI(
        title="accord",
        version=_version(),
        summary="Cross-team processes: cases, tasks, operator actions, metrics and events.",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.engine = engine
    app.state.accounts = accounts
    app.state.config = config
    app.state.secret = secret
    app.state.seeded = seeded
    app.state.runtime = runtime
    app.state.stopping = runtime.stopping
    app.state.boards = runtime.boards
    app.state.login_throttle = LoginThrottle(
        config.login_attempts_per_user, config.login_attempts_per_client, config.login_window_s
    )
    app.add_middleware(CsrfCookie, cookie=config.csrf_cookie, secure=config.secure_cookies)
    install_problems(app)

    from accord.web.api import router as api_router
    from accord.web.login import router as login_router

    app.include_router(api_router, prefix=API_PREFIX)
    app.include_router(login_router)
    # the pages are optional (the API serves without them); when present, an error importing
    # them is a bug to see, not a reason to serve without them
    if importlib.util.find_spec("accord.web.pages") is not None:
        pages = importlib.import_module("accord.web.pages")
        app.include_router(pages.router)
    return app


class Runtime:
    """The app's background work: the replica loop (timers, automated steps, assignment) and
    the status boards' bus. Started by the app's lifespan and stopped with it; a test client
    may run the lifespan many times over one app, so starts and stops are counted."""

    def __init__(self, engine: Engine, config: WebConfig) -> None:
        self.engine = engine
        self.config = config
        self.boards = Boards(config.bus)
        # set when the app shuts down (or the server is asked to stop): event streams end
        self.stopping = threading.Event()
        self._users = 0
        self._lock = threading.Lock()
        self._replica: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the background work (the first lifespan to start does it)."""
        with self._lock:
            self._users += 1
            if self._users > 1:
                return
            self.stopping.clear()
            if self.config.worker:
                from accord.central.replica import Replica, ReplicaConfig

                conf = ReplicaConfig(
                    role="web", handler_timeout=self.config.handler_timeout, job_threads=1
                )
                self._replica = Replica(self.engine, conf)
                self._thread = threading.Thread(
                    target=self._replica.run, name="accord-web-worker", daemon=True
                )
                self._thread.start()
            self.boards.start(self.engine.deployed())

    def stop(self) -> None:
        """Stop the background work (when the last lifespan ends): streams end, the replica
        finishes its turn and gives back its leases, the bus is closed."""
        with self._lock:
            self._users = max(0, self._users - 1)
            if self._users:
                return
            self.stopping.set()
            if self._replica is not None and self._thread is not None:
                self._replica.stop()
                self._thread.join(timeout=self.config.handler_timeout + 10)
            self._replica = self._thread = None
            self.boards.close()

    def close(self) -> None:
        """Stop everything and close the engine (and its store)."""
        with self._lock:
            self._users = min(self._users, 1)
        self.stop()
        self.engine.close()


CONFIG_ENV = "ACCORD_WEB_CONFIG"


def prepare(config: WebConfig) -> dict[str, str]:
    """What must happen once before several worker processes serve one store (``accord serve
    --workers``): migrate it, make the CSRF secret they all share, create the demo users.
    Return the demo users created, with their passwords."""
    store = open_store(config.store_url)
    try:
        accounts = Accounts(store, config.session_ttl_s)
        seeded = seed_demo(accounts) if config.seed_demo else {}
        _secret(config, store)
        return seeded
    finally:
        store.close()


def app_from_env() -> FastAPI:
    """The app of one worker process of ``accord serve --workers``: its settings come from the
    ``ACCORD_WEB_CONFIG`` environment variable (written by the parent), and its lifespan closes
    its engine."""
    import os

    config = WebConfig.from_json(os.environ[CONFIG_ENV])
    return create_app(config, own_engine=True)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("accord")
    except PackageNotFoundError:
        return "0"


__all__ = [
    "API_PREFIX",
    "CONFIG_ENV",
    "Runtime",
    "WebConfig",
    "app_from_env",
    "create_app",
    "open_engine",
    "prepare",
]
