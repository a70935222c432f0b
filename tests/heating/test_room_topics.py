"""A room on MQTT without a broker: its state topics' payloads, its Home Assistant discovery config (checked against
Home Assistant's documented MQTT climate keys, kept in ha_mqtt_climate_keys.json), the events a change and a
reading publish, and the set topics' handler (from the broker and from /ws/push)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from django.utils import timezone

from heating import room_topics
from heating.models import House, Mode, Node, Room, RoomHeater
from heating.mqtt_handlers import room_set_received
from heating.services import (
    ReadingInput,
    house_away_set,
    readings_record,
    room_create,
    room_delete,
    room_mode_set,
    room_target_set,
    room_update,
)
from heating.swap import DefinitionLibrary
from heating.swap.definitions import SHIPPED_DEVICES_DIR
from messaging import mqtt, push
from messaging.models import OutboxEvent
from messaging.push.grants import PushRefused
from messaging.topic_rules import expand_home

HA = json.loads((Path(__file__).parent / "ha_mqtt_climate_keys.json").read_text())
HUB = "testhub"


@pytest.fixture
def hub_id(settings):
    settings.HUB_ID = HUB
    return HUB


def room(slug: str = "living", **fields) -> Room:
    return Room.objects.create(slug=slug, name=fields.pop("name", "Living room"), **fields)


def outbox(event_type: str = room_topics.STATE_EVENT) -> dict[str, object]:
    """Each topic's last payload among the queued events of ``event_type`` (retained, as the bridge publishes them)."""
    found: dict[str, object] = {}
    for row in OutboxEvent.objects.filter(type=event_type).order_by("id"):
        assert row.retain, f"{row.topics} is published retained"
        for topic in row.topics:
            found[topic] = row.data
    return found


# --- Home Assistant's discovery config --------------------------------------------------------------------


@pytest.mark.django_db
def test_the_discovery_config_uses_only_keys_home_assistant_documents_with_values_it_accepts(settings, hub_id):
    settings.MQTT_HOME_PREFIX = "/home"
    config = room_topics.discovery_config(room(), hub=hub_id)

    assert set(config) <= set(HA["climate_keys"]), sorted(set(config) - set(HA["climate_keys"]))
    assert set(config["device"]) <= set(HA["device_keys"]), sorted(set(config["device"]) - set(HA["device_keys"]))
    assert set(config["modes"]) <= set(HA["modes"])
    assert HA["preset_none"] not in config["preset_modes"], "Home Assistant refuses a config listing 'none'"
    assert config["precision"] in HA["precisions"]
    assert config["temperature_unit"] in HA["temperature_units"]
    assert config["unique_id"] == "testhub_living"
    assert config["device"]["identifiers"] == ["testhub_living"]
    assert config["availability_topic"] == "hub/testhub/availability"
    assert {key: value for key, value in config.items() if key.endswith("_topic")} == {
        "availability_topic": "hub/testhub/availability",
        "current_temperature_topic": "/home/living/temperature",
        "temperature_state_topic": "/home/living/target",
        "temperature_command_topic": "/home/living/target/set",
        "mode_state_topic": "/home/living/mode",
        "mode_command_topic": "/home/living/mode/set",
        "preset_mode_state_topic": "/home/living/preset",
        "preset_mode_command_topic": "/home/living/preset/set",
        "action_topic": "/home/living/heating",
    }
    assert (config["modes"], config["preset_modes"], config["temp_step"]) == (
        ["off", "heat", "auto"],
        ["boost", "away"],
        0.5,
    )


@pytest.mark.django_db
def test_the_discovery_config_offers_targets_from_the_rooms_frost_to_its_maximum_less_one(hub_id):
    House.objects.create(pk=1, frost=6.0, maximum=28.0)
    assert _limits(room("hall")) == (6.0, 27.0)
    assert _limits(room("attic", frost=8.5, maximum=33.0)) == (8.5, 32.0)


def _limits(the_room: Room) -> tuple[float, float]:
    config = room_topics.discovery_config(the_room, hub=HUB)
    return config["min_temp"], config["max_temp"]


