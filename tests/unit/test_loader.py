"""The YAML loader: a good file loads; a bad one reports every problem, located precisely."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from accord.errors import DefinitionError, Problem
from accord.model import Mode, StepKind, load, loads
from accord.model.loader import MAX_FILE_BYTES, from_document
from accord.model.types import ErrorAction

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "client-onboarding.yaml"

TEAMS = """\
teams:
  sales:
    members:
      - {id: sam, roles: [lead, rep]}
      - {id: ana, roles: [rep]}
  it:
    members: [ivan]
"""


def doc(steps: str, header: str = "", teams: str = TEAMS) -> str:
    """A process text: the id, optional header lines, the teams and the given steps."""
    body = textwrap.indent(textwrap.dedent(steps).strip("\n"), "  ")
    return f"process: p\n{textwrap.dedent(header)}{teams}steps:\n{body}\n"


def problems_of(text: str, file: str = "<string>") -> list[Problem]:
    with pytest.raises(DefinitionError) as info:
        loads(text, file)
    return info.value.problems


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the nth line containing ``needle``."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(hits) >= nth, f"{needle!r} not in text"
    return hits[nth - 1]


def find(problems: list[Problem], fragment: str) -> Problem:
    hits = [p for p in problems if fragment in p.message]
    assert hits, f"no problem mentions {fragment!r}; got:\n" + "\n".join(map(str, problems))
    assert len(hits) == 1, f"{fragment!r} reported {len(hits)} times"
    return hits[0]


# -- a good file ------------------------------------------------------------------------------


def test_the_example_loads() -> None:
    d = load(EXAMPLE)
    assert d.key == "client-onboarding@1"
    assert d.name == "Client onboarding"
    assert d.owner == "olivia"
    assert d.mode is Mode.CENTRAL
    assert d.start == "request"
    assert set(d.teams) == {"sales", "compliance", "it", "account-management"}
    sales = d.teams["sales"]
    assert sales.lead == "sam"
    assert sales.wip_limit == 3
    assert [m.id for m in sales.members] == ["sam", "ana", "raj"]
    assert sales.members[0].roles == ("lead", "rep")
    assert d.teams["compliance"].assignment == "least-loaded"
    assert list(d.steps) == [
        "request",
        "review",
        "provision",
        "accounts",
        "assign-manager",
        "ready",
        "kickoff",
        "onboarded",
        "rejected",
    ]
    kinds = {sid: s.kind for sid, s in d.steps.items()}
    assert kinds["review"] is StepKind.APPROVAL
    assert kinds["provision"] is StepKind.PARALLEL
    assert kinds["accounts"] is StepKind.AUTOMATED
    assert kinds["onboarded"] is StepKind.END
    request = d.steps["request"]
    assert request.sla == 8 * 3600
    assert request.outputs == ("client", "amount", "risk")
    assert request.contract is not None
    assert request.contract["required"] == ["client", "amount", "risk"]
    assert type(request.contract["properties"]) is dict  # plain containers, not ruamel's
    review = d.steps["review"]
    assert review.compliance is True
    assert review.escalate_to == "carla"
    assert review.sla == 2 * 86400
    accounts = d.steps["accounts"]
    assert accounts.handler == "onboarding_handlers:create_accounts"
    assert accounts.retry.max_attempts == 3
    assert accounts.retry.backoff == 300
    assert accounts.on_error.action is ErrorAction.PAUSE
    assert d.is_join("ready")
    assert not d.is_join("provision")
    assert d.scenario is not None
    assert isinstance(d.scenario, Mapping)
    assert set(d.scenario) >= {"arrivals", "steps"}


def test_the_example_flows_and_locations() -> None:
    text = EXAMPLE.read_text()
    d = load(EXAMPLE)
    assert [f.target for f in d.outgoing["review"]] == ["provision", "request", "rejected"]
    conds = {f.target: f.condition.source for f in d.outgoing["review"] if f.condition}
    assert conds == {
        "provision": "outcome == 'approve'",
        "request": "outcome == 'rework'",
        "rejected": "outcome == 'reject'",
    }
    assert [f.source for f in d.incoming["ready"]] == ["accounts", "assign-manager"]
    assert d.steps["review"].loc.line == line_of(text, "- id: review")
    assert d.steps["review"].loc.col == 5
    assert d.steps["review"].loc.file == str(EXAMPLE)
    assert d.flow_by_id["review->request"].loc.line == line_of(text, "rework: request")


def test_from_document_accepts_plain_dicts() -> None:
    d = from_document(
        {
            "process": "p",
            "teams": {"a": {"members": ["x"]}},
            "steps": [
                {"id": "s", "type": "start", "next": "t"},
                {"id": "t", "team": "a", "next": "e"},
                {"id": "e", "type": "end"},
            ],
        }
    )
    assert [f.id for f in d.flows] == ["s->t", "t->e"]
    assert d.steps["t"].kind is StepKind.HUMAN  # the default type


def test_first_step_is_the_start_when_there_is_no_start_event() -> None:
    d = loads(doc("- {id: a, team: sales, next: b}\n- {id: b, type: end}"))
    assert d.start == "a"


def test_load_reports_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(doc("- {id: a, team: nobody}"))
    with pytest.raises(DefinitionError) as info:
        load(path)
    assert info.value.problems[0].file == str(path)
    assert str(info.value).startswith(f"{path}:")


def test_load_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="cannot read"):
        load(tmp_path / "missing.yaml")


def test_load_refuses_an_oversized_file(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(DefinitionError, match="limit is 5 MiB"):
        load(path)


def test_load_refuses_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"process: caf\xe9\n")
    with pytest.raises(DefinitionError, match="cannot read"):
        load(path)


# -- malformed YAML ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("process: p\nteams:\n  a: {members: [x]\nsteps: []\n", 4, "expected ',' or '}'"),
        ("process: p\nteams:\n\ta: {}\n", 3, "'\\t'"),
        ("process: p\nteams: {}\nteams: {}\n", 3, "duplicate key"),
        ("process: p\nteams:\n  a:\n    members: [x]\n   name: y\n", 5, "block end"),
        ("process: p\nname: 'unterminated\n", 3, "quoted scalar"),
        ("process: p\nsteps: [a, b\n", 3, "flow sequence"),
    ],
)
def test_malformed_yaml_points_at_the_line(text: str, line: int, fragment: str) -> None:
    (p,) = problems_of(text)
    assert p.element == "yaml"
    assert p.message.startswith("malformed YAML")
    assert fragment in p.message
    assert p.line == line


@pytest.mark.parametrize("text", ["", "# only a comment\n", "- a\n- b\n", "just text\n", "42\n"])
def test_a_document_that_is_not_a_mapping(text: str) -> None:
    (p,) = problems_of(text)
    assert (p.line, p.col) == (1, 1)
    assert "must be a mapping with a 'process' key" in p.message


def test_missing_process_teams_and_steps() -> None:
    probs = problems_of("name: nothing here\n")
    messages = [p.message for p in probs]
    assert any("'process' (the process id, text) is required" in m for m in messages)
    assert any("'teams' is required" in m for m in messages)
    assert any("at least one step" in m for m in messages)


# -- unknown keys -----------------------------------------------------------------------------


def test_unknown_keys_at_every_level_with_did_you_mean() -> None:
    text = doc(
        """
        - id: s
          type: start
          next: t
        - id: t
          team: sales
          nxet: e
          next: [{to: e, wehn: "a > 1"}]
          retry: {max_atempts: 2}
        - {id: e, type: end}
        """,
        header="descripton: typo\n",
        teams="teams:\n  sales:\n    membres: [sam]\n    members: [{id: sam, nmae: Sam}]\n",
    )
    probs = problems_of(text)
    expected = {
        "unknown key 'descripton' (did you mean 'description'?)": ("process", "descripton:"),
        "unknown key 'membres' (did you mean 'members'?)": ("sales", "membres:"),
        "unknown key 'nmae' (did you mean 'name'?)": ("sales.members[0]", "nmae:"),
        "unknown key 'nxet' (did you mean 'next'?)": ("t", "nxet:"),
        "unknown key 'wehn' (did you mean 'when'?)": ("t.next[0]", "wehn:"),
        "unknown key 'max_atempts' (did you mean 'max_attempts'?)": ("t.retry", "max_atempts"),
    }
    for message, (element, needle) in expected.items():
        p = find(probs, message)
        assert p.element == element
        assert p.line == line_of(text, needle)


def test_unknown_key_without_a_close_match_has_no_suggestion() -> None:
    text = doc("- {id: a, team: sales, zzzzzz: 1}")
    p = find(problems_of(text), "unknown key 'zzzzzz'")
    assert "did you mean" not in p.message


def test_unknown_key_column_points_at_the_key() -> None:
    text = doc("- id: a\n  team: sales\n  colour: red\n")
    p = find(problems_of(text), "unknown key 'colour'")
    assert (p.line, p.col) == (line_of(text, "colour:"), 5)


# -- wrong types and values -------------------------------------------------------------------


def test_wrong_types_are_all_reported() -> None:
    text = doc(
        """
        - {id: s, type: start, next: t}
        - id: t
          team: sales
          terminate: "yes"
          inputs: 5
          retry: {max_attempts: two, factor: fast}
          compliance: 1
          next: e
        - {id: e, type: end, terminate: 1}
        """,
        header="version: one\n",
        teams="teams:\n  sales:\n    wip_limit: three\n    members: [sam]\n",
    )
    probs = problems_of(text)
    expectations = [
        ("version must be a whole number, not text", "version:"),
        ("wip_limit must be a whole number, not text", "wip_limit:"),
        ("terminate must be true or false, not text", 'terminate: "yes"'),
        ("inputs must be a list of field names", "inputs:"),
        ("max_attempts must be a whole number, not text", "max_attempts"),
        ("factor must be a number, not text", "factor:"),
        ("compliance must be true or false, not a number", "compliance:"),
        ("terminate must be true or false, not a number", "terminate: 1"),
    ]
    for message, needle in expectations:
        assert find(probs, message).line == line_of(text, needle)


def test_a_boolean_is_not_a_number() -> None:
    text = doc("- {id: a, team: sales}", teams="teams:\n  sales: {members: [x], wip_limit: true}\n")
    find(problems_of(text), "wip_limit must be a whole number, not a boolean")


@pytest.mark.parametrize(
    ("steps", "fragment", "element"),
    [
        (
            "- {id: a, type: humn, team: sales}",
            "unknown step type 'humn' (did you mean 'human'?)",
            "a",
        ),
        ("- {id: a, team: sales, mode: locl}", "not 'locl' (did you mean 'local'?)", "a"),
        ("- {id: a, team: sales, on_error: retry}", "on_error must be 'pause' or a mapping", "a"),
        ("- {id: a, team: sales, next: 5}", "next must be a step id, a list", "a"),
        ("- {id: a, team: sales, next: [5]}", "each next entry is a step id or a mapping", "a"),
        ("- {id: a, team: sales, next: [{when: x}]}", "a flow needs 'to'", "a.next[0]"),
        ("- {id: a, team: sales, contract: [1]}", "contract must be a JSON Schema mapping", "a"),
        ("- {id: a, team: sales, retry: fast}", "retry must be a number or a mapping", "a"),
        ("- {team: sales}", "a step needs an 'id' (text)", "steps[0]"),
        ("- just-text", "a step must be a mapping, not text", "steps[0]"),
    ],
)
def test_bad_step_values(steps: str, fragment: str, element: str) -> None:
    p = find(problems_of(doc(steps)), fragment)
    assert p.element == element
    assert p.line == 10  # the step's line: after `process`, 8 team lines and `steps:`


def test_steps_must_be_a_list_and_teams_a_mapping() -> None:
    text = "process: p\nteams: [a, b]\nsteps: {a: 1}\n"
    probs = problems_of(text)
    assert find(probs, "teams must be a mapping").line == 2
    assert find(probs, "steps must be a list").line == 3


# -- references -------------------------------------------------------------------------------


def test_unknown_team_with_did_you_mean() -> None:
    text = doc(
        "- {id: s, type: start, next: a}\n- {id: a, team: sael, next: e}\n- {id: e, type: end}"
    )
    p = find(problems_of(text), "unknown team 'sael'")
    assert p.message == "unknown team 'sael' (did you mean 'sales'?)"
    assert p.element == "a"
    assert p.line == line_of(text, "{id: a,")


def test_work_step_without_a_team() -> None:
    p = find(problems_of(doc("- {id: a, type: approval}")), "needs a 'team'")
    assert p.message == "a approval step needs a 'team'"


def test_flow_to_unknown_step_with_did_you_mean() -> None:
    text = doc(
        """
        - {id: s, type: start, next: review}
        - id: review
          team: sales
          next: reveiw_done
        - {id: review_done, type: end}
        """
    )
    probs = problems_of(text)
    p = find(probs, "flow to unknown step")
    assert p.message == "flow to unknown step 'reveiw_done' (did you mean 'review_done'?)"
    assert p.element == "review"
    assert p.line == line_of(text, "next: reveiw_done")


def test_unknown_flow_target_inside_a_list_points_at_the_entry() -> None:
    text = doc(
        """
        - {id: s, type: start, next: g}
        - id: g
          type: exclusive
          next:
            - {to: a, when: "x > 1"}
            - {to: bee, default: true}
        - {id: a, team: sales, next: e}
        - {id: b, team: sales, next: e}
        - {id: e, type: end}
        """
    )
    p = find(problems_of(text), "flow to unknown step 'bee'")
    assert p.line == line_of(text, "to: bee")


def test_role_escalation_lead_and_owner_references() -> None:
    text = doc(
        """
        - {id: s, type: start, next: a}
        - {id: a, team: sales, role: repp, escalate_to: samm, sla: PT1H, next: e}
        - {id: b, team: it, escalate_to: it, next: e}
        - {id: e, type: end}
        """,
        header="owner: anna\n",
        teams=TEAMS.replace("  it:\n", "  it:\n    lead: ivann\n"),
    )
    probs = problems_of(text)
    assert "(did you mean 'rep'?)" in find(probs, "no member of team 'sales' has role").message
    assert "(did you mean 'sam'?)" in find(probs, "escalate_to 'samm'").message
    assert find(probs, "escalate_to needs an 'sla'").element == "b"
    assert "(did you mean 'ivan'?)" in find(probs, "lead 'ivann' is not a member").message
    owner = find(probs, "owner 'anna' is not a member")
    assert "(did you mean 'ana'?)" in owner.message
    assert owner.line == 2


def test_reroute_to_unknown_step() -> None:
    text = doc(
        """
        - {id: s, type: start, next: j}
        - {id: j, type: automated, team: it, handler: "m:f", on_error: {reroute: fixx}, next: e}
        - {id: fix, team: it, next: e}
        - {id: e, type: end}
        """
    )
    p = find(problems_of(text), "on_error reroutes to unknown step 'fixx'")
    assert "(did you mean 'fix'?)" in p.message


def test_duplicate_member_and_bad_member_entries() -> None:
    teams = "teams:\n  sales:\n    members: [sam, sam, 5, {name: nobody}]\n"
    probs = problems_of(doc("- {id: a, team: sales}", teams=teams))
    assert find(probs, "member listed twice").element == "sam"
    assert find(probs, "a member is an id or a mapping").element == "sales.members[2]"
    assert find(probs, "a member needs an 'id'").element == "sales.members[3]"


# -- graph shape ------------------------------------------------------------------------------


def test_duplicate_step_ids_name_the_first_definition() -> None:
    text = doc(
        """
        - {id: s, type: start, next: a}
        - {id: a, team: sales, next: e}
        - {id: e, type: end}
        - {id: a, team: it, next: e}
        """
    )
    p = find(problems_of(text), "duplicate step id")
    assert p.element == "a"
    assert p.line == line_of(text, "{id: a,", 2)
    assert f"first defined at line {line_of(text, '{id: a,')}" in p.message


def test_duplicate_flow_ids() -> None:
    text = doc(
        """
        - {id: s, type: start, next: g}
        - id: g
          type: inclusive
          next:
            - {to: a, id: f1, when: "x"}
            - {to: e, id: f1, default: true}
        - {id: a, team: sales, next: e}
        - {id: e, type: end}
        """
    )
    p = find(problems_of(text), "duplicate flow id")
    assert p.element == "f1"
    assert p.line == line_of(text, "id: f1", 2)


def test_unreachable_step() -> None:
    text = doc(
        """
        - {id: s, type: start, next: a}
        - {id: a, team: sales, next: e}
        - {id: orphan, team: it, next: e}
        - {id: e, type: end}
        """
    )
    p = find(problems_of(text), "unreachable")
    assert p.element == "orphan"
    assert p.message == "unreachable: no path leads here from the start 's'"
    assert p.line == line_of(text, "id: orphan")


def test_a_reroute_target_counts_as_reachable() -> None:
    loads(
        doc(
            """
            - {id: s, type: start, next: j}
            - {id: j, type: automated, team: it, handler: "m:f", on_error: {reroute: fix}, next: e}
            - {id: fix, team: it, next: e}
            - {id: e, type: end}
            """
        )
    )


def test_no_path_to_an_end() -> None:
    text = doc(
        """
        - {id: s, type: start, next: a}
        - {id: a, team: sales, next: [b, e]}
        - {id: b, team: sales, next: c}
        - {id: c, team: sales, next: b}
        - {id: e, type: end}
        """
    )
    probs = problems_of(text)
    stuck = {p.element for p in probs if "no path from here reaches an end" in p.message}
    assert stuck == {"b", "c"}


def test_join_without_split() -> None:
    text = doc(
        """
        - {id: s, type: start, next: a}
        - {id: a, team: sales, next: j}
        - {id: b, team: sales, next: j}
        - {id: j, type: parallel, next: e}
        - {id: e, type: end}
        """
    )
    probs = problems_of(text)
    p = find(probs, "join without a split")
    assert p.message == "parallel join without a split before it"
    assert p.element == "j"
    assert p.line == line_of(text, "id: j")
    assert find(probs, "unreachable").element == "b"


def test_gateway_without_outgoing_flows() -> None:
    text = doc(
        """
        - {id: s, type: start, next: g}
        - {id: g, type: exclusive}
        """
    )
    p = find(problems_of(text), "has no outgoing flows")
    assert p.message == "exclusive gateway has no outgoing flows"
    assert p.element == "g"
    assert p.line == line_of(text, "id: g")


@pytest.mark.parametrize(
    ("steps", "fragment"),
    [
        (
            "- {id: s, type: start, next: g}\n- {id: g, type: parallel, next: e}\n"
            "- {id: e, type: end}",
            "parallel gateway neither splits nor joins",
        ),
        (
            "- {id: s, type: start, next: g}\n"
            "- id: g\n  type: parallel\n  next: [{to: a, when: x}, {to: e, default: true}]\n"
            "- {id: a, team: sales, next: e}\n- {id: e, type: end}",
            "a parallel gateway takes every flow",
        ),
        (
            "- {id: s, type: start, next: g}\n"
            "- id: g\n  type: exclusive\n  next: [{to: a, when: x}, e]\n"
            "- {id: a, team: sales, next: e}\n- {id: e, type: end}",
            "from an exclusive gateway needs 'when' or 'default: true'",
        ),
        (
            "- {id: s, type: start, next: g}\n"
            "- id: g\n  type: exclusive\n"
            "  next: [{to: a, when: x}, {to: e, default: true}, {to: b, default: true}]\n"
            "- {id: a, team: sales, next: e}\n- {id: b, team: sales, next: e}\n"
            "- {id: e, type: end}",
            "more than one default flow",
        ),
        (
            "- {id: s, type: start, next: a}\n"
            "- id: a\n  team: sales\n  next: [{to: b, when: x}, e]\n"
            "- {id: b, team: sales, next: e}\n- {id: e, type: end}",
            "mix of conditional and unconditional flows",
        ),
        (
            "- {id: s, type: start, next: g}\n"
            "- id: g\n  type: exclusive\n  next: [{to: e, default: true, when: x}, a]\n"
            "- {id: a, team: sales, next: e}\n- {id: e, type: end}",
            "a default flow takes no 'when' condition",
        ),
        (
            "- {id: s, type: start, next: a}\n- {id: a, team: sales, next: [s, e]}\n"
            "- {id: e, type: end}",
            "flow into the start step 's'",
        ),
        (
            "- {id: s, type: start, next: a}\n- {id: a, team: sales, next: e}\n"
            "- {id: e, type: end, next: a}",
            "an end step has no outgoing flows",
        ),
        (
            "- {id: s, type: start, next: a}\n- {id: a, team: sales, next: e}\n"
            "- {id: s2, type: start, next: a}\n- {id: e, type: end}",
            "a second start step (the first is 's')",
        ),
        (
            "- {id: s, type: start, next: a}\n- {id: a, team: sales, terminate: true, next: e}\n"
            "- {id: e, type: end}",
            "only end steps can terminate",
        ),
    ],
)
def test_gateway_and_event_shape_rules(steps: str, fragment: str) -> None:
    find(problems_of(doc(steps)), fragment)


# -- conditions, handlers, contracts, durations -----------------------------------------------


@pytest.mark.parametrize(
    ("condition", "fragment"),
    [
        ("amount >", "cannot parse 'amount >'"),
        ("__import__('os')", "function '__import__'"),
        ("x.__class__", "attribute '__class__' is not allowed"),
        ("2 ** 10", "operator Pow is not allowed"),
    ],
)
def test_condition_that_does_not_parse(condition: str, fragment: str) -> None:
    text = doc(
        f"""
        - {{id: s, type: start, next: g}}
        - id: g
          type: exclusive
          next:
            - to: a
              when: "{condition}"
            - {{to: e, default: true}}
        - {{id: a, team: sales, next: e}}
        - {{id: e, type: end}}
        """
    )
    p = find(problems_of(text), fragment)
    assert p.element == "g->a"
    assert p.message.startswith("when: ")
    assert p.line == line_of(text, "when:")


def test_condition_that_does_not_parse_is_reported_once() -> None:
    text = doc(
        """
        - {id: s, type: start, next: g}
        - id: g
          type: exclusive
          next: [{to: a, when: "amount >"}, {to: e, default: true}]
        - {id: a, team: sales, next: e}
        - {id: e, type: end}
        """
    )
    assert len(problems_of(text)) == 1


def test_require_hub_when_that_does_not_parse() -> None:
    text = doc("- {id: a, team: sales, require_hub_when: 'amount >>> 1'}")
    p = find(problems_of(text), "require_hub_when: cannot parse")
    assert p.element == "a"


def test_missing_handler_on_automated_step() -> None:
    text = doc(
        """
        - {id: s, type: start, next: job}
        - {id: job, type: automated, team: it, next: e}
        - {id: e, type: end}
        """
    )
    p = find(problems_of(text), "needs a 'handler'")
    assert p.message == "an automated step needs a 'handler' (module:function)"
    assert p.element == "job"
    assert p.line == line_of(text, "id: job")


@pytest.mark.parametrize("handler", ["nocolon", "a:b:c", "1mod:f", "mod:", ":f", "mod:f-g"])
def test_malformed_handler(handler: str) -> None:
    text = doc(f"- {{id: job, type: automated, team: it, handler: '{handler}'}}")
    find(problems_of(text), "must look like 'package.module:function'")


def test_handler_on_a_human_step() -> None:
    text = doc("- {id: a, team: sales, handler: 'm:f'}")
    find(problems_of(text), "only automated steps take a handler (this is a human step)")


@pytest.mark.parametrize(
    ("contract", "fragment"),
    [
        ("{type: objekt}", "is not valid under any of the given schemas"),
        ("{type: object, required: client}", "is not of type 'array'"),
        ("{minLength: -1}", "minLength"),
    ],
)
def test_invalid_json_schema_contract(contract: str, fragment: str) -> None:
    text = doc(
        f"""
        - {{id: s, type: start, next: a}}
        - id: a
          team: sales
          contract: {contract}
          next: e
        - {{id: e, type: end}}
        """
    )
    p = find(problems_of(text), "contract is not a valid JSON Schema")
    assert p.element == "a"
    assert p.line == line_of(text, "contract:")
    assert fragment in p.message or "-1" in p.message


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("sla", "5 hours", "sla: '5 hours' is not an ISO-8601 duration"),
        ("sla", "P1M", "sla: 'P1M': years and months have no fixed length"),
        ("wait", "0 9 * * 1-5", "looks like a cron expression"),
        ("sla", "PT", "sla: 'PT' is not an ISO-8601 duration"),
    ],
)
def test_bad_duration(key: str, value: str, fragment: str) -> None:
    kind = "timer" if key == "wait" else "human"
    text = doc(
        f"""
        - {{id: s, type: start, next: a}}
        - id: a
          type: {kind}
          team: sales
          {key}: "{value}"
          next: e
        - {{id: e, type: end}}
        """
    )
    p = find(problems_of(text), fragment)
    assert p.element == "a"
    assert p.line == line_of(text, f"{key}:")
    assert p.col == 5


def test_bad_backoff_duration() -> None:
    text = doc("- {id: j, type: automated, team: it, handler: 'm:f', retry: {backoff: soon}}")
    find(problems_of(text), "backoff: 'soon' is not an ISO-8601 duration")


def test_timer_and_message_steps_need_their_settings() -> None:
    text = doc(
        """
        - {id: s, type: start, next: [w, m]}
        - {id: w, type: timer, next: e}
        - {id: m, type: message, next: e}
        - {id: e, type: end}
        """
    )
    probs = problems_of(text)
    assert find(probs, "a timer step needs 'wait'").element == "w"
    assert find(probs, "a message step needs 'message'").element == "m"


def test_approval_outcome_keys() -> None:
    text = doc(
        """
        - {id: s, type: start, next: r}
        - id: r
          type: approval
          team: sales
          next: {aprove: e, reject: [e]}
        - {id: e, type: end}
        """
    )
    probs = problems_of(text)
    p = find(probs, "approval outcome must be one of approve, reject, rework")
    assert "not 'aprove' (did you mean 'approve'?)" in p.message
    assert p.line == line_of(text, "aprove")
    find(probs, "an outcome leads to a step id")


def test_zero_backoff_is_kept() -> None:
    d = loads(
        doc(
            """
            - {id: s, type: start, next: j}
            - {id: j, type: automated, team: it, handler: "m:f", retry: {backoff: PT0S}, next: e}
            - {id: e, type: end}
            """
        )
    )
    assert d.steps["j"].retry.backoff == 0.0


def test_retry_shorthand_and_mapping() -> None:
    d = loads(
        doc(
            """
            - {id: s, type: start, next: [a, b]}
            - {id: a, type: automated, team: it, handler: "m:f", retry: 4, next: e}
            - id: b
              type: automated
              team: it
              handler: "m:f"
              retry: {max_attempts: 5, backoff: PT1M, factor: 3, max_backoff: PT10M}
              on_error: {reroute: e}
              next: e
            - {id: e, type: end}
            """
        )
    )
    assert d.steps["a"].retry.max_attempts == 4
    rb = d.steps["b"].retry
    assert (rb.max_attempts, rb.backoff, rb.factor, rb.max_backoff) == (5, 60, 3.0, 600)
    assert [rb.delay(n) for n in (1, 2, 3, 4)] == [60, 180, 540, 600]
    assert d.steps["b"].on_error.action is ErrorAction.REROUTE
    assert d.steps["b"].on_error.to == "e"


# -- all problems at once ---------------------------------------------------------------------

FIVE_MISTAKES = """\
process: onboarding
teams:
  sales:
    members: [sam, ana]
  it:
    members: [ivan]
