"""A virtual panStamp modem: the modem sketch's serial behaviour (docs/protocols/swap.md §1-4) as a state machine.

Bytes from the host go in through :meth:`VirtualModem.feed`, text for the host comes out through ``output``, and
packets the host sends go to the radio through ``transmit``. Time is passed in (real seconds), so the ``+++``
guard can be tested without waiting.
"""

from __future__ import annotations

from collections.abc import Callable

from heating.swap.codec import DecodeError, Packet, decode_packet, encode_received

READY = b"\r\nModem ready!\r\n"
GUARD_TIME = 1.5


class VirtualModem:
    def __init__(
        self,
        *,
        output: Callable[[bytes], None],
        transmit: Callable[[Packet], None],
        guard_time: float = GUARD_TIME,
        boot_time: float = 0.2,
        hardware_version: int = 0x100,
        firmware_version: int = 0x101,
    ) -> None:
        self.output = output
        self.transmit = transmit
        self.guard_time = guard_time
        self.boot_time = boot_time
        self.hardware_version = hardware_version
        self.firmware_version = firmware_version
        #: "off", "booting", "data" or "command".
        self.state = "off"
        #: Every AT command received, in order (what tests check the driver wrote).
        self.commands: list[str] = []
        self._buffer = bytearray()
        self._last_byte = float("-inf")
        self._ready_at = 0.0
        self._defaults()

    def _defaults(self) -> None:
        # The sketch keeps nothing across a reboot: the host sets the network up every time.
        self.channel = 0
        self.sync_word = 0xB547
        self.address = 0x01
        self.address_check = False

    def power_on(self, now: float) -> None:
        """Boot (plugging in, ``ATZ``, or DTR on a real board): ``Modem ready!`` after ``boot_time``."""
        self._defaults()
        self._buffer.clear()
        self.state = "booting"
        self._ready_at = now + self.boot_time

    def power_off(self) -> None:
        self.state = "off"
        self._buffer.clear()

    def tick(self, now: float) -> None:
        if self.state == "booting" and now >= self._ready_at:
            self.state = "data"
            self.output(READY)
        elif self.state == "data" and self._buffer.endswith(b"+++") and now - self._last_byte >= self.guard_time:
            self._buffer.clear()
            self.state = "command"
            self.output(b"OK-Command mode\r\n")

    def feed(self, data: bytes, now: float) -> None:
        if self.state in ("off", "booting"):
            return
        for byte in data:
            self._last_byte = now
            if byte == 0x0D:
                line = self._buffer.decode("ascii", "replace")
                self._buffer.clear()
                if self.state == "command":
                    self._at(line, now)
                else:
                    self._data_line(line)
            elif byte != 0x0A:
                self._buffer.append(byte)
                if len(self._buffer) > 1024:
                    del self._buffer[:-3]

    def receive(self, packet: Packet) -> None:
        """A packet heard on the air: printed in data mode (reception is off in command mode)."""
        if self.state != "data":
            return
        if self.address_check and packet.destination not in (0, self.address):
            return
        self.output(encode_received(packet).encode("ascii") + b"\r\n")

    def _data_line(self, line: str) -> None:
        try:
            packet = decode_packet(bytes.fromhex(line))
        except (ValueError, DecodeError):
            return
        self.transmit(packet)

    def _at(self, line: str, now: float) -> None:
        self.commands.append(line)
        command, operator, argument = line[:4], line[4:5], line[5:]
        answer = "ERROR"
        if line == "AT":
            answer = "OK"
        elif line == "ATZ":
            self.output(b"OK\r\n")
            self.power_on(now)
            return
        elif line == "ATO":
            self.state = "data"
            answer = "OK-Data mode"
        elif operator == "?" and command in ("ATHV", "ATFV", "ATCH", "ATSW", "ATDA"):
            answer = "{:X}".format(
                {
                    "ATHV": self.hardware_version,
                    "ATFV": self.firmware_version,
                    "ATCH": self.channel,
                    "ATSW": self.sync_word,
                    "ATDA": self.address,
                }[command]
            )
        elif operator == "=":
            answer = self._set(command, argument)
        self.output(answer.encode("ascii") + b"\r\n")

    def _set(self, command: str, argument: str) -> str:
        try:
            if command == "ATSW":
                if len(argument) != 4:
                    return "ERROR"
                self.sync_word = int(argument, 16)
                return "OK"
            # The sketch reads characters 5 and 6: "ATDA=1" is taken as 0x10.
            two = (argument[:2] + "0")[:2]
            value = int(two, 16)
        except ValueError:
            return "ERROR"
        if command == "ATCH":
            self.channel = value
        elif command == "ATDA":
            self.address = value
        elif command == "ATAC" and value in (0, 1):
            self.address_check = bool(value)
        else:
            return "ERROR"
        return "OK"
