"""Weekly schedules: "HH:MM", validation errors naming the block and the allowed range, which block applies when,
the next change across DST in Europe/Berlin and America/New_York, and the "19.5 °C at 17:00" text."""

# ruff: noqa: RUF001, RUF003  (the en dash is the one users read in "Tuesday 07:00–07:10")

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heating.thermostat.schedule import (
    DAY_SETS,
    Block,
    ScheduleError,
    block_at,
    expand,
    format_next_change,
    format_time,
    next_change,
    parse_time,
    validate,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
MONDAY, TUESDAY, SATURDAY, SUNDAY = 0, 1, 5, 6

# 2026: Berlin springs forward on Sunday 29 March (02:00 → 03:00) and falls back on Sunday 25 October
# (03:00 → 02:00); New York on Sunday 8 March (02:00 → 03:00) and Sunday 1 November (02:00 → 01:00).


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


def local(zone: ZoneInfo, *fields: int, fold: int = 0) -> datetime:
    return datetime(*fields, tzinfo=zone, fold=fold)


WEEK = [
    *expand("workdays", "06:30", "08:00", preset="comfort"),
    *expand("every_day", "17:00", "22:00", temperature=19.5),
    *expand("weekend", "08:00", "12:00", preset="comfort"),
]


# --- "HH:MM" -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "end", "minutes"),
    [
        ("00:00", False, 0),
        ("07:05", False, 425),
        ("7:05", False, 425),
        (" 23:59 ", False, 1439),
        ("23:45", True, 1425),
        ("24:00", True, 1440),
    ],
)
def test_parse_time(text, end, minutes):
    assert parse_time(text, end=end) == minutes


@pytest.mark.parametrize(
    ("text", "end", "field", "words"),
    [
        ("24:00", False, "start", "outside 00:00–23:59"),
        ("24:01", True, "end", "outside 00:00–24:00"),
        ("12:60", False, "start", "outside"),
        ("1200", False, "start", "HH:MM"),
        ("07:00:00", True, "end", "HH:MM"),
        ("", False, "start", "HH:MM"),
        ("seven", False, "start", "HH:MM"),
    ],
)
def test_parse_time_refuses_with_the_field_and_range(text, end, field, words):
    with pytest.raises(ScheduleError) as error:
        parse_time(text, end=end)
    assert error.value.field == field
    assert words in str(error.value)


@pytest.mark.parametrize(("minutes", "text"), [(0, "00:00"), (425, "07:05"), (1439, "23:59"), (1440, "24:00")])
def test_format_time(minutes, text):
    assert format_time(minutes) == text


def test_day_sets_and_expand():
    assert DAY_SETS["every_day"] == (0, 1, 2, 3, 4, 5, 6)
    assert DAY_SETS["workdays"] == (0, 1, 2, 3, 4)
    assert DAY_SETS["weekend"] == (5, 6)
    assert expand("weekend", "08:00", "24:00", preset="eco") == [
        Block(SATURDAY, 480, 1440, "eco"),
        Block(SUNDAY, 480, 1440, "eco"),
    ]
    assert expand([TUESDAY, MONDAY, TUESDAY], 60, 120, temperature=20.5) == [
        Block(MONDAY, 60, 120, temperature=20.5),
        Block(TUESDAY, 60, 120, temperature=20.5),
    ]
    with pytest.raises(ScheduleError) as error:
        expand("weekdays", "08:00", "09:00", preset="eco")
    assert error.value.field == "days"
    assert "every_day, workdays, weekend" in str(error.value)


# --- validation --------------------------------------------------------------------------------------------------


def test_a_usual_week_is_valid():
    validate(WEEK)
    validate(WEEK, minimum=7, maximum=29)


def test_adjacent_blocks_and_blocks_on_other_days_are_valid():
    validate(
        [
            Block(MONDAY, 0, 15, "frost"),
            Block(MONDAY, 15, 1440, "eco"),
            Block(TUESDAY, 0, 1440, "comfort"),
            Block(SUNDAY, 1425, 1440, temperature=12.0),
        ]
    )


