"""Load a process definition from YAML, reporting every problem with file, line and column.

The loader reads with ruamel.yaml's round-trip parser because it keeps the position of every key
and value; a problem found later (say, a flow to a step that does not exist) still points at the
line the user wrote. Structural checks (keys, types, values) happen here; graph checks live in
:mod:`accord.model.validate`. Problems are collected, never raised one at a time.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from accord.errors import DefinitionError, ExpressionError, Problem
from accord.model import expr
from accord.model.durations import parse_cycle, parse_duration
from accord.model.types import (
    APPROVAL_OUTCOMES,
    THROWS,
    TRIGGERS,
    ErrorAction,
    Flow,
    Location,
    Loop,
    Member,
    Mode,
    MultiInstance,
    OnError,
    ProcessDefinition,
    Retry,
    Step,
    StepKind,
    Team,
)

MAX_FILE_BYTES = 5 * 1024 * 1024

PROCESS_KEYS = {
    "process",
    "version",
    "name",
    "description",
    "owner",
    "mode",
    "teams",
    "steps",
    "scenario",
}
TEAM_KEYS = {"name", "members", "lead", "wip_limit", "assignment"}
MEMBER_KEYS = {"id", "name", "roles"}
STEP_KEYS = {
    "id",
    "type",
    "name",
    "team",
    "role",
    "handler",
    "inputs",
    "outputs",
    "contract",
    "sla",
    "escalate_to",
    "retry",
    "on_error",
    "mode",
    "require_hub_when",
    "wait",
    "message",
    "terminate",
    "compliance",
    "next",
    "multi_instance",
    "loop",
    # scopes and events (see docs/definitions.md#sub-processes-and-events)
    "steps",
    "on",
    "attached_to",
    "interrupting",
    "code",
    "signal",
    "throw",
    "date",
    "cycle",
}
FLOW_KEYS = {"to", "when", "default", "id", "message"}
RETRY_KEYS = {"max_attempts", "backoff", "factor", "max_backoff"}
ASSIGNMENTS = ("round-robin", "least-loaded", "pull")


def suggest(word: str, choices: Any) -> str:
    """A "did you mean" suffix for a misspelt name, or an empty string."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Reader:
    """Walks the parsed YAML, turning positions into Locations and mistakes into Problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def loc_key(self, node: Any, key: Any) -> Location:
        lc = getattr(node, "lc", None)
        if lc is not None:
            try:
                if isinstance(key, int):
                    line, col = lc.item(key)
                else:
                    line, col = lc.key(key)
                return Location(self.file, line + 1, col + 1)
            except (KeyError, IndexError, TypeError, AttributeError):
                pass
        return self.loc_node(node)

    def loc_node(self, node: Any) -> Location:
        lc = getattr(node, "lc", None)
        if lc is not None and lc.line is not None:
            return Location(self.file, lc.line + 1, lc.col + 1)
        return Location(self.file, 1, 1)

    def problem(self, loc: Location, element: str, message: str) -> None:
        self.problems.append(Problem(loc.file, loc.line, loc.col, element, message))

    def check_keys(self, node: Mapping[str, Any], allowed: set[str], element: str) -> None:
        for key in node:
            if key not in allowed:
                self.problem(
                    self.loc_key(node, key),
                    element,
                    f"unknown key {key!r}{suggest(key, allowed)}",
                )

    def typed(self, node: Any, key: str, kinds: Any, element: str, what: str) -> Any:
        value = node.get(key)
        if value is None:
            return None
        # bool is a subclass of int: `retries: true` must not pass as a number.
        bool_ok = kinds is bool
        if not isinstance(value, kinds) or (isinstance(value, bool) and not bool_ok):
            self.problem(
                self.loc_key(node, key), element, f"{key} must be {what}, not {_kind(value)}"
            )
            return None
        return value

    def duration(self, node: Any, key: str, element: str) -> float | None:
        value = node.get(key)
        if value is None:
            return None
        try:
            seconds = parse_duration(str(value))
        except ValueError as exc:
            self.problem(self.loc_key(node, key), element, f"{key}: {exc}")
            return None
        return seconds

    def expression(self, node: Any, key: str, element: str) -> expr.Expression | None:
        value = node.get(key)
        if value is None:
            return None
        try:
            return expr.parse(str(value))
        except ExpressionError as exc:
            self.problem(self.loc_key(node, key), element, f"{key}: {exc}")
            return None


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "text" if isinstance(value, str) else type(value).__name__


def parse_yaml(text: str, file: str) -> Any:
    """Parse YAML text keeping positions; raise DefinitionError with the parser's location."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        msg = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise DefinitionError(
            [Problem(file, line, col, "yaml", f"malformed YAML: {msg}")]
        ) from None
    except YAMLError as exc:
        raise DefinitionError([Problem(file, 1, 1, "yaml", f"malformed YAML: {exc}")]) from None