@pytest.mark.django_db
def test_the_hub_id_names_the_availability_topic_and_the_discovery_topic(settings):
    settings.HUB_ID = ""
    made = room_topics.hub_id()
    assert made
    assert made == room_topics.hub_id(), "a random id is made once and kept"
    settings.HUB_ID = "home"
    assert room_topics.availability_topic() == "hub/home/availability"
    assert room_topics.discovery_topic("kitchen") == "homeassistant/climate/home_kitchen/config"


# --- state payloads ----------------------------------------------------------------------------------------


def state(**fields) -> dict:
    base = {"temperature": 20.1, "target": 21.0, "mode": Mode.SCHEDULE, "source": "schedule", "boost": False}
    return base | {"heating": None} | fields


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, {"temperature": 20.1, "target": 21.0, "mode": "auto", "heating": "idle", "preset": "none"}),
        ({"mode": Mode.MANUAL, "source": "manual", "heating": True}, {"mode": "heat", "heating": "heating"}),
        ({"mode": Mode.OFF, "source": "off", "target": None}, {"mode": "off", "target": "None", "heating": "off"}),
        # Frost protection heats a room that is off: Home Assistant shows it heating.
        ({"mode": Mode.OFF, "source": "off", "target": None, "heating": True}, {"heating": "heating"}),
        ({"source": "boost", "boost": True}, {"preset": "boost"}),
        ({"source": "away", "target": 16.0}, {"preset": "away", "target": 16.0}),
        ({"temperature": 21.639999999999997}, {"temperature": 21.64}),
    ],
)
def test_state_topics_carry_what_home_assistants_climate_reads(fields, expected):
    payloads = room_topics.state_payloads(state(**fields))
    assert {level: payloads[level] for level in expected} == expected
    assert payloads["heating"] in HA["actions"]
    assert payloads["mode"] in HA["modes"]


def test_a_room_without_a_temperature_publishes_none_on_that_topic():
    assert "temperature" not in room_topics.state_payloads(state(temperature=None))


# --- events ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_new_room_publishes_its_state_and_its_discovery_config_retained(settings, hub_id):
    settings.MQTT_HOME_PREFIX = "/home"
    the_room = room(mode=Mode.MANUAL, manual_target=20.5)
    import messaging

    messaging.publish_many(room_topics.room_changed_events(the_room, at=timezone.now(), changed=["created"]))

    assert outbox() == {
        "/home/living/target": 20.5,
        "/home/living/mode": "heat",
        "/home/living/heating": "idle",
        "/home/living/preset": "none",
    }
    config = outbox(room_topics.DISCOVERY_EVENT)["homeassistant/climate/testhub_living/config"]
    assert config["unique_id"] == "testhub_living"


@pytest.mark.django_db
def test_a_target_change_does_not_resend_the_discovery_config(hub_id):
    import messaging

    messaging.publish_many(room_topics.room_changed_events(room(), at=timezone.now(), changed=["target"]))
    assert outbox()
    assert not outbox(room_topics.DISCOVERY_EVENT)


@pytest.mark.django_db
def test_a_renamed_room_clears_its_old_topics_and_config_and_publishes_the_new_ones(settings, hub_id):
    settings.MQTT_HOME_PREFIX = "/home"
    the_room = room("lounge")
    import messaging

    messaging.publish_many(
        room_topics.room_changed_events(the_room, at=timezone.now(), changed=["slug"], previous_slug="living")
    )

    states = outbox()
    for level in room_topics.STATE_LEVELS:
        assert states[f"/home/living/{level}"] == "", f"/home/living/{level} is cleared"
    assert states["/home/lounge/mode"] == "auto"
    configs = outbox(room_topics.DISCOVERY_EVENT)
    assert configs["homeassistant/climate/testhub_living/config"] == ""
    assert configs["homeassistant/climate/testhub_lounge/config"]["unique_id"] == "testhub_lounge"


