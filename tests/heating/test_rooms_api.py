"""``/v1/rooms`` (state, target, mode, boost, schedule, history), ``/v1/alerts`` and ``/v1/presets``: what a household
script sees and changes, who may, and that bad input is a 400 naming the field and the allowed range, never a 500."""

# ruff: noqa: RUF001  (the API writes ranges with an en dash, as people do)
from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heating.history import bucket_edges, downsample, merge_periods
from heating.models import Alert, Decision, Node, Reading, Room, RoomHeater, ScheduleBlock
from heating.selectors import house, room_history
from hub.timefmt import format_utc, parse_utc

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

ROOM_FIELDS = {
    "id",
    "name",
    "temperature",
    "temperature_at",
    "stale",
    "target",
    "mode",
    "source",
    "heating",
    "next_change",
    "boost_until",
    "decision",
    "alerts",
}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def sensor(db) -> Node:
    return Node.objects.create(address=0xA1, name="Living room heater", location="living", reachable=True)


@pytest.fixture
def living(sensor) -> Room:
    room = Room.objects.create(
        slug="living",
        name="Living room",
        temperature_node=sensor,
        temperature_endpoint="RoomTemp",
        mode="manual",
        manual_target=21.0,
    )
    RoomHeater.objects.create(room=room, node=sensor, endpoint="Heating", power_w=1500)
    Reading.objects.create(
        node=sensor, endpoint_id="161.11.0", name="RoomTemp", value=19.25, unit="C", recorded_at=timezone.now()
    )
    return room


@pytest.fixture
def bedroom(db) -> Room:
    return Room.objects.create(slug="bedroom", name="Bedroom", mode="schedule")


@pytest.fixture
def onlooker(db) -> User:
    """Signed in, but in no group: may read the house, not change it."""
    return User.objects.create_user("otto", password="x")


@pytest.fixture
def household(client_as, household_user) -> Client:
    return client_as(household_user)


def patch(client: Client, url: str, body, **headers):
    return client.patch(url, body, content_type="application/json", headers=headers)


def post(client: Client, url: str, body=None, **headers):
    return client.post(url, body if body is not None else {}, content_type="application/json", headers=headers)


def put(client: Client, url: str, body, **headers):
    return client.put(url, body, content_type="application/json", headers=headers)


def problem(response, field: str) -> str:
    assert response.status_code == 400, response.content
    body = response.json()
    assert "/v1/docs/errors#invalid-input" in body["more_info"]
    return " ".join(body["fields"][field])


# --- reading rooms -----------------------------------------------------------------------------------------------


def test_the_list_shows_each_room_with_its_temperature_target_mode_and_next_change(household, living, bedroom):
    response = household.get("/v1/rooms")
    assert response.status_code == 200
    page = response.json()
    assert page["total"] == 2
    by_id = {room["id"]: room for room in page["results"]}
    assert set(by_id["living"]) == ROOM_FIELDS
    assert by_id["living"]["temperature"] == 19.25
    assert by_id["living"]["stale"] is False
    assert (by_id["living"]["target"], by_id["living"]["mode"], by_id["living"]["source"]) == (21.0, "manual", "manual")
    assert by_id["living"]["alerts"] == 0
    # No sensor: no temperature, and stale says so rather than a remembered value.
    assert (by_id["bedroom"]["temperature"], by_id["bedroom"]["stale"]) == (None, True)
    assert by_id["bedroom"]["source"] == "schedule"


def test_a_room_on_schedule_names_its_next_change_as_instant_and_text(household, bedroom, settings):
    settings.TIME_ZONE = "UTC"
    now = timezone.now()
    tomorrow = (now.weekday() + 1) % 7
    ScheduleBlock.objects.create(
        room=bedroom, weekday=tomorrow, start_minute=6 * 60, end_minute=8 * 60, preset="comfort"
    )
    room = household.get("/v1/rooms/bedroom").json()
    change = room["next_change"]
    expected = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC) + timedelta(hours=6)
    assert parse_utc(change["at"]) == expected
    assert change["text"].startswith("21.0 °C at 06:00")


