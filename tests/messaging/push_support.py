"""Helpers for the live-push tests: users with grants, a fresh in-memory bus, communicators."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
from collections.abc import Iterator
from datetime import timedelta

from asgiref.testing import ApplicationCommunicator
from django.contrib.auth.models import Group, Permission, User
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, set_token_value

from messaging import push
from messaging.consumers import PushConsumer
from messaging.push.bus import MemoryBus

ORIGIN = "http://127.0.0.1:8000"
HOST = "127.0.0.1:8000"


@contextlib.contextmanager
def memory_bus_in_use() -> Iterator[MemoryBus]:
    """A fresh in-memory push bus for the web process, the default one again afterwards."""
    bus = MemoryBus()
    push.use_bus(bus)
    try:
        yield bus
    finally:
        push.use_bus(None)


def make_user(name: str, *groups: str, perms: tuple[str, ...] = (), **fields) -> User:
    user = User.objects.create_user(name, password="correct horse battery", **fields)
    for group in groups:
        user.groups.add(Group.objects.get(name=group))
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


def ensure_default_grants() -> None:
    """The groups and default grants the data migrations create (a transactional test flushed them)."""
    from django.apps import apps

    grants_migration = importlib.import_module("messaging.migrations.0003_default_topic_grants")
    grants_migration.create_default_grants(apps, None)
    importlib.import_module("messaging.migrations.0004_topic_grants_follow_home_prefix").follow_prefix(apps, None)


def bearer_token(user: User, scope: str, *, expires_in: timedelta = timedelta(hours=1)) -> str:
    application, _ = Application.objects.get_or_create(
        name="push-test",
        defaults={"client_type": Application.CLIENT_PUBLIC, "authorization_grant_type": Application.GRANT_DEVICE_CODE},
    )
    raw = f"push-token-{user.pk}-{scope}-{expires_in.total_seconds()}"
    token = AccessToken(user=user, application=application, scope=scope, expires=timezone.now() + expires_in)
    set_token_value(token, raw)
    token.save()
    return raw


class WebsocketCommunicator(ApplicationCommunicator):
    """Channels' ``WebsocketCommunicator`` in a few lines: importing ``channels.testing`` needs daphne."""

    def __init__(self, application, path: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        scope = {
            "type": "websocket",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": headers or [],
            "subprotocols": [],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        super().__init__(application, scope)

    async def connect(self, timeout: float = 2.0):
        """(accepted, close code or None)"""
        await self.send_input({"type": "websocket.connect"})
        response = await self.receive_output(timeout)
        if response["type"] == "websocket.close":
            return False, response.get("code", 1000)
        return True, None

    async def send_to(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is not None:
            await self.send_input({"type": "websocket.receive", "text": text_data})
        else:
            await self.send_input({"type": "websocket.receive", "bytes": bytes_data})

    async def receive_from(self, timeout: float = 2.0) -> str:
        response = await self.receive_output(timeout)
        assert response["type"] == "websocket.send", response
        return response["text"]

    async def disconnect(self, code: int = 1000, timeout: float = 2.0) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": code})
        await self.wait(timeout)


class Socket:
    """A connected :class:`WebsocketCommunicator` speaking the push protocol."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator

    async def send(self, frame) -> None:
        text = frame if isinstance(frame, str) else json.dumps(frame)
        await self.communicator.send_to(text_data=text)

    async def receive(self, timeout: float = 2.0) -> dict:
        return json.loads(await self.communicator.receive_from(timeout))

    async def request(self, frame: dict, timeout: float = 2.0) -> dict:
        await self.send(frame)
        return await self.receive(timeout)

    async def subscribe(self, topic: str, sub_id) -> dict:
        return await self.request({"op": "subscribe", "topic": topic, "id": sub_id})

    async def nothing_more(self, timeout: float = 0.2) -> bool:
        return await self.communicator.receive_nothing(timeout)

    async def closed_with(self, timeout: float = 2.0) -> int:
        """Skip frames until the server closes; its close code."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            output = await self.communicator.receive_output(max(0.01, deadline - asyncio.get_running_loop().time()))
            if output["type"] == "websocket.close":
                return output.get("code", 1000)

    async def close(self) -> None:
        await self.communicator.disconnect()


def _send_as_future(application):
    """``application`` under a server whose ``send`` returns a future rather than a coroutine (as granian's)."""

    async def app(scope, receive, send):
        return await application(scope, receive, lambda message: asyncio.ensure_future(send(message)))

    return app


async def connect_consumer(
    user, *, unread_frames: int | None = None, send_as_future: bool = False, **initkwargs
) -> Socket:
    """The consumer alone, the user already authenticated (protocol tests).

    With ``unread_frames``, the "server" holds at most that many frames the test has not read, and makes the
    consumer's next send wait until it reads one: a peer that reads slowly, as a real server's full buffer does.
    With ``send_as_future``, its ``send`` returns a future, not a coroutine.
    """
    application = PushConsumer.as_asgi(**initkwargs)
    if send_as_future:
        application = _send_as_future(application)
    communicator = WebsocketCommunicator(application, "/ws/push")
    if unread_frames is not None:
        communicator._output_queue = asyncio.Queue(maxsize=unread_frames)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    return Socket(communicator)


async def assert_bus_subscribers(url: str, channel: str, count: int, *, timeout: float = 5) -> None:
    """Wait until ``count`` subscribers listen on the push bus's Redis channel, and check there are no more: each
    web process subscribes once, whatever its number of sockets."""
    import redis

    from tests.support.waiting import async_wait_until

    client = redis.Redis.from_url(url)
    try:
        await async_wait_until(lambda: client.pubsub_numsub(channel)[0][1] >= count, timeout=timeout)
        assert client.pubsub_numsub(channel)[0][1] == count
    finally:
        client.close()
