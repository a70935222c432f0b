"""Periodic work of the event log (scheduled in ``CELERY_BEAT_SCHEDULE``)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from messaging.event_store import events_prune


@shared_task(name="messaging.prune_events")
def prune_events() -> int:
    """Delete events older than ``EVENTS_RETENTION_DAYS``; idempotent (a second run finds nothing left to delete)."""
    cutoff = timezone.now() - timedelta(days=settings.EVENTS_RETENTION_DAYS)
    return events_prune(older_than=cutoff)
