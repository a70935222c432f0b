"""Rooms in the admin: the house's one settings form, a room with its heaters and week (nodes chosen from those
heard, refusals shown on the form), alerts acknowledged in bulk, decisions listed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from heating.models import Alert, AlertKind, Decision, House, Node, Room, RoomHeater, ScheduleBlock
from heating.selectors import house
from heating.services import room_create, room_heaters_set
from messaging.models import OutboxEvent

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def heater():
    return Node.objects.create(
        address=0xA1, manufacturer_id=72, product_id=1, definition="heater/Room heater", name="Lounge heater"
    )


def inline(prefix: str, rows: list[dict], initial: int = 0) -> dict:
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        data.update({f"{prefix}-{index}-{name}": value for name, value in row.items()})
    return data


def room_form(**overrides) -> dict:
    data = {
        "slug": "lounge",
        "name": "Lounge",
        "position": "1",
        "mode": "schedule",
        "temperature_node": "",
        "temperature_endpoint": "",
        "comfort": "",
        "eco": "",
        "away_temperature": "",
        "frost": "",
        "maximum": "",
    }
    return data | overrides


def test_the_house_list_is_its_one_settings_form(admin_client):
    response = admin_client.get("/admin/heating/house/")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/heating/house/{house().pk}/change/"
    page = admin_client.get(response["Location"]).content.decode()
    assert house().hub_id in page


def test_house_presets_are_range_checked_and_saved_through_the_service(admin_client):
    url = f"/admin/heating/house/{house().pk}/change/"
    values = {"comfort": "21", "eco": "18", "away_temperature": "16", "frost": "13", "maximum": "30"}
    refused = admin_client.post(url, values)
    assert refused.status_code == 200
    assert "5\N{EN DASH}12 °C" in refused.content.decode()
    assert House.objects.get().frost == 7.0
    saved = admin_client.post(url, values | {"frost": "8", "away": "on"})
    assert saved.status_code == 302
    assert (house().frost, house().away) == (8.0, True)


def test_a_room_is_set_up_with_a_heard_node_its_heater_and_its_week(admin_client, heater):
    page = admin_client.get("/admin/heating/room/add/").content.decode()
    assert "Lounge heater — a1, heater/Room heater" in page  # chosen from the nodes heard, not typed
    data = room_form(temperature_node=str(heater.pk), temperature_endpoint="RoomTemp")
    data |= inline("heaters", [{"node": str(heater.pk), "endpoint": "Heating", "power_w": "1500"}])
    data |= inline(
        "schedule_blocks",
        [{"weekday": "0", "start": "06:30", "end": "08:00", "preset": "comfort", "temperature": ""}],
    )
    response = admin_client.post("/admin/heating/room/add/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    room = Room.objects.get(slug="lounge")
    assert room.temperature_node == heater
    assert [(h.endpoint, h.power_w) for h in RoomHeater.objects.filter(room=room)] == [("Heating", 1500)]
    assert list(ScheduleBlock.objects.filter(room=room).values_list("start_minute", "end_minute")) == [(390, 480)]
    heater.refresh_from_db()
    assert heater.location == "lounge"
    assert OutboxEvent.objects.filter(type="heating.room_changed", data__room="lounge").exists()


def test_overlapping_blocks_are_refused_on_the_form(admin_client, heater):
    room = room_create(slug="lounge", name="Lounge")
    data = room_form() | inline("heaters", [])
    data |= inline(
        "schedule_blocks",
        [
            {"weekday": "0", "start": "06:30", "end": "08:00", "preset": "comfort", "temperature": ""},
            {"weekday": "0", "start": "07:30", "end": "09:00", "preset": "eco", "temperature": ""},
        ],
    )
    response = admin_client.post(f"/admin/heating/room/{room.pk}/change/", data)
    assert response.status_code == 200
    assert "overlaps block 1" in response.content.decode()
    assert not ScheduleBlock.objects.exists()


def test_a_heater_of_another_room_is_refused_on_the_form(admin_client, heater):
    kitchen = room_create(slug="kitchen", name="Kitchen")
    room_heaters_set(room=kitchen, heaters=[(heater, "Heating", 1000)])
    room = room_create(slug="lounge", name="Lounge")
    data = room_form() | inline("heaters", [{"node": str(heater.pk), "endpoint": "Heating", "power_w": "900"}])
    data |= inline("schedule_blocks", [])
    response = admin_client.post(f"/admin/heating/room/{room.pk}/change/", data)
    assert response.status_code == 200
    assert "heats Kitchen already" in response.content.decode()
    assert not RoomHeater.objects.filter(room=room).exists()


def test_a_reserved_room_id_is_refused_on_its_field(admin_client):
    data = room_form(slug="hub") | inline("heaters", []) | inline("schedule_blocks", [])
    response = admin_client.post("/admin/heating/room/add/", data)
    assert response.status_code == 200
    assert "reserved" in response.content.decode()
    assert not Room.objects.exists()


def test_alerts_are_acknowledged_from_the_list(admin_client, admin_user):
    room = room_create(slug="lounge", name="Lounge")
    alert = Alert.objects.create(room=room, kind=AlertKind.SENSOR_STALE, message="No temperature", raised_at=T0)
    response = admin_client.post(
        "/admin/heating/alert/", {"action": "acknowledge_selected", "_selected_action": [str(alert.pk)]}
    )
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_by == admin_user
    assert alert.cleared_at is None  # open until its condition clears


def test_the_room_alert_and_decision_lists_load(admin_client):
    room = room_create(slug="lounge", name="Lounge")
    Decision.objects.create(room=room, at=T0, heat=True, reason="on: below target", target=21, temperature=19.5)
    for path in ("/admin/heating/room/", "/admin/heating/decision/", "/admin/heating/alert/"):
        response = admin_client.get(path)
        assert response.status_code == 200, path
    assert "on: below target" in admin_client.get("/admin/heating/decision/").content.decode()
