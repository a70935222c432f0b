"""The staff's Devices page in Chromium: nodes with their values (labelled with the device definitions' names for
people and units), signal, last-heard age and state, the modem link; live refresh when a heating event arrives over
/ws/push; switching an output with hub.send_commands (and no switch without it); no "reachable" while the link is
down."""

from __future__ import annotations

import json
from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

WAIT_MS = 10_000


def radio_state():
    from heating.models import Node, Reading
    from heating.services import WORKER_HEARTBEAT
    from hub.services import heartbeat_record

    heard = timezone.now() - timedelta(seconds=5)
    heater = Node.objects.create(
        address=0xA1,
        manufacturer_id=72,
        product_id=1,
        definition="heater/Room heater",
        name="Living room heater",
        location="living",
        first_seen=heard,
        last_heard=heard,
        last_rssi=-62.5,
        last_lqi=40,
        system_state=1,
        reachable=True,
        registers={"12": "00"},
    )
    Reading.objects.create(
        node=heater, endpoint_id="161.11.0", name="RoomTemp", value=19.5, unit="C", recorded_at=heard, rssi=-62.5
    )
    Reading.objects.create(node=heater, endpoint_id="161.12.0", name="Heating", value=False, recorded_at=heard)
    heartbeat_record(
        name=WORKER_HEARTBEAT,
        interval_seconds=15,
        details={"link_up": True, "detail": "modem on socket://127.0.0.1:5331: firmware 101", "decode_errors": 0},
    )
    return heater


def announce(event_type: str, data: dict) -> None:
    """What the events.notify consumer does for a stored event: the envelope to /events/<type as a path>."""
    from messaging import push

    envelope = {"id": "x", "type": event_type, "occurred_at": "", "source": "heating", "data": data}
    push.fanout_sync("/events/" + event_type.replace(".", "/"), json.dumps(envelope).encode())


def test_the_page_shows_each_node_and_refreshes_live_and_switches_an_output(signed_in_page, hub_user):
    from heating.models import Command, CommandState, Reading

    heater = radio_state()
    user = hub_user("carol", staff=True)  # the staff group may send commands
    page = signed_in_page(user)
    page.goto("/devices/")

    card = page.get_by_test_id("heating-node")
    expect(card).to_have_count(1)
    expect(card).to_contain_text("Living room heater")
    expect(card).to_contain_text("living")
    expect(card).to_contain_text("-62.5 dBm · LQI 40")
    expect(card).to_contain_text("listening")
    expect(card).to_contain_text("reachable")
    expect(card).to_contain_text("Room temperature")  # the definition's label, not the register's name RoomTemp
    expect(page.get_by_test_id("heating-value-RoomTemp")).to_have_text("19.5 °C")
    expect(page.get_by_test_id("heating-heard")).to_contain_text("s ago")
    expect(page.get_by_test_id("heating-link")).to_have_text("modem link up")
    expect(page.get_by_test_id("heating-live")).to_have_text("live", timeout=WAIT_MS)

    # A new reading: its event over /ws/push makes the page fetch the overview again (no reload, no 30 s poll).
    Reading.objects.create(
        node=heater, endpoint_id="161.11.0", name="RoomTemp", value=20.5, unit="C", recorded_at=timezone.now()
    )
    announce("heating.reading", {"id": "161.11.0", "value": 20.5})
    expect(page.get_by_test_id("heating-value-RoomTemp")).to_have_text("20.5 °C", timeout=WAIT_MS)

    # Switching the relay queues a command for the serial worker, as this user.
    page.get_by_test_id("heating-switch-Heating").click()
    expect(page.get_by_test_id("heating-command")).to_contain_text("Heating = 1", timeout=WAIT_MS)
    command = Command.objects.get()
    assert (command.endpoint, command.value, command.origin) == ("Heating", "01", "api")
    assert command.requested_by == user
    # The worker confirms it (the node's STATUS); the event brings the outcome and the new value to the page.
    Command.objects.filter(pk=command.pk).update(state=CommandState.CONFIRMED, finished_at=timezone.now())
    Reading.objects.create(node=heater, endpoint_id="161.12.0", name="Heating", value=True, recorded_at=timezone.now())
    announce("heating.command_confirmed", {"command": command.pk})
    expect(page.get_by_test_id("heating-command")).to_contain_text("confirmed", timeout=WAIT_MS)
    expect(page.get_by_test_id("heating-value-Heating")).to_have_text("on")
    expect(page.get_by_test_id("heating-switch-Heating")).to_have_text("Heater relay: switch off")


