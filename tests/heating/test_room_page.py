"""A room's page (/rooms/<id>/), server side: who may open it, what a user without heating.control sees instead
of the schedule editor, and what the page's state gives its alerts list (who acknowledged what)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from heating.models import Alert, AlertKind, Node, Reading, Room, RoomHeater

pytestmark = pytest.mark.django_db


@pytest.fixture
def living(db):
    """A living room whose heater node reported 21.64 °C a minute ago."""
    heard = timezone.now() - timedelta(minutes=1)
    node = Node.objects.create(address=0xA1, manufacturer_id=72, product_id=1, name="Living heater", location="living")
    Reading.objects.create(node=node, endpoint_id="161.11.0", name="RoomTemp", value=21.64, unit="C", recorded_at=heard)
    room = Room.objects.create(
        slug="living", name="Living room", temperature_node=node, temperature_endpoint="RoomTemp", mode="schedule"
    )
    RoomHeater.objects.create(room=room, node=node, endpoint="Heating", power_w=1500)
    return room


@pytest.fixture
def guest(db):
    """Carol: signed in, in no group, so without heating.control."""
    return User.objects.create_user("carol", password="x-long-password-1")


def test_a_household_member_opens_a_room_with_its_chart_and_schedule_editor(client_as, household_user, living):
    page = client_as(household_user).get("/rooms/living/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "<title>Living room" in html
    assert "21.6 °C" in html
    assert 'data-history-url="/v1/rooms/living/history"' in html
    assert 'data-testid="schedule-editor"' in html
    assert 'data-testid="control-hint"' not in html


def test_an_unknown_room_is_not_found(client_as, household_user, living):
    client = client_as(household_user)

    assert client.get("/rooms/attic/").status_code == 404
    assert client.get("/rooms/attic/state").status_code == 404


def test_the_room_page_needs_a_sign_in(client, living):
    answer = client.get("/rooms/living/")

    assert answer.status_code == 302
    assert answer["Location"].startswith("/accounts/login/") or "login" in answer["Location"]
    assert "next=/rooms/living/" in answer["Location"]


def test_without_heating_control_there_is_no_editor_but_a_line_saying_who_can_give_it(
    client_as, guest, staff_user, living
):
    html = client_as(guest).get("/rooms/living/").content.decode()

    assert "21.6 °C" in html  # the state is there
    assert 'data-testid="schedule-editor"' not in html
    assert 'data-testid="room-target-up"' not in html
    hint = html.split('data-testid="control-hint">', 1)[1].split("</p>", 1)[0]
    assert "bob" in hint  # the staff member who can give control
    assert "household group" in hint


def test_the_alerts_list_knows_which_alert_to_acknowledge_and_who_did(client_as, household_user, living):
    alert = Alert.objects.create(
        room=living, kind=AlertKind.SENSOR_STALE, message="No temperature for 40 min", raised_at=timezone.now()
    )
    client = client_as(household_user)
    (shown,) = client.get("/rooms/living/state").json()["alert_history"]
    assert shown["id"] == alert.pk
    assert shown["acknowledged_at"] is None

    assert client.post(f"/v1/alerts/{alert.pk}/acknowledge", content_type="application/json").status_code == 200

    (shown,) = client.get("/rooms/living/state").json()["alert_history"]
    assert shown["acknowledged_at"] is not None
    assert shown["acknowledged_by"] == "Alice Liddell"
    assert shown["cleared_at"] is None  # seen, still open until its cause is over


def test_a_user_without_control_cannot_acknowledge(client_as, guest, living):
    alert = Alert.objects.create(
        room=living, kind=AlertKind.SENSOR_STALE, message="No temperature for 40 min", raised_at=timezone.now()
    )
    client = client_as(guest)

    assert client.get("/rooms/living/state").json()["can_control"] is False
    assert client.post(f"/v1/alerts/{alert.pk}/acknowledge", content_type="application/json").status_code == 403
    alert.refresh_from_db()
    assert alert.acknowledged_at is None
