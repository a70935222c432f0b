"""A room's history for its chart (``heating.selectors.room_history``): the temperature readings of its source, its
target over time and the periods its heaters were on, between two instants, downsampled on the server so that no
series holds more than ``points`` points (at most ``MAX_POINTS``).

Downsampling keeps the extremes: the range is cut into ``points // 2`` equal buckets and each bucket keeps its lowest
and its highest sample, in time order (one when they are the same sample). A chart drawn from the result shows every
peak and trough of the full data; a series with no more samples than ``points`` comes back whole.

* temperature: the readings of ``room.temperature_node``'s endpoint named ``room.temperature_endpoint`` (by the
  endpoint id its newest reading has);
* target: the thermostat's recorded decisions' targets (``null`` while the room is off), kept only where it changes,
  starting with the one in force at ``since`` and, when the range holds the present, ending with the target that
  applies now;
* heating: the periods the thermostat decided "on", from its decisions (including one in force at ``since``); more
  than ``points`` of them are merged across their shortest gaps.

Speed: 30 days of one-minute readings are 43,200 rows. They are read in one indexed query and never turned into
Python datetimes one by one (Django's SQLite converter parses each with a regular expression, which alone takes
longer than the query): each row's time is compared, as the database driver hands it over, with bucket edges
written the same way, and only the kept samples are converted. On SQLite the rows come over as two strings the
database joins (a tuple a row cost more than the scan), and each bucket's extremes are found by Python's built-ins
over the columns (``downsample_columns``) rather than a Python loop over the rows; ``downsample_readings``, the
loop, still reads what is not a plain number. bench/rooms_history.py measures it.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import connections
from django.db.models import Func, TextField
from django.utils import timezone

from heating.models import Decision, Reading, Room
from hub.timefmt import format_utc

MAX_POINTS = 2000
DEFAULT_POINTS = 500
MIN_POINTS = 2


class _StoredTime(Func):
    """A time column in the cheapest form the database driver hands over, to compare with bucket edges written the
    same way (``_stored_edge``): SQLite's stored text, ``YYYY-MM-DD HH:MM:SS[.ffffff]`` in UTC (Django's converter
    would parse each with a regular expression), PostgreSQL's seconds since 1970 as a float (Django's timestamptz
    loader is Python code run for every row)."""

    template = "%(expressions)s"
    output_field = TextField()  # a field without converters: what the driver gives is kept

    def as_sqlite(self, compiler, connection, **extra_context):
        # An expression rather than the bare column: sqlite3 itself converts a column declared ``datetime``.
        return self.as_sql(compiler, connection, template="CAST(%(expressions)s AS TEXT)", **extra_context)

    def as_postgresql(self, compiler, connection, **extra_context):
        epoch = "EXTRACT(EPOCH FROM %(expressions)s)::float8"
        return self.as_sql(compiler, connection, template=epoch, **extra_context)


class _StoredText(Func):
    """A JSON column as its text, without Django's ``json.loads`` of every row."""

    template = "%(expressions)s"
    output_field = TextField()


class _Unconverted(Func):
    """A column as the driver gives it (SQLite's 0/1 for a boolean: only its truth is used), without Django's
    converter call for every row."""

    template = "%(expressions)s"
    output_field = TextField()


def _stored_edge(moment: datetime, connection) -> Any:
    """``moment`` as ``_StoredTime`` gives a time on ``connection``."""
    if connection.vendor == "postgresql":
        return moment.timestamp()
    if connection.vendor == "sqlite":
        return connection.ops.adapt_datetimefield_value(moment)
    return moment


def _instant(stored: Any) -> datetime:
    """An aware datetime from a time as ``_StoredTime`` gives it."""
    if isinstance(stored, float):
        return datetime.fromtimestamp(stored, UTC)
    if isinstance(stored, datetime):
        return stored if timezone.is_aware(stored) else stored.replace(tzinfo=UTC)
    try:
        return datetime.fromisoformat(stored + "+00:00")  # a sixth of the time of parsing, then replacing the zone
    except ValueError:  # a text with its own offset
        return datetime.fromisoformat(stored).replace(tzinfo=UTC)


