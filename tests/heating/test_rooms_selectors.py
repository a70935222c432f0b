"""What a room tile shows (room_state), the house as the home page reads it (rooms_overview), and the house row."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User

from heating.models import Alert, AlertKind, Decision, Node, Reading
from heating.selectors import house, room_state, rooms_overview
from heating.services import (
    house_away_set,
    room_boost,
    room_create,
    room_heaters_set,
    room_mode_set,
    room_target_set,
    schedule_replace,
)
from heating.thermostat.schedule import expand
from hub.env import parse_hub_id
from tests.heating.support import WEDNESDAY_10

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, pytest.mark.usefixtures("house_in_utc")]


@pytest.fixture
def living(heater_node):
    room = room_create(slug="living", name="Living room", temperature_node=heater_node)
    room_heaters_set(room=room, heaters=[(heater_node, "Heating", 1500)])
    return room


def reading(node: Node, name: str, value, at: datetime) -> None:
    register = {"RoomTemp": 11, "Heating": 12}[name]
    Reading.objects.create(node=node, endpoint_id=f"161.{register}.0", name=name, value=value, recorded_at=at)


def test_the_house_row_keeps_one_random_hub_id(settings):
    settings.HUB_ID = ""
    first = house().hub_id
    assert first
    assert house().hub_id == first


def test_hub_id_setting_wins(settings):
    settings.HUB_ID = ""
    house()
    settings.HUB_ID = "attic"
    assert house().hub_id == "attic"


@pytest.mark.parametrize("value", ["", "Attic", "attic.1", "a" * 33, "hub id"])
def test_hub_id_is_read_strictly(value):
    with pytest.raises(ValueError, match="1 to 32"):
        parse_hub_id(value)
    assert parse_hub_id("attic_2-b") == "attic_2-b"


def test_a_room_shows_its_temperature_target_heater_and_next_change(heater_node, living):
    schedule_replace(room=living, blocks=expand("every_day", "17:00", "22:00", temperature=19.5))
    reading(heater_node, "RoomTemp", 18.24, WEDNESDAY_10 - timedelta(minutes=5))
    reading(heater_node, "Heating", True, WEDNESDAY_10 - timedelta(minutes=4))
    state = room_state(living, at=WEDNESDAY_10)
    assert state["temperature"] == 18.24
    assert state["temperature_at"] == "2026-12-02T09:55:00.000Z"
    assert not state["stale"]
    assert (state["target"], state["mode"], state["source"]) == (18.0, "schedule", "schedule")
    assert state["heating"] is True
    assert state["next_change"] == "19.5 °C at 17:00"


def test_a_temperature_older_than_the_stale_time_is_stale(settings, heater_node, living):
    settings.HEATING_SENSOR_STALE_SECONDS = 2100
    reading(heater_node, "RoomTemp", 20.0, WEDNESDAY_10 - timedelta(seconds=2101))
    assert room_state(living, at=WEDNESDAY_10)["stale"]
    assert room_state(living, at=WEDNESDAY_10 - timedelta(seconds=2))["stale"] is False


def test_a_room_never_heard_is_stale_with_no_temperature(living):
    state = room_state(living, at=WEDNESDAY_10)
    assert (state["temperature"], state["stale"], state["heating"]) == (None, True, None)


def test_the_relay_state_comes_from_the_register_when_no_reading_has_it(heater_node, living):
    Node.objects.filter(pk=heater_node.pk).update(registers={"12": "00"})
    living.refresh_from_db()
    assert room_state(living, at=WEDNESDAY_10)["heating"] is False


def test_the_last_decision_and_open_alerts_show(living):
    Decision.objects.create(room=living, at=WEDNESDAY_10, heat=False, reason="off: sensor stale")
    Alert.objects.create(room=living, kind=AlertKind.SENSOR_STALE, message="No temperature", raised_at=WEDNESDAY_10)
    Alert.objects.create(
        room=living, kind=AlertKind.FROST, message="cold", raised_at=WEDNESDAY_10, cleared_at=WEDNESDAY_10
    )
    state = room_state(living, at=WEDNESDAY_10)
    assert state["decision"] == "off: sensor stale"
    assert [(alert["kind"], alert["title"]) for alert in state["alerts"]] == [("sensor_stale", "no temperature")]


def test_an_override_boost_and_away_show_where_the_target_comes_from(living):
    schedule_replace(room=living, blocks=expand("every_day", "17:00", "22:00", preset="comfort"))
    living = room_target_set(room=living, target=22.5, origin="test", at=WEDNESDAY_10)
    state = room_state(living, at=WEDNESDAY_10)
    assert (state["target"], state["source"], state["next_change"]) == (22.5, "override", "21.0 °C at 17:00")
    living = room_boost(room=living, minutes=30, origin="test", at=WEDNESDAY_10)
    state = room_state(living, at=WEDNESDAY_10)
    assert (state["source"], state["boost"], state["next_change"]) == ("boost", True, "22.5 °C at 10:30")
    house_away_set(away=True, origin="test", at=WEDNESDAY_10)
    assert room_state(living, at=WEDNESDAY_10 + timedelta(hours=1))["source"] == "away"


def test_the_overview_lets_the_household_control(household_user, living):
    overview = rooms_overview(user=household_user, at=WEDNESDAY_10)
    assert overview["can_control"]
    assert overview["control_hint"] is None
    assert [room["id"] for room in overview["rooms"]] == ["living"]
    assert overview["house"]["zone"] == "UTC"


def test_a_user_without_control_is_told_who_can_give_it(staff_user, living):
    guest = User.objects.create_user("guest")
    overview = rooms_overview(user=guest, at=WEDNESDAY_10)
    assert not overview["can_control"]
    assert overview["control_hint"] == (
        "Ask a staff member (bob) to add you to the household group to change targets and schedules."
    )
    room_mode_set(room=living, mode="off", origin="test")
    assert overview["rooms"][0]["mode"] == "schedule"  # a snapshot, not a live object