def test_the_detail_adds_the_allowed_target_range_presets_and_open_alerts(household, living):
    Alert.objects.create(
        room=living, kind="sensor_stale", message="No temperature for 40 minutes", raised_at=timezone.now()
    )
    room = household.get("/v1/rooms/living").json()
    assert room["target_range"] == {"minimum": 7.0, "maximum": 29.0}
    assert room["presets"]["comfort"] == 21.0
    assert room["alerts"] == 1
    assert [alert["kind"] for alert in room["open_alerts"]] == ["sensor_stale"]


def test_fields_count_and_the_mode_filter(household, living, bedroom):
    assert household.get("/v1/rooms?fields=id,target").json()["results"][0].keys() == {"id", "target"}
    assert household.get("/v1/rooms/count?mode=schedule").json() == {"count": 1}
    assert [room["id"] for room in household.get("/v1/rooms?mode=manual").json()["results"]] == ["living"]
    assert problem(household.get("/v1/rooms?fields=warmth"), "fields").startswith("unknown field warmth")


def test_an_unknown_room_is_a_404_in_the_error_shape(household, living):
    for url in ("/v1/rooms/attic", "/v1/rooms/attic/history", "/v1/rooms/attic/schedule"):
        response = household.get(url)
        assert response.status_code == 404
        assert "/v1/docs/errors#not-found" in response.json()["more_info"]
    assert patch(household, "/v1/rooms/attic", {"target": 20}).status_code == 404


# --- changing a room ---------------------------------------------------------------------------------------------


def test_a_household_member_sets_a_manual_target(household, living):
    response = patch(household, "/v1/rooms/living", {"target": 22.5})
    assert response.status_code == 200, response.content
    assert (response.json()["target"], response.json()["source"]) == (22.5, "manual")
    assert Room.objects.get(slug="living").manual_target == 22.5


def test_a_target_on_schedule_holds_for_the_minutes_given(household, bedroom):
    before = timezone.now()
    room = patch(household, "/v1/rooms/bedroom", {"target": 19.5, "minutes": 90}).json()
    assert (room["target"], room["source"], room["mode"]) == (19.5, "override", "schedule")
    ends = parse_utc(room["next_change"]["at"])
    assert before + timedelta(minutes=90) <= ends <= timezone.now() + timedelta(minutes=90)


def test_mode_and_target_together_and_a_mode_alone(household, bedroom):
    room = patch(household, "/v1/rooms/bedroom", {"mode": "manual", "target": 18}).json()
    assert (room["mode"], room["target"]) == ("manual", 18.0)
    room = patch(household, "/v1/rooms/bedroom", {"mode": "off"}).json()
    assert (room["mode"], room["target"], room["source"]) == ("off", None, "off")


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"target": 35}, "target", "7–29"),
        ({"target": 6.5}, "target", "7–29"),
        ({"target": "warm"}, "target", "from 7 to 29"),
        ({"target": True}, "target", "from 7 to 29"),
        ({"target": None}, "target", "from 7 to 29"),
        ({"mode": "auto"}, "mode", "off, manual, schedule"),
        ({"mode": ["off"]}, "mode", "off, manual, schedule"),
        ({"minutes": 30}, "minutes", "goes with a target"),
        ({"target": 20, "minutes": 30}, "minutes", "schedule only"),
        ({"mode": "off", "target": 20}, "target", "mode off has no target"),
        ({"warmth": 3}, "warmth", "target, minutes, mode"),
        ({}, "non_field_errors", "target"),
        ([1, 2], "non_field_errors", "JSON object"),
    ],
)
def test_a_bad_change_is_a_400_naming_the_field_and_what_is_allowed(household, living, body, field, words):
    assert words in problem(patch(household, "/v1/rooms/living", body), field)
    assert Room.objects.get(slug="living").manual_target == 21.0


def test_a_bad_target_after_a_good_mode_changes_nothing(household, bedroom):
    response = patch(household, "/v1/rooms/bedroom", {"mode": "manual", "target": 40})
    assert "7–29" in problem(response, "target")
    assert Room.objects.get(slug="bedroom").mode == "schedule"


