"""The radio in the admin: nodes with last heard, signal, state and location (name and location editable), the
modem link and decode errors above the list, readings by date, commands with their outcome."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from heating.models import Command, CommandState, Node, Reading
from heating.services import WORKER_HEARTBEAT
from hub.services import heartbeat_record

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


@pytest.fixture
def heater():
    return Node.objects.create(
        address=0xA1,
        manufacturer_id=72,
        product_id=1,
        definition="heater/Room heater",
        last_heard=T0,
        last_rssi=-62.5,
        last_lqi=40,
        system_state=1,
        reachable=True,
    )


def test_the_node_list_shows_signal_state_location_and_the_modem_link(admin_client, heater):
    Node.objects.create(address=0x33, manufacturer_id=0x99, product_id=0x2A, unknown_product=True)
    heartbeat_record(
        name=WORKER_HEARTBEAT,
        interval_seconds=15,
        details={"link_up": False, "detail": "modem on /dev/ttyUSB0 lost: unplugged", "decode_errors": 17},
    )
    page = admin_client.get("/admin/heating/node/").content.decode()
    assert "-62.5 dBm, LQI 40" in page
    assert "rxon" in page
    assert "unassigned" in page
    assert "unknown product 153/42" in page
    assert "Modem link DOWN" in page
    assert "modem on /dev/ttyUSB0 lost: unplugged; 17 decode errors" in page


def test_an_admin_names_a_node_and_gives_it_a_location(admin_client, heater):
    response = admin_client.post(f"/admin/heating/node/{heater.pk}/change/", {"name": "Study", "location": "study"})
    assert response.status_code == 302
    heater.refresh_from_db()
    assert (heater.name, heater.place) == ("Study", "study")
    assert heater.last_rssi == -62.5  # what the radio reported is read-only


def test_readings_by_date_and_commands_with_their_outcome(admin_client, heater):
    Reading.objects.create(node=heater, endpoint_id="161.11.0", name="RoomTemp", value=21.5, unit="C", recorded_at=T0)
    page = admin_client.get("/admin/heating/reading/?recorded_at__year=2026").content.decode()
    assert "161.11.0" in page
    assert "21.5" in page
    assert "recorded_at__month=11" in page  # the date hierarchy drills down from the year to its months
    Command.objects.create(
        node=heater,
        endpoint="Heating",
        register_id=12,
        value="01",
        requested_value=1,
        state=CommandState.FAILED,
        attempts=4,
        requested_at=T0,
        error="no STATUS confirmed it after 4 attempts",
    )
    page = admin_client.get("/admin/heating/command/").content.decode()
    assert "no STATUS confirmed it after 4 attempts" in page
    assert "failed" in page


def test_giving_up_on_a_queued_command_fails_it_with_an_event(admin_client, heater):
    from messaging.models import OutboxEvent

    command = Command.objects.create(
        node=heater, endpoint="Heating", register_id=12, value="01", requested_value=1, requested_at=T0
    )
    admin_client.post(
        "/admin/heating/command/", {"action": "fail_selected", "_selected_action": [command.pk]}, follow=True
    )
    command.refresh_from_db()
    assert command.state == CommandState.FAILED
    assert "given up by admin" in command.error
    assert OutboxEvent.objects.filter(type="heating.command_failed", data__command=command.pk).exists()


def test_a_nodes_page_shows_its_recent_signal(admin_client, heater):
    for second in range(30):
        heater.signal_heard(at=f"2026-11-28T07:00:{second:02d}.000Z", rssi=-50.0 - second, lqi=second)
    heater.save()
    page = admin_client.get(f"/admin/heating/node/{heater.pk}/change/").content.decode()
    assert "Recent signal (last 20 packets, newest first)" in page
    assert "<td>2026-11-28T07:00:29.000Z</td><td>-79 dBm</td><td>29</td>" in page
    assert "2026-11-28T07:00:10.000Z" in page  # the 20th newest …
    assert "2026-11-28T07:00:09.000Z" not in page  # … and no older


def test_saving_a_node_in_the_admin_keeps_what_the_radio_stored_meanwhile(admin_client, heater, monkeypatch):
    from heating.admin import NodeAdmin

    original_save_form = NodeAdmin.save_form

    def worker_stores_a_packet_meanwhile(self, request, form, change):
        # Between the admin reading the row and saving it, the serial worker stores a packet.
        radio = Node.objects.get(pk=heater.pk)
        radio.signal_heard(at="2026-11-28T07:05:00.000Z", rssi=-55.0, lqi=41)
        Node.objects.filter(pk=heater.pk).update(signal_history=radio.signal_history, last_rssi=-55.0)
        return original_save_form(self, request, form, change)

    monkeypatch.setattr(NodeAdmin, "save_form", worker_stores_a_packet_meanwhile)
    response = admin_client.post(f"/admin/heating/node/{heater.pk}/change/", {"name": "Study", "location": "study"})
    assert response.status_code == 302
    heater.refresh_from_db()
    assert (heater.name, heater.location) == ("Study", "study")
    assert heater.last_rssi == -55.0
    assert heater.recent_signal() == [{"at": "2026-11-28T07:05:00.000Z", "rssi": -55.0, "lqi": 41}]
