"""The modem driver against a pty and a socket playing the modem's start-up transcript (docs/protocols/swap.md §1, §7).

The far end is a small scripted modem written here, independent of the simulator, so the driver is checked
against the documented transcript (docs/protocols/swap.md §7) and not against the hub's own idea of a modem.
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import socket
import threading
import time
import tty

import pytest

from heating.modem import (
    Modem,
    ModemDisconnected,
    ModemError,
    ModemNotReady,
    ModemRebooted,
    ModemTimings,
    NetworkSettings,
)
from tests.support.waiting import wait_until

GUARD = 0.1
FAST = ModemTimings(ready_timeout=0.5, command_guard=GUARD, answer_timeout=0.5, write_gap=0.0, poll_interval=0.02)
# The documented transcript; ATDA? is not in it, but ATDA=01 is, so the modem had another address.
TRANSCRIPT = {
    "ATHV?": "100",
    "ATFV?": "101",
    "ATCH?": "0",
    "ATSW?": "B547",
    "ATDA?": "5",
    "ATDA=01": "OK",
    "ATO": "OK-Data mode",
}
TEMPERATURE_LINE = "(E430)0012001A00120C02E4"


class TranscriptModem:
    """Plays the modem's side: ``+++`` after silence → ``OK-Command mode``; each line → its scripted answer."""

    def __init__(self, send, recv, answers, *, says_ready=True, drain_before=None):
        self.send = send
        self.recv = recv
        self.answers = dict(answers)
        self.says_ready = says_ready
        #: Radio lines printed just before answering this command (still draining from data mode).
        self.drain_before = drain_before or {}
        #: (time, what) for every "+++" and every line received.
        self.received: list[tuple[float, str]] = []
        self.last_byte_at = 0.0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def lines(self) -> list[str]:
        return [what for _, what in self.received]

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self.thread.join(2)

    def pulse_ready(self):
        self.send(b"\r\nModem ready!\r\n")

    def _run(self):
        buffer = b""
        while not self.stopping.is_set():
            data = self.recv(0.02)
            if data is None:
                return
            if data:
                self.last_byte_at = time.monotonic()
                buffer += data
            while b"\r" in buffer:
                line, buffer = buffer.split(b"\r", 1)
                self._answer(line.decode())
            if buffer.endswith(b"+++") and time.monotonic() - self.last_byte_at >= GUARD * 0.9:
                buffer = b""
                self.received.append((self.last_byte_at, "+++"))
                self.send(b"OK-Command mode\r\n")

    def _answer(self, line):
        self.received.append((time.monotonic(), line))
        if line in self.drain_before:
            self.send(self.drain_before[line].encode() + b"\r\n")
        if line == "ATZ":
            self.send(b"OK\r\n")
            if self.says_ready:
                self.send(b"\r\nModem ready!\r\n")
            return
        if line and line not in self.answers and all(c in "0123456789ABCDEF" for c in line):
            return  # a packet line in data mode: nothing to answer
        self.send(self.answers.get(line, "ERROR").encode() + b"\r\n")


