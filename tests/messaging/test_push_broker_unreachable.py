"""A browser's publish while the MQTT bridge (or its broker) is away: refused at once, never queued.

``/ws/push`` → ``messaging.bridge.publish_request`` → the real Redis channel layer → a real bridge against the
real Mosquitto. The browser gets ``broker unreachable: not published`` when the bridge's heartbeat is stale, when
the bridge does not take the request within 2 s, or when the bridge has lost its broker; a request nobody took in
time is dropped when a bridge finally reads it, so it never switches anything later.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from hub.models import Heartbeat
from hub.services import heartbeat_record
from messaging import bridge as bridge_module
from messaging.bridge import BROKER_UNREACHABLE, PUBLISH_CHANNEL, TAKE_TIMEOUT, BridgeTimings, MqttBridge
from messaging.mqtt import HandlerRegistry, MqttMessage, MqttTimings
from tests.messaging.push_support import connect_consumer, make_user
from tests.messaging.test_mqtt_broker import MOSQUITTO_SUB, WAIT, Inbox, host_port
from tests.support.mosquitto_sub import messages, start_subscriber
from tests.support.waiting import wait_for

pytestmark = pytest.mark.services

FAST_MQTT = MqttTimings(keepalive=5, retry_initial=0.05, retry_max=0.2)


@pytest.fixture
def house(settings, mqtt_url, memory_bus):
    """This test's own topic tree on the shared broker, with MQTT_URL set as in production."""
    settings.MQTT_URL = mqtt_url
    return f"/test-unreachable/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def publisher(grants_db):
    return make_user("pia", "staff", perms=("hub.send_commands",))


@pytest.fixture
def handled():
    return Inbox()


@pytest.fixture
def start_bridge(mqtt_url, house, handled, redis_layer):
    """``start_bridge(url=None)`` → a bridge taking browser publishes from the Redis layer; stopped after the test."""
    bridges: list[MqttBridge] = []
    registry = HandlerRegistry()

    async def queue_command(message: MqttMessage) -> None:
        handled.put((message.topic, message.payload))

    registry.subscribe(f"{house}/#", queue_command)

    def start(url: str | None = None, *, heartbeat_interval: float = 3600) -> MqttBridge:
        bridge = MqttBridge(
            mqtt_url=url or mqtt_url,
            filters=[f"{house}/#"],
            fanout=_no_browsers,
            registry=registry,
            consume_events=False,
            receive_browser_publishes=True,
            channel_layer=redis_layer(),
            timings=BridgeTimings(heartbeat_interval=heartbeat_interval, mqtt=FAST_MQTT),
        )
        bridges.append(bridge)
        bridge.start()
        assert bridge.wait_until_ready(WAIT + 5), "the bridge did not get ready"
        wait_for(lambda: Heartbeat.objects.filter(name=bridge_module.BRIDGE_NAME).exists(), timeout=WAIT)
        return bridge

    yield start
    for bridge in bridges:
        bridge.stop(timeout=WAIT)


async def _no_browsers(topic, payload, *, retain, received_at) -> None:
    pass


def publish_from_a_socket(user, topic: str, payload, *, frame_id: int = 1) -> tuple[dict, float]:
    """The hub's answer to one publish from a ``/ws/push`` socket, and how long it took."""

    async def run() -> tuple[dict, float]:
        socket = await connect_consumer(user)
        started = time.monotonic()
        reply = await socket.request(
            {"op": "publish", "topic": topic, "payload": payload, "id": frame_id}, timeout=TAKE_TIMEOUT + 5
        )
        elapsed = time.monotonic() - started
        await socket.close()
        return reply, elapsed

    return asyncio.run(run())


def broker_subscriber(url: str, topic_filter: str):
    """A foreign subscriber printing 'topic payload' for the first message; subscribed when this returns."""
    command = [MOSQUITTO_SUB, *host_port(url), "-t", topic_filter, "-q", "1", "-C", "1", "-W", str(int(WAIT))]
    return start_subscriber([*command, "-F", "%t %p"])


def nothing_on_the_layer(layer) -> bool:
    async def run() -> bool:
        try:
            await asyncio.wait_for(layer.receive(PUBLISH_CHANNEL), 0.5)
        except TimeoutError:
            return True
        return False

    return asyncio.run(run())


@pytest.mark.parametrize("heartbeat", ["never", "stale"])
def test_without_a_fresh_bridge_heartbeat_a_publish_is_refused_at_once_and_nothing_is_sent(
    heartbeat, house, publisher, redis_layer
):
    if heartbeat == "stale":
        # A bridge that beat every 15 s, last 31 s ago: more than twice its interval, so it counts as down.
        Heartbeat.objects.create(
            name=bridge_module.BRIDGE_NAME, beat_at=timezone.now() - timedelta(seconds=31), interval_seconds=15
        )
    reply, elapsed = publish_from_a_socket(publisher, f"{house}/living/action/1.12.0", 1, frame_id=7)
    assert reply == {"op": "error", "id": 7, "message": BROKER_UNREACHABLE}
    assert elapsed < 1.0, "no 2 s wait when the heartbeat already tells"
    assert nothing_on_the_layer(redis_layer()), "nothing was left for a bridge to find later"


