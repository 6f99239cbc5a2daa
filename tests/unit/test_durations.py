"""ISO-8601 durations and repeating cycles: what is accepted, what is refused and why."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accord.model.durations import Cycle, format_duration, parse_cycle, parse_duration

MIN, HOUR, DAY, WEEK = 60.0, 3600.0, 86400.0, 604800.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT0S", 0.0),
        ("PT45S", 45.0),
        ("PT30M", 30 * MIN),
        ("PT1M", MIN),  # M after T is minutes, not months
        ("PT4H", 4 * HOUR),
        ("PT1H30M", 1.5 * HOUR),
        ("PT1H1M1S", HOUR + MIN + 1),
        ("P2D", 2 * DAY),
        ("P1W", WEEK),
        ("P1W2D", WEEK + 2 * DAY),
        ("P1DT2H30M", DAY + 2.5 * HOUR),
        ("P1DT1M", DAY + MIN),
        ("PT1.5H", 1.5 * HOUR),
        ("P0.5D", 0.5 * DAY),
        ("PT0.25S", 0.25),
        ("pt30m", 30 * MIN),
        ("  PT4H \n", 4 * HOUR),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["P1Y", "P1M", "P2Y3M", "P3M", "P1Y2D"])
def test_years_and_months_are_refused_with_the_reason(text: str) -> None:
    with pytest.raises(ValueError, match="years and months have no fixed length; use days"):
        parse_duration(text)


def test_months_with_time_part_names_months_as_the_reason() -> None:
    with pytest.raises(ValueError, match="months"):
        parse_duration("P1MT1H")


@pytest.mark.parametrize("text", ["0 0 * * *", "*/5 * * * *", "0 9 * * MON-FRI", "0 0 1 1 * 2030"])
def test_cron_strings_are_recognised_and_refused(text: str) -> None:
    with pytest.raises(ValueError, match="looks like a cron expression"):
        parse_duration(text)


@pytest.mark.parametrize(
    "text",
    ["", "P", "PT", "P1DT", "T1H", "PT1H1H", "-PT1H", "5 hours", "1h", "3600", "PT1H30", "P1.D"],
)
def test_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="is not an ISO-8601 duration"):
        parse_duration(text)


def test_error_message_quotes_the_input() -> None:
    with pytest.raises(ValueError, match=r"^'5 hours' is not an ISO-8601 duration \(e\.g\. PT30M"):
        parse_duration("5 hours")


@pytest.mark.parametrize(
    ("text", "cycle"),
    [
        ("R3/PT1H", Cycle(3, HOUR)),
        ("R/PT1H", Cycle(None, HOUR)),
        ("r2/p1d", Cycle(2, DAY)),
        ("R10/P1W", Cycle(10, WEEK)),
        ("R0/PT5M", Cycle(0, 5 * MIN)),
    ],
)
def test_cycles(text: str, cycle: Cycle) -> None:
    assert parse_cycle(text) == cycle


@pytest.mark.parametrize("text", ["R3", "3/PT1H", "R-1/PT1H", "PT1H", "R3/", "Rx/PT1H"])
def test_not_a_cycle(text: str) -> None:
    with pytest.raises(ValueError, match="is not an ISO-8601 repeating interval"):
        parse_cycle(text)


def test_cycle_with_a_bad_period_gives_the_duration_reason() -> None:
    with pytest.raises(ValueError, match="years and months"):
        parse_cycle("R3/P1M")
    with pytest.raises(ValueError, match="is not an ISO-8601 duration"):
        parse_cycle("R3/PXH")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "PT0S"),
        (-5, "PT0S"),
        (1, "PT1S"),
        (60, "PT1M"),
        (61, "PT1M1S"),
        (3600, "PT1H"),
        (3661, "PT1H1M1S"),
        (86400, "P1D"),
        (90061, "P1DT1H1M1S"),
        (604800, "P7D"),
        (1.5, "PT1.5S"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=0, max_value=10**9))
def test_format_then_parse_round_trips_whole_seconds(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.integers(min_value=0, max_value=10**8))
def test_format_then_parse_round_trips_milliseconds(millis: int) -> None:
    seconds = millis / 1000
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=1e-9)


@given(
    st.integers(0, 50),
    st.integers(0, 400),
    st.integers(0, 100),
    st.integers(0, 1000),
    st.integers(0, 10**5),
)
def test_parse_adds_every_component(w: int, d: int, h: int, m: int, s: int) -> None:
    text = f"P{w}W{d}DT{h}H{m}M{s}S"
    assert parse_duration(text) == w * WEEK + d * DAY + h * HOUR + m * MIN + s
