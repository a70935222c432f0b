"""The dashboard's Events page: staff see the event log, newest first, filtered; others are kept out."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group, User

from messaging.event_store import events_store
from messaging.views import EVENTS_PER_PAGE
from tests.messaging.consume_support import make_event

pytestmark = pytest.mark.django_db

MORNING = datetime(2026, 11, 28, 7, 30, tzinfo=UTC)


@pytest.fixture
def staff_page(client):
    user = User.objects.create_user("bob", password="plum-orchard-velvet-42")
    user.groups.add(Group.objects.get(name="staff"))
    client.force_login(user)
    return client


def rows(response) -> list[str]:
    html = response.content.decode()
    return [chunk.split("</code>")[0] for chunk in html.split("<td><code>")[1:]]


def test_staff_see_events_newest_first_with_the_whole_envelope(staff_page):
    events_store(
        events=[
            make_event(1, type="heating.reading", source="serial", occurred_at=MORNING, data={"celsius": 21.5}),
            make_event(2, type="downloads.served", source="web", occurred_at=MORNING + timedelta(minutes=1)),
        ]
    )
    response = staff_page.get("/events/?noisy=show")
    assert response.status_code == 200
    html = response.content.decode()
    assert rows(response) == ["downloads.served", "heating.reading"]
    assert "2026-11-28T07:30:00.000Z" in html
    assert "&quot;celsius&quot;: 21.5" in html  # the pretty-printed envelope under each row
    assert 'aria-current="page"\n               href="/events/">Events</a>' in html  # the navigation marks it
    assert "has not landed yet" not in html


def test_filters_and_a_bad_time_is_shown_not_a_crash(staff_page):
    events_store(
        events=[
            make_event(1, type="heating.reading", source="serial", occurred_at=MORNING),
            make_event(2, type="heatingx.other", source="serial", occurred_at=MORNING + timedelta(minutes=1)),
            make_event(3, type="heating.node_seen", source="sim", occurred_at=MORNING + timedelta(minutes=2)),
        ]
    )
    assert rows(staff_page.get("/events/?type=heating&noisy=show")) == ["heating.node_seen", "heating.reading"]
    assert rows(staff_page.get("/events/?type=heating&source=serial&noisy=show")) == ["heating.reading"]
    window = "since=2026-11-28T07:31:00.000Z&until=2026-11-28T07:32:00.000Z"
    assert rows(staff_page.get(f"/events/?{window}")) == ["heatingx.other"]
    response = staff_page.get("/events/?since=yesterday")
    assert response.status_code == 200
    assert "is-invalid" in response.content.decode()
    assert "not an ISO 8601 time" in response.content.decode()


def test_pages_keep_the_filters(staff_page):
    events_store(events=[make_event(i, occurred_at=MORNING + timedelta(seconds=i)) for i in range(EVENTS_PER_PAGE + 5)])
    first = staff_page.get("/events/?type=test")
    assert len(rows(first)) == EVENTS_PER_PAGE
    assert "?type=test&amp;page=2" in first.content.decode()
    assert len(rows(staff_page.get("/events/?type=test&page=2"))) == 5


def test_household_members_get_a_403_and_visitors_the_login_page(client):
    assert client.get("/events/")["Location"] == "/login/?next=/events/"
    user = User.objects.create_user("alice", password="plum-orchard-velvet-42")
    user.groups.add(Group.objects.get(name="household"))
    client.force_login(user)
    assert client.get("/events/").status_code == 403


def test_readings_are_hidden_unless_asked_for_and_the_page_says_so(staff_page):
    events_store(
        events=[
            make_event(1, type="heating.reading", source="serial", occurred_at=MORNING),
            make_event(2, type="heating.node_seen", source="serial", occurred_at=MORNING + timedelta(minutes=1)),
            make_event(3, type="heating.reading_batch", source="serial", occurred_at=MORNING + timedelta(minutes=2)),
        ]
    )
    hidden = staff_page.get("/events/")
    assert rows(hidden) == ["heating.reading_batch", "heating.node_seen"], "only heating.reading itself is hidden"
    html = hidden.content.decode()
    assert 'data-testid="noisy-hidden"' in html
    assert 'name="noisy" value="show">' in html, "the checkbox is there, unticked"
    assert rows(staff_page.get("/events/?type=heating")) == ["heating.reading_batch", "heating.node_seen"]
    shown = staff_page.get("/events/?noisy=show")
    assert rows(shown) == ["heating.reading_batch", "heating.node_seen", "heating.reading"]
    assert 'value="show" checked>' in shown.content.decode()
    assert 'data-testid="noisy-hidden"' not in shown.content.decode()
    # Asking for the type by name shows it without the checkbox; "heating.*" is the prefix "heating".
    assert rows(staff_page.get("/events/?type=heating.reading")) == ["heating.reading"]
    assert rows(staff_page.get("/events/?type=heating.*&noisy=show")) == rows(shown)


def test_a_rooms_retained_state_updates_are_hidden_like_readings(staff_page):
    events_store(
        events=[
            make_event(1, type="heating.room_state", source="heating", occurred_at=MORNING, data=21.5),
            make_event(2, type="heating.room_changed", source="heating", occurred_at=MORNING + timedelta(minutes=1)),
        ]
    )
    assert rows(staff_page.get("/events/")) == ["heating.room_changed"]
    assert rows(staff_page.get("/events/?noisy=show")) == ["heating.room_changed", "heating.room_state"]
    assert rows(staff_page.get("/events/?type=heating.room_state")) == ["heating.room_state"]


def test_filter_hints_are_placeholders_that_cannot_pass_for_values(staff_page):
    html = staff_page.get("/events/").content.decode()
    placeholders = re.findall(r'placeholder="([^"]*)"', html)
    assert len(placeholders) == 4
    assert all(hint.startswith("e.g. ") for hint in placeholders), placeholders
    for field in ("type", "source", "since", "until"):
        assert f'<label for="filter-{field}"' in html, f"{field} has a visible label"
        assert re.search(rf'id="filter-{field}"\s+name="{field}" value=""', html), "an empty field holds no value"


def test_the_hints_work_when_typed(staff_page):
    events_store(events=[make_event(1, type="heating.node_seen", source="serial", occurred_at=MORNING)])
    typed = "type=heating.*&source=serial&since=2026-11-28T07:30Z&until=2026-11-29T00:00Z"
    response = staff_page.get(f"/events/?{typed}")
    assert "is-invalid" not in response.content.decode()
    assert rows(response) == ["heating.node_seen"]
