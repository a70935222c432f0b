"""Staff set rooms up in the dashboard (``/setup/rooms/``): create, rename, choose the temperature source and the
heaters from the nodes the radio has heard, the room's own presets, delete. Refusals are shown on their field. The
home page's away switch (``/house/away``), and who the "who can give you control" line names."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from heating.models import House, Node, Room, RoomHeater
from tests.support.users import USER_PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client_as, staff_user):
    client_as(staff_user)
    return staff_user


def heard_node(address: int, name: str, *, product: tuple[int, int] = (72, 1), heard: bool = True) -> Node:
    """A node the radio has heard (the room heater by default: temperature RoomTemp, relays Heating and Manual)."""
    return Node.objects.create(
        address=address,
        manufacturer_id=product[0],
        product_id=product[1],
        name=name,
        last_heard=timezone.now() - timedelta(minutes=1) if heard else None,
    )


@pytest.fixture
def heater_node(db) -> Node:
    return heard_node(0xA1, "Lounge heater")


def room_form(**fields) -> dict:
    """A complete POST of the set-up form (empty presets: the house's)."""
    data = {
        "name": "Lounge",
        "slug": "lounge",
        "temperature_source": "",
        "comfort": "",
        "eco": "",
        "away_temperature": "",
        "frost": "",
        "maximum": "",
    }
    data.update(fields)
    return data


def field_error(html: str, field: str) -> str:
    """The error text the page shows under ``field``."""
    match = re.search(rf'data-testid="error-{field}">([^<]*)<', html)
    assert match, f"no error shown for {field}"
    return match.group(1)


# --- who may --------------------------------------------------------------------------------------------------


def test_household_members_may_not_set_rooms_up_and_visitors_are_sent_to_sign_in(
    client, client_as, household_user, heater_node
):
    room = Room.objects.create(slug="lounge", name="Lounge")
    paths = ["/setup/rooms/", "/setup/rooms/add/", "/setup/rooms/lounge/edit/", "/setup/rooms/lounge/delete/"]
    for path in paths:
        assert client.get(path)["Location"].startswith("/login/"), path
    client_as(household_user)
    for path in paths:
        assert client.get(path).status_code == 403, path
    assert client.post("/setup/rooms/add/", room_form(slug="hall", name="Hall")).status_code == 403
    assert client.post("/setup/rooms/lounge/delete/").status_code == 403
    assert list(Room.objects.values_list("slug", flat=True)) == [room.slug]
    assert 'data-testid="rooms-setup-link"' not in client.get("/").content.decode()
    assert "/setup/rooms/lounge/edit/" not in client.get("/rooms/lounge/").content.decode()


def test_a_member_of_the_staff_group_without_the_flag_is_staff_here(client, client_as):
    member = User.objects.create_user("dora", password=USER_PASSWORD)
    member.groups.add(Group.objects.get(name="staff"))
    client_as(member)
    assert client.get("/setup/rooms/").status_code == 200
    assert 'data-testid="rooms-setup-link"' in client.get("/").content.decode()
    Room.objects.create(slug="lounge", name="Lounge")
    assert 'href="/setup/rooms/lounge/edit/"' in client.get("/rooms/lounge/").content.decode()


# --- create, rename, delete -----------------------------------------------------------------------------------


def test_staff_add_a_room_with_its_sensor_and_heater_chosen_from_the_nodes_heard(client, staff, heater_node):
    page = client.get("/setup/rooms/add/").content.decode()
    assert "Lounge heater (a1): Room temperature (RoomTemp)" in page
    assert "Lounge heater (a1): Heater relay (Heating)" in page

    answer = client.post(
        "/setup/rooms/add/",
        room_form(
            temperature_source=f"{heater_node.pk}:RoomTemp",
            heaters=[f"{heater_node.pk}:Heating"],
            **{f"power-{heater_node.pk}-Heating": "1500"},
            comfort="22.5",
        ),
    )

    assert answer.status_code == 302
    assert answer["Location"] == "/setup/rooms/"
    room = Room.objects.get(slug="lounge")
    assert (room.name, room.temperature_node, room.temperature_endpoint, room.comfort) == (
        "Lounge",
        heater_node,
        "RoomTemp",
        22.5,
    )
    assert room.eco is None  # empty: the house's
    assert list(room.heaters.values_list("node", "endpoint", "power_w")) == [(heater_node.pk, "Heating", 1500)]
    heater_node.refresh_from_db()
    assert heater_node.location == "lounge"  # the node moved into the room
    listing = client.get("/setup/rooms/").content.decode()
    assert "Lounge added" in listing
    assert "Lounge heater Heating (1500 W)" in listing
    assert 'data-room="lounge"' in client.get("/").content.decode()


def test_staff_rename_a_room_and_its_id_and_its_nodes_follow(client, staff, heater_node):
    room = Room.objects.create(
        slug="lounge", name="Lounge", temperature_node=heater_node, temperature_endpoint="RoomTemp"
    )
    RoomHeater.objects.create(room=room, node=heater_node, endpoint="Heating", power_w=1500)
    Node.objects.filter(pk=heater_node.pk).update(location="lounge")
    form = client.get("/setup/rooms/lounge/edit/").content.decode()
    assert 'value="Lounge"' in form
    assert re.search(rf'value="{heater_node.pk}:Heating"[^>]*checked', form)  # what the room has is chosen

    answer = client.post(
        "/setup/rooms/lounge/edit/",
        room_form(
            name="Sitting room",
            slug="sitting",
            temperature_source=f"{heater_node.pk}:RoomTemp",
            heaters=[f"{heater_node.pk}:Heating"],
            **{f"power-{heater_node.pk}-Heating": "1500"},
        ),
    )

    assert answer.status_code == 302
    room.refresh_from_db()
    assert (room.slug, room.name) == ("sitting", "Sitting room")
    heater_node.refresh_from_db()
    assert heater_node.location == "sitting"
    assert room.heaters.count() == 1
    assert client.get("/setup/rooms/lounge/edit/").status_code == 404


def test_staff_change_a_heaters_power_and_remove_it(client, staff, heater_node):
    room = Room.objects.create(slug="lounge", name="Lounge")
    RoomHeater.objects.create(room=room, node=heater_node, endpoint="Heating", power_w=1500)
    heater = f"{heater_node.pk}:Heating"
    power = f"power-{heater_node.pk}-Heating"

    client.post("/setup/rooms/lounge/edit/", room_form(heaters=[heater], **{power: "2000"}))
    assert list(room.heaters.values_list("power_w", flat=True)) == [2000]

    client.post("/setup/rooms/lounge/edit/", room_form(**{power: "2000"}))
    assert room.heaters.count() == 0


def test_deleting_a_room_asks_first_and_deletes_on_confirmation(client, staff, heater_node):
    room = Room.objects.create(slug="lounge", name="Lounge")
    RoomHeater.objects.create(room=room, node=heater_node, endpoint="Heating", power_w=1500)

    question = client.get("/setup/rooms/lounge/delete/")
    assert question.status_code == 200
    assert "Delete Lounge?" in question.content.decode()
    assert Room.objects.filter(slug="lounge").exists()  # asking deletes nothing

    answer = client.post("/setup/rooms/lounge/delete/")
    assert answer.status_code == 302
    assert not Room.objects.filter(slug="lounge").exists()
    assert not RoomHeater.objects.exists()
    assert "Lounge deleted" in client.get("/setup/rooms/").content.decode()


# --- refusals on their field ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slug", "words"),
    [
        ("Living Room", "a-z"),
        ("x" * 65, "64"),
        ("hub", "hub"),
        ("homeassistant", "homeassistant"),
        ("unassigned", "unassigned"),
    ],
)
def test_a_bad_or_reserved_id_is_refused_with_the_rule(client, staff, slug, words):
    answer = client.post("/setup/rooms/add/", room_form(slug=slug))
    assert answer.status_code == 400
    html = answer.content.decode()
    assert words in field_error(html, "slug")
    assert re.search(r'<input[^>]*name="slug"[^>]*is-invalid', html)  # the field is marked
    assert not Room.objects.exists()


