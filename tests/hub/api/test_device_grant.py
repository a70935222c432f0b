"""The device authorization grant (RFC 8628) as a standard client drives it: authlib against a live hub.

A device code is single use (a second exchange is ``invalid_grant``, also when two race) and bound to its
client; a device-grant token request without ``device_code`` is a 400 ``invalid_request``, not a 500 page, and
so are a device-authorization request without client_id and any OAuth parameter holding a NUL character.
The errors are RFC 8628's and RFC 6749's: an unknown code is ``invalid_grant`` and an unknown client
``invalid_client``, an expired code ``expired_token``, polling faster than the interval ``slow_down`` (and the
interval grows by 5 s), an unknown scope ``invalid_scope`` when the code is asked for.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings as django_settings
from django.db import connection
from django.db.models import F
from django.test import Client
from oauth2_provider.models import AccessToken, Application, DeviceGrant, RefreshToken
from oauth2_provider.oauth2_validators import OAuth2Validator

pytestmark = pytest.mark.postgres  # also run on PostgreSQL (make test): its locks and its NUL handling differ

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def polling_every(seconds: int) -> dict:
    """OAUTH2_PROVIDER settings for a device grant polled every ``seconds``. The toolkit's views keep the oauthlib
    server they build first (with its interval) for good; ALWAYS_RELOAD_OAUTHLIB_CORE makes them build it from
    the settings of the moment, so the interval a test sets is the one the hub announces and enforces."""
    return {"DEVICE_FLOW_INTERVAL": seconds, "ALWAYS_RELOAD_OAUTHLIB_CORE": True}


# The race below runs each exchange on its own thread and database connection. pytest-django's in-memory
# SQLite test database shares one cache between connections, where a second writer fails at once with "table
# is locked" instead of waiting as it does on the hub's SQLite file (busy timeout, IMMEDIATE transactions).
# So, as the browser tests do (a full run collects them, and with them this setting), the session's SQLite
# test database is a file whenever this module is collected.
_database = django_settings.DATABASES["default"]
if _database["ENGINE"] == "django.db.backends.sqlite3" and not _database.get("TEST", {}).get("NAME"):
    _database.setdefault("TEST", {})["NAME"] = str(Path(django_settings.HUB_VAR_DIR) / "test-browser.sqlite3")


@pytest.fixture
def hub(live_server, django_db_serialized_rollback, settings):
    """The live hub's base URL; the test's database is the one it serves, restored (groups too) afterwards."""
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, **polling_every(0)}
    return live_server.url


def script_client(application: Application) -> OAuth2Session:
    # A public client: it authenticates by sending its client_id in the body (RFC 6749 section 2.3.1).
    return OAuth2Session(client_id=application.client_id, token_endpoint_auth_method="none", scope="users:read")


def ask_for_a_code(hub: str, session: OAuth2Session, scope: str = "users:read") -> requests.Response:
    return session.post(
        f"{hub}/o/device-authorization/",
        data={"client_id": session.client_id, "scope": scope},
        withhold_token=True,  # no token yet: this is how the script gets one
    )


def start_device_flow(hub: str, session: OAuth2Session) -> dict:
    """What a script does first: ask for a device code and a user code (RFC 8628 section 3.1)."""
    answer = ask_for_a_code(hub, session)
    assert answer.status_code == 200, answer.text
    return answer.json()


def user_approves(user, user_code: str) -> None:
    """The user types the code on the hub's device page, signed in, and allows it."""
    browser = Client()
    browser.force_login(user)
    to_confirm = browser.post("/o/device/", {"user_code": user_code})
    assert to_confirm.status_code == 302, to_confirm.content
    assert browser.post(to_confirm["Location"], {"action": "accept"}).status_code == 302


def exchange(hub: str, session: OAuth2Session, device_code: str) -> dict:
    return session.fetch_token(f"{hub}/o/token/", grant_type=DEVICE_GRANT, device_code=device_code)


