"""Simulation scenarios: who arrives when, how long work takes, what people enter.

A scenario is either the ``scenario:`` section of a process file or a separate YAML file with the
same keys (like Prosimos' or BIMP's simulation scenarios), so one process can be run under many.
Everything has a default, so a process with no scenario still runs. Every random draw comes from
a generator seeded by (seed, purpose, case, step, visit): the same seed gives the same run, and a
resumed run draws the same numbers for the work that is left.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from accord.errors import DefinitionError, Problem
from accord.model.durations import parse_duration
from accord.model.loader import parse_yaml, suggest
from accord.model.types import ProcessDefinition, Step, StepKind

SCENARIO_KEYS = {"arrivals", "teams", "steps", "branches", "hub", "issues"}
HUB_KEYS = {"coordinators", "decision", "hours", "days"}
ISSUE_KEYS = {"rate", "at_fault", "proposal", "counter_rate", "response"}
STEP_KEYS = {"duration", "data", "fail_rate", "errors", "arrives"}
ARRIVES_KEYS = {"chance", "after"}
TEAM_KEYS = {"size", "hours", "days"}
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_COMPANY = ["Acme", "Globex", "Initech", "Umbrella", "Stark", "Hooli", "Vandelay", "Tyrell"]
_SUFFIX = ["Ltd", "GmbH", "Inc", "SA", "BV", "plc", "AG", "Oy"]
_NAMES = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim"]


@dataclass(frozen=True, slots=True)
class Dist:
    """A non-negative random quantity (seconds for durations, plain numbers for data)."""

    kind: str
    a: float = 0.0
    b: float = 0.0
    c: float = 0.0

    def sample(self, rng: random.Random) -> float:
        """Draw one value."""
        k = self.kind
        if k == "fixed":
            return self.a
        if k == "exponential":
            return rng.expovariate(1.0 / self.a) if self.a > 0 else 0.0
        if k == "uniform":
            return rng.uniform(self.a, self.b)
        if k == "triangular":
            return rng.triangular(self.a, self.b, self.c)  # (low, high, mode)
        if k == "normal":
            return max(0.0, rng.gauss(self.a, self.b))
        # lognormal parameterised by its own mean and sd, which is what people can estimate
        mean, sd = self.a, self.b
        if mean <= 0:
            return 0.0
        sigma2 = math.log(1 + (sd / mean) ** 2)
        return rng.lognormvariate(math.log(mean) - sigma2 / 2, math.sqrt(sigma2))

    @property
    def mean(self) -> float:
        """The expected value."""
        if self.kind in ("fixed", "exponential", "lognormal", "normal"):
            return self.a
        if self.kind == "uniform":
            return (self.a + self.b) / 2
        return (self.a + self.b + self.c) / 3


@dataclass(frozen=True, slots=True)
class Generator:
    """How a synthetic member fills in one data field."""

    kind: str
    choices: tuple[tuple[Any, float], ...] = ()
    dist: Dist | None = None
    value: Any = None

    def sample(self, rng: random.Random) -> Any:
        """Draw one value."""
        if self.kind == "choice":
            values = [c[0] for c in self.choices]
            weights = [c[1] for c in self.choices]
            return rng.choices(values, weights)[0]
        if self.kind == "dist" and self.dist is not None:
            return round(self.dist.sample(rng), 2)
        if self.kind == "bool":
            return rng.random() < float(self.value)
        if self.kind == "faker":
            if self.value == "name":
                return f"{rng.choice(_NAMES)} {rng.choice(_NAMES)}son"
            return f"{rng.choice(_COMPANY)} {rng.choice(_SUFFIX)}"
        return self.value


@dataclass(frozen=True, slots=True)
class Arrival:
    """When the world outside sends what a catching event waits for (a message or a signal):
    with probability ``chance`` each time the catcher is armed, ``after`` that long."""

    chance: float
    after: Dist


@dataclass(frozen=True, slots=True)
class StepScenario:
    """How one step behaves in the simulation."""

    duration: Dist
    data: dict[str, Generator] = field(default_factory=dict)
    fail_rate: float = 0.0
    # BPMN error codes an attempt ends with, each with its probability (work steps)
    errors: tuple[tuple[str, float], ...] = ()
    # when the outside world sends what this catching event waits for (None: the default)
    arrives: Arrival | None = None

    def error(self, rng: random.Random) -> str | None:
        """The BPMN error code an attempt ends with, if any (one draw)."""
        if not self.errors:
            return None
        u = rng.random()
        for code, p in self.errors:
            if u < p:
                return code
            u -= p
        return None


@dataclass(frozen=True, slots=True)
class TeamScenario:
    """A team's size and working hours (seconds from midnight, weekdays 0=Monday)."""

    size: int | None = None
    open_s: float = 0.0
    close_s: float = 86400.0
    days: frozenset[int] = frozenset(range(7))

    @property
    def always(self) -> bool:
        """Works around the clock."""
        return self.open_s == 0.0 and self.close_s == 86400.0 and len(self.days) == 7