def test_without_the_permission_there_is_no_switch_and_a_down_link_shows(signed_in_page, hub_server):
    from django.contrib.auth.models import User

    from heating.services import WORKER_HEARTBEAT
    from hub.services import heartbeat_record
    from tests.browser.support import PASSWORD

    radio_state()
    heartbeat_record(
        name=WORKER_HEARTBEAT, interval_seconds=15, details={"link_up": False, "detail": "modem unplugged"}
    )
    # Staff by the flag alone: the Devices page, but not hub.send_commands.
    page = signed_in_page(User.objects.create_user("dora", password=PASSWORD, is_staff=True))
    page.goto("/devices/")
    expect(page.get_by_test_id("heating-node")).to_have_count(1)
    # The node said it was reachable, but with the link down the hub cannot vouch for it.
    expect(page.get_by_test_id("heating-node")).to_contain_text("reachability unknown")
    expect(page.get_by_test_id("heating-node")).not_to_contain_text("reachable ")
    expect(page.get_by_test_id("heating-link")).to_have_text("modem link down")
    expect(page.get_by_test_id("heating-link-detail")).to_have_text("modem unplugged")
    expect(page.get_by_test_id("heating-switch-Heating")).to_have_count(0)


def test_a_relay_that_heats_a_room_says_whose_it_is_instead_of_a_switch(signed_in_page, hub_user):
    from heating.models import Room, RoomHeater

    heater = radio_state()
    room = Room.objects.create(
        slug="living", name="Living room", temperature_node=heater, temperature_endpoint="RoomTemp"
    )
    RoomHeater.objects.create(room=room, node=heater, endpoint="Heating")
    page = signed_in_page(hub_user("carol", staff=True))
    page.goto("/devices/")
    note = page.get_by_test_id("heating-heats")
    expect(note).to_have_text(
        "Heater relay heats Living room: its thermostat switches it (unassign the heater in the admin to switch it "
        "by hand)."
    )
    expect(note.get_by_role("link", name="Living room")).to_have_attribute("href", "/rooms/living/")
    expect(page.get_by_test_id("heating-switch-Heating")).to_have_count(0)
    expect(page.get_by_test_id("heating-switch-Manual")).to_have_count(1)


def test_the_focused_switch_keeps_the_focus_while_readings_arrive(signed_in_page, hub_user):
    from heating.models import Reading

    heater = radio_state()
    page = signed_in_page(hub_user("carol", staff=True))
    page.goto("/devices/")
    expect(page.get_by_test_id("heating-live")).to_have_text("live", timeout=WAIT_MS)
    page.get_by_test_id("heating-switch-Heating").focus()
    for step in range(10):
        value = 19.0 + step / 10
        Reading.objects.create(
            node=heater, endpoint_id="161.11.0", name="RoomTemp", value=value, unit="C", recorded_at=timezone.now()
        )
        announce("heating.reading", {"id": "161.11.0", "value": value})
        expect(page.get_by_test_id("heating-value-RoomTemp")).to_have_text(f"{value:.1f} °C", timeout=WAIT_MS)
        focused = page.evaluate("() => document.activeElement.getAttribute('data-testid')")
        assert focused == "heating-switch-Heating", f"focus lost at reading {step}"