def load(path: str | Path) -> ProcessDefinition:
    """Load and validate a process definition file. Raise DefinitionError listing every problem.

    BPMN files (``.bpmn``, ``.bpmn2``, ``.bpmn20.xml``) are imported (see accord.bpmn)."""
    p = Path(path)
    if p.name.lower().endswith((".bpmn", ".bpmn2", ".bpmn20.xml")):
        from accord.bpmn.importer import load_bpmn

        return load_bpmn(p)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DefinitionError(
                [Problem(str(p), 1, 1, "file", f"file is {size} bytes; the limit is 5 MiB")]
            )
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError([Problem(str(p), 1, 1, "file", f"cannot read: {exc}")]) from None
    return loads(text, str(p))


def loads(text: str, file: str = "<string>") -> ProcessDefinition:
    """Load and validate a process definition from YAML text."""
    return from_document(parse_yaml(text, file), file)


def from_document(doc: Any, file: str = "<memory>") -> ProcessDefinition:
    """Build a definition from parsed YAML (or plain dicts); raise DefinitionError on problems."""
    from accord.model.validate import validate

    r = _Reader(file)
    if not isinstance(doc, Mapping):
        r.problem(
            Location(file, 1, 1), "process", "the file must be a mapping with a 'process' key"
        )
        raise DefinitionError(r.problems)
    r.check_keys(doc, PROCESS_KEYS, "process")
    pid = doc.get("process")
    if not isinstance(pid, str) or not pid.strip():
        r.problem(r.loc_node(doc), "process", "'process' (the process id, text) is required")
        pid = "process"
    version = r.typed(doc, "version", int, pid, "a whole number")
    if version is None:
        version = 1
    elif version < 1:
        r.problem(r.loc_key(doc, "version"), pid, "version must be at least 1")
    mode = _mode(r, doc, pid) or Mode.CENTRAL
    teams = _teams(r, doc.get("teams"), doc)
    steps, flows = _steps(r, doc.get("steps"), doc)
    starts = [s.id for s in steps.values() if s.kind is StepKind.START and s.parent is None]
    start = starts[0] if starts else (next(iter(steps)) if steps else "")
    if len(starts) > 1:
        for sid in starts[1:]:
            r.problem(steps[sid].loc, sid, f"a second start step (the first is {starts[0]!r})")
    if not steps:
        r.problem(r.loc_key(doc, "steps"), pid, "a process needs at least one step")
    scenario = doc.get("scenario")
    if scenario is not None and not isinstance(scenario, Mapping):
        r.problem(r.loc_key(doc, "scenario"), pid, "scenario must be a mapping")
        scenario = None
    owner = doc.get("owner")
    definition = ProcessDefinition(
        id=pid,
        version=version,
        name=str(doc.get("name") or pid),
        owner=str(owner) if owner is not None else None,
        mode=mode,
        teams=teams,
        steps=steps,
        flows=tuple(flows),
        start=start,
        source=file,
        # kept as parsed (positions intact) so scenario problems point at the right line
        scenario=scenario if isinstance(scenario, dict) or scenario is None else dict(scenario),
        description=str(doc.get("description") or ""),
    )
    if steps:
        owner_loc = r.loc_key(doc, "owner")
        validate(definition, r.problems, owner_loc)
    if r.problems:
        raise DefinitionError(r.problems)
    return definition


