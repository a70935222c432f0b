"""The MQTT client against the real Mosquitto: round trips with Debian's mosquitto_pub/sub as the foreign side,
retained messages, no echo of its own publications, handler failures, the loop handlers run on, and
reconnection after a broker restart (a private mosquitto) and after a cut connection (the TCP proxy); the hub's
presence (a retained ``online``, ``offline`` on a clean stop, the broker's last will ``offline`` when the connection
dies without a goodbye) and the connect hooks run after every (re)connect."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import shutil
import socket
import subprocess
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from messaging import mqtt
from messaging.bridge import BridgeTimings, MqttBridge
from messaging.mqtt import HandlerRegistry, MqttClient, MqttMessage, MqttTimings
from tests.support.waiting import wait_for, wait_until

pytestmark = pytest.mark.services

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
MOSQUITTO_SUB = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
WAIT = 5.0  # seconds; every wait in this module is bounded by it


# --- helpers ---------------------------------------------------------------------------------------------


def host_port(url: str) -> list[str]:
    parts = urlsplit(url)
    return ["-h", parts.hostname, "-p", str(parts.port)]


def mosquitto_pub(url: str, topic: str, payload: str, *, retain: bool = False, qos: int = 1) -> None:
    command = [MOSQUITTO_PUB, *host_port(url), "-t", topic, "-m", payload, "-q", str(qos)]
    if retain:
        command.append("-r")
    subprocess.run(command, check=True, timeout=WAIT)


def clear_retained(url: str, topic: str) -> None:
    subprocess.run([MOSQUITTO_PUB, *host_port(url), "-t", topic, "-r", "-n"], check=True, timeout=WAIT)


def mosquitto_sub_one(url: str, topic: str, *, retained_only: bool = False) -> subprocess.Popen:
    """A foreign subscriber that prints 'retain qos topic payload' for the first message and exits."""
    command = [MOSQUITTO_SUB, *host_port(url), "-t", topic, "-q", "1", "-C", "1", "-W", str(int(WAIT))]
    command += ["-F", "%r %q %t %p"]
    if retained_only:
        command.append("--retained-only")
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


class Inbox:
    """Collects what handlers receive, from whatever thread they run on."""

    def __init__(self) -> None:
        self.items: queue.Queue = queue.Queue()

    def put(self, item) -> None:
        self.items.put(item)

    def take(self, timeout: float = WAIT):
        return self.items.get(timeout=timeout)

    def take_until(self, predicate, timeout: float = WAIT) -> list:
        """Everything received up to and including the first item matching ``predicate``."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            seen.append(self.items.get(timeout=max(0.01, deadline - time.monotonic())))
            if predicate(seen[-1]):
                return seen

    def drain(self) -> list:
        seen = []
        with contextlib.suppress(queue.Empty):
            while True:
                seen.append(self.items.get_nowait())
        return seen


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateMosquitto:
    """A mosquitto of the test's own on a free loopback port, to kill and restart at will."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.config = directory / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(self._listening, timeout=WAIT, what=f"mosquitto on port {self.port}")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(WAIT)
            self.process = None

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False


# --- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture
def loop_thread() -> Iterator[tuple[asyncio.AbstractEventLoop, threading.Thread]]:
    """An event loop running on a thread of its own, as the bridge's worker runs one."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-event-loop", daemon=True)
    thread.start()
    yield loop, thread
    loop.call_soon_threadsafe(loop.stop)
    thread.join(WAIT)
    loop.close()


@pytest.fixture
def registry() -> HandlerRegistry:
    return HandlerRegistry()


@pytest.fixture
def base() -> str:
    """A topic prefix of this test's own, so tests sharing the machine's Mosquitto never see each other."""
    return f"test/hub-mqtt/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def start_client(loop_thread, registry):
    """``start_client(url, **options)`` → a started MqttClient with fast timers, stopped after the test."""
    loop, _ = loop_thread
    clients: list[MqttClient] = []

    def start(url: str, *, ready: bool = True, queue_size: int = MqttTimings.queue_size, **options) -> MqttClient:
        options.setdefault("loop", loop)
        options.setdefault("registry", registry)
        timings = MqttTimings(keepalive=5, retry_initial=0.05, retry_max=0.2, queue_size=queue_size)
        client = MqttClient(url, timings=timings, **options)
        clients.append(client)
        client.start()
        if ready:
            assert client.wait_until_ready(WAIT), f"no connection to {url}"
        return client

    yield start
    for client in clients:
        client.stop()


