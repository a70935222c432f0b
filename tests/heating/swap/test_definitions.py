"""Device definitions: the shipped panStamp XMLs, register bytes ↔ endpoint values, a dropped-in folder."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heating.swap.definitions import SHIPPED_DEVICES_DIR, DefinitionError, DefinitionLibrary, parse_definition
from heating.swap.registers import product_code

SHIPPED = DefinitionLibrary.load()


def test_the_four_shipped_devices_are_found_by_product_code():
    assert {d.key for d in SHIPPED} == {(72, 1), (1, 4), (1, 1), (1, 7)}
    heater = SHIPPED.for_product_code(bytes.fromhex("0000004800000001"))
    assert heater.product == "Room heater"
    assert not heater.power_down
    assert SHIPPED.for_product_code(product_code(1, 4)).power_down
    assert SHIPPED.for_product_code(product_code(99, 1)) is None


def test_room_heater_register_map():
    heater = SHIPPED.get(72, 1)
    sizes = {r.id: r.size for r in heater.registers}
    assert sizes == {11: 2, 12: 1, 13: 1, 14: 2, 15: 1, 16: 2, 17: 1, 18: 1, 19: 1, 20: 1}
    assert heater.endpoint("Heating").writable
    assert not heater.endpoint("SrvHeating").writable
    assert not heater.endpoint("RoomTemp").writable
    assert heater.endpoint("RoomTemp").unit.name == "C"
    assert heater.endpoint("Heating").lagarto_id(0xA1) == "161.12.0"


@pytest.mark.parametrize(
    ("raw", "celsius"), [("0898", 22.0), ("0000", 0.0), ("FFFF", -0.01), ("FDDA", -5.5), ("F830", -20.0)]
)
def test_room_temperature_is_signed_centi_degrees(raw, celsius):
    heater = SHIPPED.get(72, 1)
    assert heater.decode(11, bytes.fromhex(raw)) == {"RoomTemp": celsius}
    assert heater.encode("RoomTemp", celsius) == bytes.fromhex(raw)


def test_heater_relay_and_outdoor_values_encode_to_register_bytes():
    heater = SHIPPED.get(72, 1)
    assert heater.encode("Heating", True) == b"\x01"
    assert heater.encode("Heating", "off") == b"\x00"
    assert heater.encode("OutdoorTemp", -3.25) == bytes.fromhex("FEBB")
    assert heater.encode("Tolerance", 2.0) == b"\xc8"
    with pytest.raises(ValueError, match="out of range"):
        heater.encode("Tolerance", 3.0)
    assert heater.encode("Heating", 1) == b"\x01"
    assert heater.encode("Heating", 0.0) == b"\x00"
    for not_binary in ("maybe", 2, -1, 10**23, 0.5, [1], {"a": 1}, None):
        with pytest.raises(ValueError, match="not a binary value"):
            heater.encode("Heating", not_binary)
    for not_a_number in ("1e400", float("inf"), float("nan"), "warm", True, [20], None):
        with pytest.raises(ValueError, match=r"not a number|out of range"):
            heater.encode("OutdoorTemp", not_a_number)


def test_temperature_node_converts_mv_to_each_unit():
    temp = SHIPPED.get(1, 4)
    endpoint = temp.endpoint("Temperature")
    assert endpoint.decode(bytes.fromhex("02E4")) == 24.0
    assert endpoint.decode(bytes.fromhex("02E4"), "K") == 297.15
    assert endpoint.decode(bytes.fromhex("02E4"), "F") == 75.2
    # Below 0 °C the TMP36 still gives positive millivolts: 400 mV is -10 °C.
    assert endpoint.decode(bytes.fromhex("0190")) == -10.0
    assert endpoint.encode(-10.0, bytes(2)) == bytes.fromhex("0190")
    assert temp.decode(11, bytes.fromhex("0CE4")) == {"Voltage": 3.3}
    assert temp.endpoint("Voltage").decode(bytes.fromhex("0CE4"), "mV") == 3300


def test_temperature_and_humidity_share_one_register():
    temphum = SHIPPED.get(1, 1)
    value = bytes.fromhex("02E4") + (553).to_bytes(2, "big")
    assert temphum.decode(12, value) == {"Temperature": 24.0, "Humidity": 55.3}
    endpoint = temphum.endpoint("Humidity")
    assert (endpoint.register_id, endpoint.index) == (12, 1)


def test_binary_outputs_are_bits_from_the_least_significant():
    binouts = SHIPPED.get(1, 7)
    assert binouts.encode("Binary 0", 1) == b"\x01"
    assert binouts.encode("Binary 7", 1) == b"\x80"
    # Switching one output keeps the others as they are.
    assert binouts.encode("Binary 1", True, current=b"\x01") == b"\x03"
    assert binouts.encode("Binary 0", False, current=b"\x03") == b"\x02"
    decoded = binouts.decode(11, b"\x05")
    assert [decoded[f"Binary {n}"] for n in range(8)] == [True, False, True, False, False, False, False, False]


@given(st.integers(-32768, 32767))
def test_room_temperature_round_trips_every_raw_value(raw):
    heater = SHIPPED.get(72, 1)
    value = raw.to_bytes(2, "big", signed=True)
    assert heater.encode("RoomTemp", heater.decode(11, value)["RoomTemp"]) == value


def test_a_dropped_in_folder_adds_a_device(tmp_path):
    (tmp_path / "devices.xml").write_text(
        '<devices><developer id="1" name="panStamp"><dev id="9" name="meter" label="Meter"/></developer></devices>'
    )
    (tmp_path / "panStamp").mkdir()
    (tmp_path / "panStamp" / "meter.xml").write_text(
        """<?xml version="1.0"?>
        <device><developer>panStamp</developer><product>Pulse meter</product><pwrdownmode>false</pwrdownmode>
          <config><reg name="Period" id="10"><param name="Seconds" type="num"><size>2</size></param></reg></config>
          <regular><reg name="Counter" id="11">
            <endpoint name="Energy" type="num" dir="inp"><size>4</size>
              <units><unit name="kWh" factor="0.001" offset="0"/></units></endpoint>
            <endpoint name="Label" type="str" dir="inp"><position>4</position><size>4</size></endpoint>
          </reg></regular></device>"""
    )
    library = DefinitionLibrary.load(SHIPPED_DEVICES_DIR, tmp_path)
    meter = library.get(1, 9)
    assert len(library) == 5
    assert meter.decode(11, (12345).to_bytes(4, "big") + b"ab\x00\x00") == {"Energy": 12.345, "Label": "ab"}
    assert meter.register(10).config
    assert [e.name for e in meter.endpoints] == ["Energy", "Label"]
    assert library.get(72, 1) is not None


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<device><regular>", "not well-formed"),
        ("<thing/>", "expected <device>"),
        ('<device><regular><reg id="x"/></regular></device>', "numeric id"),
        ('<device><regular><reg id="11"><endpoint name="a" type="float"/></reg></regular></device>', "type"),
        ('<device><regular><reg id="11"><endpoint name="a" dir="up"/></reg></regular></device>', "dir"),
        (
            '<device><regular><reg id="11"><endpoint name="a"><position>0.9</position></endpoint></reg></regular>'
            "</device>",
            "B.b",
        ),
    ],
)
def test_bad_definitions_name_the_file_and_the_fault(xml, message):
    with pytest.raises(DefinitionError, match=message) as caught:
        parse_definition(xml, manufacturer_id=1, product_id=2, source="drop/bad.xml")
    assert "drop/bad.xml" in str(caught.value)


def test_an_index_listing_a_missing_file_is_reported_by_name(tmp_path):
    (tmp_path / "devices.xml").write_text(
        '<devices><developer id="5" name="x"><dev id="1" name="gone"/></developer></devices>'
    )
    library = DefinitionLibrary.load(tmp_path)
    assert len(library) == 0
    [error] = library.errors
    assert "gone.xml" in error
    assert "cannot be read" in error


def test_the_shipped_folder_loads_without_errors():
    assert SHIPPED.errors == []


PULSE_METER = """<?xml version="1.0"?>
<device><developer>Acme</developer><product>Pulse meter</product><pwrdownmode>false</pwrdownmode>
  <regular><reg name="Counter" id="11"><endpoint name="Pulses" type="num" dir="inp"><size>2</size></endpoint></reg>
  </regular></device>"""


def test_a_device_file_dropped_in_without_an_index_is_found_by_its_place(tmp_path):
    """panStamp puts the ids in devices.xml only; a file at <manufacturer id>/<product id>.xml needs no index."""
    (tmp_path / "72").mkdir()
    (tmp_path / "72" / "3.xml").write_text(PULSE_METER)
    library = DefinitionLibrary.load(SHIPPED_DEVICES_DIR, tmp_path)
    meter = library.for_product_code(product_code(72, 3))
    assert meter.product == "Pulse meter"
    assert meter.source == str(tmp_path / "72" / "3.xml")
    assert meter.decode(11, bytes.fromhex("0102")) == {"Pulses": 258}
    assert library.get(72, 1).product == "Room heater"  # merged over the shipped ones, not instead of them
    assert library.errors == []


def test_an_operator_file_overrides_the_shipped_definition_of_the_same_product(tmp_path):
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "4.xml").write_text(PULSE_METER)
    assert DefinitionLibrary.load(SHIPPED_DEVICES_DIR, tmp_path).get(1, 4).product == "Pulse meter"


def test_a_malformed_file_is_reported_by_name_and_does_not_hide_the_others(tmp_path):
    (tmp_path / "72").mkdir()
    (tmp_path / "72" / "3.xml").write_text(PULSE_METER)
    (tmp_path / "72" / "4.xml").write_text("<device><regular>")  # cut short
    (tmp_path / "stray.xml").write_text(PULSE_METER)  # neither listed nor named by its ids
    (tmp_path / "Acme").mkdir()
    (tmp_path / "Acme" / "listed.xml").write_text(PULSE_METER.replace("Pulse meter", "Listed meter"))
    (tmp_path / "devices.xml").write_text(
        '<devices><developer id="9" name="Acme"><dev id="2" name="listed"/></developer>'
        '<developer id="x" name="Acme"><dev id="3" name="listed"/></developer></devices>'
    )
    library = DefinitionLibrary.load(SHIPPED_DEVICES_DIR, tmp_path)
    assert library.get(72, 3).product == "Pulse meter"
    assert library.get(9, 2).product == "Listed meter"  # an index line still works
    assert library.get(72, 4) is None
    assert len(library) == 6
    assert len(library.errors) == 3
    [cut] = [error for error in library.errors if "4.xml" in error]
    [stray] = [error for error in library.errors if "stray.xml" in error]
    [bad_index] = [error for error in library.errors if error.startswith(str(tmp_path / "devices.xml"))]
    assert cut.startswith(str(tmp_path / "72" / "4.xml"))
    assert "not well-formed" in cut
    assert stray.startswith(str(tmp_path / "stray.xml"))
    assert "<manufacturer id>/<product id>.xml" in stray
    assert "numeric id" in bad_index


def test_a_missing_folder_is_reported_not_fatal(tmp_path):
    library = DefinitionLibrary.load(SHIPPED_DEVICES_DIR, tmp_path / "nowhere")
    assert len(library) == 4
    assert "nowhere" in library.errors[0]
