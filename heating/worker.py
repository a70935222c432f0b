"""The serial worker: the hub's side of the panStamp radio, on the modem driver (``heating.modem``).

One :class:`SerialWorker` owns the modem: it sets it up, discovers nodes, stores readings in batches, sends
commands and confirms them, tracks each node's reachability and beats its heartbeat; every timer is a field of
:class:`WorkerTimings`. Each step: docs/architecture/heating-radio.md#the-serial-worker-and-the-api; the
protocol: docs/protocols/swap.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction
from django.utils import timezone

from heating import services
from heating.models import Command, CommandState, Node
from heating.modem import Modem, ModemError, ModemTimings, NetworkSettings
from heating.selectors import commands_pending, definitions, node_definition
from heating.swap import DecodeError, DefinitionLibrary, DeviceDefinition, Function, Packet
from heating.swap.codec import command_line, discovery_line, query_line
from heating.swap.registers import StandardRegister, SystemState, split_product_code
from heating.thermostat_runner import ThermostatClock, ThermostatRunner
from hub import wakeups
from hub.timefmt import format_utc
from hub.workers import DEFAULT_JITTER, Backoff, Jitter, Worker

logger = logging.getLogger(__name__)

#: Set when a command is queued in this process, so the worker sends it without waiting for its next poll.
_commands_queued = threading.Event()


def wake_for_commands() -> None:
    _commands_queued.set()


# A worker exists in this process only once this module is imported, so registering here misses none.
wakeups.register(services.COMMANDS_QUEUED, wake_for_commands)


#: How long one read of the port blocks. Short, because a queued command waits for the read in progress and a
#: batch ends with a read that finds nothing: both are on the path from a request to its confirmation.
READ_POLL_INTERVAL = 0.01


@dataclass(frozen=True)
class WorkerTimings:
    #: How long a sent command waits for the STATUS that confirms it (panStamp's tools: 2 s) …
    command_timeout: float = 2.0
    #: … and how many times it is sent again before it is marked failed.
    command_retries: int = 3
    #: How often the database is asked for commands queued by other processes.
    command_poll: float = 0.05
    #: Broadcast product-code query interval (also sent at every (re)connection).
    discovery_interval: float = 300.0
    #: A node not heard for this long is marked unreachable (the room heater reports every 60 s).
    node_silence: float = 180.0
    #: Back-off before reopening a lost or unready modem (``hub.workers.Backoff``): first wait, longest, jitter.
    retry_initial: float = 1.0
    retry_max: float = 30.0
    retry_jitter: Jitter = DEFAULT_JITTER
    heartbeat_interval: float = 15.0
    #: Most packets stored in one transaction.
    batch_size: int = 500
    #: How long one batch may keep collecting packets before it is stored …
    batch_window: float = 0.2
    #: … and how long a quiet line may be before the batch is stored anyway.
    batch_gap: float = 0.005


@dataclass
class _NodeState:
    """What the worker keeps in memory about a node between packets."""

    node: Node
    definition: DeviceDefinition | None
    heard_at: float
    last_status: tuple[int, int, bytes] | None = None
    product_queried: bool = False


@dataclass
class _InFlight:
    command: Command
    deadline: float
    #: Sleeping node: sent only when heard.
    held: bool = False
    line: str = ""


@dataclass
class WorkerStats:
    """Counts since start. Packets, duplicates and readings count once their batch is committed, so a reader that
    sees them has the batch's rows in the database too."""

    packets: int = 0
    readings: int = 0
    decode_errors: int = 0
    duplicates: int = 0
    reconnects: int = 0
    commands_confirmed: int = 0
    commands_failed: int = 0
    last_decode_error: str = ""


