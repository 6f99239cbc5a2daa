"""A faster ``__init__`` for the frozen, slotted dataclasses built on every transition.

A frozen dataclass's generated ``__init__`` stores each field with ``object.__setattr__(self,
name, value)``, which looks the attribute up by name on every call: about twice the cost of a
plain class's. Events, tasks, actions and transitions are built several times per handoff, so
that showed in the profiles (about 8% of a team node's time). :func:`fast_init` replaces the
``__init__`` with one of the same signature that stores each field through its slot's
descriptor, fetched once when the class is decorated. Nothing else changes: the instances are
as frozen as before (assigning a field still raises ``FrozenInstanceError``), defaults and
default factories apply as before, and equality, hashing and ``dataclasses.replace`` are the
dataclass's own.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")

_FACTORY = object()  # stands for "call the field's default factory" in the signature


def fast_init(cls: type[T]) -> type[T]:
    """Give the frozen, slotted dataclass ``cls`` the faster ``__init__`` described above."""
    params = dataclasses.fields(cls)  # type: ignore[arg-type]
    settings: Any = cls.__dict__.get("__dataclass_params__")
    if settings is None or not settings.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a frozen, slotted dataclass")
    if hasattr(cls, "__post_init__") or any(f.kw_only or not f.init for f in params):
        raise TypeError(f"{cls.__name__}: __post_init__, kw_only and init=False not supported")
    names: dict[str, Any] = {"_FACTORY": _FACTORY}
    args: list[str] = []
    body: list[str] = []
    for i, f in enumerate(params):
        names[f"_set{i}"] = _slot(cls, f.name).__set__
        if f.default is not dataclasses.MISSING:
            names[f"_default{i}"] = f.default
            args.append(f"{f.name}=_default{i}")
            body.append(f"    _set{i}(self, {f.name})")
        elif f.default_factory is not dataclasses.MISSING:
            names[f"_factory{i}"] = f.default_factory
            args.append(f"{f.name}=_FACTORY")
            body.append(f"    _set{i}(self, _factory{i}() if {f.name} is _FACTORY else {f.name})")
        else:
            args.append(f.name)
            body.append(f"    _set{i}(self, {f.name})")
    source = f"def __init__(self, {', '.join(args)}):\n" + "\n".join(body or ["    pass"])
    exec(source, names)
    init = names["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    init.__annotations__ = dict(cls.__init__.__annotations__)
    init.dataclass_init = cls.__init__  # kept for the tests
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


def _slot(cls: type, name: str) -> Any:
    for klass in cls.__mro__:
        descriptor = klass.__dict__.get(name)
        if descriptor is not None and hasattr(descriptor, "__set__"):
            return descriptor
    raise TypeError(f"{cls.__name__}.{name} has no slot")
