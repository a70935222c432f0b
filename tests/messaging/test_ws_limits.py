"""What one user can make a web process hold through ``/ws/push``: each limit exceeded, its refusal, and the
process's memory (peak RSS, from /proc/self/status) staying within a stated bound meanwhile.

The bounds are generous against the noise of a test process (a few MB) and far below what the same attacks
cost before the limits counted bytes: a 60,000-level filter alone held 27 MB of filter index, and a socket
that stopped reading queued up to 1,000 frames of any size.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import socket
import struct
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn
import yaml
from asgiref.sync import sync_to_async
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from hub.asgi import Lifespan
from messaging import push
from messaging.auth import push_auth_stack
from messaging.consumers import PushConsumer
from messaging.push.bus import MemoryBus
from messaging.push.frames import LEVEL_BYTES, MAX_FRAME_BYTES, MAX_REQUEST_CHARS, subscription_bytes
from messaging.push.hub import socket_quota
from tests.browser.support import HubServer
from tests.messaging import push_support
from tests.messaging.push_support import WebsocketCommunicator, bearer_token, connect_consumer
from tests.messaging.test_ws_server import NonReadingClient
from tests.support.memory import MB, PeakRss
from tests.support.waiting import wait_until


def error_about(reply: dict, request_id, *words: str) -> bool:
    return reply["op"] == "error" and reply["id"] == request_id and all(word in reply["message"] for word in words)


# --- subscriptions: how many, and what they hold ---------------------------------------------------------------


@pytest.mark.usefixtures("memory_bus")
async def test_deep_filters_are_refused_before_they_reach_the_filter_index(household):
    socket = await connect_consumer(household)
    with PeakRss() as rss:
        for n in range(5):
            deep = f"/home/{n}" + "/" * 60_000  # inside the household's /home/# grant, 60,003 levels
            reply = await socket.subscribe(deep, n)
            assert error_about(reply, n, "bytes", "per level"), reply
    rss.assert_within(16 * MB)  # accepted, the five held about 135 MB of index
    assert await socket.subscribe("/home/+/measure/#", "ok") == {"op": "ack", "id": "ok"}, "still usable"
    await socket.close()


@pytest.mark.usefixtures("memory_bus")
async def test_long_filters_are_refused_once_a_sockets_subscriptions_hold_push_max_subscription_bytes(
    household, settings
):
    limit = settings.PUSH_MAX_SUBSCRIPTION_BYTES
    assert limit == MB, "the documented default"
    socket = await connect_consumer(household)
    # 60 kB each, near MQTT's 65,535-byte limit on a filter.
    filters = [f"/home/{n}/{'x' * 60_000}" for n in range(40)]
    held = accepted = 0
    with PeakRss() as rss:
        for n, topic_filter in enumerate(filters):
            reply = await socket.subscribe(topic_filter, n)
            if held + subscription_bytes(topic_filter, n) <= limit:
                assert reply == {"op": "ack", "id": n}
                held += subscription_bytes(topic_filter, n)
                accepted += 1
            else:
                assert error_about(reply, n, f"more than the {limit} allowed"), reply
    rss.assert_within(16 * MB)
    assert accepted == 16, "1 MiB holds sixteen such filters"
    # Unsubscribing gives the room back.
    assert await socket.request({"op": "unsubscribe", "topic": filters[0], "id": "u"}) == {"op": "ack", "id": "u"}
    assert await socket.subscribe(filters[-1], "again") == {"op": "ack", "id": "again"}
    await socket.close()


@pytest.mark.usefixtures("memory_bus")
async def test_a_huge_subscription_id_counts_too(household):
    # Every message frame repeats the id: a 200 kB id on each of a few filters is as heavy as a long filter.
    socket = await connect_consumer(household)
    big_id = "i" * 200_000
    replies = [await socket.subscribe(f"/home/room{n}/#", f"{n}{big_id}") for n in range(8)]
    assert [reply["op"] for reply in replies] == ["ack"] * 5 + ["error"] * 3
    await socket.close()


@pytest.mark.usefixtures("memory_bus")
async def test_thousands_of_subscriptions_stop_at_push_max_subscriptions(household, settings):
    assert settings.PUSH_MAX_SUBSCRIPTIONS == 256, "the documented default"
    socket = await connect_consumer(household)
    with PeakRss() as rss:
        replies = [await socket.subscribe(f"/home/room{n}/measure/+", n) for n in range(3_000)]
    rss.assert_within(16 * MB)
    assert all(reply == {"op": "ack", "id": n} for n, reply in enumerate(replies[:256]))
    assert all(error_about(reply, n, "at most 256 subscriptions") for n, reply in enumerate(replies) if n >= 256)
    # The same filter again only renames the subscription: allowed at the limit.
    assert await socket.subscribe("/home/room0/measure/+", "renamed") == {"op": "ack", "id": "renamed"}
    await socket.close()


@pytest.mark.usefixtures("memory_bus")
async def test_the_subscription_limits_are_settings(household, settings):
    settings.PUSH_MAX_SUBSCRIPTIONS = 3
    settings.PUSH_MAX_SUBSCRIPTION_BYTES = 5 * LEVEL_BYTES
    socket = await connect_consumer(household)
    assert (await socket.subscribe("/home/#", 1))["op"] == "ack"  # 3 levels: "", "home", "#"
    assert (await socket.subscribe("/a/b", 2))["op"] == "error", "not granted"
    assert error_about(await socket.subscribe("/home/x/#", 3), 3, "more than the 2560 allowed")
    settings.PUSH_MAX_SUBSCRIPTION_BYTES = 8192
    socket = await connect_consumer(household)
    for n in range(3):
        assert await socket.subscribe(f"/home/{n}", n) == {"op": "ack", "id": n}
    assert error_about(await socket.subscribe("/home/3", 3), 3, "at most 3 subscriptions")
    await socket.close()


# --- sockets per user ------------------------------------------------------------------------------------------


async def open_consumer(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(PushConsumer.as_asgi(), "/ws/push")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected, "accepted first, so a refusal can carry its close code"
    return communicator


@pytest.mark.usefixtures("memory_bus")
async def test_a_user_gets_at_most_push_max_sockets_per_user_sockets_in_a_process(household, staff, settings):
    assert settings.PUSH_MAX_SOCKETS_PER_USER == 20, "the documented default"
    with PeakRss() as rss:
        sockets = [await open_consumer(household) for _ in range(20)]
        refused = [await open_consumer(household) for _ in range(200)]
    rss.assert_within(24 * MB)
    for communicator in refused:
        closed = await communicator.receive_output(2)
        assert closed == {"type": "websocket.close", "code": 4429}
    for communicator in sockets:
        assert await communicator.receive_nothing(0.01), "the first twenty stay open"
    assert socket_quota.open_for(household.pk) == 20
    # Another user is not affected; a closed socket frees its place.
    other = push_support.Socket(await open_consumer(staff))
    assert await other.request({"op": "ping", "id": 1}) == {"op": "pong", "id": 1}
    await sockets[0].disconnect()
    again = push_support.Socket(await open_consumer(household))
    assert await again.request({"op": "ping", "id": 2}) == {"op": "pong", "id": 2}
    for communicator in [*sockets[1:], again.communicator, other.communicator]:
        await communicator.disconnect()
    assert socket_quota.open_for(household.pk) == 0


# --- a reader that never reads -----------------------------------------------------------------------------------


@pytest.fixture
def served_push(grants_db):
    """The hub's /ws/push stack on a real uvicorn, with the in-process bus; yields its ws:// URL."""
    bus = MemoryBus()
    push.use_bus(bus)
    routes = URLRouter([path("ws/push", PushConsumer.as_asgi())])
    server = HubServer(Lifespan(ProtocolTypeRouter({"websocket": push_auth_stack(routes)}), run_embedded=False))
    yield server.url.replace("http://", "ws://") + "/ws/push"
    server.stop()
    push.use_bus(None)