def _utc_text(moment: datetime) -> str:
    """``hub.timefmt.format_utc(moment)``, in half the time for a datetime in UTC (the history formats thousands)."""
    if moment.tzinfo is UTC:
        return moment.isoformat(timespec="milliseconds")[:-6] + "Z"
    return format_utc(moment)


def _number(stored: Any) -> float | None:
    """A reading's JSON value as a finite float, None when it is not a number (a word, true, null, NaN)."""
    try:
        value = float(stored)
    except (TypeError, ValueError):
        try:
            decoded = json.loads(stored)
        except (TypeError, ValueError):
            return None
        if isinstance(decoded, bool) or not isinstance(decoded, int | float | str):
            return None
        try:
            value = float(decoded)  # a number stored as a JSON string, "21.5"
        except ValueError:
            return None
    return value if math.isfinite(value) else None


def bucket_edges(since: datetime, until: datetime, buckets: int) -> list[datetime]:
    """The ``buckets - 1`` instants that cut ``since``..``until`` into ``buckets`` equal parts."""
    width = (until - since) / buckets
    return [since + width * index for index in range(1, buckets)]


def downsample(samples: Iterable[tuple[Any, Any]], edges: Sequence[Any]) -> list[tuple[Any, Any]]:
    """Each bucket's lowest and highest ``(at, value)`` in time order (one when the same sample), from samples in
    time order; ``edges`` are the buckets' inner boundaries, comparable with the samples' ``at``. A value None
    counts only in a bucket with no number (its first None is kept)."""
    kept: list[tuple[Any, Any]] = []
    low = high = first_none = None
    bucket, last_edge = 0, len(edges)
    for sample in samples:
        at, value = sample
        if bucket < last_edge and at >= edges[bucket]:
            kept.extend(_extremes(low, high, first_none))
            low = high = first_none = None
            while bucket < last_edge and at >= edges[bucket]:
                bucket += 1
        if value is None:
            first_none = first_none or sample
        elif low is None:
            low = high = sample
        elif value < low[1]:
            low = sample
        elif value > high[1]:
            high = sample
    kept.extend(_extremes(low, high, first_none))
    return kept


def downsample_readings(rows: Iterable[tuple[Any, Any]], edges: Sequence[Any]) -> list[tuple[Any, float]]:
    """``downsample`` for readings as stored, ``(at, JSON text)``: each value is read in the same pass, the one loop
    over every reading (kept lean: a tuple is made only for a new extreme). Values that are not finite numbers are
    left out."""
    kept: list[tuple[Any, float]] = []
    low = high = None
    upcoming = iter(edges)
    next_edge = next(upcoming, None)
    for at, stored in rows:
        try:
            value = float(stored)
        except ValueError:
            value = _number(stored)
            if value is None:
                continue
        if value - value != 0:  # NaN or an infinity
            continue
        if next_edge is not None and at >= next_edge:
            kept.extend(_extremes(low, high, None))
            low = high = None
            while next_edge is not None and at >= next_edge:
                next_edge = next(upcoming, None)
        if low is None:
            low = high = (at, value)
        elif value < low[1]:
            low = (at, value)
        elif value > high[1]:  # high is set with low
            high = (at, value)
    kept.extend(_extremes(low, high, None))
    return kept


def _extremes(low: tuple | None, high: tuple | None, first_none: tuple | None) -> tuple:
    """What one bucket keeps: its lowest and highest samples in time order, else its first None."""
    if low is None or high is None:
        return () if first_none is None else (first_none,)
    if low is high:
        return (low,)
    return (low, high) if low[0] <= high[0] else (high, low)


