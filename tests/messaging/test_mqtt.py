"""The MQTT client's parts that need no broker: MQTT_URL, the handler registry, echo tracking, /healthz wiring."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from hub import health
from hub.workers import Backoff
from messaging import mqtt
from messaging.mqtt import HandlerRegistry, MqttClient, MqttMessage, MqttTimings, encode_payload, parse_mqtt_url
from messaging.topics import InvalidTopicError


def test_mqtt_url_gives_host_port_credentials_and_options():
    address = parse_mqtt_url("mqtt://hub%40home:p%3Ass@broker.lan:1884?client_id=hub-1&protocol=3.1.1")
    assert (address.host, address.port, address.tls) == ("broker.lan", 1884, False)
    assert (address.username, address.password) == ("hub@home", "p:ss")
    assert (address.client_id, address.protocol) == ("hub-1", "3.1.1")
    assert str(address) == "mqtt://broker.lan:1884"
    assert "p:ss" not in repr(address)


def test_mqtt_url_default_ports_and_tls():
    assert parse_mqtt_url("mqtt://127.0.0.1").port == 1883
    secure = parse_mqtt_url("mqtts://broker.lan/?ca_certs=/etc/ssl/ca.pem")
    assert (secure.port, secure.tls, secure.ca_certs, secure.protocol) == (8883, True, "/etc/ssl/ca.pem", "5")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://broker:1883", "scheme"),
        ("broker:1883", "scheme"),
        ("mqtt://", "no host"),
        ("mqtt://broker:port", "port"),
        ("mqtt://broker:70000", "port"),
        ("mqtt://broker:1883/some/path", "path"),
        ("mqtt://broker?protocol=4", "protocol"),
        ("mqtt://broker?keepalive=5", "unknown option"),
        ("", "empty"),
    ],
)
def test_a_bad_mqtt_url_is_a_clear_error_naming_the_variable(url, reason):
    with pytest.raises(ImproperlyConfigured, match=reason) as raised:
        parse_mqtt_url(url)
    assert "MQTT_URL" in str(raised.value)


def test_the_error_for_a_bad_url_does_not_show_the_password():
    with pytest.raises(ImproperlyConfigured) as raised:
        parse_mqtt_url("mqtt://hub:s3cret@broker:notaport")
    assert "s3cret" not in str(raised.value)


def test_a_client_without_mqtt_url_refuses_to_exist(settings):
    settings.MQTT_URL = ""
    with pytest.raises(ImproperlyConfigured, match="MQTT_URL"):
        MqttClient()


def test_a_client_that_runs_handlers_needs_a_loop_and_listen_filters_need_a_hook():
    with pytest.raises(ValueError, match="event loop"):
        MqttClient("mqtt://127.0.0.1:1", run_handlers=True)
    with pytest.raises(ValueError, match="on_message"):
        MqttClient("mqtt://127.0.0.1:1", listen=["#"])


def test_registering_a_handler_validates_the_filter_and_only_records_it():
    registry = HandlerRegistry()
    with pytest.raises(InvalidTopicError):
        registry.subscribe("/home/#/action", print)
    with pytest.raises(ValueError, match="qos"):
        registry.subscribe("/home/#", print, qos=3)
    registry.subscribe("/home/+/action/#", print, qos=1)
    registry.subscribe("/home/+/action/#", repr, qos=2)
    registry.subscribe("/home/+/measure/+", print, qos=0)
    assert registry.filters() == {"/home/+/action/#": 2, "/home/+/measure/+": 0}
    assert [s.handler for s in registry.subscriptions_for("/home/kitchen/action/1.12.0")] == [print, repr]
    registry.unsubscribe("/home/+/action/#", print)
    assert [s.handler for s in registry.subscriptions_for("/home/kitchen/action/1.12.0")] == [repr]


def test_apps_register_into_the_module_registry_and_nothing_connects(monkeypatch):
    monkeypatch.setattr(mqtt, "handlers", HandlerRegistry())
    threads_before = threading.active_count()
    assert mqtt.subscribe("/home/+/action/#", print) is print
    assert mqtt.handlers.filters() == {"/home/+/action/#": 1}
    assert threading.active_count() <= threads_before, "registering starts no thread and opens no connection"


def test_a_publish_only_client_subscribes_to_nothing_even_with_handlers_registered():
    registry = HandlerRegistry()
    registry.subscribe("/home/#", print)
    client = MqttClient("mqtt://127.0.0.1:1", registry=registry)
    assert client.broker_filters == []


def test_the_client_waits_between_reconnection_attempts_as_its_backoff_says_and_starts_over_once_connected():
    client = MqttClient("mqtt://127.0.0.1:1", timings=MqttTimings(retry_initial=0.01, retry_max=0.04))
    paho_client = client._paho
    assert (paho_client.backoff.initial, paho_client.backoff.maximum) == (0.01, 0.04)
    draws = iter([1.0, 0.5, 0.0, 1.0])
    paho_client.backoff = Backoff(initial=0.01, maximum=0.04, jitter="full", random=lambda: next(draws))
    waits = []
    for _ in range(3):
        # What paho's loop thread does before each new attempt.
        paho_client._reconnect_wait()
        waits.append(paho_client._reconnect_delay)
    assert waits == [0.01, 0.01, 0.0]
    client._on_connect(paho_client, None, None, ReasonCode(PacketTypes.CONNACK, "Success"), None)
    paho_client._reconnect_wait()
    assert paho_client._reconnect_delay == 0.01


def test_the_broker_gets_the_widest_filters_only_with_the_highest_qos_they_cover():
    registry = HandlerRegistry()
    registry.subscribe("/home/+/action/#", print, qos=1)
    registry.subscribe("$SYS/broker/uptime", print, qos=0)
    loop = asyncio.new_event_loop()
    try:
        client = MqttClient(
            "mqtt://127.0.0.1:1",
            loop=loop,
            registry=registry,
            run_handlers=True,
            listen=["#"],
            listen_qos=0,
            on_message=print,
        )
    finally:
        loop.close()
    assert client.broker_filters == ["#", "$SYS/broker/uptime"]
    assert {s.topic_filter: s.qos for s in client._plan} == {"#": 1, "$SYS/broker/uptime": 0}


# Sync handlers run through database_sync_to_async, which checks this thread's DB connection: allow it.
@pytest.mark.django_db(transaction=True)
async def test_dispatch_runs_every_handler_in_order_and_survives_a_failing_one(caplog):
    registry = HandlerRegistry()
    seen: list[tuple[str, bool]] = []
    loop_thread = threading.get_ident()

    async def first(message: MqttMessage) -> None:
        seen.append(("first", threading.get_ident() == loop_thread))

    def broken(message: MqttMessage) -> None:
        raise RuntimeError("handler bug")

    def last(message: MqttMessage) -> None:
        seen.append(("last", threading.get_ident() == loop_thread))

    for handler in (first, broken, last):
        registry.subscribe("/home/#", handler)
    with caplog.at_level(logging.ERROR, logger="messaging.mqtt"):
        await registry.dispatch(MqttMessage("/home/kitchen/measure/1", b"21.5"))
    # Async handlers on the loop; sync ones off it (through database_sync_to_async), so they may use the ORM.
    assert seen == [("first", True), ("last", False)]
    assert "broken" in caplog.text
    assert "handler bug" in caplog.text


@pytest.mark.parametrize(
    ("payload", "expected"),
    [(b"\x00\xff", b"\x00\xff"), ("21.5 °C", "21.5 °C".encode()), (None, b""), ({"t": 21.5}, b'{"t":21.5}'), (3, b"3")],
)
def test_payload_encoding(payload, expected):
    assert encode_payload(payload) == expected


def test_own_publications_are_forgotten_after_the_window():
    now = [0.0]
    own = mqtt._OwnPublications(window=10.0, track_live=True, clock=lambda: now[0])
    own.record("/a", b"1", retain=False)
    own.record("/a", b"1", retain=False)
    assert own.is_echo("/a", b"1", retained=False)
    assert own.is_echo("/a", b"1", retained=False)
    assert not own.is_echo("/a", b"1", retained=False), "each publication is dropped once, no more"

    own.record("/a", b"2", retain=False)
    now[0] = 11.0
    assert not own.is_echo("/a", b"2", retained=False), "a foreign message after the window gets through"


def test_own_retained_publication_is_recognised_when_the_broker_sends_it_back_later():
    now = [0.0]
    own = mqtt._OwnPublications(window=1.0, track_live=False, clock=lambda: now[0])
    own.record("/state", b"on", retain=True)
    assert not own.is_echo("/state", b"on", retained=False), "MQTT v5: live echoes are the broker's (noLocal)"
    now[0] = 3600.0
    assert own.is_echo("/state", b"on", retained=True)
    assert not own.is_echo("/state", b"off", retained=True)
    own.record("/state", b"", retain=True)
    assert not own.is_echo("/state", b"on", retained=True), "an empty retained payload cleared the topic"


def test_ready_registers_a_non_critical_mqtt_check_only_when_configured(settings):
    config = apps.get_app_config("messaging")
    health.unregister_check("mqtt")
    settings.MQTT_URL = ""
    config.ready()
    assert "mqtt" not in health._checks
    settings.MQTT_URL = "mqtt://127.0.0.1:1883"
    try:
        config.ready()
        assert health._checks["mqtt"].critical is False
    finally:
        health.unregister_check("mqtt")


def test_ready_stops_start_up_on_a_malformed_mqtt_url(settings):
    settings.MQTT_URL = "mqtt://broker:notaport"
    with pytest.raises(ImproperlyConfigured, match="MQTT_URL"):
        apps.get_app_config("messaging").ready()
    health.unregister_check("mqtt")
