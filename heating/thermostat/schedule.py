"""Weekly schedules: blocks of wall-clock time in the house's zone, their validation, and when they apply.

A block is one weekday's stretch of minutes (``start`` inclusive, ``end`` exclusive, ``end`` may be 1440 for the
midnight that ends the day) naming either a preset or a temperature. Blocks never cross midnight: a stretch from
22:00 to 06:00 is two blocks.

Wall-clock times are turned into instants one occurrence at a time, by ``wall_instant``:

* a time inside a spring-forward gap becomes the first valid minute after the gap, so a block starting at 02:30
  on the night the clocks jump from 02:00 to 03:00 starts at 03:00 (and a block lying wholly inside the gap does
  not run that night);
* a time inside the autumn's repeated hour means its first occurrence (``fold=0``), so a block runs once, from the
  first occurrence of its start to its end, and is not restarted when the hour repeats.

That mapping never reverses the order of two wall times, so blocks that do not overlap on paper never overlap in
real time either.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import NamedTuple
from zoneinfo import ZoneInfo

MINUTES_PER_DAY = 1440
MINIMUM_BLOCK_MINUTES = 15
LATEST_START = MINUTES_PER_DAY - MINIMUM_BLOCK_MINUTES  # 23:45
PRESETS = ("comfort", "eco", "away", "frost")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DAY_SETS: dict[str, tuple[int, ...]] = {
    "every_day": tuple(range(7)),
    "workdays": tuple(range(5)),
    "weekend": (5, 6),
}

# How far ahead next_change looks: a weekly schedule repeats within 7 days; one day either side covers blocks that
# end at the midnight after their day and the local date moving under DST.
_LOOK_BEHIND_DAYS = 1
_LOOK_AHEAD_DAYS = 8
# The first change of a weekly schedule comes within a week of wall time (plus a DST shift in real time); past
# that, the edge of the days looked at would look like a change.
_HORIZON = timedelta(days=7, hours=3)

_TIME_PATTERN = re.compile(r"(\d{1,2}):(\d{2})")


class ScheduleError(ValueError):
    """A schedule that cannot be used. ``index`` is the block's position in the list given (0-based; the message
    counts from 1, as a person would), ``field`` the block's field at fault (``weekday``, ``start``, ``end``,
    ``preset``, ``temperature``) or the argument (``days``); either is None when not about one block or field."""

    def __init__(self, message: str, *, index: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.index = index
        self.field = field


@dataclass(frozen=True)
class Block:
    """One weekday's stretch of a weekly schedule; exactly one of ``preset`` and ``temperature`` is set."""

    weekday: int  # 0 = Monday … 6 = Sunday
    start: int  # minutes from midnight, 0 … 1425
    end: int  # minutes from midnight, start + 15 … 1440
    preset: str | None = None  # one of PRESETS
    temperature: float | None = None  # °C

    def describe(self) -> str:
        """``Tuesday 07:00-07:10`` (with an en dash); tolerant of bad fields, as it names blocks in errors."""
        day = WEEKDAYS[self.weekday] if _is_int(self.weekday) and 0 <= self.weekday < 7 else f"day {self.weekday!r}"
        return f"{day} {_loose_time(self.start)}\N{EN DASH}{_loose_time(self.end)}"

    @property
    def setting(self) -> tuple[str | None, float | None]:
        """What the block asks for; two blocks with the same setting ask for the same target."""
        return (self.preset, self.temperature)


# --- "HH:MM" ---------------------------------------------------------------------------------------------------


def parse_time(text: str, *, end: bool = False) -> int:
    """Minutes from midnight of ``"HH:MM"`` (00:00 to 23:59); ``end=True`` also allows ``"24:00"``, the midnight that
    ends the day. Raises ScheduleError (field ``end`` or ``start``) naming the allowed range."""
    field = "end" if end else "start"
    allowed = "00:00\N{EN DASH}24:00" if end else "00:00\N{EN DASH}23:59"
    match = _TIME_PATTERN.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ScheduleError(f"{field} {text!r} is not a time written HH:MM ({allowed})", field=field)
    hours, minutes = int(match.group(1)), int(match.group(2))
    total = hours * 60 + minutes
    if minutes > 59 or total > (MINUTES_PER_DAY if end else MINUTES_PER_DAY - 1):
        raise ScheduleError(f"{field} {text!r} is outside {allowed}", field=field)
    return total


def format_time(minutes: int) -> str:
    """``"HH:MM"`` of minutes from midnight; 1440 is ``"24:00"``."""
    if not _is_int(minutes) or not 0 <= minutes <= MINUTES_PER_DAY:
        raise ValueError(f"{minutes!r} is not a number of minutes from 0 to {MINUTES_PER_DAY}")
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# --- building and validating -----------------------------------------------------------------------------------


