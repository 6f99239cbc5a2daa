"""Handlers for the client-onboarding example's automated steps.

A handler takes a :class:`accord.HandlerContext` and returns the step's output data. Its
``key`` is an idempotency key: the engine may run a handler more than once for the same task
(at-least-once delivery, e.g. after a crash), so an effect must be applied once per key.
"""

from __future__ import annotations

from typing import Any


def create_accounts(ctx: Any) -> dict[str, Any]:
    """Provision the client's accounts: the effect is recorded once per idempotency key."""
    account_id = "acct-" + ctx.key.replace(":", "-")
    ctx.record_effect("accounts.created", account_id)
    return {"account_id": account_id}
