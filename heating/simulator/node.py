"""A simulated room-heater node (product 72/1): its firmware's registers and reporting, and its room's warmth.

Behaviour copied from the firmware as docs/protocols/swap.md §4 and §6 describe it:

* every ``TX_INTERVAL`` (60 s) it sends its product code and its Heating register; about every 16 minutes its
  room temperature; about every hour it re-syncs (system state SYNC, then RXON);
* it answers a QUERY addressed to it, and a broadcast QUERY only for register 0;
* it applies a COMMAND only when destination = register address = its own address, the register is writable and
  the value has exactly the register's length (and, with anti-playback on, the nonce matches; otherwise it sends
  its nonce, register 7); otherwise it just reports the register's current value;
* a write to register 12 switches the relay on for a moment whatever the value; then, with Manual = 1, the relay
  follows register 12, and with Manual = 0 the compiled-in hysteresis (23.00 °C ± 2.00 °C) decides — registers
  14/15 are stored but never used;
* every transmission carries the next nonce.

Times are simulated seconds (the network compresses them by its time-scale factor).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from heating.swap.codec import BROADCAST, Function, Packet
from heating.swap.registers import STANDARD_REGISTER_SIZES, StandardRegister, SystemState, product_code

MANUFACTURER_ID = 72
PRODUCT_ID = 1
DEFAULT_ADDRESS = 0xA1

ROOM_TEMP = 11
HEATING = 12
SRV_HEATING = 13
DESIRED_TEMP = 14
TOLERANCE = 15
OUTDOOR_TEMP = 16
OUTDOOR_HUM = 17
OUTDOOR_WIND = 18
RESYNC_INTERVAL = 19
MANUAL = 20

REGISTER_SIZES = {
    **STANDARD_REGISTER_SIZES,
    ROOM_TEMP: 2,
    HEATING: 1,
    SRV_HEATING: 1,
    DESIRED_TEMP: 2,
    TOLERANCE: 1,
    OUTDOOR_TEMP: 2,
    OUTDOOR_HUM: 1,
    OUTDOOR_WIND: 1,
    RESYNC_INTERVAL: 1,
    MANUAL: 1,
}
WRITABLE = {HEATING, DESIRED_TEMP, TOLERANCE, OUTDOOR_TEMP, OUTDOOR_HUM, OUTDOOR_WIND, RESYNC_INTERVAL, MANUAL}

#: The firmware's node-local thermostat, compiled in (it ignores registers 14 and 15).
LOCAL_SETPOINT = 23.0
LOCAL_TOLERANCE = 2.0
TEMPERATURE_PERIOD = 16 * 60.0
#: How long the relay stays on after any write to register 12 (a firmware quirk; the length is a guess).
RELAY_PULSE = 1.0


@dataclass
class Room:
    """One room's temperature: Newton cooling towards the outdoor temperature plus the heater's power.

    dT/dt = -loss_per_hour x (T - outdoor) + gain_per_hour x relay, in °C per hour.
    """

    temperature: float = 18.0
    loss_per_hour: float = 0.25
    gain_per_hour: float = 10.0

    def advance(self, seconds: float, *, outdoor: float, heating: bool) -> None:
        hours = seconds / 3600.0
        # Exact for a constant outdoor temperature over the step, so a large time scale stays stable.
        target = outdoor + (self.gain_per_hour / self.loss_per_hour if heating else 0.0)
        decay = math.exp(-self.loss_per_hour * hours)
        self.temperature = target + (self.temperature - target) * decay


@dataclass
class Faults:
    #: Sends nothing and answers nothing.
    silent: bool = False
    #: The temperature it reports, whatever the room does (``None``: no fault).
    stuck_at: float | None = None
    #: The relay and register 12 stay as they are; the STATUS reports the unchanged value.
    relay_ignores_commands: bool = False


@dataclass
class RoomHeaterNode:
    address: int = DEFAULT_ADDRESS
    room: Room = field(default_factory=Room)
    rssi: float = -60.0
    lqi: int = 40
    manual: bool = False
    #: Security nibble of its packets; bit 0 (anti-playback) makes it check command nonces.
    security: int = 0
    #: Standard deviation of the sensor's noise, °C.
    noise: float = 0.05
    tx_interval: float = 60.0
    temperature_period: float = TEMPERATURE_PERIOD
    channel: int = 2
    sync_word: int = 0xB547
    rng: random.Random = field(default_factory=random.Random)
    faults: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        self.nonce = self.rng.randrange(256)
        self.registers: dict[int, bytes] = {
            0: product_code(MANUFACTURER_ID, PRODUCT_ID),
            1: (0x0100).to_bytes(4, "big"),
            2: (0x0102).to_bytes(4, "big"),
            3: bytes([SystemState.RXON]),
            4: bytes([self.channel]),
            5: bytes([self.security]),
            6: b"\x00",
            8: self.sync_word.to_bytes(2, "big"),
            9: bytes([self.address]),
            10: int(self.tx_interval).to_bytes(2, "big"),
            HEATING: b"\x00",
            SRV_HEATING: b"\x00",
            DESIRED_TEMP: round(LOCAL_SETPOINT * 100).to_bytes(2, "big", signed=True),
            TOLERANCE: bytes([round(LOCAL_TOLERANCE * 100)]),
            OUTDOOR_TEMP: b"\x00\x00",
            OUTDOOR_HUM: b"\x00",
            OUTDOOR_WIND: b"\x00",
            RESYNC_INTERVAL: bytes([60]),
            MANUAL: bytes([int(self.manual)]),
        }
        self.relay_on = False
        #: (simulated time, relay on) at every change: shows the pulse a write to register 12 causes.
        self.relay_changes: list[tuple[float, bool]] = []
        self._pulse_until: float | None = None
        self._last_time: float | None = None
        self._next_status = 0.0
        self._next_temperature = 0.0
        self._next_resync = 0.0
        self._resync_ends: float | None = None
        self._update_room_temp_register()

    # --- what it reports -------------------------------------------------------------------------------------------

    @property
    def reported_temperature(self) -> float:
        return int.from_bytes(self.registers[ROOM_TEMP], "big", signed=True) / 100

    def _update_room_temp_register(self) -> None:
        if self.faults.stuck_at is not None:
            reading = self.faults.stuck_at
        else:
            reading = self.room.temperature + (self.rng.gauss(0.0, self.noise) if self.noise else 0.0)
        centi = max(-32768, min(32767, round(reading * 100)))
        self.registers[ROOM_TEMP] = centi.to_bytes(2, "big", signed=True)

    def register_value(self, register_id: int) -> bytes | None:
        if register_id == StandardRegister.NONCE:
            return bytes([self.nonce])
        return self.registers.get(register_id)

    def status_packet(self, register_id: int) -> Packet:
        self.nonce = (self.nonce + 1) & 0xFF
        value = self.register_value(register_id) or b""
        rssi = self.rssi + self.rng.choice((-1.0, -0.5, 0.0, 0.0, 0.5, 1.0))
        return Packet(
            BROADCAST,
            self.address,
            Function.STATUS,
            self.address,
            register_id,
            value,
            self.nonce,
            0,
            self.security,
            # On the radio's half-dB grid, as the modem can only print those.
            rssi=max(-138.0, min(-10.5, round(rssi * 2) / 2)),
            lqi=self.lqi,
        )

    # --- time ------------------------------------------------------------------------------------------------------

    def advance(self, now: float, *, outdoor: float) -> list[Packet]:
        """Move the room and the firmware on to simulated time ``now``; the packets it sends meanwhile."""
        if self._last_time is None:
            self._last_time = now
            # Spread the nodes' schedules as their power-on times would.
            self._next_status = now + self.rng.uniform(0, min(5.0, self.tx_interval))
            self._next_temperature = now + self.rng.uniform(0, min(10.0, self.temperature_period))
            self._next_resync = now + self._resync_seconds()
        elapsed = now - self._last_time
        self._last_time = now
        if elapsed > 0:
            self.room.advance(elapsed, outdoor=outdoor, heating=self.relay_on)
        self._drive_relay(now)
        sent: list[Packet] = []
        if now >= self._next_status:
            self._next_status = now + self.tx_interval
            sent += [self.status_packet(StandardRegister.PRODUCT_CODE), self.status_packet(HEATING)]
        if now >= self._next_temperature:
            self._next_temperature = now + self.temperature_period
            self._update_room_temp_register()
            sent.append(self.status_packet(ROOM_TEMP))
        if self._resync_ends is not None and now >= self._resync_ends:
            self._resync_ends = None
            self.registers[StandardRegister.SYSTEM_STATE] = bytes([SystemState.RXON])
            sent.append(self.status_packet(StandardRegister.SYSTEM_STATE))
        if now >= self._next_resync:
            self._next_resync = now + self._resync_seconds()
            self.registers[StandardRegister.SYSTEM_STATE] = bytes([SystemState.SYNC])
            self._resync_ends = now + 10.0
            sent.append(self.status_packet(StandardRegister.SYSTEM_STATE))
        return [] if self.faults.silent else sent

    def _resync_seconds(self) -> float:
        return max(1, self.registers[RESYNC_INTERVAL][0]) * 60.0

    def _drive_relay(self, now: float) -> None:
        if self._pulse_until is not None and now < self._pulse_until:
            wanted = True
        else:
            self._pulse_until = None
            if self.registers[MANUAL][0]:
                wanted = bool(self.registers[HEATING][0])
            else:
                temperature = self.room.temperature
                if temperature < LOCAL_SETPOINT - LOCAL_TOLERANCE:
                    wanted = True
                elif temperature > LOCAL_SETPOINT + LOCAL_TOLERANCE:
                    wanted = False
                else:
                    wanted = self.relay_on
        if wanted != self.relay_on:
            self.relay_on = wanted
            self.relay_changes.append((now, wanted))

    # --- radio -----------------------------------------------------------------------------------------------------

    def receive(self, packet: Packet, now: float) -> list[Packet]:
        """A packet heard on the air; the node's answers."""
        if self.faults.silent or packet.extended:
            return []
        if packet.function is Function.QUERY:
            if packet.destination == BROADCAST:
                return [self.status_packet(0)] if packet.register_id == 0 else []
            if packet.destination != self.address or packet.register_id not in REGISTER_SIZES:
                return []
            if packet.register_id == ROOM_TEMP:
                self._update_room_temp_register()
            return [self.status_packet(packet.register_id)]
        if packet.function is Function.COMMAND and packet.destination == self.address:
            return self._command(packet, now)
        return []

    def _command(self, packet: Packet, now: float) -> list[Packet]:
        register_id = packet.register_id
        if register_id not in REGISTER_SIZES:
            return []
        if self.security & 0x01 and packet.nonce != self.nonce:
            return [self.status_packet(StandardRegister.NONCE)]
        applies = (
            packet.register_address == self.address
            and register_id in WRITABLE
            and len(packet.value) == REGISTER_SIZES[register_id]
        )
        if applies and not (register_id == HEATING and self.faults.relay_ignores_commands):
            self.registers[register_id] = bytes(packet.value)
            if register_id == HEATING:
                self.registers[SRV_HEATING] = bytes(packet.value)
                self._pulse_until = now + RELAY_PULSE
                self._drive_relay(now)
            elif register_id == MANUAL:
                self._drive_relay(now)
        return [self.status_packet(register_id)]