def test_the_target_range_follows_the_rooms_own_frost_and_maximum(household, living):
    Room.objects.filter(pk=living.pk).update(frost=10.0, maximum=26.0)
    assert "10–25" in problem(patch(household, "/v1/rooms/living", {"target": 25.5}), "target")
    assert patch(household, "/v1/rooms/living", {"target": 25}).status_code == 200


def test_boost_for_a_time_then_cancel_it(household, living):
    before = timezone.now()
    room = post(household, "/v1/rooms/living/boost", {"minutes": 90}).json()
    assert room["source"] == "boost"
    assert before + timedelta(minutes=90) <= parse_utc(room["boost_until"]) <= timezone.now() + timedelta(minutes=90)
    room = household.delete("/v1/rooms/living/boost").json()
    assert (room["boost_until"], room["source"]) == (None, "manual")


def test_a_boost_defaults_to_an_hour_and_refuses_more_than_a_day(household, living):
    room = post(household, "/v1/rooms/living/boost").json()
    assert parse_utc(room["boost_until"]) - timezone.now() > timedelta(minutes=59)
    for minutes in (1441, 0, "long", 1.5):
        assert "1 to 1440" in problem(post(household, "/v1/rooms/living/boost", {"minutes": minutes}), "minutes")


# --- who may -----------------------------------------------------------------------------------------------------


def test_without_heating_control_a_user_reads_but_may_not_change(client_as, onlooker, living):
    client = client_as(onlooker)
    assert client.get("/v1/rooms/living").status_code == 200
    for response in (
        patch(client, "/v1/rooms/living", {"target": 22}),
        post(client, "/v1/rooms/living/boost", {"minutes": 10}),
        client.delete("/v1/rooms/living/boost"),
        put(client, "/v1/rooms/living/schedule", {"blocks": []}),
    ):
        assert response.status_code == 403
        assert "heating.control" in response.json()["message"]
    assert Room.objects.get(slug="living").manual_target == 21.0


def test_a_token_needs_heating_read_to_read_and_heating_write_to_change(client, bearer, household_user, living):
    assert client.get("/v1/rooms", headers=bearer(household_user, "heating:read")).status_code == 200
    assert client.get("/v1/rooms", headers=bearer(household_user, "users:read")).status_code == 403
    reader = bearer(household_user, "heating:read")
    response = patch(client, "/v1/rooms/living", {"target": 22}, **reader)
    assert response.status_code == 403
    assert "heating:write" in response.json()["message"]
    assert (
        patch(client, "/v1/rooms/living", {"target": 22}, **bearer(household_user, "heating:write")).status_code == 200
    )


def test_a_token_acts_with_its_users_rights_never_more(client, bearer, onlooker, living):
    response = patch(client, "/v1/rooms/living", {"target": 22}, **bearer(onlooker, "write"))
    assert response.status_code == 403


def test_anonymous_is_a_401(client, living):
    assert client.get("/v1/rooms").status_code == 401


# --- schedules ---------------------------------------------------------------------------------------------------

WEEK = [
    {"weekday": 0, "start": "06:30", "end": "08:00", "preset": "comfort"},
    {"weekday": 0, "start": "17:00", "end": "22:30", "temperature": 20.5},
    {"weekday": 5, "start": "08:00", "end": "24:00", "preset": "comfort"},
]


def test_a_schedule_round_trips_in_the_houses_zone_which_the_answer_names(household, bedroom, settings):
    settings.TIME_ZONE = "Europe/Paris"
    response = put(household, "/v1/rooms/bedroom/schedule", {"blocks": WEEK})
    assert response.status_code == 200, response.content
    week = household.get("/v1/rooms/bedroom/schedule").json()
    assert week["zone"] == "Europe/Paris"
    assert week["room"] == "bedroom"
    assert week["target_range"] == {"minimum": 7.0, "maximum": 29.0}
    assert [(b["day"], b["start"], b["end"], b["preset"], b["temperature"]) for b in week["blocks"]] == [
        ("Monday", "06:30", "08:00", "comfort", None),
        ("Monday", "17:00", "22:30", None, 20.5),
        ("Saturday", "08:00", "24:00", "comfort", None),
    ]
    # What GET answers can be sent back as it is.
    assert put(household, "/v1/rooms/bedroom/schedule", week).status_code == 200
    assert put(household, "/v1/rooms/bedroom/schedule", {"blocks": []}).json()["blocks"] == []


