"""The panStamp modem driver: open the serial port, bring the modem onto the hub's network, then packets in and out.

``Modem(url, network=...)`` opens ``url`` with pyserial (``/dev/ttyUSB0``, a stable symlink, ``socket://host:port``)
at 38400 8N1 and, in :meth:`Modem.open`:

1. resets the modem by dropping and raising DTR/RTS where the port has modem lines; a pty or a socket has none,
   so there (or when the modem stays silent) it sends ``+++`` and then ``ATZ``;
2. waits for ``Modem ready!``;
3. enters command mode (``+++`` then a silence of at least the modem's 1.5 s guard time);
4. reads the hardware and firmware versions and the channel, sync word and address;
5. writes ``ATCH=``/``ATSW=``/``ATDA=`` only for values that differ from the configured network;
6. returns to data mode (``ATO``).

Then :meth:`Modem.read` gives decoded packets (bad lines are counted and handed to ``on_decode_error``) and
:meth:`Modem.send` writes a line. Every timer is a field of :class:`ModemTimings`, so tests run in milliseconds.
A modem that reboots by itself (it prints ``Modem ready!`` again, having forgotten its settings) raises
:class:`ModemRebooted`; a port that goes away raises :class:`ModemDisconnected`: the caller closes and opens again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import serial

from heating.swap import DecodeError, Packet, decode_line

logger = logging.getLogger(__name__)

BAUD_RATE = 38400
READY_TEXT = "Modem ready!"
COMMAND_MODE_TEXT = "OK-Command mode"
DATA_MODE_TEXT = "OK-Data mode"
#: Longer than any packet line (a SWAP packet has at most 255 bytes).
MAX_LINE_BYTES = 1024


class ModemError(Exception):
    """The modem did not behave as a panStamp modem does; the message says what was expected."""


class ModemNotReady(ModemError):
    pass


class ModemRebooted(ModemError):
    pass


class ModemDisconnected(ModemError):
    pass


@dataclass(frozen=True)
class NetworkSettings:
    """The panStamp network the modem joins (``SWAP_CHANNEL``, ``SWAP_SYNC_WORD``, ``SWAP_ADDRESS``)."""

    channel: int = 0
    sync_word: int = 0xB547
    address: int = 0x01

    @classmethod
    def from_settings(cls, settings) -> NetworkSettings:
        return cls(settings.SWAP_CHANNEL, int(settings.SWAP_SYNC_WORD, 16), int(settings.SWAP_ADDRESS, 16))


@dataclass(frozen=True)
class ModemTimings:
    #: How long the modem may take to print ``Modem ready!`` after a reset (docs/protocols/swap.md §1).
    ready_timeout: float = 5.0
    #: Silence after ``+++`` (and before it): the modem's guard time is 1.5 s, any byte restarts it.
    command_guard: float = 1.6
    #: How long an AT command may take to be answered.
    answer_timeout: float = 2.0
    #: The modem needs at least 50 ms between writes.
    write_gap: float = 0.05
    #: How long DTR/RTS stay low to reset the board.
    reset_pulse: float = 0.1
    #: How long one read of the port blocks; bounds how fast ``read`` notices a stop request.
    poll_interval: float = 0.05


@dataclass(frozen=True)
class ModemInfo:
    hardware_version: int
    firmware_version: int
    channel: int
    sync_word: int
    address: int
    #: The AT settings written because they differed from the configured network, e.g. ``["ATDA=01"]``.
    changed: tuple[str, ...] = ()
    #: How the modem was reset: ``"dtr"``, ``"atz"``, or ``"power-on"`` when it was found booting.
    reset_by: str = ""


class Modem:
    def __init__(
        self,
        url: str,
        *,
        network: NetworkSettings | None = None,
        timings: ModemTimings | None = None,
        on_decode_error: Callable[[str, DecodeError], None] | None = None,
        serial_for_url: Callable[..., serial.SerialBase] = serial.serial_for_url,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self.network = network or NetworkSettings()
        self.timings = timings or ModemTimings()
        self.on_decode_error = on_decode_error
        self.info: ModemInfo | None = None
        self.decode_errors = 0
        self._serial_for_url = serial_for_url
        self._clock = clock
        self._sleep = sleep
        self._port: serial.SerialBase | None = None
        self._buffer = bytearray()
        self._pending: deque[str] = deque()
        self._last_write = float("-inf")
        self._write_lock = threading.Lock()

    # --- opening -------------------------------------------------------------------------------------------------

    def open(self) -> ModemInfo:
        """Open the port and bring the modem into data mode on the configured network."""
        self.close()
        try:
            self._port = self._serial_for_url(
                self.url,
                baudrate=BAUD_RATE,
                bytesize=serial.EIGHTBITS,
                parity=serial.PARITY_NONE,
                stopbits=serial.STOPBITS_ONE,
                timeout=self.timings.poll_interval,
                write_timeout=self.timings.answer_timeout,
                do_not_open=False,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise ModemDisconnected(f"cannot open {self.url}: {exc}") from exc
        try:
            reset_by = self._reset()
            self._enter_command_mode()
            info = self._configure()
        except Exception:
            self.close()
            raise
        self.info = replace(info, reset_by=reset_by)
        logger.info(
            "panStamp modem on %s ready: hardware %X, firmware %X, channel %d, sync word %04X, address %02X%s",
            self.url,
            info.hardware_version,
            info.firmware_version,
            info.channel,
            info.sync_word,
            info.address,
            f" (set {', '.join(info.changed)})" if info.changed else "",
        )
        return self.info

    def close(self) -> None:
        port, self._port = self._port, None
        self._buffer.clear()
        self._pending.clear()
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def __enter__(self) -> Modem:
        self.open()
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def _reset(self) -> str:
        port = self._require_port()
        self._discard_input()
        if self._pulse_modem_lines(port):
            if self._wait_for_ready(self.timings.ready_timeout):
                return "dtr"
            logger.warning("modem on %s did not say %r after DTR/RTS; trying +++ and ATZ", self.url, READY_TEXT)
        # No modem lines, or the board ignored them: reboot it by command. Twice, because a modem that is
        # still booting (just plugged in) ignores the first "+++".
        for _attempt in range(2):
            self._write(b"+++")
            self._sleep(self.timings.command_guard)
            answer = self._read_text_line(self.timings.answer_timeout)
            if answer != COMMAND_MODE_TEXT and answer != READY_TEXT:
                # Already in command mode (the "+++" now sits in its line buffer) or deaf to it: end that line.
                self._write(b"\r")
                answer = self._read_text_line(self.timings.answer_timeout)
            if answer == READY_TEXT:
                # It finished booting meanwhile: in data mode with its defaults, as after a reset.
                return "power-on"
            self._write(b"ATZ\r")
            if self._wait_for_ready(self.timings.answer_timeout + self.timings.ready_timeout):
                return "atz"
        raise ModemNotReady(
            f"the modem on {self.url} did not say {READY_TEXT!r} within {self.timings.ready_timeout:g} s "
            "of a reset (DTR/RTS where the port has them, then +++ and ATZ): is it a panStamp running the modem sketch "
            "at 38400 baud?"
        )

    def _pulse_modem_lines(self, port: serial.SerialBase) -> bool:
        """Drop and raise DTR/RTS; ``False`` where the port has no modem lines (a pty raises, a socket ignores)."""
        if type(port).__module__.startswith("serial.urlhandler.protocol_socket"):
            return False
        try:
            port.dtr = False
            port.rts = False
            self._sleep(self.timings.reset_pulse)
            port.dtr = True
            port.rts = True
        except (OSError, serial.SerialException, NotImplementedError) as exc:
            logger.debug("%s has no modem lines (%s)", self.url, exc)
            return False
        return True

    def _wait_for_ready(self, timeout: float) -> bool:
        deadline = self._clock() + timeout
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return False
            line = self._read_text_line(remaining)
            if line == READY_TEXT:
                return True

    def _enter_command_mode(self) -> None:
        # Silence on both sides of "+++": a byte within the guard time makes it data.
        self._sleep(max(0.0, self.timings.command_guard - (self._clock() - self._last_write)))
        self._write(b"+++")
        answer = self._read_text_line(self.timings.command_guard + self.timings.answer_timeout)
        if answer != COMMAND_MODE_TEXT:
            raise ModemError(f"the modem on {self.url} answered {answer!r} to +++, expected {COMMAND_MODE_TEXT!r}")

    def _configure(self) -> ModemInfo:
        hardware = self._query_hex("ATHV?")
        firmware = self._query_hex("ATFV?")
        channel = self._query_hex("ATCH?")
        sync_word = self._query_hex("ATSW?")
        address = self._query_hex("ATDA?")
        wanted = self.network
        changes = []
        if channel != wanted.channel:
            changes.append(f"ATCH={wanted.channel:02X}")
        if sync_word != wanted.sync_word:
            changes.append(f"ATSW={wanted.sync_word:04X}")
        if address != wanted.address:
            changes.append(f"ATDA={wanted.address:02X}")
        for command in changes:
            self._expect(command, "OK")
        self._expect("ATO", DATA_MODE_TEXT)
        return ModemInfo(hardware, firmware, wanted.channel, wanted.sync_word, wanted.address, tuple(changes))

    def _query_hex(self, command: str) -> int:
        answer = self.command(command)
        try:
            return int(answer, 16)
        except ValueError:
            raise ModemError(f"the modem on {self.url} answered {answer!r} to {command}, expected hex digits") from None

    def _expect(self, command: str, expected: str) -> None:
        answer = self.command(command)
        if answer != expected:
            raise ModemError(f"the modem on {self.url} answered {answer!r} to {command}, expected {expected!r}")

    def command(self, command: str) -> str:
        """Send one AT command (in command mode) and return its answer; radio lines still draining are kept."""
        self._write(command.encode("ascii") + b"\r")
        answer = self._read_text_line(self.timings.answer_timeout)
        if answer is None:
            raise ModemError(
                f"the modem on {self.url} did not answer {command} within {self.timings.answer_timeout:g} s"
            )
        return answer

    # --- data mode -----------------------------------------------------------------------------------------------

    def send(self, line: str) -> None:
        """Write one packet line (hex, as :mod:`heating.swap.codec` encodes it); the ``\\r`` is added here."""
        self._write(line.encode("ascii") + b"\r")

    def read(self, timeout: float | None = None) -> Packet | None:
        """The next packet, or ``None`` after ``timeout`` (default one poll interval) without one.

        Lines that are not packets are counted in ``decode_errors`` and passed to ``on_decode_error``.
        """
        deadline = self._clock() + (self.timings.poll_interval if timeout is None else timeout)
        while True:
            line = self._pending.popleft() if self._pending else self._read_line(deadline - self._clock())
            if line is None:
                return None
            if not line:
                continue
            if line == READY_TEXT:
                raise ModemRebooted(f"the modem on {self.url} restarted and must be set up again")
            try:
                return decode_line(line)
            except DecodeError as error:
                self.decode_errors += 1
                if self.on_decode_error is not None:
                    self.on_decode_error(line, error)
                else:
                    logger.debug("not a packet from %s: %s", self.url, error)

    def packets(self, stopping: threading.Event) -> Iterator[Packet]:
        """Packets until ``stopping`` is set."""
        while not stopping.is_set():
            packet = self.read()
            if packet is not None:
                yield packet

    # --- the port ------------------------------------------------------------------------------------------------

    def _require_port(self) -> serial.SerialBase:
        if self._port is None:
            raise ModemDisconnected(f"the modem on {self.url} is not open")
        return self._port

    def _discard_input(self) -> None:
        port = self._require_port()
        with contextlib.suppress(serial.SerialException, OSError):
            port.reset_input_buffer()
        self._buffer.clear()
        self._pending.clear()

    def _write(self, data: bytes) -> None:
        port = self._require_port()
        with self._write_lock:
            gap = self.timings.write_gap - (self._clock() - self._last_write)
            if gap > 0:
                self._sleep(gap)
            try:
                port.write(data)
                port.flush()
            except (serial.SerialException, OSError) as exc:
                raise ModemDisconnected(f"writing to {self.url} failed: {exc}") from exc
            self._last_write = self._clock()

    def _read_line(self, timeout: float) -> str | None:
        """One line (``\\r`` stripped), or ``None`` when none completed in time; a partial line stays buffered."""
        port = self._require_port()
        deadline = self._clock() + max(0.0, timeout)
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                raw = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                return raw.strip(b"\r").decode("ascii", "replace")
            try:
                chunk = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                # pyserial reports an unplugged USB device (and a closed pty) as "returned no data", a
                # closed socket as a SerialException; a port closed under us as TypeError/AttributeError.
                raise ModemDisconnected(f"reading from {self.url} failed: {exc}") from exc
            if chunk:
                self._buffer += chunk
                if len(self._buffer) > MAX_LINE_BYTES and b"\n" not in self._buffer:
                    # Garbage without line ends: hand it on as one bad line rather than buffer it forever.
                    raw = bytes(self._buffer)
                    self._buffer.clear()
                    return raw.decode("ascii", "replace")
                if b"\n" in chunk or self._clock() < deadline:
                    continue
            if self._clock() >= deadline:
                return None

    def _read_text_line(self, timeout: float) -> str | None:
        """The next non-empty modem text line; radio packets (``(`` lines) met on the way are kept for ``read``."""
        deadline = self._clock() + timeout
        while True:
            line = self._read_line(deadline - self._clock())
            if line is None:
                return None
            if line.startswith("("):
                self._pending.append(line)
            elif line:
                return line