@pytest.fixture
def private_mosquitto(tmp_path) -> Iterator[PrivateMosquitto]:
    if not Path(MOSQUITTO).exists():
        pytest.skip(f"{MOSQUITTO} is not installed")
    broker = PrivateMosquitto(tmp_path)
    broker.start()
    yield broker
    broker.kill()


def recording(inbox: Inbox):
    async def handler(message: MqttMessage) -> None:
        inbox.put((message.topic, message.payload, message.retain))

    return handler


# --- round trips -----------------------------------------------------------------------------------------


def test_a_foreign_publication_reaches_the_handlers_of_matching_filters_only(mqtt_url, base, registry, start_client):
    inbox = Inbox()
    registry.subscribe(f"{base}/news/+/sport", recording(inbox))
    start_client(mqtt_url, run_handlers=True)

    mosquitto_pub(mqtt_url, f"{base}/news/europe/weather", "rain")
    mosquitto_pub(mqtt_url, f"{base}/news/europe/sport", "goal")

    assert inbox.take() == (f"{base}/news/europe/sport", b"goal", False)
    # Handlers run in the broker's order: a weather message handled at all would come before this one.
    mosquitto_pub(mqtt_url, f"{base}/news/europe/sport", "sentinel")
    assert inbox.take() == (f"{base}/news/europe/sport", b"sentinel", False)
    assert inbox.drain() == [], "the weather message matched no filter and reached no handler"


def test_the_hubs_publication_reaches_a_foreign_subscriber_with_qos_and_retain(mqtt_url, base, start_client):
    client = start_client(mqtt_url)
    topic = f"{base}/state/heater"
    try:
        assert client.publish(topic, {"on": True}, qos=1, retain=True).wait(WAIT)
        subscriber = mosquitto_sub_one(mqtt_url, topic, retained_only=True)
        output, _ = subscriber.communicate(timeout=WAIT + 2)
        assert output.strip() == f'1 1 {topic} {{"on":true}}'

        live = mosquitto_sub_one(mqtt_url, f"{base}/live")

        # Publish until the foreign subscriber has it: it gives no sign of when its subscription is in place.
        def seen() -> bool:
            client.publish(f"{base}/live", "21.5", qos=1)
            return live.poll() is not None

        wait_until(seen, timeout=WAIT, interval=0.05)
        output, _ = live.communicate(timeout=WAIT)
        assert output.strip() == f"0 1 {base}/live 21.5"
    finally:
        clear_retained(mqtt_url, topic)


def test_a_retained_message_is_handed_over_on_subscribe_marked_retained(mqtt_url, base, registry, start_client):
    topic = f"{base}/home/kitchen/measure/1.12.0"
    mosquitto_pub(mqtt_url, topic, "21.5", retain=True)
    try:
        inbox = Inbox()
        registry.subscribe(f"{base}/home/#", recording(inbox))
        start_client(mqtt_url, run_handlers=True)
        assert inbox.take() == (topic, b"21.5", True)

        mosquitto_pub(mqtt_url, topic, "22.0", retain=True)
        assert inbox.take() == (topic, b"22.0", False), "a live message is not flagged retained"
    finally:
        clear_retained(mqtt_url, topic)


def test_overlapping_filters_give_each_handler_one_delivery(mqtt_url, base, registry, start_client):
    """Mosquitto sends one copy per matching subscription; the client hands each message over once."""
    inbox = Inbox()

    async def by_room(message: MqttMessage) -> None:
        inbox.put(("by_room", message.payload))

    async def by_endpoint(message: MqttMessage) -> None:
        inbox.put(("by_endpoint", message.payload))

    registry.subscribe(f"{base}/+/measure/1", by_room)
    registry.subscribe(f"{base}/kitchen/measure/+", by_endpoint)
    hook_inbox = Inbox()
    client = start_client(
        mqtt_url,
        run_handlers=True,
        listen=[f"{base}/kitchen/+/1"],
        on_message=lambda message: hook_inbox.put(message.payload),
    )
    assert len(client.broker_filters) == 3, "none of these filters covers another"

    mosquitto_pub(mqtt_url, f"{base}/kitchen/measure/1", "first")
    mosquitto_pub(mqtt_url, f"{base}/kitchen/measure/2", "last")

    received = inbox.take_until(lambda item: item == ("by_endpoint", b"last"))
    assert sorted(received) == [("by_endpoint", b"first"), ("by_endpoint", b"last"), ("by_room", b"first")]
    assert hook_inbox.take() == b"first"
    # One sentinel for the handlers' filters, one for the hook's: whatever else came would come before them.
    mosquitto_pub(mqtt_url, f"{base}/kitchen/measure/3", "sentinel")
    mosquitto_pub(mqtt_url, f"{base}/kitchen/sentinel/1", "sentinel")
    assert inbox.take() == ("by_endpoint", b"sentinel")
    assert hook_inbox.take() == b"sentinel"
    assert inbox.drain() == []
    assert hook_inbox.drain() == []