@pytest.mark.slow
async def test_a_reader_that_never_reads_is_closed_with_4408_once_push_max_queued_bytes_wait(
    served_push, staff, settings
):
    assert settings.PUSH_MAX_QUEUED_BYTES == 4 * MB, "the documented default"
    token = await sync_to_async(bearer_token)(staff, "push:read")
    slow = await asyncio.to_thread(NonReadingClient, served_push, token)
    slow.send({"op": "subscribe", "topic": "/flood/#", "id": 1})
    assert (await asyncio.to_thread(slow.next_text)) == {"op": "ack", "id": 1}
    total = 320  # 80 MB of 256 kB messages, far fewer than 1,000 frames: the frame count alone never closed it
    async with connect(served_push, additional_headers={"Authorization": f"Bearer {token}"}, max_size=None) as fast:
        await fast.send(json.dumps({"op": "subscribe", "topic": "/flood/#", "id": 1}))
        assert json.loads(await fast.recv()) == {"op": "ack", "id": 1}

        async def publish():
            for n in range(total):
                await push.fanout(f"/flood/{n}", "x" * 256 * 1024)
                await asyncio.sleep(0.002)

        async def read_fast():
            got = 0
            while got < total:
                json.loads(await asyncio.wait_for(fast.recv(), 10))
                got += 1
            return got

        with PeakRss() as rss:
            _, received = await asyncio.gather(publish(), read_fast())
        assert received == total, "a socket that reads gets everything"
    rss.assert_within(40 * MB)
    code, frames = await asyncio.to_thread(slow.read_until_closed)
    assert code == 4408
    assert frames < 40, f"what was on its way before the close: {frames} frames"