def test_a_bad_id_is_said_even_while_the_name_is_missing(client, staff):
    html = client.post("/setup/rooms/add/", room_form(name="", slug="Bad Id")).content.decode()
    assert "required" in field_error(html, "name")
    assert "a-z" in field_error(html, "slug")


def test_an_id_another_room_has_is_refused_naming_it(client, staff):
    Room.objects.create(slug="lounge", name="Lounge")
    answer = client.post("/setup/rooms/add/", room_form(name="Second lounge", slug="lounge"))
    assert answer.status_code == 400
    assert "exists already" in field_error(answer.content.decode(), "slug")
    assert Room.objects.count() == 1


def test_renaming_to_a_reserved_id_keeps_the_room_as_it_was(client, staff):
    Room.objects.create(slug="lounge", name="Lounge")
    answer = client.post("/setup/rooms/lounge/edit/", room_form(name="Renamed", slug="events"))
    assert answer.status_code == 400
    assert "events" in field_error(answer.content.decode(), "slug")
    assert list(Room.objects.values_list("slug", "name")) == [("lounge", "Lounge")]


def test_a_preset_outside_its_range_is_refused_naming_the_range(client, staff):
    answer = client.post("/setup/rooms/add/", room_form(frost="3"))
    assert answer.status_code == 400
    assert "5\N{EN DASH}12 °C" in field_error(answer.content.decode(), "frost")
    assert not Room.objects.exists()  # the room made before the preset's check is rolled back

    answer = client.post("/setup/rooms/add/", room_form(comfort="warm"))
    assert answer.status_code == 400
    assert "number" in field_error(answer.content.decode(), "comfort")


