"""What a customer sees when a link is refused: a small page for a browser, today's text for everyone else.

A browser (its Accept prefers text/html) gets the same status with a page saying what happened in plain words,
the link's expiry in the customer's zone and the operator's contact line; curl, wget and scripts keep the exact
status, headers and body they had, for hub links and legacy links alike.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from downloads.models import DownloadEvent
from downloads.refusal_page import local_time, prefers_html, render, zone_named
from downloads.signing import LinkParts
from tests.downloads.conftest import POST_SECRET, fetch, link_path

pytestmark = pytest.mark.django_db(transaction=True)

CHROME = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
FIREFOX = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
SAFARI = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


# --- which requests prefer a page --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "accept",
    [
        CHROME,
        FIREFOX,
        SAFARI,
        "text/html",
        "TEXT/HTML",
        "text/html;level=1;q=0.9, */*;q=0.8",
        "application/json;q=0.5, text/html",
        "*/*, text/html",  # as preferred as anything else
    ],
)
def test_a_browser_navigation_prefers_html(accept):
    assert prefers_html(accept.encode())


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "",
        "*/*",  # curl, wget, most scripts
        "text/*",
        "application/octet-stream",
        "text/plain",
        "text/plain, text/html;q=0.5",  # text preferred
        "application/json, text/html;q=0.9",
        "text/html;q=0",  # explicitly not acceptable
        "text/html;q=abc",  # unreadable q-value: ignored
        "text/html;q=1.5",
        "application/xhtml+xml",
    ],
)
def test_scripts_and_text_clients_do_not_prefer_html(accept):
    assert not prefers_html(None if accept is None else accept.encode())


# --- text clients: byte for byte as before -------------------------------------------------------------------


def _text_headers(body: bytes) -> dict[str, str]:
    # Exactly today's headers of a text refusal, nothing added (no Vary, no Content-Security-Policy).
    return {"content-type": "text/plain; charset=utf-8", "cache-control": "no-store", "content-length": str(len(body))}


TODAYS_ANSWERS = {
    "forbidden": (403, b"Forbidden\n"),
    "invalid": (404, b"Not found\n"),
    "expired": (410, b"Link expired\n"),
    "revoked": (410, b"Link revoked\n"),
    "deleted": (410, b"Link revoked\n"),
    "used_up": (410, b"Download limit reached\n"),
    "missing": (404, b"File not found\n"),
}


# Every refusal in both formats, but a deleted legacy link: an unrecorded legacy link is one the old tool made, and
# is served (docs/downloads-links.md).
CASES = [(state, link_format) for state in TODAYS_ANSWERS for link_format in ("hub", "legacy")]
CASES.remove(("deleted", "legacy"))


@pytest.fixture
def refused(make_app, make_link, customer, downloads_root):
    """``refused(state, link_format)`` → (app, path) answering that refusal."""
    from downloads.services import link_revoke

    def make(state: str, link_format: str):
        legacy = link_format == "legacy"
        app = make_app(DOWNLOADS_LEGACY_SECRET=POST_SECRET)
        if state == "forbidden":
            return app, "/dl/not-a-link"
        name = "gone.txt" if state == "missing" else "dir1/example1.txt"
        if state == "missing":
            (downloads_root / name).write_text("soon gone\n")
        link = make_link(name, days=1, legacy=legacy, max_downloads=1 if state == "used_up" else None)
        path = link_path(link)
        if state == "invalid":
            parts = path.split("/")
            parts[2] = parts[2][:-2] + ("AA" if not parts[2].endswith("AA") else "BB")  # a forged signature
            return app, "/".join(parts)
        if state == "expired":
            return make_app(clock=lambda: datetime.now(UTC) + timedelta(days=2)), path
        if state == "revoked":
            link_revoke(link=link)
        elif state == "deleted":
            link.delete()
        elif state == "used_up":
            assert fetch(app, path).status == 200
        elif state == "missing":
            (downloads_root / name).unlink()
        return app, path

    return make


@pytest.mark.parametrize(("state", "link_format"), CASES)
@pytest.mark.parametrize("accept", [None, "*/*", "application/octet-stream", "text/plain, text/html;q=0.5"])
def test_clients_that_do_not_prefer_html_get_todays_text_answer_byte_for_byte(refused, state, link_format, accept):
    app, path = refused(state, link_format)
    headers = [] if accept is None else [("Accept", accept)]
    response = fetch(app, path, headers=headers)
    status, body = TODAYS_ANSWERS[state]
    assert (response.status, response.body) == (status, body)
    assert response.headers == _text_headers(body)
    head = fetch(app, path, method="HEAD", headers=headers)
    assert (head.status, head.body, head.headers) == (status, b"", _text_headers(body))


# --- browsers: a page -------------------------------------------------------------------------------------

PLAIN_WORDS = {
    "forbidden": "not a download link",
    "invalid": "This download link is not valid",
    "expired": "This download link has expired",
    "revoked": "has been withdrawn",
    "deleted": "has been withdrawn",
    "used_up": "used as many times as it allows",
    "missing": "no longer available",
}


@pytest.mark.parametrize(("state", "link_format"), CASES)
def test_a_browser_gets_the_same_status_with_a_page_saying_what_happened(refused, state, link_format, settings):
    settings.DOWNLOADS_CONTACT = "support@example.org"
    app, path = refused(state, link_format)
    response = fetch(app, path, headers=[("Accept", CHROME)])
    assert response.status == TODAYS_ANSWERS[state][0]
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-length"] == str(len(response.body))
    # Nothing may load from anywhere: inline style only, and the policy says so.
    assert response.headers["content-security-policy"] == "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    page = response.body.decode()
    assert page.startswith("<!doctype html>")
    assert PLAIN_WORDS[state] in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert '<a href="mailto:support@example.org">support@example.org</a>' in page


def test_the_expired_page_shows_the_expiry_in_the_customers_own_zone(make_app, make_link, customer):
    customer.time_zone = "Asia/Tokyo"
    customer.save()
    link = make_link(days=1)
    app = make_app(clock=lambda: datetime.now(UTC) + timedelta(days=2), HUB_TIME_ZONE="Europe/Madrid")
    page = fetch(app, link_path(link), headers=[("Accept", FIREFOX)]).body.decode()
    assert "Expired on" in page
    assert local_time(link.expires_at, zone_named("Asia/Tokyo", "UTC")) in page
    assert "(Asia/Tokyo, JST)" in page


@pytest.mark.parametrize("customer_zone", ["", "Mars/Olympus_Mons"])
def test_without_a_usable_zone_of_their_own_the_customer_sees_the_hubs(make_app, make_link, customer, customer_zone):
    customer.time_zone = customer_zone  # unset, or a name the zone database does not know: never a failed page
    customer.save()
    link = make_link(days=1)
    app = make_app(clock=lambda: datetime.now(UTC) + timedelta(days=2), HUB_TIME_ZONE="America/New_York")
    page = fetch(app, link_path(link), headers=[("Accept", CHROME)]).body.decode()
    assert local_time(link.expires_at, zone_named("America/New_York", "UTC")) in page
    assert "America/New_York" in page


def test_no_contact_line_without_downloads_contact(refused, settings):
    app, path = refused("revoked", "hub")
    page = fetch(app, path, headers=[("Accept", CHROME)]).body.decode()
    assert app.config.contact == ""
    assert "Questions?" not in page
    assert "mailto:" not in page


def test_the_contact_line_is_escaped_and_only_a_plain_address_becomes_a_mailto_link():
    page = render("revoked", status=410, contact='<script>alert(1)</script> "Call us"').decode()
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &quot;Call us&quot;" in page
    assert "mailto:" not in page
    page = render("revoked", status=410, contact="Downloads team, +34 900 000 000").decode()
    assert "Questions? Contact Downloads team, +34 900 000 000" in page


def test_every_kind_of_forged_link_gets_one_and_the_same_page(make_app, make_link, customer):
    from downloads.services import customer_create

    customer_create(slug="other")
    link = make_link()
    good = LinkParts(link.signature, "acme", link.expiry_text, link.path)
    key_id, nonce, mac = good.signature.split(".")
    later = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    variants = [
        LinkParts(f"{key_id}.{nonce}.{'A' * 22}", good.customer, good.expiry, good.path),  # bad signature
        LinkParts(f"k9.{nonce}.{mac}", good.customer, good.expiry, good.path),  # unknown key
        LinkParts(good.signature, good.customer, later, good.path),  # altered expiry
        LinkParts(good.signature, good.customer, good.expiry, "big.bin"),  # another file
        LinkParts(good.signature, good.customer, good.expiry, "../secret.txt"),  # a path out of the root
        LinkParts(good.signature, "other", good.expiry, good.path),  # another customer
        LinkParts("YjZhNDAzZDY0", "acme", "2015-08-15T20:30", "dir1/example1.txt"),  # legacy, not configured
    ]
    app = make_app()
    pages = set()
    for parts in variants:
        response = fetch(
            app,
            "/dl/" + "/".join((parts.signature, parts.customer, parts.expiry, parts.path)),
            headers=[("Accept", CHROME)],
        )
        assert response.status == 404, parts
        pages.add(response.body)
    assert len(pages) == 1
    page = pages.pop().decode()
    # Nothing of the request shows: no customer, file, expiry or key, so nothing tells which check failed.
    for told in ("acme", "example1", "big.bin", "secret", "k9", key_id, "2015", later[:4], "Expire", "valid until"):
        assert told not in page, told


def test_head_gets_the_pages_headers_without_its_body(refused):
    app, path = refused("expired", "hub")
    get = fetch(app, path, headers=[("Accept", CHROME)])
    head = fetch(app, path, method="HEAD", headers=[("Accept", CHROME)])
    assert (head.status, head.body) == (410, b"")
    assert head.headers == get.headers
    assert int(head.headers["content-length"]) == len(get.body) > 0


def test_a_page_is_audited_like_the_text_answer(refused, audit_writer):
    app, path = refused("revoked", "hub")
    fetch(app, path, headers=[("Accept", CHROME)])
    fetch(app, path)
    audit_writer.flush()
    rows = list(DownloadEvent.objects.order_by("id").values_list("status", "outcome", "customer", "path"))
    assert rows == [(410, "revoked", "acme", "dir1/example1.txt")] * 2


# --- through nginx (X-Accel, as in production): nginx passes the hub's answer on unchanged --------------------


def test_through_nginx_a_browser_gets_the_page_and_curl_the_text(nginx_in_front):
    from tests.downloads.test_nginx_accel import get, link

    base, attempts = nginx_in_front
    for path, status, text in (
        (link("dir1/gone.bin"), 404, b"File not found\n"),
        ("/AAAAAAAAAAAA" + link("x")[13:], 404, b"Not found\n"),
    ):
        browser = get(base + path, {"Accept": CHROME})
        assert browser[0] == status
        assert browser[1]["Content-Type"] == "text/html; charset=utf-8"
        assert browser[2].startswith(b"<!doctype html>")
        curl = get(base + path, {"Accept": "*/*"})
        assert (curl[0], curl[1]["Content-Type"], curl[2]) == (status, "text/plain; charset=utf-8", text)
    assert [attempt.outcome for attempt in attempts] == ["missing", "missing", "invalid", "invalid"]
