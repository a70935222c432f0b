"""The MQTT bridge against the real Mosquitto (and RabbitMQ / Redis where its other side is theirs).

Browser subscriptions are stood in for by :class:`BrowserSubscriptions`, a fan-out double that matches with the
same MQTT rules (``messaging.topics``); the browser test (``tests/browser/test_live.py``) runs the whole path with
the real push endpoint and Chromium.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError

from hub import embedded
from messaging import bridge as bridge_module
from messaging.bridge import BridgeTimings, MqttBridge, bridge_check, embedded_bridge, publish_request
from messaging.mqtt import HandlerRegistry, MqttMessage, MqttTimings
from messaging.topics import FilterIndex
from tests.messaging.consume_support import make_event
from tests.messaging.test_mqtt_broker import (
    MOSQUITTO_SUB,
    WAIT,
    Inbox,
    clear_retained,
    host_port,
    mosquitto_pub,
    mosquitto_sub_one,
)
from tests.support.mosquitto_sub import messages, start_subscriber
from tests.support.waiting import wait_for

pytestmark = pytest.mark.services


class BrowserSubscriptions:
    """What ``messaging.push.fanout`` does, reduced to its contract: matching subscriptions get the message."""

    def __init__(self) -> None:
        self.index: FilterIndex[str] = FilterIndex()
        self.received: queue.Queue = queue.Queue()
        self.calls: queue.Queue = queue.Queue()

    def subscribe(self, name: str, topic_filter: str) -> None:
        self.index.add(topic_filter, name)

    async def fanout(self, topic, payload, *, retain, received_at) -> None:
        assert received_at.tzinfo is not None, "received_at is an aware datetime"
        self.calls.put((topic, bytes(payload), retain))
        for name in sorted(self.index.match(topic)):
            self.received.put((name, topic, bytes(payload), retain))

    def take(self, timeout: float = WAIT):
        return self.received.get(timeout=timeout)

    def nothing_more(self, mqtt_url: str, sentinel_topic: str) -> list:
        """What arrives before a sentinel published now to ``sentinel_topic`` (which one subscription matches).

        The bridge forwards in the broker's order, so anything still to come from earlier publications is in the
        list: no fixed wait is needed to prove that nothing else arrived.
        """
        payload = publish_sentinel(mqtt_url, sentinel_topic)
        seen = []
        while (item := self.take())[1:3] != (sentinel_topic, payload):
            seen.append(item)
        return seen

    def calls_so_far(self) -> list:
        seen = []
        while not self.calls.empty():
            seen.append(self.calls.get_nowait())
        return seen


@pytest.fixture
def base() -> str:
    """A topic prefix of this test's own, so tests sharing the machine's Mosquitto never see each other."""
    return f"/test-bridge/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def browsers() -> BrowserSubscriptions:
    return BrowserSubscriptions()


@pytest.fixture
def registry() -> HandlerRegistry:
    return HandlerRegistry()


FAST_MQTT = MqttTimings(keepalive=5, retry_initial=0.05, retry_max=0.2)


@pytest.fixture
def start_bridge(browsers, registry):
    """``start_bridge(url, **options)`` → a running bridge with fast timers, stopped after the test."""
    bridges: list[MqttBridge] = []

    def start(url: str, *, ready: bool = True, heartbeat_interval: float = 3600, **options) -> MqttBridge:
        options.setdefault("fanout", browsers.fanout)
        options.setdefault("registry", registry)
        options.setdefault("consume_events", False)
        options.setdefault("receive_browser_publishes", False)
        options.setdefault("timings", BridgeTimings(heartbeat_interval=heartbeat_interval, mqtt=FAST_MQTT))
        bridge = MqttBridge(mqtt_url=url, **options)
        bridges.append(bridge)
        bridge.start()
        if ready:
            assert bridge.wait_until_ready(WAIT + 5), f"the bridge did not get ready against {url}"
        return bridge

    yield start
    for bridge in bridges:
        bridge.stop(timeout=WAIT)
        assert not bridge.alive, "the bridge did not stop"


def mosquitto_sub(url: str, topic_filter: str, *, count: int, seconds: int = int(WAIT)) -> subprocess.Popen:
    """A foreign subscriber printing 'retain topic payload' for up to ``count`` messages within ``seconds``;
    subscribed when this returns."""
    command = [MOSQUITTO_SUB, *host_port(url), "-t", topic_filter, "-q", "1", "-C", str(count), "-W", str(seconds)]
    return start_subscriber([*command, "-F", "%r %t %p"])


def publish_sentinel(mqtt_url: str, topic: str) -> bytes:
    """Publish a payload of its own to ``topic`` and return it: what arrives after it was published after it."""
    payload = f"sentinel {uuid.uuid4().hex}"
    mosquitto_pub(mqtt_url, topic, payload)
    return payload.encode()


# --- broker → browsers -------------------------------------------------------------------------------------


def test_a_broker_message_reaches_the_browser_subscriptions_it_matches_and_no_other(mqtt_url, start_bridge, browsers):
    browsers.subscribe("sport", "/news/+/sport")
    browsers.subscribe("weather", "/news/+/weather")
    start_bridge(mqtt_url, filters=["/news/#"])
    marker = uuid.uuid4().hex

    mosquitto_pub(mqtt_url, "/news/europe/sport", f"goal {marker}")

    assert browsers.take() == ("sport", "/news/europe/sport", f"goal {marker}".encode(), False)
    later = browsers.nothing_more(mqtt_url, "/news/europe/sport")
    leftovers = [item for item in later if marker in item[2].decode(errors="replace")]
    assert leftovers == [], "only the /news/+/sport subscription received the message"


def test_only_the_configured_filters_are_forwarded(mqtt_url, base, start_bridge, browsers):
    browsers.subscribe("everything", f"{base}/#")
    start_bridge(mqtt_url, filters=[f"{base}/shared/#"])

    mosquitto_pub(mqtt_url, f"{base}/private/x", "not bridged")
    mosquitto_pub(mqtt_url, f"{base}/shared/x", "bridged")

    assert browsers.take() == ("everything", f"{base}/shared/x", b"bridged", False)
    assert browsers.nothing_more(mqtt_url, f"{base}/shared/sentinel") == []


def test_messages_are_forwarded_in_the_order_the_broker_sent_them(mqtt_url, base, start_bridge, browsers):
    browsers.subscribe("all", f"{base}/#")
    start_bridge(mqtt_url, filters=[f"{base}/#"])
    for index in range(50):
        mosquitto_pub(mqtt_url, f"{base}/seq", str(index))
    received = [browsers.take()[2] for _ in range(50)]
    assert received == [str(index).encode() for index in range(50)]


def test_a_retained_broker_message_is_forwarded_as_retained_on_subscribe_and_live(
    mqtt_url, base, start_bridge, browsers
):
    topic = f"{base}/home/living/measure/1"
    browsers.subscribe("dashboard", f"{base}/home/#")
    mosquitto_pub(mqtt_url, topic, "21.5", retain=True)
    try:
        start_bridge(mqtt_url, filters=[f"{base}/#"])
        assert browsers.take() == ("dashboard", topic, b"21.5", True), "the broker's last value arrives retained"
        mosquitto_pub(mqtt_url, f"{base}/home/living/measure/2", "live")
        assert browsers.take() == ("dashboard", f"{base}/home/living/measure/2", b"live", False)
        # Published retained while the bridge listens: the topic's new last value, so it goes as retained too.
        mosquitto_pub(mqtt_url, topic, "22.0", retain=True)
        assert browsers.take() == ("dashboard", topic, b"22.0", True)
    finally:
        clear_retained(mqtt_url, topic)


def under_mqtt_311(url: str) -> str:
    """``url`` with the client forced to MQTT 3.1.1, whose broker clears RETAIN on what it forwards live."""
    return f"{url}{'&' if '?' in url else '?'}protocol=3.1.1"


def refreshing_every(seconds: float) -> BridgeTimings:
    return BridgeTimings(heartbeat_interval=3600, mqtt=FAST_MQTT, retained_refresh=seconds)


def test_under_mqtt_311_a_value_retained_mid_session_is_refreshed_as_retained_and_not_handled_again(
    mqtt_url, base, start_bridge, browsers, registry
):
    topic = f"{base}/home/living/measure/1"
    handled = Inbox()

    async def record(message: MqttMessage) -> None:
        handled.put((message.topic, message.payload, message.retain))

    registry.subscribe(f"{base}/#", record)
    browsers.subscribe("dashboard", f"{base}/#")
    bridge = start_bridge(under_mqtt_311(mqtt_url), filters=[f"{base}/#"], timings=refreshing_every(0.3))
    try:
        mosquitto_pub(mqtt_url, topic, "22.0", retain=True)

        assert browsers.take() == ("dashboard", topic, b"22.0", False), "under 3.1.1 the broker forwards it live"
        assert browsers.take() == ("dashboard", topic, b"22.0", True), "a refresh hands it over as retained"
        refreshes = bridge.stats["retained_refreshes"]
        wait_for(lambda: bridge.stats["retained_refreshes"] >= refreshes + 2, timeout=WAIT, what="two more refreshes")
        assert browsers.nothing_more(mqtt_url, f"{base}/sentinel") == [], "an unchanged value is not sent again"
        assert handled.take() == (topic, b"22.0", False), "the handlers had it once, as published"
        after = handled.take()
        assert after[0] == f"{base}/sentinel", f"the handlers were given a refreshed copy: {after}"
        assert bridge.client.state.connects == 1, "refreshed without reconnecting"
    finally:
        clear_retained(mqtt_url, topic)


def test_under_mqtt_5_there_is_nothing_to_refresh(mqtt_url, start_bridge):
    bridge = start_bridge(mqtt_url, filters=["/news/#"])
    assert bridge.client.refresh_retained() is False


def test_the_refresh_interval_follows_mqtt_retained_refresh(settings):
    settings.MQTT_RETAINED_REFRESH = 5.0
    assert BridgeTimings().retained_refresh == 5.0


def test_the_apps_mqtt_handlers_run_in_the_bridge_once_per_message(
    mqtt_url, base, start_bridge, registry, transactional_db
):
    handled = Inbox()

    def queue_command(message: MqttMessage) -> None:  # sync: runs off the loop, like an ORM-writing handler
        handled.put((message.topic, message.payload))

    registry.subscribe(f"{base}/home/+/action/#", queue_command)
    start_bridge(mqtt_url, filters=[f"{base}/#"])

    mosquitto_pub(mqtt_url, f"{base}/home/living/action/3.12.0", "1")
    mosquitto_pub(mqtt_url, f"{base}/home/living/measure/3.12.0", "20.0")

    assert handled.take() == (f"{base}/home/living/action/3.12.0", b"1")
    sentinel = publish_sentinel(mqtt_url, f"{base}/home/living/action/sentinel")
    assert handled.take() == (f"{base}/home/living/action/sentinel", sentinel), "the measure topic was not handled"


def test_a_failing_fanout_does_not_stop_the_bridge(mqtt_url, base, start_bridge, browsers):
    failures = []

    async def flaky(topic, payload, *, retain, received_at):
        if payload == b"boom":
            failures.append(topic)
            raise RuntimeError("channel layer away")
        await browsers.fanout(topic, payload, retain=retain, received_at=received_at)

    browsers.subscribe("all", f"{base}/#")
    start_bridge(mqtt_url, filters=[f"{base}/#"], fanout=flaky)
    mosquitto_pub(mqtt_url, f"{base}/a", "boom")
    mosquitto_pub(mqtt_url, f"{base}/b", "fine")
    assert browsers.take() == ("all", f"{base}/b", b"fine", False)
    assert failures == [f"{base}/a"]


# --- events → broker, and no loop --------------------------------------------------------------------------


@pytest.fixture
def bridge_queue(settings, bus_names):
    settings.MQTT_BRIDGE_QUEUE = f"test-mqtt-{uuid.uuid4().hex[:10]}"
    return settings.MQTT_BRIDGE_QUEUE


def test_an_events_topics_reach_the_broker_retained_when_retained_and_never_come_back(
    mqtt_url,
    rabbit,
    bridge_queue,
    base,
    start_bridge,
    browsers,
    registry,
):
    handled = Inbox()

    async def record(message: MqttMessage) -> None:
        handled.put(message.topic)

    registry.subscribe(f"{base}/#", record)
    browsers.subscribe("all", f"{base}/#")
    bridge = start_bridge(mqtt_url, filters=[f"{base}/#"], consume_events=True, amqp_url=rabbit.url)
    live = mosquitto_sub(mqtt_url, f"{base}/#", count=2)
    retained_topic = f"{base}/home/living/measure/1"
    live_topic = f"{base}/home/living/state"
    try:
        rabbit.publish_events(
            [
                make_event(1, topics=(retained_topic,), retain=True, data={"value": 21.5}),
                make_event(2, topics=(live_topic,), data="on"),
                make_event(3),  # no topics: nothing to publish
            ]
        )
        output = messages(live, timeout=WAIT + 5)
        assert sorted(output.splitlines()) == sorted([f"0 {retained_topic} " + '{"value":21.5}', f"0 {live_topic} on"])

        later = mosquitto_sub_one(mqtt_url, retained_topic, retained_only=True)
        later_output, _ = later.communicate(timeout=WAIT + 2)
        assert later_output.strip() == f"1 1 {retained_topic} " + '{"value":21.5}', "kept by the broker as retained"

        wait_for(lambda: rabbit.ready(bridge_queue) == 0, timeout=WAIT, what="the bridge's queue to be acknowledged")
        # A foreign publication after the bridge's own: the bridge receives in the broker's order, so its own
        # two would come back before this one if they came back at all.
        sentinel = publish_sentinel(mqtt_url, f"{base}/sentinel")
        assert handled.take() == f"{base}/sentinel", "the bridge's own publications are not handed to the handlers"
        assert browsers.take() == ("all", f"{base}/sentinel", sentinel, False)
        assert browsers.calls_so_far() == [(f"{base}/sentinel", sentinel, False)], "nor forwarded back to browsers"
        assert bridge.stats["events_published"] == 2
    finally:
        clear_retained(mqtt_url, retained_topic)


def test_an_older_retained_event_never_overwrites_a_newer_one(
    mqtt_url,
    rabbit,
    bridge_queue,
    base,
    start_bridge,
    caplog,
):
    caplog.set_level(logging.INFO, logger="messaging.bridge")
    start_bridge(mqtt_url, filters=[f"{base}/none"], consume_events=True, amqp_url=rabbit.url)
    topic = f"{base}/home/living/setpoint"
    now = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    try:
        rabbit.publish_events(
            [
                make_event(1, topics=(topic,), retain=True, data=22, occurred_at=now),
                make_event(2, topics=(topic,), retain=True, data=19, occurred_at=now - timedelta(minutes=5)),
            ]
        )
        wait_for(lambda: "is older than the last one; skipped" in caplog.text, timeout=WAIT, what="19 to be skipped")

        def retained() -> str:
            output, _ = mosquitto_sub_one(mqtt_url, topic, retained_only=True).communicate(timeout=WAIT + 2)
            return output.strip()

        # 19 was never sent (the log says so); once the broker holds a retained value, it is the newer one.
        assert wait_for(retained, timeout=WAIT, what="a retained value") == f"1 1 {topic} 22"
    finally:
        clear_retained(mqtt_url, topic)


def test_each_event_reaches_the_broker_once(
    mqtt_url,
    rabbit,
    bridge_queue,
    base,
    start_bridge,
):
    # Web processes take no part in it: the one bridge consumes a queue of its own on the bus.
    start_bridge(mqtt_url, filters=[f"{base}/none"], consume_events=True, amqp_url=rabbit.url)
    subscriber = mosquitto_sub(mqtt_url, f"{base}/#", count=100, seconds=3)
    rabbit.publish_events([make_event(i, topics=(f"{base}/n/{i}",), data=i) for i in range(20)])
    output = messages(subscriber, timeout=WAIT + 5)
    topics = [line.split()[1] for line in output.splitlines()]
    assert sorted(topics) == sorted(f"{base}/n/{i}" for i in range(20))


def test_embedded_default_events_on_the_memory_transport_reach_the_broker(
    mqtt_url,
    bus_names,
    bridge_queue,
    base,
    start_bridge,
):
    from kombu import Connection, Producer

    from messaging import topology

    bridge = start_bridge(mqtt_url, filters=[f"{base}/none"], consume_events=True, amqp_url="memory://")
    subscriber = mosquitto_sub(mqtt_url, f"{base}/#", count=3)
    with Connection("memory://") as connection:
        topology.declare(connection)
        producer = Producer(connection.default_channel)
        for event in [make_event(i, topics=(f"{base}/room{i}/temperature",), data=20 + i) for i in range(3)]:
            producer.publish(
                event.body(), exchange=bus_names.exchange, routing_key=event.type, **event.amqp_properties()
            )
        output = messages(subscriber, timeout=WAIT + 5)
    assert sorted(output.splitlines()) == [f"0 {base}/room{i}/temperature {20 + i}" for i in range(3)]
    assert bridge.stats["events_published"] == 3


# --- browsers → broker -------------------------------------------------------------------------------------


def test_a_granted_browser_publish_from_another_process_reaches_the_broker_and_the_handlers_once(
    mqtt_url, redis_url, base, start_bridge, browsers, registry, transactional_db
):
    from channels_redis.core import RedisChannelLayer

    prefix = f"test-bridge-{uuid.uuid4().hex[:8]}"

    def layer() -> RedisChannelLayer:
        return RedisChannelLayer(hosts=[{"address": redis_url, "socket_timeout": None}], prefix=prefix)

    handled = Inbox()

    async def queue_command(message: MqttMessage) -> None:
        handled.put((message.topic, message.payload))

    registry.subscribe(f"{base}/home/+/action/#", queue_command)
    browsers.subscribe("all", f"{base}/#")
    start_bridge(mqtt_url, filters=[f"{base}/#"], receive_browser_publishes=True, channel_layer=layer())
    # A web process sends only to a bridge whose heartbeat is fresh (tests/messaging/test_push_broker_unreachable.py).
    wait_for(lambda: bridge_module.bridge_reachable(), timeout=WAIT, what="the bridge's heartbeat")
    topic = f"{base}/home/living/action/3.12.0"
    subscriber = mosquitto_sub(mqtt_url, topic, count=1)

    async def web_process_publishes() -> None:
        web_layer = layer()
        await publish_request(topic, {"on": True}, layer=web_layer)

    asyncio.run(web_process_publishes())

    output = messages(subscriber, timeout=WAIT + 2)
    assert output.strip() == f'0 {topic} {{"on":true}}'
    assert handled.take() == (topic, b'{"on":true}')
    sentinel = publish_sentinel(mqtt_url, f"{base}/home/living/action/sentinel")
    assert handled.take() == (f"{base}/home/living/action/sentinel", sentinel), "the handlers ran once"
    wait_for(lambda: not browsers.calls.empty(), timeout=WAIT, what="the sentinel's fanout")
    assert browsers.calls_so_far() == [(f"{base}/home/living/action/sentinel", sentinel, False)], (
        "the push endpoint delivered it to browsers; the bridge does not again"
    )


def test_publish_request_refuses_a_topic_with_wildcards():
    from messaging.topics import InvalidTopicError

    with pytest.raises(InvalidTopicError):
        asyncio.run(publish_request("/home/+/action", 1, layer=object()))


# --- faults ------------------------------------------------------------------------------------------------


def test_the_bridge_reconnects_after_a_cut_and_forwards_again(mqtt_url, base, start_bridge, browsers, tcp_proxy):
    browsers.subscribe("all", f"{base}/#")
    proxy = tcp_proxy(mqtt_url)
    bridge = start_bridge(proxy.url_for(mqtt_url), filters=[f"{base}/#"])
    mosquitto_pub(mqtt_url, f"{base}/before", "1")
    assert browsers.take()[1] == f"{base}/before"

    proxy.cut()
    wait_for(lambda: not bridge.client.connected, timeout=WAIT, what="the bridge to notice the cut")
    proxy.restore()
    assert bridge.wait_until_ready(WAIT + 5), "reconnected and subscribed again"
    mosquitto_pub(mqtt_url, f"{base}/after", "2")
    assert browsers.take() == ("all", f"{base}/after", b"2", False)
    assert bridge.client.state.connects >= 2


# --- heartbeat, /healthz, embedded, command ----------------------------------------------------------------


def test_heartbeat_and_health_check_follow_the_brokers_connection(
    mqtt_url, base, start_bridge, tcp_proxy, transactional_db
):
    from hub.selectors import heartbeat_get

    proxy = tcp_proxy(mqtt_url)
    bridge = start_bridge(proxy.url_for(mqtt_url), filters=[f"{base}/#"], heartbeat_interval=0.2)
    wait_for(lambda: heartbeat_get(bridge_module.BRIDGE_NAME) is not None, timeout=WAIT, what="a heartbeat")
    wait_for(lambda: bridge_check().ok, timeout=WAIT, what="a healthy bridge")
    assert "connected to" in bridge_check().detail

    proxy.cut()
    wait_for(lambda: not bridge_check().ok, timeout=WAIT, what="the check to report the lost broker")
    assert "not connected" in bridge_check().detail
    proxy.restore()
    wait_for(lambda: bridge_check().ok, timeout=WAIT + 5, what="the check to recover")

    bridge.stop(timeout=WAIT)
    # A stopped bridge's heartbeat goes stale after twice its interval.
    wait_for(lambda: not bridge_check().ok, timeout=WAIT, what="a stale heartbeat to be reported")


def test_the_bridge_is_an_embedded_part_only_when_mqtt_url_is_set(settings, mqtt_url):
    assert bridge_module.BRIDGE_NAME in embedded.registered()
    settings.MQTT_URL = None
    assert embedded_bridge() is None
    settings.MQTT_URL = mqtt_url
    bridge = embedded_bridge()
    assert isinstance(bridge, MqttBridge)
    assert not bridge.alive, "registering or building it starts nothing"
    assert bridge.filters == settings.MQTT_BRIDGE_FILTERS == ["#"]


@pytest.mark.parametrize(("mqtt_url_value", "listed"), [("mqtt://127.0.0.1:1", True), ("", False)])
def test_healthz_lists_the_bridge_only_when_mqtt_url_is_set(mqtt_url_value, listed, tmp_path):
    """Checked in a fresh process: the checks are registered once, at start-up, from the environment."""
    import os
    import subprocess
    import sys

    script = (
        "import django; django.setup(); from hub import health; "
        f"print('worker:{bridge_module.BRIDGE_NAME}' in health._checks)"
    )
    environment = {**os.environ, "MQTT_URL": mqtt_url_value, "HUB_VAR_DIR": str(tmp_path)}
    environment.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
    result = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == str(listed)


def test_a_malformed_filter_stops_start_up_naming_the_setting(mqtt_url):
    with pytest.raises(ImproperlyConfigured, match="MQTT_BRIDGE_FILTERS contains 'a/#/b'"):
        MqttBridge(mqtt_url=mqtt_url, filters=["a/#/b"])


def test_the_command_refuses_to_start_without_mqtt_url(settings):
    settings.MQTT_URL = None
    with pytest.raises(CommandError, match="MQTT_URL is not set"):
        call_command("mqtt_bridge")


def test_the_command_runs_the_bridge_until_sigterm(mqtt_url, base, tmp_path):
    import os
    import signal
    import sys
    from pathlib import Path

    project = Path(__file__).resolve().parents[2]
    environment = {**os.environ, "MQTT_URL": mqtt_url, "MQTT_BRIDGE_FILTERS": f"{base}/#", "HUB_VAR_DIR": str(tmp_path)}
    environment.pop("AMQP_URL", None)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "mqtt_bridge", "--no-events"],
        cwd=project,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    seen = []
    try:
        deadline = time.monotonic() + 30
        while not any("MQTT connected" in line for line in seen):
            assert time.monotonic() < deadline, "the command did not connect: " + "".join(seen)
            seen.append(lines.get(timeout=max(0.01, deadline - time.monotonic())))
        process.send_signal(signal.SIGTERM)
        assert process.wait(WAIT + 10) == 0
    finally:
        if process.poll() is None:
            process.kill()


# --- with the real push fan-out --------------------------------------------------------------------------------


class RecordingConnection:
    """A stand-in for one browser's /ws/push connection as the push hub sees it."""

    def __init__(self) -> None:
        self.subscriptions: dict = {}
        self.frames: queue.Queue = queue.Queue()

    def offer(self, frame: str, *_message) -> None:
        self.frames.put(json.loads(frame))


