"""The simulated panStamp network: the virtual modem's AT behaviour, the room-heater firmware, the thermal model,
faults, and the whole thing reached by the real driver on a pty symlink and on a TCP port."""

from __future__ import annotations

import itertools
import random
import socket
import time

import pytest

from heating.modem import Modem, ModemDisconnected, ModemTimings, NetworkSettings
from heating.simulator import Faults, Room, RoomHeaterNode, SimulatedNetwork, VirtualModem
from heating.simulator.node import HEATING, MANUAL, ROOM_TEMP
from heating.swap import Function, Packet, command_line, decode_line, decode_packet, discovery_line, query_line
from heating.swap.definitions import DefinitionLibrary
from heating.swap.registers import split_product_code
from tests.support.waiting import wait_until

HEATER = DefinitionLibrary.load().get(72, 1)

# --- the virtual modem, with time passed in ----------------------------------------------------------------------


class ModemHarness:
    def __init__(self, **options):
        self.out = bytearray()
        self.sent: list[Packet] = []
        self.modem = VirtualModem(output=self.out.extend, transmit=self.sent.append, **options)
        self.now = 0.0

    def boot(self):
        self.modem.power_on(self.now)
        self.advance(self.modem.boot_time)

    def advance(self, seconds):
        self.now += seconds
        self.modem.tick(self.now)

    def feed(self, data: bytes):
        self.modem.feed(data, self.now)
        self.modem.tick(self.now)

    def take(self) -> list[str]:
        text = self.out.decode()
        self.out.clear()
        return text.split("\r\n")[:-1]

    def command_mode(self):
        self.feed(b"+++")
        self.advance(self.modem.guard_time)
        assert self.take() == ["OK-Command mode"]

    def at(self, command: str) -> str:
        self.feed(command.encode() + b"\r")
        (answer,) = self.take()
        return answer


def test_virtual_modem_boots_into_data_mode_saying_ready():
    harness = ModemHarness(boot_time=0.5)
    harness.modem.power_on(0.0)
    harness.advance(0.4)
    assert harness.take() == []
    harness.advance(0.1)
    assert harness.take() == ["", "Modem ready!"]
    assert harness.modem.state == "data"


def test_plus_plus_plus_needs_the_guard_silence():
    harness = ModemHarness(guard_time=1.5)
    harness.boot()
    harness.take()
    harness.feed(b"+++")
    harness.advance(1.0)
    harness.feed(b"+")  # a byte within the guard time restarts the timer
    harness.advance(1.0)
    assert harness.take() == []
    harness.advance(0.5)
    assert harness.take() == ["OK-Command mode"]
    assert harness.modem.state == "command"


def test_at_commands_answer_as_the_modem_sketch_does():
    harness = ModemHarness()
    harness.boot()
    harness.take()
    harness.command_mode()
    assert harness.at("AT") == "OK"
    assert harness.at("ATHV?") == "100"
    assert harness.at("ATFV?") == "101"
    assert harness.at("ATCH?") == "0"
    assert harness.at("ATSW?") == "B547"
    assert harness.at("ATDA?") == "1"
    assert harness.at("ATCH=02") == "OK"
    assert harness.at("ATCH?") == "2"
    assert harness.at("ATSW=12") == "ERROR"  # exactly four hex digits
    assert harness.at("ATSW=00C8") == "OK"
    assert harness.at("ATSW?") == "C8"
    assert harness.at("ATDA=1") == "OK"
    assert harness.at("ATDA?") == "10"  # characters 5 and 6 are read: "1" is 0x10
    assert harness.at("ATAC=01") == "OK"
    assert harness.at("ATXX") == "ERROR"
    assert harness.at("ATO") == "OK-Data mode"
    assert harness.modem.state == "data"


def test_atz_reboots_and_forgets_the_settings():
    harness = ModemHarness(boot_time=0.2)
    harness.boot()
    harness.take()
    harness.command_mode()
    harness.at("ATCH=02")
    harness.feed(b"ATZ\r")
    assert harness.take() == ["OK"]
    harness.advance(0.2)
    assert harness.take() == ["", "Modem ready!"]
    assert harness.modem.channel == 0


def test_data_mode_transmits_host_lines_and_prints_received_packets_command_mode_does_not():
    harness = ModemHarness()
    harness.boot()
    harness.take()
    harness.feed(b"1201000001120C\r")
    assert harness.sent == [decode_packet(bytes.fromhex("1201000001120C"))]
    status = decode_line("(E430)0012001A00120C02E4")
    harness.modem.receive(status)
    assert harness.take() == ["(E430)0012001A00120C02E4"]
    harness.command_mode()
    harness.modem.receive(status)
    assert harness.take() == []


