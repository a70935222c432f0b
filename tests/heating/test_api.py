"""``/v1/nodes``, ``/v1/nodes/{id}/commands``, ``/v1/readings`` (filters, count, CSV export): who may, what comes
back, and that a command lands in the queue the serial worker reads."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, set_token_value

from heating.models import Command, CommandState, Node, Reading
from heating.selectors import definitions

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

T0 = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def commander(db) -> User:
    user = User.objects.create_user("carol", password="correct horse battery")
    user.groups.add(Group.objects.get(name="household"))
    user.user_permissions.add(Permission.objects.get(codename="send_commands", content_type__app_label="hub"))
    return user


@pytest.fixture
def bearer(db):
    application = Application.objects.create(
        name="script", client_type=Application.CLIENT_PUBLIC, authorization_grant_type=Application.GRANT_DEVICE_CODE
    )
    counter = iter(range(1_000_000))

    def make(user: User, scope: str) -> dict[str, str]:
        raw = f"heating-token-{next(counter)}-{user.pk}"
        token = AccessToken(
            user=user, application=application, scope=scope, expires=timezone.now() + timedelta(hours=1)
        )
        set_token_value(token, raw)
        token.save()
        return {"Authorization": f"Bearer {raw}"}

    return make


@pytest.fixture
def heater(db) -> Node:
    node = Node.objects.create(
        address=0xA1,
        manufacturer_id=72,
        product_id=1,
        definition="heater/Room heater",
        name="Living room heater",
        location="living",
        last_heard=T0,
        last_rssi=-62.5,
        last_lqi=40,
        reachable=True,
        registers={"12": "00"},
    )
    Reading.objects.bulk_create(
        [
            Reading(
                node=node,
                endpoint_id="161.11.0",
                name="RoomTemp",
                value=19.5 + i / 10,
                unit="C",
                recorded_at=T0 + timedelta(minutes=i),
                rssi=-62.5,
                lqi=40,
            )
            for i in range(5)
        ]
        + [Reading(node=node, endpoint_id="161.12.0", name="Heating", value=False, unit="", recorded_at=T0)]
    )
    return node


@pytest.fixture
def binouts(db) -> Node:
    assert definitions().get(1, 7) is not None
    return Node.objects.create(address=0x05, manufacturer_id=1, product_id=7, definition="panStamp/Binary outputs")


def test_nodes_list_and_detail_show_the_latest_value_of_each_endpoint(client, household_user, heater):
    client.force_login(household_user)
    listing = client.get("/v1/nodes").json()
    assert listing["total"] == 1
    (node,) = listing["results"]
    assert node["id"] == "a1"
    assert node["location"] == "living"
    assert node["last_rssi"] == -62.5
    assert node["last_heard"] == "2026-11-28T07:00:00.000Z"
    values = {value["id"]: value for value in node["values"]}
    assert values["161.11.0"]["value"] == pytest.approx(19.9)
    assert values["161.11.0"]["recorded_at"] == "2026-11-28T07:04:00.000Z"
    assert values["161.12.0"]["value"] is False
    assert "Heating" in node["writable"]
    detail = client.get("/v1/nodes/a1").json()
    assert detail["name"] == "Living room heater"
    assert client.get("/v1/nodes/ff").status_code == 404
    assert client.get("/v1/nodes/count").json() == {"count": 1}


def test_readings_filter_by_node_endpoint_and_time_and_count(client, household_user, heater, binouts):
    client.force_login(household_user)
    Reading.objects.create(node=binouts, endpoint_id="5.11.0", name="Binary0", value=True, recorded_at=T0)
    assert client.get("/v1/readings").json()["total"] == 7
    assert client.get("/v1/readings?node=a1").json()["total"] == 6
    assert client.get("/v1/readings?endpoint=161.11.0").json()["total"] == 5
    assert client.get("/v1/readings?endpoint=RoomTemp").json()["total"] == 5
    since = client.get("/v1/readings?endpoint=161.11.0&since=2026-11-28T07:02:00.000Z&until=2026-11-28T07:04:00.000Z")
    assert [r["value"] for r in since.json()["results"]] == [pytest.approx(19.8), pytest.approx(19.7)]
    assert client.get("/v1/readings/count?node=a1&endpoint=161.12.0").json() == {"count": 1}
    bad = client.get("/v1/readings?since=yesterday")
    assert bad.status_code == 400
    assert "since" in bad.json()["fields"]


def test_readings_export_as_csv_with_the_same_filters(client, household_user, heater):
    client.force_login(household_user)
    response = client.get("/v1/readings/export?endpoint=161.11.0&since=2026-11-28T07:03:00.000Z")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["time", "node", "endpoint", "name", "value", "unit", "rssi", "lqi"]
    assert rows[1:] == [
        ["2026-11-28T07:03:00.000Z", "a1", "161.11.0", "RoomTemp", "19.8", "C", "-62.5", "40"],
        ["2026-11-28T07:04:00.000Z", "a1", "161.11.0", "RoomTemp", "19.9", "C", "-62.5", "40"],
    ]
    assert client.get("/v1/readings/export", HTTP_ACCEPT="text/csv").status_code == 200


def test_a_user_with_send_commands_queues_a_command_by_endpoint_name(client, commander, binouts):
    client.force_login(commander)
    # The shipped binary-outputs definition names output 0 "Binary 0" (the "relay0" is an example name).
    response = client.post(
        "/v1/nodes/05/commands", {"endpoint": "Binary 0", "value": 1}, content_type="application/json"
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["state"] == "queued"
    assert body["node"] == "05"
    assert body["register"] == 11
    command = Command.objects.get(pk=body["id"])
    assert command.value == "01"  # output 0 is the least significant bit of register 11
    assert command.requested_by == commander
    assert command.origin == "api"
    listed = client.get("/v1/nodes/05/commands").json()
    assert [c["id"] for c in listed["results"]] == [command.pk]


def test_a_command_by_lagarto_id_keeps_the_registers_other_bits(client, commander, heater):
    client.force_login(commander)
    response = client.post(
        "/v1/nodes/a1/commands", {"endpoint": "161.12.0", "value": "on"}, content_type="application/json"
    )
    assert response.status_code == 202
    command = Command.objects.get(pk=response.json()["id"])
    assert (command.endpoint, command.register_id, command.value) == ("Heating", 12, "01")


def test_a_second_relay_command_while_the_first_is_pending_is_409_naming_the_pending_one(client, commander, heater):
    client.force_login(commander)
    first = client.post("/v1/nodes/a1/commands", {"endpoint": "Heating", "value": 1}, content_type="application/json")
    assert first.status_code == 202
    pending_id = first.json()["id"]
    second = client.post("/v1/nodes/a1/commands", {"endpoint": "Heating", "value": 0}, content_type="application/json")
    # The request is well-formed; the relay's state (a command still waiting for its STATUS) refuses it.
    assert second.status_code == 409, second.json()
    body = second.json()
    assert "already has a command waiting to be confirmed" in body["message"]
    assert f"command {pending_id}" in body["message"]
    assert body["more_info"].endswith("#conflict")
    assert "fields" not in body
    assert list(Command.objects.values_list("pk", flat=True)) == [pending_id]
    # Once the first is settled, the relay takes the next one.
    Command.objects.filter(pk=pending_id).update(state=CommandState.CONFIRMED)
    third = client.post("/v1/nodes/a1/commands", {"endpoint": "Heating", "value": 0}, content_type="application/json")
    assert third.status_code == 202


def test_the_openapi_document_lists_the_commands_409(client, household_user):
    client.force_login(household_user)
    schema = client.get("/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").content.decode()
    assert "already has a command waiting to be confirmed" in schema


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"endpoint": "RoomTemp", "value": 20}, "endpoint"),  # an input
        ({"endpoint": "Nonsense", "value": 1}, "endpoint"),
        ({"endpoint": "DesiredTemp", "value": 9999}, "value"),  # out of range for 2 signed bytes of centi-°C
        ({"endpoint": "DesiredTemp", "value": {"a": [1]}}, "value"),
        ({"endpoint": "DesiredTemp", "value": True}, "value"),
        ({"endpoint": "DesiredTemp", "value": "1e400"}, "value"),  # infinite once read
        ({"endpoint": "DesiredTemp", "value": "nan"}, "value"),
        # A relay is switched on or off; any other value is a mistake, never "on".
        ({"endpoint": "Heating", "value": 99999999999999999999999}, "value"),
        ({"endpoint": "Heating", "value": -1}, "value"),
        ({"endpoint": "Heating", "value": 2}, "value"),
        ({"endpoint": "Heating", "value": {"a": [1]}}, "value"),
        ({"endpoint": "Heating", "value": [1]}, "value"),
        ({"endpoint": "Heating", "value": None}, "value"),
        ({"value": 1}, "endpoint"),
    ],
)
def test_bad_commands_are_400_naming_the_field(client, commander, heater, body, field):
    client.force_login(commander)
    response = client.post("/v1/nodes/a1/commands", body, content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not Command.objects.exists()


def test_commands_need_the_permission_and_a_token_needs_heating_write(
    client, household_user, commander, heater, bearer
):
    client.force_login(household_user)
    refused = client.post("/v1/nodes/a1/commands", {"endpoint": "Heating", "value": 1}, content_type="application/json")
    assert refused.status_code == 403
    assert "hub.send_commands" in refused.json()["message"]
    client.logout()
    # A token of a user without the permission: refused even with heating:write.
    weak = client.post(
        "/v1/nodes/a1/commands",
        {"endpoint": "Heating", "value": 1},
        content_type="application/json",
        headers=bearer(household_user, "heating:write"),
    )
    assert weak.status_code == 403
    # The right user, but a read-only token.
    read_only = client.post(
        "/v1/nodes/a1/commands",
        {"endpoint": "Heating", "value": 1},
        content_type="application/json",
        headers=bearer(commander, "heating:read"),
    )
    assert read_only.status_code == 403
    assert "heating:write" in read_only.json()["message"]
    assert not Command.objects.exists()
    ok = client.post(
        "/v1/nodes/a1/commands",
        {"endpoint": "Heating", "value": 1},
        content_type="application/json",
        headers=bearer(commander, "heating:write"),
    )
    assert ok.status_code == 202
    assert Command.objects.get().state == CommandState.QUEUED
    # Reading the nodes with a token needs heating:read.
    assert client.get("/v1/nodes", headers=bearer(household_user, "heating:read")).status_code == 200
    assert client.get("/v1/nodes", headers=bearer(household_user, "users:read")).status_code == 403
    assert client.get("/v1/readings").status_code == 401


def test_the_latest_value_of_a_rarely_reporting_endpoint_still_shows(client, household_user, heater):
    # The heater reports its relay every minute and its temperature every 16: many newer rows of one endpoint
    # must not hide the other's latest value.
    Reading.objects.bulk_create(
        Reading(node=heater, endpoint_id="161.12.0", name="Heating", value=True, recorded_at=T0 + timedelta(minutes=i))
        for i in range(10, 700)
    )
    client.force_login(household_user)
    values = {value["id"]: value["value"] for value in client.get("/v1/nodes/a1").json()["values"]}
    assert values["161.11.0"] == pytest.approx(19.9)
    assert values["161.12.0"] is True


def test_a_nodes_detail_shows_its_recent_signal_newest_first(client, household_user, heater):
    for minute, (rssi, lqi) in enumerate([(-70.0, 30), (-65.5, 35), (-60.0, 44)]):
        heater.signal_heard(at=f"2026-11-28T07:0{minute}:00.000Z", rssi=rssi, lqi=lqi)
    heater.save()
    client.force_login(household_user)
    detail = client.get("/v1/nodes/a1").json()
    assert detail["signal"] == [
        {"at": "2026-11-28T07:02:00.000Z", "rssi": -60.0, "lqi": 44},
        {"at": "2026-11-28T07:01:00.000Z", "rssi": -65.5, "lqi": 35},
        {"at": "2026-11-28T07:00:00.000Z", "rssi": -70.0, "lqi": 30},
    ]
    # The list stays light: the history is the detail's.
    assert "signal" not in client.get("/v1/nodes").json()["results"][0]


@pytest.mark.parametrize("query", ["living", "LIVING ROOM", "a1", "0xA1", "161"])
def test_nodes_are_found_by_the_cross_resource_search_by_name_location_or_address(
    client, household_user, heater, binouts, query
):
    client.force_login(household_user)
    body = client.get("/v1/search", {"q": query}).json()
    assert "nodes" in body["searched"]
    nodes = [hit for hit in body["results"] if hit["type"] == "nodes"]
    assert nodes == [
        {"type": "nodes", "id": "a1", "title": "Living room heater (living)", "url": "http://testserver/v1/nodes/a1"}
    ]


def test_the_node_search_needs_heating_read_on_a_token(client, household_user, heater, bearer):
    granted = client.get("/v1/search?q=living", headers=bearer(household_user, "heating:read")).json()
    assert granted["searched"] == ["nodes"]
    assert [hit["id"] for hit in granted["results"]] == ["a1"]
    other = client.get("/v1/search?q=living", headers=bearer(household_user, "downloads:read")).json()
    assert "nodes" not in other["searched"]
    assert all(hit["type"] != "nodes" for hit in other["results"])


def test_the_node_search_matches_nothing_it_should_not(client, household_user, heater, binouts):
    client.force_login(household_user)
    for query in ("kitchen", "16", "0xa", "a2"):
        hits = client.get("/v1/search", {"q": query}).json()["results"]
        assert not any(hit["type"] == "nodes" and hit["id"] == "a1" for hit in hits), query