@pytest.mark.django_db
def test_a_reading_of_a_rooms_temperature_source_and_of_its_heater_publish_its_temperature_and_heating(
    settings, hub_id
):
    settings.MQTT_HOME_PREFIX = "/home"
    definition = DefinitionLibrary.load(SHIPPED_DEVICES_DIR).get(72, 1)
    heater = Node.objects.create(
        address=0xA1, manufacturer_id=72, product_id=1, definition="heater/Room heater", location="living"
    )
    stranger = Node.objects.create(
        address=0xA2, manufacturer_id=72, product_id=1, definition="heater/Room heater", location="hall"
    )
    the_room = room(temperature_node=heater, temperature_endpoint="RoomTemp", mode=Mode.MANUAL, manual_target=21)
    RoomHeater.objects.create(room=the_room, node=heater, endpoint="Heating")
    now = timezone.now()

    readings_record(
        readings=[
            ReadingInput(node=heater, endpoint=definition.endpoint("RoomTemp"), value=19.87, at=now),
            ReadingInput(node=heater, endpoint=definition.endpoint("Heating"), value=1, at=now),
            ReadingInput(node=stranger, endpoint=definition.endpoint("RoomTemp"), value=5.0, at=now),
        ]
    )
    assert outbox() == {"/home/living/temperature": 19.87, "/home/living/heating": "heating"}

    readings_record(readings=[ReadingInput(node=heater, endpoint=definition.endpoint("Heating"), value=0, at=now)])
    assert outbox()["/home/living/heating"] == "idle"


# --- through the rooms' services ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_rooms_services_keep_its_topics_current_renaming_moves_them_and_deleting_clears_them(settings, hub_id):
    settings.MQTT_HOME_PREFIX = "/home"
    the_room = room_create(slug="living", name="Living room")
    assert outbox(room_topics.DISCOVERY_EVENT)["homeassistant/climate/testhub_living/config"]["unique_id"] == (
        "testhub_living"
    )
    room_mode_set(room=the_room, mode=Mode.MANUAL, origin="test")
    room_target_set(room=the_room, target=22.5, origin="test")
    assert {level: outbox()[f"/home/living/{level}"] for level in ("target", "mode", "preset", "heating")} == {
        "target": 22.5,
        "mode": "heat",
        "preset": "none",
        "heating": "idle",
    }
    house_away_set(away=True, origin="test")
    assert outbox()["/home/living/preset"] == "away"

    room_update(room=the_room, slug="lounge")
    states, configs = outbox(), outbox(room_topics.DISCOVERY_EVENT)
    assert [states[f"/home/living/{level}"] for level in room_topics.STATE_LEVELS] == [""] * 5
    assert configs["homeassistant/climate/testhub_living/config"] == ""
    assert configs["homeassistant/climate/testhub_lounge/config"]["unique_id"] == "testhub_lounge"
    assert states["/home/lounge/target"] == 16.0, "the house is away: the away temperature applies"

    room_delete(room=Room.objects.get(slug="lounge"))
    assert not Room.objects.exists()
    assert outbox(room_topics.DISCOVERY_EVENT)["homeassistant/climate/testhub_lounge/config"] == ""
    assert outbox()["/home/lounge/mode"] == ""


# --- the set topics ----------------------------------------------------------------------------------------


def dispatch(topic: str, payload: bytes | str, **fields) -> None:
    data = payload.encode() if isinstance(payload, str) else payload
    asyncio.run(mqtt.handlers.dispatch(mqtt.MqttMessage(topic=topic, payload=data, qos=1, **fields)))


