"""``/v1/events``: the event log over the REST conventions; staff only, and a token also needs events:read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from messaging.event_store import events_store
from tests.messaging.consume_support import make_event

pytestmark = pytest.mark.django_db


MORNING = datetime(2026, 11, 28, 7, 30, tzinfo=UTC)


@pytest.fixture
def logged_events(db):
    events = [
        make_event(1, type="heating.reading", source="serial", occurred_at=MORNING),
        make_event(2, type="heating.node_seen", source="serial", occurred_at=MORNING + timedelta(minutes=1)),
        make_event(3, type="heatingx.other", source="script", occurred_at=MORNING + timedelta(minutes=2)),
        make_event(
            4,
            type="downloads.served",
            source="web",
            occurred_at=MORNING + timedelta(minutes=3),
            topics=("/events/downloads/served",),
        ),
    ]
    events_store(events=events)
    return events


@pytest.fixture
def staff_api(client, staff_user):
    client.force_login(staff_user)
    return client


def indexes(response):
    assert response.status_code == 200, response.content
    return [item["data"]["index"] for item in response.json()["results"]]


def test_staff_list_events_newest_first_in_the_hubs_format(staff_api, logged_events):
    response = staff_api.get("/v1/events")
    assert indexes(response) == [4, 3, 2, 1]
    newest = response.json()["results"][0]
    assert newest["id"] == str(logged_events[3].id)
    assert newest["type"] == "downloads.served"
    assert newest["occurred_at"] == "2026-11-28T07:33:00.000Z"
    assert newest["source"] == "web"
    assert newest["topics"] == ["/events/downloads/served"]
    assert newest["received_at"].endswith("Z")
    assert response.json()["total"] == 4


def test_filters_by_type_prefix_source_and_since_until_and_count_uses_them_too(staff_api, logged_events):
    assert indexes(staff_api.get("/v1/events?type=heating")) == [2, 1]
    assert indexes(staff_api.get("/v1/events?type=heating.reading")) == [1]
    assert indexes(staff_api.get("/v1/events?source=serial")) == [2, 1]
    window = "since=2026-11-28T07:31:00.000Z&until=2026-11-28T07:33:00.000Z"
    assert indexes(staff_api.get(f"/v1/events?{window}")) == [3, 2]
    assert staff_api.get(f"/v1/events/count?{window}").json() == {"count": 2}
    assert staff_api.get("/v1/events/count?type=heating&source=serial").json() == {"count": 2}
    bad = staff_api.get("/v1/events?since=yesterday")
    assert bad.status_code == 400
    assert "since" in bad.content.decode()


def test_one_event_by_id(staff_api, logged_events):
    response = staff_api.get(f"/v1/events/{logged_events[0].id}")
    assert response.status_code == 200
    assert response.json()["data"] == {"index": 1}
    assert staff_api.get("/v1/events/not-an-event").status_code == 404


def test_household_users_are_refused_and_anonymous_ones_must_sign_in(client, household_user, logged_events):
    assert client.get("/v1/events").status_code == 401
    client.force_login(household_user)
    assert client.get("/v1/events").status_code == 403
    assert client.get("/v1/events/count").status_code == 403


def test_a_staff_token_needs_events_read(client, staff_user, household_user, bearer, logged_events):
    assert client.get("/v1/events", headers=bearer(staff_user, "downloads:read")).status_code == 403
    assert indexes(client.get("/v1/events?type=downloads", headers=bearer(staff_user, "events:read"))) == [4]
    assert client.get("/v1/events/count", headers=bearer(staff_user, "read")).json() == {"count": 4}
    # The scope is not enough on its own: the user must be staff too.
    assert client.get("/v1/events", headers=bearer(household_user, "events:read")).status_code == 403
