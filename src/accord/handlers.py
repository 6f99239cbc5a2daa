"""Automated steps' handlers: resolving ``module:function`` and the context they receive."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accord.errors import AccordError

Handler = Callable[["HandlerContext"], "dict[str, Any] | None"]


class HandlerError(AccordError):
    """A handler could not be found or imported."""


class BpmnError(Exception):
    """Raised by a handler to end its task with a business error: the nearest error boundary
    or error event sub-process whose code matches catches it (no retries); uncaught, the case
    pauses on an incident naming the code."""

    def __init__(self, code: str, message: str = "") -> None:
        self.code = code
        self.message = message or code
        super().__init__(self.message)


@dataclass(slots=True)
class HandlerContext:
    """What a handler gets. ``key`` is the idempotency key: the same for every attempt of one
    task, so an effect guarded by it is applied once however often the handler runs."""

    key: str
    case_id: str
    task_id: str
    step: str
    attempt: int
    data: dict[str, Any]
    _record: Callable[[str, str, str], bool] | None = field(default=None, repr=False)

    def record_effect(self, kind: str, value: str) -> bool:
        """Record an effect once per (key, kind); return False if it was already recorded."""
        if self._record is None:
            return True
        return self._record(self.key, kind, value)


def inline(fn: Handler) -> Handler:
    """Mark a handler as *inline*: it returns at once and never blocks (a score, a mapping, a
    routing rule; no network, no disk, no sleeping). The engine then runs it in the unit of work
    that made its task ready, so the step starts and ends in that one commit (straight-through
    processing), on the engine's own thread and without the 60-second limit. Works for handlers
    named in a definition (``handler: module:function``) and for registered ones alike."""
    fn.accord_inline = True  # type: ignore[attr-defined]
    return fn


def _marked_inline(fn: Handler) -> bool:
    return getattr(fn, "accord_inline", False) is True


class HandlerRegistry:
    """Finds handlers by name: explicitly registered first, then by importing the module.

    ``paths`` are added to the import path for lookups (the folder of the process file, so that
    ``handler: my_handlers:fn`` next to it just works).
    """

    def __init__(self, paths: Iterable[str | Path] = ()) -> None:
        self._registered: dict[str, Handler] = {}
        self._inline: set[str] = set()
        self._unresolved: set[str] = set()
        self._paths = [str(Path(p).resolve()) for p in paths]

    def add_path(self, path: str | Path) -> None:
        """Search ``path`` too when importing handler modules."""
        p = str(Path(path).resolve())
        if p not in self._paths:
            self._paths.append(p)

    def register(self, name: str, fn: Handler, *, inline: bool | None = None) -> None:
        """Use ``fn`` for ``name`` instead of importing it.

        ``inline`` promises that ``fn`` returns at once and never blocks (a no-op, a small pure
        computation); see :func:`inline`, whose mark on ``fn`` counts when ``inline`` is None.
        """
        self._registered[name] = fn
        self._unresolved.discard(name)
        if inline or (inline is None and _marked_inline(fn)):
            self._inline.add(name)
        else:
            self._inline.discard(name)

    def inline(self, name: str) -> bool:
        """Whether the handler ``name`` is inline (registered so, or marked with :func:`inline`).
        A name not resolved yet is resolved now; one that cannot be is not inline (running it
        reports why)."""
        if name not in self._registered:
            if name in self._unresolved:
                return False
            try:
                self.resolve(name)
            except HandlerError:
                self._unresolved.add(name)  # not tried again here; the handler pool says why
                return False
        return name in self._inline

    def resolve(self, name: str) -> Handler:
        """The callable for ``name``; raise HandlerError saying why it cannot be had."""
        fn = self._registered.get(name)
        if fn is not None:
            return fn
        module_name, _, attr = name.partition(":")
        for p in self._paths:
            if p not in sys.path:
                sys.path.insert(0, p)
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # not found, or broken: a syntax error, an error on import
            raise HandlerError(
                f"handler {name!r}: cannot import {module_name!r}: {type(exc).__name__}: {exc}"
            ) from None
        found = getattr(module, attr, None)
        if not callable(found):
            raise HandlerError(f"handler {name!r}: {module_name} has no function {attr!r}")
        self._registered[name] = found
        if _marked_inline(found):
            self._inline.add(name)
        return found  # type: ignore[no-any-return]
