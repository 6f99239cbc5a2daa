"""The safe expression language: what it computes, what it refuses, and how it fails."""

from __future__ import annotations

import contextlib

import pytest

from accord.errors import ExpressionError
from accord.model.expr import FUNCTIONS, Expression, parse


def ev(source: str, **data: object) -> object:
    return parse(source).evaluate(data)


# -- what it computes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 - 10", -3),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("7 % 3", 1),
        ("-x + +x", 0),
        ("x * 2.5", 10.0),
        ("'ab' + 'cd'", "abcd"),
        ("[1, 2] + [3]", [1, 2, 3]),
        ("'ab' * 3", "ababab"),
    ],
)
def test_arithmetic(source: str, expected: object) -> None:
    assert ev(source, x=4) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("amount > 10000", True),
        ("amount >= 20000", True),
        ("amount < 20000", False),
        ("amount <= 20000", True),
        ("amount == 20000", True),
        ("amount != 20000", False),
        ("risk == 'high'", True),
        ("flag is None", True),
        ("flag is not None", False),
        ("flag == null", True),
        ("ok == true and not (ok == false)", True),
        ("ok is True", True),
    ],
)
def test_comparisons(source: str, expected: bool) -> None:
    assert ev(source, amount=20000, risk="high", flag=None, ok=True) is expected


@pytest.mark.parametrize(
    ("x", "expected"),
    [(0, False), (1, False), (2, True), (4, True), (5, False), (9, False)],
)
def test_chained_comparison_is_a_conjunction(x: int, expected: bool) -> None:
    assert ev("1 < x <= 4 < 5", x=x) is expected


def test_chained_comparison_evaluates_each_operand_against_its_neighbour() -> None:
    # 3 > 2 is true, 2 > 1 is true; a non-chained reading ((3 > 2) > 1 == True > 1) is False.
    assert ev("a > b > c", a=3, b=2, c=1) is True
    assert ev("a < b > c", a=1, b=5, c=2) is True
    assert ev("a < b > c", a=1, b=5, c=9) is False


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("risk in ['high', 'critical']", True),
        ("risk not in ['high', 'critical']", False),
        ("'igh' in risk", True),
        ("'x' in tags", True),
        ("'z' not in tags", True),
        ("'k' in d", True),
        ("3 in (1, 2, 3)", True),
        ("3 in {1, 2}", False),
    ],
)
def test_membership(source: str, expected: bool) -> None:
    assert ev(source, risk="high", tags=["x", "y"], d={"k": 1}) is expected


def test_boolean_operators_short_circuit_and_return_operands() -> None:
    # The right-hand side names an unknown field: it must never be evaluated.
    assert ev("false and missing > 1") is False
    assert ev("true or missing > 1") is True
    assert ev("a or b", a=0, b="fallback") == "fallback"
    assert ev("a and b", a=1, b="last") == "last"
    assert ev("a and b", a=0, b="last") == 0
    assert ev("not a", a=[]) is True
    assert ev("x > 1 and x < 5 or x == 10", x=10) is True


def test_conditional_expression() -> None:
    assert ev("'big' if amount > 10 else 'small'", amount=11) == "big"
    assert ev("'big' if amount > 10 else 'small'", amount=1) == "small"


def test_dotted_access_into_nested_dicts() -> None:
    data = {"client": {"address": {"country": "PT"}, "tier": 2}}
    assert ev("client.address.country == 'PT'", **data) is True
    assert ev("client.tier + 1", **data) == 3


def test_dotted_access_is_never_attribute_access() -> None:
    # A dict has a .keys method; dotted access must look up the *field* 'keys' only.
    with pytest.raises(ExpressionError, match="no field 'keys'"):
        ev("client.keys", client={"a": 1})
    with pytest.raises(ExpressionError, match="no field 'real'"):
        ev("n.real", n=5)
    with pytest.raises(ExpressionError, match=r"no field 'missing' in client\.address"):
        ev("client.address.missing", client={"address": {}})


def test_subscripts() -> None:
    data = {"items": [10, 20, 30], "m": {"a b": 1, "k": {"z": 2}}, "i": 1}
    assert ev("items[0]", **data) == 10
    assert ev("items[-1]", **data) == 30
    assert ev("items[i]", **data) == 20
    assert ev("m['a b']", **data) == 1
    assert ev("m['k']['z']", **data) == 2
    assert ev("m.k['z']", **data) == 2
    assert ev("'hello'[1]") == "e"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("len(items)", 3),
        ("abs(-4)", 4),
        ("min(items)", 1),
        ("max(3, 9, 2)", 9),
        ("round(2.567, 2)", 2.57),
        ("int('42') + 1", 43),
        ("float('1.5')", 1.5),
        ("str(12) + 'x'", "12x"),
        ("bool(0)", False),
        ("lower(name)", "ana"),
        ("upper(name)", "ANA"),
        ("lower(5)", "5"),
    ],
)
def test_allowed_functions(source: str, expected: object) -> None:
    assert ev(source, items=[3, 1, 2], name="AnA") == expected