@pytest.fixture
def redis_push(redis_url):
    """The real push bus over Redis (as between the bridge's process and a web process), with one web hub."""
    from messaging import push
    from messaging.push.bus import RedisBus
    from messaging.push.hub import PushHub

    bus = RedisBus(redis_url, prefix=f"test-bridge-{uuid.uuid4().hex[:8]}:")
    push.use_bus(bus)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="web-process-loop", daemon=True)
    thread.start()
    web_hub = PushHub(bus, loop=loop)
    loop.call_soon_threadsafe(web_hub.start)
    wait_for(bus.connected.is_set, timeout=WAIT, what="the web hub's Redis subscription")

    def subscribe(topic_filter: str, subscription_id: int) -> RecordingConnection:
        connection = RecordingConnection()
        asyncio.run_coroutine_threadsafe(_on_loop(web_hub.subscribe, connection, topic_filter, subscription_id), loop)
        return connection

    yield subscribe
    asyncio.run_coroutine_threadsafe(web_hub.close(), loop).result(WAIT)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(WAIT)
    push.use_bus(None)


async def _on_loop(function, *args):
    return function(*args)


def test_through_the_real_push_fanout_a_sport_subscriber_gets_the_message_and_a_weather_one_does_not(
    mqtt_url, redis_push, start_bridge
):
    sport = redis_push("/news/+/sport", 1)
    weather = redis_push("/news/+/weather", 7)
    start_bridge(mqtt_url, filters=["/news/#"], fanout=None)
    marker = uuid.uuid4().hex

    mosquitto_pub(mqtt_url, "/news/europe/sport", json.dumps({"score": "2-1", "marker": marker}))

    frame = sport.frames.get(timeout=WAIT)
    while frame["payload"].get("marker") != marker if isinstance(frame["payload"], dict) else True:
        frame = sport.frames.get(timeout=WAIT)
    assert frame["op"] == "message"
    assert frame["topic"] == "/news/europe/sport"
    assert frame["payload"] == {"score": "2-1", "marker": marker}, "UTF-8 JSON arrives as that JSON value"
    assert frame["subs"] == [1]
    assert frame["ts"].endswith("Z")
    # The weather subscriber's own message, published after: had the sport one reached it, it would come first.
    sentinel = publish_sentinel(mqtt_url, "/news/europe/weather").decode()
    weather_frames = [weather.frames.get(timeout=WAIT)]
    while weather_frames[-1]["payload"] != sentinel:
        weather_frames.append(weather.frames.get(timeout=WAIT))
    assert [f for f in weather_frames if marker in json.dumps(f)] == []


