"""Retention: the beat task prunes events older than EVENTS_RETENTION_DAYS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from messaging.event_store import events_store
from messaging.models import Event as StoredEvent
from messaging.tasks import prune_events
from tests.messaging.consume_support import make_event


@pytest.mark.django_db
def test_prune_events_deletes_only_events_older_than_the_retention_and_is_idempotent(settings):
    settings.EVENTS_RETENTION_DAYS = 30
    now = datetime.now(UTC)
    old = [make_event(i, occurred_at=now - timedelta(days=31, minutes=i)) for i in range(3)]
    recent = [make_event(10, occurred_at=now - timedelta(days=29)), make_event(11, occurred_at=now)]
    events_store(events=old + recent)

    assert prune_events.delay().get() == 3
    assert set(StoredEvent.objects.values_list("id", flat=True)) == {event.id for event in recent}
    assert prune_events() == 0  # running it again (beat fires twice, a retry) changes nothing
    assert StoredEvent.objects.count() == 2


@pytest.mark.django_db
def test_pruning_works_through_more_rows_than_one_batch():
    from messaging.event_store import events_prune

    cutoff = datetime(2026, 1, 1, tzinfo=UTC)
    events_store(events=[make_event(i, occurred_at=cutoff - timedelta(seconds=i + 1)) for i in range(25)])
    assert events_prune(older_than=cutoff, batch_size=10) == 25
    assert StoredEvent.objects.count() == 0


def test_prune_events_is_on_the_beat_schedule():
    entry = settings.CELERY_BEAT_SCHEDULE["messaging.prune_events"]
    assert entry["task"] == prune_events.name
    assert entry["schedule"] <= 24 * 3600
