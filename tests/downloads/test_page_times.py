"""Machine times on the Downloads page are sent in UTC whatever the house's zone; the page names that zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User

from downloads.models import DownloadEvent
from downloads.services import link_create


@pytest.fixture
def staff_client(client, customer):
    client.force_login(User.objects.create_user("stella", is_staff=True))
    return client


def test_times_are_utc_for_the_browser_to_show_in_the_viewers_zone(staff_client, customer, downloads_root, settings):
    settings.TIME_ZONE = "Europe/Berlin"  # HUB_TIME_ZONE: 23:30 UTC is already the next day in Berlin
    link = link_create(
        customer=customer, path="dir1/example1.txt", expires_at=datetime(2099, 12, 24, 23, 30, tzinfo=UTC)
    )
    DownloadEvent.objects.create(
        link=link,
        customer="acme",
        path=link.path,
        status=200,
        outcome="served",
        at=datetime(2099, 1, 1, 23, 0, 5, tzinfo=UTC),
    )
    html = staff_client.get("/downloads/").content.decode()
    assert 'data-house-zone="Europe/Berlin"' in html
    # Without JavaScript the text stays a plain, labelled UTC time; static/js/time.js rewrites it in place.
    assert '<time datetime="2099-12-24T23:30:00Z" data-style="minute">2099-12-24 23:30 UTC</time>' in html
    assert '<time datetime="2099-01-01T23:00:05Z">2099-01-01 23:00:05 UTC</time>' in html
    assert re.search(r'<script src="/static/js/time\.js"></script>', html)