# --- the room-heater firmware ------------------------------------------------------------------------------------


def heater(**options) -> RoomHeaterNode:
    options.setdefault("rng", random.Random(1))
    options.setdefault("noise", 0.0)
    node = RoomHeaterNode(**options)
    node.advance(0.0, outdoor=5.0)
    return node


def command(node, register_id, value, *, destination=None, register_address=None, nonce=0):
    destination = node.address if destination is None else destination
    packet = Packet(
        destination,
        0x01,
        Function.COMMAND,
        destination if register_address is None else register_address,
        register_id,
        value,
        nonce,
    )
    return packet


def test_node_answers_its_queries_and_only_register_0_when_broadcast():
    node = heater(address=0xA1)
    (answer,) = node.receive(decode_packet(bytes.fromhex(discovery_line(source=1))), 1.0)
    assert (answer.source, answer.register_id, split_product_code(answer.value)) == (0xA1, 0, (72, 1))
    assert node.receive(Packet(0, 1, Function.QUERY, 0, 11), 1.0) == []
    (temperature,) = node.receive(
        decode_packet(bytes.fromhex(query_line(destination=0xA1, register_id=11, source=1))), 1
    )
    assert temperature.register_id == ROOM_TEMP
    assert node.receive(Packet(0xA2, 1, Function.QUERY, 0xA2, 11), 1.0) == []


def test_a_write_to_register_12_pulses_the_relay_then_follows_it_in_manual_mode():
    node = heater(manual=True)
    before = node.nonce
    (status,) = node.receive(command(node, HEATING, b"\x00"), 10.0)
    # STATUS broadcast with the same register and value and the next nonce: what confirms the command.
    assert (status.destination, status.register_id, status.value, status.nonce) == (0, HEATING, b"\x00", before + 1)
    assert node.relay_on  # briefly on although 0 was written
    node.advance(12.0, outdoor=5.0)
    assert not node.relay_on
    assert node.relay_changes == [(10.0, True), (12.0, False)]
    node.receive(command(node, HEATING, b"\x01"), 20.0)
    node.advance(30.0, outdoor=5.0)
    assert node.relay_on
    assert node.registers[13] == b"\x01"  # SrvHeating copies Heating


def test_node_local_mode_uses_the_compiled_in_hysteresis_not_registers_14_and_15():
    node = heater(manual=False, room=Room(temperature=22.0))
    node.receive(command(node, 14, (1500).to_bytes(2, "big")), 1.0)  # ask for 15 °C: ignored
    node.room.temperature = 20.9
    node.advance(5.0, outdoor=5.0)
    assert node.relay_on  # below 23 - 2
    node.room.temperature = 24.0
    node.advance(5.1, outdoor=5.0)
    assert node.relay_on  # inside the band: unchanged
    node.room.temperature = 25.1
    node.advance(5.2, outdoor=5.0)
    assert not node.relay_on


@pytest.mark.parametrize(
    "packet_options",
    [
        {"value": b"\x00\x01"},  # wrong length
        {"register_address": 0xA5},  # register address is not the node's own
        {"register_id": 13},  # read-only
    ],
)
def test_a_command_that_does_not_apply_just_reports_the_current_value(packet_options):
    node = heater(manual=True)
    register_id = packet_options.get("register_id", HEATING)
    packet = command(
        node, register_id, packet_options.get("value", b"\x01"), register_address=packet_options.get("register_address")
    )
    (status,) = node.receive(packet, 1.0)
    assert (status.register_id, status.value) == (register_id, b"\x00")
    node.advance(10.0, outdoor=5.0)
    assert not node.relay_on


def test_anti_playback_answers_a_wrong_nonce_with_the_nonce_register():
    node = heater(security=1, manual=True)
    (status,) = node.receive(command(node, HEATING, b"\x01", nonce=(node.nonce + 5) & 0xFF), 1.0)
    assert status.register_id == 7
    assert status.value == bytes([status.nonce])
    (status,) = node.receive(command(node, HEATING, b"\x01", nonce=node.nonce), 2.0)
    assert (status.register_id, status.value) == (HEATING, b"\x01")


def test_reporting_periods_of_the_firmware():
    node = heater()
    sent = []
    for second in range(1, 2 * 3600 + 1):
        sent += node.advance(float(second), outdoor=5.0)
    by_register = {}
    for packet in sent:
        by_register.setdefault(packet.register_id, []).append(packet)
    assert 119 <= len(by_register[0]) <= 121  # product code every 60 s
    assert len(by_register[HEATING]) == len(by_register[0])
    assert 7 <= len(by_register[ROOM_TEMP]) <= 8  # about every 16 minutes
    assert [p.value[0] for p in by_register[3]][:2] == [3, 1]  # hourly re-sync: SYNC, then RX on
    nonces = [p.nonce for p in sent]
    assert all((b - a) & 0xFF == 1 for a, b in itertools.pairwise(nonces))