# --- own publications ------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_own_publications_are_never_delivered_back(mqtt_url, base, registry, start_client, protocol):
    inbox = Inbox()
    registry.subscribe(f"{base}/#", recording(inbox))
    hook_inbox = Inbox()
    client = start_client(
        mqtt_url,
        run_handlers=True,
        listen=[f"{base}/#"],
        on_message=lambda message: hook_inbox.put(message.topic),
        protocol=protocol,
    )
    assert client.publish(f"{base}/own", "mine", qos=1).wait(WAIT)
    assert client.publish(f"{base}/own0", "mine", qos=0).accepted
    mosquitto_pub(mqtt_url, f"{base}/foreign", "theirs")

    received = inbox.take_until(lambda item: item[0] == f"{base}/foreign")
    assert received == [(f"{base}/foreign", b"theirs", False)]
    assert hook_inbox.take_until(lambda topic: topic == f"{base}/foreign") == [f"{base}/foreign"]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_own_publication_matching_overlapping_subscriptions_is_not_delivered_back(
    mqtt_url, base, registry, start_client, protocol
):
    """Over v5 Mosquitto sends one copy per matching subscription (each without noLocal's help would echo);
    over v3.1.1 one copy in all, which the client's own tracking expects."""
    inbox = Inbox()
    registry.subscribe(f"{base}/+/c", recording(inbox))
    registry.subscribe(f"{base}/b/+", recording(inbox))
    client = start_client(mqtt_url, run_handlers=True, protocol=protocol)
    assert len(client.broker_filters) == 2
    assert client.publish(f"{base}/b/c", "mine", qos=1).wait(WAIT)
    mosquitto_pub(mqtt_url, f"{base}/x/c", "theirs")
    assert inbox.take_until(lambda item: item[1] == b"theirs") == [(f"{base}/x/c", b"theirs", False)]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_own_retained_publication_is_not_delivered_back_after_a_reconnect(
    mqtt_url, base, registry, start_client, tcp_proxy, protocol
):
    inbox = Inbox()
    registry.subscribe(f"{base}/#", recording(inbox))
    proxy = tcp_proxy(mqtt_url)
    client = start_client(proxy.url_for(mqtt_url), run_handlers=True, protocol=protocol)
    topic = f"{base}/state"
    try:
        assert client.publish(topic, "mine", qos=1, retain=True).wait(WAIT)
        proxy.cut()
        wait_for(lambda: not client.connected, timeout=WAIT, what="the client to notice the cut")
        proxy.restore()
        assert client.wait_until_ready(WAIT), "no reconnect"
        assert client.state.connects == 2
        mosquitto_pub(mqtt_url, f"{base}/marker", "after")
        received = inbox.take_until(lambda item: item[0] == f"{base}/marker")
        assert received == [(f"{base}/marker", b"after", False)]
    finally:
        clear_retained(mqtt_url, topic)


# --- handlers --------------------------------------------------------------------------------------------


# Sync handlers run through database_sync_to_async, which checks this thread's DB connection: allow it.
@pytest.mark.django_db(transaction=True)
def test_a_failing_handler_does_not_stop_delivery(mqtt_url, base, registry, start_client, caplog):
    inbox = Inbox()

    async def fragile(message: MqttMessage) -> None:
        if message.payload == b"boom":
            raise ValueError("cannot parse boom")
        inbox.put(("fragile", message.payload))

    def sync_fragile(message: MqttMessage) -> None:
        if message.payload == b"boom":
            raise ValueError("sync handler cannot parse boom")
        inbox.put(("sync", message.payload))

    registry.subscribe(f"{base}/+", fragile)
    registry.subscribe(f"{base}/+", sync_fragile)
    registry.subscribe(f"{base}/+", recording(inbox))
    client = start_client(mqtt_url, run_handlers=True)

    with caplog.at_level(logging.ERROR, logger="messaging.mqtt"):
        mosquitto_pub(mqtt_url, f"{base}/a", "boom")
        mosquitto_pub(mqtt_url, f"{base}/a", "fine")
        received = inbox.take_until(lambda item: item == ("sync", b"fine"))

    assert received == [(f"{base}/a", b"boom", False), ("fragile", b"fine"), ("sync", b"fine")]
    assert "cannot parse boom" in caplog.text
    assert "sync handler cannot parse boom" in caplog.text
    assert client.connected


