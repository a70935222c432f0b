"""Device definitions name endpoints for people: a ``label`` attribute ("Room temperature", not RoomTemp) and a
unit written for readers ("°C", not C); an endpoint without a label keeps its register's name."""

from __future__ import annotations

from heating.swap.definitions import SHIPPED_DEVICES_DIR, DefinitionLibrary, parse_definition, unit_symbol


def test_the_shipped_room_heater_labels_its_endpoints_for_people():
    heater = DefinitionLibrary.load(SHIPPED_DEVICES_DIR).get(72, 1)
    assert heater.endpoint("RoomTemp").human_name == "Room temperature"
    assert heater.endpoint("Heating").human_name == "Heater relay"
    assert heater.endpoint("Manual").human_name == "Hub in control (manual mode)"


def test_every_shipped_endpoint_has_a_label():
    for definition in DefinitionLibrary.load(SHIPPED_DEVICES_DIR):
        assert all(endpoint.label for endpoint in definition.endpoints), definition.product


def test_an_endpoint_without_a_label_keeps_its_name():
    definition = parse_definition(
        '<device><product>x</product><regular><reg id="11" name="R"><endpoint name="Raw" type="num"/></reg>'
        "</regular></device>",
        manufacturer_id=1,
        product_id=2,
    )
    assert definition.endpoint("Raw").human_name == "Raw"


def test_units_are_written_for_readers():
    assert [unit_symbol(name) for name in ("C", "F", "K", "%", "V", "", None)] == ["°C", "°F", "K", "%", "V", "", ""]
