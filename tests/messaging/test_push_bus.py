"""The fan-out's transport and store: in memory, and over the real Redis (several "web processes" = several buses).

Also the ``events.notify`` hand-off (:class:`PushNotifier`): each event to ``/events/<type>`` and its topics.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis

from messaging import notify, push
from messaging.envelope import Event
from messaging.push.bus import MemoryBus, RedisBus
from messaging.push.hub import PushHub
from messaging.push.notifier import PushNotifier
from tests.support.waiting import async_wait_until


class FakeSocket:
    """A PushConnection that keeps what it was offered."""

    def __init__(self) -> None:
        self.subscriptions: dict = {}
        self.frames: list[dict] = []
        self.arrived = asyncio.Event()

    def offer(self, frame: str, message=None) -> None:
        self.frames.append(json.loads(frame))
        self.arrived.set()

    async def next(self, timeout: float = 2.0) -> dict:
        async with asyncio.timeout(timeout):
            while not self.frames:
                self.arrived.clear()
                await self.arrived.wait()
        return self.frames.pop(0)


@pytest.fixture
def redis_prefix(redis_url):
    prefix = f"test:push:{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


def redis_bus(url: str, prefix: str, **options) -> RedisBus:
    return RedisBus(url, prefix=prefix, **options)


def event(type_: str, data, *, topics=(), retain=False, occurred_at=None) -> Event:
    return Event(
        id=uuid.uuid4(),
        type=type_,
        occurred_at=occurred_at or datetime.now(UTC).replace(microsecond=0),
        source="test",
        data=data,
        topics=tuple(topics),
        retain=retain,
    )


# --- one bus for every web process ----------------------------------------------------------------------------


@pytest.mark.services
async def test_every_web_process_subscribes_once_and_delivers_to_all_its_sockets(redis_url, redis_prefix):
    processes = [redis_bus(redis_url, redis_prefix) for _ in range(2)]
    loop = asyncio.get_running_loop()
    hubs = [PushHub(bus, loop=loop) for bus in processes]
    sockets = []
    for hub in hubs:
        hub.start()
        for n in range(100):
            socket = FakeSocket()
            hub.subscribe(socket, "/news/+/sport" if n % 2 else "/news/#", n)
            sockets.append(socket)
    await async_wait_until(lambda: all(bus.connected.is_set() for bus in processes))
    client = redis.Redis.from_url(redis_url)
    # Two processes, 200 sockets: two subscribers on the channel, not 200 (no Redis work per socket).
    assert client.pubsub_numsub(processes[0].channel) == [(processes[0].channel.encode(), 2)]
    client.close()
    await processes[0].publish([push.message("/news/europe/sport", b"goal")])
    for socket in sockets:
        frame = await socket.next()
        assert frame["topic"] == "/news/europe/sport"
        assert frame["payload"] == "goal"
    for hub in hubs:
        await hub.close()


@pytest.mark.services
async def test_retained_values_are_shared_between_processes_newest_wins_and_empty_clears(redis_url, redis_prefix):
    writer, reader = redis_bus(redis_url, redis_prefix), redis_bus(redis_url, redis_prefix)
    t0 = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    await writer.publish([push.message("/home/a/measure/1", b"20", retain=True, occurred_at=t0)])
    writer.publish_sync([push.message("/home/a/measure/1", b"19", retain=True, occurred_at=t0 - timedelta(1))])
    writer.publish_sync([push.message("/home/b/measure/1", b"\xff", retain=True, occurred_at=t0)])
    await writer.publish([push.message("/home/c/measure/1", b"live only", occurred_at=t0)])
    found = {m.topic: (m.payload, m.base64) for m in await reader.retained("/home/+/measure/#")}
    assert found == {"/home/a/measure/1": ("20", False), "/home/b/measure/1": ('"/w=="', True)}
    assert [m.payload for m in await reader.retained("/home/a/measure/1")] == ["20"]
    # Same time: the later call wins (events of one transaction keep their outbox order).
    await writer.publish([push.message("/home/a/measure/1", b"21", retain=True, occurred_at=t0)])
    assert [m.payload for m in await reader.retained("/home/a/measure/1")] == ["21"]
    await writer.publish([push.message("/home/a/measure/1", b"", retain=True, occurred_at=t0 + timedelta(1))])
    assert await reader.retained("/home/a/measure/1") == []


async def test_the_memory_bus_keeps_the_same_rules():
    bus = MemoryBus()
    t0 = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    await bus.publish([push.message("/x", b"new", retain=True, occurred_at=t0)])
    await bus.publish([push.message("/x", b"old", retain=True, occurred_at=t0 - timedelta(1))])
    assert [m.payload for m in await bus.retained("#")] == ['"new"']
    await bus.publish([push.message("/x", b"", retain=True, occurred_at=t0 + timedelta(1))])
    assert await bus.retained("#") == []


async def test_a_fanout_from_another_thread_reaches_the_sockets_of_this_loop():
    bus = MemoryBus()
    push.use_bus(bus)
    try:
        hub = push.process_hub()
        socket = FakeSocket()
        hub.subscribe(socket, "/t/#", 1)
        await asyncio.to_thread(push.fanout_sync, "/t/1", b"from a thread")
        assert (await socket.next())["payload"] == "from a thread"
    finally:
        push.use_bus(None)


@pytest.mark.services
@pytest.mark.slow
async def test_the_subscription_comes_back_after_the_redis_connection_is_cut(redis_url, redis_prefix, tcp_proxy):
    proxy = tcp_proxy(redis_url)
    behind_proxy = redis_bus(proxy.url_for(redis_url), redis_prefix, retry_initial=0.05, health_check_interval=0.5)
    direct = redis_bus(redis_url, redis_prefix)
    hub = PushHub(behind_proxy, loop=asyncio.get_running_loop())
    hub.start()
    socket = FakeSocket()
    hub.subscribe(socket, "/cut/#", 1)
    await async_wait_until(behind_proxy.connected.is_set)
    await direct.publish([push.message("/cut/1", b"before")])
    assert (await socket.next())["payload"] == "before"

    proxy.cut()
    await async_wait_until(lambda: not behind_proxy.connected.is_set())
    await direct.publish([push.message("/cut/2", b"while cut")])  # pub/sub keeps nothing: this one is lost
    proxy.restore()
    await async_wait_until(behind_proxy.connected.is_set, timeout=10)
    await direct.publish([push.message("/cut/3", b"after")])
    assert (await socket.next())["payload"] == "after"
    await hub.close()


# --- the events.notify hand-off -------------------------------------------------------------------------------


def test_the_messaging_app_installs_the_push_notifier():
    assert isinstance(notify.build_notifier(), PushNotifier)


async def test_each_event_goes_to_its_events_topic_as_envelope_and_to_its_topics_as_data():
    bus = MemoryBus()
    hub = PushHub(bus, loop=asyncio.get_running_loop())
    hub.start()
    socket = FakeSocket()
    hub.subscribe(socket, "/events/#", "events")
    hub.subscribe(socket, "/home/+/measure/#", "measures")
    reading = event("heating.reading", {"t": 21.5}, topics=["/home/kitchen/measure/3.12.0"])
    await PushNotifier(bus=bus).notify([reading])
    envelope_frame, data_frame = await socket.next(), await socket.next()
    assert envelope_frame["topic"] == "/events/heating/reading"
    assert envelope_frame["payload"] == json.loads(reading.body())
    assert envelope_frame["subs"] == ["events"]
    assert (data_frame["topic"], data_frame["payload"], data_frame["subs"]) == (
        "/home/kitchen/measure/3.12.0",
        {"t": 21.5},
        ["measures"],
    )
    await hub.close()


@pytest.mark.parametrize("transport", ["memory", pytest.param("redis", marks=pytest.mark.services)])
async def test_a_retained_event_is_the_last_value_greatest_occurred_at_then_outbox_order(transport, request):
    if transport == "redis":
        bus = redis_bus(request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix"))
    else:
        bus = MemoryBus()
    t0 = datetime(2026, 11, 28, 7, 30, tzinfo=UTC)
    topic = "/home/kitchen/measure/3.12.0"
    notifier = PushNotifier(bus=bus)
    await notifier.notify(
        [
            event("heating.reading", {"t": 20}, topics=[topic], retain=True, occurred_at=t0),
            event("heating.reading", {"t": 19}, topics=[topic], retain=True, occurred_at=t0 - timedelta(minutes=1)),
        ]
    )
    # One batch later, the same millisecond: outbox order decides.
    await notifier.notify(
        [
            event("heating.reading", {"t": 22}, topics=[topic], retain=True, occurred_at=t0 + timedelta(minutes=1)),
            event("heating.reading", {"t": 23}, topics=[topic], retain=True, occurred_at=t0 + timedelta(minutes=1)),
        ]
    )
    await notifier.notify(
        [event("heating.reading", {"t": 99}, topics=[topic], retain=False, occurred_at=t0 + timedelta(1))]
    )
    [value] = await bus.retained(topic)
    assert json.loads(value.payload) == {"t": 23}
    [envelope] = await bus.retained("/events/heating/reading")
    assert json.loads(envelope.payload)["data"] == {"t": 23}


# --- /healthz -------------------------------------------------------------------------------------------------


@pytest.mark.services
async def test_the_push_health_check_reports_the_redis_subscription(redis_url, redis_prefix, tcp_proxy):
    from hub import health

    assert health._checks["push"].critical is False
    proxy = tcp_proxy(redis_url)
    bus = redis_bus(proxy.url_for(redis_url), redis_prefix, retry_initial=0.05, health_check_interval=0.5)
    push.use_bus(bus)
    try:
        assert (await asyncio.to_thread(push.health_check)).detail == "Redis answers; no WebSocket served yet"
        push.process_hub()
        await async_wait_until(bus.connected.is_set)
        assert await asyncio.to_thread(push.health_check) == health.CheckResult(True, "Redis answers; subscribed")
        proxy.cut()
        await async_wait_until(lambda: not bus.connected.is_set())
        result = await asyncio.to_thread(push.health_check)
        assert not result.ok
        proxy.restore()
        await async_wait_until(bus.connected.is_set, timeout=10)
        assert (await asyncio.to_thread(push.health_check)).ok
    finally:
        push.use_bus(None)


def test_without_redis_the_push_health_check_is_ok_in_process():
    push.use_bus(MemoryBus())
    try:
        assert push.health_check().ok
    finally:
        push.use_bus(None)
