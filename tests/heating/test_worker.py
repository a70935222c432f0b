"""The serial worker against the simulated network (``heating.simulator``: a virtual modem on a TCP port with room
heaters behind it): discovery, readings, a relay command confirmed, retries then failure, sleeping nodes, silence,
duplicates, unknown products, garbage and an unplug survived, a 1,000-line burst, SIGTERM, /healthz, device XMLs
dropped into SWAP_DEVICES_DIR, signal samples."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from heating.models import Command, CommandState, Node, Reading
from heating.selectors import link_state, node_definition
from heating.services import command_queue
from heating.simulator import SimulatedNetwork
from heating.simulator.node import HEATING
from heating.swap import Function, Packet
from heating.swap.codec import encode_received
from heating.worker import SerialWorker, WorkerTimings
from hub.health import run_checks
from hub.timefmt import parse_utc
from messaging.models import OutboxEvent
from tests.heating.support import FAST_RADIO, start_worker
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture
def radio():
    """``radio(**simulator options, timings=...)`` → (simulated network, running worker); both stopped after."""
    running = []

    def make(*, timings: WorkerTimings = FAST_RADIO, **options):
        options.setdefault("tcp", ("127.0.0.1", 0))
        options.setdefault("guard_time", 0.05)
        options.setdefault("boot_time", 0.05)
        options.setdefault("channel", 2)
        options.setdefault("seed", 11)
        options.setdefault("node_count", 2)
        simulated = SimulatedNetwork(**options)
        simulated.start()
        running.append(simulated)
        worker = start_worker(simulated, channel=options["channel"], timings=timings)
        running.append(worker)
        return simulated, worker

    yield make
    for part in reversed(running):
        part.stop(timeout=5)


def heaters_known(count):
    return Node.objects.filter(definition="heater/Room heater").count() == count


def test_discovery_registers_the_heaters_and_their_readings_arrive(radio):
    simulated, _worker = radio(node_count=3)
    wait_for(lambda: heaters_known(3), what="three heaters discovered")
    # Identified nodes are asked for their inputs at once: every room's temperature shows without waiting.
    wait_for(lambda: Reading.objects.filter(name="RoomTemp").values("node").distinct().count() == 3, what="temps")
    node = Node.objects.get(address=0xA3)
    assert (node.manufacturer_id, node.product_id) == (72, 1)
    assert node.reachable
    assert node.last_heard is not None
    assert node.last_rssi is not None
    cold = Reading.objects.filter(node=node, name="RoomTemp").latest("recorded_at")
    assert cold.endpoint_id == "163.11.0"
    assert cold.unit == "C"
    assert cold.value == pytest.approx(simulated.node(0xA3).reported_temperature, abs=0.01)
    assert cold.value < 0  # the cold store: signed centi-degrees read negative, not 655 °C
    # Each reading is an event, retained on its lagarto topic with lagarto's fields.
    event = OutboxEvent.objects.filter(type="heating.reading", data__id="163.11.0").first()
    assert event.topics == [f"{settings.MQTT_HOME_PREFIX}/unassigned/measure/163.11.0"]
    assert event.retain
    assert {"direction", "name", "timestamp", "value", "location", "type", "id"} <= set(event.data)
    assert event.data["location"] == "unassigned"
    assert event.data["direction"] == "inp"
    assert OutboxEvent.objects.filter(type="heating.node_seen", data__node="a1").exists()
    assert OutboxEvent.objects.filter(type="heating.link_changed", data__link="modem", data__up=True).exists()
    # The broadcast product-code query went out on the air.
    assert any(p.function is Function.QUERY and p.destination == 0 for p in simulated.transmitted)


def test_a_relay_command_is_sent_and_confirmed_by_the_following_status(radio):
    simulated, _worker = radio()
    wait_for(lambda: heaters_known(2), what="heaters")
    node = Node.objects.get(address=0xA1)
    command = command_queue(node=node, endpoint="Heating", value=1, definition=node_definition(node), origin="test")
    command = wait_for(
        lambda: Command.objects.filter(pk=command.pk, state=CommandState.CONFIRMED).first(), what="confirmation"
    )
    assert command.attempts == 1
    assert command.finished_at is not None
    assert simulated.node(0xA1).registers[HEATING] == b"\x01"
    sent = [p for p in simulated.transmitted if p.function is Function.COMMAND]
    assert sent[-1].destination == 0xA1
    assert sent[-1].register_id == HEATING
    assert sent[-1].value == b"\x01"
    confirmed = OutboxEvent.objects.get(type="heating.command_confirmed", data__command=command.pk)
    assert confirmed.data["node"] == "a1"
    assert confirmed.data["endpoint"] == "Heating"


def test_an_unconfirmed_command_is_retried_three_times_then_failed(radio):
    simulated, _worker = radio()
    wait_for(lambda: heaters_known(2), what="heaters")
    simulated.ignore_commands(0xA2)
    node = Node.objects.get(address=0xA2)
    command = command_queue(node=node, endpoint="Heating", value=1, definition=node_definition(node))
    command = wait_for(lambda: Command.objects.filter(pk=command.pk, state=CommandState.FAILED).first(), what="failure")
    assert command.attempts == 4  # the first send and three retries
    assert "4 attempts" in command.error
    sent = [p for p in simulated.transmitted if p.function is Function.COMMAND and p.destination == 0xA2]
    assert len(sent) == 4
    assert OutboxEvent.objects.filter(type="heating.command_failed", data__command=command.pk).exists()


def test_commands_for_a_sleeping_node_wait_until_it_is_heard(radio):
    simulated, worker = radio()
    wait_for(lambda: heaters_known(2), what="heaters")
    # The node says it goes to sleep (system state 2, RX off), then falls silent.
    sleeper = simulated.node(0xA1)
    sleeper.registers[3] = b"\x02"
    simulated.modem.receive(sleeper.status_packet(3))
    wait_for(lambda: Node.objects.get(address=0xA1).system_state == 2, what="RX off recorded")
    simulated.silence(0xA1)
    node = Node.objects.get(address=0xA1)
    command = command_queue(node=node, endpoint="Heating", value=1, definition=node_definition(node))
    # While the other heater's reports keep the worker busy (ten of them handled), the command is held.
    packets = worker.stats.packets
    for register in (11, 12) * 5:
        simulated.modem.receive(simulated.node(0xA2).status_packet(register))
    wait_for(lambda: worker.stats.packets >= packets + 10, what="ten more packets handled")
    assert Command.objects.get(pk=command.pk).state == CommandState.QUEUED
    assert not any(p.function is Function.COMMAND and p.destination == 0xA1 for p in simulated.transmitted)
    # It wakes: heard again, the held command goes out and is confirmed.
    simulated.silence(0xA1, False)
    sleeper.registers[3] = b"\x01"
    simulated.modem.receive(sleeper.status_packet(3))
    wait_for(
        lambda: Command.objects.filter(pk=command.pk, state=CommandState.CONFIRMED).exists(), what="sent once awake"
    )


def test_a_silent_node_is_marked_unreachable_and_reachable_again(radio):
    silence = WorkerTimings(**{**FAST_RADIO.__dict__, "node_silence": 0.6})
    simulated, _worker = radio(timings=silence)
    wait_for(lambda: heaters_known(2), what="heaters")
    simulated.silence(0xA2)
    wait_for(lambda: not Node.objects.get(address=0xA2).reachable, what="unreachable")
    assert OutboxEvent.objects.filter(type="heating.link_changed", data__node="a2", data__reachable=False).exists()
    simulated.silence(0xA2, False)
    simulated.modem.receive(simulated.node(0xA2).status_packet(11))
    wait_for(lambda: Node.objects.get(address=0xA2).reachable, what="reachable again")
    assert OutboxEvent.objects.filter(type="heating.link_changed", data__node="a2", data__reachable=True).exists()


def test_duplicate_status_packets_are_ignored_and_unknown_products_recorded(radio):
    simulated, worker = radio()
    wait_for(lambda: heaters_known(2), what="heaters")
    simulated.silence(0xA1)  # its own reports would add readings meanwhile; the repeated line is all it sends
    # A product no definition describes: recorded as an unknown node, not dropped. It is also the marker: the
    # simulator writes lines in order, so once this one's batch is committed every report A1 sent before its
    # silence is stored too, and the count below is final.
    stranger = Packet(0, 0x33, Function.STATUS, 0x33, 0, bytes.fromhex("000000990000002A"), 5, rssi=-70.0, lqi=30)
    simulated.emit_raw((encode_received(stranger) + "\r\n").encode())
    node = wait_for(lambda: Node.objects.filter(address=0x33, unknown_product=True).first(), what="unknown node")
    assert (node.manufacturer_id, node.product_id) == (0x99, 0x2A)
    assert node.definition == ""
    before = Reading.objects.filter(node__address=0xA1, name="RoomTemp").count()
    duplicates = worker.stats.duplicates
    packet = simulated.node(0xA1).status_packet(11)  # a fresh nonce: new to the worker the first time
    line = (encode_received(packet) + "\r\n").encode()
    simulated.emit_raw(line + line + line)
    # Counted once their batch is committed, so the reading is in the database when they are.
    wait_for(lambda: worker.stats.duplicates >= duplicates + 2, what="duplicates counted")
    assert Reading.objects.filter(node__address=0xA1, name="RoomTemp").count() == before + 1
    assert OutboxEvent.objects.filter(type="heating.node_seen", data__node="33", data__unknown_product=True).exists()


def test_garbage_bad_hex_and_cut_lines_are_counted_not_fatal(radio):
    simulated, worker = radio()
    wait_for(lambda: heaters_known(2), what="heaters")
    garbage = b"\x00\xff\xfe garbage\r\n(ZZZZ)0000\r\n(2A2F)00050000010000XYZ\r\n(2A2F)0005000\r\n" + bytes(range(256))
    simulated.emit_raw(garbage + b"\r\n")
    wait_for(lambda: worker.stats.decode_errors >= 4, what="decode errors counted")
    assert worker.alive
    assert worker.link_up
    # Still working afterwards: a command is confirmed.
    node = Node.objects.get(address=0xA2)
    command = command_queue(node=node, endpoint="Heating", value=1, definition=node_definition(node))
    wait_for(lambda: Command.objects.filter(pk=command.pk, state=CommandState.CONFIRMED).exists(), what="confirm")
    wait_for(lambda: link_state()["decode_errors"] >= 4, what="decode errors in the heartbeat")


def test_an_unplugged_modem_puts_the_link_down_and_it_comes_back(radio):
    simulated, worker = radio()
    wait_for(lambda: heaters_known(2), what="heaters")
    simulated.unplug(seconds=1.0)
    wait_for(lambda: not worker.link_up, what="link down")
    wait_for(lambda: link_state()["up"] is False, what="link down in the heartbeat")
    status, report = run_checks()
    assert status == "degraded", report
    assert not report["heating:modem_link"]["ok"]
    wait_for(lambda: worker.link_up, timeout=15, what="link up again")
    assert worker.stats.reconnects >= 1
    assert worker.alive
    assert OutboxEvent.objects.filter(type="heating.link_changed", data__link="modem", data__up=False).exists()
    # Re-initialised: the modem is set up again and commands flow.
    node = Node.objects.get(address=0xA1)
    command = command_queue(node=node, endpoint="Heating", value=1, definition=node_definition(node))
    wait_for(lambda: Command.objects.filter(pk=command.pk, state=CommandState.CONFIRMED).exists(), what="confirm")
    wait_for(lambda: run_checks()[1]["heating:modem_link"]["ok"], what="healthz link ok")


@pytest.mark.slow
def test_a_burst_of_1000_lines_is_stored(radio):
    simulated, worker = radio(node_count=3)
    wait_for(lambda: heaters_known(3), what="heaters")
    time.sleep(0.3)
    before = Reading.objects.filter(name="RoomTemp").count()
    simulated.burst(1000)
    wait_for(
        lambda: Reading.objects.filter(name="RoomTemp").count() >= before + 1000, timeout=30, what="1,000 readings"
    )
    assert worker.alive
    assert worker.link_up
    assert worker.stats.duplicates == 0


@pytest.mark.slow
def test_the_command_stops_cleanly_on_sigterm(tmp_path):
    simulated = SimulatedNetwork(tcp=("127.0.0.1", 0), guard_time=0.05, boot_time=0.05, channel=0, seed=3)
    simulated.start()
    try:
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'hub.sqlite3'}", "HUB_VAR_DIR": str(tmp_path)}
        manage = Path(settings.BASE_DIR) / "manage.py"
        subprocess.run([sys.executable, manage, "migrate", "-v0"], env=env, check=True, timeout=120)
        url = "socket://{}:{}".format(*simulated.tcp_address)
        process = subprocess.Popen(
            [sys.executable, manage, "serial_worker", "--port", url],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            # The real driver's 1.6 s command-mode guard, then data mode and discovery.
            wait_for(lambda: any(p.function is Function.QUERY for p in simulated.transmitted), timeout=30, what="q")
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=15)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0, output
        assert "serial_worker stopped" in output
    finally:
        simulated.stop()


def test_the_embedded_default_runs_the_simulator_and_the_worker_without_serial_port(settings):
    from heating.worker import EmbeddedRadio, embedded_radio
    from hub import embedded

    assert "serial_worker" in embedded.registered()
    settings.SERIAL_PORT = None
    settings.EMBEDDED = True
    radio = embedded_radio()
    assert isinstance(radio, EmbeddedRadio)
    assert not radio.alive  # building starts nothing; the lifespan does
    settings.SERIAL_PORT = "socket://127.0.0.1:5331"
    assert isinstance(embedded_radio(), SerialWorker)
    settings.EMBEDDED = False
    assert embedded_radio() is None  # production runs manage.py serial_worker as a service

    # Started as the lifespan would: the simulated heaters appear with their temperatures, the link is up.
    radio = EmbeddedRadio()
    radio.start()
    try:
        wait_for(lambda: heaters_known(3), timeout=20, what="the simulated heaters")
        wait_for(lambda: Reading.objects.filter(name="RoomTemp").count() >= 3, timeout=20, what="temperatures")
        wait_for(lambda: link_state()["up"], what="link up")
    finally:
        radio.stop(timeout=10)
    assert not radio.alive
    assert not radio.simulator.alive


def test_a_database_error_loses_a_batch_not_the_radio(radio, monkeypatch):
    from django.db import OperationalError

    from heating import services

    simulated, worker = radio()
    wait_for(lambda: heaters_known(2), what="heaters")
    real_record = services.readings_record
    failures = []

    def failing_once(**kwargs):
        if not failures:
            failures.append(1)
            raise OperationalError("database is locked")
        return real_record(**kwargs)

    monkeypatch.setattr(services, "readings_record", failing_once)
    before = Reading.objects.filter(node__address=0xA1, name="RoomTemp").count()
    simulated.modem.receive(simulated.node(0xA1).status_packet(11))
    wait_for(lambda: failures, what="the failing insert")
    simulated.modem.receive(simulated.node(0xA1).status_packet(11))
    wait_for(
        lambda: Reading.objects.filter(node__address=0xA1, name="RoomTemp").count() > before,
        what="readings stored again after the error",
    )
    assert worker.alive
    assert worker.link_up
    node = Node.objects.get(address=0xA1)
    command = command_queue(node=node, endpoint="Heating", value=1, definition=node_definition(node))
    wait_for(lambda: Command.objects.filter(pk=command.pk, state=CommandState.CONFIRMED).exists(), what="confirm")


PULSE_METER = """<?xml version="1.0"?>
<device><developer>Acme</developer><product>Pulse meter</product><pwrdownmode>false</pwrdownmode>
  <regular><reg name="Counter" id="11"><endpoint name="Pulses" type="num" dir="inp"><size>2</size></endpoint></reg>
  </regular></device>"""


def stranger_status(register_id: int, value: bytes, nonce: int = 1) -> bytes:
    packet = Packet(0, 0x33, Function.STATUS, 0x33, register_id, value, nonce, rssi=-70.0, lqi=30)
    return (encode_received(packet) + "\r\n").encode()


def test_a_device_xml_dropped_into_swap_devices_dir_identifies_its_nodes(radio, settings, tmp_path, monkeypatch):
    """No index edited, no restart: the file at <manufacturer>/<product>.xml is found, and a node recorded as an
    unknown product is identified at the worker's next discovery; a malformed file beside it is named in /healthz."""
    monkeypatch.setattr("heating.selectors.DEFINITIONS_RECHECK_SECONDS", 0.0)
    settings.SWAP_DEVICES_DIR = str(tmp_path)
    (tmp_path / "broken.xml").write_text("<device><regular>")
    simulated, worker = radio(timings=dataclasses.replace(FAST_RADIO, discovery_interval=0.3))
    wait_for(lambda: heaters_known(2), what="heaters")
    simulated.emit_raw(stranger_status(0, bytes.fromhex("0000004800000003")))
    node = wait_for(lambda: Node.objects.filter(address=0x33, unknown_product=True).first(), what="unknown node")
    assert (node.manufacturer_id, node.product_id) == (72, 3)
    report = run_checks()[1]["heating:device_definitions"]
    assert not report["ok"]
    assert str(tmp_path / "broken.xml") in report["detail"]

    (tmp_path / "72").mkdir()
    (tmp_path / "72" / "3.xml").write_text(PULSE_METER)
    wait_for(
        lambda: Node.objects.filter(address=0x33, unknown_product=False, definition="Acme/Pulse meter").exists(),
        what="the node identified by the dropped-in definition",
    )
    # Identified, it is asked for its inputs at once, as a node whose product code is heard for the first time.
    wait_for(
        lambda: any(
            p.function is Function.QUERY and p.destination == 0x33 and p.register_id == 11
            for p in simulated.transmitted
        ),
        what="a QUERY for the new node's input register",
    )
    simulated.emit_raw(stranger_status(11, bytes.fromhex("0102"), nonce=2))
    reading = wait_for(lambda: Reading.objects.filter(node__address=0x33, name="Pulses").first(), what="reading")
    assert reading.value == 258
    assert reading.endpoint_id == "51.11.0"
    # The shipped heaters are still identified: the folder is merged over the shipped definitions.
    assert heaters_known(2)
    assert worker.alive