def _plain(node: Any) -> Any:
    """ruamel's commented containers to plain dicts and lists (for JSON Schema and storage)."""
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _mode(r: _Reader, node: Mapping[str, Any], element: str) -> Mode | None:
    value = node.get("mode")
    if value is None:
        return None
    try:
        return Mode(str(value))
    except ValueError:
        r.problem(
            r.loc_key(node, "mode"),
            element,
            f"mode must be 'central' or 'local', not {value!r}{suggest(value, list(Mode))}",
        )
        return None


def _teams(r: _Reader, node: Any, doc: Any) -> dict[str, Team]:
    teams: dict[str, Team] = {}
    if node is None:
        r.problem(r.loc_node(doc), "teams", "'teams' is required (at least one team)")
        return teams
    if not isinstance(node, Mapping):
        r.problem(r.loc_key(doc, "teams"), "teams", "teams must be a mapping of team id to team")
        return teams
    for key, value in node.items():
        loc = r.loc_key(node, key)
        tid = str(key)
        body = {} if value is None else value
        if not isinstance(body, Mapping):
            r.problem(loc, tid, f"a team must be a mapping, not {_kind(body)}")
            continue
        r.check_keys(body, TEAM_KEYS, tid)
        members: list[Member] = []
        raw = body.get("members") or []
        if not isinstance(raw, list):
            r.problem(r.loc_key(body, "members"), tid, "members must be a list")
            raw = []
        seen: set[str] = set()
        for i, m in enumerate(raw):
            mloc = r.loc_key(raw, i)
            if isinstance(m, str):
                member = Member(m, m)
            elif isinstance(m, Mapping):
                r.check_keys(m, MEMBER_KEYS, f"{tid}.members[{i}]")
                if not isinstance(m.get("id"), str):
                    r.problem(mloc, f"{tid}.members[{i}]", "a member needs an 'id' (text)")
                    continue
                roles = m.get("roles") or []
                if isinstance(roles, str):
                    roles = [roles]
                member = Member(m["id"], str(m.get("name") or m["id"]), tuple(map(str, roles)))
            else:
                r.problem(mloc, f"{tid}.members[{i}]", "a member is an id or a mapping")
                continue
            if member.id in seen:
                r.problem(mloc, member.id, f"member listed twice in team {tid!r}")
            seen.add(member.id)
            members.append(member)
        wip = r.typed(body, "wip_limit", int, tid, "a whole number")
        if wip is not None and wip < 1:
            r.problem(r.loc_key(body, "wip_limit"), tid, "wip_limit must be at least 1")
        assignment = str(body.get("assignment") or "round-robin")
        if assignment not in ASSIGNMENTS:
            r.problem(
                r.loc_key(body, "assignment"),
                tid,
                f"assignment must be one of {', '.join(ASSIGNMENTS)}"
                f"{suggest(assignment, ASSIGNMENTS)}",
            )
        lead = body.get("lead")
        if lead is not None and str(lead) not in seen:
            r.problem(
                r.loc_key(body, "lead"), tid, f"lead {lead!r} is not a member{suggest(lead, seen)}"
            )
        teams[tid] = Team(
            tid,
            str(body.get("name") or tid),
            tuple(members),
            str(lead) if lead is not None else None,
            wip,
            assignment,
            loc,
        )
    return teams


def _steps(r: _Reader, node: Any, doc: Any) -> tuple[dict[str, Step], list[Flow]]:
    steps: dict[str, Step] = {}
    flows: list[Flow] = []
    if node is None:
        return steps, flows
    if not isinstance(node, list):
        r.problem(r.loc_key(doc, "steps"), "steps", "steps must be a list")
        return steps, flows
    pending_next: list[tuple[Step, Any, Any]] = []
    _read_steps(r, node, None, steps, pending_next)
    for step, body, nxt in pending_next:
        flows.extend(_flows(r, step, body, nxt))
    seen: dict[str, Flow] = {}
    for f in flows:
        if f.id in seen:
            r.problem(f.loc, f.id, f"duplicate flow id (also at line {seen[f.id].loc.line})")
        seen[f.id] = f
    return steps, flows