def expand(
    days: str | Iterable[int],
    start: int | str,
    end: int | str,
    *,
    preset: str | None = None,
    temperature: float | None = None,
) -> list[Block]:
    """One block per day: ``days`` is a DAY_SETS name (``every_day``, ``workdays``, ``weekend``) or weekdays;
    ``start``/``end`` are minutes or ``"HH:MM"``. The blocks are not validated: pass the whole week to validate."""
    if isinstance(days, str):
        if days not in DAY_SETS:
            raise ScheduleError(f"days {days!r} is not one of {', '.join(DAY_SETS)}", field="days")
        weekdays: Iterable[int] = DAY_SETS[days]
    else:
        weekdays = days
    start_minute = parse_time(start) if isinstance(start, str) else start
    end_minute = parse_time(end, end=True) if isinstance(end, str) else end
    return [Block(day, start_minute, end_minute, preset, temperature) for day in sorted(set(weekdays))]


def validate(blocks: Sequence[Block], minimum: float | None = None, maximum: float | None = None) -> None:
    """Raise ScheduleError for the first thing wrong: a field out of range, neither or both of preset and
    temperature, an unknown preset, a block shorter than 15 minutes, or two blocks overlapping on a weekday.
    Temperatures are checked against ``minimum``..``maximum`` (inclusive) only when given; the room's range is
    frost to maximum - 1 °C."""
    for index, block in enumerate(blocks):
        _validate_block(index, block, minimum, maximum)
    by_day = sorted(range(len(blocks)), key=lambda i: (blocks[i].weekday, blocks[i].start, blocks[i].end, i))
    for earlier, later in pairwise(by_day):
        first, second = blocks[earlier], blocks[later]
        if first.weekday == second.weekday and second.start < first.end:
            raise ScheduleError(
                f"{_name(later, second)} overlaps {_name(earlier, first)}; "
                f"it can start at {format_time(first.end)} at the earliest",
                index=later,
                field="start",
            )


def _validate_block(index: int, block: Block, minimum: float | None, maximum: float | None) -> None:
    name = _name(index, block)
    if not _is_int(block.weekday) or not 0 <= block.weekday <= 6:
        raise ScheduleError(f"{name}: weekday must be 0 (Monday) to 6 (Sunday)", index=index, field="weekday")
    if not _is_int(block.start) or not 0 <= block.start <= LATEST_START:
        raise ScheduleError(
            f"{name}: start must be a whole minute from 00:00 to {format_time(LATEST_START)}",
            index=index,
            field="start",
        )
    if not _is_int(block.end) or not block.start < block.end <= MINUTES_PER_DAY:
        raise ScheduleError(
            f"{name}: end must be a whole minute after the start, at 24:00 at the latest",
            index=index,
            field="end",
        )
    if block.end - block.start < MINIMUM_BLOCK_MINUTES:
        raise ScheduleError(
            f"{name} lasts {block.end - block.start} minutes; a block lasts at least {MINIMUM_BLOCK_MINUTES} "
            f"minutes, so it can end at {format_time(block.start + MINIMUM_BLOCK_MINUTES)} at the earliest",
            index=index,
            field="end",
        )
    if (block.preset is None) == (block.temperature is None):
        raise ScheduleError(
            f"{name}: give either a preset ({', '.join(PRESETS)}) or a temperature, not "
            f"{'both' if block.preset is not None else 'neither'}",
            index=index,
            field="preset" if block.preset is None else "temperature",
        )
    if block.preset is not None and block.preset not in PRESETS:
        raise ScheduleError(
            f"{name}: preset {block.preset!r} is not one of {', '.join(PRESETS)}", index=index, field="preset"
        )
    if block.temperature is not None:
        temperature = block.temperature
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not math.isfinite(temperature):
            raise ScheduleError(f"{name}: temperature must be a number of °C", index=index, field="temperature")
        low = -math.inf if minimum is None else minimum
        high = math.inf if maximum is None else maximum
        if not low <= temperature <= high:
            allowed = (
                f"{minimum:g}\N{EN DASH}{maximum:g} °C"
                if minimum is not None and maximum is not None
                else (f"at least {minimum:g} °C" if minimum is not None else f"at most {maximum:g} °C")
            )
            raise ScheduleError(
                f"{name}: temperature {temperature:g} °C is outside the allowed {allowed}",
                index=index,
                field="temperature",
            )


def _name(index: int, block: Block) -> str:
    return f"block {index + 1} ({block.describe()})"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _loose_time(minutes: object) -> str:
    if _is_int(minutes) and 0 <= minutes <= MINUTES_PER_DAY:  # type: ignore[operator]
        return format_time(minutes)  # type: ignore[arg-type]
    return repr(minutes)


# --- wall-clock time to instants ---------------------------------------------------------------------------------


