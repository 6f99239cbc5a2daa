"""Web commands: ``accord serve`` (the HTTP API and web app) and ``accord users`` (people,
programs and their tokens). See docs/web.md."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from accord.cli.app import app, err, fail, out

DB_HELP = "The store: a SQLite file, sqlite:///file.db or postgresql://host:5432/db."
users = typer.Typer(no_args_is_help=True, help="Manage the people and programs who use the API.")
app.add_typer(users, name="users")


@app.command()
def serve(  # noqa: PLR0917 - typer maps each parameter to an option
    db: Annotated[str, typer.Option(help=DB_HELP)] = "accord.db",
    bus: Annotated[
        str | None, typer.Option(help="Bus URL (nats://...): status boards of choreographies.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    process: Annotated[
        list[Path] | None, typer.Option(help="Definition to deploy on start (repeatable).")
    ] = None,
    path: Annotated[
        list[Path] | None, typer.Option(help="Folder to import handler modules from (repeat).")
    ] = None,
    worker: Annotated[
        bool, typer.Option(help="Run timers, automated steps and assignment in this process.")
    ] = True,
    seed_demo: Annotated[
        bool, typer.Option("--seed-demo", help="Create the demo users (passwords printed once).")
    ] = False,
    secure_cookies: Annotated[
        bool, typer.Option("--secure-cookies", help="Mark cookies Secure (serving over HTTPS).")
    ] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    workers: Annotated[
        int, typer.Option(help="Server processes on this port (each a replica of the engine).")
    ] = 1,
    auth_cache: Annotated[
        float,
        typer.Option(
            help="Seconds a verified session or token is trusted without a database read "
            "(0: never); bounds how long a revocation made elsewhere takes to reach this server."
        ),
    ] = 5.0,  # accord.web.accounts.AUTH_CACHE_S (not imported: it hashes on import)
    group_commit: Annotated[
        bool, typer.Option(help="Let concurrent requests' changes share one commit.")
    ] = True,
    login_attempts: Annotated[
        int,
        typer.Option(
            help="Failed sign-ins allowed per user name within --login-window (four times as "
            "many per client address) before the login form refuses them for a while."
        ),
    ] = 5,
    login_window: Annotated[
        float, typer.Option(help="Seconds over which failed sign-ins are counted.")
    ] = 900.0,
) -> None:
    """Serve the HTTP API (/api/v1, OpenAPI at /api/v1/openapi.json) and the web app.

    The CSRF secret comes from the ACCORD_SECRET environment variable, else it is made once
    and kept in the store. Stop with Ctrl-C or SIGTERM: open event streams are closed first.
    """
    import uvicorn

    from accord.web.app import create_app
    from accord.web.config import WebConfig

    if not 0 < port < 65536:
        fail("--port must be between 1 and 65535", 2)
    if workers < 1:
        fail("--workers must be at least 1", 2)
    if auth_cache < 0:
        fail("--auth-cache must not be negative", 2)
    if login_attempts < 1 or login_window <= 0:
        fail("--login-attempts must be at least 1 and --login-window positive", 2)
    config = WebConfig(
        db=db,
        bus=bus,
        secret=os.environ.get("ACCORD_SECRET") or None,
        secure_cookies=secure_cookies,
        processes=tuple(process or ()),
        handler_paths=tuple(path or ()),
        worker=worker,
        seed_demo=seed_demo,
        auth_cache_s=auth_cache,
        group_commit=group_commit,
        login_attempts_per_user=login_attempts,
        login_attempts_per_client=4 * login_attempts,
        login_window_s=login_window,
    )
    if workers > 1:
        _serve_workers(config, host, port, log_level, workers)
        return
    web = create_app(config)
    _print_passwords(web.state.seeded)
    stopping = web.state.stopping

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # End event streams now, so that the graceful shutdown need not wait for them.
            # Unlike uvicorn's own handler this does not raise the signal again once the
            # server has stopped: the engine is closed below and the exit status is 0.
            stopping.set()
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True  # a second Ctrl-C: stop without waiting
            self.should_exit = True

    server = Server(
        uvicorn.Config(
            web,
            host=host,
            port=port,
            log_level=log_level.lower(),
            timeout_graceful_shutdown=10,
            server_header=False,
        )
    )
    err.print(f"accord: serving {config.store_url} on http://{host}:{port}/", highlight=False)
    try:
        server.run()
    finally:
        web.state.runtime.close()
    if not server.started:
        raise typer.Exit(1)


def _serve_workers(config: Any, host: str, port: int, log_level: str, workers: int) -> None:
    """``accord serve --workers N``: N uvicorn worker processes on one port, each with an
    engine of its own in shared mode (replicas of one another, as ``accord engine`` replicas
    are), after the one-off work (migrations, the shared CSRF secret, demo users) is done
    here."""
    import uvicorn

    from accord.web.app import CONFIG_ENV, prepare

    if config.store_url.startswith("memory://"):
        fail("--workers needs a store the processes can share: a SQLite file or PostgreSQL", 2)
    _print_passwords(prepare(config))
    config.seed_demo = False
    os.environ[CONFIG_ENV] = config.to_json()
    err.print(
        f"accord: serving {config.store_url} on http://{host}:{port}/ with {workers} workers",
        highlight=False,
    )
    uvicorn.run(
        "accord.web.app:app_from_env",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level=log_level.lower(),
        timeout_graceful_shutdown=10,
        server_header=False,
    )


def _print_passwords(created: dict[str, str]) -> None:
    if not created:
        return
    t = Table(title="demo users (passwords are shown this once)", title_justify="left")
    for col in ("user", "password"):
        t.add_column(col)
    for uid, password in created.items():
        t.add_row(uid, password)
    err.print(t)


def _accounts(db: str) -> Any:
    from accord.stores import open_store
    from accord.web.accounts import Accounts

    return Accounts(open_store(db if "://" in db else f"sqlite:///{db}"))


def _read_password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first: str = typer.prompt("password", hide_input=True)
    again: str = typer.prompt("again", hide_input=True)
    if first != again:
        fail("the passwords differ", 2)
    return first


@users.command("add")
def users_add(  # noqa: PLR0917 - typer maps each parameter to an option
    user_id: Annotated[str, typer.Argument(help="Login name: the member id definitions use.")],
    db: Annotated[str, typer.Option(help=DB_HELP)] = "accord.db",
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    team: Annotated[list[str] | None, typer.Option(help="A team of theirs (repeat).")] = None,
    role: Annotated[
        list[str] | None, typer.Option(help="member, lead, owner or admin (repeat).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="A program: signs in with tokens only.")
    ] = False,
) -> None:
    """Add a user (asks for the password unless --no-password or --password-stdin)."""
    from accord.web.accounts import AccountError

    password = None if no_password else _read_password(password_stdin)
    accounts = _accounts(db)
    try:
        user = accounts.add(
            user_id, name=name, password=password, teams=team or (), roles=role or ("member",)
        )
    except AccountError as exc:
        fail(str(exc))
    finally:
        accounts.store.close()
    out.print(
        f"added {user.id}: teams {', '.join(user.teams) or '-'}; roles {', '.join(user.roles)}",
        highlight=False,
    )


@users.command("password")
def users_password(
    user_id: Annotated[str, typer.Argument(help="Login name.")],
    db: Annotated[str, typer.Option(help=DB_HELP)] = "accord.db",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Set a user's password (their sessions end)."""
    from accord.web.accounts import AccountError

    password = _read_password(password_stdin)
    accounts = _accounts(db)
    try:
        accounts.set_password(user_id, password)
    except AccountError as exc:
        fail(str(exc))
    finally:
        accounts.store.close()
    out.print(f"password of {user_id} changed", highlight=False)


