"""The pages of the web app: server-rendered HTML (Jinja2), htmx for actions, bpmn-js diagrams.

Every page needs a signed-in user (anonymous visitors are sent to /login and back); who may do
what follows accord.web.policy, the same rules as the HTTP API. Reads come from the read
models in accord.web.views; what the forms post is handled in accord.web.actions, and the static
files (ours, and bpmn-js and htmx from node_modules) in accord.web.assets: both are included in
this module's router.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from accord.analytics import svg
from accord.analytics.trends import human_seconds
from accord.central.engine import Engine
from accord.errors import NotFound
from accord.kernel.state import CaseState
from accord.model.types import ProcessDefinition
from accord.stores.base import TaskRow
from accord.stores.rows import TASK_COLS, task_row
from accord.web import forms, policy, views
from accord.web.accounts import User
from accord.web.deps import get_engine, optional_user
from accord.web.diagrams import diagram
from accord.web.templating import render, templates

router = APIRouter(include_in_schema=False)

OPERATOR_ROLES = ("lead", "owner", "admin")
PROCESS_WINDOW_DAYS = 7


def _when(at: float | None) -> str:
    if at is None:
        return "-"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M")


templates.env.filters["hs"] = human_seconds
templates.env.filters["when"] = _when


# -- plumbing ----------------------------------------------------------------------------------


def _reader(request: Request) -> views.Reader:
    r: views.Reader | None = getattr(request.app.state, "web_reader", None)
    if r is None:
        r = views.reader_for(get_engine(request).store)
        request.app.state.web_reader = r
    return r


def _to_login(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=302)


def _htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _error_page(request: Request, status: int, message: str) -> Response:
    return render(request, "error.html", {"status": status, "message": message}, status)


def _definitions(engine: Engine) -> list[ProcessDefinition]:
    return engine.deployed()


def _is_operator(user: User) -> bool:
    return user.has(*OPERATOR_ROLES)


def _user_teams(user: User, engine: Engine) -> list[str]:
    """The teams whose work a user sees: their own; an admin without teams sees every team."""
    if user.teams or not user.is_admin:
        return list(user.teams)
    return sorted(views.teams_of(_definitions(engine)))


def _task(r: views.Reader, task_id: str) -> TaskRow | None:
    rows = r.rows(f"SELECT {TASK_COLS} FROM tasks WHERE id = ?", [task_id])
    return task_row(rows[0]) if rows else None


def _states(r: views.Reader, case_ids: list[str]) -> dict[str, CaseState]:
    from accord.kernel.state import state_from_json

    if not case_ids:
        return {}
    marks = ",".join("?" * len(case_ids))
    rows = r.rows(f"SELECT id, state FROM cases WHERE id IN ({marks})", case_ids)
    return {row[0]: state_from_json(bytes(row[1]) if isinstance(row[1], memoryview) else row[1])
            for row in rows}  # fmt: skip


def _may_hold(d: ProcessDefinition | None, task: TaskRow, user: User) -> bool:
    """Whether the definition lets ``user`` hold ``task`` (its team and role)."""
    if d is None or task.team is None or task.team not in user.teams:
        return False
    team = d.teams.get(task.team)
    if team is None or task.role is None:
        return True
    member = next((m for m in team.members if m.id == user.id), None)
    return member is None or task.role in member.roles


# -- the catalogue and a process ---------------------------------------------------------------


@router.get("/")
def catalogue_page(request: Request) -> Response:
    """Every deployed process with its cases and open work."""
    user = optional_user(request)
    if user is None:
        return _to_login(request)
    engine = get_engine(request)
    rows = views.catalogue(_reader(request), _definitions(engine))
    return render(request, "catalogue.html", {"rows": rows, "nav": "processes"})


def _process(engine: Engine, key: str) -> ProcessDefinition:
    return engine.definition(key)


def _overlays(request: Request, d: ProcessDefinition) -> dict[str, Any]:
    engine = get_engine(request)
    r = _reader(request)
    end = views.log_now(r, engine.clock.now())
    stats = views.step_stats(r, d, end, PROCESS_WINDOW_DAYS * views.DAY)
    _xml, ids, _orig = diagram(engine.store, d)
    return {
        "now": engine.clock.now(),
        "end": end,
        "steps": {
            sid: {**s.as_json(), "element": ids.get(sid), "name": d.steps[sid].name,
                  "oldest_ready_at": s.oldest_ready_at}
            for sid, s in stats.items()
        },
    }  # fmt: skip


@router.get("/processes/{key}")
def process_page(request: Request, key: str) -> Response:
    """A process's diagram with live counts per step and a heat overlay of waiting time."""
    user = optional_user(request)
    if user is None:
        return _to_login(request)
    engine = get_engine(request)
    try:
        d = _process(engine, key)
    except NotFound as exc:
        return _error_page(request, 404, str(exc))
    overlay = _overlays(request, d)
    _xml, _ids, original = diagram(engine.store, d)
    steps = [(sid, d.steps[sid], overlay["steps"][sid]) for sid in d.steps
             if d.steps[sid].kind.is_work or d.steps[sid].kind.is_wait]  # fmt: skip
    return render(
        request,
        "process.html",
        {"d": d, "overlay": overlay, "steps": steps, "original": original,
         "window_days": PROCESS_WINDOW_DAYS, "choreographed": views.is_choreographed(d),
         "nav": "processes"},
    )  # fmt: skip


