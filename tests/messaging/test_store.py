"""The event log's writes and reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from messaging.event_store import events_store
from messaging.models import Event as StoredEvent
from messaging.selectors import events_filter
from tests.messaging.consume_support import make_event

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

MORNING = datetime(2026, 11, 28, 7, 30, tzinfo=UTC)


def test_storing_a_batch_twice_keeps_each_event_once_and_the_first_copy():
    first = [make_event(i) for i in range(5)]
    events_store(events=first)
    replayed = [make_event(99, id=first[2].id), make_event(5)]
    events_store(events=replayed)

    assert StoredEvent.objects.count() == 6
    assert StoredEvent.objects.get(id=first[2].id).data == {"index": 2}


def test_a_stored_event_keeps_its_envelope_fields_topics_and_receipt_time():
    event = make_event(
        3,
        type="heating.reading",
        source="serial",
        topics=("/home/hall/measure/2.11.0",),
        data={"celsius": 21.5, "node": 2},
    )
    before = datetime.now(UTC)
    events_store(events=[event])

    stored = StoredEvent.objects.get(id=event.id)
    assert (stored.type, stored.source, stored.occurred_at) == ("heating.reading", "serial", MORNING)
    assert stored.data == {"celsius": 21.5, "node": 2}
    assert stored.topics == ["/home/hall/measure/2.11.0"]
    assert stored.received_at >= before


def test_events_filter_by_type_prefix_source_and_half_open_time_range():
    events_store(
        events=[
            make_event(1, type="heating.reading", source="serial", occurred_at=MORNING),
            make_event(2, type="heating.node_seen", source="serial", occurred_at=MORNING + timedelta(minutes=1)),
            make_event(3, type="heatingx.other", source="serial", occurred_at=MORNING + timedelta(minutes=2)),
            make_event(4, type="downloads.served", source="web", occurred_at=MORNING + timedelta(minutes=3)),
        ]
    )

    def indexes(**filters):
        return [event.data["index"] for event in events_filter(**filters)]

    assert indexes() == [4, 3, 2, 1]  # newest first
    assert indexes(type_prefix="heating") == [2, 1]  # whole dotted segments: not "heatingx.other"
    assert indexes(type_prefix="heating.reading") == [1]
    assert indexes(source="web") == [4]
    assert indexes(since=MORNING + timedelta(minutes=1), until=MORNING + timedelta(minutes=3)) == [3, 2]
