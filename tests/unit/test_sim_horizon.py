"""A simulation stops at its virtual-time horizon: cases whose work never ends (an infinite
cycle timer an overloaded team cannot keep up with) are reported open, and the run returns."""

from __future__ import annotations

from pathlib import Path

from accord.sim.runner import HORIZON_MIN_S, default_horizon
from accord.sim.session import simulate

NAG = """\
process: nag
teams:
  ops:
    members: [olga]
steps:
  - {id: start, type: start, next: work}
  - {id: work, team: ops, next: end}
  - {id: end, type: end}
  - id: remind
    type: subprocess
    on: timer
    cycle: R/PT2H
    interrupting: false
    steps:
      - {id: r0, type: start, next: chase}
      - {id: chase, team: ops, next: r9}
      - {id: r9, type: end}
scenario:
  arrivals: {every: PT10M}
  teams:
    ops: {size: 1, hours: "09:00-17:00"}
  steps:
    work: {duration: {dist: fixed, value: PT1H}}
    chase: {duration: {dist: fixed, value: PT30M}}
"""


def test_a_run_whose_cases_never_finish_stops_at_its_horizon(tmp_path: Path) -> None:
    f = tmp_path / "nag.yaml"
    f.write_text(NAG)
    summary = simulate(f, 3, seed=1, horizon=3 * 86400.0)
    assert summary["horizon_reached"] is True
    assert summary["cases_open"] == 3  # reported open, not an error
    assert summary["horizon_days"] == 3.0
    assert summary["virtual_days"] <= 3.1


def test_the_default_horizon_is_a_multiple_of_the_arrivals_span() -> None:
    assert default_horizon([0.0]) == HORIZON_MIN_S  # one case: the minimum
    days = 86400.0
    assert default_horizon([0.0, 100 * days]) == 300 * days
    assert default_horizon([0.0, 5 * days]) == 5 * days + HORIZON_MIN_S


def test_a_cycle_without_time_between_is_refused(tmp_path: Path) -> None:
    # virtual time would never move on: no horizon could stop it
    import pytest

    from accord.errors import DefinitionError
    from accord.model import loads

    with pytest.raises(DefinitionError, match="repeats without any time between"):
        loads(NAG.replace("R/PT2H", "R/PT0S"))


def test_without_a_horizon_given_the_default_one_stops_the_run(tmp_path: Path) -> None:
    # what `accord compare` and `accord bpmn-check` get: they give no horizon
    f = tmp_path / "nag.yaml"
    f.write_text(NAG)
    summary = simulate(f, 2, seed=1)
    assert summary["horizon_reached"] is True and summary["cases_open"] == 2
    assert summary["horizon_days"] >= HORIZON_MIN_S / 86400.0
    assert summary["virtual_days"] <= summary["horizon_days"] + 0.01
