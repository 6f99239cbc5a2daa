"""fast_init gives the hot frozen dataclasses a faster __init__ that builds exactly what the
dataclass's own __init__ builds, and leaves them as frozen as they were."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any

import pytest

from accord.central.jobs import HandlerResult
from accord.events import Event
from accord.fastinit import fast_init
from accord.kernel import (
    ArriveToken,
    CloseCase,
    CompleteTask,
    EndBranch,
    FailTask,
    RunHandler,
    StartCase,
    Transition,
)
from accord.kernel.state import Task, Token

FAST = [Event, Task, Token, Transition, RunHandler, HandlerResult, StartCase, CompleteTask,
        FailTask, ArriveToken, EndBranch, CloseCase]  # fmt: skip


def _values(cls: type) -> list[Any]:
    """A distinct value for each required field (types do not matter to __init__)."""
    return [f"v{i}" for i, f in enumerate(dataclasses.fields(cls)) if _required(f)]


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _slow(cls: type, *args: Any, **kwargs: Any) -> Any:
    obj = object.__new__(cls)
    cls.__init__.dataclass_init(obj, *args, **kwargs)  # type: ignore[misc]
    return obj


def _signature(fn: Any) -> list[tuple[str, Any, Any, Any]]:
    """Names, kinds, defaults (a factory's stand-in aside) and annotations of the parameters."""
    out = []
    for p in inspect.signature(fn).parameters.values():
        default = p.default if isinstance(p.default, str | int | float | type(None)) else "?"
        out.append((p.name, p.kind, default, p.annotation))
    return out


def _fields(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


@pytest.mark.parametrize("cls", FAST, ids=lambda c: c.__name__)
def test_the_fast_init_builds_what_the_dataclass_init_builds(cls: type) -> None:
    assert _signature(cls.__init__) == _signature(cls.__init__.dataclass_init)  # type: ignore[misc]
    required = _values(cls)
    assert _fields(cls(*required)) == _fields(_slow(cls, *required))
    # every field given, by keyword
    every = {f.name: f"k{i}" for i, f in enumerate(dataclasses.fields(cls))}
    assert _fields(cls(**every)) == _fields(_slow(cls, **every)) == every
    # a default factory gives each instance its own object
    a, b = cls(*required), cls(*required)
    for f in dataclasses.fields(cls):
        if f.default_factory is not dataclasses.MISSING:
            assert getattr(a, f.name) == f.default_factory()
            assert getattr(a, f.name) is not getattr(b, f.name)


@pytest.mark.parametrize("cls", FAST, ids=lambda c: c.__name__)
def test_instances_stay_frozen(cls: type) -> None:
    obj = cls(*_values(cls))
    name = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, name, "changed")
    assert dataclasses.replace(obj, **{name: "other"}) == _slow(
        cls, **(_fields(obj) | {name: "other"})
    )


def test_only_frozen_slotted_dataclasses_are_accepted() -> None:
    @dataclass(slots=True)
    class Open:
        x: int

    @dataclass(frozen=True)
    class NoSlots:
        x: int

    @dataclass(frozen=True, slots=True)
    class Later:
        x: int
        y: list[int] = field(default_factory=list)

        def __post_init__(self) -> None:
            pass

    for cls in (Open, NoSlots, Later):
        with pytest.raises(TypeError):
            fast_init(cls)
