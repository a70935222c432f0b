"""Retained values a browser keeps through ``/ws/push`` are bounded: PUSH_MAX_RETAINED_BYTES for the whole store.

Found from outside against a running ``runhub``: a user with a publish grant published 400 retained 250 kB
messages on 400 topics, every one was acknowledged and kept, and the process grew by about 100 MB (136 → 233
MB); nothing stopped it at 10,000.
"""

from __future__ import annotations

import uuid

import pytest
import redis

from messaging import push
from messaging.push.bus import MemoryBus, RedisBus
from messaging.push.frames import encode_message
from tests.messaging.push_support import connect_consumer, ensure_default_grants, make_user
from tests.support.memory import MB, PeakRss


@pytest.fixture
def publisher(transactional_db):
    ensure_default_grants()
    return make_user("bob", "staff", is_staff=True)  # staff may publish anywhere ('#' grant)


def _delete_keys(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


def retained_publish(topic: str, payload, request_id) -> dict:
    return {"op": "publish", "topic": topic, "payload": payload, "retain": True, "id": request_id}


async def test_retained_browser_publishes_stop_at_push_max_retained_bytes(memory_bus, publisher, settings):
    assert settings.PUSH_MAX_RETAINED_BYTES == 64 * MB, "the documented default"
    settings.PUSH_MAX_RETAINED_BYTES = 8 * MB
    socket = await connect_consumer(publisher)
    big = "x" * 250_000
    with PeakRss() as rss:
        replies = [await socket.request(retained_publish(f"/home/flood/{n}", big, n), timeout=10) for n in range(200)]
    acked = [reply for reply in replies if reply["op"] == "ack"]
    refused = [reply for reply in replies if reply["op"] == "error"]
    # 8 MiB holds 33 such values (250,000 bytes of payload plus topic and header each); 50 MB were asked for.
    assert len(acked) == 33, replies[30:36]
    assert all("retained values" in reply["message"] and f"{8 * MB}" in reply["message"] for reply in refused)
    assert (await memory_bus.retained_size("/nothing"))[0] <= 8 * MB
    assert rss.growth < 24 * MB, rss.growth  # accepted, the 200 held 50 MB
    # Replacing a value it already holds and clearing one give the room back; live publishes are never refused.
    assert (await socket.request(retained_publish("/home/flood/40", big, "full")))["op"] == "error"
    assert (await socket.request(retained_publish("/home/flood/0", "small", "smaller")))["op"] == "ack"
    assert (await socket.request(retained_publish("/home/flood/40", big, "room")))["op"] == "ack"
    assert (await socket.request(retained_publish("/home/flood/41", big, "full")))["op"] == "error"
    assert (await socket.request(retained_publish("/home/flood/1", "", "clear")))["op"] == "ack"
    assert (await socket.request(retained_publish("/home/flood/41", big, "room")))["op"] == "ack"
    live = {"op": "publish", "topic": "/home/flood/live", "payload": big, "retain": False, "id": "live"}
    assert (await socket.request(live))["op"] == "ack"
    await socket.close()


@pytest.mark.parametrize("make_bus", ["memory", "redis"])
async def test_each_bus_counts_the_bytes_its_retained_values_hold(make_bus, request):
    if make_bus == "memory":
        bus = MemoryBus()
    else:
        url = request.getfixturevalue("redis_url")
        prefix = f"test:push:{uuid.uuid4().hex[:8]}:"
        request.addfinalizer(lambda: _delete_keys(url, prefix))
        bus = RedisBus(url, prefix=prefix)
        # Values stored before the count existed (an upgraded deployment) are counted once, at the first look.
        await bus.publish([encode_message("/old", "o" * 1000, retain=True)])
        redis.Redis.from_url(url).delete(bus.bytes_key)
    old = 0 if make_bus == "memory" else len(encode_message("/old", "o" * 1000, retain=True).to_wire())
    first = encode_message("/a", "a" * 1000, retain=True)
    size = len(first.to_wire().encode())
    assert await bus.retained_size("/a") == (old, 0)
    await bus.publish([first, encode_message("/live", "l" * 5000)])
    assert await bus.retained_size("/a") == (old + size, size)
    smaller = encode_message("/a", "é" * 10, retain=True)
    await bus.publish([smaller])
    assert await bus.retained_size("/a") == (old + len(smaller.to_wire().encode()), len(smaller.to_wire().encode()))
    await bus.publish([encode_message("/a", b"", retain=True)])  # an empty retained payload clears
    assert await bus.retained_size("/a") == (old, 0)
    if make_bus == "redis":
        bus.close()


@pytest.mark.parametrize(("topics", "size"), [(1_500, 100), (1_200, 5_000)])
async def test_a_subscriber_receives_every_retained_value_even_beyond_what_a_socket_may_queue(
    memory_bus, publisher, topics, size
):
    # More retained values than a socket may have waiting (1,000 frames, or PUSH_MAX_QUEUED_BYTES: 4 MiB; the
    # second case holds 6 MB): the replay waits for the socket to take them instead of closing it with 4408, which
    # shut the live page (/live/?topic=/home/%23) at once and again at every reconnect.
    await push.fanout_many(
        [push.message(f"/home/room{n}/measure/1.{n}.0", "v" * size, retain=True) for n in range(topics)]
    )
    socket = await connect_consumer(publisher)
    assert await socket.subscribe("/home/#", "all") == {"op": "ack", "id": "all"}
    seen = set()
    for _ in range(topics):
        frame = await socket.receive(timeout=5)
        assert frame["op"] == "message", frame
        assert frame["retained"] is True
        seen.add(frame["topic"])
    assert len(seen) == topics
    assert await socket.request({"op": "ping", "id": "still"}) == {"op": "pong", "id": "still"}
    await socket.close()
