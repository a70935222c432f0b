"""Only a load's relay can heat a room: the heater node's Manual output (which hands the relay to the hub) is not."""

from __future__ import annotations

import pytest

from heating.selectors import node_definition
from heating.services import RoomInputError, relay_endpoints, room_create, room_heaters_set

pytestmark = [pytest.mark.django_db]


def test_the_room_heater_offers_its_relay_and_not_its_manual_switch(heater_node):
    assert relay_endpoints(node_definition(heater_node)) == ["Heating"]


def test_a_room_refuses_the_manual_switch_as_a_heater(heater_node):
    room = room_create(slug="living", name="Living room")
    with pytest.raises(RoomInputError, match="no relay 'Manual'"):
        room_heaters_set(room=room, heaters=[(heater_node, "Manual", 1000)])
    assert not room.heaters.exists()