steps:
  - {id: start, type: start, next: capture}
  - id: capture
    team: sael
    sla: 4 hours
    next: gate
  - id: gate
    type: exclusive
    next:
      - {to: provision, when: "amount >"}
      - {to: done, default: true}
  - id: provision
    type: automated
    team: it
    next: finish
  - {id: done, type: end}
"""


def test_five_mistakes_are_all_reported_with_their_lines() -> None:
    probs = problems_of(FIVE_MISTAKES, "five.yaml")
    text = FIVE_MISTAKES
    expected = [
        ("capture", "unknown team 'sael' (did you mean 'sales'?)", line_of(text, "team: sael")),
        ("capture", "sla: '4 hours' is not an ISO-8601 duration", line_of(text, "sla:")),
        ("gate->provision", "when: cannot parse 'amount >'", line_of(text, "amount >")),
        ("provision", "an automated step needs a 'handler'", line_of(text, "id: provision")),
        ("provision", "flow to unknown step 'finish'", line_of(text, "next: finish")),
    ]
    for element, fragment, line in expected:
        p = find(probs, fragment)
        assert (p.element, p.line, p.file) == (element, line, "five.yaml"), str(p)
    # The rendered error lists every problem, one per line, in file order.
    rendered = str(DefinitionError(probs)).splitlines()
    assert len(rendered) == len(probs)
    assert [p.line for p in probs] == sorted(p.line for p in probs)
    assert all(line.startswith("five.yaml:") for line in rendered)


def test_problem_renders_file_line_column_element_and_message() -> None:
    p = Problem("f.yaml", 3, 5, "step-a", "something is wrong")
    assert str(p) == "f.yaml:3:5: step-a: something is wrong"


def test_two_approval_outcomes_may_lead_to_the_same_step() -> None:
    d = loads(
        doc(
            """
            - {id: s, type: start, next: r}
            - {id: r, type: approval, team: sales, next: {approve: notify, reject: notify}}
            - {id: notify, team: sales, next: e}
            - {id: e, type: end}
            """
        )
    )
    assert len(d.outgoing["r"]) == 2


@pytest.mark.parametrize("path", sorted(EXAMPLE.parent.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_loads(path: Path) -> None:
    d = load(path)
    assert d.steps


def test_version_must_be_positive() -> None:
    text = doc("- {id: a, team: sales}", header="version: 0\n")
    p = find(problems_of(text), "version must be at least 1")
    assert p.line == line_of(text, "version:")


def test_reference_problems_point_at_the_key_that_is_wrong() -> None:
    text = doc(
        """
        - {id: s, type: start, next: a}
        - id: a
          name: Capture
          team: sales
          role: repp
          handler: "m:f"
          next: b
        - id: b
          name: Check
          team: sael
          sla: PT1H
          escalate_to: nobody
          next: j
        - id: j
          type: automated
          team: it
          handler: "not a handler"
          on_error: {reroute: nowhere}
          next: e
        - {id: e, type: end}
        """
    )
    probs = problems_of(text)
    for fragment, needle in [
        ("has role 'repp'", "role: repp"),
        ("only automated steps take a handler", 'handler: "m:f"'),
        ("unknown team 'sael'", "team: sael"),
        ("escalate_to 'nobody'", "escalate_to:"),
        ("must look like 'package.module:function'", 'handler: "not'),
        ("on_error reroutes to unknown step 'nowhere'", "on_error:"),
    ]:
        p = find(probs, fragment)
        assert (p.line, p.col) == (line_of(text, needle), 5), str(p)


@pytest.mark.parametrize(
    ("step", "key", "fragment"),
    [
        ("{id: a, team: sales, wait: PT1H}", "wait", "'wait' applies to timer steps, not human"),
        ("{id: a, team: sales, message: go}", "message", "'message' applies to message steps"),
        ("{id: a, type: timer, wait: PT1H, sla: PT1H}", "sla", "'sla' applies to"),
        ("{id: a, type: timer, wait: PT1H, retry: 3}", "retry", "not timer steps"),
        ("{id: a, type: automated, team: it, handler: 'm:f', role: x}", "role", "'role'"),
        ("{id: a, type: parallel, outputs: [x], next: [e, e2]}", "outputs", "not parallel"),
    ],
)
def test_settings_that_do_not_apply_to_the_kind_of_step(step: str, key: str, fragment: str) -> None:
    text = doc(f"- {{id: s, type: start, next: a}}\n- {step}\n- {{id: e, type: end}}")
    if "e2" in step:
        text += "  - {id: e2, type: end}\n"
    else:
        text = text.replace("- " + step, "- " + step[:-1] + ", next: e}")
    p = find(problems_of(text), fragment)
    assert p.element == "a"
    assert p.line == line_of(text, f"{key}:")


def test_approval_outcomes_to_the_same_step_get_distinct_flow_ids() -> None:
    d = loads(
        doc(
            """
            - {id: s, type: start, next: r}
            - {id: r, type: approval, team: sales, next: {approve: n, reject: n, rework: s2}}
            - {id: s2, team: sales, next: r}
            - {id: n, team: sales, next: e}
            - {id: e, type: end}
            """
        )
    )
    assert [f.id for f in d.outgoing["r"]] == ["r->n", "r->n[reject]", "r->s2"]