def test_a_device_code_gives_tokens_once_then_invalid_grant(hub, household_user, oauth_application):
    script = script_client(oauth_application)
    device = start_device_flow(hub, script)
    with pytest.raises(OAuthError) as pending:
        exchange(hub, script, device["device_code"])
    assert pending.value.error == "authorization_pending"

    user_approves(household_user, device["user_code"])
    token = exchange(hub, script, device["device_code"])
    assert token["token_type"] == "Bearer"
    me = requests.get(f"{hub}/v1/users/me", headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=10)
    assert me.status_code == 200
    assert me.json()["username"] == "alice"

    # Replayed (a copy from a log, shell history or a second process): no second token family.
    with pytest.raises(OAuthError) as replayed:
        exchange(hub, script_client(oauth_application), device["device_code"])
    assert replayed.value.error == "invalid_grant"
    assert AccessToken.objects.count() == 1
    assert RefreshToken.objects.count() == 1
    # The first exchange's tokens keep working: a refused replay revokes nothing.
    refreshed = script.refresh_token(f"{hub}/o/token/", refresh_token=token["refresh_token"])
    assert refreshed["access_token"] != token["access_token"]


def test_a_device_code_is_refused_to_another_client(hub, household_user, oauth_application):
    script = script_client(oauth_application)
    device = start_device_flow(hub, script)
    user_approves(household_user, device["user_code"])
    other_app = Application.objects.create(
        name="another script",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_DEVICE_CODE,
    )
    with pytest.raises(OAuthError) as refused:
        exchange(hub, script_client(other_app), device["device_code"])
    assert refused.value.error == "invalid_grant"
    assert not AccessToken.objects.exists()
    # The client it was issued to still gets its tokens.
    assert exchange(hub, script, device["device_code"])["access_token"]


