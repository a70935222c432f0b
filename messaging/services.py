"""Writes of the event bus's publishing half: the outbox that ``messaging.publish`` fills and the relay drains."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from hub import wakeups
from messaging.envelope import Event, new_event
from messaging.models import OutboxEvent

#: The wake-up signal a commit that wrote outbox rows sends (the relay registers for it: ``hub.wakeups``).
OUTBOX_WRITTEN = "messaging.outbox_written"


def event_publish(
    *,
    type: str,
    data: Any,
    source: str,
    topics: Iterable[str] = (),
    retain: bool = False,
    occurred_at: datetime | None = None,
) -> uuid.UUID:
    """Write the event to the outbox in the caller's transaction; the relay publishes it once that commits."""
    event = new_event(type, data, source=source, topics=topics, retain=retain, occurred_at=occurred_at)
    return events_publish(events=[event])[0]


def events_publish(*, events: Sequence[Event]) -> list[uuid.UUID]:
    """:func:`event_publish` for a burst of events built with ``new_event``: one insert instead of one per event.

    One INSERT per event was three quarters of the cost of storing a burst of radio readings (bench/heating.py).
    On PostgreSQL the rows go in by COPY: ``bulk_create``'s UNNEST spent most of its time quoting the JSON texts
    into array literals in Python, and was two thirds of the download audit's cost per attempt (bench/
    download_audit.py). On SQLite (the embedded default) one ``executemany`` of plain rows: ``bulk_create`` turned
    each field of each row into SQL one call at a time, two thirds of a small download's audit there (~60 µs of
    ~90 µs an attempt, docs/downloads.md#why-it-is-fast-the-download-path-before-django).
    """
    if connection.vendor == "postgresql":
        _outbox_copy(events)
    elif connection.vendor == "sqlite":
        _outbox_executemany(events)
    else:
        OutboxEvent.objects.bulk_create([_outbox_row(event) for event in events], batch_size=500)
    if events:
        # Wakes an idle relay in this process (the embedded default) instead of leaving the event to its next poll.
        transaction.on_commit(partial(wakeups.wake, OUTBOX_WRITTEN))
    return [event.id for event in events]


_OUTBOX_COLUMNS = (
    "event_id",
    "type",
    "occurred_at",
    "source",
    "data",
    "topics",
    "retain",
    "created_at",
    "attempts",
    "last_error",
)


def _outbox_copy(events: Sequence[Event]) -> None:
    """The rows ``bulk_create`` would write, by one COPY (in the caller's transaction, in order: ids follow it)."""
    if not events:
        return
    quote = connection.ops.quote_name
    columns = _OUTBOX_COLUMNS
    now = timezone.now()
    with connection.cursor() as cursor:
        copy_sql = f"COPY {quote(OutboxEvent._meta.db_table)} ({', '.join(map(quote, columns))}) FROM STDIN"
        with cursor.cursor.copy(copy_sql) as copy:
            for event in events:
                copy.write_row(
                    (
                        event.id,
                        event.type,
                        event.occurred_at,
                        event.source,
                        json.dumps(event.data),
                        json.dumps(list(event.topics)) if event.topics else "[]",
                        event.retain,
                        now,
                        0,
                        "",
                    )
                )


def _outbox_executemany(events: Sequence[Event]) -> None:
    """SQLite: the rows ``bulk_create`` would write, in the values Django's fields give SQLite (a UUID's hex, a
    naive UTC time's text, JSON text), by one ``executemany`` in order (ids follow it)."""
    if not events:
        return
    ops = connection.ops
    adapt_time = sqlite_time_adapter()
    now = adapt_time(timezone.now())
    sql = (
        f"INSERT INTO {ops.quote_name(OutboxEvent._meta.db_table)} ({', '.join(map(ops.quote_name, _OUTBOX_COLUMNS))})"
        f" VALUES ({', '.join(['%s'] * len(_OUTBOX_COLUMNS))})"
    )
    dumps = json.dumps
    rows = [
        (
            event.id.hex,
            event.type,
            adapt_time(event.occurred_at),
            event.source,
            dumps(event.data),
            dumps(list(event.topics)),
            bool(event.retain),
            now,
            0,
            "",
        )
        for event in events
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def sqlite_time_adapter():
    """SQLite's text for an aware time, as ``connection.ops.adapt_datetimefield_value`` writes it (the naive time
    in the connection's zone, ``str()``-ed), with its checks skipped for a time already in that zone."""
    django_adapt = connection.ops.adapt_datetimefield_value
    zone = connection.timezone

    def adapt(value: datetime):
        if value.tzinfo is zone and zone is not None:
            return str(value.replace(tzinfo=None))
        return django_adapt(value)

    return adapt


def _outbox_row(event: Event) -> OutboxEvent:
    return OutboxEvent(
        event_id=event.id,
        type=event.type,
        occurred_at=event.occurred_at,
        source=event.source,
        data=event.data,
        topics=list(event.topics),
        retain=event.retain,
    )


def outbox_published_delete(*, row_ids: Sequence[int]) -> int:
    """Remove rows the broker confirmed; exactly these ids (a lower id may have committed late and still wait)."""
    if not row_ids:
        return 0
    deleted, _ = OutboxEvent.objects.filter(id__in=row_ids).delete()
    return deleted


def outbox_failure_record(*, row_ids: Sequence[int], error: str) -> None:
    """Note a failed attempt on rows that stay in the outbox (shown in the admin and the health report)."""
    if row_ids:
        OutboxEvent.objects.filter(id__in=row_ids).update(attempts=F("attempts") + 1, last_error=error[:2000])