@pytest.mark.parametrize(
    ("blocks", "field", "words"),
    [
        (
            [WEEK[0], {"weekday": 0, "start": "07:45", "end": "09:00", "preset": "eco"}],
            "blocks[1]",
            "overlaps block 1 (Monday 06:30–08:00); it can start at 08:00 at the earliest",
        ),
        ([{"weekday": 1, "start": "07:00", "end": "07:10", "preset": "eco"}], "blocks[0]", "at least 15 minutes"),
        ([{"weekday": 1, "start": "7am", "end": "09:00", "preset": "eco"}], "blocks[0]", "HH:MM (00:00–23:59)"),
        ([{"weekday": 1, "start": "07:00", "end": "25:00", "preset": "eco"}], "blocks[0]", "00:00–24:00"),
        ([{"weekday": 7, "start": "07:00", "end": "09:00", "preset": "eco"}], "blocks[0]", "0 (Monday) to 6 (Sunday)"),
        ([{"weekday": 1, "start": "07:00", "end": "09:00", "temperature": 31}], "blocks[0]", "7–29 °C"),
        ([{"weekday": 1, "start": "07:00", "end": "09:00", "preset": "hot"}], "blocks[0]", "comfort, eco, away, frost"),
        ([{"weekday": 1, "start": "07:00", "end": "09:00"}], "blocks[0]", "either a preset"),
        ([{"weekday": 1, "start": "07:00", "end": "09:00", "preset": "eco", "heat": 1}], "blocks[0]", "not a block"),
        (["07:00"], "blocks[0]", "send an object"),
        ("none", "blocks", "a list of blocks"),
        ([WEEK[0]] * 700, "blocks", "At most 672 blocks"),
    ],
)
def test_a_bad_schedule_is_a_400_naming_the_block_and_what_is_allowed(household, bedroom, blocks, field, words):
    ScheduleBlock.objects.create(room=bedroom, weekday=2, start_minute=0, end_minute=60, preset="eco")
    assert words in problem(put(household, "/v1/rooms/bedroom/schedule", {"blocks": blocks}), field)
    assert ScheduleBlock.objects.filter(room=bedroom).count() == 1  # refused whole


def test_a_schedule_in_another_zone_is_refused(household, bedroom, settings):
    settings.TIME_ZONE = "Europe/Paris"
    response = put(household, "/v1/rooms/bedroom/schedule", {"zone": "America/New_York", "blocks": WEEK})
    assert "Europe/Paris" in problem(response, "zone")


# --- history -----------------------------------------------------------------------------------------------------

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _temperatures(node: Node, count: int, *, step=timedelta(minutes=1)) -> list[float]:
    values = [round(20 + 2 * math.sin(i / 97) + (i % 7) / 10, 2) for i in range(count)]
    Reading.objects.bulk_create(
        Reading(node=node, endpoint_id="161.11.0", name="RoomTemp", value=value, unit="C", recorded_at=T0 + step * i)
        for i, value in enumerate(values)
    )
    return values


def test_history_downsamples_to_the_points_asked_keeping_the_lowest_and_highest(household, living, sensor):
    values = _temperatures(sensor, 5000)
    # One spike and one dip a chart must not lose.
    Reading.objects.filter(recorded_at=T0 + timedelta(minutes=1234)).update(value=29.5)
    Reading.objects.filter(recorded_at=T0 + timedelta(minutes=4321)).update(value=3.25)
    Reading.objects.create(
        node=sensor, endpoint_id="161.12.0", name="Heating", value=1, unit="", recorded_at=T0 + timedelta(minutes=5)
    )
    query = f"since={format_utc(T0)}&until={format_utc(T0 + timedelta(minutes=5000))}&points=100"
    history = household.get(f"/v1/rooms/living/history?{query}").json()
    assert history["readings"] == 5000
    assert history["downsampled"] is True
    series = history["temperature"]
    assert 50 < len(series) <= 100
    assert [point["at"] for point in series] == sorted(point["at"] for point in series)
    found = {point["at"]: point["value"] for point in series}
    assert found[format_utc(T0 + timedelta(minutes=1234))] == 29.5
    assert found[format_utc(T0 + timedelta(minutes=4321))] == 3.25
    assert set(found.values()) <= set(values) | {29.5, 3.25}