@pytest.mark.parametrize(
    ("block", "field", "words"),
    [
        (
            Block(TUESDAY, 420, 430, "eco"),
            "end",
            "block 2 (Tuesday 07:00–07:10) lasts 10 minutes; a block lasts at least 15",
        ),
        (Block(7, 420, 480, "eco"), "weekday", "0 (Monday) to 6 (Sunday)"),
        (Block(-1, 420, 480, "eco"), "weekday", "block 2 (day -1 07:00–08:00)"),
        (Block(TUESDAY, -15, 480, "eco"), "start", "from 00:00 to 23:45"),
        (Block(TUESDAY, 1430, 1440, "eco"), "start", "from 00:00 to 23:45"),
        (Block(TUESDAY, 420.5, 480, "eco"), "start", "whole minute"),
        (Block(TUESDAY, 420, 1445, "eco"), "end", "at 24:00 at the latest"),
        (Block(TUESDAY, 480, 420, "eco"), "end", "after the start"),
        (Block(TUESDAY, True, 480, "eco"), "start", "whole minute"),
        (Block(TUESDAY, 420, 480), "preset", "not neither"),
        (Block(TUESDAY, 420, 480, "eco", 20.0), "temperature", "not both"),
        (Block(TUESDAY, 420, 480, "hot"), "preset", "'hot' is not one of comfort, eco, away, frost"),
        (Block(TUESDAY, 420, 480, temperature=float("nan")), "temperature", "a number of °C"),
        (Block(TUESDAY, 420, 480, temperature="20"), "temperature", "a number of °C"),
    ],
)
def test_validate_names_the_block_the_field_and_the_allowed_range(block, field, words):
    with pytest.raises(ScheduleError) as error:
        validate([Block(MONDAY, 0, 60, "eco"), block])
    assert (error.value.index, error.value.field) == (1, field)
    assert words in str(error.value)


@pytest.mark.parametrize(
    ("blocks", "index", "words"),
    [
        (
            [Block(TUESDAY, 360, 480, "comfort"), Block(TUESDAY, 420, 540, "eco")],
            1,
            "block 2 (Tuesday 07:00–09:00) overlaps block 1 (Tuesday 06:00–08:00); it can start at 08:00",
        ),
        (
            [Block(TUESDAY, 420, 540, "eco"), Block(TUESDAY, 360, 480, "comfort")],
            0,
            "block 1 (Tuesday 07:00–09:00) overlaps block 2 (Tuesday 06:00–08:00)",
        ),
        ([Block(SUNDAY, 0, 1440, "eco"), Block(SUNDAY, 600, 615, "comfort")], 1, "overlaps block 1"),
        ([Block(MONDAY, 60, 120, "eco"), Block(MONDAY, 60, 120, "eco")], 1, "overlaps block 1"),
    ],
)
def test_validate_refuses_overlaps_naming_both_blocks(blocks, index, words):
    with pytest.raises(ScheduleError) as error:
        validate(blocks)
    assert (error.value.index, error.value.field) == (index, "start")
    assert words in str(error.value)


@pytest.mark.parametrize(
    ("minimum", "maximum", "temperature", "words"),
    [
        (7, 29, 29.5, "temperature 29.5 °C is outside the allowed 7–29 °C"),
        (7, 29, 6.5, "outside the allowed 7–29 °C"),
        (7, None, 5, "at least 7 °C"),
        (None, 29, 35, "at most 29 °C"),
    ],
)
def test_validate_checks_temperatures_only_against_a_range_given(minimum, maximum, temperature, words):
    blocks = [Block(MONDAY, 0, 60, temperature=temperature)]
    validate(blocks)
    with pytest.raises(ScheduleError) as error:
        validate(blocks, minimum=minimum, maximum=maximum)
    assert (error.value.index, error.value.field) == (0, "temperature")
    assert words in str(error.value)


def test_a_schedule_error_is_a_value_error():
    with pytest.raises(ValueError, match="lasts 5 minutes"):
        validate([Block(MONDAY, 0, 5, "eco")])


