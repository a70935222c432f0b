"""The downloads admin in a real browser: create a link, copy its URL, fetch the file; upload a file into a link; the
state badges' colours and their WCAG contrast, also after revoking from the link's page."""

from __future__ import annotations

import re
import shutil

import pytest
from django.conf import settings as django_settings
from playwright.sync_api import expect

from tests.browser.support import PASSWORD, login
from tests.support.waiting import wait_for


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
    # The server audits the fetch after its answer: wait for the row (the writer flushes every 0.05 s), then stop.
    event = wait_for(lambda: DownloadEvent.objects.first(), timeout=10, what="the fetch's audit row")
    writer.stop()
    assert DownloadEvent.objects.count() == 1
    assert (event.link_id, event.status, event.bytes_sent) == (link.pk, 200, len("the manual\n"))


def _rgba(css: str) -> tuple[float, float, float, float]:
    numbers = [float(part) for part in css[css.index("(") + 1 : css.index(")")].replace("/", ",").split(",")]
    return (*numbers[:3], numbers[3] if len(numbers) > 3 else 1.0)


def _luminance(rgb) -> float:
    def channel(value: float) -> float:
        value /= 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (channel(value) for value in rgb[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG 2's contrast ratio of two opaque CSS colours (``rgb(…)`` as getComputedStyle gives them)."""
    lighter, darker = sorted((_luminance(_rgba(foreground)), _luminance(_rgba(background))), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


# The badge's text colour and the first opaque background behind it (its own, else its nearest ancestor's).
BADGE_COLOURS = """(badge) => {
    let element = badge, background = "rgba(0, 0, 0, 0)";
    while (element) {
        const colour = getComputedStyle(element).backgroundColor;
        if (colour !== "transparent" && !/rgba\\(.*,\\s*0\\)$/.test(colour)) { background = colour; break; }
        element = element.parentElement;
    }
    const page = getComputedStyle(document.body).backgroundColor;
    const own = getComputedStyle(badge).backgroundColor;
    return {text: getComputedStyle(badge).color, background, page, own: background === own,
            state: badge.dataset.state, label: badge.textContent.trim()};
}"""


def badge_colours(locator) -> dict:
    colours = locator.evaluate(BADGE_COLOURS)
    assert _rgba(colours["text"])[3] == 1.0, colours
    assert _rgba(colours["background"])[3] == 1.0, colours
    colours["ratio"] = contrast_ratio(colours["text"], colours["background"])
    return colours


def test_link_states_are_coloured_readable_badges_in_the_list_and_on_the_page_also_after_revoking(
    new_page, hub_server, a_file_in_the_downloads_root
):
    from datetime import UTC, datetime, timedelta

    from django.contrib.auth.models import User

    from downloads.models import DownloadLink
    from downloads.services import customer_create, link_create, link_revoke

    acme = customer_create(slug="acme", name="ACME Corp")
    future = datetime.now(UTC) + timedelta(days=5)
    links = {state: link_create(customer=acme, path=a_file_in_the_downloads_root, expires_at=future) for state in
             ("active", "expired", "revoked", "used_up")}  # fmt: skip
    link_revoke(link=links["revoked"])
    DownloadLink.objects.filter(pk=links["expired"].pk).update(expires_at=datetime(2020, 1, 1, tzinfo=UTC))
    DownloadLink.objects.filter(pk=links["used_up"].pk).update(max_downloads=1, download_count=1)
    page = new_page()
    login(page, User.objects.create_superuser("root", password=PASSWORD))

    page.goto("/admin/downloads/downloadlink/")
    seen = {}
    for state in links:
        badge = page.locator(f'.link-state[data-state="{state}"]')
        expect(badge).to_have_count(1)
        seen[state] = badge_colours(badge)
        assert seen[state]["own"], f"the {state} badge has a background of its own, not the row's: {seen[state]}"
        assert seen[state]["ratio"] >= 4.5, seen[state]
        assert seen[state]["background"] != seen[state]["page"], seen[state]
    assert len({colours["background"] for colours in seen.values()}) == 4, "each state has its own colour"
    assert {colours["label"] for colours in seen.values()} == {"active", "expired", "revoked", "used up"}

    # The link's own page: its state, then Revoke with its confirmation, and the state it shows afterwards.
    active = links["active"]
    page.goto(f"/admin/downloads/downloadlink/{active.pk}/change/")
    before = badge_colours(page.locator(".link-state"))
    assert (before["state"], before["ratio"] >= 4.5) == ("active", True)
    page.locator("#revoke-link").click()
    expect(page).to_have_url(re.compile(rf"/admin/downloads/downloadlink/{active.pk}/revoke/$"))
    page.locator("#confirm-revoke").click()
    expect(page).to_have_url(re.compile(rf"/admin/downloads/downloadlink/{active.pk}/change/$"))
    expect(page.get_by_text(f"Link #{active.pk} (acme: {a_file_in_the_downloads_root}) is revoked")).to_be_visible()
    after = badge_colours(page.locator(".link-state"))
    assert (after["state"], after["label"]) == ("revoked", "revoked")
    assert after["ratio"] >= 4.5, after
    assert after["background"] != before["background"], "after revoking, the badge looks different"
    expect(page.locator("#revoke-link")).to_have_count(0)
    active.refresh_from_db()
    assert active.revoked_at is not None

    page.goto("/admin/downloads/downloadlink/")
    row = page.locator("#result_list tr", has=page.locator(f'a[href$="/downloadlink/{active.pk}/change/"]'))
    in_list = badge_colours(row.locator(".link-state"))
    assert (in_list["state"], in_list["background"]) == ("revoked", seen["revoked"]["background"])
    print({state: round(colours["ratio"], 2) for state, colours in seen.items()})


def test_an_admin_uploads_a_file_and_links_it_in_one_form(new_page, hub_server):
    from django.contrib.auth.models import User

    from downloads.models import DownloadLink
    from downloads.services import customer_create

    customer_create(slug="acme", name="ACME Corp")
    name = "browser-upload-manual.txt"
    target = django_settings.DOWNLOADS_ROOT / name
    page = new_page()
    login(page, User.objects.create_superuser("root", password=PASSWORD))
    try:
        page.goto("/admin/downloads/downloadlink/add/")
        page.locator("select[name=customer]").select_option(label="ACME Corp (acme)")
        page.locator("input[name=upload]").set_input_files(
            {"name": "manual.txt", "mimeType": "text/plain", "buffer": b"uploaded from the browser\n"}
        )
        page.locator("input[name=upload_name]").fill(name)
        page.locator("input[name=_save]").click()
        expect(page).to_have_url(re.compile(r"/admin/downloads/downloadlink/\d+/change/$"))
        expect(page.get_by_text(f"Uploaded {name} into the downloads root.")).to_be_visible()
        assert target.read_bytes() == b"uploaded from the browser\n"
        assert DownloadLink.objects.get().path == name
    finally:
        target.unlink(missing_ok=True)