def _read_steps(
    r: _Reader,
    node: Any,
    parent: str | None,
    steps: dict[str, Step],
    pending_next: list[tuple[Step, Any, Any]],
) -> None:
    """Read a list of steps; a sub-process's own ``steps`` are read into the same flat map,
    each tagged with the sub-process it belongs to (its ``parent``)."""
    for i, body in enumerate(node):
        loc = r.loc_key(node, i)
        if not isinstance(body, Mapping):
            r.problem(loc, f"steps[{i}]", f"a step must be a mapping, not {_kind(body)}")
            continue
        sid = body.get("id")
        if not isinstance(sid, str) or not sid.strip():
            r.problem(loc, f"steps[{i}]", "a step needs an 'id' (text)")
            continue
        loc = r.loc_node(body)
        r.check_keys(body, STEP_KEYS, sid)
        if sid in steps:
            r.problem(loc, sid, f"duplicate step id (first defined at line {steps[sid].loc.line})")
            continue
        kind_text = body.get("type", "human")
        try:
            kind = StepKind(str(kind_text))
        except ValueError:
            r.problem(
                r.loc_key(body, "type"),
                sid,
                f"unknown step type {kind_text!r}{suggest(kind_text, list(StepKind))}",
            )
            kind = StepKind.HUMAN
        step = Step(
            id=sid,
            kind=kind,
            name=str(body.get("name") or sid),
            team=_opt_str(body.get("team")),
            role=_opt_str(body.get("role")),
            handler=_opt_str(body.get("handler")),
            inputs=_str_list(r, body, "inputs", sid),
            outputs=_str_list(r, body, "outputs", sid),
            contract=_contract(r, body, sid),
            sla=r.duration(body, "sla", sid),
            escalate_to=_opt_str(body.get("escalate_to")),
            retry=_retry(r, body, sid),
            on_error=_on_error(r, body, sid),
            mode=_mode(r, body, sid),
            require_hub_when=r.expression(body, "require_hub_when", sid),
            wait=r.duration(body, "wait", sid),
            message=_opt_str(body.get("message")),
            terminate=bool(r.typed(body, "terminate", bool, sid, "true or false")),
            compliance=bool(r.typed(body, "compliance", bool, sid, "true or false")),
            parent=parent,
            attached_to=_opt_str(body.get("attached_to")),
            on=_choice(r, body, "on", TRIGGERS, sid),
            interrupting=r.typed(body, "interrupting", bool, sid, "true or false") is not False,
            code=_opt_str(body.get("code")),
            signal=_opt_str(body.get("signal")),
            throw=_choice(r, body, "throw", THROWS, sid),
            date=_date(r, body, sid),
            multi=_multi(r, body, sid),
            loop=_loop(r, body, sid),
            loc=loc,
            key_locs={str(k): r.loc_key(body, k) for k in body},
        )
        if body.get("cycle") is not None:
            try:
                cycle = parse_cycle(str(body["cycle"]))
                repeat = cycle.repeat if cycle.repeat is not None else -1
                step = replace(step, wait=cycle.every, repeat=max(repeat, -1) or 1)
                if cycle.every <= 0 and cycle.repeat != 1:
                    # it would fire again and again at one moment: time would never move on
                    r.problem(
                        r.loc_key(body, "cycle"),
                        sid,
                        f"cycle: {body['cycle']!r} repeats without any time between",
                    )
            except ValueError as exc:
                r.problem(r.loc_key(body, "cycle"), sid, f"cycle: {exc}")
        nxt = body.get("next")
        if kind is StepKind.APPROVAL and isinstance(nxt, Mapping):
            # the outcomes routed are the outcomes a reviewer may give
            routed = tuple(str(o) for o in nxt if o in APPROVAL_OUTCOMES)
            step = replace(step, outcomes=routed)
        steps[sid] = step
        if "next" in body:
            pending_next.append((step, body, body["next"]))
        inner = body.get("steps")
        if inner is not None:
            if kind is not StepKind.SUBPROCESS:
                r.problem(
                    r.loc_key(body, "steps"),
                    sid,
                    f"only sub-processes hold steps, not {kind} steps",
                )
            elif not isinstance(inner, list):
                r.problem(r.loc_key(body, "steps"), sid, "steps must be a list")
            else:
                _read_steps(r, inner, sid, steps, pending_next)


