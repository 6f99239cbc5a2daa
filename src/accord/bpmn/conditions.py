"""Translating BPMN condition expressions into accord's safe expression language.

Three dialects appear in real models:

- **JUEL** (Camunda 7, Activiti, Flowable): ``${amount > 1000 && approved}``, ``#{!approved}``,
  with ``&& || !``, ``and or not``, ``eq ne lt gt le ge``, ``div mod`` and
  ``execution.getVariable("x")``;
- **FEEL** (Camunda 8 / Zeebe, DMN): ``= amount > 1000 and status = "open"``, with ``=`` for
  equality and ``not(...)`` as a function; also chosen by a ``language`` naming FEEL;
- **XPath** (BPMN's default language, chosen by a ``language`` naming XPath): ``=`` for equality,
  ``not(...)``, ``true()``, and BPMN's ``bpmn:getDataObject('x')``, read as the case field ``x``;
- **plain** text (SpiffWorkflow's Python, accord's own language): tried as an accord expression
  first, then with the JUEL operators.

What is translated: literals, names and field paths (``a.b``, ``a["b"]``), arithmetic,
comparisons, boolean logic and JUEL's ``c ? a : b``; FEEL names with spaces (``Vacation Approval
= "Approved"``) read the case field of that name with ``get("Vacation Approval")``. Anything else
(method calls, ``empty``, FEEL ranges, names with spaces outside FEEL, assignments) raises
:class:`Untranslatable` with the reason, so the importer can report the element instead of
dropping the condition. The result is always checked by
:func:`accord.model.expr.parse`: a translation never lets through what a hand-written condition
could not contain.
"""

from __future__ import annotations

import keyword
import re
import warnings
from dataclasses import dataclass

from accord.errors import ExpressionError
from accord.model import expr

ACCORD_LANGUAGE = "urn:accord:expression"
"""The ``language`` accord writes on the conditions it exports (its own expression language)."""

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||\.\.|[<>!=+\-*/%().,\[\]?:])
    """,
    re.VERBOSE,
)

# FEEL's keywords and operator words: never part of a name with spaces
_FEEL_WORDS = frozenset(
    {
        *("and", "or", "not", "in", "between", "instance", "of", "satisfies", "some", "every"),
        *("if", "then", "else", "for", "return", "true", "false", "null", "function"),
    }
)

_MAX_DEPTH = 64  # nesting of parentheses and prefix operators: deeper is refused, not recursed

# Python's precedence, which the rendered text is read with
_P_TERNARY, _P_OR, _P_AND, _P_NOT, _P_CMP, _P_ADD, _P_MUL, _P_NEG, _P_POSTFIX, _P_ATOM = range(10)


class Untranslatable(Exception):
    """A condition that has no faithful equivalent in accord's expression language."""


@dataclass(frozen=True, slots=True)
class _Node:
    text: str
    prec: int