def test_a_device_token_request_without_device_code_is_invalid_request(hub, oauth_application):
    script = script_client(oauth_application)
    with pytest.raises(OAuthError) as refused:
        script.fetch_token(f"{hub}/o/token/", grant_type=DEVICE_GRANT)
    assert refused.value.error == "invalid_request"
    # As curl sends it: a JSON 400, not Django's 500 page.
    answer = requests.post(
        f"{hub}/o/token/",
        data=urlencode({"grant_type": DEVICE_GRANT, "client_id": oauth_application.client_id}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert answer.status_code == 400
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["error"] == "invalid_request"
    empty = requests.post(f"{hub}/o/token/", data={"grant_type": DEVICE_GRANT, "device_code": ""}, timeout=10)
    assert (empty.status_code, empty.json()["error"]) == (400, "invalid_request")


def test_a_device_authorization_request_it_cannot_read_is_invalid_request(hub):
    # curl -X POST: no body and no Content-Type, which oauthlib read anyway: a 500 page. Sent through the test
    # client, as uvicorn hands it to the hub (no CONTENT_TYPE at all; the WSGI live server would add text/plain).
    bare = Client(raise_request_exception=False).generic("POST", "/o/device-authorization/")
    assert (bare.status_code, bare.json()["error"]) == (400, "invalid_request")
    no_client = requests.post(f"{hub}/o/device-authorization/", data={"scope": "read"}, timeout=10)
    assert (no_client.status_code, no_client.json()["error"]) == (400, "invalid_request")


@pytest.mark.parametrize(
    ("endpoint", "fields"),
    [
        ("token/", {"grant_type": DEVICE_GRANT, "device_code": "a\x00b"}),
        ("token/", {"grant_type": "refresh_token", "refresh_token": "x", "client_id": "\x00"}),
        ("revoke_token/", {"token": "\x00", "client_id": "x"}),
        ("introspect/", {"token": "\x00"}),
        ("device-authorization/", {"client_id": "\x00"}),
    ],
)
def test_a_nul_in_an_oauth_parameter_is_invalid_request(hub, endpoint, fields):
    # PostgreSQL cannot compare text holding NUL: looking the value up was a 500 page there.
    answer = requests.post(f"{hub}/o/{endpoint}", data=fields, timeout=10)
    assert answer.status_code == 400, answer.text[:300]
    assert answer.json()["error"] == "invalid_request"


def test_two_simultaneous_exchanges_of_one_code_give_exactly_one_token(
    transactional_db, django_db_serialized_rollback, household_user, oauth_application, settings, monkeypatch
):
    """Each exchange in its own thread and database connection, held inside the token write so that both
    would have read the grant as AUTHORIZED before either commits, were the exchange not serialized."""
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, **polling_every(0)}
    script = Client()
    started = script.post(
        "/o/device-authorization/",
        urlencode({"client_id": oauth_application.client_id}),
        content_type="application/x-www-form-urlencoded",
    )
    device = started.json()
    user_approves(household_user, device["user_code"])

    racers = 4
    inside_token_write = threading.Barrier(racers, timeout=1.5)
    save_bearer_token = OAuth2Validator.save_bearer_token

    def slow_save(self, token, request, *args, **kwargs):
        # Wait (briefly) for every racer to reach this point: with the exchange serialized only one ever does,
        # and the barrier times out; without it, all of them would be here at once.
        with contextlib.suppress(threading.BrokenBarrierError):
            inside_token_write.wait()
        return save_bearer_token(self, token, request, *args, **kwargs)

    monkeypatch.setattr(OAuth2Validator, "save_bearer_token", slow_save)
    answers: list[tuple[int, dict]] = []

    def race():
        try:
            response = Client().post(
                "/o/token/",
                urlencode(
                    {
                        "grant_type": DEVICE_GRANT,
                        "device_code": device["device_code"],
                        "client_id": oauth_application.client_id,
                    }
                ),
                content_type="application/x-www-form-urlencoded",
            )
            answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=race) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] + [400] * (racers - 1), answers
    assert all(body["error"] == "invalid_grant" for status, body in answers if status == 400)
    assert AccessToken.objects.count() == 1


def exchange_error(hub: str, session: OAuth2Session, device_code: str) -> str:
    with pytest.raises(OAuthError) as refused:
        exchange(hub, session, device_code)
    return refused.value.error


def seconds_pass(device_code: str, seconds: float) -> None:
    """The hub's clock, as the grant sees it, moves on by ``seconds`` (its last poll and expiry move back)."""
    DeviceGrant.objects.filter(device_code=device_code).update(
        last_checked=F("last_checked") - timedelta(seconds=seconds), expires=F("expires") - timedelta(seconds=seconds)
    )


def test_an_unknown_device_code_is_invalid_grant_and_an_unknown_client_invalid_client(hub, oauth_application):
    script = script_client(oauth_application)
    assert exchange_error(hub, script, "no-such-device-code") == "invalid_grant"
    stranger = script_client(Application(client_id="no-such-client"))
    assert exchange_error(hub, stranger, "no-such-device-code") == "invalid_client"
    device = start_device_flow(hub, script)
    assert exchange_error(hub, stranger, device["device_code"]) == "invalid_client"
    # The statuses RFC 6749 section 5.2 gives them (the toolkit answered 404 device_not_found to both).
    poll = {"grant_type": DEVICE_GRANT, "device_code": "no-such-device-code"}
    unknown_code = requests.post(f"{hub}/o/token/", data={**poll, "client_id": script.client_id}, timeout=10)
    assert (unknown_code.status_code, unknown_code.json()["error"]) == (400, "invalid_grant")
    unknown_client = requests.post(f"{hub}/o/token/", data={**poll, "client_id": "no-such-client"}, timeout=10)
    assert (unknown_client.status_code, unknown_client.json()["error"]) == (401, "invalid_client")