class SerialWorker(Worker):
    name = "serial_worker"

    def __init__(
        self,
        port: str,
        *,
        network: NetworkSettings | None = None,
        timings: WorkerTimings | None = None,
        modem_timings: ModemTimings | None = None,
        library: DefinitionLibrary | None = None,
        modem_factory: Callable[..., Modem] = Modem,
        clock: Callable[[], float] = time.monotonic,
        thermostat: ThermostatRunner | Literal[False] | None = None,
    ) -> None:
        super().__init__()
        self.port = port
        self.network = network or NetworkSettings.from_settings(settings)
        self.timings = timings or WorkerTimings()
        #: Device definitions: the given ones, else :func:`definitions`, looked at again at each discovery so a
        #: device XML dropped into ``SWAP_DEVICES_DIR`` identifies its nodes without a restart.
        self.library = definitions() if library is None else library
        self._follow_definitions = library is None
        self.clock = clock
        self.stats = WorkerStats()
        self.link_up = False
        #: Set whenever the link comes up (tests and the embedded start wait on it).
        self.link_ready = threading.Event()
        self.modem = modem_factory(
            port,
            network=self.network,
            timings=modem_timings or ModemTimings(poll_interval=READ_POLL_INTERVAL),
            on_decode_error=self._on_decode_error,
            clock=clock,
        )
        self._nodes: dict[int, _NodeState] = {}
        self._in_flight: dict[int, _InFlight] = {}
        self._link_detail = "not opened yet"
        self._next_beat = 0.0
        self._next_poll = 0.0
        self._next_discovery = 0.0
        self._next_silence_check = 0.0
        self._resync = False
        #: The rooms' thermostat (``heating.thermostat_runner``): this worker is the one place that applies it.
        #: ``None``: one with the HEATING_* settings on this worker's clock; ``False``: none (radio-only tests).
        if thermostat is None:
            thermostat = ThermostatRunner(clock=ThermostatClock(now=clock))
        self.thermostat = thermostat or None
        if self.thermostat is not None:
            self.thermostat.bind(send_query=self._send_query)

    # --- the loop --------------------------------------------------------------------------------------------------

    def serve(self) -> None:
        backoff = Backoff.from_timings(self.timings)
        while not self.stopping.is_set():
            try:
                info = self.modem.open()
            except ModemError as exc:
                self._link_changed(False, f"cannot set up the modem on {self.port}: {exc}")
                self._wait(backoff.next_delay())
                continue
            backoff.reset()
            self._link_changed(
                True,
                f"modem on {self.port}: hardware {info.hardware_version:X}, firmware {info.firmware_version:X}, "
                f"channel {info.channel}, sync word {info.sync_word:04X}, address {info.address:02X}",
            )
            try:
                self._run_link()
            except ModemError as exc:
                self.stats.reconnects += 1
                self.modem.close()
                self._link_changed(False, f"modem on {self.port} lost: {exc}")
                close_old_connections()
                self._wait(backoff.next_delay())
        self.modem.close()
        if self.link_up:
            self._link_changed(False, "the serial worker stopped")

    def _wait(self, seconds: float) -> None:
        """Wait while the link is down, still beating so /healthz shows 'link down' rather than a silent worker."""
        deadline = self.clock() + seconds
        while not self.stopping.is_set():
            remaining = deadline - self.clock()
            if remaining <= 0:
                return
            self._beat_if_due()
            self.stopping.wait(min(remaining, 0.5))

    def _run_link(self) -> None:
        # The registry and the commands sent on an earlier link are (re)read by the first step, under its guard.
        self._resync = True
        self._discover()
        while not self.stopping.is_set():
            try:
                self._step()
            except DatabaseError:
                # The database away (or locked past the busy timeout): this batch is lost, the radio is not.
                # What the worker cached may describe rows that were rolled back, so it starts afresh.
                logger.exception("serial worker: database error; carrying on in a second")
                close_old_connections()
                self._nodes.clear()
                self._in_flight.clear()
                self._resync = True
                if self.thermostat is not None:
                    self.thermostat.reset()
                self.stopping.wait(1.0)
                self._beat_if_due()

    def _step(self) -> None:
        if self._resync:
            self._nodes.clear()
            self._load_nodes()
            if self.thermostat is not None:
                self.thermostat.abandon_old_commands()
            self._restore_commands()
            self._resync = False
        batch = self._read_batch()
        if batch:
            self._store(batch)
        now = self.clock()
        if _commands_queued.is_set() or now >= self._next_poll:
            _commands_queued.clear()
            self._next_poll = now + self.timings.command_poll
            self._take_commands()
        self._expire_commands(now)
        if now >= self._next_discovery:
            self._discover()
        if now >= self._next_silence_check:
            self._next_silence_check = now + min(1.0, self.timings.node_silence / 4)
            self._check_silence(now)
        if self.thermostat is not None:
            self._thermostat_call(self.thermostat.step)
        self._beat_if_due()

    def _read_batch(self) -> list[Packet]:
        first = self.modem.read()
        if first is None:
            return []
        batch = [first]
        deadline = self.clock() + self.timings.batch_window
        while len(batch) < self.timings.batch_size and self.clock() < deadline:
            # A short wait, not none: a line may be half received, and a burst keeps coming.
            packet = self.modem.read(timeout=self.timings.batch_gap)
            if packet is None:
                break
            batch.append(packet)
        return batch

    # --- packets ---------------------------------------------------------------------------------------------------

    def _store(self, batch: list[Packet]) -> None:
        readings: list[services.ReadingInput] = []
        heard: dict[int, Node] = {}
        to_query: list[tuple[int, int]] = []
        woken: set[int] = set()
        #: (address, register, value) of every new STATUS, for the thermostat once the batch is stored.
        statuses: list[tuple[int, int, bytes]] = []
        duplicates = 0
        now = self.clock()
        with transaction.atomic():
            for packet in batch:
                if packet.function is not Function.STATUS:
                    continue  # another host's QUERY/COMMAND heard on the air
                state = self._node_state(packet.register_address)
                at = timezone.now()
                node = state.node
                # Every packet heard is a signal sample, duplicates and packets without an endpoint included.
                node.signal_heard(at=format_utc(at), rssi=packet.rssi, lqi=packet.lqi)
                heard[node.pk] = node
                signature = (packet.nonce, packet.register_id, packet.value)
                if state.last_status == signature:
                    duplicates += 1
                    continue
                state.last_status = signature
                statuses.append((packet.register_address, packet.register_id, packet.value))
                state.heard_at = now
                node.last_heard = at
                node.last_rssi = packet.rssi
                node.last_lqi = packet.lqi
                node.nonce = packet.nonce
                node.registers[str(packet.register_id)] = packet.value.hex().upper()
                if not node.reachable:
                    services.node_reachability_set(node=node, reachable=True, at=at)
                woken.add(node.address)
                if packet.register_id == StandardRegister.PRODUCT_CODE:
                    to_query += self._product_heard(state, packet, at)
                elif packet.register_id == StandardRegister.SYSTEM_STATE and len(packet.value) == 1:
                    node.system_state = packet.value[0]
                if state.definition is None:
                    if node.manufacturer_id is None and not state.product_queried:
                        state.product_queried = True
                        to_query.append((node.address, StandardRegister.PRODUCT_CODE))
                else:
                    readings += self._endpoint_values(state, packet, at)
                self._confirm(packet, at)
            if readings:
                services.readings_record(readings=readings)
            services.nodes_heard_save(nodes=heard.values())
        self.stats.packets += len(batch)
        self.stats.duplicates += duplicates
        self.stats.readings += len(readings)
        for address, register_id in to_query:
            self.modem.send(query_line(destination=address, register_id=register_id, source=self.network.address))
        for address in woken:
            self._send_held(address)
        self._thermostat_heard(statuses)

    def _thermostat_heard(self, statuses: list[tuple[int, int, bytes]]) -> None:
        if self.thermostat is not None and statuses:
            self._thermostat_call(self.thermostat.after_batch, statuses)

    def _thermostat_call(self, call: Callable[..., None], *args) -> None:
        """The thermostat's turn. A database error goes up to the loop's resync (both start afresh); any other
        error is logged and the radio carries on, so one bad room does not silence every node."""
        try:
            call(*args)
        except DatabaseError:
            raise
        except Exception:
            logger.exception("thermostat: a decision pass failed; the next one tries again")

    def _send_query(self, address: int, register_id: int) -> None:
        self.modem.send(query_line(destination=address, register_id=register_id, source=self.network.address))

    def _node_state(self, address: int) -> _NodeState:
        state = self._nodes.get(address)
        if state is None:
            node = services.node_register(address=address, at=timezone.now())
            state = _NodeState(node=node, definition=self._definition_of(node), heard_at=self.clock())
            self._nodes[address] = state
        return state

    def _product_heard(self, state: _NodeState, packet: Packet, at) -> list[tuple[int, int]]:
        try:
            manufacturer_id, product_id = split_product_code(packet.value)
        except ValueError as exc:
            self._count_decode_error(packet_text(packet), str(exc))
            return []
        node = state.node
        if (node.manufacturer_id, node.product_id) == (manufacturer_id, product_id):
            return []
        definition = self.library.get(manufacturer_id, product_id)
        services.node_product_set(
            node=node, manufacturer_id=manufacturer_id, product_id=product_id, definition=definition, at=at
        )
        state.definition = definition
        if definition is None:
            logger.warning(
                "node %s sent product code %s, which no device definition describes: recorded as unknown",
                node.key,
                packet.value.hex(),
            )
            return []
        return _input_queries(node, definition)

    def _endpoint_values(self, state: _NodeState, packet: Packet, at) -> list[services.ReadingInput]:
        register = state.definition.register(packet.register_id)
        if register is None:
            return []
        values = []
        for endpoint in register.endpoints:
            try:
                value = endpoint.decode(packet.value)
            except ValueError as exc:
                self._count_decode_error(packet_text(packet), str(exc))
                continue
            values.append(
                services.ReadingInput(
                    node=state.node, endpoint=endpoint, value=value, at=at, rssi=packet.rssi, lqi=packet.lqi
                )
            )
        return values

    def _on_decode_error(self, line: str, error: DecodeError) -> None:
        self._count_decode_error(line, str(error))

    def _count_decode_error(self, line: str, why: str) -> None:
        self.stats.decode_errors += 1
        self.stats.last_decode_error = f"{why}: {line[:80]!r}"
        logger.debug("not a usable packet from %s: %s", self.port, self.stats.last_decode_error)

    # --- discovery and silence -------------------------------------------------------------------------------------

    def _discover(self) -> None:
        self._next_discovery = self.clock() + self.timings.discovery_interval
        if self._follow_definitions:
            self._use_definitions(definitions())
        self.modem.send(discovery_line(source=self.network.address))

    def _use_definitions(self, library: DefinitionLibrary) -> None:
        """Known nodes whose definition appeared, changed or went with a new library are updated at once (and a
        node identified this way is asked for its inputs, as when its product code is first heard)."""
        if library is self.library:
            return
        self.library = library
        to_query: list[tuple[int, int]] = []
        for state in self._nodes.values():
            node = state.node
            definition = self._definition_of(node)
            if definition == state.definition:
                continue
            state.definition = definition
            logger.info("node %s: device definition now %s", node.key, definition.source if definition else "none")
            services.node_product_set(
                node=node,
                manufacturer_id=node.manufacturer_id,
                product_id=node.product_id,
                definition=definition,
                at=timezone.now(),
            )
            if definition is not None:
                to_query += _input_queries(node, definition)
        for address, register_id in to_query:
            self.modem.send(query_line(destination=address, register_id=register_id, source=self.network.address))

    def _check_silence(self, now: float) -> None:
        for state in self._nodes.values():
            node = state.node
            if node.reachable and now - state.heard_at > self.timings.node_silence:
                logger.info("node %s silent for %.0f s: unreachable", node.key, now - state.heard_at)
                services.node_reachability_set(node=node, reachable=False, at=timezone.now())

    def _load_nodes(self) -> None:
        now = self.clock()
        for node in Node.objects.all():
            # Known from an earlier run: they get a full silence period to be heard again.
            self._nodes[node.address] = _NodeState(node=node, definition=self._definition_of(node), heard_at=now)

    def _definition_of(self, node: Node) -> DeviceDefinition | None:
        return node_definition(node, self.library)

    # --- commands --------------------------------------------------------------------------------------------------

    def _restore_commands(self) -> None:
        """Commands sent on a link that went down are sent again on the new one (their attempts still count)."""
        self._in_flight.clear()
        Command.objects.filter(state=CommandState.SENT).update(state=CommandState.QUEUED)

    def _take_commands(self) -> None:
        for command in commands_pending():
            if command.pk in self._in_flight:
                continue
            flight = _InFlight(command=command, deadline=float("inf"))
            self._in_flight[command.pk] = flight
            state = self._node_state(command.node.address)
            command.node = state.node
            if self._asleep(state):
                flight.held = True
                logger.info("command %s for sleeping node %s held until it is heard", command.pk, state.node.key)
            elif not self._busy(command):
                self._send(flight)
            else:
                flight.held = True

    def _asleep(self, state: _NodeState) -> bool:
        return state.node.system_state == SystemState.RXOFF or bool(state.definition and state.definition.power_down)

    def _busy(self, command: Command) -> bool:
        """Another command on the same register is waiting for its STATUS: one at a time, in order."""
        return any(
            other.command.pk != command.pk
            and not other.held
            and other.command.node_id == command.node_id
            and other.command.register_id == command.register_id
            for other in self._in_flight.values()
        )

    def _send(self, flight: _InFlight) -> None:
        command = flight.command
        node = command.node
        flight.line = command_line(
            destination=node.address,
            register_id=command.register_id,
            value=bytes.fromhex(command.value),
            source=self.network.address,
            nonce=node.nonce or 0,
        )
        flight.held = False
        services.command_mark_sent(command=command, at=timezone.now())
        flight.deadline = self.clock() + self.timings.command_timeout
        self.modem.send(flight.line)

    def _send_held(self, address: int) -> None:
        for flight in list(self._in_flight.values()):
            if flight.held and flight.command.node.address == address and not self._busy(flight.command):
                self._send(flight)

    def _confirm(self, packet: Packet, at) -> None:
        for command_id, flight in list(self._in_flight.items()):
            command = flight.command
            if (
                not flight.held
                and command.node.address == packet.register_address
                and command.register_id == packet.register_id
                and command.value == packet.value.hex().upper()
            ):
                services.command_confirm(command=command, at=at)
                self.stats.commands_confirmed += 1
                del self._in_flight[command_id]
                if self.thermostat is not None:
                    self.thermostat.command_finished(command)

    def _expire_commands(self, now: float) -> None:
        for command_id, flight in list(self._in_flight.items()):
            if flight.held or now < flight.deadline:
                continue
            command = flight.command
            if command.attempts > self.timings.command_retries:
                services.command_fail(
                    command=command,
                    error=f"no STATUS confirmed it after {command.attempts} attempts "
                    f"({self.timings.command_timeout:g} s each)",
                    at=timezone.now(),
                )
                self.stats.commands_failed += 1
                del self._in_flight[command_id]
                if self.thermostat is not None:
                    self.thermostat.command_finished(command)
            elif self._asleep(self._node_state(command.node.address)):
                flight.held = True
                services.command_requeue(command=command)
            else:
                self._send(flight)
        # Commands queued behind a confirmed or failed one on the same register.
        for flight in list(self._in_flight.values()):
            held_for_order = flight.held and not self._asleep(self._node_state(flight.command.node.address))
            if held_for_order and not self._busy(flight.command):
                self._send(flight)

    # --- link state and heartbeat ----------------------------------------------------------------------------------

    def _link_changed(self, up: bool, detail: str) -> None:
        changed = up != self.link_up or not self._next_beat
        self.link_up = up
        self._link_detail = detail
        (logger.info if up else logger.warning)("%s", detail)
        if up:
            self.link_ready.set()
        else:
            self.link_ready.clear()
        self._beat(publish=changed)

    def _thermostat_details(self) -> dict | None:
        """The thermostat's counts, kept in the heartbeat's details: passes, skipped ticks, relay commands and QUERYs
        sent, and how long the last pass took."""
        if self.thermostat is None:
            return None
        stats = self.thermostat.stats
        return {
            "passes": stats.passes,
            "skipped": stats.skipped,
            "relay_commands": stats.relay_commands,
            "queries": stats.queries,
            "last_pass_ms": round(stats.last_pass_seconds * 1000, 1),
        }

    def _beat_if_due(self) -> None:
        if self.clock() >= self._next_beat:
            self._beat(publish=False)

    def _beat(self, *, publish: bool) -> None:
        self._next_beat = self.clock() + self.timings.heartbeat_interval
        info = self.modem.info
        try:
            services.link_state_record(
                up=self.link_up,
                port=self.port,
                detail=self._link_detail,
                at=timezone.now(),
                publish=publish,
                interval_seconds=self.timings.heartbeat_interval,
                decode_errors=self.stats.decode_errors,
                last_decode_error=self.stats.last_decode_error,
                duplicates=self.stats.duplicates,
                packets=self.stats.packets,
                readings=self.stats.readings,
                reconnects=self.stats.reconnects,
                commands_confirmed=self.stats.commands_confirmed,
                commands_failed=self.stats.commands_failed,
                thermostat=self._thermostat_details(),
                modem=(
                    {"hardware": f"{info.hardware_version:X}", "firmware": f"{info.firmware_version:X}"}
                    if info
                    else None
                ),
            )
        except Exception:
            # The database away must not take the radio down with it; the next beat tries again.
            logger.exception("serial worker: heartbeat failed")
            close_old_connections()


