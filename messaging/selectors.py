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


def outbox_batch(*, limit: int) -> list[OutboxEvent]:
    """The oldest waiting rows in publishing order."""
    return list(OutboxEvent.objects.order_by("id")[:limit])


def outbox_backlog() -> tuple[int, datetime | None]:
    """How many rows wait, and when the oldest of them was written."""
    from django.db.models import Count, Min

    summary = OutboxEvent.objects.aggregate(count=Count("id"), oldest=Min("created_at"))
    return summary["count"], summary["oldest"]