def test_an_expired_device_code_is_expired_token(hub, household_user, oauth_application):
    script = script_client(oauth_application)
    device = start_device_flow(hub, script)
    assert exchange_error(hub, script, device["device_code"]) == "authorization_pending"
    seconds_pass(device["device_code"], device["expires_in"])
    assert exchange_error(hub, script, device["device_code"]) == "expired_token"
    assert exchange_error(hub, script, device["device_code"]) == "expired_token"  # and stays so

    # Approved in time but exchanged too late: no token either.
    approved = start_device_flow(hub, script)
    user_approves(household_user, approved["user_code"])
    seconds_pass(approved["device_code"], approved["expires_in"])
    assert exchange_error(hub, script, approved["device_code"]) == "expired_token"
    assert not AccessToken.objects.exists()


@pytest.fixture
def hub_polled_every_5s(live_server, django_db_serialized_rollback, settings):
    """The live hub with the default polling interval, 5 s."""
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, **polling_every(5)}
    return live_server.url


def test_polling_faster_than_the_interval_is_slow_down_and_the_interval_grows_by_5s(
    hub_polled_every_5s, household_user, oauth_application
):
    hub = hub_polled_every_5s
    script = script_client(oauth_application)
    device = start_device_flow(hub, script)
    code = device["device_code"]
    assert device["interval"] == 5
    # The interval is between polls: the first may come at once.
    assert exchange_error(hub, script, code) == "authorization_pending"
    assert exchange_error(hub, script, code) == "slow_down"  # at once again: too fast; now every 10 s
    seconds_pass(code, 6)
    assert exchange_error(hub, script, code) == "slow_down"  # 6 s was enough before, not now; every 15 s
    seconds_pass(code, 15)
    assert exchange_error(hub, script, code) == "authorization_pending"
    # Kept with the code in the database, so every web process holds the script to it.
    assert DeviceGrant.objects.get(device_code=code).interval == 15
    user_approves(household_user, device["user_code"])
    seconds_pass(code, 10)  # (not 14: a busy machine's real second between the two would make it 15)
    assert exchange_error(hub, script, code) == "slow_down"  # even with the tokens ready
    seconds_pass(code, 20)
    assert exchange(hub, script, code)["access_token"]


def test_a_script_that_honours_the_interval_and_slow_down_gets_its_token(
    hub_polled_every_5s, household_user, oauth_application
):
    """The whole flow as a careful script runs it: poll, wait ``interval``, add 5 s on each ``slow_down``."""
    hub = hub_polled_every_5s
    script = script_client(oauth_application)
    device = start_device_flow(hub, script)
    interval, answers = device["interval"], []
    for poll in range(6):
        if poll == 3:
            user_approves(household_user, device["user_code"])
        try:
            token = exchange(hub, script, device["device_code"])
            break
        except OAuthError as refused:
            answers.append(refused.error)
            interval += 5 if refused.error == "slow_down" else 0
        seconds_pass(device["device_code"], interval)  # the script's sleep(interval)
    assert answers == ["authorization_pending"] * 3
    me = requests.get(f"{hub}/v1/users/me", headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=10)
    assert me.json()["username"] == "alice"


def test_a_code_is_not_cached_and_an_unknown_client_asking_for_one_is_invalid_client(hub, oauth_application):
    issued = ask_for_a_code(hub, script_client(oauth_application))
    assert issued.headers["Cache-Control"] == "no-store"  # the device code is a credential
    refused = ask_for_a_code(hub, script_client(Application(client_id="no-such-client")))
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    assert not DeviceGrant.objects.filter(client_id="no-such-client").exists()


@pytest.mark.parametrize("scope", ["admin", "users:read no-such-app:read"])
def test_an_unknown_scope_is_invalid_scope_before_any_code_is_issued(hub, oauth_application, scope):
    refused = ask_for_a_code(hub, script_client(oauth_application), scope=scope)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_scope"
    assert not DeviceGrant.objects.exists()  # nothing for the user to approve
