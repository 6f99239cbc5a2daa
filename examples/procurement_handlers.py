"""Handlers for the procurement example's automated steps.

A handler takes a context with ``key`` (the idempotency key of this task), ``data`` (the case
data) and ``record_effect(kind, value)``, and returns the step's output data. The engine may run
a handler more than once for the same task, so the answer must depend only on the input and each
effect must be recorded once per key.
"""

from __future__ import annotations

from typing import Any

# Remaining budget per cost center. A real handler would read it from the finance system.
BUDGETS: dict[str, float] = {"ops": 250_000.0, "sales": 120_000.0, "it": 400_000.0, "rnd": 90_000.0}


def check_budget(ctx: Any) -> dict[str, Any]:
    """Is there budget left on the request's cost center for its amount?"""
    amount = float(ctx.data["amount"])
    center = str(ctx.data["cost_center"])
    remaining = BUDGETS.get(center, 0.0) - amount
    ok = remaining >= 0
    ctx.record_effect("budget.checked", f"{center}:{amount:.2f}:{'ok' if ok else 'short'}")
    return {"budget_ok": ok, "budget_remaining": round(remaining, 2)}


def issue_purchase_order(ctx: Any) -> dict[str, Any]:
    """Issue the purchase order. The order number comes from the idempotency key, so running
    the handler again for the same task yields the same order, not a second one."""
    po_number = "PO-" + ctx.key.replace(":", "-")
    ctx.record_effect("purchase_order.issued", po_number)
    return {"po_number": po_number}
