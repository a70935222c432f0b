"""The downloads admin: choose a file, get the URL with a copy button, see states, revoke, read the audit."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from downloads.models import DownloadEvent, DownloadLink
from downloads.services import customer_create, link_create, link_revoke

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(db):
    return customer_create(slug="acme", name="ACME Corp")


def text_of(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())


def test_the_add_form_offers_the_files_of_the_root_not_a_free_text_path(admin_client, downloads_root, settings):
    settings.DOWNLOADS_DEFAULT_EXPIRY_DAYS = 3
    response = admin_client.get("/admin/downloads/downloadlink/add/")
    assert response.status_code == 200
    form = response.context["adminform"].form
    choices = [value for value, _label in form.fields["path"].choices]
    assert choices == ["", "Größe naïve.pdf", "big.bin", "dir1/example1.txt", "empty.txt"]  # no symlink escaping
    assert '<select name="path"' in response.content.decode()
    expected = timezone.now() + timedelta(days=3)
    assert abs((form.fields["expires_at"].initial() - expected).total_seconds()) < 120


def test_saving_a_link_shows_its_full_url_with_a_copy_button(admin_client, downloads_root, acme, settings):
    settings.HUB_PUBLIC_URL = "https://hub.example.org"
    response = admin_client.post(
        "/admin/downloads/downloadlink/add/",
        {
            "customer": acme.pk,
            "path": "dir1/example1.txt",
            "expires_at_0": "2099-01-01",
            "expires_at_1": "10:00:00",
            "max_downloads": "3",
            "note": "firmware for the plant",
        },
    )
    link = DownloadLink.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/downloads/downloadlink/{link.pk}/change/"
    assert (link.path, link.max_downloads, link.created_by.username) == ("dir1/example1.txt", 3, "admin")
    page = admin_client.get(response["Location"])
    html = page.content.decode()
    url = re.search(r'id="download-link-url" value="([^"]+)"', html)[1]
    assert url.startswith("https://hub.example.org/dl/k2.")
    assert url.endswith("/acme/2099-01-01T10:00:00Z/dir1/example1.txt")
    assert 'id="copy-download-link"' in html
    assert "Link created" in html


@pytest.mark.parametrize("path", ["../secret.txt", "escape.txt", "/etc/passwd", "dir1/missing.txt"])
def test_a_path_that_is_not_offered_is_refused(admin_client, downloads_root, acme, path):
    response = admin_client.post(
        "/admin/downloads/downloadlink/add/",
        {"customer": acme.pk, "path": path, "expires_at_0": "2099-01-01", "expires_at_1": "10:00:00"},
    )
    assert response.status_code == 200
    assert "path" in response.context["adminform"].form.errors
    assert DownloadLink.objects.count() == 0


def test_a_download_cap_below_one_is_refused(admin_client, downloads_root, acme):
    response = admin_client.post(
        "/admin/downloads/downloadlink/add/",
        {
            "customer": acme.pk,
            "path": "big.bin",
            "expires_at_0": "2099-01-01",
            "expires_at_1": "10:00:00",
            "max_downloads": "0",
        },
    )
    assert "max_downloads" in response.context["adminform"].form.errors
    assert DownloadLink.objects.count() == 0


def test_a_past_expiry_is_refused(admin_client, downloads_root, acme):
    response = admin_client.post(
        "/admin/downloads/downloadlink/add/",
        {"customer": acme.pk, "path": "big.bin", "expires_at_0": "2015-01-01", "expires_at_1": "10:00:00"},
    )
    assert "expires_at" in response.context["adminform"].form.errors
    assert DownloadLink.objects.count() == 0


@pytest.fixture
def four_links(downloads_root, acme):
    other = customer_create(slug="globex", name="Globex")
    future = datetime.now(UTC) + timedelta(days=5)
    active = link_create(customer=acme, path="dir1/example1.txt", expires_at=future)
    revoked = link_create(customer=acme, path="big.bin", expires_at=future)
    link_revoke(link=revoked)
    used_up = link_create(customer=other, path="empty.txt", expires_at=future, max_downloads=1)
    DownloadLink.objects.filter(pk=used_up.pk).update(download_count=1)
    expired = link_create(customer=other, path="big.bin", expires_at=future)
    DownloadLink.objects.filter(pk=expired.pk).update(expires_at=datetime(2020, 1, 1, tzinfo=UTC))
    return {"active": active, "revoked": revoked, "used_up": used_up, "expired": expired}


def test_the_list_shows_customer_file_expiry_state_downloads_and_last_fetch(admin_client, four_links):
    response = admin_client.get("/admin/downloads/downloadlink/")
    text = text_of(response)
    assert "Customer File Expires at State Downloads Last fetched at" in text
    assert "1 / 1" in text
    for state in ("active", "revoked", "used up", "expired"):
        assert state in text


@pytest.mark.postgres
def test_the_list_filters_by_state_and_customer_and_searches(admin_client, four_links):
    def ids(query):
        changelist = admin_client.get(f"/admin/downloads/downloadlink/{query}").context["cl"]
        return {link.pk for link in changelist.result_list}

    for state in ("active", "revoked", "used_up", "expired"):
        assert ids(f"?state={state}") == {four_links[state].pk}
    globex = four_links["used_up"].customer
    assert ids(f"?customer__id__exact={globex.pk}") == {four_links["used_up"].pk, four_links["expired"].pk}
    assert ids("?q=globex") == {four_links["used_up"].pk, four_links["expired"].pk}
    assert ids("?q=example1") == {four_links["active"].pk}


def test_the_revoke_action_revokes_the_selected_links(admin_client, four_links):
    active = four_links["active"]
    response = admin_client.post(
        "/admin/downloads/downloadlink/",
        {"action": "revoke_selected", "_selected_action": [active.pk]},
        follow=True,
    )
    assert "1 link(s) revoked." in text_of(response)
    active.refresh_from_db()
    assert active.revoked_at is not None


def test_a_links_page_shows_its_audit_trail(admin_client, four_links):
    link = four_links["active"]
    DownloadEvent.objects.create(
        link=link,
        customer="acme",
        path=link.path,
        ip="198.51.100.9",
        user_agent="Wget/1.21",
        status=206,
        outcome="partial",
        range="0-9/6",
        bytes_sent=10,
        at=timezone.now(),
    )
    text = text_of(admin_client.get(f"/admin/downloads/downloadlink/{link.pk}/change/"))
    assert "198.51.100.9" in text
    assert "Wget/1.21" in text
    assert "partial" in text


def test_the_audit_is_read_only(admin_client, four_links):
    assert admin_client.get("/admin/downloads/downloadevent/add/").status_code == 403
    assert admin_client.get("/admin/downloads/downloadevent/").status_code == 200


def test_a_customers_id_cannot_be_renamed_in_the_admin(admin_client, acme):
    response = admin_client.get(f"/admin/downloads/customer/{acme.pk}/change/")
    assert 'name="slug"' not in response.content.decode()
    assert "acme" in text_of(response)


def test_a_second_legacy_link_with_the_same_fields_is_refused_naming_the_first(
    admin_client, downloads_root, acme, settings
):
    settings.DOWNLOADS_LEGACY_SECRET = "This is just a long string to set a seed"
    fields = {
        "customer": acme.pk,
        "path": "dir1/example1.txt",
        "expires_at_0": "2099-01-01",
        "expires_at_1": "10:00:00",
        "format": "legacy",
    }
    first = admin_client.post("/admin/downloads/downloadlink/add/", fields)
    assert first.status_code == 302
    link = DownloadLink.objects.get()
    assert link.format == "legacy"
    again = admin_client.post("/admin/downloads/downloadlink/add/", fields, follow=True)
    assert f"Legacy link #{link.pk} " in text_of(again)
    assert DownloadLink.objects.count() == 1


def test_the_legacy_format_is_offered_only_with_the_legacy_secret(admin_client, downloads_root, settings):
    settings.DOWNLOADS_LEGACY_SECRET = ""
    assert "format" not in admin_client.get("/admin/downloads/downloadlink/add/").context["adminform"].form.fields
    settings.DOWNLOADS_LEGACY_SECRET = "This is just a long string to set a seed"
    assert "format" in admin_client.get("/admin/downloads/downloadlink/add/").context["adminform"].form.fields
