"""Simulation scenarios (parsing, defaults, distributions), working hours, and run determinism."""

from __future__ import annotations

import random
import statistics
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from accord.clock import EPOCH
from accord.errors import DefinitionError
from accord.model import ProcessDefinition, load, loads
from accord.sim.calendar import add_working, next_open
from accord.sim.scenario import (
    DEFAULT_AUTOMATED,
    DEFAULT_STEP,
    Dist,
    Generator,
    Scenario,
    TeamScenario,
    load_scenario,
)

ROOT = Path(__file__).resolve().parents[2]
ONBOARDING = ROOT / "examples" / "client-onboarding.yaml"
H = 3600.0
DAY = 86400.0

PLAIN = loads(
    """
process: plain
teams:
  ops: {members: [olga]}
  it: {members: [ivan]}
steps:
  - {id: enter, team: ops, next: check}
  - id: check
    type: approval
    team: ops
    next: {approve: sync, reject: done, rework: enter}
  - {id: sync, type: automated, team: it, handler: mod:fn, next: done}
  - {id: done, type: end}
""",
    "plain.yaml",
)


@pytest.fixture(scope="module")
def onboarding() -> ProcessDefinition:
    return load(ONBOARDING)


def scenario_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def problems(d: ProcessDefinition, path: Path) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        load_scenario(d, path)
    return [str(p) for p in info.value.problems]


# -- defaults -----------------------------------------------------------------------------------


def test_a_process_without_scenario_gets_defaults() -> None:
    sc = load_scenario(PLAIN)
    assert isinstance(sc, Scenario)
    assert sc.interarrival == Dist("exponential", 3600.0)
    assert sc.step("enter") is DEFAULT_STEP
    assert sc.step("enter").duration == Dist("exponential", 1800.0)
    assert sc.step("enter").fail_rate == 0.0
    assert sc.branches == {}
    assert sc.teams == {}
    assert sc.team("ops") == TeamScenario()
    assert sc.team(None).always
    # an approval always gets an outcome, so simulated reviewers can decide
    outcome = sc.step("check").data["outcome"]
    assert outcome == Generator("choice", (("approve", 0.9), ("rework", 0.1)))


def test_an_automated_step_listed_without_a_duration_takes_seconds() -> None:
    sc = load_scenario(PLAIN, overrides={"steps": {"sync": {"fail_rate": 0.1}}})
    assert sc.step("sync").duration == DEFAULT_AUTOMATED.duration
    assert sc.step("sync").fail_rate == 0.1


def test_an_automated_step_not_listed_takes_the_automated_default() -> None:
    sc = load_scenario(PLAIN)
    assert sc.step("sync").duration == DEFAULT_AUTOMATED.duration


def test_the_examples_scenario_is_read(onboarding: ProcessDefinition) -> None:
    sc = load_scenario(onboarding)
    assert sc.interarrival == Dist("exponential", DAY / 6)
    assert sc.step("review").duration == Dist("triangular", 20 * 60.0, 3 * H, 45 * 60.0)
    assert sc.step("accounts").duration == Dist("fixed", 120.0)
    assert sc.step("accounts").fail_rate == 0.05
    assert sc.step("kickoff").duration == Dist("uniform", 30 * 60.0, H)
    risk = sc.step("request").data["risk"]
    assert risk.choices == (("low", 0.6), ("medium", 0.3), ("high", 0.1))
    sales = sc.team("sales")
    assert (sales.open_s, sales.close_s, sales.days) == (9 * H, 17 * H, frozenset(range(5)))
    assert sc.team("it").always


def test_arrival_forms(onboarding: ProcessDefinition) -> None:
    def arrivals(spec: Any) -> Dist:
        return load_scenario(onboarding, overrides={"arrivals": spec}).interarrival

    assert arrivals({"every": "PT2H"}) == Dist("exponential", 2 * H)
    assert arrivals({"per_day": 4}) == Dist("exponential", DAY / 4)
    assert arrivals({"dist": "uniform", "min": "PT1H", "max": "PT3H"}) == Dist("uniform", H, 3 * H)


