"""Importing event logs: XES (both readers), CSV, accord events; bad input never crashes.

pm4py is the oracle for what a correct reading of the corpus logs is (cases, events).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from accord.analytics.csv_read import Columns
from accord.analytics.frame import LogError
from accord.analytics.logs import from_events, read_log, sniff
from accord.analytics.timestamps import parse_times
from accord.analytics.xes_fast import NotSimple, read_xes_fast
from accord.analytics.xes_read import read_xes
from accord.events import Event, EventType

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "logs"
PM4PY = CORPUS / "pm4py"
MALFORMED = CORPUS / "xes-importer-tests"

needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")

XES_FILES = sorted(p.name for p in PM4PY.glob("*.xes*")) if PM4PY.is_dir() else []
IMPORTER_TESTS = sorted(p.name for p in MALFORMED.glob("*.xes")) if MALFORMED.is_dir() else []

# (file, cases, events) as pm4py reads them (pm4py 2.7, read_xes)
EXPECTED = {
    "01_running-example.xes.gz": (6, 42),
    "02_teleclaims.xes.gz": (3512, 46138),
    "03_repairExample.xes.gz": (1104, 11855),
    "04_reviewing.xes.gz": (100, 3730),
    "10_orders.xes.gz": (17, 154),
    "11_tickets.xes.gz": (9, 43),
    "helpdesk.xes.gz": (4580, 21348),
    "interval_event_log.xes": (1266, 8109),
    "reviewing.xes": (100, 3730),
    "running-example.xes": (6, 42),
}


@needs_corpus
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_counts_match_pm4py(name: str) -> None:
    log = read_log(PM4PY / name)
    cases, events = EXPECTED[name]
    assert log.events == events
    assert log.frame["case"].n_unique() == cases


@needs_corpus
@pytest.mark.parametrize("name", XES_FILES + [f"../xes-importer-tests/{n}" for n in IMPORTER_TESTS])
def test_fast_and_streaming_readers_agree(name: str) -> None:
    path = PM4PY / name
    data: Path | bytes = path
    if path.read_bytes()[:2] == b"\x1f\x8b":
        data = gzip.decompress(path.read_bytes())
    try:
        fast = read_xes_fast(data, path)
    except NotSimple:
        pytest.skip("the fast reader hands this file to the streaming one")
    except LogError as exc:
        with pytest.raises(LogError):
            read_xes(path)
        assert str(path) in str(exc)
        return
    slow = read_xes(path)
    assert_frame_equal(fast.frame, slow.frame)
    assert fast.skipped.counts == slow.skipped.counts


@needs_corpus
@pytest.mark.parametrize("name", IMPORTER_TESTS)
def test_malformed_xes_gives_an_error_or_counts_never_a_crash(name: str) -> None:
    path = MALFORMED / name
    try:
        log = read_log(path)
    except LogError as exc:
        message = str(exc)
        assert str(path) in message
        assert "no usable events" in message or "empty" in message or "XML" in message
    else:  # pragma: no cover - none of these files holds a usable event today
        assert log.events > 0


@needs_corpus
def test_events_outside_traces_are_counted() -> None:
    with pytest.raises(LogError) as info:
        read_log(MALFORMED / "elementIncorrect.xes")
    message = str(info.value)
    assert "2 skipped: events outside any trace" in message
    assert "unknown <text> elements in traces" in message


def test_not_well_formed_xml_names_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xes"
    bad.write_text('<log>\n<trace><string key="concept:name" value="1"/>\n<event></trace></log>')
    with pytest.raises(LogError, match=r"bad.xes:3:\d+: not well-formed XML"):
        read_log(bad)


def test_dtd_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.xes"
    bomb.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE log [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>\n'
        '<log><trace><string key="concept:name" value="&b;"/></trace></log>'
    )
    with pytest.raises(LogError, match="DTD is not accepted"):
        read_log(bomb)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.xes"
    empty.write_text("")
    with pytest.raises(LogError, match="empty"):
        read_log(empty)
    with pytest.raises(LogError, match="no such file"):
        read_log(tmp_path / "nope.xes")
    with pytest.raises(LogError, match="not <log>"):
        (tmp_path / "html.xes").write_text("<html><body/></html>")
        read_log(tmp_path / "html.xes")


def test_damaged_gzip(tmp_path: Path) -> None:
    p = tmp_path / "cut.xes.gz"
    p.write_bytes(gzip.compress(b"<log>" + b"<trace></trace>" * 1000)[:40])
    with pytest.raises(LogError):
        read_log(p)


XES_HEAD = '<?xml version="1.0"?>\n<log xmlns="http://www.xes-standard.org/">\n'


def _trace(case: str, *events: tuple[str, str]) -> str:
    body = "".join(
        f'<event><string key="concept:name" value="{a}"/>'
        f'<date key="time:timestamp" value="{t}"/></event>\n'
        for a, t in events
    )
    return f'<trace><string key="concept:name" value="{case}"/>\n{body}</trace>\n'


def test_unusual_xml_falls_back_to_the_streaming_reader(tmp_path: Path) -> None:
    p = tmp_path / "odd.xes"
    p.write_text(
        XES_HEAD
        + "<!-- a comment with <angle> brackets -->\n"
        + _trace("c&#49;", ("a &amp; b", "2024-01-01T10:00:00Z"), ("c", "2024-01-01T11:00:00Z"))
        + "<trace><string value='2' key='concept:name'/><event>"
        + "<string key='concept:name' value='x'/><date key='time:timestamp' "
        + "value='2024-01-02T00:00:00+02:00'/></event></trace></log>"
    )
    with pytest.raises(NotSimple):
        read_xes_fast(p, p)
    log = read_log(p)
    assert log.frame["case"].to_list() == ["2", "c1", "c1"]
    assert log.frame["activity"].to_list() == ["x", "a & b", "c"]
    assert log.frame["ts"][0] == pytest.approx(1704146400.0)  # 2024-01-01T22:00Z


def test_out_of_order_events_are_sorted_and_missing_times_counted(tmp_path: Path) -> None:
    p = tmp_path / "order.xes"
    p.write_text(
        XES_HEAD
        + _trace("1", ("b", "2024-01-01T11:00:00Z"), ("a", "2024-01-01T10:00:00Z"),
                 ("x", "not a time"), ("y", ""))
        + "</log>"
    )  # fmt: skip
    log = read_log(p)
    assert log.frame["activity"].to_list() == ["a", "b"]
    text = " ".join(log.warnings())
    assert "2 skipped: events without a usable timestamp" in text
    assert "1 skipped: unparseable timestamps (first: 'not a time')" in text


def test_timestamps_in_mixed_layouts() -> None:
    s = pl.Series(
        "t",
        ["2010-12-30T14:32:00.000+01:00", "2023-11-15T00:16:08.5Z", "2019/11/03 01:11:19.000",
         "1980-01-01 01:01:01", "31/12/2020 23:59", "garbage", None],
    )  # fmt: skip
    parsed = parse_times(s)
    got = parsed.seconds.to_list()
    assert got[0] == pytest.approx(1293715920.0)
    assert got[1] == pytest.approx(1700007368.5)
    assert got[2] == pytest.approx(1572743479.0)
    assert got[3] == pytest.approx(315536461.0)
    assert got[4] == pytest.approx(1609459140.0)
    assert got[5] is None and got[6] is None
    assert parsed.failed == 1 and parsed.examples == ("garbage",)


def test_epoch_numbers_are_seconds_or_milliseconds() -> None:
    parsed = parse_times(pl.Series("t", [1_700_000_000, 1_700_000_000_000]))
    assert parsed.seconds.to_list() == [1_700_000_000.0, 1_700_000_000.0]


@needs_corpus
def test_csv_running_example_matches_xes() -> None:
    csv = read_log(PM4PY / "running-example.csv")
    xes = read_log(PM4PY / "running-example.xes")
    assert csv.events == xes.events == 42
    assert csv.frame["activity"].to_list() == xes.frame["activity"].to_list()
    assert csv.frame["ts"].to_list() == xes.frame["ts"].to_list()


@needs_corpus
def test_interval_csv_has_starts() -> None:
    log = read_log(PM4PY / "interval_event_log.csv")
    assert log.has_intervals and log.events == 8109


def test_csv_columns_named_or_guessed(tmp_path: Path) -> None:
    p = tmp_path / "log.csv"
    p.write_text(
        "Ticket;Step;When;Agent\nT1;open;2024-01-01 09:00;ann\nT1;close;2024-01-01 10:30;bob\n"
    )
    with pytest.raises(LogError, match=r"case id and the activity.*--case COLUMN, --activity"):
        read_log(p)
    log = read_log(p, Columns(case="Ticket", activity="Step", time="When", resource="Agent"))
    assert log.frame["resource"].to_list() == ["ann", "bob"]
    with pytest.raises(LogError, match=r"no column 'Nope'.*--case.*Ticket, Step, When, Agent"):
        read_log(p, Columns(case="Nope"))


def test_csv_bad_rows_and_empty(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text('case,activity,timestamp\n1,a,2024-01-01\n2,"b\n')
    with pytest.raises(LogError, match=r"bad\.csv"):
        read_log(p)
    e = tmp_path / "empty.csv"
    e.write_text("")
    with pytest.raises(LogError, match="empty"):
        read_log(e)
    h = tmp_path / "header.csv"
    h.write_text("case,activity,timestamp\n")
    with pytest.raises(LogError, match="no usable events"):
        read_log(h)


def test_accord_events_become_start_and_complete_rows() -> None:
    evs = [
        Event("c#1", EventType.CASE_STARTED, "c", "p@1", 0.0, 1),
        Event("c#2", EventType.TASK_READY, "c", "p@1", 0.0, 2, "a", "t1", task="c:a:1"),
        Event("c#3", EventType.TASK_CLAIMED, "c", "p@1", 5.0, 3, "a", "t1", "hub", "c:a:1",
              {"assignee": "ann"}),
        Event("c#4", EventType.TASK_COMPLETED, "c", "p@1", 9.0, 4, "a", "t1", "ann", "c:a:1"),
    ]  # fmt: skip
    log = from_events(evs, names={"a": "Do A"})
    assert log.frame.select("activity", "lifecycle", "resource", "team").rows() == [
        ("Do A", "start", "ann", "t1"),
        ("Do A", "complete", "ann", "t1"),
    ]


def test_sniff_by_content(tmp_path: Path) -> None:
    p = tmp_path / "export.txt"
    p.write_text(XES_HEAD + "</log>")
    assert sniff(p) == "xes"
    p.write_text('{"specversion": "1.0"}\n')
    assert sniff(p) == "jsonl"
    p.write_text("a,b\n")
    assert sniff(p) == "csv"


@needs_corpus
def test_streaming_reader_packs_rows_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    import accord.analytics.xes_read as xes_read

    whole = read_xes(PM4PY / "running-example.xes")
    monkeypatch.setattr(xes_read, "CHUNK", 5)
    chunked = read_xes(PM4PY / "running-example.xes")
    assert_frame_equal(whole.frame, chunked.frame)


def test_large_files_take_the_streaming_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import accord.analytics.logs as logs

    p = tmp_path / "big.xes"
    p.write_text(XES_HEAD + _trace("1", ("a", "2024-01-01T10:00:00Z")) + "</log>")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the vectorized reader must not read a file over the limit")

    monkeypatch.setattr(logs, "FAST_LIMIT", 10)
    monkeypatch.setattr(logs, "read_xes_fast", refuse)
    assert read_log(p).events == 1
