"""NATS JetStream adapter: one stream per process, durable push consumers, explicit acks.

nats-py is asynchronous; accord's nodes are not (the kernel and SQLite are synchronous and
fast). The adapter runs its own event loop on a background thread and exposes the synchronous
Bus protocol. Publishing returns once JetStream has stored the message (durable) and carries
the event id as ``Nats-Msg-Id``, so a republished event inside the duplicate window is dropped by
the server; consumers still dedupe by id for anything older. A handler that raises is answered
with a delayed negative ack, so the message comes back later rather than being lost.

Consumers are durable *push* consumers (named ``<durable>-push``): the server sends messages
as they are stored, up to MAX_ACK_PENDING unacknowledged, and whatever has arrived while the
handler worked on the last batch is its next batch. Pull consumers (which accord used before)
ask for each batch and wait a round trip for it; in bench/choreo.py push delivery gave about
15% more handoffs per second for 15% less CPU. A pull consumer left by an earlier accord is
replaced by a push consumer that starts after the messages it acknowledged, and deleted once
the push consumer exists (see _subscribe).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlparse

import nats
from nats.errors import NoServersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError
from nats.js.errors import Error as JsError

from accord.buses.base import BatchHandler, Handler, Message
from accord.errors import AccordError

log = logging.getLogger("accord.bus.nats")
T = TypeVar("T")

CONNECT_ATTEMPTS = 30  # with backoff, about a minute before giving up at start-up
ACK_WAIT_S = 30.0
# Messages a consumer may have delivered and not yet acknowledged: as many as one fetch took
# when consumers pulled, so no message waits behind so much work that its ACK_WAIT_S runs out
# (a message is a bundle of events, see accord.choreo.wire)
MAX_ACK_PENDING = 200
# Tries, about two minutes with back-off, to bind a consumer another connection still holds
BIND_ATTEMPTS = 16
# A consumer that delivered nothing for this long is looked up on the server: one deleted there
# (by an operator, or with its stream) would otherwise leave its subscriber waiting silently
WATCH_S = 15.0
DUPLICATE_WINDOW_S = 120.0


class NatsUnavailable(AccordError):
    """The NATS server could not be reached."""


def stream_name(subject: str) -> str:
    """``accord.client-onboarding.>`` -> ``ACCORD_client-onboarding`` (one stream a process)."""
    tokens = subject.split(".")
    process = tokens[1] if len(tokens) > 1 else "all"
    return "ACCORD_" + re.sub(r"[^A-Za-z0-9_-]", "_", process)


class NatsBus:
    """A Bus on NATS JetStream (``nats://host:port``)."""

    def __init__(self, url: str, *, connect_attempts: int = CONNECT_ATTEMPTS) -> None:
        self.url = url
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="accord-nats")
        self._thread.daemon = True
        self._thread.start()
        self._streams: set[str] = set()
        # when each stream was created: a consumer's watch (see _watch) that finds another time
        # than it saw at the start knows the stream was made anew, its sequences started over
        self._created: dict[str, Any] = {}
        self._tasks: list[asyncio.Future[None]] = []
        self._pools: list[ThreadPoolExecutor] = []
        self._closing = False
        self.nc: Any = None
        self.js: Any = None
        try:
            self._run(self._connect(connect_attempts), timeout=None)
        except BaseException:
            self._stop_loop()
            raise

    # -- plumbing -------------------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _connect(self, attempts: int) -> None:
        # nats-py retries an initial connection as often as a lost one (for ever, as set
        # below), so probe the port first: a broker that is down at start-up is reported, not
        # waited for silently; one that drops later is reconnected to in the background.
        parsed = urlparse(self.url)
        host, port = parsed.hostname or "127.0.0.1", parsed.port or 4222
        delay = 0.2
        for attempt in range(1, attempts + 1):
            try:
                _reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), timeout=2
                )
                writer.close()
                self.nc = await nats.connect(
                    self.url,
                    connect_timeout=2,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    error_cb=self._error,
                    disconnected_cb=self._disconnected,
                    reconnected_cb=self._reconnected,
                )
                self.js = self.nc.jetstream()
                return
            except (NoServersError, OSError, TimeoutError, NatsTimeout) as exc:
                if attempt == attempts:
                    raise NatsUnavailable(
                        f"cannot reach NATS at {self.url} after {attempts} attempts: {exc}"
                    ) from None
                log.warning("NATS at %s unreachable (%s); retry in %.1fs", self.url, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _error(self, exc: Exception) -> None:
        log.warning("NATS: %s", exc)

    async def _disconnected(self) -> None:
        log.warning("NATS connection lost; reconnecting")

    async def _reconnected(self) -> None:
        log.warning("NATS reconnected")

    async def _ensure_stream(self, subject: str) -> str:
        name = stream_name(subject)
        if name in self._streams:
            return name
        wanted = StreamConfig(
            name=name,
            subjects=[f"accord.{name.removeprefix('ACCORD_')}.>"],
            duplicate_window=DUPLICATE_WINDOW_S,
        )
        try:
            info = await self.js.stream_info(name)
        except NotFoundError:
            try:
                info = await self.js.add_stream(wanted)
            except BadRequestError:  # another process created it meanwhile
                info = await self.js.stream_info(name)
        self._created[name] = info.created
        self._streams.add(name)
        return name

    # -- the Bus protocol -----------------------------------------------------------------------

    def publish(self, subject: str, data: bytes, msg_id: str) -> None:
        """Publish and wait for JetStream's acknowledgement (the message is stored)."""
        self.publish_many([(subject, data, msg_id)])

    def publish_many(self, items: list[tuple[str, bytes, str]]) -> None:
        """Publish several messages with their acknowledgements awaited together (pipelined)."""
        if items:
            self._run(self._publish_many(items))

    def publish_nowait(self, items: list[tuple[str, bytes, str]]) -> Future[None]:
        """Like publish_many, without waiting: the future is done once JetStream has stored
        every item (or has failed, with the error)."""
        return asyncio.run_coroutine_threadsafe(self._publish_many(items), self._loop)

    async def _publish_many(self, items: list[tuple[str, bytes, str]]) -> None:
        for subject, _, _ in items:
            await self._ensure_stream(subject)
        await asyncio.gather(
            *(
                self.js.publish(subject, data, headers={"Nats-Msg-Id": msg_id}, timeout=10)
                for subject, data, msg_id in items
            )
        )

    def subscribe(
        self,
        subject: str,
        durable: str,
        handler: Handler,
        batch_handler: BatchHandler | None = None,
    ) -> None:
        """A durable push consumer: a restarted subscriber resumes at its first unacked message.
        What arrived while the last batch was handled goes to ``batch_handler`` in one call
        when given."""
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"accord-{durable}")
        self._pools.append(pool)
        many = batch_handler or (lambda batch: _handle_all(handler, batch))
        self._run(self._subscribe(subject, durable, many, pool))

    async def _subscribe(
        self, subject: str, durable: str, handler: BatchHandler, pool: ThreadPoolExecutor
    ) -> None:
        stream = await self._ensure_stream(subject)
        pulled = re.sub(r"[^A-Za-z0-9_-]", "_", durable)  # the name accord's pull consumers had
        durable = f"{pulled}-push"
        start: int | None = None
        old = None
        if await self._consumer(stream, durable) is None:
            old = await self._consumer(stream, pulled)
            if old is not None and not old.config.deliver_subject:
                # a pull consumer of an earlier accord: go on after what it acknowledged
                # (anything acknowledged out of order comes again; receivers ignore it)
                start = (old.ack_floor.stream_seq if old.ack_floor else 0) + 1
        config = ConsumerConfig(
            durable_name=durable,
            deliver_subject=f"_accord_deliver.{stream}.{durable}",
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL if start is None else DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start,
            ack_wait=ACK_WAIT_S,
            max_deliver=-1,
            max_ack_pending=MAX_ACK_PENDING,
            filter_subject=subject,
        )
        arrived: list[Any] = []
        signal = asyncio.Event()

        async def on_message(m: Any) -> None:  # (the loop's thread, in stream order)
            arrived.append(m)
            signal.set()

        delay = 0.5
        for attempt in range(1, BIND_ATTEMPTS + 1):
            try:
                await self.js.subscribe(subject, durable=durable, stream=stream, config=config,
                                        manual_ack=True, cb=on_message)  # fmt: skip
                break
            except JsError as exc:
                if "already bound" not in str(exc):
                    raise
                # another connection still holds it: a second node for this team, or (after a
                # host died) the dead one's connection, until the server times it out
                if attempt == BIND_ATTEMPTS:
                    raise NatsUnavailable(
                        f"consumer {durable} is bound to another connection: is another node "
                        "of this team running?"
                    ) from None
                log.warning("consumer %s is bound to another connection; retry in %.1fs",
                            durable, delay)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        if start is not None:
            # only now that the push consumer exists: a crash before this point starts over
            await self.js.delete_consumer(stream, pulled)
            log.info("consumer %s replaces pull consumer %s from stream seq %d",
                     durable, pulled, start)  # fmt: skip
        seen = _Seen(created=self._created.get(stream))
        task = asyncio.ensure_future(self._consume(arrived, signal, handler, pool, seen))
        watch = asyncio.ensure_future(self._watch(subject, stream, config, seen))
        self._tasks.extend((task, watch))

    async def _consumer(self, stream: str, name: str) -> Any:
        """The consumer's info, or None if there is none by that name."""
        try:
            return await self.js.consumer_info(stream, name)
        except NotFoundError:
            return None

    async def _consume(
        self,
        arrived: list[Any],
        signal: asyncio.Event,
        handler: BatchHandler,
        pool: ThreadPoolExecutor,
        seen: _Seen,
    ) -> None:
        """Hand whatever has arrived to the handler thread as one batch, then ack (or nak)
        each message; what arrives meanwhile is the next batch. ``seen`` keeps where the
        consumer stands, for :meth:`_watch`."""
        loop = asyncio.get_running_loop()
        while not self._closing:
            await signal.wait()
            signal.clear()
            msgs = arrived[:]
            arrived.clear()
            if not msgs:
                continue
            batch = [
                Message(m.subject, m.data, str((m.headers or {}).get("Nats-Msg-Id", "")))
                for m in msgs
            ]
            # one hop to the handler thread per batch, not per message
            try:
                oks = await loop.run_in_executor(pool, handler, batch)
            except Exception:
                log.exception("batch handler failed; the batch will be redelivered")
                oks = [False] * len(batch)
            seen.batches += 1
            last_acked = None
            for m, ok in zip(msgs, oks, strict=True):
                with contextlib.suppress(Exception):
                    if ok:
                        await m.ack()
                        last_acked = m
                        if seen.refused:  # (rare) one refused earlier may have come again
                            seen.refused.discard(m.metadata.sequence.stream)
                    else:
                        await m.nak(delay=2.0)
                        seen.refused.add(m.metadata.sequence.stream)
            if last_acked is not None:
                with contextlib.suppress(Exception):  # (a message without JetStream metadata)
                    seen.acked = max(seen.acked, last_acked.metadata.sequence.stream)

    async def _watch(self, subject: str, stream: str, config: ConsumerConfig, seen: _Seen) -> None:
        """Every WATCH_S in which nothing was delivered, make sure the consumer still exists on
        the server; re-create one that is gone (with its stream, if that went too), to deliver
        from the first message not acknowledged here. The subscription listens on the same
        deliver subject, so delivery simply resumes."""
        checked = -1
        while not self._closing:
            await asyncio.sleep(WATCH_S)
            if seen.batches != checked:
                checked = seen.batches  # busy since the last look: nothing to check
                continue
            name = config.durable_name or ""
            try:
                if await self._consumer(stream, name) is not None:
                    continue
            except Exception as exc:  # unreachable: the connection's own callbacks say so
                log.debug("consumer %s not checked: %s", name, exc)
                continue
            try:
                self._streams.discard(stream)
                await self._ensure_stream(subject)  # made again if it went too
                renewed = self._created.get(stream) != seen.created
                start = 1 if renewed else min(seen.refused | {seen.acked + 1})
                if renewed:
                    seen.created, seen.acked, seen.refused = self._created.get(stream), 0, set()
                log.warning(
                    "consumer %s is gone from the server; re-creating it to deliver from "
                    "stream sequence %d%s", name, start,
                    " (its stream was made anew)" if renewed else "",
                )  # fmt: skip
                await self.js.add_consumer(
                    stream,
                    dataclasses.replace(
                        config,
                        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                        opt_start_seq=start,
                    ),
                )
            except Exception as exc:
                log.warning("consumer %s not re-created (%s); trying again in %.0fs",
                            name, exc, WATCH_S)  # fmt: skip

    def close(self) -> None:
        """Stop consuming, drain and disconnect."""
        if self._closing:
            return
        self._closing = True
        with contextlib.suppress(Exception):
            self._run(self._close(), timeout=10)
        for pool in self._pools:
            pool.shutdown(wait=False, cancel_futures=True)
        self._stop_loop()

    async def _close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.nc is not None:
            # close, not drain: whatever was handled is acked; anything else is redelivered
            await self.nc.flush(timeout=2)
            await self.nc.close()

    def _stop_loop(self) -> None:
        async def settle() -> None:
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        with contextlib.suppress(Exception):
            self._run(settle(), timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            self._loop.close()

    def delete_stream(self, process: str) -> None:
        """Remove a process's stream (tests use it to start clean)."""

        async def go() -> None:
            with contextlib.suppress(NotFoundError):
                await self.js.delete_stream(stream_name(f"accord.{process}.>"))
            self._streams.discard(stream_name(f"accord.{process}.>"))

        self._run(go())


@dataclasses.dataclass
class _Seen:
    """Where a consumer stands, as its subscriber saw it."""

    batches: int = 0  # batches delivered so far
    acked: int = 0  # the highest stream sequence acknowledged
    refused: set[int] = dataclasses.field(default_factory=set)  # nak'd, not acknowledged since
    created: Any = None  # when its stream was created (see NatsBus._created)


def _handle_all(handler: Handler, batch: list[Message]) -> list[bool]:
    oks = []
    for msg in batch:
        try:
            handler(msg)
            oks.append(True)
        except Exception:
            log.exception("handler failed on %s; redelivering later", msg.id)
            oks.append(False)
    return oks


def wait_for(url: str, seconds: float = 10.0) -> bool:
    """Whether a NATS server answers at ``url`` within ``seconds`` (for tests and health)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            bus = NatsBus(url, connect_attempts=1)
        except NatsUnavailable:
            time.sleep(0.2)
            continue
        bus.close()
        return True
    return False
