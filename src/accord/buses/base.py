"""The bus seam: how team nodes, the board and the hub hear each other's events.

Delivery is at-least-once everywhere: consumers make it exactly-once in effect by remembering
the ids they acted on (a node keeps them with each case's state). Subjects are
``accord.<process>.<event type>``; a subscription may end in ``>`` to take everything below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Message:
    """One delivered message. ``id`` is the publisher's id (the event id), used to dedupe."""

    subject: str
    data: bytes
    id: str


Handler = Callable[[Message], None]
# Optional: takes a whole delivered batch at once (one transaction for many messages); returns,
# per message, whether it was handled (else it is redelivered later).
BatchHandler = Callable[[list[Message]], list[bool]]


class Bus(Protocol):
    """Implemented by every broker adapter; the contract tests run against each."""

    url: str

    def publish(self, subject: str, data: bytes, msg_id: str) -> None:
        """Publish durably (returns once the broker has it)."""

    def publish_many(self, items: list[tuple[str, bytes, str]]) -> None:
        """Publish (subject, data, id) items, acknowledgements awaited together. (A bus may
        also offer ``publish_nowait(items) -> concurrent.futures.Future``, done once the broker
        has them all, as NatsBus does: a pipelined relay uses it; see TeamNode.relay.)"""

    def subscribe(
        self,
        subject: str,
        durable: str,
        handler: Handler,
        batch_handler: BatchHandler | None = None,
    ) -> None:
        """Deliver every message matching ``subject`` to ``handler`` (or, where the broker
        delivers in batches, to ``batch_handler``); ``durable`` names the consumer so that a
        restarted subscriber resumes where it stopped."""

    def close(self) -> None:
        """Stop delivering and release the connection."""


def matches(pattern: str, subject: str) -> bool:
    """NATS-style subject matching: ``*`` one token, ``>`` the rest."""
    p_tokens = pattern.split(".")
    s_tokens = subject.split(".")
    for i, tok in enumerate(p_tokens):
        if tok == ">":
            return len(s_tokens) > i
        if i >= len(s_tokens) or (tok != "*" and tok != s_tokens[i]):
            return False
    return len(p_tokens) == len(s_tokens)


def subject_for(process: str, event_type: str, to: str | None = None) -> str:
    """The subject an event of ``process`` (id or id@version) is published on.

    Events addressed to one team go on ``accord.<process>.to.<team>.<type>`` (``to.all`` for
    every node), so a node consumes only what concerns it; the rest of the log goes on
    ``accord.<process>.log.<type>`` for observers such as the status board, which subscribes to
    ``accord.<process>.>`` and so sees everything.
    """
    pid = process.split("@", 1)[0]
    if to is None:
        return f"accord.{pid}.log.{event_type}"
    return f"accord.{pid}.to.{to.replace('.', '_')}.{event_type}"


def inbox_subjects(process: str, team: str) -> list[str]:
    """What a team's node subscribes to: messages addressed to it, and to every node."""
    pid = process.split("@", 1)[0]
    return [f"accord.{pid}.to.{team.replace('.', '_')}.>", f"accord.{pid}.to.all.>"]
