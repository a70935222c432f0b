"""Writes to the event log (the ``Event`` table): what the ``events.db`` consumer and the retention task call."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from messaging import envelope
from messaging.models import Event, OutboxEvent


def events_store(*, events: Sequence[envelope.Event]) -> None:
    """Store ``events`` in one transaction, each id at most once (a redelivered event is silently skipped)."""
    if not events:
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            _insert_postgresql(events)
        elif connection.vendor == "sqlite":
            _insert_sqlite(events)
        else:
            # ON CONFLICT DO NOTHING: idempotent by primary key, one statement a batch.
            Event.objects.bulk_create([_row(event) for event in events], ignore_conflicts=True)


def outbox_events_store(*, events: Sequence[envelope.Event], row_ids: Sequence[int]) -> None:
    """Store ``events`` and delete their outbox rows in ONE transaction: the relay's path when its transport has
    no publisher confirms (kombu's ``memory://`` in the embedded default). An event then leaves the outbox only
    with its copy in the event log, so a kill at any moment finds each event in exactly one of the two."""
    with transaction.atomic():
        events_store(events=events)
        OutboxEvent.objects.filter(id__in=row_ids).delete()


def _row(event: envelope.Event) -> Event:
    return Event(
        id=event.id,
        type=event.type,
        occurred_at=event.occurred_at,
        source=event.source,
        data=event.data,
        topics=list(event.topics),
    )


_POSTGRESQL_INSERT = """
INSERT INTO {table} (id, type, occurred_at, source, data, topics, received_at)
SELECT batch.*, %s FROM unnest(%s::uuid[], %s::varchar[], %s::timestamptz[], %s::varchar[],
                                %s::text[]::jsonb[], %s::text[]::jsonb[]) AS batch
ON CONFLICT (id) DO NOTHING
"""


def _insert_sqlite(events: Sequence[envelope.Event]) -> None:
    """``bulk_create(ignore_conflicts=True)``'s INSERT OR IGNORE as one ``executemany`` of the values Django's
    fields give SQLite (a UUID's hex, a naive UTC time's text, JSON text): the ORM turning each field of each row
    into SQL cost more than the rest of the embedded relay's work for a download's event
    (docs/downloads.md#why-it-is-fast-the-download-path-before-django)."""
    from messaging.services import sqlite_time_adapter

    ops = connection.ops
    adapt_time = sqlite_time_adapter()
    received_at = adapt_time(timezone.now())
    columns = ("id", "type", "occurred_at", "source", "data", "topics", "received_at")
    sql = (
        f"INSERT OR IGNORE INTO {ops.quote_name(Event._meta.db_table)} ({', '.join(map(ops.quote_name, columns))})"
        f" VALUES ({', '.join(['%s'] * len(columns))})"
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
            received_at,
        )
        for event in events
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _insert_postgresql(events: Sequence[envelope.Event]) -> None:
    """The same insert as ``bulk_create(ignore_conflicts=True)``, but as seven array parameters instead of seven
    placeholders per row: compiling and adapting a 3,500-parameter statement cost the ORM more than the broker
    costs, and halved the consumer's rate (docs/benchmarks.md)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _POSTGRESQL_INSERT.format(table=connection.ops.quote_name(Event._meta.db_table)),
            [
                timezone.now(),
                [event.id for event in events],
                [event.type for event in events],
                [event.occurred_at for event in events],
                [event.source for event in events],
                [json.dumps(event.data) for event in events],
                [json.dumps(list(event.topics)) for event in events],
            ],
        )


def events_prune(*, older_than: datetime, batch_size: int = 5000) -> int:
    """Delete events that occurred before ``older_than`` in bounded batches (no long lock); return how many."""
    deleted_total = 0
    while True:
        ids = list(Event.objects.filter(occurred_at__lt=older_than).values_list("id", flat=True)[:batch_size])
        if not ids:
            return deleted_total
        deleted, _ = Event.objects.filter(id__in=ids).delete()
        deleted_total += deleted