def test_team_hours_days_and_size(onboarding: ProcessDefinition) -> None:
    sc = load_scenario(
        onboarding,
        overrides={
            "teams": {
                "sales": {"hours": "08:30-12:00", "size": 5},
                "it": {"days": "sat-mon"},
                "compliance": {"hours": "10:00-16:00", "days": "mon,wed,fri"},
            }
        },
    )
    sales = sc.team("sales")
    assert (sales.size, sales.open_s, sales.close_s) == (5, 8.5 * H, 12 * H)
    assert sales.days == frozenset(range(5))  # hours alone mean weekdays
    it = sc.team("it")
    assert it.days == frozenset({5, 6, 0})
    assert (it.open_s, it.close_s) == (0.0, DAY)
    assert not it.always
    assert sc.team("compliance").days == frozenset({0, 2, 4})


def test_a_separate_scenario_file_replaces_the_processs_own(
    onboarding: ProcessDefinition, tmp_path: Path
) -> None:
    path = scenario_file(
        tmp_path,
        """
        scenario:
          arrivals: {every: PT10M}
          steps:
            request:
              duration: PT15M
        """,
    )
    sc = load_scenario(onboarding, path)
    assert sc.interarrival == Dist("exponential", 600.0)
    assert sc.step("request").duration == Dist("fixed", 900.0)
    assert sc.teams == {}  # nothing from the process file's own scenario


# -- problems -----------------------------------------------------------------------------------


def test_misspelt_keys_are_reported_with_suggestions_and_positions(
    onboarding: ProcessDefinition, tmp_path: Path
) -> None:
    path = scenario_file(
        tmp_path,
        """
        arivals: {per_day: 8}
        steps:
          reveiw:
            duration: PT1H
          request:
            duraton: PT1H
        teams:
          itt: {size: 2}
          sales: {dayz: mon}
        """,
    )
    assert problems(onboarding, path) == [
        f"{path}:1:1: scenario: unknown key 'arivals' (did you mean 'arrivals'?)",
        f"{path}:3:3: reveiw: no step 'reveiw' in client-onboarding (did you mean 'review'?)",
        f"{path}:6:5: request: unknown key 'duraton' (did you mean 'duration'?)",
        f"{path}:8:3: itt: no team 'itt' (did you mean 'it'?)",
        f"{path}:9:11: sales: unknown key 'dayz' (did you mean 'days'?)",
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("steps: {request: {duration: PT5X}}", "'PT5X' is not an ISO-8601 duration"),
        ("steps: {request: {duration: P1M}}", "years and months have no fixed length"),
        ("steps: {request: {duration: {dist: exponential, mean: soon}}}", "not an ISO-8601"),
        ("steps: {request: {duration: {dist: exponental, mean: PT1H}}}", "did you mean"),
        ("steps: {request: {duration: {dist: lognormal, mean: PT1H}}}", "needs sd"),
        (
            "steps: {request: {duration: {dist: triangular, min: PT2H, mode: PT1H, max: PT3H}}}",
            "min <= mode <= max",
        ),
        ("steps: {request: {duration: [PT1H]}}", "a distribution is"),
        ("steps: {request: {fail_rate: 1.5}}", "fail_rate must be a probability"),
        ("steps: {request: {data: {risk: {faker: colour}}}}", "faker supports"),
        ("steps: {request: {data: {risk: {choice: {low: heavy}}}}}", "weights must be numbers"),
        ("steps: {request: {data: {risk: {pick: 1}}}}", "a data generator is"),
        ("steps: {request: oops}", "a step's scenario is a mapping"),
        ("arrivals: {every: PT1Q}", "not an ISO-8601 duration"),
        ("arrivals: {per_day: 0}", "per_day must be a positive number"),
        ("arrivals: {hourly: 3}", "arrivals takes"),
        ("teams: {sales: {hours: '17:00-09:00'}}", "opening must come before closing"),
        ("teams: {sales: {hours: nine-to-five}}", "must look like 09:00-17:00"),
        ("teams: {sales: {days: funday}}", "use mon..sun"),
        ("teams: {sales: {size: 0}}", "size must be a whole number"),
        ("branches: {review: {nowhere: 1}}", "'nowhere' is not a target of 'review'"),
        ("branches: {review: {provision: -1}}", "must be a non-negative number"),
        ("branches: {reveiw: {provision: 1}}", "did you mean 'review'"),
    ],
)
def test_bad_values_are_reported(
    onboarding: ProcessDefinition, tmp_path: Path, body: str, message: str
) -> None:
    path = scenario_file(tmp_path, body)
    found = problems(onboarding, path)
    assert any(message in p for p in found), found
    assert all(p.startswith(f"{path}:") for p in found)


