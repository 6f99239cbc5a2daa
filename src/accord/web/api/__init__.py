"""The HTTP API (mounted at /api/v1): one router per resource, one module each."""

from __future__ import annotations

from fastapi import APIRouter

from accord.web.api import cases, events, metrics, processes, tasks, users

router = APIRouter()
for _module in (processes, cases, tasks, events, metrics, users):
    router.include_router(_module.router)

__all__ = ["router"]