# --- which block applies, and the next change ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (local(BERLIN, 2026, 12, 7, 6, 29), None),  # Monday
        (local(BERLIN, 2026, 12, 7, 6, 30), Block(MONDAY, 390, 480, "comfort")),
        (local(BERLIN, 2026, 12, 7, 7, 59), Block(MONDAY, 390, 480, "comfort")),
        (local(BERLIN, 2026, 12, 7, 8, 0), None),
        (local(BERLIN, 2026, 12, 7, 21, 59), Block(MONDAY, 1020, 1320, temperature=19.5)),
        (local(BERLIN, 2026, 12, 12, 9, 0), Block(SATURDAY, 480, 720, "comfort")),
        (local(BERLIN, 2026, 12, 12, 6, 45), None),  # Saturday: no workday block
        (utc(2026, 12, 7, 5, 30), Block(MONDAY, 390, 480, "comfort")),  # 06:30 in Berlin
    ],
)
def test_block_at(when, expected):
    assert block_at(WEEK, when, BERLIN) == expected


def test_a_block_ending_at_midnight_runs_to_the_end_of_its_day():
    blocks = [Block(MONDAY, 1320, 1440, "eco")]
    assert block_at(blocks, local(BERLIN, 2026, 12, 7, 23, 59), BERLIN) == blocks[0]
    assert block_at(blocks, local(BERLIN, 2026, 12, 8, 0, 0), BERLIN) is None
    assert next_change(blocks, local(BERLIN, 2026, 12, 7, 23, 0), BERLIN) == (local(BERLIN, 2026, 12, 8, 0, 0), None)


def test_block_at_needs_an_aware_time():
    with pytest.raises(ValueError, match="aware"):
        block_at(WEEK, datetime(2026, 12, 7, 7, 0), BERLIN)


@pytest.mark.parametrize(
    ("when", "at", "block"),
    [
        # Monday 05:00 → comfort at 06:30; during it → the end at 08:00 (no block: eco).
        (local(BERLIN, 2026, 12, 7, 5, 0), local(BERLIN, 2026, 12, 7, 6, 30), Block(MONDAY, 390, 480, "comfort")),
        (local(BERLIN, 2026, 12, 7, 6, 30), local(BERLIN, 2026, 12, 7, 8, 0), None),
        (
            local(BERLIN, 2026, 12, 7, 8, 0),
            local(BERLIN, 2026, 12, 7, 17, 0),
            Block(MONDAY, 1020, 1320, temperature=19.5),
        ),
        # Friday evening → Saturday 08:00, past the night between.
        (local(BERLIN, 2026, 12, 11, 22, 0), local(BERLIN, 2026, 12, 12, 8, 0), Block(SATURDAY, 480, 720, "comfort")),
    ],
)
def test_next_change(when, at, block):
    assert next_change(WEEK, when, BERLIN) == (at, block)


def test_next_change_of_a_weekly_block_wraps_to_next_week():
    blocks = [Block(MONDAY, 390, 480, "comfort")]
    assert next_change(blocks, local(BERLIN, 2026, 12, 7, 9, 0), BERLIN) == (
        local(BERLIN, 2026, 12, 14, 6, 30),
        blocks[0],
    )


def test_adjacent_blocks_asking_the_same_are_one_stretch():
    blocks = [
        Block(MONDAY, 360, 480, "comfort"),
        Block(MONDAY, 480, 600, "comfort"),
        Block(MONDAY, 600, 660, temperature=21.0),  # the same °C as comfort, but its own setting
    ]
    assert next_change(blocks, local(BERLIN, 2026, 12, 7, 7, 0), BERLIN) == (
        local(BERLIN, 2026, 12, 7, 10, 0),
        blocks[2],
    )


def test_no_next_change_for_an_empty_schedule_or_one_that_never_changes():
    assert next_change([], utc(2026, 12, 7, 12, 0), BERLIN) is None
    all_week = expand("every_day", "00:00", "24:00", preset="eco")
    assert next_change(all_week, utc(2026, 12, 7, 12, 0), BERLIN) is None
    assert block_at(all_week, utc(2026, 12, 7, 12, 0), BERLIN) == Block(MONDAY, 0, 1440, "eco")


# --- DST ---------------------------------------------------------------------------------------------------------