def test_a_request_the_bridge_does_not_take_within_2_s_is_refused_and_a_bridge_back_later_drops_it(
    mqtt_url, house, publisher, start_bridge, handled
):
    # The bridge died a moment ago: its heartbeat is still fresh, nobody reads the layer.
    heartbeat_record(name=bridge_module.BRIDGE_NAME, interval_seconds=15)
    topic = f"{house}/living/action/1.12.0"
    reply, elapsed = publish_from_a_socket(publisher, topic, "on", frame_id=3)
    assert reply == {"op": "error", "id": 3, "message": BROKER_UNREACHABLE}
    assert TAKE_TIMEOUT <= elapsed < TAKE_TIMEOUT + 1.5

    broker = broker_subscriber(mqtt_url, f"{house}/#")
    bridge = start_bridge()  # back: the refused request is still on the layer
    wait_for(lambda: bridge.stats["browser_expired"] == 1, timeout=WAIT, what="the late request to be dropped")
    reply, _ = publish_from_a_socket(publisher, f"{house}/living/action/later", "off", frame_id=4)
    assert reply == {"op": "ack", "id": 4}
    assert messages(broker, timeout=WAIT + 2) == f"{house}/living/action/later off", (
        "the refused command never reached the broker"
    )
    assert handled.take() == (f"{house}/living/action/later", b"off"), "nor the handlers"
    assert bridge.stats["browser_published"] == 1


def test_a_bridge_that_lost_its_broker_refuses_the_publish_and_takes_the_next_once_it_is_back(
    mqtt_url, house, publisher, start_bridge, handled, tcp_proxy
):
    proxy = tcp_proxy(mqtt_url)
    bridge = start_bridge(proxy.url_for(mqtt_url))
    topic = f"{house}/living/action/1.12.0"
    proxy.cut()
    wait_for(lambda: not bridge.client.connected, timeout=WAIT, what="the bridge to notice the cut")
    reply, elapsed = publish_from_a_socket(publisher, topic, "on", frame_id=5)
    assert reply == {"op": "error", "id": 5, "message": BROKER_UNREACHABLE}
    assert elapsed < TAKE_TIMEOUT, "the bridge answered at once"
    assert bridge.stats["browser_refused"] == 1

    proxy.restore()
    assert bridge.wait_until_ready(WAIT + 5), "reconnected"
    broker = broker_subscriber(mqtt_url, f"{house}/#")
    reply, _ = publish_from_a_socket(publisher, topic, "off", frame_id=6)
    assert reply == {"op": "ack", "id": 6}
    assert messages(broker, timeout=WAIT + 2) == f"{topic} off", (
        "only the publish made while connected reached the broker"
    )
    assert handled.take() == (topic, b"off")
    assert bridge.stats["browser_published"] == 1, "the refused one was not queued in the client either"


def test_with_the_bridge_up_a_publish_is_acknowledged_after_the_bridge_took_it(
    mqtt_url, house, publisher, start_bridge, handled
):
    start_bridge()
    topic = f"{house}/kitchen/action/2.12.0"
    reply, elapsed = publish_from_a_socket(publisher, topic, {"on": True}, frame_id=9)
    assert reply == {"op": "ack", "id": 9}
    assert elapsed < TAKE_TIMEOUT
    assert handled.take() == (topic, b'{"on":true}')


def test_in_the_embedded_default_the_bridges_thread_answers_through_the_in_memory_layer(
    mqtt_url, house, grants_db, handled
):
    # One process: the bridge on its own thread and loop, the web on another, the in-memory channel layer between.
    from channels.layers import InMemoryChannelLayer

    layer = InMemoryChannelLayer()
    registry = HandlerRegistry()

    async def queue_command(message: MqttMessage) -> None:
        handled.put((message.topic, message.payload))

    registry.subscribe(f"{house}/#", queue_command)
    bridge = MqttBridge(
        mqtt_url=mqtt_url,
        filters=[f"{house}/#"],
        fanout=_no_browsers,
        registry=registry,
        consume_events=False,
        channel_layer=layer,
        timings=BridgeTimings(heartbeat_interval=3600, mqtt=FAST_MQTT),
    )
    bridge.start()
    try:
        assert bridge.wait_until_ready(WAIT + 5)
        wait_for(bridge_module.bridge_reachable, timeout=WAIT, what="the bridge's heartbeat")

        async def publish() -> float:
            started = time.monotonic()
            await bridge_module.publish_request(f"{house}/hall/action/1.12.0", "on", layer=layer)
            return time.monotonic() - started

        assert asyncio.run(publish()) < 1.0
        assert handled.take() == (f"{house}/hall/action/1.12.0", b"on")
    finally:
        bridge.stop(timeout=WAIT)
