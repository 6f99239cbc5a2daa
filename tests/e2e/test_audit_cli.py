"""`accord audit`, `accord diff` and `accord advise`, run as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clikit import accord

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "logs"
ONBOARDING = ROOT / "examples" / "client-onboarding.yaml"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")
AUDIT_KEYS = {"cases", "events", "activities", "variants", "resources", "case_duration_s",
              "start_activities", "end_activities", "dfg", "bottlenecks"}  # fmt: skip


@needs_corpus
def test_audit_json_and_html(tmp_path: Path) -> None:
    html = tmp_path / "out.html"
    r = accord("audit", CORPUS / "pm4py" / "02_teleclaims.xes.gz", "--json", "--html", html)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc) >= AUDIT_KEYS
    assert set(doc["case_duration_s"]) >= {"mean", "median", "p95", "max"}
    assert doc["cases"] == 3512 and doc["events"] == 46138 and doc["variants"] == 12
    assert all({"from", "to", "count", "mean_s"} <= set(e) for e in doc["dfg"])
    assert [b["rank"] for b in doc["bottlenecks"]] == list(range(1, len(doc["bottlenecks"]) + 1))
    page = html.read_text()
    assert page.startswith("<!doctype html>") and page.count("<svg") >= 4
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


@needs_corpus
def test_audit_csv_with_named_columns_prints_a_table() -> None:
    r = accord("audit", CORPUS / "pm4py" / "running-example.csv", "--case", "case:concept:name",
               "--activity", "Activity", "--time", "time:timestamp")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "bottlenecks" in r.stdout and "6 / 42" in r.stdout


@needs_corpus
def test_audit_refuses_bad_input_precisely(tmp_path: Path) -> None:
    r = accord("audit", CORPUS / "xes-importer-tests" / "noLog.xes")
    assert r.returncode == 1 and "empty" in r.stderr and "Traceback" not in r.stderr
    r = accord("audit", CORPUS / "xes-importer-tests" / "elementIncorrect.xes", "--json")
    assert r.returncode == 1 and "no usable events" in r.stderr and r.stdout == ""
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    r = accord("audit", bad)
    assert r.returncode == 1 and "--case COLUMN" in r.stderr


@needs_corpus
def test_audit_warns_with_counts(tmp_path: Path) -> None:
    p = tmp_path / "mixed.csv"
    p.write_text(
        "case,activity,timestamp\n1,a,2024-01-01 10:00\n1,b,01/02/2024 11:00\n1,c,??\n2,a,\n"
    )
    r = accord("audit", p, "--json")
    assert r.returncode == 0, r.stderr
    assert "warning" in r.stderr and "1 skipped: unparseable timestamps" in r.stderr
    assert json.loads(r.stdout)["events"] == 2


def test_advise_json_has_the_eight_items_with_evidence() -> None:
    r = accord("advise", ONBOARDING, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["recommendation"]["model"] in ("central", "choreo", "hybrid")
    items = doc["checklist"]
    assert len(items) == 8 and all(i["evidence"] for i in items)
    assert {"question", "answer", "source", "favours"} <= set(items[0])
    assert doc["risks"] and all(r["mitigation"] for r in doc["risks"])


def test_advise_bad_input(tmp_path: Path) -> None:
    answers = tmp_path / "a.yaml"
    answers.write_text("budget: lots\n")
    r = accord("advise", ONBOARDING, "--answers", answers)
    assert r.returncode == 1 and "budget: answer yes or no" in r.stderr
    r = accord("advise", tmp_path / "missing.yaml")
    assert r.returncode == 1 and "Traceback" not in r.stderr


@needs_corpus
def test_diff_json_says_what_is_significant() -> None:
    logs = CORPUS / "pm4py"
    r = accord("diff", logs / "03_repairExample.xes.gz", logs / "02_teleclaims.xes.gz", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["a"]["cases"] == 1104 and doc["b"]["cases"] == 3512
    m = {x["metric"]: x for x in doc["metrics"]}
    assert m["duration_s"]["significant"] and m["duration_s"]["better"] == "a"
    assert set(m["duration_s"]) >= {"ci95", "effect_size", "p_value", "p_adjusted"}
    r = accord("diff", logs / "running-example.xes", logs / "running-example.csv")
    assert r.returncode == 0 and "no clear difference" in r.stdout