# --- one message, read whole by the server before the hub sees it -------------------------------------------------


class TunedServer:
    """The hub's /ws/push stack on a real uvicorn with the given server options (``ws_max_size``)."""

    def __init__(self, app, **options) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        host, port = self._socket.getsockname()
        self.url = f"ws://{host}:{port}/ws/push"
        config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False, **options)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)
        self._thread.start()
        wait_until(lambda: self._server.started or not self._thread.is_alive(), timeout=15)
        if not self._server.started:
            raise RuntimeError("the test server did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()


def open_raw_socket(url: str, token: str) -> tuple[socket.socket, ClientProtocol]:
    protocol = ClientProtocol(parse_uri(url), max_size=None)
    parts = urlsplit(url)
    raw = socket.create_connection((parts.hostname, parts.port), timeout=10)
    handshake = protocol.connect()
    handshake.headers["Authorization"] = f"Bearer {token}"
    protocol.send_request(handshake)
    for data in protocol.data_to_send():
        raw.sendall(data)
    while not any(isinstance(event, Response) for event in protocol.events_received()):
        protocol.receive_data(raw.recv(65_536))
    return raw, protocol


def send_huge_text_frame(raw: socket.socket, size: int) -> None:
    """One masked text frame of ``size`` bytes, streamed (a zero mask key leaves the payload as it is), so the
    client holds 64 kB whatever the size; stops quietly when the server hangs up."""
    prefix, suffix = b'{"op":"ping","id":"', b'"}'
    try:
        raw.sendall(bytes([0x81, 0x80 | 127]) + struct.pack("!Q", size) + b"\0\0\0\0" + prefix)
        left, chunk = size - len(prefix) - len(suffix), b"x" * 65_536
        while left > 0:
            raw.sendall(chunk[: min(left, len(chunk))])
            left -= len(chunk)
        raw.sendall(suffix)
    except OSError:
        pass


def close_code(raw: socket.socket, protocol: ClientProtocol) -> int | None:
    while True:
        for event in protocol.events_received():
            if isinstance(event, Frame) and event.opcode == Opcode.CLOSE:
                return Close.parse(event.data).code
        try:
            data = raw.recv(65_536)
        except OSError:
            return None
        if not data:
            return None
        protocol.receive_data(data)


async def test_a_message_larger_than_a_request_may_be_is_refused_before_it_is_read(grants_db, staff):
    push.use_bus(MemoryBus())
    routes = URLRouter([path("ws/push", PushConsumer.as_asgi())])
    app = Lifespan(ProtocolTypeRouter({"websocket": push_auth_stack(routes)}), run_embedded=False)
    # What runhub and the production command pass; uvicorn's default (16 MiB) let these 20 sockets hold 720 MB.
    server = TunedServer(app, ws_max_size=MAX_FRAME_BYTES)
    try:
        token = await sync_to_async(bearer_token)(staff, "push:read")
        sockets = [await asyncio.to_thread(open_raw_socket, server.url, token) for _ in range(20)]
        with PeakRss() as rss:
            await asyncio.gather(*(asyncio.to_thread(send_huge_text_frame, raw, 16 * MB) for raw, _ in sockets))
            codes = await asyncio.gather(*(asyncio.to_thread(close_code, raw, proto) for raw, proto in sockets))
        rss.assert_within(48 * MB)
        assert codes == [1009] * 20, "message too big, closed by the server"
        # The largest request the hub answers still fits.
        async with connect(server.url, additional_headers={"Authorization": f"Bearer {token}"}) as client:
            await client.send(json.dumps({"op": "ping", "id": "€" * (MAX_REQUEST_CHARS - 30)}, ensure_ascii=False))
            assert json.loads(await asyncio.wait_for(client.recv(), 10))["op"] == "pong"
    finally:
        server.stop()
        push.use_bus(None)


def test_the_embedded_server_and_the_production_command_read_no_message_larger_than_a_request(monkeypatch, db):
    import uvicorn as uvicorn_module
    from django.core.management import call_command

    seen = {}
    monkeypatch.setattr(uvicorn_module, "run", lambda *args, **options: seen.update(options))
    call_command("runhub", stdout=io.StringIO())
    assert seen["ws_max_size"] == MAX_FRAME_BYTES == 4 * MAX_REQUEST_CHARS

    root = Path(__file__).resolve().parents[2]
    web = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]["web"]["command"]
    assert f"--ws-max-size={MAX_FRAME_BYTES}" in web
    dockerfile_cmd = re.search(r"^CMD\s+(\[.*\])\s*$", (root / "Dockerfile").read_text(), re.MULTILINE).group(1)
    argv = json.loads(dockerfile_cmd)
    assert argv[argv.index("--ws-max-size") + 1] == str(MAX_FRAME_BYTES)


def test_every_server_of_the_hub_speaks_websocket_with_the_same_implementation(monkeypatch, db):
    # The one bench/push.py measured cheapest per delivery and per socket; the tests' servers use it too.
    import uvicorn as uvicorn_module
    from django.core.management import call_command

    from hub.asgi import WEBSOCKET_IMPLEMENTATION

    seen = {}
    monkeypatch.setattr(uvicorn_module, "run", lambda *args, **options: seen.update(options))
    call_command("runhub", stdout=io.StringIO())
    assert seen["ws"] == WEBSOCKET_IMPLEMENTATION == "websockets-sansio"
    assert seen["ws_per_message_deflate"] is False

    root = Path(__file__).resolve().parents[2]
    web = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]["web"]["command"]
    assert f"--ws={WEBSOCKET_IMPLEMENTATION}" in web
    assert "--ws-per-message-deflate=false" in web
    dockerfile_cmd = re.search(r"^CMD\s+(\[.*\])\s*$", (root / "Dockerfile").read_text(), re.MULTILINE).group(1)
    argv = json.loads(dockerfile_cmd)
    assert argv[argv.index("--ws") + 1] == WEBSOCKET_IMPLEMENTATION
    assert argv[argv.index("--ws-per-message-deflate") + 1] == "false"