MULTI_KEYS = {"sequential", "count", "collection", "item", "until", "output", "output_item"}
LOOP_KEYS = {"while", "max", "test_before"}


def _multi(r: _Reader, body: Any, element: str) -> MultiInstance | None:
    value = body.get("multi_instance")
    if value is None:
        return None
    if not isinstance(value, Mapping):
        r.problem(r.loc_key(body, "multi_instance"), element, "multi_instance must be a mapping")
        return None
    r.check_keys(value, MULTI_KEYS, f"{element}.multi_instance")
    count = value.get("count")
    multi = MultiInstance(
        sequential=bool(r.typed(value, "sequential", bool, element, "true or false")),
        count=r.expression({"count": str(count)}, "count", element) if count is not None else None,
        collection=_opt_str(value.get("collection")),
        item=_opt_str(value.get("item")),
        until=r.expression(value, "until", element),
        output=_opt_str(value.get("output")),
        output_item=_opt_str(value.get("output_item")),
    )
    if (multi.count is None) == (multi.collection is None):
        r.problem(
            r.loc_key(body, "multi_instance"),
            element,
            "multi_instance needs 'count' (how many) or 'collection' (a list field), one of them",
        )
    return multi


def _loop(r: _Reader, body: Any, element: str) -> Loop | None:
    value = body.get("loop")
    if value is None:
        return None
    if not isinstance(value, Mapping):
        r.problem(r.loc_key(body, "loop"), element, "loop must be a mapping")
        return None
    r.check_keys(value, LOOP_KEYS, f"{element}.loop")
    maximum = r.typed(value, "max", int, element, "a whole number")
    if maximum is not None and maximum < 0:
        r.problem(r.loc_key(value, "max"), element, "max must be at least 0")
    loop = Loop(
        condition=r.expression(value, "while", element),
        maximum=maximum,
        test_before=bool(r.typed(value, "test_before", bool, element, "true or false")),
    )
    if loop.condition is None and loop.maximum is None:
        r.problem(r.loc_key(body, "loop"), element, "a loop needs 'while' or 'max' (or both)")
    return loop


