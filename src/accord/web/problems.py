"""Errors as RFC 9457 problem details (``application/problem+json``) with a useful detail.

Every error the API returns has the same shape: ``type``, ``title``, ``status``, ``detail``,
``instance`` (the request path) and, where it helps, ``errors`` (each field or contract problem).
accord's own exceptions map onto statuses here, so an endpoint simply lets them rise: an unknown
case is 404, a refused action 409, data that breaks a step's contract 422, a database that is
down 503. A browser asking for a page it may not see without signing in is sent to /login.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from accord.errors import (
    AccordError,
    CaseError,
    ConflictError,
    ContractViolation,
    DefinitionError,
    ExpressionError,
    NotFound,
    StoreError,
    TaskStateError,
)
from accord.stores.base import StoreUnavailable
from accord.web.accounts import AccountError
from accord.web.policy import Denied

log = logging.getLogger("accord.web")
MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str = Field("about:blank", description="A URI naming the kind of problem.")
    title: str = Field(description="Short summary of the kind of problem (the status phrase).")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field("", description="What went wrong this time, and how to fix it.")
    instance: str | None = Field(None, description="The request path.")
    errors: list[dict[str, Any]] | None = Field(
        None, description="Each problem with the input, when there are several."
    )


class ProblemError(Exception):
    """Raise to answer with a problem (from an endpoint or a dependency)."""

    def __init__(
        self, status: int, detail: str, *, errors: list[dict[str, Any]] | None = None
    ) -> None:
        self.status = status
        self.detail = detail
        self.errors = errors
        super().__init__(detail)


def problem(
    request: Request, status: int, detail: str, errors: list[dict[str, Any]] | None = None
) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors is not None:
        body["errors"] = errors
    headers = {"WWW-Authenticate": 'Bearer realm="accord"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _wants_page(request: Request) -> bool:
    path = request.url.path
    return not path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def status_of(exc: AccordError) -> int:
    """The HTTP status an accord error means."""
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, ContractViolation | DefinitionError | ExpressionError | AccountError):
        return 422
    if isinstance(exc, ConflictError | TaskStateError | CaseError):
        return 409
    if isinstance(exc, StoreUnavailable):
        return 503
    if isinstance(exc, StoreError):
        return 500
    return 400


def _errors_of(exc: AccordError) -> list[dict[str, Any]] | None:
    if isinstance(exc, ContractViolation):
        return [{"step": exc.step, "message": m} for m in exc.errors]
    if isinstance(exc, DefinitionError):
        return [
            {"file": p.file, "line": p.line, "col": p.col, "element": p.element,
             "message": p.message}
            for p in exc.problems
        ]  # fmt: skip
    return None


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> Response:
        if exc.status == 401 and _wants_page(request):
            target = quote(
                request.url.path + (f"?{request.url.query}" if request.url.query else "")
            )
            return RedirectResponse(f"/login?next={target}", status_code=303)
        return problem(request, exc.status, exc.detail, exc.errors)

    @app.exception_handler(Denied)
    async def _denied(request: Request, exc: Denied) -> Response:
        return problem(request, 403, exc.reason)

    @app.exception_handler(AccordError)
    async def _accord(request: Request, exc: AccordError) -> Response:
        status = status_of(exc)
        if status >= 500:
            log.error("store error on %s %s: %s", request.method, request.url.path, exc)
            return problem(request, status, "the store failed; try again later")
        return problem(request, status, str(exc), _errors_of(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "message": str(e.get("msg", "")),
             "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]  # fmt: skip
        first = errors[0] if errors else {"loc": [], "message": "invalid request"}
        where = ".".join(first["loc"]) or "request"
        return problem(request, 422, f"{where}: {first['message']}", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        response = problem(request, exc.status_code, detail)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        # the detail stays generic: a traceback may hold data or secrets
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(request, 500, "internal error; the server log has the details")


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting problem bodies for these statuses."""
    ref = {"schema": {"$ref": "#/components/schemas/Problem"}}
    return {
        s: {"model": Problem, "description": HTTPStatus(s).phrase, "content": {MEDIA_TYPE: ref}}
        for s in statuses
    }
