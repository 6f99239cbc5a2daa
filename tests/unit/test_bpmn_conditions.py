"""Condition expressions from BPMN tools, translated into accord's safe expression language."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.bpmn.conditions import ACCORD_LANGUAGE, Untranslatable, translate
from accord.model import expr

FEEL = "https://www.omg.org/spec/DMN/20191111/FEEL/"
XPATH = "http://www.w3.org/1999/XPath"


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        # JUEL (Camunda 7)
        ("${amount > 1000 && approved}", None, "amount > 1000 and approved"),
        ("${!approved}", None, "not approved"),
        ("#{!twitter}", None, "not twitter"),
        ("${not confirmed}", None, "not confirmed"),
        ("${input == 1}", None, "input == 1"),
        ("${score <= 5}", None, "score <= 5"),
        ("${invoiceId != null}", None, "invoiceId != null"),
        ("${clarified == 'yes'}", None, "clarified == 'yes'"),
        ("${a eq 1 or b ne 'x' and c lt 3}", None, "a == 1 or b != 'x' and c < 3"),
        ("${(a || b) && c}", None, "(a or b) and c"),
        ("${!a == b}", None, "(not a) == b"),
        ("${execution.getVariable('x') == 1}", None, "x == 1"),
        ("${total - (net - tax) > 10 div 2}", None, "total - (net - tax) > 10 / 2"),
        ('${applicant.country == "NL"}', None, "applicant.country == 'NL'"),
        ("${limits['eu'] > 5}", None, "limits['eu'] > 5"),
        ("${urgent ? a : b}", None, "a if urgent else b"),
        ("${true}", None, "true"),
        # FEEL (Camunda 8 / Zeebe)
        ('= amount > 1000 and x = "y"', None, "amount > 1000 and x == 'y'"),
        ("= not(a) or b", None, "not a or b"),
        ('status = "open"', FEEL, "status == 'open'"),
        # XPath, BPMN's default language
        ("bpmn:getDataObject('approved')", XPATH, "approved"),
        ("not(bpmn:getDataObject('approved'))", XPATH, "not approved"),
        ("getDataObject('clarified') = 'yes'", XPATH, "clarified == 'yes'"),
        ("true()", XPATH, "true"),
        # plain: SpiffWorkflow's Python, or accord's own language
        ("v == 0", None, "v == 0"),
        ("w > 0", None, "w > 0"),
        ("NeedClarification == 'Yes'", None, "NeedClarification == 'Yes'"),
        ("a && !b || c", None, "a and not b or c"),
        ('risk in ["high", "critical"]', ACCORD_LANGUAGE, 'risk in ["high", "critical"]'),
    ],
)
def test_translations(text: str, language: str | None, expected: str) -> None:
    got = translate(text, language)
    assert got == expected
    expr.parse(got)  # always something accord's own checker accepts


def test_feel_names_with_spaces_read_the_field_of_that_name() -> None:
    text = translate('Vacation Approval = "Manual Validation Required"', FEEL)
    assert text == "get('Vacation Approval') == 'Manual Validation Required'"
    got = expr.parse(translate('= Vacation Approval = "Approved" and not(On Hold)'))
    assert got.test({"Vacation Approval": "Approved", "On Hold": False})
    assert not got.test({"Vacation Approval": "Approved", "On Hold": True})
    assert not got.test({"Vacation Approval": "Rejected", "On Hold": False})


def test_translations_mean_the_same() -> None:
    got = expr.parse(translate("${amount > 1000 && !(region == 'eu' || vip)}"))
    assert got.test({"amount": 2000, "region": "us", "vip": False})
    assert not got.test({"amount": 2000, "region": "eu", "vip": False})
    assert not got.test({"amount": 10, "region": "us", "vip": False})


@pytest.mark.parametrize(
    ("text", "language", "reason"),
    [
        ("${dateTime().plusWeeks(1)}", None, "function dateTime"),
        ("${jobService.findEditor(id)}", None, "method call jobService.findEditor"),
        ("${empty list}", None, "'empty'"),
        ("${a = b}", None, "assignment"),
        ("${x.class == 1}", None, "reserved word"),
        ("${_secret}", None, "'_secret'"),
        ("${a < b < c}", None, "chained comparison"),
        ("= x in [1..5]", None, "unexpected 'in'"),
        ("= some r in risks satisfies r = 1", None, "quantifiers"),
        ("= every r in risks satisfies r = 1", None, "quantifiers"),
        ("Service Level == 'Premium'", XPATH, "names with spaces are read only in FEEL"),
        ('Vacation Approval = "Approved"', None, "names with spaces are read only in FEEL"),
        ("   ", None, "empty"),
        ("${a @ b}", None, "unexpected '@'"),
    ],
)
def test_what_cannot_be_translated_says_why(text: str, language: str | None, reason: str) -> None:
    with pytest.raises(Untranslatable) as info:
        translate(text, language)
    assert reason in str(info.value)


def test_accord_language_is_checked_not_translated() -> None:
    with pytest.raises(Untranslatable, match="not allowed"):
        translate("__import__('os')", ACCORD_LANGUAGE)


def test_deep_nesting_is_refused_not_recursed() -> None:
    for text in ("${" + "(" * 200 + "a" + ")" * 200 + "}", "${" + "!" * 300 + "a}"):
        with pytest.raises(Untranslatable, match="nested more than"):
            translate(text)
    assert translate("${" + " && ".join(["!a"] * 100) + "}").count("not a") == 100


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="ab x1()[]{}$#=!<>&|.,'\"?:+-*/%notandorempty", max_size=40),
    st.sampled_from([None, FEEL, XPATH, ACCORD_LANGUAGE]),
)
def test_any_text_translates_or_is_refused_never_crashes(text: str, language: str | None) -> None:
    try:
        result = translate(text, language)
    except Untranslatable:
        return
    expr.parse(result)
