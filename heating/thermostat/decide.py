"""The thermostat's one decision: should a room's heaters be on now, and why.

Pure: no Django, no clock, no I/O. The caller (the serial worker's runner) passes everything it knows about a
room as a frozen ``RoomInputs`` and the house's ``Tuning``; ``decide`` answers with a ``Decision``. All times are
float seconds on one clock chosen by the caller (the simulator's clock in the time-compressed tests).

Precedence, first match wins (docs/thermostat.md, "How the thermostat decides"):

1. Sensor stale (no temperature, or none for ``sensor_stale_after``) -> off.      Safety: overrides minimum times.
2. At or above the maximum -> off, whatever the mode.                               Safety: overrides minimum times.
3. Below the frost temperature -> on, whatever the mode (off, away, no target).     Safety: overrides minimum times.
4. Boost -> on.
5. Mode off (no target) -> off.
6. Time-proportional control (``proportional``) or hysteresis around the target.
7. Still heating just above frost -> keep on until frost + hot tolerance (no chatter at the frost line).
8. Minimum on / off times hold the current state against any switch from rules 4-7.

An unknown current state (``heating=None``, e.g. after a restart) is never kept: inside the hysteresis band it
decides off, because only a reading at or below ``target - cold_tolerance`` (or a rule above) says "on".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

# Reasons: a closed set, because the UI shows them and a change of reason is recorded as a heating.decision event.
ON_BELOW_TARGET = "on: below target"
ON_BOOST = "on: boost"
ON_FROST_PROTECTION = "on: frost protection"
ON_PROPORTIONAL = "on: proportional share"
ON_HOLDING_MINIMUM_ON = "on: holding (minimum on time)"
OFF_AT_TARGET = "off: at target"
OFF_MODE_OFF = "off: mode off"
OFF_SENSOR_STALE = "off: sensor stale"
OFF_ABOVE_MAXIMUM = "off: above maximum"
OFF_PROPORTIONAL_PAUSE = "off: proportional pause"
OFF_HOLDING_MINIMUM_OFF = "off: holding (minimum off time)"

REASONS = frozenset(
    {
        ON_BELOW_TARGET,
        ON_BOOST,
        ON_FROST_PROTECTION,
        ON_PROPORTIONAL,
        ON_HOLDING_MINIMUM_ON,
        OFF_AT_TARGET,
        OFF_MODE_OFF,
        OFF_SENSOR_STALE,
        OFF_ABOVE_MAXIMUM,
        OFF_PROPORTIONAL_PAUSE,
        OFF_HOLDING_MINIMUM_OFF,
    }
)
# The only reasons allowed to switch a heater before its minimum on or off time has passed.
SAFETY_REASONS = frozenset({OFF_SENSOR_STALE, OFF_ABOVE_MAXIMUM, ON_FROST_PROTECTION})

# Alert kinds decide raises; the same values as heating.models.AlertKind (this module may not import Django).
ALERT_SENSOR_STALE = "sensor_stale"
ALERT_SENSOR_FROZEN = "sensor_frozen"
ALERT_OVER_MAXIMUM = "over_maximum"
ALERT_FROST = "frost"
ALERT_HEATING_FAILURE = "heating_failure"
ALERTS = frozenset({ALERT_SENSOR_STALE, ALERT_SENSOR_FROZEN, ALERT_OVER_MAXIMUM, ALERT_FROST, ALERT_HEATING_FAILURE})


@dataclass(frozen=True)
class Tuning:
    """The thermostat's timings and tolerances (°C and seconds), from the HEATING_* settings."""

    cold_tolerance: float = 0.3  # on at or below target - cold_tolerance
    hot_tolerance: float = 0.3  # off at or above target + hot_tolerance
    min_on: float = 180.0  # a heater that went on stays on at least this long (unless a safety rule says off)
    min_off: float = 180.0  # a heater that went off stays off at least this long (unless frost says on)
    sensor_stale_after: float = 2100.0  # 35 min: the firmware volunteers a temperature about every 16 min
    frozen_after: float = 3 * 3600.0  # heating this long with a temperature that never changes -> alert
    failure_after: float = 3600.0  # heating this long ...
    failure_rise: float = 0.5  # ... with less than this rise -> heating failure alert
    proportional_cycle: float = 900.0  # length of one time-proportional window
    proportional_band: float = 1.0  # °C below target at which the duty cycle reaches 100 %

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"{item.name} must be a finite number, not {value!r}")
            if value < 0:
                raise ValueError(f"{item.name} must not be negative, not {value!r}")
        for name in ("proportional_cycle", "proportional_band"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be more than 0")


@dataclass(frozen=True)
class RoomInputs:
    """What the hub knows about one room at ``now``; times are seconds on the caller's one clock."""

    now: float
    target: float | None  # the target that applies now; None = mode off
    frost: float
    maximum: float
    boost: bool
    proportional: bool
    temperature: float | None  # the latest reading, None if there never was one
    temperature_at: float | None  # when that reading arrived
    temperature_changed_at: float | None  # when the reading last took a different value
    heating: bool | None  # the state the hub last decided; None = unknown (after a restart)
    switched_at: float | None  # when the hub last switched the heaters; None = unknown
    on_since_temperature: float | None  # the temperature when the current on-period began


@dataclass(frozen=True)
class Decision:
    """Heat or not, the reason (one of ``REASONS``) and the alert kinds (``ALERTS``) active now."""

    heat: bool
    reason: str
    alerts: frozenset[str] = field(default_factory=frozenset)


def decide(inputs: RoomInputs, tuning: Tuning) -> Decision:
    """Decide whether the room's heaters should be on now; see the module docstring for the precedence."""
    temperature = inputs.temperature
    if temperature is None or _is_stale(inputs, tuning):
        # Nothing else can be trusted without a fresh reading: only this alert, and off.
        return Decision(heat=False, reason=OFF_SENSOR_STALE, alerts=frozenset({ALERT_SENSOR_STALE}))
    alerts = _alerts(inputs, tuning, temperature)
    if temperature >= inputs.maximum:
        return Decision(heat=False, reason=OFF_ABOVE_MAXIMUM, alerts=alerts)
    if temperature < inputs.frost:
        return Decision(heat=True, reason=ON_FROST_PROTECTION, alerts=alerts)
    heat, reason = _wanted(inputs, tuning, temperature)
    heat, reason = _held_by_minimum_times(inputs, tuning, heat, reason)
    return Decision(heat=heat, reason=reason, alerts=alerts)


def _is_stale(inputs: RoomInputs, tuning: Tuning) -> bool:
    if inputs.temperature_at is None:
        return True
    return inputs.now - inputs.temperature_at >= tuning.sensor_stale_after


def _alerts(inputs: RoomInputs, tuning: Tuning, temperature: float) -> frozenset[str]:
    alerts = set()
    if temperature >= inputs.maximum:
        alerts.add(ALERT_OVER_MAXIMUM)
    if temperature < inputs.frost:
        alerts.add(ALERT_FROST)
    if inputs.heating is True:
        if inputs.temperature_changed_at is not None:
            # Unchanged *while heating*: a reading that was already flat before the heater went on does not count.
            unchanged_since = inputs.temperature_changed_at
            if inputs.switched_at is not None:
                unchanged_since = max(unchanged_since, inputs.switched_at)
            if inputs.now - unchanged_since >= tuning.frozen_after:
                alerts.add(ALERT_SENSOR_FROZEN)
        if (
            inputs.switched_at is not None
            and inputs.on_since_temperature is not None
            and inputs.now - inputs.switched_at >= tuning.failure_after
            and temperature - inputs.on_since_temperature < tuning.failure_rise
        ):
            alerts.add(ALERT_HEATING_FAILURE)
    return frozenset(alerts)


def _wanted(inputs: RoomInputs, tuning: Tuning, temperature: float) -> tuple[bool, str]:
    """What the non-safety rules want, before the minimum times have their say."""
    if inputs.boost:
        return True, ON_BOOST
    if inputs.target is None:
        heat, reason = False, OFF_MODE_OFF
    elif inputs.proportional:
        heat, reason = _proportional(inputs, tuning, inputs.target, temperature)
    else:
        heat, reason = _hysteresis(inputs, tuning, inputs.target, temperature)
    if not heat and inputs.heating is True and temperature < inputs.frost + tuning.hot_tolerance:
        # Frost protection switched on just below frost: carry on to frost + hot tolerance instead of
        # switching off at the frost line and on again a few minutes later.
        return True, ON_FROST_PROTECTION
    return heat, reason


def _hysteresis(inputs: RoomInputs, tuning: Tuning, target: float, temperature: float) -> tuple[bool, str]:
    if temperature <= target - tuning.cold_tolerance:
        return True, ON_BELOW_TARGET
    if temperature >= target + tuning.hot_tolerance:
        return False, OFF_AT_TARGET
    # Inside the band: keep heating if the hub knows it is heating; an unknown state is never kept.
    if inputs.heating is True:
        return True, ON_BELOW_TARGET
    return False, OFF_AT_TARGET


def _proportional(inputs: RoomInputs, tuning: Tuning, target: float, temperature: float) -> tuple[bool, str]:
    """On for the first part of each ``proportional_cycle`` window, in proportion to how far below target."""
    shortfall = target - temperature
    if shortfall <= 0:
        return False, OFF_AT_TARGET
    cycle = tuning.proportional_cycle
    on_seconds = _on_seconds_within_minimum_times(min(1.0, shortfall / tuning.proportional_band) * cycle, tuning)
    # Windows are aligned to the clock, so the decision needs no memory of when a window began.
    position = inputs.now % cycle
    if position < on_seconds:
        return True, ON_PROPORTIONAL
    return False, OFF_PROPORTIONAL_PAUSE


def _on_seconds_within_minimum_times(on_seconds: float, tuning: Tuning) -> float:
    """Round an on share so neither the on nor the off part of a window is shorter than its minimum time.

    A share shorter than the minimum rounds to the nearer of nothing and the minimum, so a room just below target
    gets no heat rather than a burst the minimum on time would stretch anyway.
    """
    cycle = tuning.proportional_cycle
    if 0 < on_seconds < tuning.min_on:
        on_seconds = 0.0 if on_seconds < tuning.min_on / 2 else tuning.min_on
    off_seconds = cycle - on_seconds
    if 0 < off_seconds < tuning.min_off:
        on_seconds = cycle if off_seconds < tuning.min_off / 2 else cycle - tuning.min_off
    return min(max(on_seconds, 0.0), cycle)


def _held_by_minimum_times(inputs: RoomInputs, tuning: Tuning, heat: bool, reason: str) -> tuple[bool, str]:
    """Keep the current state while its minimum time runs; an unknown state or switch time holds nothing."""
    if inputs.heating is None or inputs.switched_at is None or heat == inputs.heating:
        return heat, reason
    in_state_for = inputs.now - inputs.switched_at
    if inputs.heating and in_state_for < tuning.min_on:
        return True, ON_HOLDING_MINIMUM_ON
    if not inputs.heating and in_state_for < tuning.min_off:
        return False, OFF_HOLDING_MINIMUM_OFF
    return heat, reason