@dataclass(frozen=True, slots=True)
class HubScenario:
    """A coordinating team (a PMO, an onboarding coordinator) whose decision every central
    assignment and handoff needs: finite people, each decision taking time."""

    coordinators: int
    decision: Dist
    hours: TeamScenario


@dataclass(frozen=True, slots=True)
class IssueScenario:
    """How often work on a step finds a problem caused by an earlier step, and how people react:
    the team at fault counters at ``counter_rate``; every answer takes ``response``."""

    rate: float
    at_fault: str
    proposal: str = "rework"
    counter_rate: float = 0.2
    response: Dist = Dist("exponential", 7200.0)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A whole workload."""

    interarrival: Dist
    steps: dict[str, StepScenario]
    teams: dict[str, TeamScenario]
    branches: dict[str, tuple[tuple[str, float], ...]]
    automated: frozenset[str] = frozenset()
    hub: HubScenario | None = None
    issues: dict[str, IssueScenario] = field(default_factory=dict)

    def step(self, step_id: str) -> StepScenario:
        """A step's behaviour (defaults where the scenario is silent)."""
        found = self.steps.get(step_id)
        if found is not None:
            return found
        return DEFAULT_AUTOMATED if step_id in self.automated else DEFAULT_STEP

    def team(self, team_id: str | None) -> TeamScenario:
        """A team's hours (around the clock where the scenario is silent)."""
        return self.teams.get(team_id or "") or TeamScenario()

    def arrival(self, d: ProcessDefinition, step_id: str) -> Arrival | None:
        """When the outside world sends what catching event ``step_id`` waits for: the
        scenario's ``arrives``, else the default (see :func:`default_arrival`); None for a
        step that catches nothing from outside."""
        step = d.steps.get(step_id)
        if step is None or not catches_from_outside(step):
            return None
        found = self.steps.get(step_id)
        if found is not None and found.arrives is not None:
            return found.arrives
        return default_arrival(d, step, self.step(step_id).duration)


DEFAULT_STEP = StepScenario(Dist("exponential", 1800.0))
DEFAULT_AUTOMATED = StepScenario(Dist("fixed", 5.0))
DEFAULT_EVENT = Arrival(0.1, Dist("exponential", 1800.0))
DEFAULT_ERROR_RATE = 0.05
"""Where the scenario is silent, a work step with error boundaries of its own ends an attempt
with each of their codes with this probability (a catch-all boundary: code ``error``)."""
"""Where the scenario is silent, a message or signal boundary or event sub-process that nothing
in the case triggers is triggered from outside with this chance each time it is armed, after
this long (so exception paths run now and then, and the normal path most of the time)."""


def catches_from_outside(step: Step) -> bool:
    """Whether the world outside may send what ``step`` waits for: a message or signal step,
    or a message or signal boundary or event sub-process."""
    if step.kind in (StepKind.MESSAGE, StepKind.SIGNAL):
        return True
    eventful = step.kind is StepKind.BOUNDARY or (
        step.kind is StepKind.SUBPROCESS and step.on is not None
    )
    return eventful and step.on in ("message", "signal")