def translate(text: str, language: str | None = None) -> str:
    """The accord expression equivalent to ``text``; raise :class:`Untranslatable` if none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)  # Python's opinion of foreign text
        try:
            return _translate(text, language)
        except RecursionError:
            raise Untranslatable("nested too deeply") from None


def _translate(text: str, language: str | None) -> str:
    src = text.strip()
    if not src:
        raise Untranslatable("the condition is empty")
    lang = (language or "").strip().lower()
    if lang == ACCORD_LANGUAGE:
        return _checked(src, src)
    if len(src) > 2000:
        raise Untranslatable("longer than 2000 characters")
    juel = re.fullmatch(r"[$#]\{(.*)\}", src, re.DOTALL)
    if juel:
        return _checked(_Parser(juel.group(1), "juel").parse(), src)
    if src.startswith("="):
        return _checked(_Parser(src[1:], "feel").parse(), src)
    if "feel" in lang:
        return _checked(_Parser(src, "feel").parse(), src)
    if "xpath" in lang:
        try:
            expr.parse(src)
        except ExpressionError:
            return _checked(_Parser(src, "xpath").parse(), src)
        return src
    try:
        expr.parse(src)
    except ExpressionError:
        return _checked(_Parser(src, "plain").parse(), src)
    return src


def _checked(result: str, original: str) -> str:
    try:
        expr.parse(result)
    except ExpressionError as exc:
        raise Untranslatable(str(exc)) from None
    return result


class _Parser:
    """Recursive descent over one dialect, rendering accord text with minimal parentheses."""

    def __init__(self, text: str, dialect: str) -> None:
        self.src = text
        self.dialect = dialect
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                raise Untranslatable(f"unexpected {text[pos]!r} at column {pos + 1}")
            pos = m.end()
            kind = m.lastgroup or ""
            if kind != "ws":
                self.tokens.append((kind, m.group()))
        self.i = 0
        self.depth = 0

    def deeper(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise Untranslatable(f"nested more than {_MAX_DEPTH} levels deep")

    # -- tokens ---------------------------------------------------------------------------------

    def peek(self, offset: int = 0) -> tuple[str, str]:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        self.i += 1
        return tok

    def at(self, *values: str) -> bool:
        kind, value = self.peek()
        return kind in ("op", "name") and value in values

    def expect(self, value: str) -> None:
        kind, got = self.take()
        if got != value or kind not in ("op", "name"):
            raise Untranslatable(f"expected {value!r}, found {got or 'the end'!r}")

    # -- grammar --------------------------------------------------------------------------------

    def parse(self) -> str:
        if not self.tokens:
            raise Untranslatable("the condition is empty")
        node = self.ternary()
        kind, value = self.peek()
        if kind != "end":
            if kind == "name" and self.peek(-1)[0] == "name" and not keyword.iskeyword(value):
                raise Untranslatable(
                    f"two names in a row ({self.peek(-1)[1]!r} {value!r}): names with spaces "
                    "are read only in FEEL (a language naming FEEL, or '= ...')"
                )
            raise Untranslatable(f"unexpected {value!r}")
        return node.text

    def ternary(self) -> _Node:
        self.deeper()
        cond = self.or_()
        if self.dialect in ("juel", "plain") and self.at("?"):
            self.take()
            yes = self.ternary()
            self.expect(":")
            no = self.ternary()
            self.depth -= 1
            return _Node(
                f"{_wrap(yes, _P_OR)} if {_wrap(cond, _P_OR)} else {_wrap(no, _P_TERNARY)}",
                _P_TERNARY,
            )
        self.depth -= 1
        return cond

    def or_(self) -> _Node:
        left = self.and_()
        while self.at("||", "or"):
            self.take()
            right = self.and_()
            left = _Node(f"{_wrap(left, _P_OR)} or {_wrap(right, _P_OR + 1)}", _P_OR)
        return left

    def and_(self) -> _Node:
        left = self.not_()
        while self.at("&&", "and"):
            self.take()
            right = self.not_()
            left = _Node(f"{_wrap(left, _P_AND)} and {_wrap(right, _P_AND + 1)}", _P_AND)
        return left

    def not_(self) -> _Node:
        # Python-like plain text: `not` binds loosely (not a == b means not (a == b))
        if self.dialect == "plain" and self.at("not"):
            self.take()
            self.deeper()
            inner = self.not_()
            self.depth -= 1
            return _Node(f"not {_wrap(inner, _P_NOT)}", _P_NOT)
        return self.cmp()

    def cmp(self) -> _Node:
        left = self.add()
        ops = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
        if self.dialect in {"juel", "plain"}:
            ops.update({"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="})
        if self.dialect in ("feel", "xpath"):
            ops["="] = "=="
        kind, value = self.peek()
        if kind in ("op", "name") and value in ops:
            self.take()
            right = self.add()
            nxt_kind, nxt = self.peek()
            if nxt_kind in ("op", "name") and nxt in ops:
                raise Untranslatable(f"chained comparison before {nxt!r}: write it with and")
            return _Node(
                f"{_wrap(left, _P_CMP + 1)} {ops[value]} {_wrap(right, _P_CMP + 1)}", _P_CMP
            )
        if kind == "op" and value == "=":
            raise Untranslatable("'=' is an assignment here, not a comparison (use ==)")
        return left

    def add(self) -> _Node:
        left = self.mul()
        while self.at("+", "-"):
            op = self.take()[1]
            right = self.mul()
            left = _Node(f"{_wrap(left, _P_ADD)} {op} {_wrap(right, _P_ADD + 1)}", _P_ADD)
        return left

    def mul(self) -> _Node:
        left = self.unary()
        words = {"div": "/", "mod": "%"} if self.dialect == "juel" else {}
        while self.at("*", "/", "%", *words):
            op = self.take()[1]
            right = self.unary()
            op = words.get(op, op)
            left = _Node(f"{_wrap(left, _P_MUL)} {op} {_wrap(right, _P_MUL + 1)}", _P_MUL)
        return left

    def unary(self) -> _Node:
        if self.at("-"):
            self.take()
            self.deeper()
            inner = self.unary()
            self.depth -= 1
            return _Node(f"-{_wrap(inner, _P_NEG)}", _P_NEG)
        if self.at("!") or (self.dialect == "juel" and self.at("not")):
            self.take()
            self.deeper()
            inner = self.unary()  # JUEL's ! binds tightly: !a == b is (not a) == b
            self.depth -= 1
            return _Node(f"not {_wrap(inner, _P_NOT)}", _P_NOT)
        if self.dialect == "juel" and self.at("empty"):
            raise Untranslatable("JUEL's 'empty' operator has no equivalent (use has(...))")
        return self.postfix()

    def postfix(self) -> _Node:
        node = self.primary()
        while True:
            if self.at("."):
                self.take()
                kind, attr = self.take()
                if kind != "name":
                    raise Untranslatable(f"expected a field name after '.', found {attr!r}")
                if self.at("("):
                    node = self.call(node, attr)
                    continue
                node = _Node(f"{_wrap(node, _P_POSTFIX)}.{_name(attr)}", _P_POSTFIX)
            elif self.at("["):
                self.take()
                index = self.ternary()
                self.expect("]")
                node = _Node(f"{_wrap(node, _P_POSTFIX)}[{index.text}]", _P_POSTFIX)
            elif self.at("("):
                raise Untranslatable(f"calling {node.text!r} has no equivalent")
            else:
                return node

    def call(self, target: _Node, method: str) -> _Node:
        # execution.getVariable("x") is how JUEL reads a variable the long way round
        self.expect("(")
        kind, value = self.take()
        if (
            target.text == "execution"
            and method == "getVariable"
            and kind == "string"
            and self.at(")")
        ):
            self.take()
            return _Node(_name(_unquote(value)), _P_ATOM)
        raise Untranslatable(f"method call {target.text}.{method}(...) has no equivalent")

    def _more_words(self) -> bool:
        """Whether the next token continues a FEEL name with spaces."""
        kind, value = self.peek()
        return kind == "name" and value not in _FEEL_WORDS and not self.at_call(1)

    def at_call(self, offset: int) -> bool:
        kind, value = self.peek(offset)
        return kind == "op" and value == "("

    def primary(self) -> _Node:
        kind, value = self.take()
        if kind == "number":
            return _Node(value, _P_ATOM)
        if kind == "string":
            if self.dialect == "feel" and value.startswith("'"):
                raise Untranslatable("FEEL strings use double quotes")
            return _Node(repr(_unquote(value)), _P_ATOM)
        if kind == "name":
            constants = {"True": "true", "False": "false", "None": "null"}
            if value in ("true", "false", "null") or value in constants:
                if self.dialect == "xpath" and self.at("("):  # XPath's true() and false()
                    self.take()
                    self.expect(")")
                return _Node(constants.get(value, value), _P_ATOM)
            if self.dialect == "xpath" and self.at(":") and self.peek(1)[0] == "name":
                self.take()  # a prefixed function name: bpmn:getDataObject
                value = f"{value}:{self.take()[1]}"
            if self.dialect == "xpath" and value.rsplit(":", 1)[-1] == "getDataObject":
                self.expect("(")
                kind, arg = self.take()
                if kind != "string" or not self.at(")"):
                    raise Untranslatable("getDataObject takes one data object name in quotes")
                self.take()
                return _Node(_name(_unquote(arg)), _P_ATOM)
            if self.dialect in ("feel", "xpath") and value == "not" and self.at("("):
                self.take()
                inner = self.ternary()
                self.expect(")")
                return _Node(f"not {_wrap(inner, _P_NOT)}", _P_NOT)
            if self.at("("):
                raise Untranslatable(f"function {value}(...) has no equivalent")
            if self.dialect == "feel" and value in ("some", "every") and self.peek()[0] == "name":
                raise Untranslatable(f"FEEL quantifiers ({value} ... satisfies) have no equivalent")
            if self.dialect == "feel" and value not in _FEEL_WORDS and self._more_words():
                # FEEL names may contain spaces ("Vacation Approval"): the case field of
                # that name, read with get() since it is no identifier
                words = [value]
                while self._more_words():
                    words.append(self.take()[1])
                return _Node(f"get({' '.join(words)!r})", _P_POSTFIX)
            return _Node(_name(value), _P_ATOM)
        if kind == "op" and value == "(":
            inner = self.ternary()
            self.expect(")")
            return inner
        if kind == "op" and value == "..":
            raise Untranslatable("ranges ('..') have no equivalent")
        raise Untranslatable(f"unexpected {value or 'end of the condition'!r}")


def _wrap(node: _Node, prec: int) -> str:
    return f"({node.text})" if node.prec < prec else node.text


def _name(name: str) -> str:
    if name in ("and", "or", "not", "in", "is", "if", "else"):
        raise Untranslatable(f"unexpected {name!r}")
    if keyword.iskeyword(name):
        raise Untranslatable(f"the name {name!r} is a reserved word in accord's language")
    return name


def _unquote(token: str) -> str:
    body = token[1:-1]
    return re.sub(r"\\(.)", lambda m: m.group(1), body)