def test_heating_warms_the_room_and_a_cold_room_reports_negative_temperatures():
    warm = heater(manual=True, room=Room(temperature=15.0))
    warm.receive(command(warm, HEATING, b"\x01"), 0.0)
    cold = heater(room=Room(temperature=2.0, gain_per_hour=0.0))
    for second in range(60, 4 * 3600, 60):
        warm.advance(float(second), outdoor=-10.0)
        cold.advance(float(second), outdoor=-10.0)
    assert warm.room.temperature > 20.0
    assert cold.room.temperature < -2.0
    (status,) = cold.receive(Packet(cold.address, 1, Function.QUERY, cold.address, ROOM_TEMP), 4 * 3600.0)
    assert HEATER.decode(ROOM_TEMP, status.value)["RoomTemp"] == pytest.approx(cold.room.temperature, abs=0.01)
    assert HEATER.decode(ROOM_TEMP, status.value)["RoomTemp"] < 0


def test_sensor_noise_varies_the_reported_temperature():
    node = heater(noise=0.2, rng=random.Random(3))
    values = set()
    for _ in range(20):
        (status,) = node.receive(Packet(node.address, 1, Function.QUERY, node.address, ROOM_TEMP), 1.0)
        values.add(status.value)
    assert len(values) > 5


def test_faults_silent_stuck_sensor_and_ignored_relay():
    node = heater(manual=True, faults=Faults(stuck_at=19.5, relay_ignores_commands=True))
    (status,) = node.receive(command(node, HEATING, b"\x01"), 1.0)
    assert status.value == b"\x00"  # the command is not confirmed
    node.advance(5.0, outdoor=5.0)
    assert not node.relay_on
    node.room.temperature = 3.0
    (status,) = node.receive(Packet(node.address, 1, Function.QUERY, node.address, ROOM_TEMP), 6.0)
    assert HEATER.decode(ROOM_TEMP, status.value)["RoomTemp"] == 19.5
    node.faults.silent = True
    assert node.receive(Packet(node.address, 1, Function.QUERY, node.address, ROOM_TEMP), 7.0) == []
    assert node.advance(4000.0, outdoor=5.0) == []


# --- the whole network, through the real driver ------------------------------------------------------------------

FAST = ModemTimings(ready_timeout=1.0, command_guard=0.08, answer_timeout=1.0, write_gap=0.0, poll_interval=0.02)


@pytest.fixture
def network(tmp_path):
    networks = []

    def make(**options):
        options.setdefault("pty_link", tmp_path / "modem")
        options.setdefault("tcp", ("127.0.0.1", 0))
        options.setdefault("guard_time", 0.05)
        options.setdefault("boot_time", 0.05)
        options.setdefault("channel", 2)
        options.setdefault("seed", 7)
        simulated = SimulatedNetwork(**options)
        networks.append(simulated)
        simulated.start()
        return simulated

    yield make
    for simulated in networks:
        simulated.stop()


def urls(simulated):
    return [str(simulated.pty_link), "socket://{}:{}".format(*simulated.tcp_address)]


