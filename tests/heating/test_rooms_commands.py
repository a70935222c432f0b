"""A relay that heats a room is the thermostat's: a raw command on it (API, Devices page, lagarto's action topic) is
refused naming the room — 409 from the API, a logged refusal on MQTT — until staff unassign the heater."""

from __future__ import annotations

import asyncio

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, Permission, User

from heating.models import Command, Node
from heating.selectors import node_definition
from heating.services import (
    ORIGIN_THERMOSTAT,
    RoomHeaterCommandRefused,
    command_queue,
    room_create,
    room_heaters_set,
)
from messaging import mqtt

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def heater(db) -> Node:
    return Node.objects.create(address=0xA1, manufacturer_id=72, product_id=1, definition="heater/Room heater")


@pytest.fixture
def living(heater):
    room = room_create(slug="living", name="Living room", temperature_node=heater)
    room_heaters_set(room=room, heaters=[(heater, "Heating", 1500)])
    return room


@pytest.fixture
def commander(db) -> User:
    user = User.objects.create_user("carol")
    user.groups.add(Group.objects.get(name="household"))
    user.user_permissions.add(Permission.objects.get(codename="send_commands", content_type__app_label="hub"))
    return user


def test_the_api_answers_409_naming_the_room(client, commander, heater, living):
    client.force_login(commander)
    body = {"endpoint": "Heating", "value": 1}
    response = client.post("/v1/nodes/a1/commands", body, content_type="application/json")
    assert response.status_code == 409
    body = response.json()
    assert "Living room" in body["message"]
    assert "unassign" in body["message"]
    assert body["more_info"].endswith("#conflict")
    assert not Command.objects.exists()


def test_the_errors_page_explains_the_conflict(client):
    assert 'id="conflict"' in client.get("/v1/docs/errors").content.decode()


def test_the_thermostat_may_switch_it(heater, living):
    command = command_queue(
        node=heater, endpoint="Heating", value=1, definition=node_definition(heater), origin=ORIGIN_THERMOSTAT
    )
    assert command.origin == "thermostat"


@pytest.mark.parametrize("origin", ["page", "api", "admin", ""])
def test_every_other_origin_is_refused_by_endpoint_name_or_id(heater, living, origin):
    for endpoint in ("Heating", "161.12.0"):
        with pytest.raises(RoomHeaterCommandRefused, match="Living room") as refused:
            command_queue(node=heater, endpoint=endpoint, value=0, definition=node_definition(heater), origin=origin)
        assert refused.value.room == living


def test_other_endpoints_of_the_node_and_unassigned_relays_stay_free(heater, living):
    command_queue(node=heater, endpoint="ResyncInterval", value=30, definition=node_definition(heater), origin="api")
    room_heaters_set(room=living, heaters=[])
    command = command_queue(node=heater, endpoint="Heating", value=1, definition=node_definition(heater), origin="api")
    assert command.endpoint == "Heating"


@pytest.mark.django_db(transaction=True)
def test_the_lagarto_action_topic_logs_the_refusal(heater, living, caplog):
    topic = f"{settings.MQTT_HOME_PREFIX}/living/action/161.12.0"
    asyncio.run(mqtt.handlers.dispatch(mqtt.MqttMessage(topic=topic, payload=b"1", qos=1, retain=False)))
    assert not Command.objects.exists()
    assert "refused" in caplog.text
    assert "Living room" in caplog.text