@pytest.mark.django_db(transaction=True)
def test_handlers_run_on_the_given_loop_and_sync_ones_may_use_the_orm(
    mqtt_url, base, registry, start_client, loop_thread
):
    from hub.models import Heartbeat
    from hub.services import heartbeat_record

    loop, thread = loop_thread
    inbox = Inbox()

    async def on_loop(message: MqttMessage) -> None:
        inbox.put(("async", threading.get_ident(), asyncio.get_running_loop()))

    def records_heartbeat(message: MqttMessage) -> None:
        heartbeat_record(name=f"mqtt-test-{message.text}", interval_seconds=60)
        inbox.put(("sync", threading.get_ident(), None))

    registry.subscribe(f"{base}/beat", on_loop)
    registry.subscribe(f"{base}/beat", records_heartbeat)
    hook_threads = Inbox()
    start_client(
        mqtt_url,
        run_handlers=True,
        listen=[f"{base}/#"],
        on_message=lambda message: hook_threads.put(threading.get_ident()),
    )

    name = uuid.uuid4().hex[:8]
    mosquitto_pub(mqtt_url, f"{base}/beat", name)
    assert inbox.take() == ("async", thread.ident, loop)
    kind, handler_thread, _ = inbox.take()
    assert kind == "sync"
    assert handler_thread != thread.ident, "a sync handler must not block the event loop"
    assert hook_threads.take() == thread.ident
    assert Heartbeat.objects.filter(name=f"mqtt-test-{name}").exists()


def test_handlers_see_messages_in_the_order_the_broker_sent_them(mqtt_url, base, registry, start_client):
    inbox = Inbox()
    release = threading.Event()

    async def slow_then_fast(message: MqttMessage) -> None:
        # The first message's handler is the slowest (it ends only once all 50 are at the broker); order holds.
        if message.payload == b"0":
            await asyncio.to_thread(release.wait, WAIT)
        inbox.put(int(message.payload))

    registry.subscribe(f"{base}/seq", slow_then_fast)
    client = start_client(mqtt_url, run_handlers=True)
    publisher = start_client(mqtt_url)
    sent = [publisher.publish(f"{base}/seq", str(number), qos=1) for number in range(50)]
    assert all(publication.wait(WAIT) for publication in sent)
    release.set()
    assert inbox.take_until(lambda n: n == 49) == list(range(50))
    assert client.state.dropped_messages == 0


def test_a_client_without_run_handlers_never_runs_them(mqtt_url, base, registry, start_client):
    inbox = Inbox()
    registry.subscribe(f"{base}/#", recording(inbox))
    client = start_client(mqtt_url)  # a web process that only publishes
    hub_side = start_client(mqtt_url, run_handlers=True)  # the bridge
    client.publish(f"{base}/x", "once", qos=1).wait(WAIT)
    assert inbox.take() == (f"{base}/x", b"once", False)
    client.publish(f"{base}/x", "sentinel", qos=1).wait(WAIT)
    assert inbox.take() == (f"{base}/x", b"sentinel", False)
    assert inbox.drain() == [], "handled once, by the client that runs handlers"
    assert hub_side.connected


# --- reconnection and health -----------------------------------------------------------------------------


def test_the_client_reconnects_and_resubscribes_after_a_broker_restart(registry, start_client, private_mosquitto):
    inbox = Inbox()
    registry.subscribe("/news/+/sport", recording(inbox))
    client = start_client(private_mosquitto.url, run_handlers=True)
    mosquitto_pub(private_mosquitto.url, "/news/europe/sport", "before")
    assert inbox.take() == ("/news/europe/sport", b"before", False)

    private_mosquitto.kill()
    wait_for(lambda: not client.connected, timeout=WAIT, what="the client to notice the broker is gone")
    check = mqtt.health_check()
    assert not check.ok
    assert private_mosquitto.url.split("//")[1] in check.detail

    private_mosquitto.start()  # a fresh broker: no session, no subscriptions, same port
    assert client.wait_until_ready(WAIT), "no reconnect after the broker came back"
    assert client.state.connects == 2
    mosquitto_pub(private_mosquitto.url, "/news/asia/sport", "after")
    assert inbox.take() == ("/news/asia/sport", b"after", False)
    assert mqtt.health_check().ok


