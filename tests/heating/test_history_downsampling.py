"""The room history's fast temperature path (the database joins the readings into two strings, Python's built-ins
find each bucket's extremes) answers exactly what the row-by-row pass it replaced answers: the same points, the same
values, the same times, on generated data full of ties, bucket edges, odd microseconds and values that are not plain
numbers."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from heating import history
from heating.history import bucket_edges, downsample_columns, downsample_readings
from heating.models import Node, Reading, Room
from hub.timefmt import format_utc

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def room(db) -> Room:
    node = Node.objects.create(address=0xA1, manufacturer_id=72, product_id=1, definition="heater/Room heater")
    return Room.objects.create(
        slug="living", name="Living room", temperature_node=node, temperature_endpoint="RoomTemp"
    )


def reference(room: Room, since: datetime, until: datetime, points: int) -> tuple[list[dict], int]:
    """The temperature series as the history answered it before (every row through the ORM, ``downsample_readings``
    over them): the answer the fast path must give."""
    rows = list(
        Reading.objects.filter(
            node_id=room.temperature_node_id, endpoint_id="161.11.0", recorded_at__gte=since, recorded_at__lt=until
        )
        .order_by("recorded_at")
        .values_list(history._StoredTime("recorded_at"), history._StoredText("value"))
    )
    if len(rows) > points:
        edges = [history._stored_edge(edge, connection) for edge in bucket_edges(since, until, points // 2)]
        samples = downsample_readings(rows, edges)
    else:
        numbers = ((at, history._number(stored)) for at, stored in rows)
        samples = [(at, value) for at, value in numbers if value is not None]
    return [{"at": format_utc(history._instant(at)), "value": value} for at, value in samples], len(rows)


def store(room: Room, readings: list[tuple[datetime, object]]) -> None:
    node = room.temperature_node
    Reading.objects.bulk_create(
        Reading(node=node, endpoint_id="161.11.0", name="RoomTemp", value=value, unit="C", recorded_at=at)
        for at, value in readings
    )
    # The node's other endpoint, interleaved in time: never part of the temperature.
    Reading.objects.bulk_create(
        Reading(node=node, endpoint_id="161.13.0", name="SrvHeating", value=99.0, recorded_at=at) for at, _ in readings
    )


def generated(seed: int, count: int, span: timedelta) -> list[tuple[datetime, object]]:
    """Readings at random times (some on whole seconds, some with microseconds, some on the same bucket edge) with
    values drawn from a few, so buckets are full of equal lowest and highest values, ints and negatives among them."""
    rng = random.Random(seed)
    choices = [19.5, 20.0, 20.25, -0.5, 0, 21, 22.75, 18.0, 20.1, 20.12]
    times = set()
    while len(times) < count:
        offset = timedelta(microseconds=rng.randrange(span // timedelta(microseconds=1)))
        if rng.random() < 0.5:
            offset = timedelta(seconds=offset // timedelta(seconds=1))
        times.add(T0 + offset)
    return [(at, rng.choice(choices)) for at in sorted(times)]


@pytest.mark.parametrize("points", [2, 10, 100, 500])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_fast_path_answers_what_the_row_by_row_pass_answers(room, seed, points, monkeypatch):
    span = timedelta(hours=12)
    store(room, generated(seed, 1500, span))
    if connection.vendor == "sqlite":  # the joined strings came back usable: no fetch of the rows
        assert history._sqlite_joined_columns(connection, "161.11.0", room.temperature_node_id, T0, T0 + span)

    def no_loop(*args):
        raise AssertionError("plain numbers need no row-by-row pass")

    monkeypatch.setattr(history, "downsample_readings", no_loop)
    ranges = [(T0, T0 + span), (T0 + timedelta(hours=1, seconds=7), T0 + timedelta(hours=9, microseconds=3))]
    for since, until in ranges:
        fast = history._temperature(room, since, until, points)
        assert fast == reference(room, since, until, points)
        assert fast[1] > points or points == 500  # the downsampled path was taken (500 for a whole range is short)


def test_readings_on_the_bucket_edges_fall_where_they_fell(room):
    since, until = T0, T0 + timedelta(hours=1)
    edges = bucket_edges(since, until, 7)  # not whole seconds: 8 min 34.285714 s apart
    readings = [(edge, 20.0 + index) for index, edge in enumerate(edges)]
    readings += [(edge - timedelta(microseconds=1), 30.0 - index) for index, edge in enumerate(edges)]
    readings += [(since, 5.0), (until - timedelta(microseconds=1), 6.0)]
    store(room, sorted(readings))
    assert history._temperature(room, since, until, 14) == reference(room, since, until, 14)


def test_values_that_are_not_plain_numbers_give_the_same_answer(room):
    readings = generated(4, 600, timedelta(hours=2))
    readings[10] = (readings[10][0], "21.5")  # a number as a JSON string: counted as the number
    readings[20] = (readings[20][0], True)  # not a temperature: left out
    readings[30] = (readings[30][0], {"a": 1, "b": 2})  # holds the separator
    store(room, readings)
    answer = history._temperature(room, T0, T0 + timedelta(hours=2), 50)
    assert answer == reference(room, T0, T0 + timedelta(hours=2), 50)
    assert answer[1] == 600


def test_a_short_range_and_an_empty_one(room):
    store(room, generated(5, 40, timedelta(hours=1)))
    assert history._temperature(room, T0, T0 + timedelta(hours=1), 500) == reference(
        room, T0, T0 + timedelta(hours=1), 500
    )
    assert history._temperature(room, T0 - timedelta(days=2), T0 - timedelta(days=1), 10) == ([], 0)


samples = st.lists(
    st.tuples(st.integers(0, 10_000), st.sampled_from([1.5, -2.0, 0.0, -0.0, 3.25, 7.0, 1.5000000000000002])),
    min_size=1,
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(samples=samples, buckets=st.integers(1, 40))
def test_downsample_columns_keeps_what_the_loop_keeps(samples, buckets):
    samples.sort(key=lambda sample: sample[0])
    times = [at for at, _ in samples]
    stored = [repr(value) for _, value in samples]
    edges = [round(10_000 * index / buckets) for index in range(1, buckets)]
    assert downsample_columns(times, stored, edges) == downsample_readings(zip(times, stored, strict=True), edges)


def test_downsample_columns_leaves_values_it_cannot_read_to_the_loop():
    assert downsample_columns([1, 2], ["1.5", '"2"'], []) is None
    assert downsample_columns([1, 2], ["1.5", "1e400"], []) is None
    assert downsample_columns([1, 2], ["1.5", "NaN"], []) is None
    assert downsample_columns([1, 2], ["1.5", "true"], []) is None


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 1, 3, 4, 5, tzinfo=UTC),
        datetime(2026, 11, 1, 3, 4, 5, 999_999, tzinfo=UTC),
        datetime(999, 1, 2, 3, 4, 5, 1_000, tzinfo=UTC),
        datetime(2026, 3, 29, 3, 30, tzinfo=ZoneInfo("Europe/Paris")),
    ],
)
def test_times_are_written_and_read_as_the_rest_of_the_hub_does(moment):
    assert history._utc_text(moment) == format_utc(moment)
    stored = connection.ops.adapt_datetimefield_value(moment)
    if isinstance(stored, str):  # SQLite's stored text
        assert history._instant(stored) == moment
    assert history._instant("2026-11-01 03:04:05+01:00") == datetime(2026, 11, 1, 3, 4, 5, tzinfo=UTC)
