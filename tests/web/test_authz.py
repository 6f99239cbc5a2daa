"""The authorization matrix: every role tries every action (docs/web.md draws the same table).

Rows are users standing for roles: kofi (member of the task's team), ana (member of another team
in the process), carla (lead of the task's team), olivia (owner of the process), admin, and ivan
(a member of a team outside the process). An allowed action must succeed and be recorded with
the signed-in user as its actor (``operator:ID`` when acting with authority over others' work);
a denied one must answer 403 problem+json and change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from webkit import VETTING, World

ROLES = ("kofi", "ana", "carla", "olivia", "admin", "ivan")


@dataclass
class Plan:
    """One action made ready by the admin: the request to send, the case it concerns, and a
    read that tells whether it had its effect (200) or not (404)."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    case: str | None = None
    check: str | None = None


def _task_action(verb: str, body: dict[str, Any] | None = None, setup: str = "ready"):
    def plan(w: World, user: str) -> Plan:
        if setup == "ready":
            tid = f"{w.new_case()}:review:1"
        elif setup == "held":
            tid = w.claimed_by("kofi")
        else:
            tid = w.failed_task()
        return Plan("POST", f"/tasks/{tid}/{verb}", body, case=tid.split(":")[0])

    return plan


def _case_action(verb: str, body: dict[str, Any], paused: bool = False, process: str = "vetting"):
    def plan(w: World, user: str) -> Plan:
        case = w.new_case(process)
        if paused:
            w.ok("admin", "POST", f"/cases/{case}/pause", json={"reason": "setup"})
        return Plan("POST", f"/cases/{case}/{verb}", body, case=case)

    return plan


def _start(w: World, user: str) -> Plan:
    w.counter[0] += 1
    case = f"started-by-{user}-{w.counter[0]}"
    body = {"process": "vetting", "id": case, "data": {"route": "main"}}
    return Plan("POST", "/cases", body, check=f"/cases/{case}")


def _deploy(w: World, user: str) -> Plan:
    w.counter[0] += 1
    version = 100 + w.counter[0]
    source = VETTING.replace("version: 1", f"version: {version}")
    return Plan("POST", "/processes", {"source": source}, check=f"/processes/vetting@{version}")


def _read(path: str):
    def plan(w: World, user: str) -> Plan:
        return Plan("GET", path)

    return plan


def _add_user(w: World, user: str) -> Plan:
    w.counter[0] += 1
    uid = f"new{w.counter[0]}"
    body = {"id": uid, "teams": ["sales"], "roles": ["member"]}
    return Plan("POST", "/users", body, check=f"/users/{uid}")


# action -> (how to try it, who may, whether the actor is the user themselves)
ACTIONS: dict[str, tuple[Callable[[World, str], Plan], set[str]]] = {
    "start case": (_start, {"kofi", "ana", "carla", "olivia", "admin"}),
    "claim task": (_task_action("claim"), {"kofi", "carla", "admin"}),
    "complete task": (_task_action("complete", {"data": {}}), {"kofi", "carla", "admin"}),
    "complete with feedback": (
        _task_action("complete", {"data": {}, "feedback": {"rating": 4, "comment": "ok"}}),
        {"kofi", "carla", "admin"},
    ),
    "fail task": (_task_action("fail", {"error": "broken"}), {"kofi", "carla", "admin"}),
    "release held task": (_task_action("release", setup="held"), {"kofi", "carla", "admin"}),
    "reassign task": (
        _task_action("reassign", {"member": "carla"}),
        {"carla", "olivia", "admin"},
    ),
    "retry failed task": (_task_action("retry", setup="failed"), {"carla", "olivia", "admin"}),
    "pause case": (_case_action("pause", {"reason": "why"}), {"carla", "olivia", "admin"}),
    "resume case": (_case_action("resume", {}, paused=True), {"carla", "olivia", "admin"}),
    "cancel case": (_case_action("cancel", {"reason": "why"}), {"olivia", "admin"}),
    "reroute case": (_case_action("reroute", {"step": "alt"}), {"olivia", "admin"}),
    "cancel other's case": (_case_action("cancel", {}, process="other"), {"admin"}),
    "deploy version": (_deploy, {"olivia", "admin"}),
    "list users": (_read("/users"), {"admin"}),
    "add user": (_add_user, {"admin"}),
    "list cases": (_read("/cases"), set(ROLES)),
    "list tasks": (_read("/tasks?team=compliance"), set(ROLES)),
    "read metrics": (_read("/metrics?process=vetting"), set(ROLES)),
    "read processes": (_read("/processes"), set(ROLES)),
}

