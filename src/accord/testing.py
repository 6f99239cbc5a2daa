"""Helpers for testing your own processes quickly: a virtual clock and an in-memory engine.

::

    from accord.testing import VirtualClock, memory_engine

    engine, clock = memory_engine("my-process.yaml")
    case_id = engine.start_case("my-process", {"amount": 5000})
    clock.advance(3600)
    engine.fire_due_timers()      # SLAs and retries due within the hour fire now
    engine.run_jobs()             # automated steps run their handlers
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from accord.central.engine import Engine
from accord.clock import EPOCH, VirtualClock
from accord.handlers import HandlerContext, HandlerRegistry
from accord.model import load
from accord.model.types import ProcessDefinition
from accord.stores import open_store

__all__ = ["VirtualClock", "memory_engine"]


def memory_engine(
    *definitions: ProcessDefinition | str | Path,
    start: float = EPOCH,
    handlers: dict[str, Callable[[HandlerContext], dict[str, Any] | None]] | None = None,
) -> tuple[Engine, VirtualClock]:
    """An engine on an in-memory store with a virtual clock; definitions may be paths."""
    clock = VirtualClock(start)
    registry = HandlerRegistry()
    for name, fn in (handlers or {}).items():
        registry.register(name, fn)
    loaded = [d if isinstance(d, ProcessDefinition) else load(d) for d in definitions]
    engine = Engine(open_store("memory://"), loaded, clock=clock, handlers=registry)
    return engine, clock