def merge_periods(periods: list[tuple[datetime, datetime]], *, limit: int) -> list[tuple[datetime, datetime]]:
    """At most ``limit`` periods: beyond that, the periods either side of the shortest gaps become one."""
    if len(periods) <= limit:
        return periods
    by_gap = sorted(range(1, len(periods)), key=lambda index: (periods[index][0] - periods[index - 1][1], index))
    joined = set(by_gap[: len(periods) - limit])
    merged: list[tuple[datetime, datetime]] = []
    for index, (start, end) in enumerate(periods):
        if index in joined:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _temperature(room: Room, since: datetime, until: datetime, points: int) -> tuple[list[dict], int]:
    """The temperature series and how many readings it was made from."""
    if room.temperature_node_id is None or not room.temperature_endpoint:
        return [], 0
    # By its lagarto id (address.register.index): the (endpoint_id, -recorded_at) index then holds every row the
    # range needs, where (node, -recorded_at) would step over the node's other endpoints and read each row to tell.
    endpoint_id = (
        Reading.objects.filter(node_id=room.temperature_node_id, name=room.temperature_endpoint)
        .order_by("-recorded_at")
        .values_list("endpoint_id", flat=True)
        .first()
    )
    if endpoint_id is None:
        return [], 0
    readings = (
        Reading.objects.filter(
            endpoint_id=endpoint_id,
            node_id=room.temperature_node_id,
            recorded_at__gte=since,
            recorded_at__lt=until,
        )
        .order_by("recorded_at")
        .values_list(_StoredTime("recorded_at"), _StoredText("value"))
    )
    connection = connections[readings.db]
    times, stored = _columns(readings, connection, endpoint_id, room.temperature_node_id, since, until)
    if len(times) > points:
        edges = [_stored_edge(edge, connection) for edge in bucket_edges(since, until, points // 2)]
        samples = downsample_columns(times, stored, edges)
        if samples is None:  # a value that is not a plain finite number: the row-by-row pass reads each
            samples = downsample_readings(zip(times, stored, strict=True), edges)
    else:
        pairs = ((at, _number(text)) for at, text in zip(times, stored, strict=True))
        samples = [(at, value) for at, value in pairs if value is not None]
    return [{"at": _utc_text(_instant(at)), "value": value} for at, value in samples], len(times)


def _columns(
    readings, connection, endpoint_id: str, node_id: int, since: datetime, until: datetime
) -> tuple[Sequence[Any], Sequence[Any]]:
    """The readings' times and values (the queryset's two columns) as two lists in time order. On SQLite as two
    strings the database joins and Python splits: fetched a tuple a row, the 43,200 rows of 30 days took longer
    than the scan itself. Elsewhere, or when the joined strings will not do, the queryset's rows."""
    if connection.vendor == "sqlite":
        joined = _sqlite_joined_columns(connection, endpoint_id, node_id, since, until)
        if joined is not None:
            return joined
    sql, params = readings.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [row[0] for row in rows], [row[1] for row in rows]


def _sqlite_joined_columns(
    connection, endpoint_id: str, node_id: int, since: datetime, until: datetime
) -> tuple[list[str], list[str]] | None:
    """The range's times (SQLite's stored text) and values (JSON text) from one row of two ``group_concat``s, in
    time order; None when they cannot be split back (a value holding the comma) or came in no order of time (the
    concatenation follows the index scan, which SQLite does not promise)."""
    # "+node_id": not by the node's index (it holds the node's other endpoints too), by the endpoint's.
    sql = (
        "SELECT group_concat(recorded_at, ','), group_concat(value, ','), COUNT(*) "
        f"FROM {connection.ops.quote_name(Reading._meta.db_table)} "
        "WHERE endpoint_id = %s AND +node_id = %s AND recorded_at >= %s AND recorded_at < %s"
    )
    adapt = connection.ops.adapt_datetimefield_value
    params = [endpoint_id, node_id, adapt(since), adapt(until)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        joined_times, joined_values, count = cursor.fetchone()
    if not count:
        return [], []
    times, values = joined_times.split(","), joined_values.split(",")
    if not len(times) == len(values) == count:
        return None
    if times[0] > times[-1]:
        times.reverse()
        values.reverse()
    return (times, values) if times == sorted(times) else None


def downsample_columns(
    times: Sequence[Any], stored: Sequence[Any], edges: Sequence[Any]
) -> list[tuple[Any, float]] | None:
    """``downsample_readings``'s answer from the times and the stored values as two columns, computed by Python's
    built-ins rather than a Python loop over every reading: the values parsed by ``float``, each bucket found
    by bisecting the times, its lowest and highest by ``min``/``max`` and ``index`` (each the first of equals, as
    the loop keeps them). None when some value is not a plain finite number (a word, a number as a JSON string,
    1e400): the caller then uses ``downsample_readings``, which knows what to keep of those."""
    try:
        # Each distinct text parsed once: a thermometer's readings repeat a few hundred values (a third of the time).
        parsed = {text: float(text) for text in set(stored)}
    except (TypeError, ValueError):
        return None
    values = list(map(parsed.__getitem__, stored))
    total = sum(values)
    if total - total != 0:  # an infinity or NaN among them (or a sum past the float range: let the loop decide)
        return None
    kept: list[tuple[Any, float]] = []
    start = 0
    for end in [*(bisect_left(times, edge) for edge in edges), len(times)]:
        if end > start:
            bucket = values[start:end]
            low = start + bucket.index(min(bucket))
            high = start + bucket.index(max(bucket))
            if low == high:
                kept.append((times[low], values[low]))
            elif times[low] <= times[high]:
                kept += [(times[low], values[low]), (times[high], values[high])]
            else:
                kept += [(times[high], values[high]), (times[low], values[low])]
            start = end
    return kept


def _decisions(room: Room, since: datetime, until: datetime) -> tuple[tuple | None, list[tuple]]:
    """``(at, heat, target)`` of the decision in force at ``since`` (None before the first) and of those after it."""
    columns = (_StoredTime("at"), _Unconverted("heat"), "target")
    before = Decision.objects.filter(room=room, at__lt=since).order_by("-at", "-id").values_list(*columns).first()
    during = Decision.objects.filter(room=room, at__gte=since, at__lt=until).order_by("at", "id").values_list(*columns)
    return before, [(_instant(at), heat, target) for at, heat, target in during]


def _target(
    before: tuple | None,
    during: list[tuple],
    since: datetime,
    until: datetime,
    points: int,
    now: tuple[datetime, float | None] | None,
) -> list[dict]:
    """The recorded decisions' targets where they change, and ``now``'s (instant, target) when it differs from the
    last: a decision is recorded only when its outcome or reason changes (and hourly), so a target just set would
    otherwise show up to an hour late."""
    changes: list[tuple[datetime, float | None]] = []
    if before is not None:
        changes.append((since, before[2]))
    for at, _heat, target in during:
        if not changes or changes[-1][1] != target:
            changes.append((at, target))
    if now is not None and (not changes or changes[-1][1] != now[1]):
        changes.append(now)
    if len(changes) > points:
        changes = downsample(changes, bucket_edges(since, until, points // 2))
    return [{"at": _utc_text(at), "value": value} for at, value in changes]


def _heating(
    before: tuple | None, during: list[tuple], since: datetime, until: datetime, points: int, now: datetime
) -> list[dict]:
    periods: list[tuple[datetime, datetime]] = []
    started = since if before is not None and before[1] else None
    for at, heat, _target in during:
        if heat and started is None:
            started = at
        elif not heat and started is not None:
            periods.append((started, at))
            started = None
    if started is not None:  # still on: up to the end of the range, or now when the range reaches the future
        periods.append((started, max(started, min(until, now))))
    periods = merge_periods(periods, limit=points)
    return [{"start": _utc_text(start), "end": _utc_text(end)} for start, end in periods]


def room_history(
    room: Room, *, since: datetime, until: datetime, points: int = DEFAULT_POINTS, now: datetime | None = None
) -> dict:
    """``room``'s temperature, target and heater-on periods from ``since`` (inclusive) to ``until`` (exclusive),
    JSON-ready (UTC times), each series at most ``points`` long (``MIN_POINTS``..``MAX_POINTS``). ``now`` (default
    the clock's) is the present: a range from before it to it or later ends with the target that applies then."""
    if not MIN_POINTS <= points <= MAX_POINTS:
        raise ValueError(f"points must be from {MIN_POINTS} to {MAX_POINTS}, not {points!r}")
    if not since < until:
        raise ValueError("since must be before until")
    from heating.selectors import room_setpoint  # selectors.room_history imports this module

    now = now or timezone.now()
    temperature, readings = _temperature(room, since, until, points)
    before, during = _decisions(room, since, until)
    current = (now, room_setpoint(room, at=now).target) if since <= now <= until else None
    return {
        "room": room.slug,
        "since": format_utc(since),
        "until": format_utc(until),
        "points": points,
        "readings": readings,
        "downsampled": readings > len(temperature),
        "temperature": temperature,
        "target": _target(before, during, since, until, points, current),
        "heating": _heating(before, during, since, until, points, now),
    }
