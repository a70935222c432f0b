"""Which target applies to a room now: boost, the house's away switch, the room's mode, an override of the
schedule, the schedule's block, or the eco preset between blocks.

Precedence, first match wins:

1. boost until ``boost_until`` (the decision heats whatever the target; the target shown is what would apply
   without the boost, so the room goes back to it when the boost ends);
2. the house is away → the away preset (a room in mode off stays off);
3. mode off → no target (None; the decision's frost protection still applies);
4. mode manual → the manual target;
5. mode schedule → an override while ``now < override_until``, else the block's preset or temperature, else eco.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from heating.thermostat.schedule import Block, next_change, now_and_next

MODES = ("off", "manual", "schedule")
SOURCES = ("off", "manual", "schedule", "override", "boost", "away")
# An override with no schedule change to end it (an empty or all-week schedule) lasts this long.
OVERRIDE_WITHOUT_CHANGE = timedelta(days=7)


@dataclass(frozen=True)
class Presets:
    """The temperatures (°C) a preset name stands for, and the room's maximum (the decision's hard limit)."""

    comfort: float = 21.0
    eco: float = 18.0
    away: float = 16.0
    frost: float = 7.0
    maximum: float = 30.0

    def temperature(self, preset: str) -> float:
        if preset not in ("comfort", "eco", "away", "frost"):
            raise ValueError(f"preset {preset!r} is not one of comfort, eco, away, frost")
        return getattr(self, preset)

    def of(self, block: Block | None) -> float:
        """The temperature a schedule block asks for; eco between blocks."""
        if block is None:
            return self.eco
        if block.temperature is not None:
            return block.temperature
        return self.temperature(block.preset or "")


@dataclass(frozen=True)
class Setpoint:
    target: float | None  # °C; None = off (frost protection still applies in the decision)
    boost: bool
    source: str  # one of SOURCES
    until: datetime | None  # when this source ends (boost end, override end, next schedule change); None = open


def resolve(  # noqa: PLR0913 — the room's stored state, keyword-only, as the lead's contract names it
    *,
    mode: str,
    manual_target: float | None,
    override_target: float | None,
    override_until: datetime | None,
    boost_until: datetime | None,
    house_away: bool,
    blocks: Sequence[Block],
    presets: Presets,
    now: datetime,
    zone: ZoneInfo,
) -> Setpoint:
    """The target that applies at the aware instant ``now`` (see the module docstring for the precedence)."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    # Compared in UTC: two datetimes of one zone compare by wall time, wrong in the autumn's repeated hour.
    now = now.astimezone(UTC)
    underlying = _by_mode(mode=mode, manual_target=manual_target, house_away=house_away, presets=presets)
    if underlying is None:
        underlying = _by_schedule(
            override_target=override_target,
            override_until=override_until,
            blocks=blocks,
            presets=presets,
            now=now,
            zone=zone,
        )
    if boost_until is not None and now < boost_until.astimezone(UTC):
        return Setpoint(target=underlying.target, boost=True, source="boost", until=boost_until)
    return underlying


def _by_mode(*, mode: str, manual_target: float | None, house_away: bool, presets: Presets) -> Setpoint | None:
    """The setpoint of mode off, of the house away and of mode manual; None for a room on its schedule."""
    if mode == "off":
        return Setpoint(target=None, boost=False, source="off", until=None)
    if house_away:
        return Setpoint(target=presets.away, boost=False, source="away", until=None)
    if mode == "manual":
        # A manual mode without a stored target (never expected from the models) heats to comfort, not to nothing.
        target = manual_target if manual_target is not None else presets.comfort
        return Setpoint(target=target, boost=False, source="manual", until=None)
    return None


def _by_schedule(
    *,
    override_target: float | None,
    override_until: datetime | None,
    blocks: Sequence[Block],
    presets: Presets,
    now: datetime,
    zone: ZoneInfo,
) -> Setpoint:
    # An override always carries its end: the caller stores override_end's instant, so an open end is none.
    if override_target is not None and override_until is not None and now < override_until.astimezone(UTC):
        return Setpoint(target=override_target, boost=False, source="override", until=override_until)
    block, change = now_and_next(blocks, now, zone)
    return Setpoint(
        target=presets.of(block),
        boost=False,
        source="schedule",
        until=change[0] if change is not None else None,
    )


def override_end(
    blocks: Sequence[Block], now: datetime, zone: ZoneInfo, minutes: int | float | None = None
) -> datetime:
    """When a manual change made at ``now`` while on schedule ends: after ``minutes`` when chosen, else at the
    schedule's next change (a week from now when the schedule never changes). Aware, in UTC."""
    if minutes is not None:
        if isinstance(minutes, bool) or not minutes > 0:
            raise ValueError(f"minutes {minutes!r} must be a positive number")
        # In UTC: adding to a zone-aware datetime adds wall-clock time, an hour off across a DST change.
        return now.astimezone(UTC) + timedelta(minutes=minutes)
    change = next_change(blocks, now, zone)
    if change is None:
        return now.astimezone(UTC) + OVERRIDE_WITHOUT_CHANGE
    return change[0]
