"""OAuth 2.0 tokens for scripts, the session (with CSRF) for the hub's pages, scopes AND user rights."""

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit

import pytest
from django.contrib.auth.models import User
from django.test import Client
from oauth2_provider.models import AccessToken, Application
from oauth2_provider.scopes import get_scopes_backend

from hub.api.scopes import api_scopes, scoped_apps
from hub.models import Heartbeat

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.hub.api.resource_urls")]


def error_anchor(response) -> str:
    return response.json()["more_info"].rsplit("#", 1)[1]


def test_the_scopes_are_exactly_the_specs():
    expected = {"read", "write"} | {f"{app}:{access}" for app in scoped_apps() for access in ("read", "write")}
    assert set(api_scopes()) == expected
    assert set(scoped_apps()) == {"heating", "downloads", "events", "push", "users"}


def test_the_apps_registered_scopes_keep_their_order_and_reach_oauth_and_the_schema(client):
    """Registered from each app's ready(), the scopes are listed in the same order as when hub named the apps."""
    assert list(api_scopes()) == [
        "read",
        "write",
        *(
            f"{app}:{access}"
            for app in ("heating", "downloads", "events", "push", "users")
            for access in ("read", "write")
        ),
    ]
    assert api_scopes()["heating:write"] == "Write heating"
    assert get_scopes_backend().get_all_scopes() == api_scopes()
    assert get_scopes_backend().get_default_scopes() == ["read"]
    schema = client.get("/v1/schema").json()
    flows = schema["components"]["securitySchemes"]["oauth2"]["flows"]
    assert list(next(iter(flows.values()))["scopes"]) == list(api_scopes())


def test_no_credentials_is_401_with_a_bearer_challenge(client):
    response = client.get("/v1/users/me")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert error_anchor(response) == "not-authenticated"


