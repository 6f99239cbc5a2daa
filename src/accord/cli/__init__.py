"""The ``accord`` command. A thin layer: parse arguments, call the library, print results.

Commands live in modules of this package, each registering itself on the one Typer ``app``
(core: validate, run, status, events, demo). Nothing outside this package imports it.
"""

from __future__ import annotations

import sys

from accord.cli.app import app, err
from accord.errors import AccordError

# Importing a command module registers its commands on `app`.
from accord.cli import core  # noqa: F401  isort: skip
from accord.cli import choreo  # noqa: F401  isort: skip
from accord.cli import analytics  # noqa: F401  isort: skip
from accord.cli import ops  # noqa: F401  isort: skip
from accord.cli import bpmn  # noqa: F401  isort: skip
from accord.cli import web  # noqa: F401  isort: skip


def main() -> None:
    """Entry point: never show a traceback for an error the user can fix."""
    try:
        app()
    except AccordError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)


__all__ = ["app", "main"]