def test_heaters_are_offered_from_the_relays_of_nodes_heard_only(client, staff, heater_node):
    sensor = heard_node(0x10, "Hall sensor", product=(1, 4))
    heard_node(0xA5, "Shed heater", heard=False)  # named, never heard
    page = client.get("/setup/rooms/add/").content.decode()
    heater_values = re.findall(r'name="heaters"\s+value="([^"]+)"', page)
    assert f"{heater_node.pk}:Heating" in heater_values
    assert not any(value.startswith(f"{sensor.pk}:") for value in heater_values)  # a sensor has no relay
    assert "Shed heater" not in page
    assert f'value="{sensor.pk}:Temperature"' in page  # but it is a temperature source


def test_a_posted_node_that_is_not_a_relay_is_refused(client, staff, heater_node):
    sensor = heard_node(0x10, "Hall sensor", product=(1, 4))
    for value in [f"{sensor.pk}:Temperature", f"{heater_node.pk}:RoomTemp", "999:Heating", "nonsense"]:
        answer = client.post(
            "/setup/rooms/add/", room_form(heaters=[value], **{f"power-{sensor.pk}-Temperature": "1000"})
        )
        assert answer.status_code == 400, value
        assert "not one of the available choices" in field_error(answer.content.decode(), "heaters")
    assert not Room.objects.exists()
    assert not RoomHeater.objects.exists()


def test_a_temperature_source_not_heard_is_refused(client, staff, heater_node):
    answer = client.post("/setup/rooms/add/", room_form(temperature_source=f"{heater_node.pk}:Heating"))
    assert answer.status_code == 400
    assert "not one of the available choices" in field_error(answer.content.decode(), "temperature_source")