@contextlib.contextmanager
def pty_modem(tmp_path, answers=TRANSCRIPT, **options):
    """A pty whose far end plays the modem; yields (stable symlink path, TranscriptModem, master fd)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    link = tmp_path / "ttyPANSTAMP"
    link.symlink_to(os.ttyname(slave))
    closed = threading.Event()

    def recv(timeout):
        if closed.is_set():
            return None
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            return b""
        try:
            return os.read(master, 4096)
        except OSError:
            return None

    def send(data):
        if not closed.is_set():
            os.write(master, data)

    modem = TranscriptModem(send, recv, answers, **options).start()

    def unplug():
        closed.set()
        modem.stop()
        os.close(master)
        os.close(slave)

    modem.unplug = unplug
    try:
        yield str(link), modem
    finally:
        if not closed.is_set():
            unplug()


@contextlib.contextmanager
def socket_modem(answers=TRANSCRIPT, **options):
    """A TCP port whose one connection plays the modem; yields (socket:// URL, TranscriptModem)."""
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"socket://127.0.0.1:{listener.getsockname()[1]}"
    connection: list[socket.socket] = []

    def recv(timeout):
        if not connection:
            ready, _, _ = select.select([listener], [], [], timeout)
            if ready:
                connection.append(listener.accept()[0])
            return b""
        ready, _, _ = select.select(connection, [], [], timeout)
        if not ready:
            return b""
        try:
            data = connection[0].recv(4096)
        except OSError:
            return None
        return data if data else None

    def send(data):
        if connection:
            connection[0].sendall(data)

    modem = TranscriptModem(send, recv, answers, **options).start()
    try:
        yield url, modem
    finally:
        modem.stop()
        for sock in connection:
            sock.close()
        listener.close()


@pytest.fixture(params=["pty", "socket"])
def transcript_modem(request, tmp_path):
    """The scripted modem on a pty (opened through a symlink) and on a socket: yields (url, TranscriptModem)."""

    def make(answers=TRANSCRIPT, **options):
        if request.param == "pty":
            return pty_modem(tmp_path, answers, **options)
        return socket_modem(answers, **options)

    return make


def expected_start_up(*settings):
    return ["+++", "ATZ", "+++", "ATHV?", "ATFV?", "ATCH?", "ATSW?", "ATDA?", *settings, "ATO"]


def test_start_up_follows_the_transcript_and_writes_only_the_differing_address(transcript_modem):
    with transcript_modem() as (url, far_end):
        modem = Modem(url, network=NetworkSettings(channel=0, sync_word=0xB547, address=0x01), timings=FAST)
        info = modem.open()
        try:
            assert far_end.lines == expected_start_up("ATDA=01")
            assert (info.hardware_version, info.firmware_version) == (0x100, 0x101)
            assert (info.channel, info.sync_word, info.address) == (0, 0xB547, 1)
            assert info.changed == ("ATDA=01",)
            # Neither a pty nor a socket has modem lines: the reset was +++ and ATZ.
            assert info.reset_by == "atz"
        finally:
            modem.close()


def test_nothing_is_written_when_the_modem_already_matches(transcript_modem):
    answers = {**TRANSCRIPT, "ATDA?": "1"}
    with transcript_modem(answers) as (url, far_end):
        with Modem(url, timings=FAST) as modem:
            assert modem.info.changed == ()
        assert far_end.lines == expected_start_up()


def test_every_differing_setting_is_written_with_its_digits(transcript_modem):
    answers = {**TRANSCRIPT, "ATCH=02": "OK", "ATSW=00C8": "OK", "ATDA=0A": "OK"}
    with transcript_modem(answers) as (url, far_end):
        network = NetworkSettings(channel=2, sync_word=0x00C8, address=0x0A)
        with Modem(url, network=network, timings=FAST):
            pass
        assert far_end.lines == expected_start_up("ATCH=02", "ATSW=00C8", "ATDA=0A")


def test_command_mode_waits_out_the_guard_silence(transcript_modem):
    with transcript_modem() as (url, far_end), Modem(url, timings=FAST):
        received = far_end.received
        plus = [i for i, (_, what) in enumerate(received) if what == "+++"]
        for index in plus:
            plus_at = received[index][0]
            next_at = received[index + 1][0]
            # The far end timestamps bytes when its thread reads them, a few ms late under load.
            assert next_at - plus_at >= GUARD * 0.8, f"a byte followed +++ after {next_at - plus_at:.3f} s"


def test_a_modem_that_never_says_ready_is_a_clear_error_after_the_timeout(transcript_modem):
    with transcript_modem(says_ready=False) as (url, far_end):
        modem = Modem(url, timings=FAST)
        started = time.monotonic()
        with pytest.raises(ModemNotReady, match=r"did not say 'Modem ready!' within 0\.5 s"):
            modem.open()
        assert time.monotonic() - started < 6  # two +++/ATZ attempts with 0.5 s timeouts
        assert "ATZ" in far_end.lines
        assert not modem.is_open


def test_radio_lines_draining_during_commands_are_kept_for_read(transcript_modem):
    draining = transcript_modem(drain_before={"ATHV?": TEMPERATURE_LINE})
    with draining as (url, _far_end), Modem(url, timings=FAST) as modem:
        assert modem.info.hardware_version == 0x100
        packet = modem.read(0.5)
        assert (packet.source, packet.register_id, packet.value_int) == (0x12, 12, 740)


def test_data_mode_reads_packets_and_writes_lines(transcript_modem):
    errors = []
    with (
        transcript_modem() as (url, far_end),
        Modem(url, timings=FAST, on_decode_error=lambda line, error: errors.append(line)) as modem,
    ):
        far_end.send(b"(2A2F)000500070005000000000100000007\r\n")
        far_end.send(b"garbage \xff\xfe\r\n(E430)0012001A")  # a line cut in two writes
        far_end.send(b"00120C02E4\r\n(E430)00120ZZ\r\n")
        first = modem.read(0.5)
        second = modem.read(0.5)
        assert (first.source, first.register_id, first.value.hex()) == (5, 0, "0000000100000007")
        assert (second.source, second.value_int, second.rssi) == (0x12, 740, -88)
        assert modem.read(0.1) is None
        assert modem.decode_errors == 2
        assert [line[:7] for line in errors] == ["garbage", "(E430)0"]
        modem.send("0501000702050B01")
        assert wait_until(lambda: "0501000702050B01" in far_end.lines, timeout=1, interval=0.01)


def test_random_garbage_between_packets_never_breaks_reading(transcript_modem):
    rng = random.Random(6)
    with transcript_modem() as (url, far_end), Modem(url, timings=FAST) as modem:
        for _ in range(50):
            far_end.send(rng.randbytes(rng.randrange(1, 300)).replace(b"Modem", b"M0dem") + b"\r\n")
            far_end.send(TEMPERATURE_LINE.encode() + b"\r\n")
        packets = []
        deadline = time.monotonic() + 5
        while len(packets) < 50 and time.monotonic() < deadline:
            packet = modem.read(0.05)
            if packet is not None:
                packets.append(packet)
        assert sum(p.source == 0x12 and p.value_int == 740 for p in packets) >= 50
        assert modem.decode_errors >= 40


def test_packets_iterates_until_stopping_is_set(transcript_modem):
    stopping = threading.Event()
    with transcript_modem() as (url, far_end), Modem(url, timings=FAST) as modem:
        far_end.send(b"(2A2F)000500070005000000000100000007\r\n" + TEMPERATURE_LINE.encode() + b"\r\n")
        received = []
        for packet in modem.packets(stopping):
            received.append(packet.source)
            if len(received) == 2:
                stopping.set()
        assert received == [0x05, 0x12]


def test_a_modem_that_restarts_by_itself_is_reported(transcript_modem):
    with transcript_modem() as (url, far_end), Modem(url, timings=FAST) as modem:
        far_end.send(b"\r\nModem ready!\r\n")
        with pytest.raises(ModemRebooted):
            modem.read(0.5)


def test_an_unplugged_pty_is_reported_as_disconnected(tmp_path):
    with pty_modem(tmp_path) as (url, far_end), Modem(url, timings=FAST) as modem:
        far_end.unplug()
        with pytest.raises(ModemDisconnected):
            read_until_failure(modem)


def test_network_settings_come_from_the_swap_settings(settings):
    settings.SWAP_CHANNEL = 2
    settings.SWAP_SYNC_WORD = "00C8"
    settings.SWAP_ADDRESS = "0A"
    assert NetworkSettings.from_settings(settings) == NetworkSettings(channel=2, sync_word=0xC8, address=0x0A)


def read_until_failure(modem):
    for _ in range(50):
        modem.read(0.02)


def test_a_missing_port_is_reported_as_disconnected(tmp_path):
    with pytest.raises(ModemDisconnected, match="cannot open"):
        Modem(str(tmp_path / "ttyUSB9"), timings=FAST).open()


def test_an_unexpected_answer_names_the_command(transcript_modem):
    with transcript_modem({**TRANSCRIPT, "ATSW?": "ERROR"}) as (url, _far_end):
        modem = Modem(url, timings=FAST)
        with pytest.raises(ModemError, match=r"'ERROR' to ATSW\?"):
            modem.open()


class LinesPort:
    """A port with modem lines (as a USB serial adapter has): raising DTR reboots the far end's modem."""

    def __init__(self, far_end_socket, on_dtr_raised):
        self.socket = far_end_socket
        self.socket.settimeout(FAST.poll_interval)
        self.on_dtr_raised = on_dtr_raised
        self.line_changes: list[tuple[str, bool]] = []

    @property
    def in_waiting(self):
        ready, _, _ = select.select([self.socket], [], [], 0)
        return 1 if ready else 0

    def read(self, size):
        try:
            return self.socket.recv(size)
        except TimeoutError:
            return b""

    def write(self, data):
        self.socket.sendall(data)

    def flush(self):
        pass

    def reset_input_buffer(self):
        pass

    def close(self):
        self.socket.close()

    def _set(self, name, value):
        self.line_changes.append((name, value))
        if name == "dtr" and value:
            self.on_dtr_raised()

    dtr = property(None, lambda self, value: self._set("dtr", value))
    rts = property(None, lambda self, value: self._set("rts", value))


def test_a_port_with_modem_lines_is_reset_by_dtr_and_rts_without_atz():
    host_side, modem_side = socket.socketpair()
    modem_side.settimeout(0.02)

    def recv(_timeout):
        try:
            return modem_side.recv(4096) or None
        except TimeoutError:
            return b""
        except OSError:
            return None

    far_end = TranscriptModem(modem_side.sendall, recv, {**TRANSCRIPT, "ATDA?": "1"}).start()
    ports = []

    def open_port(url, **options):
        assert options["baudrate"] == 38400
        assert (options["bytesize"], options["parity"], options["stopbits"]) == (8, "N", 1)
        ports.append(LinesPort(host_side, far_end.pulse_ready))
        return ports[0]

    try:
        with Modem("/dev/ttyUSB0", timings=FAST, serial_for_url=open_port) as modem:
            assert modem.info.reset_by == "dtr"
        assert ports[0].line_changes == [("dtr", False), ("rts", False), ("dtr", True), ("rts", True)]
        assert far_end.lines == ["+++", "ATHV?", "ATFV?", "ATCH?", "ATSW?", "ATDA?", "ATO"]
    finally:
        far_end.stop()
        modem_side.close()