def _choice(r: _Reader, body: Any, key: str, choices: tuple[str, ...], element: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if str(value) not in choices:
        r.problem(
            r.loc_key(body, key),
            element,
            f"{key} must be one of {', '.join(choices)}, not {value!r}{suggest(value, choices)}",
        )
        return None
    return str(value)


def _date(r: _Reader, body: Any, element: str) -> float | None:
    value = body.get("date")
    if value is None:
        return None
    from datetime import UTC, datetime

    try:
        if isinstance(value, datetime):  # YAML reads an unquoted timestamp as one
            when = value
        else:
            when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    except ValueError:
        r.problem(
            r.loc_key(body, "date"),
            element,
            f"date {value!r} is not an ISO-8601 date-time (e.g. 2026-03-01T09:00:00Z)",
        )
        return None


def _flows(r: _Reader, step: Step, body: Any, nxt: Any) -> list[Flow]:
    out: list[Flow] = []
    loc = r.loc_key(body, "next")
    if nxt is None:
        return out
    if isinstance(nxt, str):
        return [Flow(f"{step.id}->{nxt}", step.id, nxt, loc=loc)]
    if isinstance(nxt, Mapping) and step.kind is StepKind.APPROVAL:
        # `next: {approve: a, reject: b, rework: c}`: an approval routes on its outcome.
        for outcome, target in nxt.items():
            oloc = r.loc_key(nxt, outcome)
            if outcome not in APPROVAL_OUTCOMES:
                r.problem(
                    oloc,
                    step.id,
                    f"approval outcome must be one of {', '.join(APPROVAL_OUTCOMES)}, "
                    f"not {outcome!r}{suggest(outcome, APPROVAL_OUTCOMES)}",
                )
                continue
            if not isinstance(target, str):
                r.problem(oloc, step.id, "an outcome leads to a step id")
                continue
            when = expr.parse(f"outcome == {outcome!r}")
            fid = f"{step.id}->{target}"
            if any(f.id == fid for f in out):
                fid = f"{step.id}->{target}[{outcome}]"  # two outcomes lead to the same step
            out.append(Flow(fid, step.id, target, when, loc=oloc))
        return out
    if not isinstance(nxt, list):
        r.problem(loc, step.id, "next must be a step id, a list, or (for approvals) a mapping")
        return out
    for i, item in enumerate(nxt):
        iloc = r.loc_key(nxt, i)
        if isinstance(item, str):
            out.append(Flow(f"{step.id}->{item}", step.id, item, loc=iloc))
            continue
        if not isinstance(item, Mapping):
            r.problem(iloc, step.id, "each next entry is a step id or a mapping with 'to'")
            continue
        r.check_keys(item, FLOW_KEYS, f"{step.id}.next[{i}]")
        target = item.get("to")
        if not isinstance(target, str):
            r.problem(iloc, f"{step.id}.next[{i}]", "a flow needs 'to' (a step id)")
            continue
        fid = str(item.get("id") or f"{step.id}->{target}")
        cond = r.expression(item, "when", fid)
        if cond is None and item.get("when") is not None:
            cond = expr.parse("false")  # already reported; keeps follow-on checks quiet
        default = bool(r.typed(item, "default", bool, fid, "true or false"))
        if default and cond is not None:
            r.problem(iloc, fid, "a default flow takes no 'when' condition")
        message = bool(r.typed(item, "message", bool, fid, "true or false"))
        if message and (cond is not None or default):
            r.problem(iloc, fid, "a message flow is always taken: no 'when' or 'default'")
        out.append(Flow(fid, step.id, target, cond, default, iloc, message))
    return out


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _str_list(r: _Reader, body: Any, key: str, element: str) -> tuple[str, ...]:
    value = body.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        r.problem(r.loc_key(body, key), element, f"{key} must be a list of field names")
        return ()
    return tuple(value)


def _contract(r: _Reader, body: Any, element: str) -> dict[str, Any] | None:
    value = body.get("contract")
    if value is None:
        return None
    if not isinstance(value, Mapping):
        r.problem(r.loc_key(body, "contract"), element, "contract must be a JSON Schema mapping")
        return None
    import jsonschema

    schema: dict[str, Any] = _plain(value)
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        r.problem(
            r.loc_key(body, "contract"),
            element,
            f"contract is not a valid JSON Schema: {exc.message}",
        )
        return None
    return schema


def _retry(r: _Reader, body: Any, element: str) -> Retry:
    value = body.get("retry")
    if value is None:
        return Retry()
    if isinstance(value, int) and not isinstance(value, bool):
        return Retry(max_attempts=max(1, value))
    if not isinstance(value, Mapping):
        r.problem(r.loc_key(body, "retry"), element, "retry must be a number or a mapping")
        return Retry()
    r.check_keys(value, RETRY_KEYS, f"{element}.retry")
    attempts = r.typed(value, "max_attempts", int, element, "a whole number")
    factor = r.typed(value, "factor", (int, float), element, "a number")
    backoff = r.duration(value, "backoff", element)
    max_backoff = r.duration(value, "max_backoff", element)
    return Retry(
        # a retry mapping without max_attempts means "retry": three attempts in all
        max_attempts=max(1, attempts if attempts is not None else 3),
        backoff=backoff if backoff is not None else 60.0,
        factor=float(factor) if factor is not None else 2.0,
        max_backoff=max_backoff if max_backoff is not None else 86400.0,
    )


def _on_error(r: _Reader, body: Any, element: str) -> OnError:
    value = body.get("on_error")
    if value is None or value == "pause":
        return OnError()
    if isinstance(value, Mapping) and set(value) == {"reroute"}:
        return OnError(ErrorAction.REROUTE, str(value["reroute"]))
    r.problem(
        r.loc_key(body, "on_error"),
        element,
        "on_error must be 'pause' or a mapping {reroute: STEP_ID}",
    )
    return OnError()
