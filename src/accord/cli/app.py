"""The shared Typer app and consoles every command module registers on."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Define a cross-team process once; run it central, choreographed or hybrid; measure it.",
)
out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> None:
    """Print an error and exit with ``code`` (1: bad input, 2: bad usage)."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)
