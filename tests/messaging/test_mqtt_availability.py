"""The hub's presence on the real Mosquitto: a retained ``online`` on connect, ``offline`` on a clean stop, and the
broker's last will ``offline`` when the connection dies without a goodbye (a cut connection: what a killed process
looks like to the broker); and the connect hooks, run after every (re)connect."""

from __future__ import annotations

import pytest

from messaging.bridge import BridgeTimings, MqttBridge
from messaging.mqtt import HandlerRegistry, MqttClient, MqttTimings
from tests.messaging.test_mqtt_broker import (  # noqa: F401 — fixtures
    WAIT,
    Inbox,
    base,
    clear_retained,
    loop_thread,
    mosquitto_sub_one,
    registry,
    start_client,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.services


def retained(url: str, topic: str) -> str:
    """What the broker keeps on ``topic`` (a foreign subscriber's view), '' when it keeps nothing."""
    subscriber = mosquitto_sub_one(url, topic, retained_only=True)
    output, _ = subscriber.communicate(timeout=WAIT + 2)
    return output.strip().split(" ", 3)[-1] if output.strip() else ""


def test_the_client_says_online_while_connected_and_offline_when_it_stops(mqtt_url, base, start_client):  # noqa: F811
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
    base,  # noqa: F811
    start_client,  # noqa: F811
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
    base,  # noqa: F811
    registry,  # noqa: F811
    start_client,  # noqa: F811
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


def test_a_client_without_run_handlers_runs_no_connect_hooks(mqtt_url, registry, start_client):  # noqa: F811
    calls = Inbox()
    registry.on_connect(lambda client: calls.put("ran"))
    start_client(mqtt_url)
    assert calls.drain() == []


def test_the_bridge_announces_the_hub_on_the_topic_its_registry_names(mqtt_url, base):  # noqa: F811
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
