"""The safe expression language used for conditions on flows and hub-involvement criteria.

Expressions are Python-like (``amount > 10000 and risk in ["high", "critical"]``), parsed with
:mod:`ast` and interpreted by walking a whitelisted subset of the tree. Nothing is ever passed to
``eval`` or ``exec``: attribute access, calls outside a short list of pure built-ins, lambdas,
comprehensions and dunder names are refused when the definition is loaded, not at run time.
"""

from __future__ import annotations

import ast
import operator
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from accord.errors import ExpressionError

_MAX_LEN = 10_000  # bound on strings/lists built by * and + so a condition cannot eat memory

_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}

_CMPOPS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}


def _lower(s: Any) -> Any:
    return str(s).lower()


def _upper(s: Any) -> Any:
    return str(s).upper()


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len,
    "abs": abs,
    "min": min,
    "max": max,
    "round": round,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "lower": _lower,
    "upper": _upper,
}

# Functions that look into the case data itself: has("field") and get("field", default) let a
# condition deal with optional data instead of raising an incident for a missing name.
_DATA_FUNCS = frozenset({"has", "get"})

_CONSTANT_NAMES = {
    "true": True,
    "false": False,
    "null": None,
    "True": True,
    "False": False,
    "None": None,
}


class _Missing:
    """Marker for a name absent from the case data (distinct from an explicit null)."""


_MISSING = _Missing()


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed, checked condition. Evaluate it with :meth:`evaluate` against case data."""

    source: str
    tree: ast.expr = field(repr=False, compare=False)
    names: frozenset[str] = field(default=frozenset(), compare=False)

    def evaluate(self, data: Mapping[str, Any]) -> Any:
        """Evaluate against ``data``; raise :class:`ExpressionError` on any failure."""
        try:
            return _eval(self.tree, data)
        except ExpressionError:
            raise
        except (
            TypeError,
            ValueError,
            ZeroDivisionError,
            KeyError,
            IndexError,
            OverflowError,
            RecursionError,
        ) as exc:
            raise ExpressionError(f"{self.source!r} failed: {exc}", source=self.source) from None

    def test(self, data: Mapping[str, Any]) -> bool:
        """Evaluate as a condition (truthiness)."""
        return bool(self.evaluate(data))


def parse(source: str) -> Expression:
    """Parse and check ``source``; raise :class:`ExpressionError` naming the offending part."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("empty expression", source=str(source))
    text = source.strip()
    if len(text) > 2000:
        raise ExpressionError("expression longer than 2000 characters", source=text)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. SyntaxWarning for "1a": we report our own
            tree = ast.parse(text, mode="eval").body
    except (RecursionError, MemoryError):
        raise ExpressionError("expression nested too deeply", source=text) from None
    except SyntaxError as exc:
        raise ExpressionError(
            f"cannot parse {text!r}: {exc.msg} at column {exc.offset}",
            source=text,
            offset=exc.offset,
        ) from None
    names: set[str] = set()
    try:
        _check(tree, text, names)
    except RecursionError:
        msg = f"expression nested too deeply: {text[:60]!r}"
        raise ExpressionError(msg, source=text) from None
    return Expression(text, tree, frozenset(names))


