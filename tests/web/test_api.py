"""Every endpoint of the HTTP API, with problem bodies for what goes wrong (see test_authz.py for
who may do what, and test_auth.py for sessions, cookies, CSRF and tokens)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from webkit import VETTING, World

from accord.events import Event, EventType

# -- problems -----------------------------------------------------------------------------------


def assert_problem(r: Any, status: int, *words: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status whose detail says ``words``."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["type"] == "about:blank" and body["title"]
    for word in words:
        assert word in body["detail"], (word, body)
    return body


def test_unknown_case_is_a_404_problem(world: World) -> None:
    r = world.call("kofi", "GET", "/cases/nope")
    body = assert_problem(r, 404, "no case 'nope'")
    assert body["instance"] == "/api/v1/cases/nope"


def test_invalid_input_is_a_422_problem_naming_the_field(world: World) -> None:
    r = world.call("admin", "POST", "/cases", json={"process": "vetting", "data": [1]})
    body = assert_problem(r, 422, "body.data")
    assert body["errors"][0]["loc"] == ["body", "data"]


def test_unknown_route_and_wrong_method_are_problems(world: World) -> None:
    assert_problem(world.call("admin", "GET", "/nowhere"), 404)
    assert_problem(world.call("admin", "DELETE", "/cases"), 405)


DEEP = "[" * 40 + "1" + "]" * 40


@pytest.mark.parametrize(
    "data",
    ['{"n": 1180591620717411303424}', '{"s": "nul\\u0000char"}', '{"s": "\\ud800"}',
     '{"deep": ' + DEEP + "}", '{"x": NaN}'],
    ids=["int too big", "NUL", "lone surrogate", "too deep", "NaN"],
)  # fmt: skip
def test_data_the_store_cannot_hold_is_refused_before_it(world: World, data: str) -> None:
    body = '{"process": "vetting", "data": ' + data + "}"
    r = world.call("admin", "POST", "/cases", content=body.encode(),
                   headers={"content-type": "application/json"})  # fmt: skip
    assert_problem(r, 422)


def test_an_unexpected_error_is_a_500_problem_without_details(world: World) -> None:
    from fastapi.testclient import TestClient

    def boom() -> None:
        raise RuntimeError("secret internals")

    world.app.add_api_route("/api/v1/test-boom", boom, include_in_schema=False)
    try:
        client = TestClient(world.app, raise_server_exceptions=False)
        r = client.get("/api/v1/test-boom")
        body = assert_problem(r, 500, "internal error")
        assert "secret" not in r.text
        assert body["instance"] == "/api/v1/test-boom"
    finally:
        world.app.router.routes.pop()


# -- processes ----------------------------------------------------------------------------------


def test_list_show_versions_and_export(world: World) -> None:
    keys = [p["key"] for p in world.ok("ana", "GET", "/processes")]
    assert "vetting@1" in keys and "other@1" in keys
    d = world.ok("ana", "GET", "/processes/vetting@1")
    assert d["owner"] == "olivia" and d["teams"] == ["compliance", "management", "sales"]
    review = next(s for s in d["step_detail"] if s["id"] == "review")
    assert review["team"] == "compliance" and set(review["next"]) == {"alt", "followup"}
    assert {t["id"] for t in d["team_detail"]} == {"compliance", "sales", "management"}
    versions = world.ok("ana", "GET", "/processes/vetting/versions")
    assert versions[0]["version"] == 1
    assert_problem(world.call("ana", "GET", "/processes/nothing/versions"), 404, "nothing")
    assert_problem(world.call("ana", "GET", "/processes/nothing@3"), 404, "no process")
    r = world.call("ana", "GET", "/processes/vetting@1/bpmn")
    assert r.status_code == 200 and r.headers["content-type"] == "application/xml"
    assert b"<bpmn:definitions" in r.content or b"definitions" in r.content[:400]


def test_deploy_yaml_is_idempotent_per_version_and_refuses_a_changed_source(world: World) -> None:
    source = VETTING.replace("version: 1", "version: 7")
    r = world.call("olivia", "POST", "/processes", json={"source": source})
    assert r.status_code == 201 and r.json()["key"] == "vetting@7" and r.json()["created"]
    again = world.call("olivia", "POST", "/processes", json={"source": source})
    assert again.status_code == 200 and again.json()["created"] is False
    changed = source.replace("name: Vetting", "name: Vetting (changed)")
    assert_problem(world.call("olivia", "POST", "/processes", json={"source": changed}), 409,
                   "raise its version")  # fmt: skip
    # the latest version is what `id` means now, and cases can start on it
    assert world.ok("ana", "GET", "/processes/vetting")["version"] >= 7
    case = world.ok("ana", "POST", "/cases", json={"process": "vetting@7", "data": {"route": "x"}})
    assert case["process"] == "vetting@7"


def test_deploy_of_a_broken_definition_names_file_line_and_element(world: World) -> None:
    broken = VETTING.replace("version: 1", "version: 8").replace(
        "team: sales\n    next: done", "team: nobody\n    next: done"
    )
    body = assert_problem(world.call("admin", "POST", "/processes", json={"source": broken}), 422)
    assert any(e["element"] == "alt" and "nobody" in e["message"] for e in body["errors"]), body


def test_deploy_bpmn_keeps_it_as_yaml(world: World) -> None:
    xml = world.call("admin", "GET", "/processes/vetting@1/bpmn").text.replace("vetting", "screen")
    r = world.call("admin", "POST", "/processes", json={"source": xml, "format": "bpmn"})
    assert r.status_code == 201, r.text
    assert r.json()["key"] == "screen@1" and r.json()["deployed_by"] == "operator:admin"
    stored = world.app.state.engine.store.definitions()
    source = next(s for k, _, s in stored if k == "screen@1")
    assert source.lstrip().startswith("#") and "process: screen" in source
    assert_problem(
        world.call("admin", "POST", "/processes", json={"source": "<x/>", "format": "bpmn"}), 422
    )


def test_owner_cannot_deploy_a_process_naming_someone_else(world: World) -> None:
    source = VETTING.replace("process: vetting", "process: mine").replace(
        "owner: olivia", "owner: kofi"
    )
    assert_problem(world.call("olivia", "POST", "/processes", json={"source": source}), 403,
                   "kofi")  # fmt: skip


# -- cases --------------------------------------------------------------------------------------


def test_start_show_and_list_cases(world: World) -> None:
    r = world.call(
        "ana", "POST", "/cases", json={"process": "vetting", "data": {"route": "main", "amount": 5}}
    )
    assert r.status_code == 201
    case = r.json()
    assert case["status"] == "running" and case["data"] == {"route": "main", "amount": 5}
    assert [t["step"] for t in case["tasks"]] == ["review"]
    assert case["events"][0]["type"] == "case.started" and case["events"][0]["actor"] == "ana"
    cid = case["id"]
    assert world.ok("kofi", "GET", f"/cases/{cid}")["id"] == cid
    events = world.ok("kofi", "GET", f"/cases/{cid}/events")
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    listed = world.ok("kofi", "GET", "/cases", params={"process": "vetting", "limit": 1000})
    assert cid in [c["id"] for c in listed]
    assert all(c["process"].startswith("vetting@") for c in listed)
    other = world.ok("kofi", "GET", "/cases", params={"process": "other@1", "limit": 1000})
    assert cid not in [c["id"] for c in other]
    running = world.ok("kofi", "GET", "/cases", params={"status": "running", "limit": 1000})
    assert all(c["status"] == "running" for c in running) and cid in [c["id"] for c in running]
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert world.ok("kofi", "GET", "/cases", params={"started_after": soon}) == []
    page = world.ok("kofi", "GET", "/cases", params={"limit": 1})
    assert len(page) == 1
    assert_problem(world.call("kofi", "GET", "/cases", params={"status": "odd"}), 422)


def test_start_refuses_unknown_process_and_a_taken_id(world: World) -> None:
    assert_problem(world.call("admin", "POST", "/cases", json={"process": "ghost"}), 404, "ghost")
    body = {"process": "vetting", "id": "fixed-1", "data": {"route": "main"}}
    assert world.call("admin", "POST", "/cases", json=body).status_code == 201
    assert_problem(world.call("admin", "POST", "/cases", json=body), 409, "already exists")


def test_pause_resume_cancel_and_reroute(world: World) -> None:
    cid = world.new_case()
    paused = world.ok("olivia", "POST", f"/cases/{cid}/pause", json={"reason": "audit"})
    assert paused["status"] == "paused"
    assert paused["events"][-1]["data"]["reason"] == "audit"
    assert_problem(world.call("kofi", "POST", f"/tasks/{cid}:review:1/claim"), 409, "paused")
    resumed = world.ok("olivia", "POST", f"/cases/{cid}/resume", json={"data": {"fixed": True}})
    assert resumed["status"] == "running" and resumed["data"]["fixed"] is True
    assert_problem(world.call("olivia", "POST", f"/cases/{cid}/resume", json={}), 409)
    rerouted = world.ok("olivia", "POST", f"/cases/{cid}/reroute", json={"step": "alt"})
    open_steps = {t["step"] for t in rerouted["tasks"] if t["status"] == "ready"}
    assert open_steps == {"alt"}
    assert_problem(world.call("olivia", "POST", f"/cases/{cid}/reroute", json={"step": "zz"}),
                   404)  # fmt: skip
    cancelled = world.ok("olivia", "POST", f"/cases/{cid}/cancel", json={"reason": "dup"})
    assert cancelled["status"] == "cancelled" and cancelled["ended_at"] is not None
    assert_problem(world.call("olivia", "POST", f"/cases/{cid}/pause", json={}), 409)


# -- tasks --------------------------------------------------------------------------------------


def test_task_queues_claim_complete_and_the_case_completes(world: World) -> None:
    cid = world.new_case(amount=10)
    tid = f"{cid}:review:1"
    queue = world.ok("kofi", "GET", "/tasks", params={"team": "compliance", "status": "ready",
                                                       "limit": 1000})  # fmt: skip
    assert tid in [t["id"] for t in queue]
    detail = world.ok("kofi", "GET", f"/tasks/{tid}")
    assert detail["step_name"] == "Review" and detail["input"]["amount"] == 10
    claimed = world.ok("kofi", "POST", f"/tasks/{tid}/claim")
    assert claimed["status"] == "claimed" and claimed["assignee"] == "kofi"
    mine = world.ok("kofi", "GET", "/tasks", params={"assignee": "me", "status": "claimed",
                                                      "limit": 1000})  # fmt: skip
    assert tid in [t["id"] for t in mine]
    # a claim is exclusive: another member of the team is refused by the engine
    assert_problem(world.call("carla", "POST", f"/tasks/{tid}/claim"), 409)
    assert_problem(world.call("carla", "POST", f"/tasks/{tid}/complete", json={}), 409, "kofi")
    done = world.ok(
        "kofi",
        "POST",
        f"/tasks/{tid}/complete",
        json={"data": {"score": 3}, "feedback": {"rating": 5, "comment": "smooth"}},
    )
    assert done["status"] == "completed"
    follow = f"{cid}:followup:1"
    # the next step's contract is checked: a 422 that says what is missing
    body = assert_problem(world.call("ana", "POST", f"/tasks/{follow}/complete", json={}), 422,
                          "note")  # fmt: skip
    assert body["errors"][0]["step"] == "followup"
    world.ok("ana", "POST", f"/tasks/{follow}/complete", json={"data": {"note": "sent"}})
    case = world.ok("ana", "GET", f"/cases/{cid}")
    assert case["status"] == "completed"
    assert case["data"]["feedback"] == {"rating": 5, "comment": "smooth"}
    assert_problem(world.call("kofi", "POST", f"/tasks/{tid}/complete",
                              json={"data": {"other": 1}}), 409)  # fmt: skip


def test_feedback_rating_must_be_one_to_five(world: World) -> None:
    tid = f"{world.new_case()}:review:1"
    r = world.call("kofi", "POST", f"/tasks/{tid}/complete", json={"feedback": {"rating": 6}})
    assert_problem(r, 422, "rating")


def test_release_fail_retry_and_reassign(world: World) -> None:
    tid = world.claimed_by("kofi")
    released = world.ok("kofi", "POST", f"/tasks/{tid}/release")
    assert released["status"] == "ready" and released["assignee"] is None
    moved = world.ok("carla", "POST", f"/tasks/{tid}/reassign", json={"member": "carla"})
    assert moved["assignee"] == "carla" and moved["status"] == "claimed"
    assert_problem(world.call("admin", "POST", f"/tasks/{tid}/reassign",
                              json={"team": "ghosts"}), 404, "ghosts")  # fmt: skip
    failed = world.ok(
        "carla", "POST", f"/tasks/{tid}/fail", json={"error": "no docs", "retryable": False}
    )
    assert failed["status"] == "failed"
    case = world.ok("carla", "GET", f"/cases/{tid.split(':')[0]}")
    assert case["status"] == "paused" and case["incident_detail"]["error"] == "no docs"
    assert_problem(world.call("kofi", "POST", f"/tasks/{tid}/retry"), 403)
    again = world.ok("carla", "POST", f"/tasks/{tid}/retry")
    assert again["status"] in ("ready", "claimed") and again["attempt"] == 2
    assert_problem(world.call("kofi", "POST", "/tasks/nocase:review:1/claim"), 404)
    assert_problem(world.call("kofi", "POST", "/tasks/not-a-task/claim"), 422)


# -- events -------------------------------------------------------------------------------------


def test_event_pages(world: World) -> None:
    cid = world.new_case()
    page = world.ok("admin", "GET", "/events", params={"case": cid})
    assert [e["case"] for e in page] == [cid] * len(page) and page[0]["type"] == "case.started"
    after = world.ok("admin", "GET", "/events", params={"case": cid, "after": page[0]["pos"]})
    assert after == page[1:]
    other = world.ok("admin", "GET", "/events", params={"process": "other", "limit": 5000})
    assert all(e["process"].startswith("other@") for e in other)
    assert len(world.ok("admin", "GET", "/events", params={"limit": 2})) == 2


def _sse(text: str) -> list[dict[str, Any]]:
    out = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line
            and not line.startswith(":")
        )  # fmt: skip
        if "data" in fields:
            doc = orjson.loads(fields["data"])
            assert int(fields["id"]) == doc["pos"] and fields["event"] == doc["type"][7:]
            out.append(doc)
    return out


def test_stream_replays_after_a_position_and_resumes_from_last_event_id(world: World) -> None:
    cid = world.new_case()
    world.ok("kofi", "POST", f"/tasks/{cid}:review:1/claim")
    r = world.call("admin", "GET", "/events/stream",
                   params={"case": cid, "after": 0, "max_s": 0.3})  # fmt: skip
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    docs = _sse(r.text)
    assert [d["subject"] for d in docs] == [cid] * len(docs)
    assert docs[0]["type"] == "accord.case.started" and docs[-1]["type"] == "accord.task.claimed"
    # a client that saw the first event resumes right after it
    resumed = world.call("admin", "GET", "/events/stream", params={"case": cid, "max_s": 0.3},
                         headers={"Last-Event-ID": str(docs[0]["pos"])})  # fmt: skip
    assert _sse(resumed.text) == docs[1:]


def test_stream_delivers_new_events_live(world: World) -> None:
    cid = world.new_case()
    got: dict[str, str] = {}

    def listen() -> None:
        r = world.call("admin", "GET", "/events/stream", params={"case": cid, "max_s": 2.0})
        got["text"] = r.text

    t = threading.Thread(target=listen)
    t.start()
    time.sleep(0.6)
    world.ok("kofi", "POST", f"/tasks/{cid}:review:1/claim")
    t.join(timeout=10)
    types = [d["type"] for d in _sse(got["text"])]
    assert types == ["accord.task.claimed"]  # from now on: what came before is not replayed


def test_stream_of_a_process_filters_events(world: World) -> None:
    world.new_case("other")
    mine = world.new_case()
    key = world.ok("admin", "GET", f"/cases/{mine}")["process"]
    for process in ("vetting", key):
        r = world.call("admin", "GET", "/events/stream",
                       params={"process": process, "after": 0, "max_s": 0.5})  # fmt: skip
        docs = _sse(r.text)
        assert docs and all(d["process"].startswith("vetting@") for d in docs)
        assert mine in {d["subject"] for d in docs}
        if process == key:
            assert {d["process"] for d in docs} == {key}


# -- metrics ------------------------------------------------------------------------------------


def test_metrics_measure_the_log_and_the_load(world: World) -> None:
    cid = world.new_case()
    tid = f"{cid}:review:1"
    world.ok("kofi", "POST", f"/tasks/{tid}/complete",
             json={"data": {}, "feedback": {"rating": 2, "comment": "slow"}})  # fmt: skip
    m = world.ok("olivia", "GET", "/metrics", params={"process": "vetting"})
    assert m["process"] == "vetting"
    assert m["summary"]["cases_started"] >= 1 and m["measures"]["events"] > 0
    assert "cycle_time_s" in m["measures"] and "handoffs" in m["measures"]
    assert m["measures"]["satisfaction"]["ratings"] >= 1
    ready = world.ok("olivia", "GET", "/tasks", params={"team": "sales", "status": "ready",
                                                         "limit": 1000})  # fmt: skip
    ready_vetting = [t for t in ready if t["process"].startswith("vetting@")]
    assert m["load"]["sales"]["ready"] == len(ready_vetting)
    assert m["cases"]["running"] >= 1
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    empty = world.ok("olivia", "GET", "/metrics", params={"since": later})
    assert empty["measures"] == {"events": 0} and empty["summary"]["events"] == 0


# -- users and tokens ---------------------------------------------------------------------------


def test_me(world: World) -> None:
    me = world.ok("carla", "GET", "/me")
    assert me["id"] == "carla" and me["teams"] == ["compliance"] and "lead" in me["roles"]
    assert me["csrf_token"]


def test_users_and_tokens_lifecycle(world: World) -> None:
    body = {"id": "newbie", "name": "New Bie", "password": "long enough pw", "teams": ["sales"],
            "roles": ["member"]}  # fmt: skip
    assert world.call("admin", "POST", "/users", json=body).status_code == 201
    assert_problem(world.call("admin", "POST", "/users", json=body), 409, "already exists")
    assert "newbie" in [u["id"] for u in world.ok("admin", "GET", "/users")]
    assert world.ok("admin", "GET", "/users/newbie")["name"] == "New Bie"
    assert_problem(world.call("ana", "GET", "/users/newbie"), 403)
    # a user issues their own token and uses it
    world.tokens["newbie"] = world.app.state.accounts.issue_token("newbie")
    new = world.ok("newbie", "POST", "/users/newbie/tokens", json={"name": "script"})
    assert new["token"].startswith(f"acc_{new['id']}_")
    r = world.client.get("/api/v1/me", headers={"Authorization": f"Bearer {new['token']}"})
    assert r.json()["id"] == "newbie"
    listed = world.ok("newbie", "GET", "/users/newbie/tokens")
    assert {t["name"] for t in listed} >= {"script"} and "token" not in listed[0]
    assert_problem(world.call("ana", "DELETE", f"/tokens/{new['id']}"), 403)
    assert world.call("newbie", "DELETE", f"/tokens/{new['id']}").status_code == 204
    r = world.client.get("/api/v1/me", headers={"Authorization": f"Bearer {new['token']}"})
    assert_problem(r, 401, "revoked")
    assert_problem(world.call("admin", "DELETE", "/tokens/00000000"), 404)
    assert_problem(world.call("admin", "DELETE", "/users/admin"), 409, "yourself")
    assert world.call("admin", "DELETE", "/users/newbie").status_code == 204
    assert_problem(world.call("admin", "DELETE", "/users/newbie"), 404)
    assert_problem(world.call("admin", "GET", "/users/newbie"), 404)
    assert_problem(world.call("admin", "POST", "/users", json={"id": "x", "roles": ["king"]}), 422)


# -- boards -------------------------------------------------------------------------------------


def test_board_needs_a_bus(world: World) -> None:
    assert_problem(world.call("ana", "GET", "/processes/vetting/board"), 404, "--bus")


def test_board_shows_cases_from_the_bus(tmp_path: Any) -> None:
    from fastapi.testclient import TestClient
    from webkit import OTHER

    from accord.web.app import create_app
    from accord.web.config import WebConfig

    (tmp_path / "other.yaml").write_text(OTHER, encoding="utf-8")
    config = WebConfig(db="memory://", bus="memory://", worker=False, secret="s",
                       processes=(tmp_path / "other.yaml",))  # fmt: skip
    app = create_app(config)
    token = app.state.accounts.add("zed", teams=("it",)) and app.state.accounts.issue_token("zed")
    try:
        with TestClient(app) as client:
            bus = app.state.boards.bus
            now = time.time()
            for seq, (etype, extra) in enumerate(
                [
                    ("case.started", {}),
                    ("task.ready", {"step": "fix", "team": "it", "task": "c1:fix:1"}),
                ],
                start=1,
            ):
                e = Event(id=f"c1#{seq}", type=EventType(etype), case="c1",
                          process="other@1", at=now, seq=seq, **extra)  # fmt: skip
                bus.publish(f"accord.other.log.{etype}", orjson.dumps(e.to_cloudevent()), e.id)
            r = client.get(
                "/api/v1/processes/other/board", headers={"Authorization": f"Bearer {token}"}
            )
            assert r.status_code == 200, r.text
            board = r.json()
            assert board["counts"] == {"running": 1}
            assert board["cases"][0]["case"] == "c1" and board["cases"][0]["at"] == ["fix"]
            missing = client.get("/api/v1/processes/vetting/board",
                                 headers={"Authorization": f"Bearer {token}"})  # fmt: skip
            assert_problem(missing, 404, "not deployed")
    finally:
        app.state.runtime.close()


# -- one flow on every backend ------------------------------------------------------------------


def test_a_case_runs_to_completion_through_the_api(any_world: World) -> None:
    w = any_world
    cid = w.ok("ana", "POST", "/cases", json={"process": "vetting", "data": {"route": "alt"}})["id"]
    w.ok("kofi", "POST", f"/tasks/{cid}:review:1/claim")
    w.ok("kofi", "POST", f"/tasks/{cid}:review:1/complete", json={"feedback": {"rating": 4}})
    w.ok("ana", "POST", f"/tasks/{cid}:alt:1/complete", json={"data": {"done": True}})
    case = w.ok("olivia", "GET", f"/cases/{cid}")
    assert case["status"] == "completed"
    actors = [(e["type"], e["actor"]) for e in case["events"] if e["actor"]]
    assert ("case.started", "ana") in actors and ("task.completed", "kofi") in actors
    assert ("task.completed", "ana") in actors
    assert w.ok("olivia", "GET", "/metrics", params={"process": "vetting"})["cases"]["completed"]


def test_board_follows_team_nodes_on_nats(tmp_path: Any, nats_url: str) -> None:
    """The same, over NATS JetStream: what another process publishes reaches the board."""
    import uuid

    from fastapi.testclient import TestClient
    from webkit import OTHER

    from accord.buses import open_bus
    from accord.buses.base import subject_for
    from accord.web.app import create_app
    from accord.web.config import WebConfig

    pid = f"brd{uuid.uuid4().hex[:10]}"
    (tmp_path / "p.yaml").write_text(OTHER.replace("process: other", f"process: {pid}"))
    config = WebConfig(db="memory://", bus=nats_url, worker=False, secret="s",
                       processes=(tmp_path / "p.yaml",))  # fmt: skip
    app = create_app(config)
    app.state.accounts.add("zed", teams=("it",))
    headers = {"Authorization": f"Bearer {app.state.accounts.issue_token('zed')}"}
    publisher = open_bus(nats_url)
    try:
        with TestClient(app) as client:
            e = Event(id="n1#1", type=EventType.CASE_STARTED, case="n1", process=f"{pid}@1",
                      at=time.time(), seq=1)  # fmt: skip
            publisher.publish(subject_for(e.process, e.type.value), orjson.dumps(e.to_cloudevent()),
                              e.id)  # fmt: skip
            deadline = time.monotonic() + 15
            board: dict[str, Any] = {}
            while time.monotonic() < deadline:
                board = client.get(f"/api/v1/processes/{pid}/board", headers=headers).json()
                if board.get("counts"):
                    break
                time.sleep(0.1)
            assert board["counts"] == {"running": 1}, board
            assert board["cases"][0]["case"] == "n1"
    finally:
        publisher.close()
        app.state.runtime.close()
