"""A link's own page revokes it (after a confirmation); a link that was ever downloaded cannot be deleted."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from downloads.models import DownloadEvent, DownloadLink
from downloads.services import customer_create, link_create
from messaging.models import OutboxEvent

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

LIST = "/admin/downloads/downloadlink/"


def text_of(response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


@pytest.fixture
def link(downloads_root):
    acme = customer_create(slug="acme", name="ACME Corp")
    return link_create(customer=acme, path="dir1/example1.txt", expires_at=datetime.now(UTC) + timedelta(days=5))


def page_of(link) -> str:
    return f"{LIST}{link.pk}/change/"


def test_a_links_page_has_a_revoke_button_that_asks_first(admin_client, link):
    html = admin_client.get(page_of(link)).content.decode()
    assert f'href="{LIST}{link.pk}/revoke/"' in html
    confirmation = admin_client.get(f"{LIST}{link.pk}/revoke/")
    assert confirmation.status_code == 200
    assert "Revoking cannot be undone" in text_of(confirmation)
    assert 'name="csrfmiddlewaretoken"' in confirmation.content.decode()
    link.refresh_from_db()
    assert link.revoked_at is None  # looking at the question revokes nothing


def test_confirming_revokes_the_link_and_the_page_says_so(admin_client, link):
    response = admin_client.post(f"{LIST}{link.pk}/revoke/", follow=True)
    assert response.redirect_chain == [(page_of(link), 302)]
    text = text_of(response)
    assert f"Link #{link.pk} (acme: dir1/example1.txt) is revoked" in text
    assert 'data-state="revoked"' in response.content.decode()
    assert f"{LIST}{link.pk}/revoke/" not in response.content.decode()  # nothing left to revoke
    link.refresh_from_db()
    assert link.revoked_at is not None
    assert OutboxEvent.objects.filter(type="downloads.link_revoked", data__link=link.pk).count() == 1
    # Twice is harmless: said, not done again.
    again = admin_client.post(f"{LIST}{link.pk}/revoke/", follow=True)
    assert f"Link #{link.pk} was already revoked." in text_of(again)
    assert OutboxEvent.objects.filter(type="downloads.link_revoked").count() == 1


def test_revoke_needs_the_csrf_token(link):
    user = User.objects.create_superuser("root", password="x")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(f"{LIST}{link.pk}/revoke/").status_code == 403
    link.refresh_from_db()
    assert link.revoked_at is None


def test_revoke_needs_the_change_permission(client, link):
    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_downloadlink"))
    client.force_login(viewer)
    assert f"{LIST}{link.pk}/revoke/" not in client.get(page_of(link)).content.decode()
    assert client.get(f"{LIST}{link.pk}/revoke/").status_code == 403
    assert client.post(f"{LIST}{link.pk}/revoke/").status_code == 403
    link.refresh_from_db()
    assert link.revoked_at is None


def test_revoking_an_unknown_link_is_a_404(admin_client, link):
    assert admin_client.post(f"{LIST}{link.pk + 1000}/revoke/").status_code == 404


def test_a_link_never_downloaded_can_still_be_deleted(admin_client, link):
    DownloadEvent.objects.create(link=link, status=404, outcome="missing", at=timezone.now())  # a refusal only
    assert f"{LIST}{link.pk}/delete/" in admin_client.get(page_of(link)).content.decode()
    response = admin_client.post(f"{LIST}{link.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not DownloadLink.objects.filter(pk=link.pk).exists()


@pytest.mark.parametrize(
    ("outcome", "count"), [("served", 0), ("partial", 0), (None, 2)], ids=["served", "partial", "counted"]
)
def test_deleting_a_downloaded_link_is_refused_in_favour_of_revoking(admin_client, link, outcome, count):
    if outcome:
        DownloadEvent.objects.create(link=link, status=200, outcome=outcome, at=timezone.now())
    DownloadLink.objects.filter(pk=link.pk).update(download_count=count)
    own_page = admin_client.get(page_of(link))
    assert f"{LIST}{link.pk}/delete/" not in own_page.content.decode()  # no Delete button, and why:
    assert "Delete: the link was downloaded: revoke it instead (the audit keeps its link)." in text_of(own_page)
    page = admin_client.get(f"{LIST}{link.pk}/delete/", follow=True)
    assert page.redirect_chain == [(page_of(link), 302)]
    text = text_of(page)
    assert f"Not deleted: #{link.pk} (acme: dir1/example1.txt, " in text
    assert "Revoke instead" in text
    posted = admin_client.post(f"{LIST}{link.pk}/delete/", {"post": "yes"})
    assert posted.status_code == 302
    assert DownloadLink.objects.filter(pk=link.pk).exists()
    assert DownloadEvent.objects.filter(link=link).count() == (1 if outcome else 0)


def test_bulk_delete_is_refused_when_any_selected_link_was_downloaded(admin_client, link):
    fresh = link_create(customer=link.customer, path="big.bin", expires_at=datetime.now(UTC) + timedelta(days=5))
    DownloadEvent.objects.create(link=link, status=206, outcome="partial", at=timezone.now())
    for step in ({}, {"post": "yes"}):  # the confirmation page, and the confirmation itself
        response = admin_client.post(
            LIST, {"action": "delete_selected", "_selected_action": [link.pk, fresh.pk], **step}, follow=True
        )
        text = text_of(response)
        assert f"Not deleted: #{link.pk} (acme: dir1/example1.txt, 1 download(s)) was downloaded" in text
        assert f"#{fresh.pk}" not in text.split("Not deleted:")[1].split("Revoke instead")[0]
        assert DownloadLink.objects.count() == 2


def test_bulk_delete_of_links_never_downloaded_works_as_before(admin_client, link):
    confirmation = admin_client.post(LIST, {"action": "delete_selected", "_selected_action": [link.pk]})
    assert confirmation.status_code == 200
    assert "Are you sure" in text_of(confirmation)
    admin_client.post(LIST, {"action": "delete_selected", "_selected_action": [link.pk], "post": "yes"})
    assert DownloadLink.objects.count() == 0


def test_the_state_badges_carry_their_own_styled_classes(admin_client, link):
    html = admin_client.get(LIST).content.decode()
    assert '<span class="link-state link-state-active" data-state="active">active</span>' in html
    assert "/static/downloads/admin.css" in html
    assert "badge-success" not in html
    page = admin_client.get(page_of(link)).content.decode()
    assert 'class="link-state link-state-active"' in page
    assert "/static/downloads/admin.css" in page
