"""SWAP packets as the panStamp modem prints and accepts them (docs/protocols/swap.md §3-4).

Received in data mode, one packet a line: ``(RRQQ)HEXBYTES`` — RSSI and LQI bytes, then the SWAP packet.
Sent by the host: the packet alone as uppercase hex, ended by ``\\r`` (the driver adds the ``\\r``).
Pure: no Django, no pyserial.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

BROADCAST = 0x00
#: The shortest line that can hold a packet: ``(RRQQ)`` and seven bytes of header.
MIN_LINE_LENGTH = 20
_HEADER_BYTES = 7
_EXTENDED_HEADER_BYTES = 10
_EXTENDED_FLAG = 0x80


class Function(IntEnum):
    STATUS = 0
    QUERY = 1
    COMMAND = 2


_FUNCTIONS = (Function.STATUS, Function.QUERY, Function.COMMAND)
_new_tuple = tuple.__new__


class DecodeError(ValueError):
    """A line that is not a SWAP packet; the message says why and quotes the line."""


class EncodeError(ValueError):
    """A packet whose fields do not fit the SWAP layout."""


class Packet(NamedTuple):
    """One SWAP packet; a named tuple because building one is most of what decoding costs (a frozen dataclass
    took ten times as long: docs/benchmarks.md)."""

    destination: int
    source: int
    function: Function
    register_address: int
    register_id: int
    value: bytes = b""
    nonce: int = 0
    hop: int = 0
    #: Low nibble of byte 2: bit 0 anti-playback, bit 1 smart encryption, bit 2 AES.
    security: int = 0
    #: Two-byte addresses (function byte bit 7).
    extended: bool = False
    #: Received signal strength in dBm (half-dB steps); ``None`` for a packet the host sends.
    rssi: float | None = None
    #: Link quality indicator, 0-127; ``None`` for a packet the host sends.
    lqi: int | None = None

    @property
    def is_broadcast(self) -> bool:
        return self.destination == BROADCAST

    @property
    def value_int(self) -> int:
        """The value as an unsigned big-endian number (SWAP's byte order for numbers)."""
        return int.from_bytes(self.value, "big")


def rssi_dbm(raw: int) -> float:
    """The CC1101's RSSI byte in dBm, as panStamp's tools compute it."""
    return (raw - 256) / 2 - 74 if raw >= 128 else raw / 2 - 74


def rssi_byte(dbm: float) -> int:
    """Inverse of :func:`rssi_dbm` (for the simulator); ``dbm`` must be on the half-dB grid from -138 to -10.5."""
    doubled = round((dbm + 74) * 2)
    raw = doubled + 256 if doubled < 0 else doubled
    if not 0 <= raw <= 255 or rssi_dbm(raw) != dbm:
        raise EncodeError(f"RSSI {dbm} dBm is not representable")
    return raw


def decode_line(line: str | bytes) -> Packet:
    """One line from the modem (``\\r``/``\\n`` allowed at the ends) into a :class:`Packet`.

    Anything else raises :class:`DecodeError`.
    """
    if line.__class__ is not str:
        try:
            line = bytes(line).decode("ascii")
        except (UnicodeDecodeError, TypeError, ValueError):
            raise DecodeError(f"not ASCII: {line[:60]!r}") from None
    if line[-1:] in ("\n", "\r") or line[:1] in ("\n", "\r"):
        line = line.strip("\r\n")
    length = len(line)
    if length < MIN_LINE_LENGTH:
        raise DecodeError(f"too short for a packet ({length} characters): {line!r}")
    if line[0] != "(" or line[5] != ")":
        raise DecodeError(f"not a packet line, expected '(RRQQ)': {line[:60]!r}")
    if length % 2:
        raise DecodeError(f"odd number of hex digits: {line[:60]!r}")
    try:
        data = bytes.fromhex(line[1:5] + line[6:])
    except ValueError:
        raise DecodeError(f"bad hex: {line[:60]!r}") from None
    # fromhex skips whitespace between pairs; the modem never sends any, so a shorter result is garbage.
    if len(data) * 2 != length - 2:
        raise DecodeError(f"bad hex: {line[:60]!r}")
    raw_rssi = data[0]
    rssi = (raw_rssi - 256) / 2 - 74 if raw_rssi >= 128 else raw_rssi / 2 - 74
    function_byte = data[6]
    code = function_byte & 0x7F
    if code > 2:
        raise DecodeError(f"unknown function {code}")
    flags = data[4]
    if function_byte & _EXTENDED_FLAG:
        if len(data) < _EXTENDED_HEADER_BYTES + 2:
            raise DecodeError(f"extended packet of {len(data) - 2} bytes is shorter than the 10-byte header")
        fields = (
            (data[2] << 8) | data[3],
            (data[7] << 8) | data[8],
            _FUNCTIONS[code],
            (data[9] << 8) | data[10],
            data[11],
            data[12:],
            data[5],
            flags >> 4,
            flags & 0x0F,
            True,
            rssi,
            data[1] & 0x7F,
        )
    else:
        fields = (
            data[2],
            data[3],
            _FUNCTIONS[code],
            data[7],
            data[8],
            data[9:],
            data[5],
            flags >> 4,
            flags & 0x0F,
            False,
            rssi,
            data[1] & 0x7F,
        )
    # Straight to tuple.__new__: the named tuple's own __new__ costs a third of the decode.
    return _new_tuple(Packet, fields)


def decode_packet(data: bytes) -> Packet:
    """The SWAP packet itself (no RSSI/LQI), e.g. what the host sends, into a :class:`Packet`."""
    if len(data) < _HEADER_BYTES:
        raise DecodeError(f"packet of {len(data)} bytes is shorter than the 7-byte header")
    function_byte = data[4]
    code = function_byte & 0x7F
    if code > Function.COMMAND:
        raise DecodeError(f"unknown function {code}")
    if function_byte & _EXTENDED_FLAG:
        if len(data) < _EXTENDED_HEADER_BYTES:
            raise DecodeError(f"extended packet of {len(data)} bytes is shorter than the 10-byte header")
        return Packet(
            (data[0] << 8) | data[1],
            (data[5] << 8) | data[6],
            Function(code),
            (data[7] << 8) | data[8],
            data[9],
            data[10:],
            data[3],
            data[2] >> 4,
            data[2] & 0x0F,
            True,
        )
    return Packet(
        data[0], data[1], Function(code), data[5], data[6], data[7:], data[3], data[2] >> 4, data[2] & 0x0F, False
    )


def _check(name: str, value: int, bits: int) -> None:
    if not 0 <= value < (1 << bits):
        raise EncodeError(f"{name}={value} does not fit in {bits} bits")


def encode_packet(packet: Packet) -> str:
    """The packet as the host writes it (uppercase hex, no RSSI/LQI, no line end)."""
    address_bits = 16 if packet.extended else 8
    _check("destination", packet.destination, address_bits)
    _check("source", packet.source, address_bits)
    _check("register_address", packet.register_address, address_bits)
    _check("register_id", packet.register_id, 8)
    _check("nonce", packet.nonce, 8)
    _check("hop", packet.hop, 4)
    _check("security", packet.security, 4)
    flags = (packet.hop << 4) | packet.security
    function = int(packet.function)
    if packet.extended:
        header = bytes(
            (
                packet.destination >> 8,
                packet.destination & 0xFF,
                flags,
                packet.nonce,
                function | _EXTENDED_FLAG,
                packet.source >> 8,
                packet.source & 0xFF,
                packet.register_address >> 8,
                packet.register_address & 0xFF,
                packet.register_id,
            )
        )
    else:
        header = bytes(
            (
                packet.destination,
                packet.source,
                flags,
                packet.nonce,
                function,
                packet.register_address,
                packet.register_id,
            )
        )
    return (header + bytes(packet.value)).hex().upper()


def encode_received(packet: Packet) -> str:
    """The line the modem prints for a received packet: ``(RRQQ)HEX`` (what the simulator emits)."""
    rssi = rssi_byte(packet.rssi if packet.rssi is not None else -60.0)
    lqi = packet.lqi if packet.lqi is not None else 0
    _check("lqi", lqi, 7)
    return f"({rssi:02X}{lqi:02X}){encode_packet(packet)}"


def query_line(*, destination: int, register_id: int, source: int, register_address: int | None = None) -> str:
    """A QUERY for ``register_id`` of ``register_address`` (by default the destination itself)."""
    return encode_packet(
        Packet(
            destination,
            source,
            Function.QUERY,
            destination if register_address is None else register_address,
            register_id,
            extended=destination > 0xFF or source > 0xFF,
        )
    )


def command_line(
    *, destination: int, register_id: int, value: bytes, source: int, nonce: int = 0, security: int = 0
) -> str:
    """A COMMAND writing ``value`` to register ``register_id`` of ``destination``.

    ``nonce`` is the last nonce heard from that node; it only matters when the node checks anti-playback.
    """
    return encode_packet(
        Packet(
            destination,
            source,
            Function.COMMAND,
            destination,
            register_id,
            bytes(value),
            nonce,
            0,
            security,
            extended=destination > 0xFF or source > 0xFF,
        )
    )


def discovery_line(*, source: int) -> str:
    """The broadcast QUERY for product codes (register 0) that every node answers."""
    return query_line(destination=BROADCAST, register_id=0, source=source, register_address=BROADCAST)