def test_every_packet_heard_leaves_a_signal_sample_even_without_an_endpoint(radio):
    """Register 0 of an unknown product carries no endpoint and a duplicate makes no reading: both are heard."""
    simulated, worker = radio()
    wait_for(lambda: heaters_known(2), what="heaters")
    product = bytes.fromhex("000000990000002A")
    for nonce, (rssi, lqi) in enumerate([(-80.0, 20), (-75.0, 25), (-70.0, 30)], start=1):
        packet = Packet(0, 0x33, Function.STATUS, 0x33, 0, product, nonce, rssi=rssi, lqi=lqi)
        simulated.emit_raw((encode_received(packet) + "\r\n").encode())
    repeated = (
        encode_received(Packet(0, 0x33, Function.STATUS, 0x33, 0, product, 3, rssi=-66.0, lqi=31)) + "\r\n"
    ).encode()
    simulated.emit_raw(repeated)  # same nonce, register and value as the last: a duplicate, still heard
    node = wait_for(
        lambda: (n := Node.objects.filter(address=0x33).first()) and len(n.signal_history) >= 4 and n,
        what="four samples",
    )
    assert [(rssi, lqi) for _at, rssi, lqi in node.signal_history] == [
        (-80.0, 20),
        (-75.0, 25),
        (-70.0, 30),
        (-66.0, 31),
    ]
    assert not Reading.objects.filter(node=node).exists()
    assert worker.stats.duplicates >= 1
    at = node.recent_signal(1)[0]["at"]
    assert at.endswith("Z")
    assert abs((node.last_heard - parse_utc(at)).total_seconds()) < 5