@router.get("/processes/{key}/diagram.bpmn")
def process_diagram(request: Request, key: str) -> Response:
    """The BPMN the diagram is drawn from (the original drawing when there is one)."""
    if optional_user(request) is None:
        return _to_login(request)
    engine = get_engine(request)
    try:
        d = _process(engine, key)
    except NotFound as exc:
        return _error_page(request, 404, str(exc))
    xml, _ids, _orig = diagram(engine.store, d)
    return Response(xml, media_type="application/xml")


@router.get("/processes/{key}/stats.json")
def process_stats(request: Request, key: str) -> Response:
    """The numbers the process page's overlays show (polled to keep them live)."""
    if optional_user(request) is None:
        return Response(status_code=401)
    try:
        d = _process(get_engine(request), key)
    except NotFound:
        return Response(status_code=404)
    return Response(orjson.dumps(_overlays(request, d)), media_type="application/json")


@router.get("/processes/{key}/status")
def status_page(request: Request, key: str) -> Response:
    """The status board of a (choreographed) process: where each open case stands, who holds
    it, how long it has waited and the steps still expected."""
    user = optional_user(request)
    if user is None:
        return _to_login(request)
    engine = get_engine(request)
    try:
        d = _process(engine, key)
    except NotFound as exc:
        return _error_page(request, 404, str(exc))
    boards = getattr(request.app.state, "boards", None)
    live = boards.view(d.id) if boards is not None else None
    if live is not None:
        board = {"cases": sorted(live["cases"], key=lambda v: -v["waiting_s"])[:200],
                 "totals": live["counts"], "source": "bus"}  # fmt: skip
    else:
        board = views.status_board(_reader(request), d, engine.clock.now())
        board["source"] = "store"
    names = {sid: s.name for sid, s in d.steps.items()}
    return render(request, "status.html",
                  {"d": d, "board": board, "names": names, "nav": "processes"})  # fmt: skip


# -- a case ------------------------------------------------------------------------------------


def _case_context(request: Request, case_id: str) -> dict[str, Any] | None:
    engine = get_engine(request)
    r = _reader(request)
    states = _states(r, [case_id])
    state = states.get(case_id)
    if state is None:
        return None
    d = engine.definition(state.process)
    events = views.case_events(r, case_id)
    tasks = views.case_tasks(r, case_id)
    _xml, ids, _orig = diagram(engine.store, d)
    active = state.active_tasks()
    done = sorted({t.step for t in state.tasks.values() if t.status.value == "completed"})
    marks = {
        "current": [ids[t.step] for t in active if t.step in ids],
        "done": [ids[s] for s in done if s in ids],
        "failed": [ids[t.step] for t in active if t.status.value == "failed" and t.step in ids],
        "holders": {ids[t.step]: t.assignee for t in active if t.assignee and t.step in ids},
    }
    return {
        "state": state,
        "d": d,
        "events": events,
        "tasks": tasks,
        "active": active,
        "marks": marks,
        "data_json": orjson.dumps(state.data, option=orjson.OPT_INDENT_2).decode(),
        "reroute_steps": views.work_steps(d),
        "now": engine.clock.now(),
        "nav": "cases",
    }


