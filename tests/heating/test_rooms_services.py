"""The rooms' writes: what a household changes (targets, modes, boost, away, schedules) and what staff set up (rooms,
heaters, presets), each refused with the field and the allowed range when wrong, and announced as
heating.room_changed in its transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction

from heating.models import Mode, Node, Room, RoomHeater, ScheduleBlock
from heating.selectors import house, room_setpoint
from heating.services import (
    RoomInputError,
    house_away_set,
    house_presets_set,
    room_boost,
    room_boost_cancel,
    room_create,
    room_heaters_set,
    room_mode_set,
    room_preset_set,
    room_target_set,
    room_update,
    schedule_copy,
    schedule_replace,
)
from heating.thermostat.schedule import Block, expand
from messaging.models import OutboxEvent
from tests.heating.support import WEDNESDAY_10

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, pytest.mark.usefixtures("house_in_utc")]


@pytest.fixture
def room(heater_node):
    return room_create(slug="living", name="Living room", temperature_node=heater_node)


def room_events() -> list[dict]:
    return [event.data for event in OutboxEvent.objects.filter(type="heating.room_changed").order_by("id")]


# --- setting rooms up --------------------------------------------------------------------------------------------


def test_a_new_room_takes_its_temperature_from_the_node_and_moves_the_node_into_it(room, heater_node):
    heater_node.refresh_from_db()
    assert heater_node.location == "living"
    assert room.temperature_endpoint == "RoomTemp"
    assert room.mode == Mode.SCHEDULE
    assert room_events()[-1]["changed"] == ["created"]


@pytest.mark.parametrize(
    ("slug", "words"),
    [("Living Room", "a-z"), ("hub", "reserved"), ("living", "exists already"), ("x" * 65, "1 to 64")],
)
def test_a_room_id_that_cannot_be_a_topic_level_or_is_taken_is_refused(room, slug, words):
    with pytest.raises(RoomInputError, match=words) as refused:
        room_create(slug=slug, name="Another")
    assert refused.value.field == "id"


def test_a_temperature_endpoint_the_node_does_not_have_is_refused(heater_node):
    with pytest.raises(RoomInputError, match="no temperature endpoint 'Heating'") as refused:
        room_create(slug="hall", name="Hall", temperature_node=heater_node, temperature_endpoint="Heating")
    assert refused.value.field == "temperature_endpoint"


def test_renaming_a_room_moves_its_nodes_and_announces_the_old_id(room, heater_node):
    room_heaters_set(room=room, heaters=[(heater_node, "Heating", 1500)])
    room_update(room=room, slug="lounge", name="Lounge")
    heater_node.refresh_from_db()
    assert heater_node.location == "lounge"
    event = room_events()[-1]
    assert (event["room"], event["previous_room"], event["name"]) == ("lounge", "living", "Lounge")
    assert set(event["changed"]) == {"slug", "name"}


def test_assigning_heaters_sets_their_location_and_replaces_the_previous_ones(room, heater_node):
    other = Node.objects.create(address=0xA2, manufacturer_id=72, product_id=1, location="hall")
    room_heaters_set(room=room, heaters=[(heater_node, "Heating", 1500), (other, "Heating", 800)])
    room_heaters_set(room=room, heaters=[(other, "Heating", 900)])
    assert [(h.node.address, h.power_w) for h in RoomHeater.objects.filter(room=room)] == [(0xA2, 900)]
    other.refresh_from_db()
    assert other.location == "living"


def test_a_relay_heating_another_room_or_an_input_is_refused_naming_the_heater(room, heater_node):
    room_heaters_set(room=room, heaters=[(heater_node, "Heating", 1500)])
    bedroom = room_create(slug="bedroom", name="Bedroom")
    with pytest.raises(RoomInputError, match="heats Living room already") as refused:
        room_heaters_set(room=bedroom, heaters=[(heater_node, "Heating", 1000)])
    assert refused.value.field == "heaters[0]"
    with pytest.raises(RoomInputError, match="no relay 'RoomTemp'"):
        room_heaters_set(room=bedroom, heaters=[(heater_node, "RoomTemp", 1000)])
    with pytest.raises(RoomInputError, match="power must be a whole number of W"):
        room_heaters_set(room=bedroom, heaters=[(Node.objects.create(address=0xA3), "Heating", 0)])


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"frost": 4}, "frost", "5\N{EN DASH}12 °C"),
        ({"maximum": 36}, "maximum", "25\N{EN DASH}35 °C"),
        ({"comfort": 29.5}, "comfort", "7\N{EN DASH}29 °C"),
        ({"maximum": 25, "comfort": 24.5}, "comfort", "7\N{EN DASH}24 °C"),
        ({"colour": "red"}, "colour", "cannot be changed"),
    ],
)
def test_preset_overrides_outside_their_ranges_are_refused(room, fields, field, words):
    with pytest.raises(RoomInputError, match=words) as refused:
        room_update(room=room, **fields)
    assert refused.value.field == field


def test_house_presets_are_checked_and_apply_to_rooms_without_their_own(room):
    house_presets_set(comfort=22.0, frost=8)
    assert house().comfort == 22.0
    room_mode_set(room=room, mode="manual", origin="test", at=WEDNESDAY_10)
    with pytest.raises(RoomInputError, match="8\N{EN DASH}29 °C"):
        room_target_set(room=room, target=7.5, origin="test")
    with pytest.raises(RoomInputError, match="5\N{EN DASH}12 °C"):
        house_presets_set(frost=13)


# --- targets, modes, boost, away --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "words"), [(6.5, "7\N{EN DASH}29 °C"), (29.5, "7\N{EN DASH}29 °C"), ("warm", "a number")]
)
def test_a_target_outside_frost_to_maximum_minus_one_is_refused(room, target, words):
    with pytest.raises(RoomInputError, match=words) as refused:
        room_target_set(room=room, target=target, origin="test")
    assert refused.value.field == "target"


def test_a_target_on_schedule_holds_until_the_next_block(room):
    schedule_replace(room=room, blocks=expand("every_day", "17:00", "22:00", preset="comfort"))
    room = room_target_set(room=room, target=23.0, origin="test", at=WEDNESDAY_10)
    assert room.mode == Mode.SCHEDULE
    assert room.override_until == WEDNESDAY_10.replace(hour=17)
    point = room_setpoint(room, at=WEDNESDAY_10 + timedelta(hours=1))
    assert (point.target, point.source) == (23.0, "override")
    assert room_setpoint(room, at=WEDNESDAY_10.replace(hour=17, minute=1)).target == 21.0


def test_a_target_on_schedule_for_a_chosen_time(room):
    room = room_target_set(room=room, target=23.0, minutes=30, origin="test", at=WEDNESDAY_10)
    assert room.override_until == WEDNESDAY_10 + timedelta(minutes=30)
    with pytest.raises(RoomInputError, match="minutes") as refused:
        room_target_set(room=room, target=23.0, minutes=0, origin="test")
    assert refused.value.field == "minutes"


def test_a_target_in_manual_mode_stays_and_an_off_room_goes_manual(room):
    room_mode_set(room=room, mode="off", origin="test")
    room = room_target_set(room=room, target=19.5, origin="test", at=WEDNESDAY_10)
    assert (room.mode, room.manual_target) == (Mode.MANUAL, 19.5)
    assert room_setpoint(room, at=WEDNESDAY_10 + timedelta(days=30)).target == 19.5
    assert room_events()[-1]["changed"] == ["target", "mode"]
    assert room_events()[-1]["target"] == 19.5


def test_manual_mode_keeps_the_target_that_applied(room):
    schedule_replace(room=room, blocks=expand("every_day", "08:00", "12:00", temperature=20.5))
    room = room_mode_set(room=room, mode="manual", origin="test", at=WEDNESDAY_10)
    assert room.manual_target == 20.5


def test_an_unknown_mode_is_refused_naming_the_modes(room):
    with pytest.raises(RoomInputError, match="off, manual, schedule") as refused:
        room_mode_set(room=room, mode="heat", origin="test")
    assert refused.value.field == "mode"


def test_boost_heats_for_its_time_then_the_room_goes_back(room):
    room = room_boost(room=room, minutes=30, origin="test", at=WEDNESDAY_10)
    assert room_setpoint(room, at=WEDNESDAY_10 + timedelta(minutes=29)).boost
    after = room_setpoint(room, at=WEDNESDAY_10 + timedelta(minutes=31))
    assert (after.boost, after.source) == (False, "schedule")
    room = room_boost_cancel(room=room, origin="test")
    assert room.boost_until is None


@pytest.mark.parametrize("minutes", [0, 1441, 2.5, True])
def test_a_boost_longer_than_a_day_or_shorter_than_a_minute_is_refused(room, minutes):
    with pytest.raises(RoomInputError, match="1 to 1440") as refused:
        room_boost(room=room, minutes=minutes, origin="test")
    assert refused.value.field == "minutes"


def test_mode_off_ends_a_boost(room):
    room_boost(room=room, minutes=60, origin="test")
    room = room_mode_set(room=room, mode="off", origin="test")
    assert room.boost_until is None


def test_away_holds_every_room_at_the_away_temperature_and_announces_each(room):
    room_create(slug="bedroom", name="Bedroom")
    before = len(room_events())
    house_away_set(away=True, origin="test", at=WEDNESDAY_10)
    assert house().away
    assert room_setpoint(room, at=WEDNESDAY_10).target == 16.0
    assert {event["room"] for event in room_events()[before:]} == {"living", "bedroom"}
    house_away_set(away=False, origin="test")
    assert not house().away


def test_home_assistants_presets(room):
    room = room_preset_set(room=room, preset="boost", origin="mqtt", at=WEDNESDAY_10)
    assert room.boost_until == WEDNESDAY_10 + timedelta(hours=1)
    room_preset_set(room=room, preset="away", origin="mqtt")
    assert house().away
    room = room_preset_set(room=room, preset="none", origin="mqtt")
    assert room.boost_until is None
    assert not house().away
    with pytest.raises(RoomInputError, match="boost, away, none"):
        room_preset_set(room=room, preset="eco", origin="mqtt")


def test_a_change_names_who_made_it_and_where(room, household_user):
    room_target_set(room=room, target=20.0, by=household_user, origin="page")
    event = room_events()[-1]
    assert (event["by"], event["origin"], event["target"]) == ("alice", "page", 20.0)


def test_a_rolled_back_change_announces_nothing(room):
    before = len(room_events())

    def change_then_fail():
        with transaction.atomic():
            room_target_set(room=room, target=20.0, origin="test")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        change_then_fail()
    assert len(room_events()) == before
    assert Room.objects.get(pk=room.pk).override_target is None


# --- schedules ---------------------------------------------------------------------------------------------------


def test_a_schedule_replaces_the_week(room):
    schedule_replace(room=room, blocks=expand("workdays", "06:30", "08:00", preset="comfort"))
    schedule_replace(room=room, blocks=expand("weekend", "09:00", "23:00", temperature=20.0))
    stored = list(ScheduleBlock.objects.filter(room=room).values_list("weekday", "start_minute", "temperature"))
    assert stored == [(5, 540, 20.0), (6, 540, 20.0)]
    assert room_events()[-1]["changed"] == ["schedule"]


@pytest.mark.parametrize(
    ("blocks", "field", "words"),
    [
        ([Block(0, 420, 430, preset="comfort")], "blocks[0]", "at least 15 minutes"),
        (
            [Block(0, 420, 600, preset="comfort"), Block(0, 540, 660, preset="eco")],
            "blocks[1]",
            "overlaps block 1",
        ),
        ([Block(2, 420, 600, temperature=30.0)], "blocks[0]", "7\N{EN DASH}29 °C"),
        ([Block(2, 420, 600, preset="party")], "blocks[0]", "comfort, eco, away, frost"),
    ],
)
def test_a_bad_schedule_is_refused_whole_naming_the_block(room, blocks, field, words):
    schedule_replace(room=room, blocks=expand("every_day", "07:00", "08:00", preset="comfort"))
    with pytest.raises(RoomInputError, match=words) as refused:
        schedule_replace(room=room, blocks=blocks)
    assert refused.value.field == field
    assert ScheduleBlock.objects.filter(room=room).count() == 7


def test_a_week_copies_to_other_rooms(room):
    schedule_replace(room=room, blocks=expand("workdays", "06:30", "08:00", preset="comfort"))
    bedroom = room_create(slug="bedroom", name="Bedroom")
    kitchen = room_create(slug="kitchen", name="Kitchen")
    schedule_copy(source=room, targets=[bedroom, kitchen])
    assert ScheduleBlock.objects.filter(room=bedroom).count() == 5
    assert ScheduleBlock.objects.filter(room=kitchen).count() == 5


def test_a_copy_a_room_cannot_hold_is_refused_naming_the_room(room):
    schedule_replace(room=room, blocks=expand("workdays", "06:30", "08:00", temperature=28.0))
    cold = room_create(slug="cellar", name="Cellar")
    room_update(room=cold, maximum=25)
    with pytest.raises(RoomInputError, match="Cellar") as refused:
        schedule_copy(source=room, targets=[cold])
    assert refused.value.field == "targets[0]"
    assert not ScheduleBlock.objects.filter(room=cold).exists()


def test_a_new_maximum_that_would_strand_the_schedule_or_target_is_refused(room):
    schedule_replace(room=room, blocks=expand("workdays", "06:30", "08:00", temperature=27.0))
    with pytest.raises(RoomInputError, match="Monday 06:30\N{EN DASH}08:00 asks for 27 °C") as refused:
        room_update(room=room, maximum=26)
    assert refused.value.field == "maximum"
    schedule_replace(room=room, blocks=[])
    room = room_mode_set(room=room, mode="manual", origin="test")
    room = room_target_set(room=room, target=8, origin="test")
    with pytest.raises(RoomInputError, match="manual target 8 °C would be outside the allowed 9\N{EN DASH}29"):
        room_update(room=room, frost=9)
    assert room_update(room=room, maximum=26).maximum == 26


def test_choosing_schedule_again_resumes_it_after_a_manual_change(room):
    room = room_target_set(room=room, target=23.0, origin="test", at=WEDNESDAY_10)
    room = room_mode_set(room=room, mode="schedule", origin="test", at=WEDNESDAY_10)
    assert (room.override_target, room.override_until) == (None, None)
    assert room_setpoint(room, at=WEDNESDAY_10).source == "schedule"
    before = len(room_events())
    room_mode_set(room=room, mode="schedule", origin="test")
    assert len(room_events()) == before  # nothing to resume: no change, no event


def test_a_house_maximum_that_would_strand_a_rooms_schedule_is_refused_naming_the_room(room):
    schedule_replace(room=room, blocks=expand("weekend", "09:00", "12:00", temperature=28.0))
    with pytest.raises(RoomInputError, match="Living room: maximum: the schedule's Saturday") as refused:
        house_presets_set(maximum=27)
    assert refused.value.field == "maximum"
    room_update(room=room, maximum=30)  # its own maximum: the house's no longer applies to it
    assert house_presets_set(maximum=27).maximum == 27