def test_a_short_history_comes_back_whole(household, living, sensor):
    values = _temperatures(sensor, 30)
    history = household.get(
        f"/v1/rooms/living/history?since={format_utc(T0)}&until={format_utc(T0 + timedelta(hours=1))}"
    ).json()
    assert [point["value"] for point in history["temperature"]] == values
    assert (history["points"], history["downsampled"]) == (500, False)


def test_history_defaults_to_the_last_24_hours(household, living):
    history = household.get("/v1/rooms/living/history").json()
    assert parse_utc(history["until"]) - parse_utc(history["since"]) == timedelta(hours=24)
    assert abs(parse_utc(history["until"]) - timezone.now()) < timedelta(minutes=1)
    assert [point["value"] for point in history["temperature"]] == [19.25]
    assert household.get("/v1/rooms/living/history?fields=temperature").json().keys() == {"temperature"}


def test_history_gives_the_target_where_it_changed_and_the_heater_on_periods(household, living):
    def decide(minute, heat, target):
        Decision.objects.create(
            room=living, at=T0 + timedelta(minutes=minute), heat=heat, reason="r", target=target, temperature=20
        )

    decide(-30, True, 20.0)  # before the range: on, at 20 °C, when it starts
    decide(10, False, 20.0)
    decide(40, True, 21.0)
    decide(60, True, 21.0)  # the hourly repeat: no change
    decide(70, False, None)  # off
    history = household.get(
        f"/v1/rooms/living/history?since={format_utc(T0)}&until={format_utc(T0 + timedelta(hours=2))}"
    ).json()
    at = lambda minute: format_utc(T0 + timedelta(minutes=minute))  # noqa: E731
    assert history["target"] == [
        {"at": at(0), "value": 20.0},
        {"at": at(40), "value": 21.0},
        {"at": at(70), "value": None},
    ]
    assert history["heating"] == [{"start": at(0), "end": at(10)}, {"start": at(40), "end": at(70)}]


def test_a_target_just_set_ends_the_history_before_the_thermostat_records_it(household, living):
    ten_minutes_ago = timezone.now() - timedelta(minutes=10)
    Decision.objects.create(room=living, at=ten_minutes_ago, heat=True, reason="on: below target", target=21.0)
    patch(household, "/v1/rooms/living", {"target": 23})
    target = household.get("/v1/rooms/living/history").json()["target"]
    assert [(parse_utc(point["at"]) > ten_minutes_ago, point["value"]) for point in target] == [
        (False, 21.0),
        (True, 23.0),
    ]


def test_heater_periods_still_on_end_at_the_range_or_now(living):
    Decision.objects.create(room=living, at=T0, heat=True, reason="on", target=21, temperature=19)
    history = room_history(living, since=T0 - timedelta(hours=1), until=T0 + timedelta(hours=1), points=10)
    assert history["heating"] == [{"start": format_utc(T0), "end": format_utc(T0 + timedelta(hours=1))}]


def test_more_heater_periods_than_points_are_merged_across_their_shortest_gaps(living):
    # On 5 minutes, off 5 minutes, for 1000 minutes (100 periods); and one long pause in the middle.
    Decision.objects.bulk_create(
        Decision(room=living, at=T0 + timedelta(minutes=minute), heat=minute % 10 == 0, reason="r", target=21)
        for minute in [*range(0, 500, 5), *range(700, 1200, 5)]
    )
    history = room_history(living, since=T0, until=T0 + timedelta(minutes=1200), points=20)
    periods = [(parse_utc(p["start"]), parse_utc(p["end"])) for p in history["heating"]]
    assert len(periods) == 20
    assert periods[0][0] == T0
    assert all(earlier[1] < later[0] for earlier, later in itertools.pairwise(periods))
    # The long pause is never bridged: no period spans 495 to 700 minutes.
    pause = (T0 + timedelta(minutes=500), T0 + timedelta(minutes=700))
    assert not [period for period in periods if period[0] < pause[0] and period[1] > pause[1]]


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ("points=1", "points", "from 2 to 2000"),
        ("points=2001", "points", "from 2 to 2000"),
        ("points=lots", "points", "from 2 to 2000"),
        ("since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z", "since", "before until"),
        ("since=yesterday", "since", "ISO 8601"),
        ("until=2026-11-01T00:00:00", "until", "ISO 8601"),
        ("until=0001-01-01T00:00:00Z", "until", "Give since too"),
    ],
)
def test_bad_history_parameters_are_a_400_naming_them(household, living, query, field, words):
    assert words in problem(household.get(f"/v1/rooms/living/history?{query}"), field)


