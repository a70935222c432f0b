"""The downloads admin flow in a real browser: create a link, copy its URL with the button, fetch the file."""

from __future__ import annotations

import re
import shutil

import pytest
from django.conf import settings as django_settings
from playwright.sync_api import expect

from tests.browser.support import PASSWORD, login


@pytest.fixture
def a_file_in_the_downloads_root():
    # The server under test was built at session start, so it serves the configured DOWNLOADS_ROOT.
    folder = django_settings.DOWNLOADS_ROOT / "browser-test"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manual.txt").write_text("the manual\n")
    yield "browser-test/manual.txt"
    shutil.rmtree(folder)


def test_an_admin_creates_a_link_copies_its_url_and_the_url_downloads_the_file(
    new_page, hub_server, settings, a_file_in_the_downloads_root, monkeypatch
):
    from django.contrib.auth.models import User

    from downloads import audit
    from downloads.models import DownloadEvent

    # The server's audit writer starts on the first download; this one is stopped (and flushed) with the test.
    writer = audit.AuditWriter(flush_interval=0.05)
    monkeypatch.setattr(audit, "writer", writer)

    from downloads.models import DownloadLink
    from downloads.services import customer_create

    settings.HUB_PUBLIC_URL = hub_server  # links point at the server under test
    customer_create(slug="acme", name="ACME Corp")
    admin_user = User.objects.create_superuser("root", password=PASSWORD)
    page = new_page(permissions=["clipboard-read", "clipboard-write"])
    login(page, admin_user)

    page.goto("/admin/downloads/downloadlink/add/")
    page.locator("select[name=customer]").select_option(label="ACME Corp (acme)")
    # The file comes from a chooser listing the downloads root, not a free-text field.
    page.locator("select[name=path]").select_option(a_file_in_the_downloads_root)
    expect(page.locator("input[name=expires_at_0]")).not_to_have_value("")  # the default expiry is filled in
    page.locator("input[name=max_downloads]").fill("5")
    page.locator("input[name=_save]").click()

    expect(page).to_have_url(re.compile(r"/admin/downloads/downloadlink/\d+/change/$"))
    url_field = page.locator("#download-link-url")
    url = url_field.input_value()
    assert url.startswith(hub_server + "/dl/")
    assert url.endswith("/acme/" + url.split("/acme/")[1])
    page.locator("#copy-download-link").click()
    expect(page.locator("#copy-download-link")).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == url

    fetched = page.evaluate(
        """async (url) => {
            const response = await fetch(url);
            return {status: response.status, body: await response.text(),
                    disposition: response.headers.get("content-disposition")};
        }""",
        copied,
    )
    assert fetched == {"status": 200, "body": "the manual\n", "disposition": 'attachment; filename="manual.txt"'}
    link = DownloadLink.objects.get()
    assert (link.path, link.max_downloads, link.created_by.username) == (a_file_in_the_downloads_root, 5, "root")
    writer.stop()
    event = DownloadEvent.objects.get()
    assert (event.link_id, event.status, event.bytes_sent) == (link.pk, 200, len("the manual\n"))