# Pure and asked again on every tick for every room's blocks: cached (a week of 15-minute marks in a few zones).
@lru_cache(maxsize=16384)
def wall_instant(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The instant (aware, in UTC) a wall-clock minute of ``day`` in ``zone`` stands for: its first occurrence when
    the hour repeats, the first valid minute after the gap when it does not exist; 1440 is the next day's 00:00.

    Instants stay in UTC here and in what this module returns: Python compares two datetimes of the same zone by
    wall time, ignoring ``fold``, which would put 02:15 of the repeated hour's second pass before 02:30 of its first.
    """
    if minute >= MINUTES_PER_DAY:
        day, minute = day + timedelta(days=1), minute - MINUTES_PER_DAY
    wall = datetime.combine(day, time(minute // 60, minute % 60))
    instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    # In a gap: the wall time read with the offsets before and after the jump gives two instants around the
    # transition; the first valid wall time after the gap is the transition itself.
    other = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return _transition_between(min(instant, other), max(instant, other), zone)


def _transition_between(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The first instant in (before, after] whose UTC offset differs from ``before``'s (to the second)."""
    offset_before = before.astimezone(zone).utcoffset()
    low, high = before, after
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle <= low:
            middle = low + timedelta(seconds=1)
        if middle.astimezone(zone).utcoffset() == offset_before:
            low = middle
        else:
            high = middle
    return high


class _Occurrence(NamedTuple):  # a tuple: built by the dozen for every room on every tick
    start: datetime
    end: datetime
    block: Block


def _occurrences(blocks: Sequence[Block], when: datetime, zone: ZoneInfo, days_ahead: int) -> list[_Occurrence]:
    """Every block's real-time run from the day before ``when``'s local date to ``days_ahead`` days after it,
    leaving out runs that vanish in a DST gap; sorted by start."""
    today = when.astimezone(zone).date()
    by_weekday: dict[int, list[Block]] = {}
    for block in blocks:
        by_weekday.setdefault(block.weekday, []).append(block)
    runs = []
    for offset in range(-_LOOK_BEHIND_DAYS, days_ahead + 1):
        day = today + timedelta(days=offset)
        for block in by_weekday.get(day.weekday(), ()):
            start = wall_instant(day, block.start, zone)
            end = wall_instant(day, block.end, zone)
            if start < end:
                runs.append(_Occurrence(start, end, block))
    runs.sort(key=lambda run: run.start)
    return runs


def _active(runs: Sequence[_Occurrence], instant: datetime) -> Block | None:
    for run in runs:
        if run.start <= instant < run.end:
            return run.block
    return None


def block_at(blocks: Sequence[Block], when: datetime, zone: ZoneInfo) -> Block | None:
    """The block scheduled at the aware instant ``when`` in the house's ``zone``, or None between blocks."""
    when = _utc(when)
    return _active(_occurrences(blocks, when, zone, days_ahead=1), when)


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("when must be an aware datetime")
    return when.astimezone(UTC)


def next_change(blocks: Sequence[Block], when: datetime, zone: ZoneInfo) -> tuple[datetime, Block | None] | None:
    """The first instant after ``when`` (aware, in UTC) at which the schedule asks for something else, with
    the block that starts then (None: no block from then on). Adjacent blocks with the same preset or temperature
    are one stretch, so their shared boundary is no change. None when the schedule never changes (it is empty, or
    asks for the same all week)."""
    return now_and_next(blocks, when, zone)[1]


def now_and_next(
    blocks: Sequence[Block], when: datetime, zone: ZoneInfo
) -> tuple[Block | None, tuple[datetime, Block | None] | None]:
    """``block_at`` and ``next_change`` together, working out the week's runs once."""
    when = _utc(when)
    runs = _occurrences(blocks, when, zone, days_ahead=_LOOK_AHEAD_DAYS)
    current = _active(runs, when)
    current_setting = current.setting if current is not None else None
    horizon = when + _HORIZON
    boundaries = sorted({edge for run in runs for edge in (run.start, run.end) if when < edge <= horizon})
    for boundary in boundaries:
        block = _active(runs, boundary)
        setting = block.setting if block is not None else None
        if setting != current_setting:
            return current, (boundary, block)
    return current, None


def format_next_change(at: datetime, temperature: float, *, now: datetime, zone: ZoneInfo) -> str:
    """``"19.5 °C at 17:00"``, with the weekday when the change is not today (``"… at 06:30 on Tuesday"``, or
    ``"on next Monday"`` when today is Monday), in the house's ``zone``."""
    local = at.astimezone(zone)
    today = now.astimezone(zone).date()
    text = f"{temperature:.1f} °C at {local:%H:%M}"
    if local.date() == today:
        return text
    weekday = WEEKDAYS[local.weekday()]
    if local.weekday() == today.weekday():
        return f"{text} on next {weekday}"
    return f"{text} on {weekday}"
