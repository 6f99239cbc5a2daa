"""Handlers for the loan-processing example's automated steps.

A handler takes a context with ``key`` (the idempotency key of this task), ``data`` (the case
data) and ``record_effect(kind, value)``, and returns the step's output data. The engine may run
a handler more than once for the same task (at-least-once delivery, a retry after a crash), so
the handler must give the same answer for the same input and record each effect once per key.
"""

from __future__ import annotations

import hashlib
from typing import Any

BANDS = ((750, "excellent"), (670, "good"), (580, "fair"), (0, "poor"))


def credit_score(ctx: Any) -> dict[str, Any]:
    """Score the applicant from 300 to 850. Deterministic: no clock, no randomness.

    A real handler would call a credit bureau, sending ``ctx.key`` as the request id so a
    repeated call is not billed (or recorded on the applicant's file) twice.
    """
    data = ctx.data
    applicant = str(data.get("applicant", ""))
    amount = float(data.get("amount", 0))
    income = float(data.get("income", 0))
    # A stable per-applicant base in 550..799 (hashlib, not hash(): hash() changes per process).
    base = 550 + int(hashlib.sha256(applicant.encode()).hexdigest()[:8], 16) % 250
    # Borrowing many times one's income lowers the score.
    ratio = amount / income if income > 0 else 10.0
    score = max(300, min(850, base - int(max(0.0, ratio - 3.0) * 25)))
    band = next(name for floor, name in BANDS if score >= floor)
    ctx.record_effect("credit.inquiry", f"{applicant}:{score}")
    return {"credit_score": score, "credit_band": band}
