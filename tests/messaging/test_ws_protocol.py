"""The ``/ws/push`` protocol, op by op, against the consumer with Channels' WebsocketCommunicator.

The in-memory bus stands for the transport here (tests/messaging/test_ws_server.py runs a real server on Redis).
"""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta

import pytest
from channels.db import database_sync_to_async

from messaging import mqtt, push
from messaging.push.bus import MemoryBus
from tests.messaging.push_support import connect_consumer, make_user
from tests.support.waiting import callbacks_run

pytestmark = pytest.mark.usefixtures("memory_bus")


async def test_subscribe_is_acked_and_a_matching_message_arrives_once_with_its_subscription(staff):
    socket = await connect_consumer(staff)
    assert await socket.subscribe("/news/+/sport", 1) == {"op": "ack", "id": 1}
    await push.fanout("/news/europe/sport", b'{"score": "2-1"}', received_at=datetime(2026, 11, 28, 7, 30, tzinfo=UTC))
    assert await socket.receive() == {
        "op": "message",
        "topic": "/news/europe/sport",
        "payload": {"score": "2-1"},
        "retained": False,
        "ts": "2026-11-28T07:30:00.000Z",
        "subs": [1],
    }
    await push.fanout("/news/europe/weather", b"rain")
    assert await socket.nothing_more()
    await socket.close()


async def test_one_delivery_lists_every_matching_subscription(staff):
    socket = await connect_consumer(staff)
    for sub_id, topic_filter in ((1, "/news/+/sport"), (2, "/news/#"), (3, "/news/europe/sport"), (4, "/other/#")):
        assert (await socket.subscribe(topic_filter, sub_id))["op"] == "ack"
    await push.fanout("/news/europe/sport", b"goal")
    message = await socket.receive()
    assert message["subs"] == [1, 2, 3]
    assert await socket.nothing_more(), "one delivery per message per connection"
    await socket.close()


async def test_unsubscribe_stops_delivery_and_an_unknown_one_is_an_error(staff):
    socket = await connect_consumer(staff)
    await socket.subscribe("/a/#", 1)
    assert await socket.request({"op": "unsubscribe", "topic": "/a/#", "id": 2}) == {"op": "ack", "id": 2}
    await push.fanout("/a/b", b"x")
    assert await socket.nothing_more()
    reply = await socket.request({"op": "unsubscribe", "topic": "/a/#", "id": 3})
    assert reply["op"] == "error"
    assert reply["id"] == 3
    assert "no subscription" in reply["message"]
    await socket.close()


async def test_ping_is_answered_with_pong(household):
    socket = await connect_consumer(household)
    assert await socket.request({"op": "ping", "id": 4}) == {"op": "pong", "id": 4}
    assert await socket.request({"op": "ping", "id": "x"}) == {"op": "pong", "id": "x"}
    await socket.close()


@pytest.mark.parametrize(
    ("frame", "expected_id", "words"),
    [
        ("not json", None, "not a JSON frame"),
        ("[1, 2]", None, "JSON object"),
        ('{"op": "ping", "id": [1]}', None, "id must be"),
        ('{"op": "dance", "id": 7}', 7, "op must be one of"),
        ('{"op": "subscribe", "id": 8}', 8, "needs a topic"),
        ('{"op": "subscribe", "topic": "/a"}', None, "needs an id"),
        ('{"op": "publish", "topic": "/a", "retain": "yes", "id": 9}', 9, "retain must be"),
        ('{"op": "publish", "topic": "/a", "payload": "%%%", "encoding": "base64", "id": 10}', 10, "base64"),
    ],
)
async def test_every_bad_request_gets_an_error_with_its_id(staff, frame, expected_id, words):
    socket = await connect_consumer(staff)
    reply = await socket.request(frame)
    assert reply["op"] == "error"
    assert reply["id"] == expected_id
    assert words in reply["message"]
    # The connection stays usable.
    assert await socket.request({"op": "ping", "id": 1}) == {"op": "pong", "id": 1}
    await socket.close()


