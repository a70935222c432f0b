"""'Send link': offered when the customer has an e-mail, mails the URL and the expiry in the customer's zone, records
every attempt on the link and publishes downloads.link_sent; a failed send is shown and recorded as failed."""

from __future__ import annotations

import html
import re
import smtplib
from datetime import UTC, datetime

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured

from downloads import link_sending
from downloads.models import LinkSend
from downloads.selectors import link_url
from downloads.services import customer_create, link_create, link_revoke
from hub.env import Env, parse_email_url
from messaging.models import OutboxEvent

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

LIST = "/admin/downloads/downloadlink/"
EXPIRY = datetime(2099, 7, 1, 16, 30, tzinfo=UTC)


def text_of(response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


@pytest.fixture
def locmem(settings):
    settings.EMAIL_URL = "locmem://"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.DEFAULT_FROM_EMAIL = "hub@example.org"
    settings.HUB_TIME_ZONE = "Europe/Berlin"
    settings.HUB_PUBLIC_URL = "https://hub.example.org"


def make_link(downloads_root, *, email="buyer@acme.example", time_zone="", **fields):
    acme = customer_create(slug="acme", name="ACME Corp")
    acme.email, acme.time_zone = email, time_zone
    acme.save()
    return link_create(customer=acme, path="dir1/example1.txt", expires_at=EXPIRY, **fields)


def test_send_link_is_offered_only_when_the_customer_has_an_email(admin_client, downloads_root, locmem):
    link = make_link(downloads_root, email="")
    page = admin_client.get(f"{LIST}{link.pk}/change/")
    assert f"{LIST}{link.pk}/send/" not in page.content.decode()
    assert "Send link: customer acme has no e-mail address (add one on the customer's page)." in text_of(page)
    refused = admin_client.post(f"{LIST}{link.pk}/send/", follow=True)
    assert "Send link is not available: customer acme has no e-mail address" in text_of(refused)
    assert mail.outbox == []
    assert LinkSend.objects.count() == 0

    link.customer.email = "buyer@acme.example"
    link.customer.save()
    assert f'href="{LIST}{link.pk}/send/"' in admin_client.get(f"{LIST}{link.pk}/change/").content.decode()


def test_the_confirmation_shows_the_mail_and_sending_it_records_and_publishes(admin_client, downloads_root, locmem):
    link = make_link(downloads_root, time_zone="America/New_York", max_downloads=3)
    preview = admin_client.get(f"{LIST}{link.pk}/send/")
    assert "buyer@acme.example" in text_of(preview)
    assert mail.outbox == []  # looking sends nothing

    response = admin_client.post(f"{LIST}{link.pk}/send/", follow=True)
    assert "The link was e-mailed to buyer@acme.example." in text_of(response)
    [sent] = mail.outbox
    assert (sent.to, sent.from_email, sent.subject) == (
        ["buyer@acme.example"],
        "hub@example.org",
        "Your download: example1.txt",
    )
    assert link_url(link) in sent.body
    assert link_url(link).startswith("https://hub.example.org/dl/")
    # 16:30 UTC on 1 July is 12:30 in New York (EDT), the customer's zone, not the hub's Berlin.
    assert "The link works until Wednesday 1 July 2099, 12:30 EDT (America/New_York)." in sent.body
    assert "It can be downloaded 3 time(s)" in sent.body

    record = LinkSend.objects.get()
    assert (record.link_id, record.to, record.result, record.error, record.sent_by.username) == (
        link.pk, "buyer@acme.example", "sent", "", "admin"
    )  # fmt: skip
    event = OutboxEvent.objects.get(type="downloads.link_sent")
    assert event.data["link"] == link.pk
    assert (event.data["to"], event.data["by"], event.data["customer"]) == ("buyer@acme.example", "admin", "acme")
    assert event.data["expires_at"] == "2099-07-01T16:30:00.000Z"
    # The link's page lists the send.
    page = text_of(admin_client.get(f"{LIST}{link.pk}/change/"))
    assert "buyer@acme.example sent" in page


def test_without_a_customer_zone_the_expiry_is_in_the_hubs_zone(downloads_root, locmem, admin_user, settings):
    settings.DOWNLOADS_CONTACT = "support@example.org"
    link = make_link(downloads_root, note="Firmware 2.1 for line 3")
    link_sending.link_send(link=link, by=admin_user)
    body = mail.outbox[0].body
    assert "The link works until Wednesday 1 July 2099, 18:30 CEST (Europe/Berlin)." in body
    assert body.endswith("\n\nFirmware 2.1 for line 3\n\nQuestions: support@example.org\n")


def test_a_failed_send_is_shown_recorded_as_failed_and_not_published(admin_client, downloads_root, locmem, monkeypatch):
    link = make_link(downloads_root)

    def refused(self, messages):
        raise smtplib.SMTPRecipientsRefused({"buyer@acme.example": (550, b"mailbox unavailable")})

    monkeypatch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", refused)
    response = admin_client.post(f"{LIST}{link.pk}/send/", follow=True)
    text = text_of(response)
    assert "The link was not sent to buyer@acme.example: SMTPRecipientsRefused:" in text
    assert "mailbox unavailable" in text
    messages = [(m.level_tag, m.message) for m in response.context["messages"]]
    assert [tag for tag, _ in messages] == ["error"]
    record = LinkSend.objects.get()
    assert record.result == "failed"
    assert "mailbox unavailable" in record.error
    assert not LinkSend.objects.filter(result="sent").exists()
    assert not OutboxEvent.objects.filter(type="downloads.link_sent").exists()


def test_a_backend_that_accepts_nothing_is_a_failure(downloads_root, locmem, monkeypatch, admin_user):
    link = make_link(downloads_root)
    monkeypatch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", lambda self, messages: 0)
    with pytest.raises(link_sending.LinkSendError, match="the mail backend accepted no message"):
        link_sending.link_send(link=link, by=admin_user)
    assert LinkSend.objects.get().result == "failed"


def test_production_without_email_url_sends_nothing_and_says_why(admin_client, downloads_root, locmem, settings):
    settings.EMAIL_URL = ""
    link = make_link(downloads_root)
    response = admin_client.post(f"{LIST}{link.pk}/send/", follow=True)
    assert "The link was not sent to buyer@acme.example: no mail server is configured (set EMAIL_URL)." in text_of(
        response
    )
    assert mail.outbox == []
    assert LinkSend.objects.get().result == "failed"


def test_a_revoked_link_is_not_sent(admin_client, downloads_root, locmem):
    link = make_link(downloads_root)
    link_revoke(link=link)
    page = text_of(admin_client.get(f"{LIST}{link.pk}/change/"))
    assert "Send link: the link is revoked: it would not work for the customer." in page
    admin_client.post(f"{LIST}{link.pk}/send/")
    assert mail.outbox == []
    assert LinkSend.objects.count() == 0


def test_sending_needs_the_change_permission(client, downloads_root, locmem):
    from django.contrib.auth.models import Permission, User

    link = make_link(downloads_root)
    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_downloadlink"))
    client.force_login(viewer)
    assert client.post(f"{LIST}{link.pk}/send/").status_code == 403
    assert mail.outbox == []


def test_the_customer_form_takes_an_email_and_refuses_an_unknown_zone(admin_client):
    acme = customer_create(slug="acme", name="ACME Corp")
    fields = {"name": "ACME Corp", "email": "buyer@acme.example", "contact": "", "notes": ""}
    bad = admin_client.post(f"/admin/downloads/customer/{acme.pk}/change/", {**fields, "time_zone": "Mars/Olympus"})
    assert "'Mars/Olympus' is not a time zone name the hub knows" in text_of(bad)
    good = admin_client.post(f"/admin/downloads/customer/{acme.pk}/change/", {**fields, "time_zone": "Asia/Tokyo"})
    assert good.status_code == 302
    acme.refresh_from_db()
    assert (acme.email, acme.time_zone) == ("buyer@acme.example", "Asia/Tokyo")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("console://", {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}),
        (
            "smtp+tls://hub%40example.org:p%40ss@mail.example.org",
            {
                "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "EMAIL_HOST": "mail.example.org",
                "EMAIL_PORT": 587,
                "EMAIL_HOST_USER": "hub@example.org",
                "EMAIL_HOST_PASSWORD": "p@ss",
                "EMAIL_USE_TLS": True,
                "EMAIL_USE_SSL": False,
            },
        ),
        ("smtps://mail.example.org", {"EMAIL_PORT": 465, "EMAIL_USE_SSL": True, "EMAIL_USE_TLS": False}),
        ("smtp://relay:2525", {"EMAIL_HOST": "relay", "EMAIL_PORT": 2525, "EMAIL_USE_TLS": False}),
    ],
)
def test_email_url_becomes_djangos_email_settings(url, expected):
    parsed = parse_email_url(url)
    assert {name: parsed[name] for name in expected} == expected


@pytest.mark.parametrize("url", ["ftp://mail.example.org", "smtp://", "smtp://host:99999", "mail.example.org"])
def test_a_malformed_email_url_stops_start_up_naming_it(url):
    with pytest.raises(ImproperlyConfigured, match="EMAIL_URL="):
        Env({"EMAIL_URL": url}).parsed("EMAIL_URL", parse_email_url, None, "expected e.g. smtp+tls://host:587")