def test_every_problem_is_reported_at_once(onboarding: ProcessDefinition, tmp_path: Path) -> None:
    path = scenario_file(
        tmp_path,
        """
        arrivals: {per_day: -1}
        steps:
          request: {fail_rate: 7}
          review: {duration: PT5X}
        """,
    )
    assert len(problems(onboarding, path)) == 3


def test_a_missing_scenario_file_is_a_definition_error(
    onboarding: ProcessDefinition, tmp_path: Path
) -> None:
    found = problems(onboarding, tmp_path / "missing.yaml")
    assert len(found) == 1
    assert "scenario" in found[0]


def test_a_scenario_that_is_not_a_mapping_is_refused(
    onboarding: ProcessDefinition, tmp_path: Path
) -> None:
    assert any(
        "a scenario is a mapping" in p
        for p in problems(onboarding, scenario_file(tmp_path, "- 1\n"))
    )


def test_a_bool_generator_needs_a_probability(
    onboarding: ProcessDefinition, tmp_path: Path
) -> None:
    path = scenario_file(tmp_path, "steps: {request: {data: {urgent: {bool: maybe}}}}")
    assert problems(onboarding, path)


# -- distributions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dist",
    [
        Dist("fixed", 7.0),
        Dist("exponential", 1800.0),
        Dist("uniform", 600.0, 1800.0),
        Dist("triangular", 0.0, 3000.0, 600.0),
        Dist("normal", 1000.0, 100.0),
        Dist("lognormal", 1500.0, 900.0),
    ],
    ids=lambda d: d.kind,
)
def test_sample_means_match_the_declared_mean(dist: Dist) -> None:
    rng = random.Random(1234)
    draws = [dist.sample(rng) for _ in range(20_000)]
    assert min(draws) >= 0.0
    assert statistics.fmean(draws) == pytest.approx(dist.mean, rel=0.03)


def test_lognormal_is_parameterised_by_its_own_sd() -> None:
    rng = random.Random(99)
    draws = [Dist("lognormal", 1000.0, 500.0).sample(rng) for _ in range(40_000)]
    assert statistics.pstdev(draws) == pytest.approx(500.0, rel=0.06)


def test_triangular_samples_stay_between_min_and_max() -> None:
    rng = random.Random(3)
    d = Dist("triangular", 1200.0, 10800.0, 2700.0)  # min PT20M, max PT3H, mode PT45M
    draws = [d.sample(rng) for _ in range(5000)]
    assert min(draws) >= 1200.0
    assert max(draws) <= 10800.0
    assert max(draws) > 9000.0  # P(X > 2.5 h) is about 4 %: certain in 5000 draws
    assert statistics.fmean(draws) == pytest.approx((1200 + 10800 + 2700) / 3, rel=0.05)


def test_degenerate_distributions_give_zero() -> None:
    rng = random.Random(0)
    assert Dist("exponential", 0.0).sample(rng) == 0.0
    assert Dist("lognormal", 0.0, 10.0).sample(rng) == 0.0
    assert Dist("normal", -50.0, 1.0).sample(rng) == 0.0  # durations never go negative


def test_sampling_is_reproducible_with_a_seed() -> None:
    d = Dist("lognormal", 100.0, 50.0)
    a = [d.sample(random.Random(5)) for _ in range(3)]
    b = [d.sample(random.Random(5)) for _ in range(3)]
    assert a == b