async def test_a_binary_frame_is_an_error(staff):
    socket = await connect_consumer(staff)
    await socket.communicator.send_to(bytes_data=b"\x00\x01")
    reply = await socket.receive()
    assert reply["op"] == "error"
    assert reply["id"] is None
    await socket.close()


@pytest.mark.parametrize("bad_filter", ["a/#/b", "sp+ort", "", "/news/sport#", "x" * 70_000])
async def test_invalid_filters_are_answered_with_an_error(staff, bad_filter):
    socket = await connect_consumer(staff)
    reply = await socket.subscribe(bad_filter, 5)
    assert reply["op"] == "error"
    assert reply["id"] == 5
    await socket.close()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"t": 21.5}', {"payload": {"t": 21.5}}),
        (b"21.5", {"payload": 21.5}),
        (b'"quoted"', {"payload": "quoted"}),
        (b"hello world", {"payload": "hello world"}),
        ("grüße".encode(), {"payload": "grüße"}),
        (b"NaN", {"payload": "NaN"}),
        (b"", {"payload": ""}),
        (b"\xff\xfe\x00\x01", {"payload": base64.b64encode(b"\xff\xfe\x00\x01").decode(), "encoding": "base64"}),
    ],
)
async def test_payload_mapping(staff, payload, expected):
    socket = await connect_consumer(staff)
    await socket.subscribe("/p", 1)
    await push.fanout("/p", payload)
    message = await socket.receive()
    assert {key: message[key] for key in expected} == expected
    assert ("encoding" in message) == ("encoding" in expected)
    await socket.close()


async def test_a_new_subscription_gets_the_last_retained_value_of_each_matching_topic_at_once(staff):
    early = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    await push.fanout("/home/kitchen/measure/1", b"20.0", retain=True, received_at=early)
    await push.fanout("/home/kitchen/measure/1", b"21.0", retain=True, received_at=early + timedelta(minutes=1))
    await push.fanout("/home/hall/measure/2", b"18.5", retain=True, received_at=early)
    await push.fanout("/home/hall/measure/3", b"not kept", retain=False)
    socket = await connect_consumer(staff)
    assert await socket.subscribe("/home/+/measure/#", 7) == {"op": "ack", "id": 7}
    frames = [await socket.receive(), await socket.receive()]
    assert {(f["topic"], f["payload"], f["retained"], tuple(f["subs"])) for f in frames} == {
        ("/home/kitchen/measure/1", 21.0, True, (7,)),
        ("/home/hall/measure/2", 18.5, True, (7,)),
    }
    assert await socket.nothing_more()
    await socket.close()


async def test_an_older_retained_value_does_not_replace_a_newer_one_and_an_empty_one_clears(staff):
    now = datetime.now(UTC)
    await push.fanout("/r", b"new", retain=True, occurred_at=now)
    await push.fanout("/r", b"old", retain=True, occurred_at=now - timedelta(seconds=5))
    socket = await connect_consumer(staff)
    await socket.subscribe("/r", 1)
    assert (await socket.receive())["payload"] == "new"
    await push.fanout("/r", b"", retain=True)
    assert (await socket.receive())["payload"] == "", "the clearing message is still delivered"
    other = await connect_consumer(staff)
    await other.subscribe("/r", 1)
    assert await other.nothing_more(), "nothing retained any more"
    await socket.close()
    await other.close()


async def test_dollar_topics_are_not_matched_by_leading_wildcards(grants_db):
    root = await database_sync_to_async(make_user)("root", is_superuser=True)
    socket = await connect_consumer(root)
    for sub_id, topic_filter in ((1, "#"), (2, "+/broker/uptime"), (3, "$SYS/#")):
        assert await socket.subscribe(topic_filter, sub_id) == {"op": "ack", "id": sub_id}
    await push.fanout("$SYS/broker/uptime", b"1")
    assert (await socket.receive())["subs"] == [3]
    assert await socket.nothing_more()
    await socket.close()