@pytest.mark.django_db(transaction=True)
def test_home_assistants_commands_set_the_rooms_target_mode_and_preset(settings, hub_id):
    prefix = settings.MQTT_HOME_PREFIX
    the_room = room(mode=Mode.MANUAL, manual_target=20.0)

    dispatch(f"{prefix}/living/target/set", "21.5")
    the_room.refresh_from_db()
    assert (the_room.mode, the_room.manual_target) == (Mode.MANUAL, 21.5)

    for ha_mode, mode in (("auto", Mode.SCHEDULE), ("off", Mode.OFF), ("heat", Mode.MANUAL)):
        dispatch(f"{prefix}/living/mode/set", ha_mode)
        the_room.refresh_from_db()
        assert the_room.mode == mode, ha_mode

    dispatch(f"{prefix}/living/preset/set", "boost")
    the_room.refresh_from_db()
    assert the_room.boost_until is not None
    assert the_room.boost_until > timezone.now()
    dispatch(f"{prefix}/living/preset/set", "away")
    assert House.objects.get(pk=1).away
    dispatch(f"{prefix}/living/preset/set", "none")
    the_room.refresh_from_db()
    assert the_room.boost_until is None
    assert not House.objects.get(pk=1).away


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("level", "payload", "logged"),
    [
        ("target", "warm", "is not a temperature"),
        ("target", "NaN", "is not a temperature"),
        ("target", "1e400", "is not a temperature"),
        ("target", "[21]", "is not a temperature"),
        ("target", "99", "refused"),
        ("target", "3", "refused"),
        ("target", b"\xff\xfe", "not UTF-8"),
        ("mode", "cool", "is not a mode"),
        ("mode", "manual", "is not a mode"),
        ("preset", "eco", "is not a preset"),
        ("preset", "", "is not a preset"),
    ],
)
def test_a_bad_command_is_logged_and_changes_nothing(settings, hub_id, caplog, level, payload, logged):
    prefix = settings.MQTT_HOME_PREFIX
    the_room = room(mode=Mode.MANUAL, manual_target=20.0)
    before = (the_room.mode, the_room.manual_target, the_room.boost_until)

    with caplog.at_level(logging.WARNING, logger="heating.mqtt_handlers"):
        dispatch(f"{prefix}/living/{level}/set", payload)

    the_room.refresh_from_db()
    assert (the_room.mode, the_room.manual_target, the_room.boost_until) == before
    assert logged in caplog.text
    assert "failed on" not in caplog.text, "ignored, not a handler crash"


@pytest.mark.django_db(transaction=True)
def test_a_command_for_an_unknown_room_or_a_retained_command_is_ignored(settings, hub_id, caplog):
    prefix = settings.MQTT_HOME_PREFIX
    the_room = room(mode=Mode.MANUAL, manual_target=20.0)
    with caplog.at_level(logging.WARNING, logger="heating.mqtt_handlers"):
        dispatch(f"{prefix}/nowhere/target/set", "21")
        dispatch(f"{prefix}/living/target/set", "22", retain=True)
    the_room.refresh_from_db()
    assert the_room.manual_target == 20.0
    assert "there is no room 'nowhere'" in caplog.text
    assert "retained command" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_from_the_browser_a_command_needs_heating_control_and_names_its_author(settings, hub_id, grants_db, memory_bus):
    from tests.messaging.push_support import make_user

    settings.MQTT_URL = None
    prefix = settings.MQTT_HOME_PREFIX
    the_room = room(mode=Mode.MANUAL, manual_target=20.0)
    topic = f"{prefix}/living/target/set"
    # household may publish on the set topics (heating's migration; a transactional test flushed it, so again here)
    # and has heating.control: taken away for the first member.
    import importlib

    from django.apps import apps
    from django.contrib.auth.models import Group, Permission, User

    importlib.import_module("heating.migrations.0004_rooms_from_locations_and_control").grant_control(apps, None)
    household = Group.objects.get(name="household")
    control = Permission.objects.get(content_type__app_label="heating", codename="control")
    household.permissions.remove(control)
    outsider = make_user("olga", "household")
    with pytest.raises(PushRefused, match=r"heating\.control"):
        asyncio.run(push.browser_publish(user=outsider, topic=topic, payload="23"))
    the_room.refresh_from_db()
    assert the_room.manual_target == 20.0

    member = make_user("ivo", "household", perms=("heating.control",))
    asyncio.run(push.browser_publish(user=User.objects.get(pk=member.pk), topic=topic, payload=23))
    the_room.refresh_from_db()
    assert the_room.manual_target == 23.0
    changed = OutboxEvent.objects.filter(type="heating.room_changed").order_by("-id").first()
    assert (changed.data["by"], changed.data["origin"]) == ("ivo", "push")


def test_the_set_topics_are_registered_under_the_house_prefix_and_need_heating_control(settings):
    from messaging.topic_rules import rules_for

    prefix = settings.MQTT_HOME_PREFIX
    for level in ("target", "mode", "preset"):
        topic = f"{prefix}/kitchen/{level}/set"
        assert [s.handler for s in mqtt.handlers.subscriptions_for(topic)] == [room_set_received]
        assert [rule.permission for rule in rules_for(topic, home_prefix=prefix)] == ["heating.control"]
    assert expand_home(room_topics.SET_TOPICS[0], home_prefix=prefix) == f"{prefix}/+/target/set"


# --- changes time alone makes ------------------------------------------------------------------------------