def test_data_generators() -> None:
    rng = random.Random(7)
    choice = Generator("choice", (("low", 0.6), ("medium", 0.3), ("high", 0.1)))
    counts = dict.fromkeys(("low", "medium", "high"), 0)
    for _ in range(20_000):
        counts[choice.sample(rng)] += 1
    assert counts["low"] / 20_000 == pytest.approx(0.6, abs=0.02)
    assert counts["high"] / 20_000 == pytest.approx(0.1, abs=0.01)

    flags = [Generator("bool", value=0.25).sample(rng) for _ in range(20_000)]
    assert sum(flags) / 20_000 == pytest.approx(0.25, abs=0.02)

    amount = Generator("dist", dist=Dist("uniform", 10.0, 20.0)).sample(rng)
    assert 10.0 <= amount <= 20.0
    assert amount == round(amount, 2)
    assert Generator("value", value={"fixed": 1}).sample(rng) == {"fixed": 1}
    company = Generator("faker", value="company").sample(rng)
    name = Generator("faker", value="name").sample(rng)
    assert isinstance(company, str) and " " in company
    assert isinstance(name, str) and name.endswith("son")


# -- working hours ------------------------------------------------------------------------------

OFFICE = TeamScenario(open_s=9 * H, close_s=17 * H, days=frozenset(range(5)))
MON = EPOCH  # 2026-01-05 00:00 UTC is a Monday
FRI = MON + 4 * DAY
SAT = MON + 5 * DAY
NEXT_MON = MON + 7 * DAY


def test_epoch_is_a_monday() -> None:
    assert datetime.fromtimestamp(MON, UTC).weekday() == 0


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (MON, MON + 9 * H),  # before opening: wait for 09:00
        (MON + 9 * H, MON + 9 * H),
        (MON + 12 * H, MON + 12 * H),  # open: now
        (MON + 17 * H, MON + DAY + 9 * H),  # closing time: tomorrow
        (MON + 20 * H, MON + DAY + 9 * H),
        (FRI + 16 * H, FRI + 16 * H),
        (FRI + 18 * H, NEXT_MON + 9 * H),  # Friday evening: Monday morning
        (SAT + 12 * H, NEXT_MON + 9 * H),  # the weekend
        (SAT + DAY + 23 * H, NEXT_MON + 9 * H),
    ],
)
def test_next_open(t: float, expected: float) -> None:
    assert next_open(t, OFFICE) == expected


@pytest.mark.parametrize(
    ("start", "seconds", "expected"),
    [
        (MON + 10 * H, 2 * H, MON + 12 * H),
        (MON + 9 * H, 8 * H, MON + 17 * H),  # exactly one working day
        (MON + 16 * H, 2 * H, MON + DAY + 10 * H),  # runs over into Tuesday
        (MON + 6 * H, H, MON + 10 * H),  # starts at opening
        (FRI + 16 * H, 3 * H, NEXT_MON + 11 * H),  # over the weekend
        (SAT + 10 * H, H, NEXT_MON + 10 * H),
        (MON + 9 * H, 40 * H, FRI + 17 * H),  # a working week
        (MON + 9 * H, 0.0, MON + 9 * H),
    ],
)
def test_add_working(start: float, seconds: float, expected: float) -> None:
    assert add_working(start, seconds, OFFICE) == expected


def test_around_the_clock_teams_never_wait() -> None:
    always = TeamScenario()
    assert always.always
    assert next_open(SAT + 3 * H, always) == SAT + 3 * H
    assert add_working(SAT + 3 * H, 50 * H, always) == SAT + 53 * H


def test_a_team_that_never_works_is_an_error() -> None:
    never = TeamScenario(open_s=9 * H, close_s=17 * H, days=frozenset())
    with pytest.raises(ValueError, match="at least one day"):
        next_open(MON, never)


# -- simulation determinism ---------------------------------------------------------------------


def _simulate(seed: int) -> dict[str, Any]:
    from accord.cli.core import simulate

    summary = simulate(ONBOARDING, 50, seed=seed, show_progress=False)
    summary.pop("wall_s")
    return summary


def test_the_same_seed_gives_the_same_run() -> None:
    first = _simulate(5)
    assert first["cases_started"] == 50
    assert first["cases_completed"] + first["cases_cancelled"] == 50
    assert _simulate(5) == first


def test_different_seeds_give_different_runs() -> None:
    a, b = _simulate(5), _simulate(6)
    assert a["seed"] != b["seed"]
    assert a["cycle_time_p50_s"] != b["cycle_time_p50_s"]
    assert a["steps"] != b["steps"]