def test_berlin_block_starting_in_the_spring_gap_starts_at_the_first_minute_after_it():
    block = Block(SUNDAY, 150, 240, "comfort")  # 02:30–04:00 on 29 March 2026, when 02:00 jumps to 03:00
    assert block_at([block], utc(2026, 3, 29, 0, 59), BERLIN) is None  # 01:59 CET
    assert block_at([block], utc(2026, 3, 29, 1, 0), BERLIN) == block  # 03:00 CEST
    assert next_change([block], utc(2026, 3, 29, 0, 0), BERLIN) == (utc(2026, 3, 29, 1, 0), block)
    assert next_change([block], utc(2026, 3, 29, 1, 0), BERLIN) == (utc(2026, 3, 29, 2, 0), None)  # 04:00 CEST


def test_berlin_block_wholly_inside_the_spring_gap_does_not_run_that_night():
    blocks = [Block(SUNDAY, 120, 165, "comfort"), Block(SUNDAY, 600, 660, "eco")]
    assert next_change(blocks, utc(2026, 3, 28, 23, 0), BERLIN) == (local(BERLIN, 2026, 3, 29, 10, 0), blocks[1])
    # A week later the clocks do not jump, and it runs at 02:00 as written.
    assert next_change(blocks, utc(2026, 4, 4, 23, 0), BERLIN) == (local(BERLIN, 2026, 4, 5, 2, 0), blocks[0])


def test_berlin_block_in_the_repeated_autumn_hour_runs_once_from_its_first_occurrence():
    block = Block(SUNDAY, 150, 210, "comfort")  # 02:30–03:30 on 25 October 2026; 02:00–03:00 happens twice
    assert block_at([block], utc(2026, 10, 25, 0, 15), BERLIN) is None  # 02:15 CEST
    assert block_at([block], utc(2026, 10, 25, 0, 30), BERLIN) == block  # 02:30 CEST
    assert block_at([block], utc(2026, 10, 25, 1, 15), BERLIN) == block  # 02:15 CET: still running, not restarted
    assert block_at([block], utc(2026, 10, 25, 2, 29), BERLIN) == block  # 03:29 CET
    assert block_at([block], utc(2026, 10, 25, 2, 30), BERLIN) is None
    assert next_change([block], utc(2026, 10, 24, 22, 0), BERLIN) == (utc(2026, 10, 25, 0, 30), block)
    assert next_change([block], utc(2026, 10, 25, 0, 30), BERLIN) == (utc(2026, 10, 25, 2, 30), None)


def test_berlin_block_ending_in_the_repeated_hour_ends_at_its_first_occurrence():
    block = Block(SUNDAY, 60, 150, "comfort")  # 01:00–02:30
    assert block_at([block], utc(2026, 10, 25, 0, 15), BERLIN) == block  # 02:15 CEST
    assert block_at([block], utc(2026, 10, 25, 1, 15), BERLIN) is None  # 02:15 CET: the hour again, block done
    assert next_change([block], utc(2026, 10, 25, 0, 0), BERLIN) == (utc(2026, 10, 25, 0, 30), None)


def test_new_york_spring_gap_and_autumn_repeat():
    spring = Block(SUNDAY, 135, 210, "comfort")  # 02:15–03:30 on 8 March 2026; 02:00 jumps to 03:00 EDT
    assert next_change([spring], utc(2026, 3, 8, 5, 0), NEW_YORK) == (utc(2026, 3, 8, 7, 0), spring)
    assert next_change([spring], utc(2026, 3, 8, 7, 0), NEW_YORK) == (utc(2026, 3, 8, 7, 30), None)

    autumn = Block(SUNDAY, 90, 150, "comfort")  # 01:30–02:30 on 1 November 2026; 01:00–02:00 happens twice
    assert next_change([autumn], utc(2026, 11, 1, 4, 0), NEW_YORK) == (utc(2026, 11, 1, 5, 30), autumn)  # EDT
    assert block_at([autumn], utc(2026, 11, 1, 6, 15), NEW_YORK) == autumn  # 01:15 EST, the hour's second time
    assert next_change([autumn], utc(2026, 11, 1, 5, 30), NEW_YORK) == (utc(2026, 11, 1, 7, 30), None)  # 02:30 EST


