"""Connected apps: every signed-in user sees the apps and scripts acting as them and revokes them, their own only."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, RefreshToken, set_token_value

pytestmark = pytest.mark.django_db

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
NO_POLLING_WAIT = {"DEVICE_FLOW_INTERVAL": 0, "ALWAYS_RELOAD_OAUTHLIB_CORE": True}


def text_of(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())


def listed_apps(response) -> list[str]:
    return re.findall(r'data-field="app">([^<]*)<', response.content.decode())


def connection(user, app, scope, *, created=None, expires_in=timedelta(hours=1), refresh=True):
    """An access token (and its refresh token, one chain) as the token endpoint stores them; → (access, raw)."""
    raw = f"raw-{uuid.uuid4().hex}"
    access = AccessToken(user=user, application=app, scope=scope, expires=timezone.now() + expires_in)
    set_token_value(access, raw)
    access.save()
    if refresh:
        token = RefreshToken(user=user, application=app, access_token=access, token_family=uuid.uuid4())
        set_token_value(token, f"refresh-{raw}")
        token.save()
    if created is not None:
        AccessToken.objects.filter(pk=access.pk).update(created=created, updated=created)
        RefreshToken.objects.filter(access_token=access).update(created=created)
        access.refresh_from_db()
    return access, raw


@pytest.fixture
def apps(db):
    def make(name):
        return Application.objects.create(
            name=name, client_type=Application.CLIENT_PUBLIC, authorization_grant_type=Application.GRANT_DEVICE_CODE
        )

    return make


def test_connected_apps_needs_a_signed_in_user(client):
    response = client.get("/account/apps/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/account/apps/")
    assert client.post("/account/apps/1/revoke/").status_code == 302  # to sign in, nothing revoked


def test_a_household_user_sees_only_their_own_connections_with_app_scopes_and_times(
    client_as, household_user, staff_user, apps, settings
):
    settings.TIME_ZONE = "Europe/Berlin"  # HUB_TIME_ZONE: 23:30 UTC is 00:30 the next day in the house
    approved = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    thermostat, _raw = connection(
        household_user, apps("thermostat script"), "heating:read heating:write", created=approved
    )
    connection(staff_user, apps("bob's backup job"), "downloads:read")
    expired, _raw = connection(
        household_user, apps("old script"), "read", expires_in=-timedelta(hours=2), refresh=False
    )

    response = client_as(household_user).get("/account/apps/")
    assert response.status_code == 200
    text = text_of(response)
    assert "thermostat script" in text
    assert "heating:read heating:write" in text
    assert "bob's backup job" not in text  # another user's
    assert "downloads:read" not in text
    assert "old" not in listed_apps(response)  # expired, no refresh token: it can do nothing any more
    # Approved and last used in the house's zone; it renews for 30 days after its access token expires.
    assert "Approved 2026-12-02 00:30" in text
    assert "Last used 2026-12-02 00:30" in text
    renew_until = timezone.localtime(thermostat.expires + timedelta(days=30)).strftime("%Y-%m-%d %H:%M")
    assert f"Expires {renew_until}" in text
    assert "Europe/Berlin" in text
    html = response.content.decode()
    assert f'action="/account/apps/{thermostat.pk}/revoke/"' in html
    assert f"/account/apps/{expired.pk}/revoke/" not in html


def test_an_idle_script_is_listed_while_it_may_renew_and_gone_once_it_may_not(client_as, household_user, apps):
    # Its access token expired; the refresh token renews it for 30 days after that (REFRESH_TOKEN_EXPIRE_SECONDS).
    idle, _raw = connection(household_user, apps("idle script"), "read", expires_in=-timedelta(days=29))
    connection(household_user, apps("dead script"), "read", expires_in=-timedelta(days=31))
    response = client_as(household_user).get("/account/apps/")
    assert listed_apps(response) == ["idle script"]
    until = timezone.localtime(idle.expires + timedelta(days=30)).strftime("%Y-%m-%d %H:%M")
    assert f"Expires {until}" in text_of(response)


def test_no_connection_says_so_and_points_to_the_device_page(client_as, household_user):
    response = client_as(household_user).get("/account/apps/")
    assert "No app or script can act as you" in text_of(response)
    assert 'href="/o/device/"' in response.content.decode()


def test_every_page_links_to_connected_apps_under_the_account(client_as, household_user):
    html = client_as(household_user).get("/").content.decode()
    assert 'href="/account/apps/"' in html


@pytest.mark.postgres
def test_revoke_is_a_post_with_csrf_and_takes_the_access_and_refresh_token_of_that_grant_only(household_user, apps):
    script = apps("thermostat script")
    revoked, raw = connection(household_user, script, "heating:read")
    kept, kept_raw = connection(household_user, apps("calendar"), "read")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(household_user)

    page = browser.get("/account/apps/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    assert browser.post(f"/account/apps/{revoked.pk}/revoke/").status_code == 403  # no CSRF token: refused
    assert AccessToken.objects.filter(pk=revoked.pk).exists()
    assert browser.get(f"/account/apps/{revoked.pk}/revoke/").status_code == 405  # a link cannot revoke

    response = browser.post(f"/account/apps/{revoked.pk}/revoke/", {"csrfmiddlewaretoken": token}, follow=True)
    assert response.redirect_chain == [("/account/apps/", 302)]
    assert "Revoked: thermostat script can no longer act as you." in text_of(response)
    assert not AccessToken.objects.filter(pk=revoked.pk).exists()
    assert RefreshToken.objects.get(application=script).revoked is not None
    # The other grant still works and is still listed.
    assert AccessToken.objects.filter(pk=kept.pk).exists()
    assert RefreshToken.objects.get(access_token=kept).revoked is None
    assert listed_apps(response) == ["calendar"]
    # The revoked token no longer opens the API; the kept one does.
    assert Client().get("/v1/users/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 401
    assert Client().get("/v1/users/me", headers={"Authorization": f"Bearer {kept_raw}"}).status_code == 200


@pytest.mark.postgres
def test_another_users_token_id_is_a_404_and_stays_live(client_as, household_user, staff_user, apps):
    theirs, raw = connection(staff_user, apps("bob's backup job"), "read")
    browser = client_as(household_user)
    assert browser.post(f"/account/apps/{theirs.pk}/revoke/").status_code == 404
    assert browser.post("/account/apps/999999/revoke/").status_code == 404
    assert browser.post(f"/account/apps/{2**64}/revoke/").status_code == 404  # past 64 bits: no such id, no 500
    assert AccessToken.objects.filter(pk=theirs.pk).exists()
    assert RefreshToken.objects.get(access_token=theirs).revoked is None
    assert Client().get("/v1/users/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 200


def test_last_used_is_the_last_api_call_recorded_at_most_once_a_minute(client_as, household_user, apps, settings):
    long_ago = timezone.now() - timedelta(days=3)
    access, raw = connection(household_user, apps("thermostat script"), "read", created=long_ago)
    assert Client().get("/v1/users/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 200
    access.refresh_from_db()
    assert timezone.now() - access.updated < timedelta(seconds=30)
    used = access.updated
    assert Client().get("/v1/users/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 200
    access.refresh_from_db()
    assert access.updated == used  # within the minute: not written again
    assert access.created == long_ago
    text = text_of(client_as(household_user).get("/account/apps/"))
    assert f"Last used {timezone.localtime(used).strftime('%Y-%m-%d %H:%M')}" in text
    assert f"Approved {timezone.localtime(long_ago).strftime('%Y-%m-%d %H:%M')}" in text


def form_post(client: Client, path: str, fields: dict):
    return client.post(path, urlencode(fields), content_type="application/x-www-form-urlencoded")


@pytest.mark.postgres
def test_a_device_approved_renewed_then_revoked_on_connected_apps_can_neither_call_nor_renew(
    household_user, oauth_application, settings
):
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, **NO_POLLING_WAIT}
    client_id = oauth_application.client_id
    script = Client()
    device = form_post(script, "/o/device-authorization/", {"client_id": client_id, "scope": "heating:read"}).json()
    person = Client()
    person.force_login(household_user)
    to_confirm = person.post("/o/device/", {"user_code": device["user_code"]})
    done = person.post(to_confirm["Location"], {"action": "accept"}, follow=True)
    # The "done" page sends the person to their own Connected apps, not to an admin they cannot open.
    assert 'href="/account/apps/"' in done.content.decode()
    assert "admin" not in text_of(done).lower()
    poll = {"grant_type": DEVICE_GRANT, "device_code": device["device_code"], "client_id": client_id}
    first = form_post(script, "/o/token/", poll).json()
    renewed = form_post(
        script,
        "/o/token/",
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": client_id},
    ).json()
    assert "access_token" in renewed, renewed

    page = person.get("/account/apps/")
    listed = re.findall(r'action="/account/apps/(\d+)/revoke/"', page.content.decode())
    assert len(listed) == 1, "one approval is one connection, however often it renewed"
    assert listed_apps(page) == ["script"]
    assert "heating:read" in text_of(page)
    person.post(f"/account/apps/{listed[0]}/revoke/")

    bearer = {"Authorization": f"Bearer {renewed['access_token']}"}
    assert script.get("/v1/users/me", headers=bearer).status_code == 401
    again = form_post(
        script,
        "/o/token/",
        {"grant_type": "refresh_token", "refresh_token": renewed["refresh_token"], "client_id": client_id},
    )
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert re.findall(r"/account/apps/\d+/revoke/", person.get("/account/apps/").content.decode()) == []