def test_a_client_started_while_the_broker_is_down_connects_when_it_comes_up(registry, start_client, tmp_path):
    broker = PrivateMosquitto(tmp_path)
    inbox = Inbox()
    registry.subscribe("/late/#", recording(inbox))
    client = start_client(broker.url, run_handlers=True, ready=False)
    try:
        wait_for(lambda: client.state.last_error, timeout=WAIT, what="a failed connection attempt")
        assert not client.connected
        broker.start()
        assert client.wait_until_ready(WAIT)
        mosquitto_pub(broker.url, "/late/x", "hello")
        assert inbox.take() == ("/late/x", b"hello", False)
    finally:
        broker.kill()


def test_a_cut_connection_is_restored_and_queued_qos1_publications_go_out(
    mqtt_url, base, registry, start_client, tcp_proxy
):
    inbox = Inbox()
    registry.subscribe(f"{base}/in/#", recording(inbox))
    proxy = tcp_proxy(mqtt_url)
    client = start_client(proxy.url_for(mqtt_url), run_handlers=True)

    proxy.cut()
    wait_for(lambda: not client.connected, timeout=WAIT, what="the client to notice the cut")
    assert not client.state.connected
    assert client.state.last_error.startswith("disconnected")
    queued = client.publish(f"{base}/out", "while cut", qos=1, retain=True)
    assert queued.accepted
    proxy.restore()
    assert client.wait_until_ready(WAIT)
    try:
        assert queued.wait(WAIT), "the QoS 1 publication queued during the cut went out after the reconnect"
        subscriber = mosquitto_sub_one(mqtt_url, f"{base}/out", retained_only=True)
        output, _ = subscriber.communicate(timeout=WAIT + 2)
        assert output.strip() == f"1 1 {base}/out while cut"
        mosquitto_pub(mqtt_url, f"{base}/in/after", "resubscribed")
        assert inbox.take() == (f"{base}/in/after", b"resubscribed", False)
    finally:
        clear_retained(mqtt_url, f"{base}/out")


def test_health_check_reports_the_clients_connection(mqtt_url, start_client, settings, monkeypatch):
    # The check reports every live client of the process: count only this test's, whatever another test left.
    monkeypatch.setattr(mqtt, "_live_clients", weakref.WeakSet())
    client = start_client(mqtt_url)
    check = mqtt.health_check()
    assert check.ok
    assert "connected to" in check.detail
    client.stop()
    settings.MQTT_URL = mqtt_url
    assert mqtt.health_check().ok, "no client in this process: the broker answering is what counts"
    settings.MQTT_URL = f"mqtt://127.0.0.1:{free_port()}"
    assert not mqtt.health_check().ok


def test_handlers_that_cannot_keep_up_lose_messages_beyond_the_queue_not_the_connection(
    mqtt_url, base, registry, start_client, caplog
):
    inbox = Inbox()
    busy = threading.Event()
    release = threading.Event()

    async def slow(message: MqttMessage) -> None:
        if message.payload == b"0":
            busy.set()
            await asyncio.to_thread(release.wait, WAIT)
        inbox.put(int(message.payload))

    registry.subscribe(f"{base}/busy", slow)
    client = start_client(mqtt_url, run_handlers=True, queue_size=2)
    publisher = start_client(mqtt_url)
    with caplog.at_level(logging.ERROR, logger="messaging.mqtt"):
        publisher.publish(f"{base}/busy", "0", qos=1)
        assert busy.wait(WAIT)
        for number in range(1, 10):
            publisher.publish(f"{base}/busy", str(number), qos=1)
        wait_for(lambda: client.state.dropped_messages == 7, timeout=WAIT, what="seven messages dropped")
        release.set()
        assert inbox.take_until(lambda n: n == 2) == [0, 1, 2], "the one in hand and the two queued"
        publisher.publish(f"{base}/busy", "10", qos=1)
        assert inbox.take() == 10, "nothing else was queued before it"
    assert inbox.drain() == []
    assert client.state.dropped_messages == 7
    assert "cannot keep up" in caplog.text
    assert client.connected


# --- the hub's presence and connect hooks -------------------------------------------------------------------


def retained(url: str, topic: str) -> str:
    """What the broker keeps on ``topic`` (a foreign subscriber's view), '' when it keeps nothing."""
    subscriber = mosquitto_sub_one(url, topic, retained_only=True)
    output, _ = subscriber.communicate(timeout=WAIT + 2)
    return output.strip().split(" ", 3)[-1] if output.strip() else ""


