"""Who may open ``/ws/push``, through the application ``hub/asgi.py`` builds (origin check, session, bearer token)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from hub.asgi import build_application
from tests.messaging.push_support import HOST, ORIGIN, Socket, WebsocketCommunicator, bearer_token
from tests.support.waiting import async_wait_until

# Token and session look-ups run again on PostgreSQL (make test's second pass).
pytestmark = [pytest.mark.usefixtures("memory_bus"), pytest.mark.postgres]


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def open_socket(*, origin: str | None = ORIGIN, cookie: str | None = None, token: str | None = None):
    headers = [(b"host", HOST.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    communicator = WebsocketCommunicator(build_application(run_embedded=False), "/ws/push", headers)
    accepted, _ = await communicator.connect()
    return accepted, Socket(communicator)


async def assert_usable(socket: Socket) -> None:
    assert await socket.request({"op": "ping", "id": 1}) == {"op": "pong", "id": 1}
    assert await socket.subscribe("/home/#", 2) == {"op": "ack", "id": 2}
    await socket.close()


async def test_a_signed_in_browser_from_an_allowed_origin_connects(household):
    accepted, socket = await open_socket(cookie=await sync_to_async(session_cookie)(household))
    assert accepted
    await assert_usable(socket)


async def test_a_disallowed_origin_is_refused_at_the_handshake(household):
    cookie = await sync_to_async(session_cookie)(household)
    accepted, _socket = await open_socket(origin="http://evil.example", cookie=cookie)
    assert not accepted, "refused before accepting: the server answers the handshake with 403"


async def test_no_signed_in_user_is_closed_with_4401(grants_db):
    accepted, socket = await open_socket()
    assert accepted
    assert await socket.closed_with() == 4401


async def test_a_session_cookie_without_origin_is_not_enough(household):
    # Not a browser: it must bring a bearer token.
    accepted, socket = await open_socket(origin=None, cookie=await sync_to_async(session_cookie)(household))
    assert accepted
    assert await socket.closed_with() == 4401


async def test_no_origin_with_a_push_read_token_connects(household):
    token = await sync_to_async(bearer_token)(household, "push:read")
    accepted, socket = await open_socket(origin=None, token=token)
    assert accepted
    await assert_usable(socket)


async def test_the_read_umbrella_scope_is_enough(household):
    token = await sync_to_async(bearer_token)(household, "read")
    _accepted, socket = await open_socket(origin=None, token=token)
    await assert_usable(socket)


@pytest.mark.parametrize(
    ("scope", "expires_in"),
    [("events:read users:read", timedelta(hours=1)), ("push:write", timedelta(hours=1)), ("push:read", -timedelta(1))],
)
async def test_a_token_without_push_read_or_expired_is_closed_with_4401(household, scope, expires_in):
    token = await sync_to_async(bearer_token)(household, scope, expires_in=expires_in)
    accepted, socket = await open_socket(origin=None, token=token)
    assert accepted
    assert await socket.closed_with() == 4401


async def test_an_unknown_token_and_a_disabled_users_token_are_closed_with_4401(household):
    _accepted, socket = await open_socket(origin=None, token="no-such-token")
    assert await socket.closed_with() == 4401
    token = await sync_to_async(bearer_token)(household, "push:read")
    household.is_active = False
    await sync_to_async(household.save)()
    _accepted, socket = await open_socket(origin=None, token=token)
    assert await socket.closed_with() == 4401


async def test_a_token_grants_no_more_than_the_users_groups(household):
    token = await sync_to_async(bearer_token)(household, "push:read")
    _accepted, socket = await open_socket(origin=None, token=token)
    reply = await socket.subscribe("#", 1)
    assert reply["op"] == "error"
    assert "may not subscribe" in reply["message"]
    await socket.close()


def quick_recheck_app():
    """The hub's stack around a consumer that re-checks its credentials every 0.1 s."""
    from channels.routing import URLRouter
    from django.urls import path

    from messaging.auth import push_auth_stack
    from messaging.consumers import PushConsumer

    return push_auth_stack(URLRouter([path("ws/push", PushConsumer.as_asgi(reauth_interval=0.1))]))


async def open_quick_socket(headers) -> Socket:
    communicator = WebsocketCommunicator(quick_recheck_app(), "/ws/push", [(b"host", HOST.encode()), *headers])
    accepted, _ = await communicator.connect()
    assert accepted
    return Socket(communicator)


async def test_an_open_socket_is_closed_with_4401_once_its_token_is_revoked(household, monkeypatch):
    from oauth2_provider.models import AccessToken

    from messaging import consumers

    checks = []
    real_check = consumers.still_authenticated

    async def counted_check(scope):
        checks.append(await real_check(scope))
        return checks[-1]

    monkeypatch.setattr(consumers, "still_authenticated", counted_check)
    token = await sync_to_async(bearer_token)(household, "push:read")
    socket = await open_quick_socket([(b"authorization", f"Bearer {token}".encode())])
    assert await socket.request({"op": "ping", "id": 1}) == {"op": "pong", "id": 1}
    await async_wait_until(lambda: len(checks) >= 3)  # three re-checks of a valid token
    assert checks[:3] == [True, True, True]
    assert await socket.request({"op": "ping", "id": 2}) == {"op": "pong", "id": 2}, "still valid: still open"
    await sync_to_async(lambda: AccessToken.objects.filter(user=household).delete())()
    assert await socket.closed_with() == 4401


async def test_an_open_browser_socket_is_closed_with_4401_on_sign_out_or_when_the_account_is_disabled(household):
    client = Client()
    await sync_to_async(client.force_login)(household)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    headers = [(b"origin", ORIGIN.encode()), (b"cookie", cookie.encode())]
    socket = await open_quick_socket(headers)
    await sync_to_async(client.logout)()
    assert await socket.closed_with() == 4401

    await sync_to_async(client.force_login)(household)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    socket = await open_quick_socket([(b"origin", ORIGIN.encode()), (b"cookie", cookie.encode())])
    household.is_active = False
    await sync_to_async(household.save)()
    assert await socket.closed_with() == 4401


async def test_a_socket_stays_open_while_its_credentials_cannot_be_checked_and_closes_once_they_fail(
    household, monkeypatch
):
    from django.db import OperationalError

    from messaging import consumers

    state = {"checks": 0, "database": "restarting"}

    async def flaky_check(scope):
        state["checks"] += 1
        if state["database"] == "restarting":
            raise OperationalError("the database is restarting")
        return False  # answered again: the token was revoked meanwhile

    monkeypatch.setattr(consumers, "still_authenticated", flaky_check)
    token = await sync_to_async(bearer_token)(household, "push:read")
    socket = await open_quick_socket([(b"authorization", f"Bearer {token}".encode())])
    await async_wait_until(lambda: state["checks"] >= 3)  # three checks that could not be made
    assert await socket.request({"op": "ping", "id": 1}) == {"op": "pong", "id": 1}, "kept while unknown"
    state["database"] = "back"
    assert await socket.closed_with() == 4401
