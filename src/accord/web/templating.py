"""Jinja2 templates for the pages, with what every page needs already in its context."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from accord.web.deps import csrf_token, optional_user

TEMPLATES = Path(__file__).parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES))


def render(request: Request, name: str, context: dict[str, Any] | None = None,
           status_code: int = 200) -> Response:  # fmt: skip
    """Render a template with ``user`` (or None) and ``csrf_token`` in its context."""
    ctx: dict[str, Any] = {"user": optional_user(request), "csrf_token": csrf_token(request)}
    ctx.update(context or {})
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)