def test_through_the_real_push_fanout_a_live_retained_message_becomes_the_last_value_new_subscribers_get(
    mqtt_url, redis_push, start_bridge, base
):
    from messaging import push

    topic = f"{base}/home/living/measure/1"
    watcher = redis_push(f"{base}/#", 1)
    mosquitto_pub(mqtt_url, topic, "21.5", retain=True)
    try:
        start_bridge(mqtt_url, filters=[f"{base}/#"], fanout=None)
        assert watcher.frames.get(timeout=WAIT)["payload"] == 21.5
        mosquitto_pub(mqtt_url, topic, "22.0", retain=True)  # while the bridge listens
        assert watcher.frames.get(timeout=WAIT)["payload"] == 22.0

        async def last_values():
            return [(message.topic, message.payload) for message in await push.get_bus().retained(f"{base}/#")]

        assert asyncio.run(last_values()) == [(topic, "22.0")], "a new subscription gets 22.0, not the stale 21.5"
    finally:
        clear_retained(mqtt_url, topic)


def test_under_mqtt_311_a_new_subscription_gets_a_value_retained_mid_session_within_the_refresh_interval(
    mqtt_url, redis_push, start_bridge, base
):
    from messaging import push

    topic = f"{base}/home/living/measure/1"
    watcher = redis_push(f"{base}/#", 1)
    mosquitto_pub(mqtt_url, topic, "21.5", retain=True)

    async def last_values():
        return [(message.topic, message.payload) for message in await push.get_bus().retained(f"{base}/#")]

    try:
        bridge = start_bridge(
            under_mqtt_311(mqtt_url), filters=[f"{base}/#"], fanout=None, timings=refreshing_every(1.0)
        )
        assert watcher.frames.get(timeout=WAIT)["payload"] == 21.5
        mosquitto_pub(mqtt_url, topic, "22.0", retain=True)  # while the bridge listens
        live = watcher.frames.get(timeout=WAIT)
        assert (live["payload"], live["retained"]) == (22.0, False), "under 3.1.1 it arrives live"

        wait_for(lambda: asyncio.run(last_values()) == [(topic, "22.0")], timeout=WAIT, what="22.0 as the last value")
        assert bridge.client.state.connects == 1, "the refresh did it, not a reconnect"
    finally:
        clear_retained(mqtt_url, topic)
