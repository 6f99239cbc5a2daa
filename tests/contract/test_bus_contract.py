"""One suite, every bus: what team nodes and the board rely on, checked on each backend."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from accord.buses.base import Bus, Message, matches, subject_for
from accord.buses.memory import MemoryBus

BACKENDS = ["memory", "nats"]


@pytest.fixture(params=BACKENDS)
def bus(request: pytest.FixtureRequest) -> Iterator[Bus]:
    if request.param == "memory":
        b: Bus = MemoryBus()
    else:
        url = request.getfixturevalue("nats_url")
        from accord.buses.nats import NatsBus

        b = NatsBus(url)
    yield b
    b.close()


@pytest.fixture
def process() -> str:
    """A fresh process id per test, so streams and consumers never collide."""
    return f"contract-{uuid.uuid4().hex[:8]}"


def _wait(cond: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def _cleanup(bus: Bus, process: str) -> None:
    delete = getattr(bus, "delete_stream", None)
    if delete is not None:
        delete(process)


def test_subject_matching() -> None:
    assert matches("accord.p.>", "accord.p.to.sales.handoff")
    assert matches("accord.p.to.sales.>", "accord.p.to.sales.handoff")
    assert not matches("accord.p.to.sales.>", "accord.p.to.it.handoff")
    assert matches("accord.*.log.x", "accord.p.log.x")
    assert not matches("accord.p.>", "accord.p")
    assert subject_for("p@2", "handoff", "sales") == "accord.p.to.sales.handoff"
    assert subject_for("p", "task.ready") == "accord.p.log.task.ready"


def test_publish_reaches_every_matching_subscriber_in_order(bus: Bus, process: str) -> None:
    got: dict[str, list[str]] = {"all": [], "sales": []}
    lock = threading.Lock()

    def hear(key: str) -> Callable[[Message], None]:
        def handler(m: Message) -> None:
            with lock:
                got[key].append(m.id)

        return handler

    bus.subscribe(f"accord.{process}.>", "observer", hear("all"))
    bus.subscribe(f"accord.{process}.to.sales.>", "sales", hear("sales"))
    ids = [f"e{i}" for i in range(20)]
    bus.publish_many(
        [(subject_for(process, "handoff", "sales" if i % 2 else "it"), b"x", e)
         for i, e in enumerate(ids)]
    )  # fmt: skip
    assert _wait(lambda: len(got["all"]) == 20 and len(got["sales"]) == 10)
    assert got["all"] == ids
    assert got["sales"] == ids[1::2]
    _cleanup(bus, process)


def test_a_failing_handler_gets_the_message_again(bus: Bus, process: str) -> None:
    if isinstance(bus, MemoryBus):
        pytest.skip("the in-process bus has no redelivery: its handlers run in the publisher")
    seen: list[str] = []

    def flaky(m: Message) -> None:
        seen.append(m.id)
        if len(seen) == 1:
            raise RuntimeError("first delivery fails")

    bus.subscribe(f"accord.{process}.>", "flaky", flaky)
    bus.publish(subject_for(process, "handoff", "it"), b"x", "only")
    assert _wait(lambda: len(seen) >= 2, 15)
    assert set(seen) == {"only"}
    _cleanup(bus, process)


def test_a_durable_consumer_resumes_where_it_stopped(process: str, nats_url: str) -> None:
    from accord.buses.nats import NatsBus

    first = NatsBus(nats_url)
    got: list[str] = []
    first.subscribe(f"accord.{process}.>", "resumer", lambda m: got.append(m.id))
    first.publish_many([(subject_for(process, "x"), b"x", f"a{i}") for i in range(5)])
    assert _wait(lambda: len(got) == 5)
    first.close()
    publisher = NatsBus(nats_url)
    publisher.publish_many([(subject_for(process, "x"), b"x", f"b{i}") for i in range(5)])
    second = NatsBus(nats_url)
    later: list[str] = []
    second.subscribe(f"accord.{process}.>", "resumer", lambda m: later.append(m.id))
    assert _wait(lambda: len(later) == 5)
    time.sleep(0.3)
    assert later == [f"b{i}" for i in range(5)]  # nothing acknowledged is delivered again
    second.close()
    publisher.delete_stream(process)
    publisher.close()


def test_a_pull_consumer_left_by_an_earlier_accord_goes_on_after_its_acks(
    process: str, nats_url: str
) -> None:
    """Durable consumers were pull consumers before; a node started on the new code takes over
    where the old one stood, as a push consumer, without replaying what was acknowledged."""
    import asyncio

    from nats.js.api import AckPolicy, ConsumerConfig

    from accord.buses.nats import NatsBus, stream_name

    bus = NatsBus(nats_url)
    subject = f"accord.{process}.>"
    bus.publish_many([(subject_for(process, "x"), b"x", f"m{i}") for i in range(5)])

    async def old_node_acks_two() -> None:
        config = ConsumerConfig(durable_name="upgrader", ack_policy=AckPolicy.EXPLICIT,
                                filter_subject=subject)  # fmt: skip
        psub = await bus.js.pull_subscribe(
            subject, durable="upgrader", stream=stream_name(subject), config=config
        )
        for m in await psub.fetch(batch=2, timeout=5):
            await m.ack()
        await bus.nc.flush()

    asyncio.run_coroutine_threadsafe(old_node_acks_two(), bus._loop).result(10)
    got: list[str] = []
    bus.subscribe(subject, "upgrader", lambda m: got.append(m.id))
    assert _wait(lambda: len(got) == 3)
    time.sleep(0.3)
    assert got == ["m2", "m3", "m4"]

    async def consumers() -> list[str]:
        return sorted([c.name async for c in _names(bus.js, stream_name(subject))])

    # the pull consumer is gone once its push successor exists
    names = asyncio.run_coroutine_threadsafe(consumers(), bus._loop).result(10)
    assert names == ["upgrader-push"]
    bus.delete_stream(process)
    bus.close()


async def _names(js: Any, stream: str) -> Any:
    for info in await js.consumers_info(stream):
        yield info


def test_a_consumer_held_by_another_connection_is_waited_for_then_refused(
    process: str, nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One node per team: a second subscriber to the same durable waits (the first may be a
    dead host's connection the server has not timed out yet), and is refused if it stays."""
    from accord.buses import nats as nats_bus

    subject = f"accord.{process}.>"
    first = nats_bus.NatsBus(nats_url)
    first.subscribe(subject, "single", lambda m: None)
    monkeypatch.setattr(nats_bus, "BIND_ATTEMPTS", 2)
    second = nats_bus.NatsBus(nats_url)
    with pytest.raises(nats_bus.NatsUnavailable, match="another node of this team"):
        second.subscribe(subject, "single", lambda m: None)
    # once the first lets go, the next try binds
    monkeypatch.setattr(nats_bus, "BIND_ATTEMPTS", 8)
    threading.Timer(0.3, first.close).start()
    got: list[str] = []
    second.subscribe(subject, "single", lambda m: got.append(m.id))
    second.publish(subject_for(process, "x"), b"x", "after")
    assert _wait(lambda: got == ["after"])
    second.delete_stream(process)
    second.close()