def test_function_list_is_the_documented_one() -> None:
    assert set(FUNCTIONS) == {
        "len",
        "abs",
        "min",
        "max",
        "round",
        "int",
        "float",
        "str",
        "bool",
        "lower",
        "upper",
    }


def test_constants_in_both_spellings() -> None:
    assert ev("[true, false, null, True, False, None]") == [True, False, None, True, False, None]


def test_names_are_collected_without_constants() -> None:
    e = parse("amount > 10 and risk in ['high'] and client.tier == 1 and flag != null and true")
    assert e.names == frozenset({"amount", "risk", "client", "flag"})


def test_test_is_truthiness() -> None:
    e = parse("items")
    assert e.test({"items": [1]}) is True
    assert e.test({"items": []}) is False


def test_expressions_compare_by_source_and_whitespace_is_stripped() -> None:
    assert parse("  a > 1 ") == parse("a > 1")
    assert parse("a > 1").source == "a > 1"
    assert isinstance(parse("a"), Expression)


def test_an_expression_is_reusable_and_does_not_mutate_data() -> None:
    e = parse("items + [4]")
    data = {"items": [1, 2, 3]}
    assert e.evaluate(data) == [1, 2, 3, 4]
    assert e.evaluate(data) == [1, 2, 3, 4]
    assert data == {"items": [1, 2, 3]}


# -- refused when parsed ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "mentions"),
    [
        ("a.__class__", "'__class__'"),
        ("x.__dict__['y']", "'__dict__'"),
        ("a._private", "'_private'"),
        ("__builtins__", "'__builtins__'"),
        ("_x + 1", "'_x'"),
        ("__import__('os')", "'__import__'"),
        ("__import__('os').system('true')", "Call"),
        ("open('/etc/passwd')", "'open'"),
        ("eval('1+1')", "'eval'"),
        ("exec('x=1')", "'exec'"),
        ("getattr(x, 'y')", "'getattr'"),
        ("globals()", "'globals'"),
        ("type(x)", "'type'"),
        ("lambda: 1", "Lambda"),
        ("(lambda x: x)(1)", "Call"),
        ("[i for i in items]", "ListComp"),
        ("{i for i in items}", "SetComp"),
        ("{i: i for i in items}", "DictComp"),
        ("sum(i for i in items)", "'sum'"),
        ("len(i for i in items)", "GeneratorExp"),
        ("items[1:2]", "slicing"),
        ("items[::-1]", "slicing"),
        ("(y := 1)", "NamedExpr"),
        ("2 ** 8", "Pow"),
        ("x ** 0.5", "Pow"),
        ("x << 2", "LShift"),
        ("x & 1", "BitAnd"),
        ("~x", "Invert"),
        ("name.upper()", "Call"),
        ("max(items, key=len)", "Call"),
        ("max(*items)", "Starred"),
        ("{'a': 1}", "Dict"),
        ("f'{x}'", "JoinedStr"),
        ("x @ y", "MatMult"),
        ("b'bytes'", "constant"),
        ("1j", "constant"),
        ("...", "constant"),
    ],
)
def test_refused_at_parse_time(source: str, mentions: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(source)
    message = str(info.value)
    assert "not allowed" in message
    assert mentions in message
    assert info.value.source == source


def test_refused_function_lists_the_known_ones() -> None:
    with pytest.raises(ExpressionError, match=r"known: abs, bool, float, int, len, lower"):
        parse("open('x')")


@pytest.mark.parametrize("source", ["", "   ", "\n"])
def test_empty_expression(source: str) -> None:
    with pytest.raises(ExpressionError, match="empty expression"):
        parse(source)


@pytest.mark.parametrize("source", ["amount >", "a b", "a; b", "x = 1", "(", "import os"])
def test_syntax_errors(source: str) -> None:
    with pytest.raises(ExpressionError, match="cannot parse"):
        parse(source)


def test_overlong_expression_is_refused() -> None:
    with pytest.raises(ExpressionError, match="longer than 2000"):
        parse("x + " * 600 + "1")


def test_refusal_reports_the_column_of_the_offending_part() -> None:
    with pytest.raises(ExpressionError) as info:
        parse("a > 1 and open('x')")
    assert info.value.offset == len("a > 1 and ")


def test_refusal_happens_even_in_a_branch_never_evaluated() -> None:
    # Checked when loaded, not when run: a dead branch still cannot hide a forbidden call.
    with pytest.raises(ExpressionError, match="'open'"):
        parse("false and open('x')")


@pytest.mark.parametrize(
    "source", ["-" * 1990 + "1", "not " * 495 + "x", "1" + "+1" * 990, "(" * 150 + "1" + ")" * 150]
)
def test_deep_nesting_is_refused_with_expression_error(source: str) -> None:
    # Under the 2000-character limit, but deep enough to exhaust the stack if walked naively.
    try:
        e = parse(source)
    except ExpressionError:
        return
    with contextlib.suppress(ExpressionError):
        e.evaluate({"x": True})


# -- failing when evaluated -------------------------------------------------------------------


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ExpressionError) as info:
        ev("amount > 10", risk="low", client="x")
    assert "unknown name 'amount'" in str(info.value)
    assert "case data has: client, risk" in str(info.value)