_times = st.one_of(
    st.datetimes(timezones=st.just(UTC)).map(format_utc),
    st.text(max_size=30),
    st.sampled_from(["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z", "2026-11-01T00:00:00+14:00"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(since=_times, until=_times, points=st.one_of(st.integers(-5, 3000).map(str), st.text(max_size=8)))
def test_no_history_query_is_a_500(household, living, since, until, points):
    response = household.get(
        f"/v1/rooms/living/history?since={quote(since)}&until={quote(until)}&points={quote(points)}"
    )
    assert response.status_code in (200, 400), response.content[:300]


def test_downsample_keeps_each_buckets_extremes_in_time_order():
    samples = [(0, 5.0), (1, 9.0), (2, 1.0), (3, 4.0), (10, 2.0), (11, 2.0), (25, None), (31, 7.0), (32, 8.0)]
    assert downsample(samples, [10, 20, 30]) == [(1, 9.0), (2, 1.0), (10, 2.0), (25, None), (31, 7.0), (32, 8.0)]


def test_downsample_never_exceeds_two_points_a_bucket():
    samples = [(minute, math.sin(minute / 10)) for minute in range(10_000)]
    edges = bucket_edges(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC), 50)
    kept = downsample([(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=8.64 * i), v) for i, v in samples], edges)
    assert len(kept) <= 100
    assert min(v for _, v in kept) == min(v for _, v in samples)
    assert max(v for _, v in kept) == max(v for _, v in samples)


def test_merge_periods_leaves_few_periods_alone():
    periods = [(T0, T0 + timedelta(minutes=1)), (T0 + timedelta(minutes=2), T0 + timedelta(minutes=3))]
    assert merge_periods(periods, limit=2) == periods
    assert merge_periods(periods, limit=1) == [(T0, T0 + timedelta(minutes=3))]


# --- alerts and presets ------------------------------------------------------------------------------------------


@pytest.fixture
def alerts(living, bedroom) -> list[Alert]:
    now = timezone.now()
    return [
        Alert.objects.create(room=living, kind="sensor_stale", message="No temperature", raised_at=now),
        Alert.objects.create(
            room=bedroom, kind="relay_stuck", message="Relay stuck", raised_at=now - timedelta(hours=2), cleared_at=now
        ),
    ]


def test_alerts_list_and_filter(household, alerts):
    page = household.get("/v1/alerts").json()
    assert [alert["kind"] for alert in page["results"]] == ["sensor_stale", "relay_stuck"]
    first = page["results"][0]
    assert (first["room"], first["title"], first["open"], first["acknowledged_at"]) == (
        "living",
        "no temperature",
        True,
        None,
    )
    assert [a["kind"] for a in household.get("/v1/alerts?open=true").json()["results"]] == ["sensor_stale"]
    assert [a["kind"] for a in household.get("/v1/alerts?open=false").json()["results"]] == ["relay_stuck"]
    assert [a["kind"] for a in household.get("/v1/alerts?room=bedroom").json()["results"]] == ["relay_stuck"]
    assert household.get("/v1/alerts/count?open=true").json() == {"count": 1}
    assert "true or false" in problem(household.get("/v1/alerts?open=maybe"), "open")


def test_acknowledging_an_alert_keeps_it_open_and_says_who(household, household_user, alerts):
    response = post(household, f"/v1/alerts/{alerts[0].pk}/acknowledge")
    assert response.status_code == 200, response.content
    alert = response.json()
    assert (alert["open"], alert["acknowledged_by"]) == (True, household_user.username)
    assert alert["acknowledged_at"] is not None
    assert post(household, "/v1/alerts/99999999/acknowledge").status_code == 404
    assert post(household, "/v1/alerts/99999999999999999999999/acknowledge").status_code == 404


def test_acknowledging_needs_heating_control(client_as, onlooker, alerts):
    client = client_as(onlooker)
    assert client.get("/v1/alerts").status_code == 200
    assert post(client, f"/v1/alerts/{alerts[0].pk}/acknowledge").status_code == 403


def test_presets_are_the_houses_and_staff_change_them(household, client_as, staff_user, db):
    presets = household.get("/v1/presets").json()
    assert {name: presets[name] for name in ("comfort", "eco", "away", "frost", "maximum")} == {
        "comfort": 21.0,
        "eco": 18.0,
        "away": 16.0,
        "frost": 7.0,
        "maximum": 30.0,
    }
    assert presets["limits"]["frost"] == {"minimum": 5.0, "maximum": 12.0}
    response = patch(household, "/v1/presets", {"eco": 17})
    assert response.status_code == 403
    staff = client_as(staff_user)
    assert patch(staff, "/v1/presets", {"eco": 17, "away": 15.5}).json()["away"] == 15.5
    assert (house().eco, house().away_temperature) == (17.0, 15.5)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"frost": 13}, "frost", "5–12"),
        ({"maximum": 40}, "maximum", "25–35"),
        ({"away": 3}, "away", "7–29"),
        ({"comfort": "warm"}, "comfort", "number"),
        ({"boost": 1}, "boost", "comfort, eco, away, frost, maximum"),
        ({}, "non_field_errors", "comfort"),
    ],
)
def test_bad_presets_are_a_400_naming_them(client_as, staff_user, body, field, words):
    assert words in problem(patch(client_as(staff_user), "/v1/presets", body), field)