def _check(node: ast.AST, src: str, names: set[str]) -> None:
    def refuse(what: str) -> ExpressionError:
        col = getattr(node, "col_offset", None)
        return ExpressionError(f"{what} is not allowed in {src!r}", source=src, offset=col)

    match node:
        case ast.Constant(value=v):
            if not isinstance(v, str | int | float | bool | type(None)):
                raise refuse(f"constant {v!r}")
        case ast.Name(id=name):
            if name.startswith("_"):
                raise refuse(f"name {name!r}")
            if name not in _CONSTANT_NAMES:
                names.add(name)
        case ast.BoolOp(values=values):
            for operand_ in values:
                _check(operand_, src, names)
        case ast.UnaryOp(op=uop, operand=operand):
            if not isinstance(uop, ast.Not | ast.USub | ast.UAdd):
                raise refuse(f"operator {type(uop).__name__}")
            _check(operand, src, names)
        case ast.BinOp(left=left, op=op, right=right):
            if type(op) not in _BINOPS:
                raise refuse(f"operator {type(op).__name__}")
            _check(left, src, names)
            _check(right, src, names)
        case ast.Compare(left=cleft, ops=ops, comparators=comps):
            for cop in ops:
                if type(cop) not in _CMPOPS:
                    raise refuse(f"comparison {type(cop).__name__}")
            _check(cleft, src, names)
            for c in comps:
                _check(c, src, names)
        case ast.Attribute(value=base, attr=attr):
            if attr.startswith("_"):
                raise refuse(f"attribute {attr!r}")
            _check(base, src, names)
        case ast.Subscript(value=sbase, slice=sl):
            if isinstance(sl, ast.Slice):
                raise refuse("slicing")
            _check(sbase, src, names)
            _check(sl, src, names)
        case ast.List(elts=elts) | ast.Tuple(elts=elts) | ast.Set(elts=elts):
            for e in elts:
                _check(e, src, names)
        case ast.IfExp(test=t, body=b, orelse=o):
            for part in (t, b, o):
                _check(part, src, names)
        case ast.Call(func=ast.Name(id=fname), args=args, keywords=[]) if fname in _DATA_FUNCS:
            if (
                not args
                or not isinstance(args[0], ast.Constant)
                or not isinstance(args[0].value, str)
            ):
                raise refuse(f"{fname}() without a field name in quotes as its first argument")
            if len(args) > (2 if fname == "get" else 1):
                raise refuse(f"{fname}() with {len(args)} arguments")
            for a in args[1:]:
                _check(a, src, names)
        case ast.Call(func=ast.Name(id=fname), args=args, keywords=[]):
            if fname not in FUNCTIONS:
                known = ", ".join(sorted(FUNCTIONS))
                raise refuse(f"function {fname!r} (known: {known})")
            for a in args:
                _check(a, src, names)
        case _:
            raise refuse(type(node).__name__)


def _lookup(data: Mapping[str, Any], name: str) -> Any:
    if name in _CONSTANT_NAMES:
        return _CONSTANT_NAMES[name]
    value = data.get(name, _MISSING)
    if value is _MISSING:
        known = ", ".join(sorted(data)) or "none"
        raise ExpressionError(f"unknown name {name!r} (case data has: {known})", source=name)
    return value


def _bounded(value: Any) -> Any:
    if isinstance(value, str | list | tuple) and len(value) > _MAX_LEN:
        raise ExpressionError(f"value longer than {_MAX_LEN} built by an expression")
    return value


def _eval(node: ast.expr, data: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return _lookup(data, node.id)
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            result: Any = True
            for v in node.values:
                result = _eval(v, data)
                if not result:
                    return result
            return result
        result = False
        for v in node.values:
            result = _eval(v, data)
            if result:
                return result
        return result
    if isinstance(node, ast.UnaryOp):
        val = _eval(node.operand, data)
        if isinstance(node.op, ast.Not):
            return not val
        return -val if isinstance(node.op, ast.USub) else +val
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, data), _eval(node.right, data)
        if isinstance(node.op, ast.Mult) and (
            isinstance(left, str | list | tuple) or isinstance(right, str | list | tuple)
        ):
            count = right if isinstance(left, str | list | tuple) else left
            seq = left if isinstance(left, str | list | tuple) else right
            if isinstance(count, int) and count * len(seq) > _MAX_LEN:
                raise ExpressionError(f"value longer than {_MAX_LEN} built by an expression")
        return _bounded(_BINOPS[type(node.op)](left, right))
    if isinstance(node, ast.Compare):
        left = _eval(node.left, data)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval(comp, data)
            if not _CMPOPS[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Attribute):
        base = _eval(node.value, data)
        if isinstance(base, Mapping) and node.attr in base:
            return base[node.attr]
        raise ExpressionError(f"no field {node.attr!r} in {ast.unparse(node.value)}")
    if isinstance(node, ast.Subscript):
        base = _eval(node.value, data)
        key = _eval(node.slice, data)
        return base[key]
    if isinstance(node, ast.List | ast.Tuple):
        return [_eval(e, data) for e in node.elts]
    if isinstance(node, ast.Set):
        return {_eval(e, data) for e in node.elts}
    if isinstance(node, ast.IfExp):
        return _eval(node.body if _eval(node.test, data) else node.orelse, data)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        fname = node.func.id
        if fname in _DATA_FUNCS:
            key = node.args[0].value  # type: ignore[attr-defined]
            if fname == "has":
                return key in data and data[key] is not None
            default = _eval(node.args[1], data) if len(node.args) > 1 else None
            return data.get(key, default)
        return _bounded(FUNCTIONS[fname](*[_eval(a, data) for a in node.args]))
    raise ExpressionError(f"cannot evaluate {type(node).__name__}")  # unreachable after _check
