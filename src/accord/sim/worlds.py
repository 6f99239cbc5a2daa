"""The engines a simulation drives: one hub (central), or a node per team on a bus (choreo).

The synthetic people, arrivals and handlers in accord.sim.runner do not care which: they ask
the world which engine holds a team's tasks and how to start a case.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import orjson

from accord.buses.base import Message
from accord.buses.memory import MemoryBus
from accord.central.engine import Engine
from accord.choreo.node import TeamNode, sender_of
from accord.events import Event, parse_iso

if TYPE_CHECKING:
    from accord.sim.runner import Simulation


class World(ABC):
    """What the simulator needs from the runtime it drives."""

    main: Engine

    @abstractmethod
    def distinct(self) -> list[Engine]:
        """Each engine once."""

    @abstractmethod
    def engine_for_team(self, team: str | None) -> Engine:
        """The engine holding a team's tasks."""

    @abstractmethod
    def engine_for_event(self, e: Event) -> Engine:
        """The engine that wrote an event."""

    @abstractmethod
    def start(self, case_id: str, decisions: dict[str, list[str]] | None = None) -> None:
        """Start a case (at the hub, or at the initiating team's node)."""

    def attach(self, sim: Simulation) -> None:  # noqa: B027 - optional hook
        """Hook the world's transport (a bus) into the simulation's clock, if it has one."""


class CentralWorld(World):
    """Every team works through one engine: the hub."""

    def __init__(self, engine: Engine, process: str) -> None:
        self.main = engine
        self.process = process

    def distinct(self) -> list[Engine]:
        """The hub."""
        return [self.main]

    def engine_for_team(self, team: str | None) -> Engine:
        """The hub."""
        return self.main

    def engine_for_event(self, e: Event) -> Engine:
        """The hub."""
        return self.main

    def start(self, case_id: str, decisions: dict[str, list[str]] | None = None) -> None:
        """Start the case at the hub."""
        self.main.start_case(self.process, {}, case_id=case_id, actor="sim", decisions=decisions)


class ChoreoWorld(World):
    """One node per team, each with its own store, talking over an in-process bus whose
    deliveries the simulator schedules on its virtual clock (network latency included)."""

    def __init__(self, nodes: dict[str, TeamNode], latency_s: float = 0.05) -> None:
        self.nodes = nodes
        self.latency_s = latency_s
        self.initiator = next(n for n in nodes.values() if n.is_initiator)
        self.main = self.initiator.engine
        self.bus: MemoryBus | None = None
        self._lag_total = 0.0
        self._lag_n = 0

    def distinct(self) -> list[Engine]:
        """Every node's engine."""
        return [n.engine for n in self.nodes.values()]

    def engine_for_team(self, team: str | None) -> Engine:
        """That team's node."""
        node = self.nodes.get(team or "")
        return node.engine if node is not None else self.main

    def engine_for_event(self, e: Event) -> Engine:
        """The node that wrote it."""
        return self.engine_for_team(sender_of(e))

    def start(self, case_id: str, decisions: dict[str, list[str]] | None = None) -> None:
        """The initiating team starts the case; everyone else hears of it on the bus."""
        self.initiator.start_case(case_id, {}, decisions=decisions)

    def attach(self, sim: Simulation) -> None:
        """Deliveries happen `latency_s` after publication, on the simulation's clock."""
        self.bus = MemoryBus(
            schedule=lambda fn: sim.at(sim.clock.now() + self.latency_s, "deliver", fn)
        )
        for node in self.nodes.values():
            node.bundle = False  # one message per event: each has its latency, and is counted
            node.attach(self.bus)  # it relays after each commit

        def board(msg: Message) -> None:
            # a passive observer, like the status board: how stale is its view when it learns?
            sent = orjson.loads(msg.data).get("time")
            if sent:
                self._lag_total += sim.clock.now() - parse_iso(sent)
                self._lag_n += 1

        self.bus.subscribe("accord.>", "board", board)

    @property
    def board_lag(self) -> float:
        """Mean delay between an event being committed and the board hearing of it."""
        return self._lag_total / self._lag_n if self._lag_n else 0.0
