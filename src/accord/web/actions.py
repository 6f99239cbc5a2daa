"""What the pages' forms post: claim, complete, release and retry a task; pause, resume,
reroute and cancel a case. Claim, release and complete act through accord.web.taskacts, as the
HTTP API does: the policy decides inside the unit of work, on the task as that unit sees it.

Every action needs a signed-in user and a valid CSRF token, and accord.web.policy decides who
may (the same rules as the HTTP API). An htmx request gets the page it came from re-rendered
(``next``; htmx swaps in the part that changed), even after a refusal, which the page then shows
beside the form; other browsers get a redirect, or the page with the error.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from accord.errors import AccordError, ContractViolation
from accord.model.types import StepKind
from accord.web import forms, policy, taskacts
from accord.web.accounts import User
from accord.web.deps import get_engine, optional_user, verify_csrf
from accord.web.problems import status_of
from accord.web.templating import render

router: APIRouter = APIRouter(include_in_schema=False)

# the page contexts live with the pages (imported after the router: pages include this one)
from accord.web.pages import (  # noqa: E402
    _board_context,
    _case_context,
    _error_page,
    _htmx,
    _inbox_context,
    _is_operator,
    _operator_context,
    _reader,
    _task,
    _to_login,
)


def _back(request: Request, user: User, target: str, *, status: int = 200,
          notice: str | None = None, error: str | None = None,
          forms_state: dict[str, forms.Parsed] | None = None) -> Response:  # fmt: skip
    """After an action: the page it came from, re-rendered for htmx (or after a refusal),
    else a redirect to it."""
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    if not _htmx(request) and error is None and forms_state is None:
        return RedirectResponse(target, status_code=303)
    path = target.split("?", 1)[0]
    parts = path.strip("/").split("/")
    extra = {"notice": notice, "error": error}
    code = 200 if _htmx(request) else status
    if path == "/inbox":
        return render(request, "inbox.html",
                      {**_inbox_context(request, user, forms_state), **extra}, code)  # fmt: skip
    if len(parts) == 3 and parts[0] == "teams" and parts[2] == "board":
        ctx = _board_context(request, user, parts[1])
        if ctx is not None:
            return render(request, "board.html", {**ctx, **extra}, code)
    if path == "/operator" and _is_operator(user):
        return render(request, "operator.html", {**_operator_context(request), **extra}, code)
    if len(parts) == 2 and parts[0] == "cases":
        case_ctx = _case_context(request, parts[1])
        if case_ctx is not None:
            case_ctx["may_operate"] = True
            return render(request, "case.html", {**case_ctx, **extra}, code)
    if error is not None:
        return _error_page(request, status, error)
    return RedirectResponse(target, status_code=303)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


@router.post("/tasks/{task_id}/{action}")
async def task_action(request: Request, task_id: str, action: str) -> Response:
    """Claim, complete, release or retry a task (CSRF-checked; policy decides who may)."""
    user = optional_user(request)
    if user is None:
        return _to_login(request)
    await verify_csrf(request)
    form = await _form(request)
    target = form.get("next") or "/inbox"
    engine = get_engine(request)
    task = _task(_reader(request), task_id)
    if task is None:
        return _back(request, user, target, status=404, error=f"no task {task_id!r}")
    try:
        if action == "claim":
            taskacts.claim(engine, user, task_id)
            notice = f"You hold {task_id} now."
        elif action == "release":
            taskacts.release(engine, user, task_id)
            notice = f"{task_id} is back in the team's queue."
        elif action == "retry":
            grant = policy.retry(user, task, engine.definition(task.process))
            engine.retry(task_id, grant.actor)
            notice = f"{task_id} runs again."
        elif action == "complete":
            policy.work(user, task, "complete")  # refuse before judging the form; checked again
            step = engine.definition(task.process).steps[task.step]
            parsed = forms.parse(step, form)
            if not parsed.ok:
                return _back(request, user, target, status=422,
                             forms_state={task_id: parsed})  # fmt: skip
            try:
                taskacts.complete(engine, user, task_id, parsed.data)
            except ContractViolation as exc:
                parsed.problems.extend(exc.errors)
                return _back(request, user, target, status=422,
                             forms_state={task_id: parsed})  # fmt: skip
            notice = f"{task_id} is done."
        else:
            return _error_page(request, 404, f"no task action {action!r}")
    except policy.Denied as exc:
        return _back(request, user, target, status=403, error=exc.reason)
    except AccordError as exc:
        return _back(request, user, target, status=status_of(exc), error=str(exc))
    return _back(request, user, target, notice=notice)


@router.post("/cases/{case_id}/{action}")
async def case_action(request: Request, case_id: str, action: str) -> Response:
    """Pause, resume, cancel or reroute a case (operators; leads pause and resume)."""
    user = optional_user(request)
    if user is None:
        return _to_login(request)
    await verify_csrf(request)
    form = await _form(request)
    target = form.get("next") or f"/cases/{case_id}"
    engine = get_engine(request)
    r = _reader(request)
    rows = r.rows("SELECT process FROM cases WHERE id = ?", [case_id])
    if not rows:
        return _back(request, user, target, status=404, error=f"no case {case_id!r}")
    try:
        d = engine.definition(rows[0][0])
        data: dict[str, Any] = {}
        if form.get("data", "").strip():
            try:
                parsed = orjson.loads(form["data"])
            except orjson.JSONDecodeError:
                return _back(request, user, target, status=422,
                             error="corrected data must be a JSON object")  # fmt: skip
            if not isinstance(parsed, dict):
                return _back(request, user, target, status=422,
                             error="corrected data must be a JSON object")  # fmt: skip
            data = parsed
        reason = form.get("reason", "").strip() or f"by {user.id} from the web console"
        if action in ("pause", "resume"):
            grant = policy.pause_resume(user, d, action)
            if action == "pause":
                engine.pause(case_id, reason, actor=grant.actor)
            else:
                engine.resume(case_id, data, actor=grant.actor)
        elif action in ("cancel", "reroute"):
            grant = policy.cancel_reroute(user, d, action)
            if action == "cancel":
                engine.cancel(case_id, reason, actor=grant.actor)
            else:
                step = form.get("step", "")
                if step not in d.steps or d.steps[step].kind is StepKind.START:
                    return _back(request, user, target, status=422,
                                 error=f"{step!r} is not a step of {d.key}")  # fmt: skip
                engine.reroute(case_id, step, data, actor=grant.actor)
        else:
            return _error_page(request, 404, f"no case action {action!r}")
    except policy.Denied as exc:
        return _back(request, user, target, status=403, error=exc.reason)
    except AccordError as exc:
        return _back(request, user, target, status=status_of(exc), error=str(exc))
    return _back(request, user, target, notice=f"{case_id}: {action} done.")
