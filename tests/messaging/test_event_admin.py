"""The event log and the outbox in the Django admin: listed, filtered, searched, never edited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from messaging.event_store import events_store
from tests.messaging.consume_support import make_event

pytestmark = pytest.mark.django_db

MORNING = datetime(2026, 11, 28, 7, 30, tzinfo=UTC)


@pytest.fixture
def logged(db):
    events = [
        make_event(1, type="heating.reading", source="serial", occurred_at=MORNING, data={"celsius": 19.75}),
        make_event(2, type="downloads.served", source="web", occurred_at=MORNING + timedelta(minutes=1)),
    ]
    events_store(events=events)
    return events


def test_the_event_list_shows_type_time_source_and_receipt_and_filters_by_type_prefix(admin_client, logged):
    response = admin_client.get("/admin/messaging/event/")
    html = response.content.decode()
    assert "heating.reading" in html
    assert "downloads.served" in html
    columns = [name for name in response.context["cl"].list_display if name != "action_checkbox"]
    assert columns == ["type", "occurred_at", "source", "received_at"]
    filtered = admin_client.get("/admin/messaging/event/?type_prefix=heating").content.decode()
    assert "heating.reading" in filtered
    assert "downloads.served" not in filtered
    searched = admin_client.get(f"/admin/messaging/event/?q={logged[1].id}").content.decode()
    assert "downloads.served" in searched
    assert "heating.reading" not in searched


def test_an_event_is_shown_read_only_with_its_data_and_cannot_be_added_changed_or_deleted(admin_client, logged):
    page = admin_client.get(f"/admin/messaging/event/{logged[0].id}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "&quot;celsius&quot;: 19.75" in html
    assert 'name="type"' not in html  # no input: nothing to edit
    assert admin_client.get("/admin/messaging/event/add/").status_code == 403
    assert admin_client.post(f"/admin/messaging/event/{logged[0].id}/delete/", {"post": "yes"}).status_code == 403


def test_the_outbox_is_listed_too(admin_client):
    from messaging.models import OutboxEvent

    OutboxEvent.objects.create(
        event_id=make_event().id, type="heating.reading", occurred_at=MORNING, source="serial", data={}, attempts=3
    )
    html = admin_client.get("/admin/messaging/outboxevent/").content.decode()
    assert "heating.reading" in html
    assert admin_client.get("/admin/messaging/outboxevent/add/").status_code == 403
