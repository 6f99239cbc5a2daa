"""The curated public surface of ``accord``: what it exports, that it is documented, and that the
example in its docstring (and the README's) really runs."""

from __future__ import annotations

import inspect
import re
import textwrap
from pathlib import Path

import pytest

import accord

ROOT = Path(__file__).resolve().parents[2]

EXPORTS = [
    "AccordError",
    "CaseError",
    "CaseState",
    "CaseStatus",
    "ConflictError",
    "ContractViolation",
    "DefinitionError",
    "Engine",
    "Event",
    "EventType",
    "ExpressionError",
    "HandlerContext",
    "HandlerRegistry",
    "NotFound",
    "Problem",
    "ProcessDefinition",
    "StoreError",
    "SystemClock",
    "TaskStateError",
    "TaskStatus",
    "VirtualClock",
    "__version__",
    "load",
    "loads",
    "open_engine",
]


def test_all_is_pinned() -> None:
    """Changing the public surface is a decision: update this list (and the changelog) with it."""
    assert accord.__all__ == EXPORTS
    assert sorted(accord.__all__) == accord.__all__
    assert len(set(accord.__all__)) == len(accord.__all__)


def test_every_export_exists() -> None:
    for name in accord.__all__:
        assert hasattr(accord, name), name


@pytest.mark.parametrize("name", [n for n in EXPORTS if not n.startswith("__")])
def test_every_class_and_function_is_documented(name: str) -> None:
    obj = getattr(accord, name)
    assert inspect.isclass(obj) or inspect.isfunction(obj), f"{name} is neither"
    doc = inspect.getdoc(obj)
    assert doc and doc.strip(), f"{name} has no docstring"
    if inspect.isclass(obj):
        assert obj.__doc__ and obj.__doc__.strip(), f"{name} only inherits its docstring"


def test_public_methods_of_the_engine_are_documented() -> None:
    missing = [
        name
        for name, fn in inspect.getmembers(accord.Engine, inspect.isfunction)
        if not name.startswith("_") and not (fn.__doc__ or "").strip()
    ]
    assert missing == []


def test_errors_form_the_documented_tree() -> None:
    case_errors = [accord.NotFound, accord.TaskStateError, accord.ConflictError]
    assert all(issubclass(e, accord.CaseError) for e in [*case_errors, accord.ContractViolation])
    for e in (accord.CaseError, accord.DefinitionError, accord.ExpressionError, accord.StoreError):
        assert issubclass(e, accord.AccordError)


def test_version_is_a_string() -> None:
    assert isinstance(accord.__version__, str)
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", accord.__version__)


def _docstring_example() -> str:
    doc = accord.__doc__ or ""
    _head, sep, body = doc.partition("::\n")
    assert sep, "the module docstring has no literal block"
    lines = []
    for line in body.splitlines():
        if line.strip() and not line.startswith("    "):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines))


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    (block,) = [b for b in blocks if "open_engine" in b]
    return block


@pytest.mark.parametrize(
    "source", [_docstring_example, _readme_example], ids=["docstring", "readme"]
)
def test_the_embedding_example_runs(
    source: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = source()  # type: ignore[operator]
    assert "sqlite:///onboarding.db" in code
    code = code.replace("sqlite:///onboarding.db", "memory://")
    monkeypatch.chdir(ROOT)  # the example names examples/... relative to the checkout
    namespace: dict[str, object] = {}
    try:
        exec(compile(code, "<example>", "exec"), namespace)
    finally:
        engine = namespace.get("engine")
        if isinstance(engine, accord.Engine):
            engine.close()
    printed = capsys.readouterr().out
    assert "case.started" in printed
    assert "task.completed" in printed
    assert "handoff" in printed  # the request moved on to compliance
