"""A customer opening a refused download link on a phone: a readable page that says why, not a line of monospace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from playwright.sync_api import expect

from tests.browser.support import PHONE_390


@pytest.fixture
def link_for(hub_server, settings, monkeypatch):
    """``link_for(**link_create kwargs)`` → the URL of a link to a file in the served downloads root."""
    from downloads import audit
    from downloads.services import customer_create, link_create

    # The server's audit writer starts on the first download; this one is stopped (and flushed) with the test.
    monkeypatch.setattr(audit, "writer", audit.AuditWriter(flush_interval=0.05))
    settings.HUB_PUBLIC_URL = hub_server
    folder = django_settings.DOWNLOADS_ROOT / "refusal-page"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manual.txt").write_text("the manual\n")
    customer = customer_create(slug="acme", name="ACME Corp")
    customer.time_zone = "Asia/Tokyo"
    customer.save()

    def make(**kwargs):
        from downloads.selectors import link_url

        return link_create(customer=customer, path="refusal-page/manual.txt", **kwargs), link_url

    yield make
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()


def test_a_revoked_link_on_a_phone_says_so_on_a_page_that_fits(new_page, link_for):
    from downloads.services import link_revoke

    link, link_url = link_for(expires_at=datetime.now(UTC) + timedelta(days=7))
    link_revoke(link=link)
    page = new_page(PHONE_390, is_mobile=True, has_touch=True)
    response = page.goto(link_url(link))
    assert response.status == 410
    expect(page.get_by_role("heading", level=1)).to_have_text("Link revoked")
    expect(page.locator("main")).to_contain_text("has been withdrawn by its sender and no longer works")
    # It fits the phone: nothing wider than the screen, text at a readable size.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_390["width"]
    assert page.evaluate("parseFloat(getComputedStyle(document.querySelector('main p')).fontSize)") >= 16


def test_an_expired_link_on_a_phone_shows_when_it_expired_in_the_customers_zone(new_page, link_for):
    now = datetime.now(UTC)
    expired = now - timedelta(days=1)
    link, link_url = link_for(expires_at=expired, now=now - timedelta(days=2))
    page = new_page(PHONE_390, is_mobile=True, has_touch=True)
    response = page.goto(link_url(link))
    assert response.status == 410
    expect(page.get_by_role("heading", level=1)).to_have_text("Link expired")
    tokyo = link.expires_at.astimezone(ZoneInfo("Asia/Tokyo"))
    expect(page.locator(".when")).to_contain_text(f"{tokyo.hour:02d}:{tokyo.minute:02d} (Asia/Tokyo, JST)")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_390["width"]