def test_the_client_says_online_while_connected_and_offline_when_it_stops(mqtt_url, base, start_client):
    topic = f"{base}/hub/availability"
    try:
        client = start_client(mqtt_url, availability_topic=topic)
        assert retained(mqtt_url, topic) == "online"
        client.stop()
        assert retained(mqtt_url, topic) == "offline"
    finally:
        clear_retained(mqtt_url, topic)


def test_a_connection_that_dies_leaves_the_last_will_offline_and_the_reconnect_says_online(
    mqtt_url,
    base,
    start_client,
    tcp_proxy,
):
    topic = f"{base}/hub/availability"
    proxy = tcp_proxy(mqtt_url)
    try:
        client = start_client(proxy.url_for(mqtt_url), availability_topic=topic)
        assert retained(mqtt_url, topic) == "online"

        proxy.cut()  # no DISCONNECT reaches the broker: it publishes the will
        wait_for(lambda: retained(mqtt_url, topic) == "offline", timeout=WAIT, what="the broker's last will")

        proxy.restore()
        assert client.wait_until_ready(WAIT), "no reconnect"
        assert retained(mqtt_url, topic) == "online"
    finally:
        clear_retained(mqtt_url, topic)


# A sync hook runs through database_sync_to_async, which checks this thread's DB connection: allow it.
@pytest.mark.django_db(transaction=True)
def test_connect_hooks_run_after_every_connection_and_a_failing_one_does_not_stop_the_others(
    mqtt_url,
    base,
    registry,
    start_client,
    tcp_proxy,
    caplog,
):
    calls = Inbox()

    def failing(client: MqttClient) -> None:
        raise RuntimeError("this hook fails")

    async def greeting(client: MqttClient) -> None:
        calls.put(client.state.connects)
        client.publish(f"{base}/greeting", f"hello {client.state.connects}", qos=1, retain=True)

    registry.on_connect(failing)
    registry.on_connect(greeting)
    proxy = tcp_proxy(mqtt_url)
    try:
        client = start_client(proxy.url_for(mqtt_url), run_handlers=True)
        assert calls.take() == 1
        proxy.cut()
        wait_for(lambda: not client.connected, timeout=WAIT, what="the client to notice the cut")
        proxy.restore()
        assert calls.take() == 2
        wait_for(lambda: retained(mqtt_url, f"{base}/greeting") == "hello 2", timeout=WAIT, what="the hook's publish")
        assert "MQTT connect hook" in caplog.text
        assert "this hook fails" in caplog.text
    finally:
        clear_retained(mqtt_url, f"{base}/greeting")


def test_a_client_without_run_handlers_runs_no_connect_hooks(mqtt_url, registry, start_client):
    calls = Inbox()
    registry.on_connect(lambda client: calls.put("ran"))
    start_client(mqtt_url)
    assert calls.drain() == []


def test_the_bridge_announces_the_hub_on_the_topic_its_registry_names(mqtt_url, base):
    topic = f"{base}/hub/availability"
    own_registry = HandlerRegistry()
    own_registry.availability_from(lambda: topic)
    bridge = MqttBridge(
        mqtt_url=mqtt_url,
        filters=[f"{base}/#"],
        fanout=_no_browsers,
        registry=own_registry,
        consume_events=False,
        receive_browser_publishes=False,
        timings=BridgeTimings(heartbeat_interval=3600, mqtt=MqttTimings(keepalive=5, retry_initial=0.05)),
    )
    bridge.start()
    try:
        assert bridge.wait_until_ready(WAIT + 5), "the bridge did not get ready"
        assert bridge.client.availability_topic == topic
        assert retained(mqtt_url, topic) == "online"
        bridge.stop(timeout=WAIT)
        assert retained(mqtt_url, topic) == "offline"
    finally:
        bridge.stop(timeout=WAIT)
        clear_retained(mqtt_url, topic)


def test_an_availability_provider_that_fails_leaves_the_bridge_without_one(caplog):
    own_registry = HandlerRegistry()

    def broken() -> str:
        raise LookupError("no database here")

    own_registry.availability_from(broken)
    assert own_registry.availability_topic() is None
    assert "no database here" in caplog.text
    own_registry.availability_from(lambda: "hub/+/availability")
    assert own_registry.availability_topic() is None, "a wildcard is no topic to publish on"


async def _no_browsers(topic, payload, *, retain, received_at) -> None:
    """The bridge's fan-out to browsers, which these tests do not look at."""
