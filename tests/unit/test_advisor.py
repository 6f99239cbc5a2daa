"""The advisor: eight checklist items with evidence, a model, step placements, risks."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord.advisor import AnswersError, advise

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
QUESTIONS = ["stable", "adaptation", "compliance", "autonomous", "visibility", "speed",
             "budget", "size"]  # fmt: skip


def test_onboarding_from_the_definition_alone() -> None:
    a = advise(EXAMPLES / "client-onboarding.yaml")
    assert [i["id"] for i in a["checklist"]] == QUESTIONS
    for item in a["checklist"]:
        assert item["evidence"], item["id"]  # every answer shows where it came from
    by = {i["id"]: i for i in a["checklist"]}
    assert by["compliance"]["answer"] is True and by["compliance"]["source"] == "definition"
    assert "review" in by["compliance"]["evidence"][0]
    assert by["size"]["answer"] == "small"
    assert by["budget"]["answer"] is None and "budget" in a["unanswered"]
    assert a["recommendation"]["model"] in ("central", "hybrid")
    assert "review" in a["recommendation"]["hub_steps"]
    risks = {r["risk"]: r for r in a["risks"]}
    assert "replicas" in risks["single point of failure"]["mitigation"]
    assert "involvement criteria" in risks["the hub becomes a bottleneck"]["mitigation"]


def test_answers_fill_the_gaps_and_tip_the_balance(tmp_path: Path) -> None:
    answers = tmp_path / "a.yaml"
    answers.write_text(
        "stable: no\nadaptation: yes\nautonomous: yes\nspeed: yes\nbudget: no\nsize: 6\n"
    )
    a = advise(EXAMPLES / "client-onboarding.yaml", answers=answers)
    by = {i["id"]: i for i in a["checklist"]}
    assert by["speed"]["source"] == "answers" and by["speed"]["favours"] == "choreo"
    # choreography wins the checklist, but the compliance review keeps a hub: hybrid
    assert a["recommendation"]["model"] == "hybrid"
    places = {s["step"]: s["placement"] for s in a["steps"]}
    assert places["review"] == "hub" and places["request"] == "local"
    risks = {r["risk"] for r in a["risks"]}
    assert {"fragmentation", "no end-to-end owner", "single point of failure"} <= risks
    frag = next(r for r in a["risks"] if r["risk"] == "fragmentation")
    assert "contract" in frag["mitigation"]
    owner = next(r for r in a["risks"] if r["risk"] == "no end-to-end owner")
    assert "status board" in owner["mitigation"] and "olivia" in owner["evidence"]


def test_log_evidence_answers_stability(tmp_path: Path) -> None:
    corpus = ROOT.parent / "shared" / "corpus" / "logs" / "pm4py" / "02_teleclaims.xes.gz"
    if not corpus.exists():
        pytest.skip("shared corpus not present")
    a = advise(EXAMPLES / "client-onboarding.yaml", log=corpus)
    stable = a["checklist"][0]
    assert stable["source"] == "log" and "12 variants in 3512 cases" in stable["evidence"][0]
    size = a["checklist"][-1]
    assert size["answer"] == "small"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stable: maybe\n", r"a.yaml:1: stable: answer yes or no, not 'maybe'"),
        ("speedy: yes\n", r"a.yaml:1: unknown question 'speedy'"),
        ("size: huge\n", r"a.yaml:1: size: give a head count"),
        ("stable: [yes\n", r"a.yaml:\d+:\d+: malformed YAML"),
        ("- yes\n", r"expected a mapping"),
    ],
)
def test_bad_answers_are_refused_precisely(tmp_path: Path, text: str, message: str) -> None:
    answers = tmp_path / "a.yaml"
    answers.write_text(text)
    with pytest.raises(AnswersError, match=message):
        advise(EXAMPLES / "client-onboarding.yaml", answers=answers)


def test_hybrid_definition_keeps_its_hub_rules() -> None:
    a = advise(EXAMPLES / "procurement.yaml")
    steps = {s["step"]: s for s in a["steps"]}
    rules = [s for s in steps.values() if any("pulls it to the hub" in r for r in s["reasons"])]
    assert rules, "procurement's require_hub_when should show up as a reason"
