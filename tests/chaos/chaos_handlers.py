"""Handlers for tests/chaos/onboarding-auto.yaml.

Each one applies its effect once per idempotency key (``ctx.record_effect``, a row keyed by the
task id in the store) and appends every invocation to the file named by ``ACCORD_CHAOS_LOG``, so
a test can see that handlers did run more than once (at-least-once delivery) while every effect
was applied exactly once. Choices are drawn from the case id, so every run decides the same.
"""

from __future__ import annotations

import os
import zlib
from typing import Any


def _log(ctx: Any) -> None:
    path = os.environ.get("ACCORD_CHAOS_LOG")
    if path:
        # O_APPEND writes of one short line are atomic, even from several processes.
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {ctx.key} {ctx.attempt}\n")


def _draw(ctx: Any, salt: str) -> int:
    return zlib.crc32(f"{ctx.case_id}:{salt}".encode()) % 100


def _effect(ctx: Any, value: str) -> None:
    _log(ctx)
    ctx.record_effect(f"{ctx.step}.done", value)


def request(ctx: Any) -> dict[str, Any]:
    """Capture the request."""
    _effect(ctx, ctx.case_id)
    return {"client": f"client-{ctx.case_id}", "amount": 1000 + _draw(ctx, "amount"),
            "risk": "low"}  # fmt: skip


def review(ctx: Any) -> dict[str, Any]:
    """Approve most; send 10% back once for rework; reject 3%."""
    _effect(ctx, ctx.case_id)
    draw = _draw(ctx, "review")
    if draw < 10 and not ctx.task_id.endswith(":2"):
        return {"outcome": "rework"}
    return {"outcome": "reject" if draw >= 97 else "approve"}


def accounts(ctx: Any) -> dict[str, Any]:
    """Provision accounts; 10% of cases fail on the first attempt (a retry timer follows)."""
    _log(ctx)
    if ctx.attempt == 1 and _draw(ctx, "accounts") < 10:
        raise RuntimeError("directory service timed out")
    account_id = "acct-" + ctx.key.replace(":", "-")
    ctx.record_effect("accounts.done", account_id)
    return {"account_id": account_id}


def assign_manager(ctx: Any) -> dict[str, Any]:
    """Pick an account manager."""
    _effect(ctx, "olivia")
    return {"manager": "olivia"}


def kickoff(ctx: Any) -> dict[str, Any]:
    """Hold the kickoff call."""
    _effect(ctx, ctx.case_id)
    return {}