def test_a_republished_id_is_dropped_by_the_broker(process: str, nats_url: str) -> None:
    from accord.buses.nats import NatsBus

    bus = NatsBus(nats_url)
    got: list[str] = []
    bus.subscribe(f"accord.{process}.>", "dedupe", lambda m: got.append(m.id))
    bus.publish(subject_for(process, "x"), b"x", "same")
    bus.publish(subject_for(process, "x"), b"x", "same")  # a relay retry after a crash
    bus.publish(subject_for(process, "x"), b"x", "other")
    assert _wait(lambda: len(got) == 2)
    time.sleep(0.3)
    assert got == ["same", "other"]
    bus.delete_stream(process)
    bus.close()


def test_an_unreachable_broker_is_a_clear_error_after_retries() -> None:
    from accord.buses.nats import NatsBus, NatsUnavailable

    start = time.monotonic()
    with pytest.raises(NatsUnavailable, match="cannot reach NATS"):
        NatsBus("nats://127.0.0.1:1", connect_attempts=2)
    assert time.monotonic() - start < 30


def test_open_bus_chooses_by_url() -> None:
    from accord.buses import BusError, open_bus

    b = open_bus("memory://")
    assert isinstance(b, MemoryBus)
    b.close()
    with pytest.raises(BusError, match="unknown bus URL"):
        open_bus("kafka://x")


def _watched(
    process: str, nats_url: str, monkeypatch: pytest.MonkeyPatch, durable: str
) -> tuple[Any, list[str]]:
    """A NATS bus (its consumers watched every 0.3 s) whose subscriber got a0, a1 and a2."""
    from accord.buses import nats as nats_bus

    monkeypatch.setattr(nats_bus, "WATCH_S", 0.3)
    bus = nats_bus.NatsBus(nats_url)
    got: list[str] = []
    bus.subscribe(f"accord.{process}.>", durable, lambda m: got.append(m.id))
    bus.publish_many([(subject_for(process, "x"), b"x", f"a{i}") for i in range(3)])
    assert _wait(lambda: len(got) == 3)
    return bus, got


def test_a_consumer_deleted_on_the_server_is_re_created_after_what_was_acked(
    process: str, nats_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A push subscription whose consumer is deleted on the server hears nothing, and nothing
    says so: the bus looks the consumer up once it has been idle for WATCH_S, re-creates it,
    and delivery goes on from the first message it had not acknowledged."""
    import asyncio

    from accord.buses.nats import stream_name

    bus, got = _watched(process, nats_url, monkeypatch, "watched")
    time.sleep(0.2)  # the acknowledgements reach the server

    async def delete() -> None:
        await bus.js.delete_consumer(stream_name(f"accord.{process}.>"), "watched-push")

    asyncio.run_coroutine_threadsafe(delete(), bus._loop).result(10)
    bus.publish_many([(subject_for(process, "x"), b"x", f"b{i}") for i in range(3)])
    assert _wait(lambda: len(got) == 6)
    time.sleep(0.5)
    assert got == ["a0", "a1", "a2", "b0", "b1", "b2"]  # nothing acknowledged comes again
    assert "consumer watched-push is gone from the server" in caplog.text
    bus.delete_stream(process)
    bus.close()


def test_a_stream_deleted_and_made_anew_is_delivered_from_its_start(
    process: str, nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleting the stream deletes its consumers too, and a stream made again numbers its
    messages from 1: the re-created consumer must start there, not after the old numbers."""
    from accord.buses.nats import NatsBus

    bus, got = _watched(process, nats_url, monkeypatch, "renewed")
    publisher = NatsBus(nats_url)
    publisher.delete_stream(process)
    publisher.publish_many([(subject_for(process, "x"), b"x", f"b{i}") for i in range(2)])
    assert _wait(lambda: len(got) == 5)
    time.sleep(0.5)
    assert got == ["a0", "a1", "a2", "b0", "b1"]
    publisher.delete_stream(process)
    publisher.close()
    bus.close()
