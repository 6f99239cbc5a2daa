"""A team's node: its own store, its own part of each case, and the bus. No hub, no global state.

The node is an engine running the kernel in the team's scope. What it hears on the bus becomes
kernel actions (a handoff arrives as a token, an announcement tells a join what to wait for, an
ended branch goes to the initiating team's ledger); what it commits goes out on the bus from its
event log, which doubles as the outbox: a relay publishes every event past a cursor kept in the
same database, so a crash between commit and publish only means publishing again (and every
receiver ignores an event id it has already acted on).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import CancelledError, Future, wait
from typing import Any

import orjson

from accord.buses.base import Bus, Message, inbox_subjects, subject_for
from accord.central.engine import Engine
from accord.choreo import wire
from accord.choreo.projection import Projection
from accord.clock import Clock
from accord.errors import CaseError, NotFound
from accord.events import Event, EventType, event_type
from accord.handlers import HandlerRegistry
from accord.kernel import (
    Announce,
    AnyAction,
    ArriveToken,
    CloseCase,
    EndBranch,
    IssueReply,
    NoteIssue,
    RejectHandoff,
    ReturnToken,
    Transition,
)
from accord.kernel.graph import graph_of
from accord.stores.base import Store

log = logging.getLogger("accord.node")

# events whose addressee is in their data (the rest go by type alone; see TeamNode.addressee)
_ADDRESSED_BY_DATA = frozenset(
    {EventType.HANDOFF, EventType.HANDOFF_REJECTED, EventType.GATEWAY_DECIDED}
    | {t for t in EventType if t.value.startswith("issue.")}
)
# events that go to observers only, whatever their data (see TeamNode._addressee)
_OBSERVED_ONLY = frozenset(
    t
    for t in EventType
    if t not in _ADDRESSED_BY_DATA
    and t not in (EventType.BRANCH_ENDED, EventType.CASE_COMPLETED, EventType.CASE_CANCELLED,
                  EventType.CASE_REQUESTED)
)  # fmt: skip

RELAY_BATCH = 1000  # events read from the log per relay round
CURSOR_EVERY_S = 0.05  # the relay cursor is written at most this often while publishing
MAX_IN_FLIGHT = 4  # batches a pipelined relay hands to the bus before the first is acknowledged
POLL_LOG_S = 1.0  # the relay reads the log at least this often, even when nothing committed here
# Actions applied per commit when a delivered batch is big. With inline handlers a unit does the
# whole step (arrival, handler, completion, handoff), so one unit for a batch of hundreds would
# keep the next team idle until all of it is committed and relayed; in slices, the first
# handoffs are on their way while the rest is worked on. In bench/choreo.py on 2 cores, 64 gave
# the most handoffs per second: 16 and 32 cost more CPU per handoff in commits and messages,
# 128 left each node idle a third of the time, and whole batches gave about 30% fewer.
APPLY_CHUNK = 64


def sender_of(e: Event) -> str | None:
    """The team whose node wrote an event (team nodes number events ``case#team#seq``)."""
    parts = e.id.split("#")
    return parts[1] if len(parts) == 3 else None


class TeamNode:
    """One team's runtime in a choreography."""

    def __init__(
        self,
        projection: Projection,
        team: str,
        store: Store,
        *,
        clock: Clock | None = None,
        handlers: HandlerRegistry | None = None,
        bus: Bus | None = None,
        auto_assign: bool = True,
    ) -> None:
        self.projection = projection
        self.d = projection.definition
        self.part = projection.part(team)
        self.team = team
        # (flow, sending team) of every handoff the projection has for this team
        self._senders = {(h.flow, h.from_team) for h in projection.handoffs if h.to_team == team}
        self.engine = Engine(
            store,
            [self.d],
            clock=clock,
            handlers=handlers,
            scope=self.part.scope,
            source=f"accord/node/{team}",
            auto_assign=auto_assign,
        )
        self.bus = bus
        self._cursor_key = f"relay:{team}"
        self.cursor = int(store.get_meta(self._cursor_key) or 0)
        self._saved_cursor = self.cursor
        self._saved_at = float("-inf")
        # one message per addressee for each batch the relay reads (see accord.choreo.wire);
        # False: one message per event (the simulator counts messages that way)
        self.bundle = True
        self.rejected = 0
        self.handled = 0
        self._relay_lock = threading.Lock()
        # publish right after each commit, waiting for the bus (in-process buses); a live node
        # sets this False and ``pipelined`` True, and its loop relays (see relay and wait)
        self.eager_relay = True
        self.pipelined = False
        self._sent = self.cursor  # the last position handed to the bus
        self._in_flight: deque[tuple[int, Future[None]]] = deque()
        self._wake = threading.Event()
        # whether the log may hold events past _sent: cleared by a read that found the end, set
        # again when the store has committed since (its commit count), so a loop woken by an
        # acknowledgement does not query the log for nothing; it still reads every POLL_LOG_S,
        # for events another process may have added to the same file
        self._unread = True
        self._read_at = 0.0
        self._read_commits: int | None = None
        self._backoff = 0.0
        self._retry_at = 0.0

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def is_initiator(self) -> bool:
        """Whether this team starts cases (and keeps their ledgers)."""
        return self.team == self.projection.initiator

    def attach(self, bus: Bus) -> None:
        """Subscribe to what is addressed to this team (durably) and publish from now on."""
        self.bus = bus
        self.engine.listeners.append(self._after_commit)
        for i, subject in enumerate(inbox_subjects(self.d.id, self.team)):
            durable = f"node-{self.d.id}-{self.team}-{i}"
            bus.subscribe(subject, durable, self.on_message, self.on_messages)

    def _after_commit(self, _events: list[Event]) -> None:
        if self.eager_relay:
            self.relay()
        else:
            self._wake.set()  # the node's loop relays

    def start_case(
        self,
        case_id: str,
        data: dict[str, Any] | None = None,
        decisions: dict[str, list[str]] | None = None,
    ) -> str:
        """Start a case: only the initiating team does (case start is an event, no hub)."""
        if not self.is_initiator:
            raise CaseError(
                f"team {self.team!r} does not start cases; {self.projection.initiator!r} does"
            )
        cid = self.engine.start_case(
            self.d.id, data, case_id=case_id, actor=f"node:{self.team}", decisions=decisions
        )
        self.relay()
        return cid

    # -- inbound --------------------------------------------------------------------------------

    def on_message(self, msg: Message) -> None:
        """Bus entry point for one message (buses that deliver one at a time). Never raises."""
        self.on_messages([msg])

    def on_messages(self, msgs: list[Message]) -> list[bool]:
        """Bus entry point for a delivered batch: the actions it causes commit in transactions
        of at most APPLY_CHUNK, each with its inbox ids (whatever commits is relayed by
        _after_commit); the bus acknowledges the batch after the last. If a later slice fails,
        the whole batch comes again and the slices already committed are ignored by their
        inbox ids. Malformed or refused messages are logged and acknowledged: redelivering
        them would change nothing."""
        items: list[tuple[str, str, AnyAction]] = []
        sources: list[Event] = []
        for msg in msgs:
            decoded = wire.decode(msg.data)
            bad = [str(e) for e in decoded if isinstance(e, ValueError)]
            if bad:
                log.warning(
                    "%s: malformed message %s on %s skipped: %s",
                    self.team, msg.id, msg.subject, "; ".join(dict.fromkeys(bad)),
                )  # fmt: skip
            for e in decoded:
                if isinstance(e, ValueError):
                    continue
                if sender_of(e) == self.team:
                    continue  # our own event, already applied when we wrote it
                if e.type is EventType.CASE_REQUESTED:
                    self._requested(e)
                    continue
                action = self._action_for(e)
                if action is not None:
                    items.append((self.d.key, e.case, action))
                    sources.append(e)
        results: list[Transition | CaseError] = []
        for i in range(0, len(items), APPLY_CHUNK):
            results.extend(self.engine.apply_many(items[i : i + APPLY_CHUNK]))
        if items:
            for e, (_key, _case, action), result in zip(sources, items, results, strict=True):
                if isinstance(result, NotFound) and isinstance(action, CloseCase):
                    continue  # the end of a case this node never took part in
                if isinstance(result, CaseError):
                    # a late or duplicate message for a case that ended here, a handoff for a
                    # step this team does not own: say so, change nothing
                    log.info("%s: %s %s for case %s not applied: %s",
                             self.team, e.type.value, e.id, e.case, result)  # fmt: skip
                else:
                    self.handled += 1
        return [True] * len(msgs)

    def _requested(self, e: Event) -> bool:
        """Initiation without a hub: whoever wants a case notifies the initiating team."""
        if not self.is_initiator:
            return False
        try:
            self.engine.start_case(
                self.d.id, dict(e.data.get("data") or {}), case_id=e.case, actor=e.actor
            )
        except CaseError:
            return False  # requested twice (a redelivery): the case already exists
        self.handled += 1
        return True

    def _action_for(self, e: Event) -> AnyAction | None:
        now = self.engine.clock.now()
        data = e.data
        t = e.type
        if t is EventType.HANDOFF and data.get("to_team") == self.team:
            if not self._expected_sender(e):
                log.warning(
                    "%s: handoff %s on %r from %r is not one the process has: refused",
                    self.team, e.id, data.get("flow"), sender_of(e),
                )  # fmt: skip
                return None
            errors = self._check_contracts(data)
            if errors:
                self.rejected += 1
                return RejectHandoff(
                    at=now,
                    actor=f"node:{self.team}",
                    case_id=e.case,
                    flow=str(data.get("flow", "")),
                    from_team=str(data.get("from_team", "")),
                    from_step=str(data.get("from_step") or ""),
                    weight=str(data.get("weight", "1")),
                    errors=tuple(errors),
                    msg_id=e.id,
                )
            return ArriveToken(
                at=now,
                actor=f"node:{self.team}",
                case_id=e.case,
                flow=str(data.get("flow", "")),
                origin=tuple(data.get("origin") or ()),
                weight=str(data.get("weight", "1")),
                data=dict(data.get("case_data") or {}),
                versions=dict(data.get("versions") or {}),
                msg_id=e.id,
            )
        if t is EventType.HANDOFF_REJECTED and data.get("from_team") == self.team:
            return ReturnToken(
                at=now,
                actor=f"node:{self.team}",
                step=str(data.get("from_step") or ""),
                weight=str(data.get("weight", "1")),
                reason="; ".join(data.get("errors") or ()),
                flow=str(data.get("flow") or ""),
                msg_id=e.id,
            )
        announce = data.get("announce") if t is EventType.GATEWAY_DECIDED else None
        if isinstance(announce, dict) and announce.get("to_team") == self.team:
            return Announce(
                at=now,
                actor=f"node:{self.team}",
                case_id=e.case,
                join=str(announce.get("join", "")),
                flows=tuple(announce.get("expect") or ()),
                msg_id=e.id,
            )
        if t is EventType.BRANCH_ENDED and self.is_initiator:
            return EndBranch(
                at=now,
                actor=f"node:{self.team}",
                weight=str(data.get("weight", "1")),
                terminate=bool(data.get("terminate")),
                team=sender_of(e) or "",
                msg_id=e.id,
            )
        issue_action = self._issue_action(e, now)
        if issue_action is not None:
            return issue_action
        if t in (EventType.CASE_COMPLETED, EventType.CASE_CANCELLED):
            # a node that never took part in the case has nothing to close (see on_messages)
            outcome = "cancelled" if t is EventType.CASE_CANCELLED else "completed"
            return CloseCase(at=now, actor=f"node:{self.team}", outcome=outcome, msg_id=e.id)
        return None

    def _issue_action(self, e: Event, now: float) -> AnyAction | None:
        """Negotiation messages addressed to this team."""
        data = e.data
        if data.get("to_team") != self.team or "issue" not in data:
            return None
        t = e.type
        actor = f"node:{self.team}"
        issue = str(data["issue"])
        role = None
        if t is EventType.ISSUE_RAISED or (
            t is EventType.ISSUE_COUNTERED and data.get("by") == "raiser"
        ):
            role = "respond"  # this team is at fault: it answers
        elif t is EventType.ISSUE_ESCALATED:
            role = "rule"  # this team has the owner: it decides
        if role is not None:
            return NoteIssue(
                at=now,
                actor=actor,
                case_id=e.case,
                issue=issue,
                role=role,
                raised_by=str(data.get("from_team") or sender_of(e) or ""),
                step=str(e.step or ""),
                at_fault=str(data.get("at_fault") or ""),
                proposal=str(data.get("proposal") or "rework"),
                round=int(data.get("round") or 1),
                msg_id=e.id,
            )
        if t in (EventType.ISSUE_ACCEPTED, EventType.ISSUE_COUNTERED, EventType.ISSUE_RULED):
            reply = {
                EventType.ISSUE_ACCEPTED: "accepted",
                EventType.ISSUE_COUNTERED: "countered",
                EventType.ISSUE_RULED: "ruled",
            }[t]
            proposal = data.get("action") if t is EventType.ISSUE_RULED else data.get("proposal")
            return IssueReply(
                at=now,
                actor=actor,
                issue=issue,
                reply=reply,
                proposal=str(proposal or ""),
                round=int(data.get("round") or 1),
                msg_id=e.id,
            )
        if (
            t in (EventType.ISSUE_RESOLVED, EventType.ISSUE_RULED)
            and data.get("action") == "rework"
        ):
            return ReturnToken(
                at=now,
                actor=actor,
                step=str(data.get("at_fault") or ""),
                weight=str(data.get("weight") or "0"),
                reason=f"rework agreed in {issue}",
                msg_id=e.id,
            )
        return None

    def _expected_sender(self, e: Event) -> bool:
        """A handoff must come from a team the projection says sends on that flow."""
        sender = sender_of(e)
        claimed = e.data.get("from_team")
        if sender is None or claimed != sender:
            return False
        flow = e.data.get("flow")
        return isinstance(flow, str) and (flow, sender) in self._senders

    def _check_contracts(self, data: dict[str, Any]) -> list[str]:
        """The receiving side checks the sender's data contract too (it trusts nobody)."""
        payload = data.get("case_data")
        if not isinstance(payload, dict):
            return ["handoff carries no case data"]
        errors: list[str] = []
        validators = graph_of(self.d).validators
        src = data.get("from_step")
        if isinstance(src, str) and src in validators:
            for err in validators[src].iter_errors(payload):
                path = "/".join(str(p) for p in err.absolute_path) or "(root)"
                errors.append(f"{src}: {path}: {err.message}")
        return errors

    # -- outbound -------------------------------------------------------------------------------

    def relay(self) -> int:
        """Publish committed events past what was sent; move the cursor past what the bus has
        acknowledged. Returns how many events were handed to the bus.

        With ``pipelined`` set and a bus that can publish without waiting (``publish_nowait``),
        up to MAX_IN_FLIGHT batches are on their way at once: a call only hands them over, and
        a later call (or :meth:`drain`) moves the cursor over those the broker has stored, in
        log order. A batch the bus refused rewinds to the cursor: everything after it goes
        again (receivers ignore what they already have)."""
        if self.bus is None or not self._relay_lock.acquire(blocking=False):
            return 0  # busy (an in-process bus may call back into us while we publish)
        sent = 0
        try:
            if self.pipelined and time.monotonic() < self._retry_at:
                return 0  # the bus refused a batch lately: wait a little before trying again
            try:
                self._settle()
            except Exception:
                self._backoff = min(max(self._backoff * 2, 0.1), 5.0)
                self._retry_at = time.monotonic() + self._backoff
                raise
            self._backoff = 0.0
            self._wake.clear()  # what woke the loop is read below; later commits wake it again
            nowait = getattr(self.bus, "publish_nowait", None) if self.pipelined else None
            commits = self.engine.store.commits
            if commits != self._read_commits or time.monotonic() - self._read_at >= POLL_LOG_S:
                self._unread = True
            while len(self._in_flight) < MAX_IN_FLIGHT and self._unread:
                self._unread = False
                self._read_commits = commits  # (before reading: a commit meanwhile counts)
                self._read_at = time.monotonic()
                try:
                    n, last, parts = self._read(self._sent)
                    if not n:
                        break
                    items = self._messages(parts)
                    if nowait is None:
                        self.bus.publish_many(items)
                        # only once the bus has them: a failed publish is retried next relay
                        self._sent = self.cursor = last
                    else:
                        future: Future[None] = nowait(items)
                        future.add_done_callback(self._acked)
                        self._in_flight.append((last, future))
                        self._sent = last
                except BaseException:
                    self._unread = True  # not sent: read it again next time
                    raise
                sent += n
                if n < RELAY_BATCH:
                    break  # that was all
                self._unread = True
            # after publishing: a crash before the cursor is stored publishes again, never
            # loses; receivers ignore what they already acted on
            if time.monotonic() - self._saved_at >= CURSOR_EVERY_S:
                self.save_cursor()
        finally:
            self._relay_lock.release()
        return sent

    def _acked(self, _future: Future[None]) -> None:
        self._wake.set()  # (the bus's thread) a batch was stored or refused: settle it soon

    def _settle(self) -> None:
        """Move the cursor over the leading batches the broker has acknowledged."""
        while self._in_flight and self._in_flight[0][1].done():
            last, future = self._in_flight.popleft()
            exc = CancelledError() if future.cancelled() else future.exception()
            if exc is not None:
                for _, later in self._in_flight:
                    later.cancel()
                self._in_flight.clear()
                self._sent = self.cursor  # everything not acknowledged in order goes again
                self._unread = True
                raise exc
            self.cursor = last

    @property
    def pending(self) -> int:
        """Batches handed to the bus and not yet acknowledged (pipelined relay)."""
        return len(self._in_flight)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait for every batch in flight, then move and store the cursor."""
        with self._relay_lock:
            try:
                if self._in_flight:
                    wait([f for _, f in self._in_flight], timeout=timeout)
                self._settle()
            finally:
                self.save_cursor()

    def wait(self, timeout: float) -> bool:
        """Sleep until something commits or a publish is acknowledged (at most ``timeout``
        seconds); True if woken."""
        woken = self._wake.wait(timeout)
        if woken:
            self._wake.clear()
        return woken

    def save_cursor(self) -> None:
        """Store the relay cursor now (the relay does so at most every CURSOR_EVERY_S)."""
        self._saved_at = time.monotonic()
        cursor = self.cursor
        if cursor != self._saved_cursor:
            self.engine.store.set_meta(self._cursor_key, str(cursor))
            self._saved_cursor = cursor

    def _read(self, after: int) -> tuple[int, int, list[tuple[str | None, wire.Part]]]:
        """Up to RELAY_BATCH events of the log past position ``after``: how many, the last
        position, and each event encoded with its addressee."""
        source = f"accord/node/{self.team}"
        event_rows = getattr(self.engine.store, "event_rows", None)
        if event_rows is not None:  # straight from the rows: the data is not decoded again
            rows = event_rows(after, RELAY_BATCH)
            parts = [
                (self._addressee_row(r[4], r[11]), (r[1], r[4], wire.encode_row(r, source)))
                for r in rows
            ]
            return len(rows), (rows[-1][0] if rows else after), parts
        batch = list(self.engine.store.events(after=after, limit=RELAY_BATCH))
        parts = [
            (self.addressee(e), (e.id, e.type.value, wire.encode(e, source))) for _pos, e in batch
        ]
        return len(batch), (batch[-1][0] if batch else after), parts

    def _messages(self, parts: list[tuple[str | None, wire.Part]]) -> list[tuple[str, bytes, str]]:
        """(subject, data, id) to publish for a batch read from the log: one bundle per
        addressee, in log order within each (or one message per event, without ``bundle``)."""
        pid = self.d.id
        if not self.bundle:
            return [(subject_for(pid, t, to), doc, eid) for to, (eid, t, doc) in parts]
        groups: dict[str | None, list[wire.Part]] = {}
        for to, part in parts:
            groups.setdefault(to, []).append(part)
        return [
            (subject_for(pid, wire.bundle_type(b), to), wire.bundle_data(b), wire.bundle_id(b))
            for to, group in groups.items()
            for b in wire.bundles(group)
        ]

    def addressee(self, e: Event) -> str | None:
        """Which node an event is for (``all`` for every node; None: observers only)."""
        return self._addressee(e.type, e.data)

    def _addressee_row(self, etype: str, data: str) -> str | None:
        t = event_type(etype)  # (an unknown type raises)
        if t in _OBSERVED_ONLY:
            return None  # task.ready, task.completed, ...: most of the log
        return self._addressee(t, orjson.loads(data) if t in _ADDRESSED_BY_DATA else {})

    def _addressee(self, t: EventType, data: dict[str, Any]) -> str | None:
        if t is EventType.HANDOFF_REJECTED:
            return str(data.get("from_team") or "") or None
        if t is EventType.HANDOFF or t.value.startswith("issue."):
            return str(data.get("to_team") or "") or None
        if t is EventType.GATEWAY_DECIDED:
            announce = data.get("announce")
            return str(announce.get("to_team")) if isinstance(announce, dict) else None
        if t is EventType.BRANCH_ENDED:
            return self.projection.initiator
        if t in (EventType.CASE_COMPLETED, EventType.CASE_CANCELLED, EventType.CASE_REQUESTED):
            return "all"
        return None

    def close(self) -> None:
        """Wait for what is in flight, store the relay cursor and close the node's store."""
        try:
            self.drain(timeout=5.0)
        except Exception as exc:  # the bus is gone: the next start publishes these again
            log.warning("%s: relay not drained at close: %s", self.team, exc)
        self.engine.close()
