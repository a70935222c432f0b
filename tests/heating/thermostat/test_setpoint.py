"""Which target applies now: boost, the house away, mode off, manual, an override of the schedule, the schedule's
block, eco between blocks; and how long a manual change made on schedule lasts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heating.thermostat.schedule import Block, expand
from heating.thermostat.setpoint import Presets, Setpoint, override_end, resolve

BERLIN = ZoneInfo("Europe/Berlin")
PRESETS = Presets()
# Workdays: comfort 06:30 to 08:00 and 19.5 °C 17:00 to 22:00; nothing at the weekend.
WEEK = [
    *expand("workdays", "06:30", "08:00", preset="comfort"),
    *expand("workdays", "17:00", "22:00", temperature=19.5),
]
MONDAY_0700 = datetime(2026, 12, 7, 7, 0, tzinfo=BERLIN)
MONDAY_1200 = datetime(2026, 12, 7, 12, 0, tzinfo=BERLIN)


def at(hour: int, minute: int = 0, day: int = 7) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=BERLIN)


def setpoint(**changes) -> Setpoint:
    room = {
        "mode": "schedule",
        "manual_target": None,
        "override_target": None,
        "override_until": None,
        "boost_until": None,
        "house_away": False,
        "blocks": WEEK,
        "presets": PRESETS,
        "now": MONDAY_1200,
        "zone": BERLIN,
    } | changes
    return resolve(**room)


@pytest.mark.parametrize(
    ("room", "expected"),
    [
        # On schedule: the block's preset or temperature, until the next change; eco between blocks.
        ({"now": MONDAY_0700}, Setpoint(21.0, False, "schedule", at(8))),
        ({"now": at(18)}, Setpoint(19.5, False, "schedule", at(22))),
        ({"now": MONDAY_1200}, Setpoint(18.0, False, "schedule", at(17))),
        ({"now": at(12, day=12)}, Setpoint(18.0, False, "schedule", at(6, 30, day=14))),  # Saturday
        ({"blocks": []}, Setpoint(18.0, False, "schedule", None)),
        # An override lasts until its end, then the schedule again.
        (
            {"override_target": 23.0, "override_until": at(17)},
            Setpoint(23.0, False, "override", at(17)),
        ),
        ({"override_target": 23.0, "override_until": at(12)}, Setpoint(18.0, False, "schedule", at(17))),
        ({"override_target": 23.0, "override_until": None}, Setpoint(18.0, False, "schedule", at(17))),
        # Manual and off.
        ({"mode": "manual", "manual_target": 22.5}, Setpoint(22.5, False, "manual", None)),
        ({"mode": "manual", "manual_target": None}, Setpoint(21.0, False, "manual", None)),
        ({"mode": "off", "manual_target": 22.5}, Setpoint(None, False, "off", None)),
        # The house away: the away preset, whatever the mode except off; it beats an override.
        ({"house_away": True}, Setpoint(16.0, False, "away", None)),
        ({"house_away": True, "mode": "manual", "manual_target": 22.5}, Setpoint(16.0, False, "away", None)),
        (
            {"house_away": True, "override_target": 23.0, "override_until": at(17)},
            Setpoint(16.0, False, "away", None),
        ),
        ({"house_away": True, "mode": "off"}, Setpoint(None, False, "off", None)),
        # Boost wins until it ends, showing the target it goes back to.
        ({"boost_until": at(13)}, Setpoint(18.0, True, "boost", at(13))),
        ({"boost_until": at(13), "mode": "off"}, Setpoint(None, True, "boost", at(13))),
        ({"boost_until": at(13), "house_away": True}, Setpoint(16.0, True, "boost", at(13))),
        ({"boost_until": at(13), "mode": "manual", "manual_target": 22.5}, Setpoint(22.5, True, "boost", at(13))),
        ({"boost_until": at(12)}, Setpoint(18.0, False, "schedule", at(17))),
        # The house's presets, whichever they are.
        ({"now": MONDAY_0700, "presets": Presets(comfort=22.0)}, Setpoint(22.0, False, "schedule", at(8))),
        ({"house_away": True, "presets": Presets(away=14.5)}, Setpoint(14.5, False, "away", None)),
    ],
)
def test_resolve(room, expected):
    assert setpoint(**room) == expected


def test_times_given_in_utc_work_the_same():
    result = setpoint(now=MONDAY_0700.astimezone(UTC), boost_until=at(7, 30).astimezone(UTC))
    assert result == Setpoint(21.0, True, "boost", at(7, 30))


def test_an_override_running_into_the_repeated_autumn_hour_ends_on_time():
    # Sunday 25 October 2026: the override ends at 02:30 CEST (00:30 UTC); at 02:15 CET (01:15 UTC), an hour
    # later though earlier on the wall clock, it has ended.
    until = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=0)
    second_pass = datetime(2026, 10, 25, 2, 15, tzinfo=BERLIN, fold=1)
    result = setpoint(override_target=23.0, override_until=until, now=second_pass, blocks=[])
    assert result.source == "schedule"


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode 'auto' is not one of off, manual, schedule"):
        setpoint(mode="auto")


def test_presets():
    assert [PRESETS.temperature(name) for name in ("comfort", "eco", "away", "frost")] == [21.0, 18.0, 16.0, 7.0]
    assert PRESETS.maximum == 30.0
    assert PRESETS.of(Block(0, 0, 60, temperature=20.5)) == 20.5
    assert PRESETS.of(Block(0, 0, 60, preset="frost")) == 7.0
    assert PRESETS.of(None) == 18.0
    with pytest.raises(ValueError, match="preset 'maximum' is not one of comfort, eco, away, frost"):
        PRESETS.temperature("maximum")


# --- how long a manual change on schedule lasts ---------------------------------------------------------------------


def test_override_lasts_until_the_next_schedule_change_by_default():
    assert override_end(WEEK, MONDAY_0700, BERLIN) == at(8)
    assert override_end(WEEK, MONDAY_1200, BERLIN) == at(17)
    assert override_end(WEEK, at(23), BERLIN) == at(6, 30, day=8)


def test_override_for_a_chosen_time():
    assert override_end(WEEK, MONDAY_0700, BERLIN, minutes=90) == at(8, 30)


def test_override_for_a_chosen_time_counts_real_minutes_across_a_dst_change():
    # 01:30 CET on 29 March 2026; 60 minutes later the clocks say 03:30 CEST.
    now = datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN)
    assert override_end([], now, BERLIN, minutes=60) == datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN)


def test_override_without_a_schedule_change_lasts_a_week():
    assert override_end([], MONDAY_1200, BERLIN) == MONDAY_1200 + timedelta(days=7)


@pytest.mark.parametrize("minutes", [0, -5, True])
def test_override_for_no_time_is_refused(minutes):
    with pytest.raises(ValueError, match="positive"):
        override_end(WEEK, MONDAY_1200, BERLIN, minutes=minutes)


def test_an_override_ends_when_the_schedule_takes_over():
    until = override_end(WEEK, MONDAY_1200, BERLIN)
    during = setpoint(override_target=23.0, override_until=until, now=at(16, 59))
    after = setpoint(override_target=23.0, override_until=until, now=at(17))
    assert (during.target, during.source, during.until) == (23.0, "override", at(17))
    assert (after.target, after.source) == (19.5, "schedule")


@given(
    mode=st.sampled_from(["off", "manual", "schedule"]),
    house_away=st.booleans(),
    boost_minutes=st.one_of(st.none(), st.integers(-600, 600)),
    minutes=st.integers(0, 7 * 1440),
)
def test_off_has_no_target_boost_lasts_until_its_end_and_each_end_is_ahead(mode, house_away, boost_minutes, minutes):
    now = MONDAY_1200 + timedelta(minutes=minutes)
    boost_until = None if boost_minutes is None else now + timedelta(minutes=boost_minutes)
    result = setpoint(mode=mode, house_away=house_away, boost_until=boost_until, manual_target=22.0, now=now)
    assert result.boost == (boost_minutes is not None and boost_minutes > 0)
    if mode == "off":
        assert result.target is None
    else:
        assert result.target is not None
    if result.until is not None:
        assert result.until > now
