"""A room as Home Assistant sees it on the real Mosquitto: what the broker keeps retained (the discovery config, the
state topics as bare values, the hub's availability), and a command Home Assistant publishes reaching the room."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
from django.utils import timezone

from heating import room_topics
from heating.models import Mode, Room
from heating.mqtt_handlers import room_set_received
from heating.services import room_create, room_mode_set
from messaging.bridge import BridgeTimings, MqttBridge
from messaging.models import OutboxEvent
from messaging.mqtt import HandlerRegistry, MqttTimings
from messaging.topic_rules import expand_home
from tests.messaging.consume_support import make_event
from tests.messaging.test_mqtt_broker import (
    MOSQUITTO_SUB,
    WAIT,
    clear_retained,
    host_port,
    mosquitto_pub,
    mosquitto_sub_one,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.services


def retained(url: str, topic: str) -> str:
    """What the broker keeps on ``topic``, as a foreign subscriber (Home Assistant) receives it; '' for nothing."""
    subscriber = mosquitto_sub_one(url, topic, retained_only=True)
    output, _ = subscriber.communicate(timeout=WAIT + 2)
    return output.rstrip("\n").split(" ", 3)[-1] if output.strip() else ""


def nothing_retained(url: str, topic: str) -> bool:
    """Whether the broker keeps nothing on ``topic``: a retained message arrives at once on subscribing, so a second
    without one (mosquitto_sub's own timeout, exit code 27) means none."""
    command = [MOSQUITTO_SUB, *host_port(url), "-t", topic, "-C", "1", "-W", "1", "--retained-only"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=WAIT, check=False)
    return result.stdout == "" and result.returncode == 27


@pytest.fixture
def house(settings, mqtt_url):
    """This test's own house on the shared broker: its prefix and hub id, and every retained topic cleared after."""
    token = uuid.uuid4().hex[:10]
    settings.MQTT_HOME_PREFIX = f"/test-rooms/{token}"
    settings.HUB_ID = f"t{token}"
    settings.MQTT_URL = mqtt_url
    yield settings
    for level in room_topics.STATE_LEVELS:
        clear_retained(mqtt_url, room_topics.room_topic("living", level))
    clear_retained(mqtt_url, room_topics.discovery_topic("living", settings.HUB_ID))
    clear_retained(mqtt_url, room_topics.availability_topic(settings.HUB_ID))


def start_bridge(mqtt_url: str, registry: HandlerRegistry) -> MqttBridge:
    bridge = MqttBridge(
        mqtt_url=mqtt_url,
        filters=["$none/#"],  # no forwarding to browsers here
        fanout=_no_browsers,
        registry=registry,
        consume_events=False,
        receive_browser_publishes=False,
        timings=BridgeTimings(heartbeat_interval=3600, mqtt=MqttTimings(keepalive=5, retry_initial=0.05)),
    )
    bridge.start()
    assert bridge.wait_until_ready(WAIT + 5), "the bridge did not get ready"
    return bridge


def heating_registry(prefix: str) -> HandlerRegistry:
    """What HeatingConfig.ready registers, on a registry of the test's own (under the test's prefix)."""
    registry = HandlerRegistry()
    for topic_filter in room_topics.SET_TOPICS:
        registry.subscribe(expand_home(topic_filter, home_prefix=prefix), room_set_received)
    registry.availability_from(room_topics.availability_topic)
    registry.on_connect(room_topics.broker_connected)
    return registry


@pytest.mark.django_db(transaction=True)
def test_on_connect_the_bridge_leaves_the_room_discovered_online_and_in_its_state_for_home_assistant(house, mqtt_url):
    the_room = room_create(slug="living", name="Living room")
    room_mode_set(room=the_room, mode=Mode.MANUAL, origin="test")
    bridge = start_bridge(mqtt_url, heating_registry(house.MQTT_HOME_PREFIX))
    try:
        config_topic = f"homeassistant/climate/{house.HUB_ID}_living/config"
        wait_for(lambda: retained(mqtt_url, config_topic), timeout=WAIT, what="the retained discovery config")
        config = json.loads(retained(mqtt_url, config_topic))
        assert config["unique_id"] == f"{house.HUB_ID}_living"
        assert config["availability_topic"] == f"hub/{house.HUB_ID}/availability"
        assert retained(mqtt_url, config["availability_topic"]) == "online"
        assert retained(mqtt_url, config["mode_state_topic"]) == "heat"
        # A bare number: manual mode kept the target that applied (eco, as the room has no schedule blocks).
        assert retained(mqtt_url, config["temperature_state_topic"]) == "18.0"
        assert retained(mqtt_url, config["preset_mode_state_topic"]) == "none"
        assert retained(mqtt_url, config["action_topic"]) == "idle"

        # Home Assistant's command, as it publishes it (not retained).
        mosquitto_pub(mqtt_url, config["temperature_command_topic"], "19.5")
        wait_for(
            lambda: Room.objects.get(slug="living").manual_target == 19.5, timeout=WAIT, what="the target to be set"
        )
        mosquitto_pub(mqtt_url, config["mode_command_topic"], "auto")
        wait_for(lambda: Room.objects.get(slug="living").mode == Mode.SCHEDULE, timeout=WAIT, what="mode auto")
    finally:
        bridge.stop(timeout=WAIT)
    assert retained(mqtt_url, f"hub/{house.HUB_ID}/availability") == "offline"


@pytest.mark.django_db(transaction=True)
def test_the_rooms_events_reach_the_broker_retained_as_bare_values_and_a_rename_clears_them(house, mqtt_url):
    """The bridge publishes an event's data as the payload: a number bare, text as it is, '' clearing the topic."""
    room_create(slug="living", name="Living room")
    bridge = start_bridge(mqtt_url, HandlerRegistry())
    try:
        for row in OutboxEvent.objects.filter(type__in=[room_topics.STATE_EVENT, room_topics.DISCOVERY_EVENT]):
            event = make_event(0, type=row.type, data=row.data, topics=tuple(row.topics), retain=True)
            for _, publication in bridge.event_publish(event):
                assert publication.wait(WAIT)
        assert retained(mqtt_url, room_topics.room_topic("living", "target")) == "18.0"  # eco: no schedule blocks
        assert retained(mqtt_url, room_topics.room_topic("living", "mode")) == "auto"

        at = timezone.now()
        for event in room_topics.room_removed_events("living", at=at, hub=house.HUB_ID):
            for _, publication in bridge.event_publish(event):
                assert publication.wait(WAIT)
        assert nothing_retained(mqtt_url, room_topics.room_topic("living", "target"))
        assert nothing_retained(mqtt_url, room_topics.discovery_topic("living", house.HUB_ID))
    finally:
        bridge.stop(timeout=WAIT)


async def _no_browsers(topic, payload, *, retain, received_at) -> None:
    """The bridge's fan-out to browsers, which these tests do not look at."""