def test_unknown_name_with_no_data() -> None:
    with pytest.raises(ExpressionError, match=r"case data has: none"):
        ev("amount > 10")


def test_explicit_null_is_not_missing() -> None:
    assert ev("amount == null", amount=None) is True


@pytest.mark.parametrize(
    ("source", "data"),
    [
        ("'a' + 1", {}),
        ("x < 'a'", {"x": 1}),
        ("len(5)", {}),
        ("-s", {"s": "text"}),
        ("1 in 5", {}),
        ("x > 1", {"x": None}),
        ("{items}", {"items": [1]}),
        ("abs('x')", {}),
        ("min()", {}),
    ],
)
def test_type_errors_become_expression_errors(source: str, data: dict[str, object]) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(source).evaluate(data)
    assert repr(source) in str(info.value)
    assert not isinstance(info.value, TypeError)


@pytest.mark.parametrize(
    ("source", "data"),
    [
        ("1 / 0", {}),
        ("x % 0", {"x": 3}),
        ("int('abc')", {}),
        ("float('nope')", {}),
        ("items[5]", {"items": [1]}),
        ("m['nope']", {"m": {}}),
    ],
)
def test_value_and_lookup_errors_become_expression_errors(
    source: str, data: dict[str, object]
) -> None:
    with pytest.raises(ExpressionError):
        parse(source).evaluate(data)


@pytest.mark.parametrize("source", ["int(x) > 0", "round(x)", "int(1e308 * 10)"])
def test_overflow_becomes_expression_error(source: str) -> None:
    with pytest.raises(ExpressionError):
        ev(source, x=float("inf"))


def test_subscript_on_non_container_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError):
        ev("n[0]", n=5)


# -- bounded results --------------------------------------------------------------------------


def test_string_multiplication_up_to_the_bound_is_allowed() -> None:
    assert len(ev("'a' * 10000")) == 10_000  # type: ignore[arg-type]
    assert len(ev("2 * 'ab' * 2500")) == 10_000  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("source", "data"),
    [
        ("'a' * 10001", {}),
        ("10001 * 'a'", {}),
        ("s * n", {"s": "ab", "n": 10**12}),
        ("('a' * 10000) * 10000", {}),
        ("[0] * 20000", {}),
        ("('a' * 6000) + ('b' * 6000)", {}),
        ("str(s * 5000) + str(s * 5000)", {"s": "ab"}),
    ],
)
def test_values_built_past_the_bound_are_refused(source: str, data: dict[str, object]) -> None:
    with pytest.raises(ExpressionError, match="longer than 10000"):
        parse(source).evaluate(data)


def test_huge_repetition_is_refused_before_it_is_built() -> None:
    # 10**15 copies would exhaust memory if the product were computed before the check.
    with pytest.raises(ExpressionError, match="longer than 10000"):
        ev("s * n", s="x", n=10**15)


# -- looking into optional data ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "data", "expected"),
    [
        ("has('amount')", {"amount": 0}, True),
        ("has('amount')", {}, False),
        ("has('amount')", {"amount": None}, False),
        ("get('amount')", {}, None),
        ("get('amount', 5)", {}, 5),
        ("get('amount', 5)", {"amount": 7}, 7),
        ("get('amount', 0) > 100", {}, False),
        ("has('amount') and amount > 100", {}, False),
        ("has('amount') and amount > 100", {"amount": 101}, True),
    ],
)
def test_has_and_get_deal_with_missing_fields(
    source: str, data: dict[str, object], expected: object
) -> None:
    assert parse(source).evaluate(data) == expected


@pytest.mark.parametrize(
    "source", ["has(amount)", "has()", "get('a', 1, 2)", "has('a', 'b')", "get(1)"]
)
def test_has_and_get_take_a_quoted_field_name(source: str) -> None:
    with pytest.raises(ExpressionError, match="not allowed"):
        parse(source)


def test_get_default_is_checked_too() -> None:
    with pytest.raises(ExpressionError, match="'open'"):
        parse("get('a', open('x'))")
