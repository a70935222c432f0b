"""The one place that applies the thermostat's decisions: run by the serial worker, the one process that owns the modem.

The serial worker (``heating.worker``) owns one :class:`ThermostatRunner` and calls it

* after each stored batch of packets (:meth:`ThermostatRunner.after_batch`), for the rooms whose temperature or
  heater nodes the batch touched;
* on every loop step (:meth:`ThermostatRunner.step`), which runs a pass over every room each ``interval`` (a pass
  that overruns its interval makes the missed ones skipped, never queued);
* when one of its commands is confirmed or failed (:meth:`ThermostatRunner.command_finished`).

For each room it resolves the target (as ``heating.selectors.room_setpoint`` does), builds ``RoomInputs`` from
what it has heard, asks the pure ``heating.thermostat.decide`` and applies the answer: a heater's relay (register
12 of the room heater) is written through the confirmed-command path, origin ``thermostat``, **only** when the relay's
reported state — a STATUS no older than ``relay_state_max_age`` — differs from the decision; with no such state the
relay is asked (QUERY) and nothing is switched from memory. A heater node whose Manual register is not 1 (first
contact, or after it restarted) is written Manual = 1 before any relay command. Every time is on one clock
(:class:`ThermostatClock`): the modem's host's monotonic clock in production, the simulator's in the embedded
default and the time-compressed tests. docs/thermostat.md#the-thermostat-in-the-serial-worker has the whole story.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Max, Prefetch
from django.utils import timezone

import messaging
from heating import room_topics, services
from heating.models import (
    Alert,
    AlertKind,
    Command,
    CommandState,
    House,
    Node,
    Reading,
    Room,
    RoomHeater,
    ScheduleBlock,
)
from heating.selectors import house, house_zone, node_definition, room_blocks, room_presets, room_setpoint_with
from heating.swap import DeviceDefinition, Endpoint
from heating.swap.registers import StandardRegister, SystemState
from heating.thermostat.decide import ALERT_SENSOR_STALE, Decision, RoomInputs, Tuning, decide
from heating.thermostat.decide import ALERTS as DECIDE_ALERTS
from heating.thermostat.schedule import Block
from heating.thermostat.setpoint import Presets, Setpoint

logger = logging.getLogger(__name__)

ORIGIN = "thermostat"
#: The room heater's register that puts its relay under the hub's control (docs/protocols/swap.md §6).
MANUAL_ENDPOINT = "Manual"
#: Passes between full reloads of the rooms even when nothing seems changed (a node's product re-identified): an
#: hour at the default interval, since a full load of 500 rooms takes the worker's thread for ~100-400 ms.
FULL_RELOAD_PASSES = 120
RUNNER_ALERTS = frozenset({AlertKind.RELAY_UNCONFIRMED, AlertKind.RELAY_STUCK, AlertKind.MANUAL_MODE_FAILED})


@dataclass(frozen=True)
class ThermostatTimings:
    """The thermostat's timings and tolerances (seconds on the :class:`ThermostatClock`, °C); the first eleven are
    the ``HEATING_*`` settings (docs/configuration.md#the-thermostat)."""

    #: A pass over every room this often (after each batch too, for the rooms it touched).
    interval: float = 30.0
    #: Each room's temperature is asked (QUERY) this often unless it reported by itself meanwhile.
    temperature_query_interval: float = 120.0
    #: A relay's reported state older than this is not trusted: the relay is asked before it is switched.
    relay_state_max_age: float = 90.0
    sensor_stale_after: float = 2100.0
    min_on: float = 180.0
    min_off: float = 180.0
    cold_tolerance: float = 0.3
    hot_tolerance: float = 0.3
    frozen_after: float = 3 * 3600.0
    failure_after: float = 3600.0
    failure_rise: float = 0.5
    #: A QUERY not answered within this long is sent again (at the next pass that needs it).
    answer_wait: float = 10.0
    #: After a relay or Manual command failed, this long before it is tried again.
    retry_after: float = 60.0
    #: Corrections of one relay (the hub had to repeat what it had already told it) within this long: two make
    #: "relay stuck".
    stuck_window: float = 3600.0
    #: An unchanged decision is offered to ``decision_record`` this often (it records one an hour).
    decision_repeat: float = 3600.0
    #: Real seconds (the host's clock, whatever the thermostat's) between looks for a changed room, heater,
    #: schedule or house setting: one found starts a pass at once, so a target set on a page acts within this.
    rooms_check: float = 2.0

    @classmethod
    def from_settings(cls, source=settings) -> ThermostatTimings:
        return cls(
            interval=source.HEATING_THERMOSTAT_INTERVAL,
            temperature_query_interval=source.HEATING_TEMPERATURE_QUERY_INTERVAL,
            relay_state_max_age=source.HEATING_RELAY_STATE_MAX_AGE,
            sensor_stale_after=source.HEATING_SENSOR_STALE_SECONDS,
            min_on=source.HEATING_MIN_ON_SECONDS,
            min_off=source.HEATING_MIN_OFF_SECONDS,
            cold_tolerance=source.HEATING_COLD_TOLERANCE,
            hot_tolerance=source.HEATING_HOT_TOLERANCE,
            frozen_after=source.HEATING_SENSOR_FROZEN_SECONDS,
            failure_after=source.HEATING_FAILURE_SECONDS,
            failure_rise=source.HEATING_FAILURE_RISE,
        )

    def tuning(self) -> Tuning:
        return Tuning(
            cold_tolerance=self.cold_tolerance,
            hot_tolerance=self.hot_tolerance,
            min_on=self.min_on,
            min_off=self.min_off,
            sensor_stale_after=self.sensor_stale_after,
            frozen_after=self.frozen_after,
            failure_after=self.failure_after,
            failure_rise=self.failure_rise,
        )


@dataclass(frozen=True)
class ThermostatClock:
    """The thermostat's one clock: ``now()`` in seconds, and how many of them pass per wall-clock second (``scale``),
    which places readings stored before a start (wall-clock times in the database) on it.

    Production: the host's monotonic clock, scale 1. The embedded default's simulator and the time-compressed tests:
    :meth:`of_simulator`, so minimum times, staleness and query intervals run as fast as the simulated rooms.
    """

    now: Callable[[], float] = time.monotonic
    scale: float = 1.0

    @classmethod
    def of_simulator(cls, network) -> ThermostatClock:
        return cls(now=network.now, scale=network.time_scale)

    def at(self, moment: datetime, *, now: float, wall_now: datetime) -> float:
        return now - (wall_now - moment).total_seconds() * self.scale


# --- what the runner knows between packets ---------------------------------------------------------------------


@dataclass
class _Sensor:
    value: float | None = None
    at: float | None = None
    changed_at: float | None = None
    next_query: float = 0.0
    queried_at: float | None = None
    #: Since when the runner watches it: a sensor never heard is "stale" (heaters off) at once, but raises its
    #: alert only once it has been silent for the stale time like any other.
    watched_since: float = 0.0


@dataclass
class _Relay:
    reported_on: bool | None = None
    reported_at: float | None = None
    queried_at: float | None = None
    pending: int | None = None  # the id of the thermostat's command waiting for its STATUS
    pending_on: bool | None = None
    last_sent_on: bool | None = None  # what the thermostat last told it (confirmed or not)
    last_confirmed: bool = False
    retry_at: float = 0.0
    corrections: list[float] = field(default_factory=list)
    stuck: bool = False
    unconfirmed: bool = False


@dataclass
class _HeaterNode:
    """A heater node's Manual register: None = not known (never heard since start, or it restarted)."""

    manual: bool | None = None
    queried_at: float | None = None
    pending: int | None = None
    retry_at: float = 0.0
    failed: bool = False


@dataclass
class _RoomMemory:
    heating: bool | None = None  # what the hub last decided; None after a start
    switched_at: float | None = None
    on_since_temperature: float | None = None
    recorded: tuple[bool, str] | None = None
    recorded_at: float | None = None
    open_alerts: set[str] = field(default_factory=set)
    last: Decision | None = None


@dataclass(frozen=True)
class _Heater:
    node: Node
    endpoint: Endpoint
    manual: Endpoint | None
    definition: DeviceDefinition

    @property
    def key(self) -> tuple[int, str]:
        return (self.node.address, self.endpoint.name)


@dataclass
class _RoomConfig:
    room: Room
    sensor: tuple[int, int] | None  # (address, register)
    sensor_endpoint: Endpoint | None
    heaters: list[_Heater]
    #: The room's week as the schedule module's blocks, converted once per load.
    blocks: list[Block] = field(default_factory=list)
    #: Its presets, worked out again only when the house's change (the house row is read every pass).
    presets: Presets | None = None
    presets_of: tuple | None = None

    def presets_with(self, the_house: House) -> Presets:
        key = (the_house.comfort, the_house.eco, the_house.away_temperature, the_house.frost, the_house.maximum)
        if self.presets is None or self.presets_of != key:
            self.presets, self.presets_of = room_presets(self.room, the_house), key
        return self.presets

    def setpoint(self, *, at: datetime, the_house: House, zone: ZoneInfo) -> Setpoint:
        """What ``heating.selectors.room_setpoint`` answers, without converting the blocks and presets again for
        every decision (a pass over 500 rooms spent a third of its time there)."""
        return room_setpoint_with(
            self.room,
            at=at,
            house_away=the_house.away,
            blocks=self.blocks,
            presets=self.presets_with(the_house),
            zone=zone,
        )


@dataclass
class ThermostatStats:
    passes: int = 0
    skipped: int = 0
    decisions: int = 0
    relay_commands: int = 0
    queries: int = 0
    last_pass_seconds: float = 0.0


class ThermostatRunner:
    """Decides every room and applies the decisions through the serial worker's modem and command queue."""

    def __init__(
        self,
        *,
        timings: ThermostatTimings | None = None,
        clock: ThermostatClock | None = None,
        send_query: Callable[[int, int], None] | None = None,
    ) -> None:
        self.timings = timings or ThermostatTimings.from_settings()
        self.tuning = self.timings.tuning()
        self.clock = clock or ThermostatClock()
        self._send_query = send_query or _no_radio
        self.stats = ThermostatStats()
        self._running = False
        self.reset()

    def abandon_old_commands(self) -> int:
        """Before a fresh start: the thermostat's commands still queued or sent from before (a hub that stopped with
        a relay command pending) are failed, not sent — they carry a decision from memory, and a relay is switched
        only from a fresh decision and a fresh state. How many there were."""
        if self._started:
            return 0  # a reconnect of the modem: those are this runner's own, still awaited
        old = Command.objects.filter(origin=ORIGIN, state__in=[CommandState.QUEUED, CommandState.SENT])
        count = 0
        for command in old.select_related("node"):
            services.command_fail(
                command=command, error="superseded: the thermostat decides afresh after a restart", at=timezone.now()
            )
            count += 1
        if count:
            logger.info("thermostat: %d relay command(s) from before the start abandoned; deciding afresh", count)
        return count

    def bind(self, *, send_query: Callable[[int, int], None]) -> None:
        """The worker that owns the modem: how a QUERY (address, register) goes on the air."""
        self._send_query = send_query

    def reset(self) -> None:
        """Forget everything heard: the next call starts afresh (a start, or the worker's resync after a database
        error), deciding every room from current readings and asking every relay and Manual register again."""
        self._started = False
        self._next_pass = 0.0
        self._signature: tuple | None = None
        self._passes_since_load = 0
        self._next_rooms_check = 0.0
        self._configs: dict[int, _RoomConfig] = {}
        self._by_sensor: dict[tuple[int, int], list[int]] = {}
        self._by_heater_node: dict[int, list[int]] = {}
        self._sensors: dict[tuple[int, int], _Sensor] = {}
        self._relays: dict[tuple[int, str], _Relay] = {}
        self._heater_nodes: dict[int, _HeaterNode] = {}
        self._rooms: dict[int, _RoomMemory] = {}
        self._commands: dict[int, tuple[str, tuple]] = {}
        #: Rooms to decide again at the next step (a command of theirs was confirmed or failed).
        self._dirty: set[int] = set()
        #: The target and preset MQTT topics when time alone changed them (a block began, a boost ended).
        self._setpoint_topics = room_topics.SetpointTopics()

    # --- the worker's calls ----------------------------------------------------------------------------------------

    def step(self) -> None:
        """Called on every worker loop step: a pass over every room when one is due."""
        now = self.clock.now()
        if now >= self._next_pass or self._rooms_changed():
            self.run_pass()
        elif self._dirty and self._started and not self._running:
            dirty, self._dirty = sorted(self._dirty), set()
            self._running = True
            try:
                self._decide_rooms(dirty, now)
            finally:
                self._running = False

    def run_pass(self) -> None:
        """A pass over every room (the tick); skipped while one runs, and intervals it overran are skipped."""
        if self._running:
            self.stats.skipped += 1
            return
        self._running = True
        started = self.clock.now()
        real_start = time.perf_counter()
        try:
            self._load_rooms_if_changed()
            now = self.clock.now()
            self._dirty.clear()
            self._query_temperatures(now)
            self._decide_rooms(list(self._configs), now)
        finally:
            self._running = False
            self.stats.passes += 1
            self.stats.last_pass_seconds = time.perf_counter() - real_start
            interval = self.timings.interval
            missed = int((self.clock.now() - started) // interval)
            self.stats.skipped += missed
            self._next_pass = started + interval * (missed + 1)

    def after_batch(self, statuses: Iterable[tuple[int, int, bytes]]) -> None:
        """A batch of STATUS packets (address, register, value) was stored: take in what concerns rooms and decide
        the rooms it touched."""
        if not self._started or self._running:
            return  # the first pass (or the one running) reads what was stored
        now = self.clock.now()
        touched: set[int] = set()
        for address, register_id, value in statuses:
            touched |= self._heard(address, register_id, value, now)
        touched |= self._dirty
        self._dirty.clear()
        if touched:
            self._running = True
            try:
                self._decide_rooms(sorted(touched), now)
            finally:
                self._running = False

    def command_finished(self, command: Command) -> None:
        """One of the worker's commands was confirmed or failed; only the thermostat's own matter here."""
        what = self._commands.pop(command.pk, None)
        if what is None:
            return
        now = self.clock.now()
        confirmed = command.state == CommandState.CONFIRMED
        kind, key = what
        if kind == "relay":
            self._relay_finished(key, command, confirmed, now)
        else:
            self._manual_finished(key, command, confirmed, now)

    # --- what tests, the bench and health checks read --------------------------------------------------------------

    def relay_report(self, address: int, endpoint: str = "Heating") -> tuple[bool | None, float | None]:
        """A relay's last reported state and its age in seconds on the thermostat's clock (None, None: never heard
        since the start)."""
        relay = self._relays.get((address, endpoint))
        if relay is None or relay.reported_at is None:
            return None, None
        return relay.reported_on, self.clock.now() - relay.reported_at

    def decision_of(self, room_id: int) -> Decision | None:
        memory = self._rooms.get(room_id)
        return memory.last if memory is not None else None

    # --- rooms, and what was heard ---------------------------------------------------------------------------------

    def _rooms_changed(self) -> bool:
        """Every ``rooms_check`` real seconds: has a room, heater, schedule block, identified node or the house's
        settings changed since the last pass? (Between passes; a first pass is due anyway.)"""
        if not self._started or self._running:
            return False
        real_now = time.monotonic()
        if real_now < self._next_rooms_check:
            return False
        self._next_rooms_check = real_now + self.timings.rooms_check
        return _rooms_signature() != self._signature

    def _load_rooms_if_changed(self) -> None:
        """The rooms as loaded before, unless a room, heater, schedule block or identified node was added, changed or
        removed since (a few small aggregate queries instead of loading every room each pass), or the last full load
        is ``FULL_RELOAD_PASSES`` passes old."""
        signature = _rooms_signature()
        if signature != self._signature or self._passes_since_load >= FULL_RELOAD_PASSES:
            self._load_rooms()
            self._signature, self._passes_since_load = signature, 0
        self._passes_since_load += 1

    def _load_rooms(self) -> None:
        """Every room with its sensor and heaters (three queries), and which node and register lead to which room.
        A room or sensor seen for the first time since the start is taken up afresh (:meth:`_take_up`)."""
        rooms = Room.objects.select_related("temperature_node").prefetch_related(
            "schedule_blocks", Prefetch("heaters", queryset=RoomHeater.objects.select_related("node"))
        )
        configs: dict[int, _RoomConfig] = {}
        by_sensor: dict[tuple[int, int], list[int]] = {}
        by_heater_node: dict[int, list[int]] = {}
        for room in rooms:
            config = _room_config(room)
            configs[room.pk] = config
            if config.sensor is not None:
                by_sensor.setdefault(config.sensor, []).append(room.pk)
            for heater in config.heaters:
                by_heater_node.setdefault(heater.node.address, []).append(room.pk)
        self._configs, self._by_sensor, self._by_heater_node = configs, by_sensor, by_heater_node
        self._take_up(
            new_rooms=[room_id for room_id in configs if room_id not in self._rooms],
            new_sensors=[key for key in by_sensor if key not in self._sensors],
        )
        self._started = True

    def _take_up(self, *, new_rooms: list[int], new_sensors: list[tuple[int, int]]) -> None:
        """Afresh, from the database: each new sensor's latest temperature (its age placed on the thermostat's
        clock) and each new room's open alerts. Relays and Manual registers are never taken from memory: asked."""
        now = self.clock.now()
        wall_now = timezone.now()
        for key in new_sensors:
            config = self._configs[self._by_sensor[key][0]]
            sensor = self._sensors[key] = _Sensor(watched_since=now)
            reading = (
                Reading.objects.filter(node=config.room.temperature_node, name=config.sensor_endpoint.name)
                .order_by("-recorded_at", "-id")
                .first()
            )
            if reading is not None and isinstance(reading.value, int | float) and not isinstance(reading.value, bool):
                at = self.clock.at(reading.recorded_at, now=now, wall_now=wall_now)
                sensor.value, sensor.at, sensor.changed_at = float(reading.value), at, at
        for room_id in new_rooms:
            self._rooms[room_id] = _RoomMemory()
        if new_rooms:
            open_alerts = Alert.objects.filter(cleared_at__isnull=True, room_id__in=new_rooms)
            for room_id, kind in open_alerts.values_list("room_id", "kind"):
                self._rooms[room_id].open_alerts.add(kind)

    def _heard(self, address: int, register_id: int, value: bytes, now: float) -> set[int]:
        touched: set[int] = set()
        sensor_rooms = self._by_sensor.get((address, register_id))
        if sensor_rooms:
            endpoint = self._configs[sensor_rooms[0]].sensor_endpoint
            try:
                temperature = float(endpoint.decode(value))
            except (ValueError, TypeError):
                temperature = None
            if temperature is not None:
                sensor = self._sensors.setdefault((address, register_id), _Sensor())
                if sensor.value != temperature:
                    sensor.changed_at = now
                sensor.value, sensor.at = temperature, now
                sensor.next_query = max(sensor.next_query, now + self.timings.temperature_query_interval)
                touched.update(sensor_rooms)
        heater_rooms = self._by_heater_node.get(address)
        if heater_rooms and self._heater_register_heard(address, register_id, value, heater_rooms, now):
            touched.update(heater_rooms)
        return touched

    def _heater_register_heard(
        self, address: int, register_id: int, value: bytes, room_ids: list[int], now: float
    ) -> bool:
        heater_node = self._heater_nodes.setdefault(address, _HeaterNode())
        if register_id == StandardRegister.SYSTEM_STATE and value[:1] == bytes([SystemState.RESTART]):
            # A restarted node has forgotten Manual = 1 and its relay is whatever it booted to: ask both again.
            logger.info("thermostat: heater node %02X restarted; asking its Manual register and relay again", address)
            heater_node.manual = None
            heater_node.queried_at = None
            for relay_key, relay in self._relays.items():
                if relay_key[0] == address:
                    relay.reported_on = relay.reported_at = relay.queried_at = None
            return True
        heard = False
        # Every heater of the node: a board's several relays may share one register (panStamp's binary outputs).
        for heater in self._heaters_of(room_ids, address):
            if heater.manual is not None and register_id == heater.manual.register_id:
                heater_node.manual = bool(heater.manual.decode(value))
                heard = True
            if register_id == heater.endpoint.register_id:
                relay = self._relays.setdefault(heater.key, _Relay())
                relay.reported_on = bool(heater.endpoint.decode(value))
                relay.reported_at = now
                heard = True
        return heard

    def _heaters_of(self, room_ids: list[int], address: int) -> list[_Heater]:
        return [
            heater
            for room_id in room_ids
            for heater in self._configs[room_id].heaters
            if heater.node.address == address
        ]

    def _query_temperatures(self, now: float) -> None:
        for key in self._by_sensor:
            sensor = self._sensors.setdefault(key, _Sensor())
            if now >= sensor.next_query:
                sensor.next_query = now + self.timings.temperature_query_interval
                sensor.queried_at = now
                self._query(*key)

    def _query(self, address: int, register_id: int) -> None:
        self.stats.queries += 1
        try:
            self._send_query(address, register_id)
        except ValueError as exc:
            logger.warning("thermostat: cannot ask node %X for register %d: %s", address, register_id, exc)

    # --- deciding --------------------------------------------------------------------------------------------------

    def _decide_rooms(self, room_ids: list[int], now: float) -> None:
        wall_now = timezone.now()
        the_house = house() if room_ids else None
        zone = house_zone()
        self._topic_events: list[messaging.Event] = []
        for room_id in room_ids:
            config = self._configs.get(room_id)
            if config is None:
                continue
            try:
                self._decide_room(config, now, wall_now, the_house, zone)
            except DatabaseError:
                raise  # the worker starts afresh
            except Exception:
                # One room's fault (a node the codec cannot address, a definition gone wrong) is logged and
                # leaves the other rooms decided.
                logger.exception("thermostat: deciding room %s failed", config.room.slug)
        if self._topic_events:
            # One insert for the pass (after a start: every room's target and preset).
            messaging.publish_many(self._topic_events)

    def _decide_room(self, config: _RoomConfig, now: float, wall_now: datetime, the_house, zone) -> None:
        room = config.room
        memory = self._rooms.setdefault(room.pk, _RoomMemory())
        point = config.setpoint(at=wall_now, the_house=the_house, zone=zone)
        self._topic_events += self._setpoint_topics.events(room, point, at=wall_now)
        presets = config.presets_with(the_house)
        frost, maximum = presets.frost, presets.maximum
        sensor = self._sensors.get(config.sensor) if config.sensor else None
        inputs = RoomInputs(
            now=now,
            target=point.target,
            frost=frost,
            maximum=maximum,
            boost=point.boost,
            proportional=room.proportional,
            temperature=sensor.value if sensor else None,
            temperature_at=sensor.at if sensor else None,
            temperature_changed_at=sensor.changed_at if sensor else None,
            heating=memory.heating,
            switched_at=memory.switched_at,
            on_since_temperature=memory.on_since_temperature,
        )
        decision = decide(inputs, self.tuning)
        self.stats.decisions += 1
        self._topic_events += self._setpoint_topics.stale_events(
            room, stale=ALERT_SENSOR_STALE in decision.alerts, at=wall_now
        )
        if decision.heat != memory.heating:
            memory.heating = decision.heat
            memory.switched_at = now
            memory.on_since_temperature = inputs.temperature if decision.heat else None
        memory.last = decision
        self._record(config, memory, decision, inputs, now, wall_now)
        self._sync_alerts(config, memory, inputs, decision, now, wall_now)
        for heater in config.heaters:
            self._apply(heater, decision.heat, now)

    def _record(self, config, memory: _RoomMemory, decision: Decision, inputs: RoomInputs, now, wall_now) -> None:
        outcome = (decision.heat, decision.reason)
        if memory.recorded == outcome and now - (memory.recorded_at or now) < self.timings.decision_repeat:
            return
        memory.recorded, memory.recorded_at = outcome, now
        services.decision_record(
            room=config.room,
            at=wall_now,
            heat=decision.heat,
            reason=decision.reason,
            target=inputs.target,
            temperature=inputs.temperature,
        )

    # --- applying --------------------------------------------------------------------------------------------------

    def _apply(self, heater: _Heater, heat: bool, now: float) -> None:
        relay = self._relays.setdefault(heater.key, _Relay())
        if relay.pending is not None:
            return  # one command at a time; its STATUS (or its failure) comes back through command_finished
        if heater.manual is not None and not self._in_manual_mode(heater, now):
            return  # the node's own thermostat would fight the hub's relay commands
        fresh = relay.reported_at is not None and now - relay.reported_at <= self.timings.relay_state_max_age
        if not fresh:
            # Never switched from memory: ask, and decide again when the STATUS arrives.
            if relay.queried_at is None or now - relay.queried_at >= self.timings.answer_wait:
                relay.queried_at = now
                self._query(heater.node.address, heater.endpoint.register_id)
            return
        if relay.reported_on == heat:
            # Where the hub wants it: nothing is unconfirmed any more; "stuck" ends once the corrections that
            # raised it are older than the window (a relay that keeps flipping back keeps its alert meanwhile).
            relay.unconfirmed = False
            relay.corrections = [at for at in relay.corrections if now - at < self.timings.stuck_window]
            if len(relay.corrections) < 2:
                relay.stuck = False
            return
        if now < relay.retry_at:
            return
        if relay.last_sent_on == heat:
            # The hub had already told it this: a correction. Twice within the window: stuck.
            relay.corrections = [at for at in relay.corrections if now - at < self.timings.stuck_window] + [now]
            if len(relay.corrections) >= 2:
                relay.stuck = True
            logger.warning(
                "thermostat: %s reports %s although the hub switched it %s; correcting",
                _heater_name(heater),
                _on_off(relay.reported_on),
                _on_off(heat),
            )
        self._send_relay(heater, relay, heat, now)

    def _send_relay(self, heater: _Heater, relay: _Relay, heat: bool, now: float) -> None:
        try:
            command = services.command_queue(
                node=_fresh(heater.node),
                endpoint=heater.endpoint.name,
                value=int(heat),
                definition=heater.definition,
                origin=ORIGIN,
            )
        except services.CommandRefused as exc:
            # Someone else's command is pending on it (staff switching by hand): try again later.
            logger.info("thermostat: cannot switch %s now: %s", _heater_name(heater), exc)
            relay.retry_at = now + self.timings.answer_wait
            return
        self.stats.relay_commands += 1
        relay.pending, relay.pending_on = command.pk, heat
        self._commands[command.pk] = ("relay", heater.key)

    def _relay_finished(self, key: tuple[int, str], command: Command, confirmed: bool, now: float) -> None:
        relay = self._relays.setdefault(key, _Relay())
        relay.pending = None
        relay.last_sent_on = relay.pending_on
        relay.last_confirmed = confirmed
        if confirmed:
            relay.unconfirmed = False
            relay.reported_on, relay.reported_at = relay.pending_on, now
        else:
            relay.unconfirmed = True
            relay.retry_at = now + self.timings.retry_after
        self._redecide_rooms_of(key[0], now)

    def _in_manual_mode(self, heater: _Heater, now: float) -> bool:
        state = self._heater_nodes.setdefault(heater.node.address, _HeaterNode())
        if state.manual:
            return True
        if state.pending is not None:
            return False
        if state.manual is None:
            if state.queried_at is None or now - state.queried_at >= self.timings.answer_wait:
                state.queried_at = now
                self._query(heater.node.address, heater.manual.register_id)
            return False
        if now >= state.retry_at:
            try:
                command = services.command_queue(
                    node=_fresh(heater.node),
                    endpoint=heater.manual.name,
                    value=1,
                    definition=heater.definition,
                    origin=ORIGIN,
                )
            except services.CommandRefused as exc:
                logger.info("thermostat: cannot put %s in Manual mode now: %s", heater.node, exc)
                state.retry_at = now + self.timings.answer_wait
                return False
            logger.info("thermostat: %s reports Manual = 0; writing Manual = 1", heater.node)
            state.pending = command.pk
            self._commands[command.pk] = ("manual", (heater.node.address,))
        return False

    def _manual_finished(self, key: tuple, command: Command, confirmed: bool, now: float) -> None:
        (address,) = key
        state = self._heater_nodes.setdefault(address, _HeaterNode())
        state.pending = None
        if confirmed:
            state.manual, state.failed = True, False
        else:
            state.failed = True
            state.retry_at = now + self.timings.retry_after
        self._redecide_rooms_of(address, now)

    def _redecide_rooms_of(self, address: int, now: float) -> None:
        # Not at once: the worker calls in the middle of storing a batch; the next step or batch decides them.
        self._dirty.update(self._by_heater_node.get(address, []))

    # --- alerts ----------------------------------------------------------------------------------------------------

    def _sync_alerts(self, config, memory: _RoomMemory, inputs: RoomInputs, decision: Decision, now, wall_now) -> None:
        wanted = set(decision.alerts)
        sensor = self._sensors.get(config.sensor) if config.sensor else None
        if (
            sensor is not None
            and sensor.at is None
            and now - sensor.watched_since < self.timings.sensor_stale_after
            and AlertKind.SENSOR_STALE not in memory.open_alerts
        ):
            wanted.discard(AlertKind.SENSOR_STALE)
        for heater in config.heaters:
            relay = self._relays.get(heater.key)
            if relay is not None and relay.stuck:
                wanted.add(AlertKind.RELAY_STUCK)
            if relay is not None and relay.unconfirmed:
                wanted.add(AlertKind.RELAY_UNCONFIRMED)
            node_state = self._heater_nodes.get(heater.node.address)
            if heater.manual is not None and node_state is not None and node_state.failed and not node_state.manual:
                wanted.add(AlertKind.MANUAL_MODE_FAILED)
        managed = DECIDE_ALERTS | RUNNER_ALERTS
        for kind in sorted(wanted - memory.open_alerts):
            services.alert_raise(
                room=config.room, kind=kind, message=_alert_message(kind, config, inputs, now), at=wall_now
            )
            memory.open_alerts.add(kind)
        for kind in sorted((memory.open_alerts & managed) - wanted):
            services.alert_clear(room=config.room, kind=kind, at=wall_now)
            memory.open_alerts.discard(kind)


def _rooms_signature() -> tuple:
    """What changes when a room, its heaters or schedule, an identified node or the house's settings change."""
    return (
        tuple(Room.objects.aggregate(n=Count("id"), at=Max("updated_at")).values()),
        tuple(RoomHeater.objects.aggregate(n=Count("id"), last=Max("id")).values()),
        tuple(ScheduleBlock.objects.aggregate(n=Count("id"), last=Max("id")).values()),
        tuple(Node.objects.exclude(definition="").aggregate(n=Count("id"), last=Max("id")).values()),
        tuple(House.objects.values_list("away", "comfort", "eco", "away_temperature", "frost", "maximum")),
    )


def _fresh(node: Node) -> Node:
    """The node as stored now: a command keeps the other bits of its register from the node's latest values, and the
    runner's copy is as old as its last load of the rooms."""
    return Node.objects.get(pk=node.pk)


def _no_radio(address: int, register_id: int) -> None:
    raise RuntimeError("the thermostat runner is not bound to a serial worker (ThermostatRunner.bind)")


def _room_config(room: Room) -> _RoomConfig:
    sensor = sensor_endpoint = None
    if room.temperature_node is not None and room.temperature_endpoint:
        definition = node_definition(room.temperature_node)
        if definition is not None:
            try:
                sensor_endpoint = definition.endpoint(room.temperature_endpoint)
            except KeyError:
                sensor_endpoint = None
            if sensor_endpoint is not None:
                sensor = (room.temperature_node.address, sensor_endpoint.register_id)
    heaters = []
    for row in room.heaters.all():
        definition = node_definition(row.node)
        if definition is None:
            continue  # not identified yet: nothing can be written to it
        try:
            endpoint = definition.endpoint(row.endpoint)
        except KeyError:
            logger.warning(
                "thermostat: %s has no endpoint %r; room %s cannot use it", row.node, row.endpoint, room.slug
            )
            continue
        manual = next((item for item in definition.endpoints if item.name == MANUAL_ENDPOINT and item.writable), None)
        heaters.append(_Heater(node=row.node, endpoint=endpoint, manual=manual, definition=definition))
    return _RoomConfig(
        room=room, sensor=sensor, sensor_endpoint=sensor_endpoint, heaters=heaters, blocks=room_blocks(room)
    )


def _heater_name(heater: _Heater) -> str:
    return f"{heater.node} {heater.endpoint.name}"


def _on_off(value: bool | None) -> str:
    return {True: "on", False: "off"}.get(value, "unknown")


def _alert_message(kind: str, config: _RoomConfig, inputs: RoomInputs, now: float) -> str:
    name = config.room.name
    temperature = inputs.temperature
    heaters = ", ".join(str(heater.node) for heater in config.heaters) or "its heater"
    if kind == AlertKind.SENSOR_STALE:
        if inputs.temperature_at is None:
            return f"No temperature from {name}'s sensor: its heaters are off until one arrives."
        minutes = (now - inputs.temperature_at) / 60
        return f"No temperature from {name}'s sensor for {minutes:.0f} minutes: its heaters are off."
    if kind == AlertKind.SENSOR_FROZEN:
        return f"{name}'s temperature has not changed ({temperature:.1f} °C) for hours while heating: check the sensor."
    if kind == AlertKind.OVER_MAXIMUM:
        return f"{name} is at {temperature:.1f} °C, at or above its maximum {inputs.maximum:.1f} °C: heaters off."
    if kind == AlertKind.FROST:
        return f"{name} is at {temperature:.1f} °C, below frost protection ({inputs.frost:.1f} °C): heating."
    if kind == AlertKind.HEATING_FAILURE:
        return f"{name} has been heating for a long time but is hardly warmer ({temperature:.1f} °C): check {heaters}."
    if kind == AlertKind.RELAY_UNCONFIRMED:
        return f"{heaters} did not confirm a relay command after every retry; the hub tries again."
    if kind == AlertKind.RELAY_STUCK:
        return f"{name}: the relay of {heaters} keeps reporting the opposite of what the hub switched it to."
    if kind == AlertKind.MANUAL_MODE_FAILED:
        return f"{heaters} did not accept Manual mode (the hub's control): its relay is not switched until it does."
    return AlertKind(kind).label