def sent_inside(d: ProcessDefinition, step: Step) -> bool:
    """Whether the case itself produces what ``step`` waits for: a message flow leads to it
    (or to the start of its event sub-process), or a step of the model throws its signal."""
    signal = step.signal if step.kind is StepKind.SIGNAL or step.on == "signal" else None
    if signal is not None:
        return any(s.throw == "signal" and s.signal == signal for s in d.steps.values())
    targets = {step.id} | {s.id for s in d.steps.values()
                           if s.parent == step.id and s.kind is StepKind.START}  # fmt: skip
    return any(f.message for t in targets for f in d.incoming.get(t, ()))


def default_arrival(d: ProcessDefinition, step: Step, duration: Dist) -> Arrival:
    """What the outside world does where the scenario is silent: nothing, if the case itself
    sends it; for a message or signal step, send it after the step's ``duration``; for a
    boundary or event sub-process, :data:`DEFAULT_EVENT`."""
    if sent_inside(d, step):
        return Arrival(0.0, duration)
    if step.kind in (StepKind.MESSAGE, StepKind.SIGNAL):
        return Arrival(1.0, duration)
    return DEFAULT_EVENT


def load_scenario(
    d: ProcessDefinition, path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> Scenario:
    """The scenario from ``path`` if given, else the definition's own section, else defaults."""
    file = str(path) if path else d.source
    raw: Any
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise DefinitionError([Problem(str(path), 1, 1, "scenario", str(exc))]) from None
        raw = parse_yaml(text, str(path))
        if isinstance(raw, Mapping) and "scenario" in raw and "process" not in raw:
            raw = raw["scenario"]
        if isinstance(raw, Mapping) and "process" in raw:
            raw = raw.get("scenario") or {}
    else:
        raw = d.scenario or {}
    if overrides:
        raw = {**dict(raw), **dict(overrides)}
    return _build(d, raw, file)


def _build(d: ProcessDefinition, raw: Any, file: str) -> Scenario:
    problems: list[Problem] = []

    def bad(element: str, message: str, node: Any = None, key: Any = None) -> None:
        line, col = 1, 1
        lc = getattr(node, "lc", None)
        if lc is not None:
            try:
                line, col = lc.key(key) if key is not None else (lc.line, lc.col)
                line, col = line + 1, col + 1
            except (KeyError, TypeError, AttributeError):
                pass
        problems.append(Problem(file, line, col, element, message))

    if not isinstance(raw, Mapping):
        bad("scenario", "a scenario is a mapping")
        raise DefinitionError(problems)
    for key in raw:
        if key not in SCENARIO_KEYS:
            bad("scenario", f"unknown key {key!r}{suggest(key, SCENARIO_KEYS)}", raw, key)

    interarrival = Dist("exponential", 3600.0)
    arr = raw.get("arrivals")
    if arr is not None:
        if isinstance(arr, Mapping) and "every" in arr:
            try:
                interarrival = Dist("exponential", parse_duration(str(arr["every"])))
            except ValueError as exc:
                bad("arrivals", str(exc), arr, "every")
        elif isinstance(arr, Mapping) and "per_day" in arr:
            try:
                per_day = float(arr["per_day"])
                if per_day <= 0:
                    raise ValueError
                interarrival = Dist("exponential", 86400.0 / per_day)
            except (TypeError, ValueError):
                bad("arrivals", "per_day must be a positive number", arr, "per_day")
        elif isinstance(arr, Mapping) and "dist" in arr:
            got = _dist(arr, True, lambda m: bad("arrivals", m, arr))
            interarrival = got or interarrival
        else:
            bad("arrivals", "arrivals takes {every: DURATION} or {per_day: N}", raw, "arrivals")

    steps: dict[str, StepScenario] = {}
    steps_raw = raw.get("steps") or {}
    for given, body in steps_raw.items():
        where = raw.get("steps")
        if given not in d.steps:
            bad(str(given), f"no step {given!r} in {d.id}{suggest(given, d.steps)}", where, given)
            continue
        if not isinstance(body, Mapping):
            bad(str(given), "a step's scenario is a mapping", where, given)
            continue
        sid = given
        parent = d.steps.get(d.steps[sid].parent or "")
        if d.steps[sid].kind is StepKind.START and parent is not None and parent.on is not None:
            sid = parent.id  # an event sub-process's start stands for the event sub-process
        for key in body:
            if key not in STEP_KEYS:
                bad(str(sid), f"unknown key {key!r}{suggest(key, STEP_KEYS)}", body, key)
        default = DEFAULT_AUTOMATED if d.steps[sid].kind is StepKind.AUTOMATED else DEFAULT_STEP
        duration = default.duration
        if "duration" in body:
            got = _dist(
                body["duration"], True, lambda m, s=sid, b=body: bad(str(s), m, b, "duration")
            )
            duration = got or duration
        gens: dict[str, Generator] = {}
        for fname, spec in (body.get("data") or {}).items():
            g = _generator(
                spec, lambda m, s=sid, f=fname, b=body: bad(f"{s}.data.{f}", m, b, "data")
            )
            if g is not None:
                gens[str(fname)] = g
        rate = body.get("fail_rate", 0.0)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            bad(str(sid), "fail_rate must be a probability between 0 and 1", body, "fail_rate")
            rate = 0.0
        errors = _errors(d, str(sid), body, bad) if "errors" in body else ()
        arrives = _arrives(d, str(sid), body, duration, bad) if "arrives" in body else None
        steps[str(sid)] = StepScenario(duration, gens, float(rate), errors, arrives)

    teams: dict[str, TeamScenario] = {}
    for tid, body in (raw.get("teams") or {}).items():
        if tid not in d.teams:
            bad(str(tid), f"no team {tid!r}{suggest(tid, d.teams)}", raw.get("teams"), tid)
            continue
        if not isinstance(body, Mapping):
            bad(str(tid), "a team's scenario is a mapping", raw.get("teams"), tid)
            continue
        for key in body:
            if key not in TEAM_KEYS:
                bad(str(tid), f"unknown key {key!r}{suggest(key, TEAM_KEYS)}", body, key)
        size = body.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
            bad(str(tid), "size must be a whole number of at least 1", body, "size")
            size = None
        open_s, close_s = 0.0, 86400.0
        if body.get("hours") is not None:
            try:
                open_s, close_s = _hours(str(body["hours"]))
            except ValueError as exc:
                bad(str(tid), str(exc), body, "hours")
        days = frozenset(range(5)) if body.get("hours") is not None else frozenset(range(7))
        if body.get("days") is not None:
            try:
                days = _days(str(body["days"]))
            except ValueError as exc:
                bad(str(tid), str(exc), body, "days")
        teams[str(tid)] = TeamScenario(size, open_s, close_s, days)

    branches: dict[str, tuple[tuple[str, float], ...]] = {}
    for gid, body in (raw.get("branches") or {}).items():
        if gid not in d.steps:
            bad(str(gid), f"no step {gid!r}{suggest(gid, d.steps)}", raw.get("branches"), gid)
            continue
        targets = {f.target for f in d.outgoing.get(str(gid), ())}
        if d.steps[str(gid)].kind in (StepKind.PARALLEL, StepKind.EVENT_GATEWAY):
            bad(str(gid), "a parallel gateway takes every flow: it has no branches to draw",
                raw.get("branches"), gid)  # fmt: skip
            continue
        if not isinstance(body, Mapping) or not body:
            bad(str(gid), "branches map target steps to probabilities", raw.get("branches"), gid)
            continue
        pairs = []
        for target, p in body.items():
            if target not in targets:
                bad(str(gid), f"{target!r} is not a target of {gid!r} ({sorted(targets)})", body)
                continue
            if not isinstance(p, int | float) or p < 0:
                bad(str(gid), f"probability for {target!r} must be a non-negative number", body)
                continue
            pairs.append((str(target), float(p)))
        if pairs:
            branches[str(gid)] = tuple(pairs)

    hub: HubScenario | None = None
    hub_raw = raw.get("hub")
    if hub_raw is not None:
        if not isinstance(hub_raw, Mapping):
            bad(
                "hub",
                "hub takes {coordinators: N, decision: DURATION-DIST, hours: ...}",
                raw,
                "hub",
            )
        else:
            for key in hub_raw:
                if key not in HUB_KEYS:
                    bad("hub", f"unknown key {key!r}{suggest(key, HUB_KEYS)}", hub_raw, key)
            n = hub_raw.get("coordinators", 1)
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                bad("hub", "coordinators must be a whole number of at least 1", hub_raw)
                n = 1
            decision = Dist("exponential", 600.0)
            if "decision" in hub_raw:
                got = _dist(hub_raw["decision"], True, lambda m: bad("hub", m, hub_raw, "decision"))
                decision = got or decision
            open_s, close_s, days = 0.0, 86400.0, frozenset(range(7))
            if hub_raw.get("hours") is not None:
                try:
                    open_s, close_s = _hours(str(hub_raw["hours"]))
                    days = frozenset(range(5))
                except ValueError as exc:
                    bad("hub", str(exc), hub_raw, "hours")
            if hub_raw.get("days") is not None:
                try:
                    days = _days(str(hub_raw["days"]))
                except ValueError as exc:
                    bad("hub", str(exc), hub_raw, "days")
            hub = HubScenario(n, decision, TeamScenario(n, open_s, close_s, days))

    issues: dict[str, IssueScenario] = {}
    for sid, body in (raw.get("issues") or {}).items():
        where = raw.get("issues")
        if sid not in d.steps:
            bad(str(sid), f"no step {sid!r}{suggest(sid, d.steps)}", where, sid)
            continue
        if not isinstance(body, Mapping):
            bad(str(sid), "an issue scenario is a mapping", where, sid)
            continue
        for key in body:
            if key not in ISSUE_KEYS:
                bad(str(sid), f"unknown key {key!r}{suggest(key, ISSUE_KEYS)}", body, key)
        fault = str(body.get("at_fault") or "")
        if fault not in d.steps:
            bad(str(sid), f"at_fault must name a step{suggest(fault, d.steps)}", body, "at_fault")
            continue
        rate, counter = body.get("rate", 0.0), body.get("counter_rate", 0.2)
        if any(isinstance(x, bool) or not isinstance(x, int | float) or not 0 <= x <= 1
               for x in (rate, counter)):  # fmt: skip
            bad(str(sid), "rate and counter_rate are probabilities between 0 and 1", body)
            continue
        proposal = str(body.get("proposal") or "rework")
        if proposal not in ("rework", "waive", "cancel"):
            bad(str(sid), "proposal is rework, waive or cancel", body, "proposal")
            continue
        response = Dist("exponential", 7200.0)
        if "response" in body:
            got = _dist(body["response"], True, lambda m, b=body: bad("issues", m, b, "response"))
            response = got or response
        issues[str(sid)] = IssueScenario(float(rate), fault, proposal, float(counter), response)

    if problems:
        raise DefinitionError(problems)
    for s in d.steps.values():
        if s.kind.is_work and ("errors" not in (steps_raw.get(s.id) or {})):
            # a task with error boundaries of its own fails with their codes now and then
            codes = [b.code or "error" for b in d.steps.values()
                     if b.attached_to == s.id and b.on == "error"]  # fmt: skip
            if codes:
                auto = s.kind is StepKind.AUTOMATED
                base = steps.get(s.id) or (DEFAULT_AUTOMATED if auto else DEFAULT_STEP)
                errors = tuple((c, DEFAULT_ERROR_RATE) for c in dict.fromkeys(codes))
                steps[s.id] = replace(base, errors=errors)
    for s in d.steps.values():
        if s.kind is StepKind.APPROVAL and "outcome" not in steps.get(s.id, DEFAULT_STEP).data:
            base = steps.get(s.id, DEFAULT_STEP)
            gens = dict(base.data)
            gens["outcome"] = Generator("choice", (("approve", 0.9), ("rework", 0.1)))
            steps[s.id] = replace(base, data=gens)
    automated = frozenset(s.id for s in d.steps.values() if s.kind is StepKind.AUTOMATED)
    return Scenario(interarrival, steps, teams, branches, automated, hub, issues)


def _is_probability(p: Any) -> bool:
    return not isinstance(p, bool) and isinstance(p, int | float) and 0 <= p <= 1


def _errors(
    d: ProcessDefinition, sid: str, body: Mapping[str, Any], bad: Any
) -> tuple[tuple[str, float], ...]:
    """``errors: {CODE: P}``: BPMN error codes an attempt of a work step ends with."""
    spec = body["errors"]
    step = d.steps[sid]
    if not step.kind.is_work:
        bad(sid, f"errors apply to work steps (human, approval, automated), not {step.kind} "
            "steps", body, "errors")  # fmt: skip
        return ()
    if not isinstance(spec, Mapping):
        bad(sid, "errors map BPMN error codes to probabilities, e.g. {ERR_CODE: 0.05}",
            body, "errors")  # fmt: skip
        return ()
    catchers = [s for s in d.steps.values() if s.on == "error"]
    codes = sorted({s.code for s in catchers if s.code is not None})
    catch_all = any(s.code is None for s in catchers)
    out: list[tuple[str, float]] = []
    for code, p in spec.items():
        if not _is_probability(p):
            bad(sid, f"the probability of error {code!r} must be a number between 0 and 1",
                spec, code)  # fmt: skip
            continue
        if str(code) not in codes and not catch_all:
            known = f" (codes caught: {', '.join(codes)})" if codes else " (none catches errors)"
            bad(sid, f"no error boundary or event sub-process catches {code!r}"
                f"{suggest(str(code), codes) or known}", spec, code)  # fmt: skip
            continue
        out.append((str(code), float(p)))
    if sum(p for _, p in out) > 1:
        bad(sid, "the probabilities of errors add up to more than 1", body, "errors")
        return ()
    return tuple(out)


def _arrives(
    d: ProcessDefinition, sid: str, body: Mapping[str, Any], duration: Dist, bad: Any
) -> Arrival | None:
    """``arrives: {chance: P, after: DIST}``: when the outside world triggers a catcher."""
    spec = body["arrives"]
    step = d.steps[sid]
    if not catches_from_outside(step):
        what = f"{step.on} {step.kind}" if step.on else str(step.kind)
        hint = {
            "timer": ": its timer fires it",
            "error": ": an error comes from a step (use errors: on the step that fails)",
            "escalation": ": an escalation comes from a step of the model",
        }.get(step.on or "", "")
        a = "an" if what[:1] in "aeiou" else "a"
        bad(sid, "arrives applies to message and signal steps, boundaries and event "
            f"sub-processes, not {a} {what} step{hint}", body, "arrives")  # fmt: skip
        return None
    if not isinstance(spec, Mapping):
        bad(sid, "arrives takes {chance: P, after: DURATION-DIST}", body, "arrives")
        return None
    ok = True
    for key in spec:
        if key not in ARRIVES_KEYS:
            bad(sid, f"unknown key {key!r}{suggest(key, ARRIVES_KEYS)}", spec, key)
            ok = False
    chance = spec.get("chance", 1.0)
    if not _is_probability(chance):
        bad(sid, "chance must be a probability between 0 and 1", spec, "chance")
        ok = False
    eventful = step.kind not in (StepKind.MESSAGE, StepKind.SIGNAL)
    after: Dist | None = DEFAULT_EVENT.after if eventful else duration
    if "after" in spec:
        after = _dist(spec["after"], True, lambda m: bad(sid, m, spec, "after"))
    if not ok or after is None:
        return None
    return Arrival(float(chance), after)


def _seconds(value: Any, as_duration: bool) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if as_duration:
        number = isinstance(value, int | float)
        seconds = float(value) if number else parse_duration(str(value))
        if seconds < 0:
            raise ValueError(f"a duration cannot be negative ({value!r})")
        return seconds
    return float(value)


def _dist(spec: Any, as_duration: bool, bad: Any) -> Dist | None:
    if isinstance(spec, str | int | float) and not isinstance(spec, bool):
        try:
            return Dist("fixed", _seconds(spec, as_duration))
        except (TypeError, ValueError) as exc:
            bad(str(exc))
            return None
    if not isinstance(spec, Mapping) or "dist" not in spec:
        bad("a distribution is {dist: fixed|exponential|lognormal|normal|uniform|triangular, ...}")
        return None
    kind = str(spec["dist"])
    need = {
        "fixed": ("value",),
        "exponential": ("mean",),
        "lognormal": ("mean", "sd"),
        "normal": ("mean", "sd"),
        "uniform": ("min", "max"),
        "triangular": ("min", "mode", "max"),
    }
    if kind not in need:
        bad(f"unknown distribution {kind!r}{suggest(kind, need)}")
        return None
    missing = [k for k in need[kind] if k not in spec]
    if missing:
        bad(f"{kind} distribution needs {', '.join(missing)}")
        return None
    try:
        vals = [_seconds(spec[k], as_duration) for k in need[kind]]
    except (TypeError, ValueError) as exc:
        bad(str(exc))
        return None
    if kind == "uniform":
        return Dist(kind, vals[0], vals[1])
    if kind == "triangular":
        lo, mode, hi = vals
        if not lo <= mode <= hi:
            bad("triangular needs min <= mode <= max")
            return None
        return Dist(kind, lo, hi, mode)
    return Dist(kind, *vals)


def _generator(spec: Any, bad: Any) -> Generator | None:
    if not isinstance(spec, Mapping):
        return Generator("value", value=spec)
    if "choice" in spec:
        choices = spec["choice"]
        if isinstance(choices, list):
            return Generator("choice", tuple((c, 1.0) for c in choices))
        if isinstance(choices, Mapping) and choices:
            try:
                return Generator("choice", tuple((k, float(v)) for k, v in choices.items()))
            except (TypeError, ValueError):
                bad("choice weights must be numbers")
                return None
        bad("choice takes a list or a mapping of value to weight")
        return None
    if "dist" in spec:
        dist = _dist(spec, False, bad)
        return Generator("dist", dist=dist) if dist else None
    if "faker" in spec:
        if spec["faker"] not in ("company", "name"):
            bad("faker supports 'company' and 'name'")
            return None
        return Generator("faker", value=spec["faker"])
    if "bool" in spec:
        p = spec["bool"]
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
            bad("bool takes the probability of true, a number between 0 and 1")
            return None
        return Generator("bool", value=float(p))
    if "value" in spec:
        return Generator("value", value=spec["value"])
    bad("a data generator is {choice: ...}, {dist: ...}, {faker: ...}, {bool: P} or {value: X}")
    return None


def _hours(text: str) -> tuple[float, float]:
    try:
        a, b = text.split("-")
        ha, ma = (int(x) for x in a.strip().split(":"))
        hb, mb = (int(x) for x in b.strip().split(":"))
    except ValueError:
        raise ValueError(f"hours {text!r} must look like 09:00-17:00") from None
    open_s, close_s = ha * 3600.0 + ma * 60, hb * 3600.0 + mb * 60
    if not 0 <= open_s < close_s <= 86400:
        raise ValueError(f"hours {text!r}: opening must come before closing, within one day")
    return open_s, close_s


def _days(text: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        if "-" in part:
            a, b = part.split("-")
            if a not in DAYS or b not in DAYS:
                raise ValueError(f"days {text!r}: use mon..sun, e.g. mon-fri")
            i, j = DAYS.index(a), DAYS.index(b)
            out.update(range(i, j + 1) if i <= j else [*range(i, 7), *range(j + 1)])
        elif part in DAYS:
            out.add(DAYS.index(part))
        else:
            raise ValueError(f"days {text!r}: use mon..sun, e.g. mon-fri")
    return frozenset(out)
