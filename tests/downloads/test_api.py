"""``/v1/download-links``, ``/v1/customers``, ``/v1/download-events``: staff only, tokens need downloads scopes."""

from __future__ import annotations

import pytest
from django.utils import timezone

from downloads.models import DownloadEvent, DownloadLink
from downloads.services import customer_create, link_revoke

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_api(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def acme(db):
    return customer_create(slug="acme", name="ACME Corp")


def create(api, **fields):
    body = {"customer": "acme", "path": "dir1/example1.txt", "expires_at": "2099-01-01T10:00:00.000Z", **fields}
    return api.post("/v1/download-links", body, content_type="application/json")


def test_staff_create_a_link_and_get_its_url(staff_api, downloads_root, acme, settings):
    settings.HUB_PUBLIC_URL = "https://hub.example.org"
    response = create(staff_api, max_downloads=2, note="manual")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["url"].startswith("https://hub.example.org/dl/k2.")
    assert body["url"].endswith("/acme/2099-01-01T10:00:00Z/dir1/example1.txt")
    assert (body["state"], body["max_downloads"], body["created_by"]) == ("active", 2, "bob")
    assert body["expires_at"] == "2099-01-01T10:00:00.000Z"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"path": "../secret.txt"}, "path"),
        ({"path": "dir1/missing.txt"}, "path"),
        ({"expires_at": "2015-01-01T00:00:00.000Z"}, "expires_at"),
        ({"customer": "nobody"}, "customer"),
        ({"max_downloads": 0}, "max_downloads"),
    ],
)
def test_a_bad_link_is_a_400_naming_the_field(staff_api, downloads_root, acme, fields, field):
    response = create(staff_api, **fields)
    assert response.status_code == 400
    assert field in response.content.decode()
    assert DownloadLink.objects.count() == 0


def test_list_filter_count_and_revoke(staff_api, downloads_root, acme):
    customer_create(slug="globex")
    first = create(staff_api).json()
    create(staff_api, customer="globex", path="big.bin")
    link_revoke(link=DownloadLink.objects.get(pk=first["id"]))
    assert staff_api.get("/v1/download-links").json()["total"] == 2
    assert [item["customer"] for item in staff_api.get("/v1/download-links?customer=globex").json()["results"]] == [
        "globex"
    ]
    assert staff_api.get("/v1/download-links/count?state=revoked").json() == {"count": 1}
    assert staff_api.get("/v1/download-links/count?state=active").json() == {"count": 1}
    assert staff_api.get("/v1/download-links?state=nonsense").status_code == 400
    other = DownloadLink.objects.get(customer__slug="globex")
    response = staff_api.post(f"/v1/download-links/{other.pk}/revoke", {}, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["state"] == "revoked"
    assert staff_api.get("/v1/download-links/count?state=active").json() == {"count": 0}


def test_customers_and_the_audit(staff_api, downloads_root, acme):
    response = staff_api.post("/v1/customers", {"id": "initech", "name": "Initech"}, content_type="application/json")
    assert response.status_code == 201, response.content
    assert staff_api.get("/v1/customers/initech").json()["name"] == "Initech"
    renamed = staff_api.patch("/v1/customers/initech", {"id": "other"}, content_type="application/json")
    assert renamed.status_code == 400
    assert "cannot change" in renamed.content.decode()
    edited = staff_api.patch("/v1/customers/initech", {"contact": "bill@initech"}, content_type="application/json")
    assert edited.json()["contact"] == "bill@initech"
    assert (
        staff_api.post("/v1/customers", {"id": "Bad Id", "name": "x"}, content_type="application/json").status_code
        == 400
    )
    DownloadEvent.objects.create(customer="acme", path="a", status=404, outcome="invalid", at=timezone.now())
    events = staff_api.get("/v1/download-events?outcome=invalid").json()
    assert [event["status"] for event in events["results"]] == [404]
    assert staff_api.post("/v1/download-events", {}, content_type="application/json").status_code == 405


def test_household_users_may_not_use_it(client, household_user, acme):
    client.force_login(household_user)
    assert client.get("/v1/download-links").status_code == 403
    assert client.get("/v1/customers").status_code == 403


def test_a_token_needs_the_downloads_scopes(client, staff_user, bearer, downloads_root, acme):
    body = {"customer": "acme", "path": "dir1/example1.txt"}
    read_only = bearer(staff_user, "downloads:read")
    assert client.get("/v1/download-links", headers=read_only).status_code == 200
    assert (
        client.post("/v1/download-links", body, content_type="application/json", headers=read_only).status_code == 403
    )
    other_scope = bearer(staff_user, "events:read")
    assert client.get("/v1/download-events", headers=other_scope).status_code == 403
    writer = bearer(staff_user, "downloads:write")
    response = client.post("/v1/download-links", body, content_type="application/json", headers=writer)
    assert response.status_code == 201, response.content
    # No expiry given: the configured default (7 days).
    link = DownloadLink.objects.get()
    assert 6.9 < (link.expires_at - timezone.now()).total_seconds() / 86400 <= 7


def test_a_second_legacy_link_with_the_same_fields_is_a_400_naming_the_first(staff_api, downloads_root, acme, settings):
    settings.DOWNLOADS_LEGACY_SECRET = "This is just a long string to set a seed"
    first = create(staff_api, format="legacy")
    assert first.status_code == 201, first.content
    assert first.json()["format"] == "legacy"
    again = create(staff_api, format="legacy", max_downloads=2)
    assert again.status_code == 400
    assert f"Legacy link #{first.json()['id']} " in again.content.decode()
    assert list(again.json()["fields"]) == ["format"]
    assert DownloadLink.objects.count() == 1


def test_a_legacy_link_needs_the_legacy_secret(staff_api, downloads_root, acme, settings):
    settings.DOWNLOADS_LEGACY_SECRET = ""
    response = create(staff_api, format="legacy")
    assert response.status_code == 400
    assert "DOWNLOADS_LEGACY_SECRET" in response.json()["fields"]["format"][0]
