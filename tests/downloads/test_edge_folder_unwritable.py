"""When the edge markers' folder cannot be changed, nginx could go on serving a link the hub means to stop: the
revocation or deletion is refused as a whole, with a message saying what to fix — never a 500, never recorded."""

from __future__ import annotations

import html
import os
import re
from datetime import UTC, datetime, timedelta

import pytest

from downloads.models import DownloadLink
from downloads.services import customer_create, link_create

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

LIST = "/admin/downloads/downloadlink/"
SAYS = "cannot be changed (Permission denied), so nginx could go on serving this link: nothing was revoked or deleted"


@pytest.fixture
def links(downloads_root, settings, tmp_path):
    settings.DOWNLOADS_EDGE_DIR = str(tmp_path / "edge")
    acme = customer_create(slug="acme", name="ACME Corp")
    expires = datetime.now(UTC) + timedelta(days=5)
    return [link_create(customer=acme, path="dir1/example1.txt", expires_at=expires) for _ in range(2)]


@pytest.fixture
def unwritable_edge(monkeypatch):
    """The folder refuses every change (as a read-only volume or a wrong owner does for the web process)."""

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(os, "unlink", refuse)


def text_of(response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def test_the_revoke_button_says_what_to_fix_and_revokes_nothing(admin_client, links, unwritable_edge):
    link = links[0]
    response = admin_client.post(f"{LIST}{link.pk}/revoke/", follow=True)
    assert response.status_code == 200
    assert SAYS in text_of(response)
    link.refresh_from_db()
    assert link.revoked_at is None


def test_the_bulk_revoke_is_refused_as_a_whole(admin_client, links, unwritable_edge):
    response = admin_client.post(
        LIST, {"action": "revoke_selected", "_selected_action": [link.pk for link in links]}, follow=True
    )
    assert response.status_code == 200
    assert SAYS in text_of(response)
    assert not DownloadLink.objects.filter(revoked_at__isnull=False).exists()


def test_deleting_is_refused_and_the_link_kept(admin_client, links, unwritable_edge):
    link = links[0]
    response = admin_client.post(f"{LIST}{link.pk}/delete/", {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert SAYS in text_of(response)
    bulk = admin_client.post(
        LIST, {"action": "delete_selected", "_selected_action": [link.pk for link in links], "post": "yes"}, follow=True
    )
    assert SAYS in text_of(bulk)
    assert DownloadLink.objects.count() == 2


def test_the_api_answers_503_with_the_reason(client, staff_user, links, unwritable_edge):
    client.force_login(staff_user)
    response = client.post(f"/v1/download-links/{links[0].pk}/revoke", {}, content_type="application/json")
    assert response.status_code == 503
    assert SAYS in response.json()["message"]
    assert DownloadLink.objects.filter(revoked_at__isnull=True).count() == 2
