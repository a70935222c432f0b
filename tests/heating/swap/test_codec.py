"""The SWAP codec against every example line of docs/protocols/swap.md §7, plus property and fuzz tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heating.swap import (
    DecodeError,
    EncodeError,
    Function,
    Packet,
    command_line,
    decode_line,
    decode_packet,
    discovery_line,
    encode_packet,
    encode_received,
    query_line,
)
from heating.swap.codec import rssi_byte, rssi_dbm
from heating.swap.definitions import DefinitionLibrary
from heating.swap.registers import split_product_code

SHIPPED = DefinitionLibrary.load()


def test_broadcast_query_for_product_codes():
    assert discovery_line(source=0x01) == "00010000010000"
    packet = decode_packet(bytes.fromhex("00010000010000"))
    assert packet.is_broadcast
    assert (packet.source, packet.function, packet.register_address, packet.register_id) == (1, Function.QUERY, 0, 0)


def test_status_with_product_code_of_binary_outputs():
    packet = decode_line("(2A2F)000500070005000000000100000007")
    assert packet.rssi == -53
    assert packet.lqi == 47
    assert (packet.destination, packet.source, packet.nonce) == (0x00, 0x05, 7)
    assert packet.function is Function.STATUS
    assert (packet.register_address, packet.register_id) == (0x05, 0)
    assert split_product_code(packet.value) == (1, 7)
    assert SHIPPED.for_product_code(packet.value).product == "Binary outputs"


def test_status_of_temperature_register():
    packet = decode_line("(E430)0012001A00120C02E4")
    assert packet.rssi == -88
    assert packet.lqi == 48
    assert (packet.source, packet.nonce, packet.register_address, packet.register_id) == (0x12, 0x1A, 0x12, 12)
    assert packet.value == bytes.fromhex("02E4")
    assert packet.value_int == 740
    assert SHIPPED.get(1, 4).decode(packet.register_id, packet.value) == {"Temperature": 24.0}


def test_query_for_register_12():
    assert query_line(destination=0x12, register_id=12, source=0x01) == "1201000001120C"


def test_command_and_its_confirmation():
    line = command_line(destination=0x05, register_id=11, value=b"\x01", source=0x01, nonce=7)
    assert line == "0501000702050B01"
    assert SHIPPED.get(1, 7).encode("Binary 0", 1) == b"\x01"
    confirmation = decode_line("(3030)0005000800050B01")
    assert confirmation.function is Function.STATUS
    assert (confirmation.source, confirmation.nonce, confirmation.register_id, confirmation.value) == (
        5,
        8,
        11,
        b"\x01",
    )
    assert confirmation.rssi == -50
    assert SHIPPED.get(1, 7).decode(11, confirmation.value)["Binary 0"] is True


def test_transmit_interval_register():
    packet = decode_line("(E531)0012000600120A003C")
    assert (packet.register_id, packet.value_int) == (10, 60)
    assert packet.lqi == 49
    assert packet.rssi == -87.5


def test_extended_addresses():
    packet = decode_line("(3C2D)0000000380123412340C02E4")
    assert packet.extended
    assert packet.source == 0x1234
    assert packet.register_address == 0x1234
    assert (packet.register_id, packet.value_int, packet.nonce) == (12, 740, 3)
    assert packet.rssi == -44
    assert encode_received(packet) == "(3C2D)0000000380123412340C02E4"


def test_addresses_above_one_byte_are_sent_extended():
    line = query_line(destination=0x1234, register_id=12, source=0x01)
    packet = decode_packet(bytes.fromhex(line))
    assert packet.extended
    assert (packet.destination, packet.source, packet.register_address, packet.register_id) == (0x1234, 1, 0x1234, 12)
    assert line == "1234000081000112340C"


def test_line_ends_and_bytes_are_accepted():
    assert decode_line(b"(E430)0012001A00120C02E4\r\n").value_int == 740


def test_lqi_drops_the_crc_bit():
    assert decode_line("(E4B0)0012001A00120C02E4").lqi == 0x30


def test_hop_and_security_nibbles():
    packet = decode_line("(E430)0012311A00120C02E4")
    assert (packet.hop, packet.security) == (3, 1)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "too short"),
        ("(E430)0012001A0012", "too short"),
        ("E430)0012001A00120C02E4x", "not a packet line"),
        ("(E430 0012001A00120C02E4", "not a packet line"),
        ("(E430)0012001A00120C02E", "odd number"),
        ("(E430)0012001A00120C02GG", "bad hex"),
        ("(E4 0)0012001A00120C02E4", "bad hex"),
        ("(E430)00 12001A00120C02E4 ", "bad hex"),
        ("(E430)0012001A07120C02E4", "unknown function"),
        ("(E430)001200038012341234", "shorter than the 10-byte header"),
        ("Modem ready!xxxxxxxxxxxxxxx", "not a packet line"),
        (b"(E430)\xff\xfe12001A00120C02E4", "not ASCII"),
    ],
)
def test_malformed_lines_raise_a_clear_decode_error(line, reason):
    with pytest.raises(DecodeError, match=reason):
        decode_line(line)


def test_encoding_refuses_fields_that_do_not_fit():
    with pytest.raises(EncodeError, match="destination"):
        encode_packet(Packet(0x100, 1, Function.QUERY, 0, 0))
    with pytest.raises(EncodeError, match="hop"):
        encode_packet(Packet(1, 1, Function.QUERY, 1, 0, hop=16))


def test_rssi_conversion_covers_every_byte():
    for raw in range(256):
        assert rssi_byte(rssi_dbm(raw)) == raw
    assert rssi_dbm(0x80) == -138
    assert rssi_dbm(0x7F) == -10.5


def packets(extended: bool | None = None):
    def build(extended: bool):
        address = st.integers(0, 0xFFFF if extended else 0xFF)
        return st.builds(
            Packet,
            destination=address,
            source=address,
            function=st.sampled_from(Function),
            register_address=address,
            register_id=st.integers(0, 255),
            value=st.binary(max_size=40),
            nonce=st.integers(0, 255),
            hop=st.integers(0, 15),
            security=st.integers(0, 15),
            extended=st.just(extended),
            rssi=st.integers(0, 255).map(rssi_dbm),
            lqi=st.integers(0, 127),
        )

    return build(extended) if extended is not None else st.booleans().flatmap(build)


@given(packets())
def test_encode_then_decode_gives_the_packet_back(packet):
    assert decode_line(encode_received(packet)) == packet
    sent = decode_packet(bytes.fromhex(encode_packet(packet)))
    assert sent == Packet(**{**_fields(packet), "rssi": None, "lqi": None})


@given(st.integers(0, 255), st.integers(0, 127), st.binary(min_size=7, max_size=40))
def test_decode_then_encode_gives_the_line_back(rssi, lqi, data):
    if data[4] & 0x7F > 2 or (data[4] & 0x80 and len(data) < 10):
        return
    line = f"({rssi:02X}{lqi:02X}){data.hex().upper()}"
    assert encode_received(decode_line(line)) == line


@given(
    st.one_of(st.text(max_size=80), st.binary(max_size=80), st.from_regex(r"\([0-9A-Fa-f ]{4}\)[0-9A-Fa-fx ]{0,60}"))
)
def test_arbitrary_lines_give_a_packet_or_a_decode_error(line):
    try:
        packet = decode_line(line)
    except DecodeError as error:
        message = str(error)
        assert message  # any other exception type fails the test
    else:
        assert isinstance(packet, Packet)
        assert isinstance(packet.function, Function)


def _fields(packet: Packet) -> dict:
    return packet._asdict()
