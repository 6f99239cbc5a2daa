"""Buses behind one protocol, chosen from a URL."""

from __future__ import annotations

from accord.buses.base import Bus, Message, matches, subject_for
from accord.errors import AccordError


class BusError(AccordError):
    """A bus could not be reached or used."""


def open_bus(url: str) -> Bus:
    """Open the bus a URL names: ``memory://`` or ``nats://host:port``."""
    if url.startswith("memory:"):
        from accord.buses.memory import MemoryBus

        return MemoryBus(url)
    if url.startswith("nats:"):
        from accord.buses.nats import NatsBus

        return NatsBus(url)
    raise BusError(f"unknown bus URL {url!r} (use memory:// or nats://host:4222)")


__all__ = ["Bus", "BusError", "Message", "matches", "open_bus", "subject_for"]
