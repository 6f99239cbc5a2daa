"""Completion forms generated from a step's data contract, and their server-side checking.

A step says what its completion must carry with ``outputs`` (names) and ``contract`` (a JSON
Schema). Each output or contract property becomes one input whose type follows the schema:
``enum`` a list to choose from, ``boolean`` a checkbox, ``integer``/``number`` a number field
with its bounds, ``object``/``array`` a JSON text area, a long or ``format: textarea`` string a
text area, ``format: date`` a date picker, else a text field. Approval steps get their outcome.

The browser's own checks (``required``, ``min``, ``pattern``) are only a convenience: the posted
form is converted and checked against the same schema the kernel enforces, and each problem is
shown next to its input. Task feedback (a 1-5 rating and a comment) travels in the completion
as ``feedback``, which accord.analytics.measures reads as team satisfaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import orjson

from accord.model.types import APPROVAL_OUTCOMES, Step, StepKind

PREFIX = "f."
RATINGS = ("1", "2", "3", "4", "5")
_LONG_TEXT = 200


@dataclass
class Field:
    """One input of a completion form."""

    name: str
    label: str
    kind: str  # text, textarea, number, integer, select, checkbox, json, date
    required: bool = False
    options: list[tuple[str, str]] = field(default_factory=list)  # (value, label)
    attrs: dict[str, str] = field(default_factory=dict)
    value: str = ""
    error: str | None = None
    help: str = ""

    @property
    def input_name(self) -> str:
        """The form field's name (prefixed, so no output can clash with csrf_token)."""
        return PREFIX + self.name


def _schema(step: Step) -> dict[str, Any]:
    return step.contract if isinstance(step.contract, dict) else {}


def _names(step: Step) -> list[str]:
    props = _schema(step).get("properties") or {}
    names = list(step.outputs) + [p for p in props if p not in step.outputs]
    if step.kind is StepKind.APPROVAL and "outcome" not in names:
        names.insert(0, "outcome")
    return names


def _required(step: Step) -> set[str]:
    req = set(step.outputs) | set(_schema(step).get("required") or ())
    if step.kind is StepKind.APPROVAL:
        req.add("outcome")
    return req


def _prop(step: Step, name: str) -> dict[str, Any]:
    props = _schema(step).get("properties") or {}
    prop = props.get(name)
    out = dict(prop) if isinstance(prop, dict) else {}
    if name == "outcome" and step.kind is StepKind.APPROVAL and "enum" not in out:
        out["enum"] = list(step.outcomes or APPROVAL_OUTCOMES)
    return out


def _type(prop: dict[str, Any]) -> str | None:
    t = prop.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), None)
    return t if isinstance(t, str) else None


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else ""
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def fields_for(
    step: Step,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
) -> list[Field]:
    """The inputs of ``step``'s completion form, filled with ``values`` (case data, or what
    was posted) and marked with ``errors``."""
    values = values or {}
    errors = errors or {}
    required = _required(step)
    out = []
    for name in _names(step):
        prop = _prop(step, name)
        t = _type(prop)
        f = Field(
            name=name,
            label=str(prop.get("title") or name.replace("_", " ").replace("-", " ")),
            kind="text",
            required=name in required,
            help=str(prop.get("description") or ""),
            error=errors.get(name),
        )
        if "enum" in prop:
            f.kind = "select"
            f.options = [(_shown(v), _shown(v) or "(empty)") for v in prop["enum"]]
        elif "const" in prop:
            f.kind = "select"
            f.options = [(_shown(prop["const"]), _shown(prop["const"]))]
        elif t == "boolean":
            f.kind = "checkbox"
        elif t in ("integer", "number"):
            f.kind = t
            f.attrs["step"] = "1" if t == "integer" else "any"
            for key, attr in (("minimum", "min"), ("maximum", "max")):
                if isinstance(prop.get(key), int | float):
                    f.attrs[attr] = _shown(prop[key])
        elif t in ("object", "array"):
            f.kind = "json"
        elif t == "string" or t is None:
            fmt = prop.get("format")
            if fmt == "date":
                f.kind = "date"
            elif fmt == "textarea" or int(prop.get("maxLength") or 0) > _LONG_TEXT:
                f.kind = "textarea"
            for key, attr in (("minLength", "minlength"), ("maxLength", "maxlength")):
                if isinstance(prop.get(key), int):
                    f.attrs[attr] = str(prop[key])
            if isinstance(prop.get("pattern"), str):
                f.attrs["pattern"] = prop["pattern"]
        if name in values:
            f.value = _shown(values[name])
        out.append(f)
    return out


def takes_feedback(step: Step) -> bool:
    """Whether a completion of ``step`` may carry ``feedback`` (its contract allows it)."""
    schema = _schema(step)
    props = schema.get("properties") or {}
    return "feedback" in props or schema.get("additionalProperties", True) is not False


@dataclass
class Parsed:
    """A posted completion form: the data to complete with, or what is wrong with it."""

    data: dict[str, Any]
    errors: dict[str, str]  # input name -> problem
    problems: list[str]  # problems not tied to one input
    raw: dict[str, str]  # what was posted, to fill the form again

    @property
    def ok(self) -> bool:
        """Nothing wrong: the task may be completed with ``data``."""
        return not self.errors and not self.problems


def _convert(f: Field, prop: dict[str, Any], raw: str) -> Any:
    """The posted text as the value the schema wants; ValueError says why it cannot be."""
    if f.kind == "integer":
        try:
            return int(raw)
        except ValueError:
            raise ValueError("must be a whole number") from None
    if f.kind == "number":
        try:
            value = float(raw)
        except ValueError:
            raise ValueError("must be a number") from None
        return int(value) if value.is_integer() and "." not in raw and "e" not in raw else value
    if f.kind == "json":
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ValueError("must be JSON") from None
    if f.kind == "select":
        choices = prop.get("enum") or ([prop["const"]] if "const" in prop else [])
        for v in choices:
            if _shown(v) == raw:
                return v
        raise ValueError(f"must be one of {', '.join(_shown(v) for v in choices)}")
    return raw


def parse(step: Step, form: Mapping[str, Any]) -> Parsed:
    """Convert and check a posted completion form against the step's outputs and contract."""
    raw = {k[len(PREFIX) :]: str(v) for k, v in form.items() if k.startswith(PREFIX)}
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields_for(step):
        prop = _prop(step, f.name)
        text = raw.get(f.name, "").strip()
        if f.kind == "checkbox":
            data[f.name] = text not in ("", "false", "off", "0")
            continue
        if not text:
            if f.required:
                errors[f.name] = "required"
            continue
        try:
            data[f.name] = _convert(f, prop, text)
        except ValueError as exc:
            errors[f.name] = str(exc)
    problems: list[str] = []
    rating = str(form.get("rating") or "").strip()
    comment = str(form.get("comment") or "").strip()
    if rating and takes_feedback(step):
        if rating not in RATINGS:
            problems.append("feedback must be a rating from 1 to 5")
        else:
            data["feedback"] = {"rating": int(rating), **({"comment": comment} if comment else {})}
    schema = _schema(step)
    if schema and not errors:
        names = set(_names(step))
        for err in jsonschema.Draft202012Validator(schema).iter_errors(data):
            path = [str(p) for p in err.absolute_path]
            if path and path[0] in names:
                errors.setdefault(path[0], err.message)
            else:
                problems.append(("/".join(path) + ": " if path else "") + err.message)
    return Parsed(data, errors, problems, raw)