@users.command("list")
def users_list(db: Annotated[str, typer.Option(help=DB_HELP)] = "accord.db") -> None:
    """Every user with their teams, roles and tokens."""
    accounts = _accounts(db)
    try:
        t = Table(title="users", title_justify="left")
        for col in ("id", "name", "teams", "roles", "tokens"):
            t.add_column(col)
        for u in accounts.users():
            tokens = ", ".join(tok.id for tok in accounts.tokens(u.id)) or "-"
            t.add_row(u.id, u.name, ", ".join(u.teams) or "-", ", ".join(u.roles), tokens)
        out.print(t)
    finally:
        accounts.store.close()


@users.command("token")
def users_token(
    user_id: Annotated[str, typer.Argument(help="Whose token.")],
    db: Annotated[str, typer.Option(help=DB_HELP)] = "accord.db",
    name: Annotated[str, typer.Option(help="What the token is for.")] = "api",
    revoke: Annotated[
        str | None, typer.Option(help="Revoke the token with this id instead.")
    ] = None,
) -> None:
    """Issue a bearer token (printed once, on standard output), or revoke one."""
    from accord.web.accounts import AccountError

    accounts = _accounts(db)
    try:
        if revoke is not None:
            if not accounts.revoke_token(revoke):
                fail(f"no token {revoke!r}")
            err.print(f"revoked token {revoke}", highlight=False)
            return
        secret = accounts.issue_token(user_id, name)
    except AccountError as exc:
        fail(str(exc))
    finally:
        accounts.store.close()
    err.print("the token is shown this once; send it as 'Authorization: Bearer TOKEN'")
    sys.stdout.write(secret + "\n")


@users.command("remove")
def users_remove(
    user_id: Annotated[str, typer.Argument(help="Login name.")],
    db: Annotated[str, typer.Option(help=DB_HELP)] = "accord.db",
) -> None:
    """Remove a user with their sessions and tokens."""
    accounts = _accounts(db)
    try:
        if not accounts.remove(user_id):
            fail(f"no user {user_id!r}")
    finally:
        accounts.store.close()
    out.print(f"removed {user_id}", highlight=False)


@users.command("seed-demo")
def users_seed_demo(db: Annotated[str, typer.Option(help=DB_HELP)] = "accord.db") -> None:
    """Create the demo users of examples/client-onboarding.yaml (ana, kofi, carla, olivia,
    admin) with random passwords, printed once."""
    from accord.web.accounts import seed_demo

    accounts = _accounts(db)
    try:
        created = seed_demo(accounts)
    finally:
        accounts.store.close()
    if not created:
        out.print("the demo users exist already")
        return
    _print_passwords(created)