@router.get("/cases/{case_id}")
def case_page(request: Request, case_id: str) -> Response:
    """One case: its timeline, where it stands on the diagram, its data and who holds it."""
    user = optional_user(request)
    if user is None:
        return _to_login(request)
    ctx = _case_context(request, case_id)
    if ctx is None:
        return _error_page(request, 404, f"no case {case_id!r}")
    ctx["may_operate"] = policy.owns(user, ctx["d"]) or _is_operator(user)
    return render(request, "case.html", ctx)


# -- inbox and board ---------------------------------------------------------------------------


def _inbox_context(
    request: Request, user: User, forms_state: dict[str, forms.Parsed] | None = None
) -> dict[str, Any]:
    engine = get_engine(request)
    r = _reader(request)
    teams = _user_teams(user, engine)
    picked = request.query_params.get("team")
    if picked and (picked in teams):
        teams = [picked]
    box = views.inbox(r, user.id, teams)
    defs = {d.key: d for d in _definitions(engine)}
    states = _states(r, [x["task"].case_id for x in box["mine"]])
    forms_state = forms_state or {}
    mine = []
    for item in box["mine"]:
        t: TaskRow = item["task"]
        d = defs.get(t.process)
        step = d.steps.get(t.step) if d is not None else None
        state = states.get(t.case_id)
        data = state.data if state is not None else {}
        posted = forms_state.get(t.id)
        if step is None:
            continue
        values = posted.raw if posted is not None else data
        mine.append(
            {
                **item,
                "step": step,
                "inputs": {k: data.get(k) for k in step.inputs if k in data},
                "fields": forms.fields_for(step, values, posted.errors if posted else None),
                "problems": posted.problems if posted else [],
                "feedback": forms.takes_feedback(step),
                "rating": (posted.raw.get("rating") if posted else "") or "",
            }
        )
    ready = []
    for item in box["ready"]:
        t = item["task"]
        d = defs.get(t.process)
        step = d.steps.get(t.step) if d is not None else None
        ready.append({**item, "step": step, "may_hold": _may_hold(d, t, user)})
    return {
        "mine": mine,
        "ready": ready,
        "ready_counts": box["ready_counts"],
        "held": box["held"],
        "teams": teams,
        "all_teams": _user_teams(user, engine),
        "now": engine.clock.now(),
        "ratings": forms.RATINGS,
        "nav": "inbox",
    }


@router.get("/inbox")
def inbox_page(request: Request) -> Response:
    """A member's inbox: tasks they hold (with completion forms), and their teams' ready work."""
    user = optional_user(request)
    if user is None:
        return _to_login(request)
    return render(request, "inbox.html", _inbox_context(request, user))


@router.get("/board")
def my_board(request: Request) -> Response:
    """The board of the user's first team (or the list of teams)."""
    user = optional_user(request)
    if user is None:
        return _to_login(request)
    teams = _user_teams(user, get_engine(request))
    if not teams:
        return _error_page(request, 404, "you are in no team; ask an admin to add you to one")
    return RedirectResponse(f"/teams/{quote(teams[0])}/board", status_code=302)


def _board_context(request: Request, user: User, team: str) -> dict[str, Any] | None:
    engine = get_engine(request)
    r = _reader(request)
    defs = _definitions(engine)
    known = views.teams_of(defs)
    if team not in known:
        return None
    end = views.log_now(r, engine.clock.now())
    b = views.board(r, team, end)
    by_key = {d.key: d for d in defs}
    for item in b["ready"]:
        item["may_hold"] = _may_hold(by_key.get(item["task"].process), item["task"], user)
    names = {sid: s.name for d in defs for sid, s in d.steps.items()}
    return {
        "team": known[team],
        "teams": sorted(known),
        "b": b,
        "names": names,
        "wip_limit": known[team]["wip_limit"],
        "now": engine.clock.now(),
        "end": end,
        "nav": "board",
    }


