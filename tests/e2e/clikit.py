"""Running the real `accord` command in end-to-end tests (imported by name, like casekit)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ACCORD = [sys.executable, "-m", "accord.cli"]


def accord(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `accord ARGS...` from the checkout, wide and uncoloured, never raising."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [*ACCORD, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
        check=False,
    )


def no_traceback(res: subprocess.CompletedProcess[str]) -> None:
    """An error the user can fix is a message, never a Python traceback."""
    assert "Traceback" not in res.stderr + res.stdout
    assert "Error" not in res.stderr.replace("error:", "")  # no Python exception names