def test_an_expired_token_is_401_with_the_error_body(client, household_user, bearer):
    headers = bearer(household_user, "users:read", expires_in=timedelta(seconds=-1))
    response = client.get("/v1/users/me", headers=headers)
    assert response.status_code == 401
    assert error_anchor(response) == "invalid-token"
    assert "expired" in response.json()["message"]
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_an_unknown_token_is_401_with_the_error_body(client):
    response = client.get("/v1/users/me", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    assert error_anchor(response) == "invalid-token"


def test_a_disabled_accounts_tokens_stop_working_at_once(client, household_user, bearer):
    headers = bearer(household_user, "users:read")
    assert client.get("/v1/users/me", headers=headers).status_code == 200
    household_user.is_active = False
    household_user.save()
    for path in ("/v1/users/me", "/v1/search?q=a"):
        response = client.get(path, headers=headers)
        assert response.status_code == 401
        assert "disabled" in response.json()["message"]


def test_a_token_without_the_scope_is_403_naming_the_scope(client, household_user, bearer):
    response = client.get("/v1/users/me", headers=bearer(household_user, "events:read heating:read"))
    assert response.status_code == 403
    assert error_anchor(response) == "insufficient-scope"
    assert "users:read" in response.json()["message"]


def test_a_token_with_the_scope_reads_users_me(client, household_user, bearer):
    response = client.get("/v1/users/me", headers=bearer(household_user, "users:read"))
    assert response.status_code == 200
    assert response.json()["username"] == "alice"


@pytest.mark.parametrize(
    ("scope", "status"), [("read", 200), ("write", 403), ("users:write", 403), ("read write", 200)]
)
def test_read_and_write_are_umbrellas_for_their_access_only(client, household_user, bearer, scope, status):
    assert client.get("/v1/users/me", headers=bearer(household_user, scope)).status_code == status


def test_writes_need_the_write_scope(client, household_user, bearer):
    payload = {"name": "boiler", "beat_at": "2026-11-28T07:30:00.000Z"}
    read_only = bearer(household_user, "events:read")
    assert client.get("/v1/beats", headers=read_only).status_code == 200
    refused = client.post("/v1/beats", data=payload, content_type="application/json", headers=read_only)
    assert refused.status_code == 403
    assert "events:write" in refused.json()["message"]
    for scope in ("events:write", "write"):
        payload["name"] = scope.replace(":", "-")
        created = client.post(
            "/v1/beats", data=payload, content_type="application/json", headers=bearer(household_user, scope)
        )
        assert created.status_code == 201, created.content


def test_a_scope_does_not_lend_the_user_a_right_it_lacks(client, household_user, staff_user, bearer):
    Heartbeat.objects.create(name="boiler", beat_at=datetime(2026, 11, 28, tzinfo=UTC))
    refused = client.delete("/v1/beats/boiler", headers=bearer(household_user, "events:write"))
    assert refused.status_code == 403
    assert error_anchor(refused) == "permission-denied"
    assert "hub.send_commands" in refused.json()["message"]
    assert client.delete("/v1/beats/boiler", headers=bearer(staff_user, "events:write")).status_code == 204


def test_staff_only_resources_refuse_household_users_by_session_and_by_token(
    client, household_user, staff_user, bearer
):
    assert client.get("/v1/staff-only", headers=bearer(household_user, "downloads:read")).status_code == 403
    assert client.get("/v1/staff-only", headers=bearer(staff_user, "downloads:read")).status_code == 200
    assert client.get("/v1/staff-only", headers=bearer(staff_user, "events:read")).status_code == 403
    client.force_login(household_user)
    response = client.get("/v1/staff-only")
    assert response.status_code == 403
    assert "staff" in response.json()["message"].lower()
    client.force_login(staff_user)
    assert client.get("/v1/staff-only").status_code == 200


def test_required_scopes_per_method_fall_back_to_the_apps_scope(client, staff_user, bearer):
    downloads = bearer(staff_user, "downloads:read downloads:write")
    assert client.get("/v1/staff-only", headers=downloads).status_code == 200
    refused = client.post("/v1/staff-only", content_type="application/json", headers=downloads)
    assert refused.status_code == 403
    assert "push:write" in refused.json()["message"]
    allowed = client.post("/v1/staff-only", content_type="application/json", headers=bearer(staff_user, "push:write"))
    assert allowed.status_code == 200


def test_an_actions_scope_wins_over_its_method(client, household_user, bearer):
    Heartbeat.objects.create(name="boiler", beat_at=datetime(2026, 11, 28, tzinfo=UTC))
    path = "/v1/beats/boiler/silence"
    refused = client.post(path, content_type="application/json", headers=bearer(household_user, "events:write"))
    assert refused.status_code == 403
    assert "push:write" in refused.json()["message"]
    allowed = client.post(path, content_type="application/json", headers=bearer(household_user, "push:write"))
    assert allowed.status_code == 200


def test_a_view_declaring_no_scope_is_closed_to_tokens_but_open_to_sessions(client, household_user, bearer):
    assert client.get("/v1/undeclared", headers=bearer(household_user, "read write")).status_code == 403
    client.force_login(household_user)
    assert client.get("/v1/undeclared").status_code == 200


def test_a_session_needs_no_scope(client, household_user):
    client.force_login(household_user)
    assert client.get("/v1/users/me").status_code == 200


def test_a_session_write_needs_the_csrf_token(household_user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(household_user)
    payload = {"name": "boiler", "beat_at": "2026-11-28T07:30:00.000Z"}
    refused = browser.post("/v1/beats", data=payload, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["message"]
    token = "hubcsrfsecret" + "x" * 19  # what a page's CSRF cookie holds, echoed by its JavaScript
    browser.cookies["csrftoken"] = token
    accepted = browser.post("/v1/beats", data=payload, content_type="application/json", headers={"X-CSRFToken": token})
    assert accepted.status_code == 201, accepted.content


def test_a_token_request_needs_no_csrf_token(household_user, bearer):
    script = Client(enforce_csrf_checks=True)
    payload = {"name": "boiler", "beat_at": "2026-11-28T07:30:00.000Z"}
    response = script.post(
        "/v1/beats", data=payload, content_type="application/json", headers=bearer(household_user, "events:write")
    )
    assert response.status_code == 201


def test_users_me_describes_the_caller(client, staff_user, household_user):
    client.force_login(household_user)
    alice = client.get("/v1/users/me").json()
    assert alice["username"] == "alice"
    assert alice["name"] == "Alice Liddell"
    assert alice["email"] == "alice@example.test"
    assert alice["groups"] == ["household"]
    assert alice["permissions"] == ["heating.control"]  # the household may change rooms, not switch hardware
    assert alice["is_staff"] is False
    client.force_login(staff_user)
    bob = client.get("/v1/users/me").json()
    assert bob["groups"] == ["staff"]
    assert "hub.send_commands" in bob["permissions"]
    assert bob["is_staff"] is True


def _form_value(html: str, name: str) -> str:
    return re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', html).group(1)


DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# No 5 s polling wait. The toolkit's views keep the oauthlib server they build first (with its interval) for good;
# ALWAYS_RELOAD_OAUTHLIB_CORE makes them build it from the settings of the moment.
NO_POLLING_WAIT = {"DEVICE_FLOW_INTERVAL": 0, "ALWAYS_RELOAD_OAUTHLIB_CORE": True}


def form_post(client: Client, path: str, fields: dict):
    """As curl -d sends it: OAuth endpoints take application/x-www-form-urlencoded only."""
    return client.post(path, urlencode(fields), content_type="application/x-www-form-urlencoded")


def _admin_registers_a_script_app(admin_browser: Client) -> str:
    """What docs/api.md tells an admin to do in the Django admin; returns the client id it shows."""
    form = admin_browser.get("/admin/oauth2_provider/application/add/").content.decode()
    client_id, client_secret = _form_value(form, "client_id"), _form_value(form, "client_secret")
    saved = admin_browser.post(
        "/admin/oauth2_provider/application/add/",
        {
            "client_id": client_id,
            "initial-client_id": client_id,
            "client_secret": client_secret,
            "initial-client_secret": client_secret,
            "hash_client_secret": "on",
            "name": "thermostat script",
            "client_type": Application.CLIENT_PUBLIC,
            "authorization_grant_type": Application.GRANT_DEVICE_CODE,
            "redirect_uris": "",
            "post_logout_redirect_uris": "",
            "allowed_origins": "",
            "algorithm": "",
            "user": "",
            "_save": "Save",
        },
    )
    assert saved.status_code == 302, re.findall(r'class="errorlist[^"]*"[^>]*>(.*?)</ul>', saved.content.decode())
    return client_id


def test_admin_registers_an_app_then_a_script_gets_a_token_and_calls_the_api(household_user, settings):
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, **NO_POLLING_WAIT}
    admin_browser = Client()
    admin_browser.force_login(User.objects.create_superuser("root", "", "a long admin password"))
    client_id = _admin_registers_a_script_app(admin_browser)
    assert Application.objects.get(client_id=client_id).authorization_grant_type == Application.GRANT_DEVICE_CODE

    script = Client()  # no session, no cookies: what curl does
    started = form_post(script, "/o/device-authorization/", {"client_id": client_id, "scope": "users:read"})
    assert started.status_code == 200, started.content
    device = started.json()
    assert device["verification_uri"] == f"{settings.HUB_PUBLIC_URL}/o/device/"

    def poll():
        return form_post(
            script,
            "/o/token/",
            {"grant_type": DEVICE_GRANT, "device_code": device["device_code"], "client_id": client_id},
        )

    pending = poll()
    assert pending.status_code == 400
    assert pending.json()["error"] == "authorization_pending"

    # The user opens the link the script printed, signs in (the hub's login page) and approves.
    user_browser = Client()
    link = urlsplit(device["verification_uri_complete"])
    assert user_browser.get(f"{link.path}?{link.query}").status_code == 302  # to the login page first
    user_browser.force_login(household_user)
    form = user_browser.get(f"{link.path}?{link.query}")
    assert form.status_code == 200
    assert device["user_code"] in form.content.decode()
    to_confirm = user_browser.post(link.path, {"user_code": device["user_code"]})
    assert to_confirm.status_code == 302
    confirmed = user_browser.post(to_confirm["Location"], {"action": "accept"})
    assert confirmed.status_code == 302

    granted = poll()
    assert granted.status_code == 200, granted.content
    token = granted.json()
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "users:read"
    me = script.get("/v1/users/me", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.status_code == 200
    assert me.json()["username"] == "alice"
    # Stored hashed: a copy of the database does not hand out working tokens.
    assert not AccessToken.objects.filter(token=token["access_token"]).exists()

    refreshed = form_post(
        script,
        "/o/token/",
        {"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": client_id},
    )
    assert refreshed.status_code == 200, refreshed.content
    again = script.get("/v1/users/me", headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"})
    assert again.status_code == 200


@pytest.fixture
def device_decided(household_user, oauth_application, settings):
    """``device_decided("accept" | "deny", **device_request)`` → the script's token poll after the user decided."""
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, **NO_POLLING_WAIT}
    client_id = oauth_application.client_id

    def decide(action: str, **device_request):
        script = Client()
        device = form_post(script, "/o/device-authorization/", {"client_id": client_id, **device_request}).json()
        user_browser = Client()
        user_browser.force_login(household_user)
        to_confirm = user_browser.post("/o/device/", {"user_code": device["user_code"]})
        user_browser.post(to_confirm["Location"], {"action": action})
        poll = {"grant_type": DEVICE_GRANT, "device_code": device["device_code"], "client_id": client_id}
        return form_post(script, "/o/token/", poll)

    return decide


def test_a_denied_device_gets_no_token(device_decided):
    refused = device_decided("deny")
    assert refused.status_code == 400
    assert refused.json()["error"] == "access_denied"


def test_a_device_asking_no_scope_gets_read_only(device_decided):
    granted = device_decided("accept")
    assert granted.status_code == 200, granted.content
    assert granted.json()["scope"] == "read"


def test_a_device_gets_the_scopes_it_asked_for(device_decided):
    granted = device_decided("accept", scope="events:read heating:write")
    assert granted.status_code == 200, granted.content
    assert set(granted.json()["scope"].split()) == {"events:read", "heating:write"}


def test_the_password_grant_is_refused(household_user):
    # RFC 9700: a script must never hold the user's password; the device grant replaces it.
    application = Application.objects.create(
        name="legacy", client_type=Application.CLIENT_PUBLIC, authorization_grant_type=Application.GRANT_PASSWORD
    )
    response = form_post(
        Client(),
        "/o/token/",
        {
            "grant_type": "password",
            "username": "alice",
            "password": "correct horse battery",
            "client_id": application.client_id,
        },
    )
    assert response.status_code in (400, 401)
    assert "access_token" not in response.json()


def test_a_token_in_the_query_string_is_not_accepted(client, household_user, bearer):
    raw = bearer(household_user, "users:read")["Authorization"].split()[1]
    assert client.get(f"/v1/users/me?access_token={raw}").status_code == 401


def test_a_device_asking_a_scope_the_hub_does_not_have_gets_no_code(oauth_application):
    # Refused at once (RFC 8628 section 3.2), not shown to the user and refused after they approved it.
    refused = form_post(
        Client(), "/o/device-authorization/", {"client_id": oauth_application.client_id, "scope": "admin read"}
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_scope"


def test_the_device_pages_wear_the_hubs_look(client, household_user):
    client.force_login(household_user)
    html = client.get("/o/device/").content.decode()
    assert "/static/vendor/bootstrap/" in html
    assert "Connect a device or script" in html
    assert 'name="user_code"' in html