async def test_a_subscription_outside_the_grants_is_refused_with_an_error(household):
    socket = await connect_consumer(household)
    assert await socket.subscribe("/home/#", 1) == {"op": "ack", "id": 1}
    assert await socket.subscribe("/home/+/measure/#", 2) == {"op": "ack", "id": 2}
    assert await socket.subscribe("/events/heating/reading", 3) == {"op": "ack", "id": 3}
    for sub_id, topic_filter in ((4, "#"), (5, "/events/#"), (6, "/events/downloads/served"), (7, "+/kitchen/#")):
        reply = await socket.subscribe(topic_filter, sub_id)
        assert reply["op"] == "error"
        assert reply["id"] == sub_id
        assert "may not subscribe" in reply["message"]
    await push.fanout("/events/downloads/served", b"{}")
    assert await socket.nothing_more(), "a refused subscription receives nothing"
    await socket.close()


async def test_publishing_is_off_unless_granted(household):
    socket = await connect_consumer(household)
    reply = await socket.request({"op": "publish", "topic": "/home/kitchen/set", "payload": 1, "id": 1})
    assert reply["op"] == "error"
    assert "may not publish" in reply["message"]
    await socket.close()


async def test_a_granted_publish_reaches_subscribers_and_the_mqtt_handlers_without_a_broker(staff, settings):
    settings.MQTT_URL = None
    received: list[mqtt.MqttMessage] = []
    handler = mqtt.subscribe("/news/#", received.append)
    try:
        watcher = await connect_consumer(staff)
        await watcher.subscribe("/news/#", 1)
        publisher = await connect_consumer(staff)
        frame = {"op": "publish", "topic": "/news/europe/sport", "payload": {"score": 3}, "retain": True, "id": 9}
        assert await publisher.request(frame) == {"op": "ack", "id": 9}
        message = await watcher.receive()
        assert (message["topic"], message["payload"]) == ("/news/europe/sport", {"score": 3})
        assert [(m.topic, m.payload) for m in received] == [("/news/europe/sport", b'{"score":3}')]
        # Retained: a later subscriber sees it.
        late = await connect_consumer(staff)
        await late.subscribe("/news/europe/+", 2)
        assert (await late.receive())["retained"] is True
        # Text and binary payloads go out as text and bytes.
        await publisher.request({"op": "publish", "topic": "/news/t", "payload": "plain", "id": 10})
        await publisher.request(
            {
                "op": "publish",
                "topic": "/news/b",
                "payload": base64.b64encode(b"\xff").decode(),
                "encoding": "base64",
                "id": 11,
            }
        )
        assert [m.payload for m in received[1:]] == [b"plain", b"\xff"]
        assert (await watcher.receive())["payload"] == "plain"
        assert (await watcher.receive())["encoding"] == "base64"
        for socket in (watcher, publisher, late):
            await socket.close()
    finally:
        mqtt.handlers.unsubscribe("/news/#", handler)


async def test_an_action_topic_also_needs_the_send_commands_permission(grants_db, settings):
    settings.MQTT_URL = None
    settings.MQTT_HOME_PREFIX = "/home"
    plain = await database_sync_to_async(make_user)("carol", "staff")
    allowed = await database_sync_to_async(make_user)("dave", "staff", perms=("hub.send_commands",))
    frame = {"op": "publish", "topic": "/home/kitchen/action/1.12.0", "payload": 1, "id": 1}
    socket = await connect_consumer(plain)
    reply = await socket.request(frame)
    assert reply["op"] == "error"
    assert "hub.send_commands" in reply["message"]
    # Not an action topic: staff's '#' grant suffices.
    assert (await socket.request({**frame, "topic": "/home/kitchen/measure/1.12.0"}))["op"] == "ack"
    await socket.close()
    socket = await connect_consumer(allowed)
    assert await socket.request(frame) == {"op": "ack", "id": 1}
    await socket.close()


async def test_a_client_that_cannot_keep_up_is_closed_with_4408_while_a_fast_one_keeps_receiving(staff):
    slow = await connect_consumer(staff, queue_size=3, unread_frames=2)
    fast = await connect_consumer(staff)
    await slow.subscribe("/flood/#", 1)
    await fast.subscribe("/flood/#", 1)
    # The slow peer takes two frames and reads none: the third send waits, three more queue, the seventh overflows.
    await push.fanout_many([push.message(f"/flood/{n}", n) for n in range(10)])
    assert await slow.closed_with() == 4408
    assert [(await fast.receive())["payload"] for _ in range(10)] == list(range(10))
    await fast.close()