def test_next_change_is_an_instant_in_utc_of_a_wall_time_in_the_house_zone():
    at, _ = next_change(WEEK, utc(2026, 12, 7, 4, 0), NEW_YORK)
    assert at.tzinfo is UTC
    assert at == local(NEW_YORK, 2026, 12, 7, 6, 30)


# --- "19.5 °C at 17:00" ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "text"),
    [
        (local(BERLIN, 2026, 12, 7, 17, 0), "19.5 °C at 17:00"),
        (local(BERLIN, 2026, 12, 8, 6, 30), "19.5 °C at 06:30 on Tuesday"),
        (local(BERLIN, 2026, 12, 14, 6, 30), "19.5 °C at 06:30 on next Monday"),
        (utc(2026, 12, 7, 16, 0), "19.5 °C at 17:00"),  # shown in the house's zone
    ],
)
def test_format_next_change(at, text):
    assert format_next_change(at, 19.5, now=local(BERLIN, 2026, 12, 7, 9, 0), zone=BERLIN) == text


def test_format_next_change_rounds_to_one_decimal():
    now = local(BERLIN, 2026, 12, 7, 9, 0)
    assert format_next_change(now + timedelta(hours=1), 18, now=now, zone=BERLIN) == "18.0 °C at 10:00"


# --- properties --------------------------------------------------------------------------------------------------

any_block = st.builds(
    Block,
    weekday=st.integers(0, 6),
    start=st.integers(0, 1425),
    end=st.integers(15, 1440),
    preset=st.sampled_from(["comfort", "eco"]),
)


def _overlapping(blocks: list[Block]) -> bool:
    return any(
        a.weekday == b.weekday and a.start < b.end and b.start < a.end
        for i, a in enumerate(blocks)
        for b in blocks[i + 1 :]
    )


@given(st.lists(any_block, max_size=6))
def test_validate_never_accepts_overlapping_blocks(blocks):
    try:
        validate(blocks)
    except ScheduleError:
        return
    assert not _overlapping(blocks)
    assert all(block.end - block.start >= 15 for block in blocks)


@st.composite
def valid_schedules(draw) -> list[Block]:
    """Non-overlapping blocks on 15-minute cut points, some adjacent, some asking the same."""
    blocks = []
    for weekday in draw(st.sets(st.integers(0, 6), max_size=4)):
        cuts = sorted(draw(st.sets(st.integers(0, 96), min_size=2, max_size=6)))
        for start, end in pairwise(cuts):
            if draw(st.booleans()):
                preset = draw(st.sampled_from(["comfort", "eco"]))
                blocks.append(Block(weekday, start * 15, end * 15, preset))
    return blocks


# Any instant in two years, and instants within three days of a DST change of the zones below.
DST_CHANGES = [utc(2026, 3, 29, 1), utc(2026, 10, 25, 1), utc(2026, 3, 8, 7), utc(2026, 11, 1, 6)]
DST_CHANGES += [utc(2026, 4, 4, 15), utc(2026, 10, 3, 15)]  # Lord Howe's half-hour changes
instants = st.one_of(
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)).map(
        lambda naive: naive.replace(tzinfo=UTC)
    ),
    st.builds(
        lambda change, minutes: change + timedelta(minutes=minutes),
        st.sampled_from(DST_CHANGES),
        st.integers(-3 * 1440, 3 * 1440),
    ),
)
zones = st.sampled_from([BERLIN, NEW_YORK, ZoneInfo("UTC"), ZoneInfo("Australia/Lord_Howe")])


@given(valid_schedules(), instants, zones)
def test_next_change_is_after_when_and_changes_what_is_asked(blocks, when, zone):
    validate(blocks)
    change = next_change(blocks, when, zone)
    if change is None:
        settings = {block.setting for block in blocks}
        assert not blocks or len(settings) == 1
        return
    at, block = change
    assert at > when
    assert at - when <= timedelta(days=7, hours=1)
    assert block_at(blocks, at, zone) == block

    def setting(instant):
        scheduled = block_at(blocks, instant, zone)
        return scheduled.setting if scheduled else None

    assert setting(when) != (block.setting if block else None)
    # And it is the first change: a second before it, the schedule still asks what it asked at `when`.
    assert setting(max(when, at - timedelta(seconds=1))) == setting(when)
