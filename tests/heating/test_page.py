"""The Heating page and its state endpoint, server side: sign-in required, what the overview holds."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from heating.models import Command, Node, Reading

pytestmark = pytest.mark.django_db


@pytest.fixture
def household(client_as, household_user):
    client_as(household_user)
    return household_user


def test_the_page_and_its_state_need_a_sign_in(client):
    assert client.get("/heating/").status_code == 302
    assert client.get("/heating/state").status_code == 302


def test_the_state_lists_nodes_with_latest_values_signal_state_and_the_link(client, household):
    from django.utils import timezone

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
    state = client.get("/heating/state").json()
    assert state["link"]["up"] is False  # no worker has reported
    assert state["can_switch"] is False
    stranger, heater = state["nodes"]  # by address
    assert heater["location"] == "study"
    assert heater["state"] == "asleep"
    assert (heater["rssi"], heater["lqi"]) == (-70.0, 33)
    assert heater["values"][0]["name"] == "RoomTemp"
    assert heater["values"][0]["value"] == 18.0
    assert heater["switches"] == ["Heating", "Manual"]
    assert heater["last_command"]["state"] == "failed"
    assert stranger["device"] == "unknown product 9/9"
    assert stranger["location"] == "unassigned"
    page = client.get("/heating/")
    assert page.status_code == 200
    assert b"heating-data" in page.content


def test_can_switch_follows_the_permission(client, household):
    household.user_permissions.add(Permission.objects.get(codename="send_commands", content_type__app_label="hub"))
    assert client.get("/heating/state").json()["can_switch"] is True
