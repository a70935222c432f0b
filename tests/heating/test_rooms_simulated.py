"""The embedded default with the simulator: a house without rooms gets one per simulated heater at start-up, with its
heater, temperature and a week, so a fresh `make run` shows a working thermostat; a house with rooms gets none."""

from __future__ import annotations

import pytest

from heating.models import Mode, Node, Room, RoomHeater
from heating.selectors import room_blocks
from heating.services import SIMULATED_ADDRESSES, room_create, rooms_create_simulated
from heating.simulator import SimulatedNetwork

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_one_room_per_simulated_heater_with_its_heater_temperature_and_week():
    rooms = rooms_create_simulated()
    assert [room.slug for room in rooms] == ["living", "bedroom", "garage"]
    for room, address in zip(rooms, SIMULATED_ADDRESSES, strict=True):
        node = Node.objects.get(address=address)
        assert room.temperature_node == node
        assert room.temperature_endpoint == "RoomTemp"
        assert list(RoomHeater.objects.filter(room=room).values_list("node__address", "endpoint")) == [
            (address, "Heating")
        ]
        assert node.location == room.slug
        assert len(room_blocks(room)) == 14
    # The cold store's heater cannot keep up: it shows frost protection (and its alerts) in mode off.
    assert Room.objects.get(slug="garage").mode == Mode.OFF


def test_nodes_already_heard_are_used_as_they_are():
    heard = Node.objects.create(address=0xA1, name="Old heater", manufacturer_id=72, product_id=1, location="hall")
    rooms_create_simulated()
    heard.refresh_from_db()
    assert (heard.name, heard.location) == ("Old heater", "living")


def test_a_house_with_rooms_gets_no_simulated_ones():
    room_create(slug="kitchen", name="Kitchen")
    assert rooms_create_simulated() == []
    assert list(Room.objects.values_list("slug", flat=True)) == ["kitchen"]


def test_the_simulator_heaters_are_the_ones_the_rooms_name():
    network = SimulatedNetwork(tcp=("127.0.0.1", 0))
    assert tuple(node.address for node in network.nodes) == SIMULATED_ADDRESSES


def test_the_embedded_radio_creates_them_before_the_simulator_starts(settings):
    from heating.worker import EmbeddedRadio

    radio = EmbeddedRadio()
    radio._create_simulated_rooms()  # what serve() does first; starting the radio is tests/heating/test_worker.py's
    assert Room.objects.count() == 3
    assert not radio.simulator.alive


def test_no_migration_creates_simulated_rooms():
    """A migrated database has rooms only for node locations (none here): production never gets simulated ones."""
    assert not Room.objects.exists()