@router.get("/teams/{team}/board")
def board_page(request: Request, team: str) -> Response:
    """A team's kanban: ready, in progress (against its WIP limit), done in the last day."""
    user = optional_user(request)
    if user is None:
        return _to_login(request)
    ctx = _board_context(request, user, team)
    if ctx is None:
        return _error_page(request, 404, f"no team {team!r} in any deployed process")
    return render(request, "board.html", ctx)


# -- the operator console and the dashboard ----------------------------------------------------


def _operator_context(request: Request) -> dict[str, Any]:
    engine = get_engine(request)
    r = _reader(request)
    end = views.log_now(r, engine.clock.now())
    ops = views.operator(r, end)
    defs = {d.key: d for d in _definitions(engine)}
    steps = {k: views.work_steps(d) for k, d in defs.items()}
    return {"ops": ops, "steps": steps, "now": engine.clock.now(), "end": end,
            "nav": "operator"}  # fmt: skip


@router.get("/operator")
def operator_page(request: Request) -> Response:
    """Paused and failed cases, SLA breaches, with resume, retry, reroute and cancel."""
    user = optional_user(request)
    if user is None:
        return _to_login(request)
    if not _is_operator(user):
        return _error_page(request, 403, "the operator console is for leads, owners and admins")
    return render(request, "operator.html", _operator_context(request))


def _charts(dash: dict[str, Any]) -> dict[str, str]:
    width = dash["bucket_s"]
    per = "day" if width == views.DAY else "week"
    labels = [_when(dash["start"] + i * width)[5:10] for i in range(dash["buckets"])]
    cycle = dash["cycle"]
    load = dash["load"]
    return {
        "cycle": svg.histogram(cycle["edges"], cycle["counts"], human_seconds,
                               "Cycle time of cases completed in the window"),
        "throughput": svg.timeline(labels, dash["completed"], dash["started"],
                                   f"Cases completed and started per {per}",
                                   bar_name="completed", line_name="started"),
        "load": svg.hbars(
            [(team, float(v["ready"] + v["claimed"]),
              f"{v['ready']} ready · {v['claimed']} in progress")
             for team, v in sorted(load.items(), key=lambda kv: -(kv[1]["ready"]
                                                                  + kv[1]["claimed"]))],
            "Open tasks per team", color=svg.BAR),
        "wait": svg.hbars(
            [(team, w, human_seconds(w))
             for team, w in sorted(dash["team_wait"].items(), key=lambda kv: -kv[1])],
            "Mean waiting time per team (ready to work began)"),
        "breaches": svg.timeline(labels, dash["breaches"], None, f"SLA breaches per {per}",
                                 bar_name="SLA breaches"),
        "handoffs": svg.timeline(labels, dash["handoffs"], dash["handoff_errors"],
                                 f"Handoffs per {per}, and handoffs that went wrong",
                                 bar_name="handoffs", line_name="errors"),
    }  # fmt: skip


@router.get("/dashboard")
def dashboard_page(request: Request) -> Response:
    """Cycle times, throughput, per-team load and waiting, SLA breaches, handoff errors."""
    user = optional_user(request)
    if user is None:
        return _to_login(request)
    engine = get_engine(request)
    r = _reader(request)
    try:
        days = max(1, min(int(request.query_params.get("days", "30")), 366))
    except ValueError:
        days = 30
    pos, last = views.log_head(r)
    end = views.log_now(r, engine.clock.now(), days * views.DAY, last)
    memo: views.Memo | None = getattr(request.app.state, "web_memo", None)
    if memo is None:
        memo = request.app.state.web_memo = views.Memo()
    dash, charts = memo.get(("dashboard", days), pos, lambda: _dashboard(r, end, days))
    return render(request, "dashboard.html",
                  {"dash": dash, "charts": charts, "nav": "dashboard"})  # fmt: skip


def _dashboard(r: views.Reader, end: float, days: int) -> tuple[dict[str, Any], dict[str, str]]:
    dash = views.dashboard(r, end, days)
    return dash, _charts(dash)


# Actions (POST, CSRF-checked) and static files are routes of this router too.
from accord.web.actions import router as _actions  # noqa: E402 - they use the contexts above
from accord.web.assets import router as _assets  # noqa: E402

router.include_router(_actions)
router.include_router(_assets)
