"""Reads of the event log."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from messaging.models import Event, OutboxEvent


def events_filter(
    *,
    type_prefix: str | None = None,
    source: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    exclude_types: tuple[str, ...] = (),
) -> QuerySet[Event]:
    """Events newest first; ``type_prefix`` matches whole dotted segments (``heating`` → ``heating.reading``);
    ``exclude_types`` leaves out events of exactly those types."""
    events = Event.objects.all()
    if exclude_types:
        events = events.exclude(type__in=exclude_types)
    if type_prefix:
        prefix = type_prefix.rstrip(".")
        events = events.filter(type=prefix) | events.filter(type__startswith=f"{prefix}.")
    if source:
        events = events.filter(source=source)
    if since is not None:
        events = events.filter(occurred_at__gte=since)
    if until is not None:
        events = events.filter(occurred_at__lt=until)
    return events.order_by("-occurred_at", "id")


# --- The outbox (read by the relay and the health report) ------------------------------------------------


#: What the relay reads of an outbox row (a named tuple with these attributes, not a model instance).
OUTBOX_BATCH_FIELDS = ("id", "event_id", "type", "occurred_at", "source", "data", "topics", "retain")


def outbox_batch(*, limit: int) -> list:
    """The oldest waiting rows in publishing order, as named tuples of :data:`OUTBOX_BATCH_FIELDS`: making a
    model instance of each cost as much as reading it, for every event the hub publishes (in the embedded default a
    small download's event: docs/downloads.md#why-it-is-fast-the-download-path-before-django)."""
    return list(OutboxEvent.objects.order_by("id").values_list(*OUTBOX_BATCH_FIELDS, named=True)[:limit])


def outbox_backlog() -> tuple[int, datetime | None]:
    """How many rows wait, and when the oldest of them was written."""
    from django.db.models import Count, Min

    summary = OutboxEvent.objects.aggregate(count=Count("id"), oldest=Min("created_at"))
    return summary["count"], summary["oldest"]