def test_a_relay_that_heats_another_room_is_refused_naming_that_room(client, staff, heater_node):
    bedroom = Room.objects.create(slug="bedroom", name="Bedroom")
    RoomHeater.objects.create(room=bedroom, node=heater_node, endpoint="Heating", power_w=1000)
    page = client.get("/setup/rooms/add/").content.decode()
    assert "heats Bedroom now" in page

    answer = client.post(
        "/setup/rooms/add/",
        room_form(heaters=[f"{heater_node.pk}:Heating"], **{f"power-{heater_node.pk}-Heating": "1500"}),
    )
    assert answer.status_code == 400
    assert "heats Bedroom already" in field_error(answer.content.decode(), "heaters")
    assert not Room.objects.filter(slug="lounge").exists()


def test_a_chosen_heater_needs_its_power_in_range(client, staff, heater_node):
    heater = [f"{heater_node.pk}:Heating"]
    power = f"power-{heater_node.pk}-Heating"
    for value, words in [("", "watts"), ("0", "greater than or equal to 1"), ("lots", "whole number")]:
        answer = client.post("/setup/rooms/add/", room_form(heaters=heater, **{power: value}))
        assert answer.status_code == 400, value
        assert words in field_error(answer.content.decode(), "power"), value
    assert not Room.objects.exists()


def test_odd_input_is_a_form_error_never_a_500(client, staff):
    odd = [
        {},
        {"name": "", "slug": ""},
        {"name": "x" * 500, "slug": "ok"},
        {"heaters": "1:2:3", "name": "A"},
        room_form(slug="nul\x00l"),
        room_form(comfort="nan"),
        room_form(maximum="1e400"),
        room_form(temperature_source="1:RoomTemp:extra"),
    ]
    for data in odd:
        answer = client.post("/setup/rooms/add/", data)
        assert answer.status_code == 400, data
    assert client.post("/setup/rooms/no-such-room/edit/", room_form()).status_code == 404
    assert not Room.objects.exists()


# --- the house's away switch ----------------------------------------------------------------------------------


def test_household_members_switch_the_house_away_and_back(client, client_as, household_user):
    client_as(household_user)
    assert 'data-testid="house-away-switch"' in client.get("/").content.decode()

    answer = client.post("/house/away", {"away": "on"}, HTTP_ACCEPT="application/json")
    assert answer.json() == {"away": True}
    assert House.objects.get().away is True
    assert "House away" in client.get("/").content.decode()

    answer = client.post("/house/away", {"away": "off"})  # the form without script: back to the home page
    assert answer.status_code == 302
    assert House.objects.get().away is False


def test_the_away_switch_refuses_bad_values_and_users_without_control(client, client_as, household_user):
    client_as(household_user)
    answer = client.post("/house/away", {"away": "maybe"}, HTTP_ACCEPT="application/json")
    assert answer.status_code == 400
    assert "away" in answer.json()["fields"]
    assert client.get("/house/away").status_code == 405

    viewer = User.objects.create_user("carol", password=USER_PASSWORD)
    client_as(viewer)
    assert 'data-testid="house-away-switch"' not in client.get("/").content.decode()
    assert client.post("/house/away", {"away": "on"}, HTTP_ACCEPT="application/json").status_code == 403
    assert not House.objects.filter(away=True).exists()


# --- who can give you control ---------------------------------------------------------------------------------


def test_the_control_hint_names_staff_group_members_and_flagged_staff_but_not_inactive_ones(client, client_as):
    from heating.selectors import control_hint

    staff = Group.objects.get(name="staff")
    User.objects.create_user("flagged", password=USER_PASSWORD, is_staff=True)
    member = User.objects.create_user("grouped", password=USER_PASSWORD, first_name="Greta", last_name="Group")
    member.groups.add(staff)
    gone = User.objects.create_user("gone", password=USER_PASSWORD, is_active=False)
    gone.groups.add(staff)
    viewer = User.objects.create_user("carol", password=USER_PASSWORD)

    hint = control_hint(viewer)
    assert "Greta Group" in hint
    assert "flagged" in hint
    assert "gone" not in hint
    assert hint.count("Greta Group") == 1
    client_as(viewer)
    assert "Greta Group" in client.get("/").content.decode()