# --- the OpenAPI document ----------------------------------------------------------------------------------------


def _schema_properties(schema: dict, reference: str) -> set[str]:
    return set(schema["components"]["schemas"][reference.rsplit("/", 1)[1]]["properties"])


def test_the_schema_documents_every_rooms_endpoint_with_its_scope(client):
    paths = client.get("/v1/schema").json()["paths"]
    expected = {
        "/v1/rooms": {"get"},
        "/v1/rooms/count": {"get"},
        "/v1/rooms/{id}": {"get", "patch"},
        "/v1/rooms/{id}/boost": {"post", "delete"},
        "/v1/rooms/{id}/schedule": {"get", "put"},
        "/v1/rooms/{id}/history": {"get"},
        "/v1/alerts": {"get"},
        "/v1/alerts/{id}/acknowledge": {"post"},
        "/v1/presets": {"get", "patch"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    assert {"oauth2": ["heating:write"]} in paths["/v1/rooms/{id}"]["patch"]["security"]
    assert {"oauth2": ["heating:read"]} in paths["/v1/rooms/{id}/history"]["get"]["security"]
    history_params = {p["name"] for p in paths["/v1/rooms/{id}/history"]["get"]["parameters"]}
    assert {"since", "until", "points"} <= history_params


def test_the_answers_have_the_fields_the_schema_documents(client, household, living, bedroom):
    schema = client.get("/v1/schema").json()
    paths = schema["paths"]

    def documented(path, method="get"):
        content = paths[path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        return _schema_properties(schema, content["$ref"])

    assert set(household.get("/v1/rooms/living").json()) == documented("/v1/rooms/{id}")
    assert set(patch(household, "/v1/rooms/living", {"target": 20}).json()) == documented("/v1/rooms/{id}", "patch")
    assert set(household.get("/v1/rooms/living/schedule").json()) == documented("/v1/rooms/{id}/schedule")
    assert set(household.get("/v1/rooms/living/history").json()) == documented("/v1/rooms/{id}/history")
    assert set(household.get("/v1/presets").json()) == documented("/v1/presets")
    listed = paths["/v1/rooms"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    item = schema["components"]["schemas"][listed["$ref"].rsplit("/", 1)[1]]["properties"]["results"]["items"]
    assert set(household.get("/v1/rooms").json()["results"][0]) == _schema_properties(schema, item["$ref"])
