"""The household's pages, server side: the home page is the house (a tile per room), a room page, the staff's
Devices page with labels from the device definitions, and each page's JSON state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from heating.models import Alert, AlertKind, Command, Decision, Node, Reading, Room, RoomHeater, ScheduleBlock
from hub.services import heartbeat_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def household(client_as, household_user):
    client_as(household_user)
    return household_user


@pytest.fixture
def living(db):
    """A living room whose heater node reported 21.64 °C a minute ago, relay on."""
    heard = timezone.now() - timedelta(minutes=1)
    node = Node.objects.create(
        address=0xA1, manufacturer_id=72, product_id=1, name="Living room heater", location="living", reachable=True
    )
    Reading.objects.create(node=node, endpoint_id="161.11.0", name="RoomTemp", value=21.64, unit="C", recorded_at=heard)
    Reading.objects.create(node=node, endpoint_id="161.12.0", name="Heating", value=True, recorded_at=heard)
    room = Room.objects.create(
        slug="living",
        name="Living room",
        temperature_node=node,
        temperature_endpoint="RoomTemp",
        mode="manual",
        manual_target=21.0,
    )
    RoomHeater.objects.create(room=room, node=node, endpoint="Heating", power_w=1500)
    return room


def radio_up():
    from heating.services import WORKER_HEARTBEAT

    heartbeat_record(name=WORKER_HEARTBEAT, interval_seconds=15, details={"link_up": True, "detail": "modem ok"})


def test_every_page_and_state_needs_a_sign_in(client, living):
    for path in ["/", "/rooms/state", "/rooms/living/", "/rooms/living/state", "/devices/", "/devices/state"]:
        assert client.get(path).status_code == 302, path


def test_the_home_page_is_a_tile_per_room_with_the_temperature_to_one_decimal(client, household, living):
    radio_up()
    html = client.get("/").content.decode()
    assert 'data-room="living"' in html
    assert "21.6 °C" in html
    assert "21.64" not in html.split("rooms-data")[0]  # the page shows one decimal, never the raw reading
    assert "Heating now" in html
    assert "Manual" in html
    assert "Open Heating" not in html  # the dashboard's link cards are gone
    assert 'data-testid="room-target-up"' in html  # household has heating.control


def test_the_state_has_what_a_tile_shows(client, household, living):
    radio_up()
    state = client.get("/rooms/state").json()
    (tile,) = state["rooms"]
    assert tile["temperature_text"] == "21.6 °C"
    assert tile["target_text"] == "21.0 °C"
    assert (tile["mode"], tile["mode_text"]) == ("manual", "Manual")
    assert (tile["heating"], tile["heating_text"]) == (True, "Heating now")
    assert (tile["stale"], tile["stale_text"]) == (False, "")
    assert (tile["target_min"], tile["target_max"]) == (7.0, 29.0)
    assert state["radio"] == {"ok": True, "message": "", "since": state["radio"]["since"]}
    assert state["can_control"] is True


def test_a_user_without_control_sees_the_state_and_who_can_give_them_control(client, client_as, living, staff_user):
    viewer = User.objects.create_user("carol", password="x-long-password-1")
    client_as(viewer)
    html = client.get("/").content.decode()
    assert "21.6 °C" in html
    assert 'data-testid="room-target-up"' not in html
    assert 'data-testid="control-hint"' in html
    assert "bob" in html  # the staff member who can give control
    assert client.get("/rooms/state").json()["can_control"] is False


def test_a_stale_sensor_and_a_silent_radio_are_said_in_words(client, household, living):
    Reading.objects.filter(name="RoomTemp").update(recorded_at=timezone.now() - timedelta(hours=2))
    state = client.get("/rooms/state").json()
    (tile,) = state["rooms"]
    assert tile["stale"] is True
    assert tile["stale_text"] == "No reading since"
    assert state["radio"]["ok"] is False
    assert "radio" in state["radio"]["message"]
    html = client.get("/").content.decode()
    assert "No reading since" in html
    assert "is-stale" in html


def test_an_old_heartbeat_is_not_believed_even_if_it_said_link_up(client, household, living):
    from hub.models import Heartbeat

    radio_up()
    Heartbeat.objects.update(beat_at=timezone.now() - timedelta(minutes=10))
    state = client.get("/rooms/state").json()
    assert state["radio"]["ok"] is False
    assert state["radio"]["message"] == (
        "The hub's radio stopped reporting: temperatures and heaters are not updating."
    )


def test_open_alerts_show_on_the_tile(client, household, living):
    Alert.objects.create(
        room=living, kind=AlertKind.SENSOR_STALE, message="No temperature for 40 min", raised_at=timezone.now()
    )
    (tile,) = client.get("/rooms/state").json()["rooms"]
    assert tile["alerts"] == [{"kind": "sensor_stale", "message": "No temperature for 40 min", "acknowledged": False}]
    assert "No temperature for 40 min" in client.get("/").content.decode()


def test_a_room_page_has_its_tile_week_decisions_and_alerts(client, household, living):
    ScheduleBlock.objects.create(room=living, weekday=0, start_minute=6 * 60, end_minute=8 * 60 + 30, preset="comfort")
    Decision.objects.create(
        room=living, at=timezone.now(), heat=True, reason="on: below target", target=21.0, temperature=20.2
    )
    page = client.get("/rooms/living/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Living room" in html
    assert "21.6 °C" in html
    state = client.get("/rooms/living/state").json()
    assert state["schedule"] == [
        {"weekday": 0, "start": "06:00", "end": "08:30", "preset": "comfort", "temperature": None}
    ]
    assert state["decisions"][0]["reason"] == "on: below target"
    assert state["decisions"][0]["temperature_text"] == "20.2 °C"
    assert client.get("/rooms/nowhere/").status_code == 404


def test_the_old_heating_page_sends_people_home(client, household):
    response = client.get("/heating/")
    assert (response.status_code, response["Location"]) == (301, "/")


def test_devices_are_for_staff(client, household):
    assert client.get("/devices/").status_code == 403
    assert client.get("/devices/state").status_code == 403


def test_devices_list_nodes_with_human_labels_units_signal_state_and_the_link(client, client_as, staff_user):
    client_as(staff_user)
    node = Node.objects.create(
        address=0xA1, manufacturer_id=72, product_id=1, location="study", last_rssi=-70.0, last_lqi=33, system_state=2
    )
    Node.objects.create(address=0x33, manufacturer_id=9, product_id=9, unknown_product=True)
    Reading.objects.create(
        node=node, endpoint_id="161.11.0", name="RoomTemp", value=18.0, unit="C", recorded_at=timezone.now()
    )
    Command.objects.create(
        node=node,
        endpoint="Heating",
        register_id=12,
        value="01",
        requested_value=1,
        requested_at=timezone.now(),
        state="failed",
        error="no STATUS confirmed it after 4 attempts",
    )
    state = client.get("/devices/state").json()
    assert state["link"]["up"] is False  # no worker has reported
    assert state["radio"]["ok"] is False
    assert state["can_switch"] is True  # staff may send commands
    stranger, heater = state["nodes"]  # by address
    assert heater["location"] == "study"
    assert heater["state"] == "asleep"
    assert (heater["rssi"], heater["lqi"]) == (-70.0, 33)
    value = heater["values"][0]
    assert (value["name"], value["label"]) == ("RoomTemp", "Room temperature")  # the definition's name for people
    assert (value["value"], value["unit"]) == (18.0, "°C")
    assert heater["switches"] == ["Heating", "Manual"]
    assert heater["last_command"]["state"] == "failed"
    assert stranger["device"] == "unknown product 9/9"
    assert stranger["location"] == "unassigned"
    page = client.get("/devices/")
    assert page.status_code == 200
    assert b"heating-data" in page.content


def test_can_switch_follows_the_permission(client, client_as):
    viewer = User.objects.create_user("dora", password="x-long-password-1", is_staff=True)
    client_as(viewer)
    assert client.get("/devices/state").json()["can_switch"] is False
    viewer.user_permissions.add(Permission.objects.get(codename="send_commands", content_type__app_label="hub"))
    assert client.get("/devices/state").json()["can_switch"] is True


def test_a_relay_that_heats_a_room_is_the_thermostats_not_a_switch(client, client_as, staff_user, living):
    client_as(staff_user)
    (node,) = client.get("/devices/state").json()["nodes"]
    assert node["switches"] == ["Manual"]  # no raw switch for the relay: the API would refuse it (409)
    assert node["heats"] == [
        {"endpoint": "Heating", "label": "Heater relay", "room": "living", "room_name": "Living room"}
    ]