async def test_a_peer_that_reads_slowly_gets_every_frame_once_and_in_order(staff):
    # Frames go out on the turn they are offered while the peer keeps up; once the server makes a send wait, the
    # ones after it queue behind it and follow it in order as the peer reads.
    slow = await connect_consumer(staff, unread_frames=1)
    await slow.subscribe("/trickle/#", 1)
    await push.fanout_many([push.message(f"/trickle/{n % 3}", n) for n in range(50)])
    await push.fanout("/trickle/last", 50)
    assert [(await slow.receive())["payload"] for _ in range(51)] == list(range(51))
    assert await slow.nothing_more()
    await slow.close()


async def test_a_server_whose_send_is_not_a_coroutine_gets_every_frame_in_order(staff):
    socket = await connect_consumer(staff, send_as_future=True)
    await socket.subscribe("/future/#", 1)
    await push.fanout_many([push.message(f"/future/{n % 3}", n) for n in range(20)])
    assert [(await socket.receive())["payload"] for _ in range(20)] == list(range(20))
    assert await socket.request({"op": "ping", "id": 7}) == {"op": "pong", "id": 7}
    await socket.close()


async def test_a_silent_client_is_closed_with_4000_and_a_pinging_one_stays(staff):
    timers = {"heartbeat_interval": 0.05, "heartbeat_timeout": 0.3}
    silent = await connect_consumer(staff, **timers)
    chatty = await connect_consumer(staff, **timers)
    loop = asyncio.get_running_loop()
    started = loop.time()
    # The chatty one pings every 0.1 s (well inside the timeout) until the silent one is closed, 8 times at least.
    closed = asyncio.ensure_future(silent.closed_with(timeout=1.5))
    n = 0
    while n < 8 or not closed.done():
        assert await chatty.request({"op": "ping", "id": n}) == {"op": "pong", "id": n}
        n += 1
        await asyncio.wait([closed], timeout=0.1)
    assert closed.result() == 4000
    assert loop.time() - started < 1.5
    assert await chatty.request({"op": "ping", "id": 99}) == {"op": "pong", "id": 99}
    await chatty.close()


async def test_a_disconnected_socket_leaves_the_index(staff):
    socket = await connect_consumer(staff)
    await socket.subscribe("/gone/#", 1)
    hub = push.process_hub()
    assert hub.filters == 1
    await socket.close()
    assert hub.filters == 0


async def test_a_stored_value_older_than_a_live_message_that_overtook_it_is_not_sent(staff):
    class SlowStore(MemoryBus):
        """Reading the retained values takes until the test lets it go (a slow Redis)."""

        def __init__(self) -> None:
            super().__init__()
            self.reading = asyncio.Event()
            self.release = asyncio.Event()

        async def retained(self, topic_filter):
            found = await super().retained(topic_filter)
            self.reading.set()
            await self.release.wait()
            return found

    bus = SlowStore()
    push.use_bus(bus)
    await push.fanout("/r/1", b"stale", retain=True, occurred_at=datetime.now(UTC) - timedelta(seconds=1))
    await push.fanout("/r/2", b"still current", retain=True, occurred_at=datetime.now(UTC) - timedelta(seconds=1))
    socket = await connect_consumer(staff)
    await socket.send({"op": "subscribe", "topic": "/r/+", "id": 1})
    await asyncio.wait_for(bus.reading.wait(), 2)
    await push.fanout("/r/1", b"fresh", retain=True)
    await callbacks_run()  # the live message is delivered to the socket before the slow read returns
    bus.release.set()
    frames = [await socket.receive() for _ in range(3)]
    assert frames[0] == {"op": "ack", "id": 1}
    assert [(f["topic"], f["payload"], f["retained"]) for f in frames[1:]] == [
        ("/r/1", "fresh", False),
        ("/r/2", "still current", True),
    ]
    assert await socket.nothing_more()
    await socket.close()