def test_the_thermostats_tick_republishes_the_target_and_preset_only_when_time_changed_them(settings):
    from heating.thermostat.setpoint import Setpoint

    settings.MQTT_HOME_PREFIX = "/home"
    the_room = Room(pk=7, slug="living", name="Living room")
    watch = room_topics.SetpointTopics()
    at = timezone.now()

    def published(point: Setpoint) -> dict:
        return {event.topics[0]: event.data for event in watch.events(the_room, point, at=at)}

    schedule = Setpoint(target=18.0, boost=False, source="schedule", until=None)
    assert published(schedule) == {"/home/living/target": 18.0, "/home/living/preset": "none"}, "first seen"
    assert published(schedule) == {}, "nothing changed: nothing sent"
    assert published(Setpoint(target=21.0, boost=False, source="schedule", until=None)) == {"/home/living/target": 21.0}
    assert published(Setpoint(target=21.0, boost=True, source="boost", until=None)) == {"/home/living/preset": "boost"}
    assert published(Setpoint(target=16.0, boost=False, source="away", until=None)) == {
        "/home/living/target": 16.0,
        "/home/living/preset": "away",
    }
    assert published(Setpoint(target=None, boost=False, source="off", until=None)) == {
        "/home/living/target": "None",
        "/home/living/preset": "none",
    }


@pytest.mark.django_db
def test_the_thermostat_publishes_the_preset_when_a_boost_runs_out(settings, monkeypatch):
    from datetime import timedelta

    from heating.thermostat_runner import ThermostatClock, ThermostatRunner, ThermostatTimings

    settings.MQTT_HOME_PREFIX = "/home"
    room(mode=Mode.MANUAL, manual_target=20.0, boost_until=timezone.now() + timedelta(hours=1))
    clock = {"now": 0.0}
    runner = ThermostatRunner(
        timings=ThermostatTimings(interval=30.0),
        clock=ThermostatClock(now=lambda: clock["now"]),
        send_query=lambda address, register_id: None,
    )
    runner.run_pass()
    assert outbox() == {
        "/home/living/target": 20.0,
        "/home/living/preset": "boost",
        "/home/living/temperature": "None",  # the room has no temperature source: its sensor is stale
    }

    # Two hours later the boost has run out: no service call announces it, the thermostat's next pass does.
    later = timezone.now() + timedelta(hours=2)
    monkeypatch.setattr(timezone, "now", lambda: later)
    clock["now"] = 30.0
    runner.run_pass()
    assert outbox()["/home/living/preset"] == "none"
    assert OutboxEvent.objects.filter(topics=["/home/living/target"]).count() == 1, "the target did not change"


@pytest.mark.django_db
def test_deleting_rooms_in_the_admin_clears_their_topics_and_home_assistant_entities(admin_client, settings, hub_id):
    settings.MQTT_HOME_PREFIX = "/home"
    kitchen, hall, attic = (room_create(slug=slug, name=slug.title()) for slug in ("kitchen", "hall", "attic"))

    response = admin_client.post(f"/admin/heating/room/{kitchen.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    response = admin_client.post(
        "/admin/heating/room/", {"action": "delete_selected", "_selected_action": [hall.pk, attic.pk], "post": "yes"}
    )
    assert response.status_code == 302

    assert not Room.objects.exists()
    configs = outbox(room_topics.DISCOVERY_EVENT)
    for slug in ("kitchen", "hall", "attic"):
        assert configs[f"homeassistant/climate/testhub_{slug}/config"] == "", slug
        assert outbox()[f"/home/{slug}/mode"] == "", slug


def test_a_stale_sensor_empties_the_temperature_once_until_it_is_fresh_again(settings):
    settings.MQTT_HOME_PREFIX = "/home"
    the_room = Room(pk=7, slug="living", name="Living room")
    watch = room_topics.SetpointTopics()
    at = timezone.now()

    def published(stale: bool) -> list:
        return [(event.topics[0], event.data) for event in watch.stale_events(the_room, stale=stale, at=at)]

    assert published(False) == []
    assert published(True) == [("/home/living/temperature", "None")], "Home Assistant: no current temperature"
    assert published(True) == [], "said once"
    assert published(False) == [], "the reading that ended it published the temperature already"
    assert published(True) == [("/home/living/temperature", "None")]