# actions on one's own work record the user; acting on others' work records operator:ID
OWN_WORK = {"start case", "claim task", "complete task", "complete with feedback", "fail task",
            "release held task"}  # fmt: skip


def expected_actor(action: str, user: str) -> str:
    """The actor the event log must show for an allowed action."""
    if action == "start case":
        return user
    if action == "release held task":
        return user if user == "kofi" else f"operator:{user}"  # the holder, or a lead/admin
    if action in OWN_WORK and user != "admin":
        return user  # members of the task's team work it as themselves
    return f"operator:{user}"


CELLS = [(a, u) for a in ACTIONS for u in ROLES]


@pytest.mark.parametrize(("action", "user"), CELLS, ids=[f"{a}-{u}" for a, u in CELLS])
def test_matrix(any_world: World, action: str, user: str) -> None:
    w = any_world
    make_plan, allowed = ACTIONS[action]
    plan = make_plan(w, user)
    before = len(w.events(plan.case)) if plan.case is not None else 0
    r = w.call(user, plan.method, plan.path, json=plan.body)
    if user in allowed:
        assert r.status_code < 300, (action, user, r.status_code, r.text)
        if plan.case is not None:
            # the action's events are recorded with the signed-in user as the actor
            new = w.events(plan.case)[before:]
            actors = {e["actor"] for e in new if e["actor"] is not None}
            assert actors == {expected_actor(action, user)}, (action, user, actors)
        if plan.check is not None:
            assert w.call("admin", "GET", plan.check).status_code == 200
        if action == "deploy version":
            assert r.json()["deployed_by"] == f"operator:{user}"
        if action == "start case":
            assert w.events(plan.check.rsplit("/", 1)[1])[0]["actor"] == user
        return
    assert r.status_code == 403, (action, user, r.status_code, r.text)
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 403 and body["title"] == "Forbidden" and body["detail"]
    assert body["instance"] == f"/api/v1{plan.path.split('?')[0]}"
    if plan.check is not None:
        assert w.call("admin", "GET", plan.check).status_code == 404  # nothing was created
    if plan.case is not None:
        assert len(w.events(plan.case)) == before  # nothing happened to the case


def test_a_lead_leads_only_their_own_teams(world: World) -> None:
    """carla leads compliance: on a sales task she is nobody special."""
    case = world.new_case()
    world.ok("kofi", "POST", f"/tasks/{case}:review:1/complete", json={})
    sales = f"{case}:followup:1"
    world.ok("ana", "POST", f"/tasks/{sales}/claim")
    for verb, body in (("release", None), ("reassign", {"member": "carla"}), ("claim", None),
                       ("complete", {"data": {"note": "x"}})):  # fmt: skip
        r = world.call("carla", "POST", f"/tasks/{sales}/{verb}", json=body)
        assert r.status_code == 403, (verb, r.text)
    # nor may she move her own team's task into a team she does not lead
    tid = world.claimed_by("kofi")
    r = world.call("carla", "POST", f"/tasks/{tid}/reassign", json={"team": "sales"})
    assert r.status_code == 403


def test_an_owner_operates_only_the_processes_they_own(world: World) -> None:
    theirs = world.new_case("other")
    mine = world.new_case("vetting")
    assert world.call("olivia", "POST", f"/cases/{theirs}/pause", json={}).status_code == 403
    assert world.call("zed", "POST", f"/cases/{mine}/cancel", json={}).status_code == 403
    before = len(world.events(theirs))
    assert world.call("zed", "POST", f"/cases/{theirs}/cancel", json={}).status_code == 200
    events = world.events(theirs)[before:]
    assert events[-1]["type"] == "case.cancelled"
    assert {e["actor"] for e in events} - {None} == {"operator:zed"}