def read_for(modem, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        modem.read(0.05)


def read_until(modem, wanted, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        packet = modem.read(0.05)
        if packet is not None and wanted(packet):
            return packet
    raise AssertionError("no matching packet in time")


@pytest.mark.parametrize("port", ["pty", "tcp"])
def test_the_driver_finds_the_nodes_and_a_relay_command_is_confirmed(network, port):
    simulated = network(node_count=2)
    url = urls(simulated)[0 if port == "pty" else 1]
    with Modem(url, network=NetworkSettings(channel=2), timings=FAST) as modem:
        assert modem.info.changed == ("ATCH=02",)
        modem.send(discovery_line(source=1))
        heard = set()
        while len(heard) < 2:
            packet = read_until(modem, lambda p: p.register_id == 0)
            assert split_product_code(packet.value) == (72, 1)
            heard.add(packet.source)
        assert heard == {0xA1, 0xA2}
        modem.send(command_line(destination=0xA2, register_id=MANUAL, value=b"\x01", source=1))
        read_until(modem, lambda p: p.source == 0xA2 and p.register_id == MANUAL)
        modem.send(command_line(destination=0xA2, register_id=HEATING, value=b"\x01", source=1))
        status = read_until(modem, lambda p: p.source == 0xA2 and p.register_id == HEATING and p.value == b"\x01")
        assert status.function is Function.STATUS
        assert status.rssi is not None
    assert simulated.node(0xA2).relay_on
    assert simulated.transmitted[-1].register_id == HEATING


def test_a_modem_left_in_command_mode_is_rebooted_and_set_up(network):
    simulated = network(node_count=1)
    host, port = simulated.tcp_address
    with socket.create_connection((host, port)) as previous_user:
        # past the boot, whose "Modem ready!" this client may see
        assert wait_until(lambda: simulated.modem.state == "data", timeout=2)
        previous_user.sendall(b"+++")
        previous_user.settimeout(2)
        seen = b""
        while b"OK-Command mode" not in seen:
            seen += previous_user.recv(100)
        previous_user.sendall(b"ATCH=05\r")
        assert wait_until(lambda: simulated.modem.channel == 5, timeout=2)
    assert simulated.modem.state == "command"
    with Modem(f"socket://{host}:{port}", network=NetworkSettings(channel=2), timings=FAST) as modem:
        assert modem.info.reset_by == "atz"
        assert modem.info.changed == ("ATCH=02",)
        modem.send(query_line(destination=0xA1, register_id=ROOM_TEMP, source=1))
        assert read_until(modem, lambda p: p.register_id == ROOM_TEMP).source == 0xA1


def test_nodes_on_another_channel_are_not_heard(network):
    simulated = network(node_count=1)
    with Modem(urls(simulated)[1], network=NetworkSettings(channel=0), timings=FAST) as modem:
        modem.send(discovery_line(source=1))
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            assert modem.read(0.05) is None


def test_time_scale_moves_the_temperatures(network):
    simulated = network(node_count=1, time_scale=3600.0, outdoor=-15.0)
    node = simulated.nodes[0]
    start = node.room.temperature
    with Modem(urls(simulated)[1], network=NetworkSettings(channel=2), timings=FAST) as modem:
        reported = {read_until(modem, lambda p: p.register_id == ROOM_TEMP).value for _ in range(3)}
    assert len(reported) >= 2  # several reports within a second or so of real time: about 16 min apart simulated
    assert abs(node.room.temperature - start) > 0.5


def test_a_burst_and_garbage_come_out_of_the_modem(network):
    simulated = network(node_count=2)
    with Modem(urls(simulated)[0], network=NetworkSettings(channel=2), timings=FAST) as modem:
        simulated.emit_raw(b"\x00\xffnoise\r\n(E430)0012")
        simulated.burst(1000)
        temperatures = 0
        deadline = time.monotonic() + 10
        while temperatures < 1000 and time.monotonic() < deadline:
            packet = modem.read(0.05)
            if packet is not None and packet.register_id == ROOM_TEMP:
                temperatures += 1
        assert temperatures >= 1000
        assert modem.decode_errors >= 1


def test_the_modem_unplugs_and_comes_back_on_the_same_symlink(network):
    simulated = network(node_count=1)
    link = str(simulated.pty_link)
    modem = Modem(link, network=NetworkSettings(channel=2), timings=FAST)
    modem.open()
    simulated.unplug(seconds=0.3)
    with pytest.raises(ModemDisconnected):
        read_for(modem, 2.0)
    modem.close()
    info = wait_until(modem.open, timeout=3, interval=0.05, ignoring=(ModemDisconnected,))
    assert info, "the modem did not come back"
    assert info.changed == ("ATCH=02",)  # a fresh boot: the channel is set again
    modem.send(query_line(destination=0xA1, register_id=ROOM_TEMP, source=1))
    assert read_until(modem, lambda p: p.register_id == ROOM_TEMP).source == 0xA1
    modem.close()


def test_faults_requested_on_the_running_network(network):
    simulated = network(node_count=2)
    simulated.silence(0xA1)
    simulated.stick_sensor(0xA2, -7.25)
    with Modem(urls(simulated)[1], network=NetworkSettings(channel=2), timings=FAST) as modem:
        modem.send(discovery_line(source=1))
        packet = read_until(modem, lambda p: p.register_id == 0)
        assert packet.source == 0xA2
        modem.send(query_line(destination=0xA2, register_id=ROOM_TEMP, source=1))
        packet = read_until(modem, lambda p: p.register_id == ROOM_TEMP)
        assert HEATER.decode(ROOM_TEMP, packet.value)["RoomTemp"] == -7.25
        modem.send(query_line(destination=0xA1, register_id=ROOM_TEMP, source=1))
        with pytest.raises(AssertionError, match="no matching packet"):
            read_until(modem, lambda p: p.source == 0xA1, timeout=0.3)
