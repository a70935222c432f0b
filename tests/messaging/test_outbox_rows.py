"""The outbox rows a burst of events becomes are the same whichever way they are written."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from messaging.envelope import new_event
from messaging.models import OutboxEvent
from messaging.services import _outbox_row, events_publish

pytestmark = pytest.mark.django_db


def _raw_rows(ids) -> list[tuple]:
    # As stored, column by column: what the relay and any other reader of the table get back.
    columns = "event_id, type, occurred_at, source, data, topics, retain, attempts, last_error"
    table = connection.ops.quote_name(OutboxEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {table} WHERE id IN ({', '.join(['%s'] * len(ids))}) ORDER BY id", ids)
        return cursor.fetchall()


def test_events_publish_stores_what_the_orm_stores_in_order():
    at = datetime(2026, 12, 5, 18, 30, 1, 123000, tzinfo=UTC)
    events = [
        new_event(
            "downloads.served", {"link": 7, "ip": "203.0.113.9", "path": "dir 1/ü.pdf"}, source="t", occurred_at=at
        ),
        new_event(
            "heating.reading", {"value": 20.5}, source="t", topics=["/rooms/living"], retain=True, occurred_at=at
        ),
        new_event("x.empty", {}, source="t"),
        # A time in another zone (not what publish makes, but what the table must store the same way).
        replace(new_event("x.zoned", {}, source="t"), occurred_at=at.astimezone(ZoneInfo("Europe/Madrid"))),
    ]
    twins = [
        new_event(event.type, event.data, source="t", topics=event.topics, retain=event.retain) for event in events
    ]
    twins = [replace(twin, occurred_at=event.occurred_at) for twin, event in zip(twins, events, strict=True)]

    assert events_publish(events=events) == [event.id for event in events]
    fast = list(OutboxEvent.objects.filter(event_id__in=[event.id for event in events]))
    OutboxEvent.objects.bulk_create([_outbox_row(twin) for twin in twins])
    orm = list(OutboxEvent.objects.filter(event_id__in=[twin.id for twin in twins]))

    assert [row.event_id for row in fast] == [event.id for event in events]  # ids follow the order given
    fast_raw, orm_raw = _raw_rows([row.id for row in fast]), _raw_rows([row.id for row in orm])
    # Column by column equal but for the event ids, which differ by construction.
    assert [row[1:] for row in fast_raw] == [row[1:] for row in orm_raw]
    assert [row.data for row in fast] == [event.data for event in events]
    assert [row.topics for row in fast] == [list(event.topics) for event in events]
    assert [row.retain for row in fast] == [False, True, False, False]
    assert fast[3].occurred_at == at
    assert all(row.created_at is not None and row.attempts == 0 and row.last_error == "" for row in fast)


def test_the_event_log_stores_what_the_orm_stores_and_each_id_once():
    from messaging.event_store import _row, events_store
    from messaging.models import Event

    at = datetime(2026, 12, 5, 18, 30, 1, 123000, tzinfo=UTC)
    events = [
        new_event("downloads.refused", {"link": None, "path": "ü/x.bin"}, source="t", occurred_at=at),
        new_event("heating.reading", {"value": 20.5}, source="t", topics=["/rooms/living"], occurred_at=at),
    ]
    twins = [
        replace(new_event(event.type, event.data, source="t", topics=event.topics), occurred_at=at) for event in events
    ]
    events_store(events=events)
    events_store(events=events[:1])  # delivered again: stored once
    Event.objects.bulk_create([_row(twin) for twin in twins])

    columns = "type, occurred_at, source, data, topics"
    table = connection.ops.quote_name(Event._meta.db_table)

    def raw(ids):
        # The ids as the column holds them (hex text on SQLite, uuid on PostgreSQL), read back without the ORM.
        keys = [Event._meta.pk.get_db_prep_value(value, connection) for value in ids]
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {columns} FROM {table} WHERE id IN (%s, %s)", keys)
            return sorted(cursor.fetchall(), key=lambda row: row[0])

    assert Event.objects.count() == 4
    assert len(raw([event.id for event in events])) == 2
    assert raw([event.id for event in events]) == raw([twin.id for twin in twins])
    stored = {event.id: event for event in Event.objects.filter(id__in=[event.id for event in events])}
    assert [stored[event.id].data for event in events] == [event.data for event in events]
    assert [stored[event.id].occurred_at for event in events] == [at, at]
    assert all(row.received_at is not None for row in stored.values())