def _input_queries(node: Node, definition: DeviceDefinition) -> list[tuple[int, int]]:
    """(address, register) QUERYs for a newly identified node's inputs, so its values show without waiting for its
    reporting period."""
    return [
        (node.address, register.id)
        for register in definition.registers
        if not register.config and any(not endpoint.writable for endpoint in register.endpoints)
    ]


def packet_text(packet: Packet) -> str:
    return f"STATUS {packet.register_address:02X}.{packet.register_id} {packet.value.hex().upper()}"


# --- the embedded default --------------------------------------------------------------------------------------


class EmbeddedRadio(Worker):
    """The embedded default without ``SERIAL_PORT``: the simulated network (``heating.simulator``) on a local TCP
    port, and the serial worker against it, so a fresh ``make run`` shows rooms whose temperatures move."""

    name = "panstamp"

    #: Simulated seconds per real second: the heater reports its temperature about every 16 minutes.
    TIME_SCALE = 15.0

    def __init__(self, *, time_scale: float = TIME_SCALE, timings: WorkerTimings | None = None) -> None:
        super().__init__()
        from heating.simulator import SimulatedNetwork

        network = NetworkSettings.from_settings(settings)
        self.simulator = SimulatedNetwork(
            tcp=("127.0.0.1", 0), time_scale=time_scale, channel=network.channel, sync_word=network.sync_word
        )
        self.time_scale = time_scale
        self.timings = timings
        self.worker: SerialWorker | None = None

    def serve(self) -> None:
        self._create_simulated_rooms()
        self.simulator.start()
        try:
            host, port = self.simulator.tcp_address
            self.worker = SerialWorker(
                f"socket://{host}:{port}",
                timings=self.timings
                or WorkerTimings(
                    discovery_interval=60.0, node_silence=max(60.0, 180.0 / self.time_scale * 4), heartbeat_interval=10
                ),
                # One clock: every thermostat timer (minimum times, staleness, queries) reads the simulator's, so
                # the simulated rooms and their thermostat run equally fast.
                thermostat=ThermostatRunner(clock=ThermostatClock.of_simulator(self.simulator)),
            )
            self.worker.stopping = self.stopping
            self.worker.serve()
        finally:
            self.simulator.stop()

    def _create_simulated_rooms(self) -> None:
        """A house without rooms gets one per simulated heater (never in a migration: production has none)."""
        try:
            created = services.rooms_create_simulated(addresses=[node.address for node in self.simulator.nodes])
        except DatabaseError:
            logger.exception("the simulated rooms could not be created; the radio starts without them")
            return
        if created:
            logger.info("simulated rooms created: %s", ", ".join(room.slug for room in created))


def embedded_radio() -> Worker | None:
    """The ``hub.embedded`` factory: the worker on ``SERIAL_PORT``, else the simulator and the worker on it."""
    if not settings.EMBEDDED:
        return None  # production runs ``manage.py serial_worker`` as its own service
    if settings.SERIAL_PORT:
        return SerialWorker(settings.SERIAL_PORT)
    return EmbeddedRadio()
