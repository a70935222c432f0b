"""``/ws/push`` end to end: the real application under uvicorn, the real Redis, a plain WebSocket client."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from urllib.parse import urlsplit

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.routing import ProtocolTypeRouter, URLRouter
from django.test import Client
from django.urls import path
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from hub.asgi import Lifespan, build_application
from messaging import push
from messaging.auth import push_auth_stack
from messaging.consumers import PushConsumer
from messaging.push.bus import RedisBus
from tests.browser.support import HubServer
from tests.messaging.push_support import assert_bus_subscribers, bearer_token
from tests.support.waiting import async_wait_until

pytestmark = pytest.mark.services


@pytest.fixture
def serve(redis_push_bus):
    """``serve(app=None)`` → the ws:// URL of ``/ws/push`` on a real uvicorn (the hub's application by default)."""
    servers: list[HubServer] = []

    def start(app=None) -> str:
        server = HubServer(app or build_application(run_embedded=False))
        servers.append(server)
        return server.url.replace("http://", "ws://") + "/ws/push"

    yield start
    for server in servers:
        server.stop()


async def wait_for_listener(bus: RedisBus) -> None:
    await async_wait_until(bus.connected.is_set, timeout=5)


async def request(socket, frame: dict, *, timeout: float = 5) -> dict:
    await socket.send(json.dumps(frame))
    return json.loads(await asyncio.wait_for(socket.recv(), timeout))


async def test_a_script_with_a_token_subscribes_and_receives_what_another_process_fans_out(serve, household):
    url = serve()
    token = await sync_to_async(bearer_token)(household, "push:read")
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as socket:
        assert await request(socket, {"op": "subscribe", "topic": "/home/+/measure/#", "id": 1}) == {
            "op": "ack",
            "id": 1,
        }
        await wait_for_listener(push.get_bus())
        # "Another process": a bus of its own on the same Redis.
        other_process = RedisBus(push.get_bus().url, prefix=push.get_bus().channel.removesuffix("messages"))
        await other_process.publish([push.message("/home/hall/status", b"ignored")])
        await other_process.publish([push.message("/home/kitchen/measure/3.12.0", b"21.5")])
        message = json.loads(await asyncio.wait_for(socket.recv(), 5))
        assert (message["topic"], message["payload"], message["subs"]) == ("/home/kitchen/measure/3.12.0", 21.5, [1])


async def test_a_new_subscription_gets_the_last_values_another_process_retained_in_redis(serve, household):
    url = serve()
    other_process = RedisBus(push.get_bus().url, prefix=push.get_bus().channel.removesuffix("messages"))
    other_process.publish_sync([push.message("/home/hall/measure/2", b"18.5", retain=True)])
    other_process.publish_sync([push.message("/home/hall/measure/2", b"19.0", retain=True)])
    other_process.publish_sync([push.message("/home/hall/status", b"not retained")])
    token = await sync_to_async(bearer_token)(household, "push:read")
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as socket:
        assert await request(socket, {"op": "subscribe", "topic": "/home/#", "id": 5}) == {"op": "ack", "id": 5}
        message = json.loads(await asyncio.wait_for(socket.recv(), 5))
        assert (message["topic"], message["payload"], message["retained"], message["subs"]) == (
            "/home/hall/measure/2",
            19.0,
            True,
            [5],
        )
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(socket.recv(), 0.3)


async def test_a_browser_session_from_the_hubs_origin_connects_and_another_origin_gets_403(serve, household):
    url = serve()
    client = Client()
    await sync_to_async(client.force_login)(household)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    own_origin = url.replace("ws://", "http://").removesuffix("/ws/push")
    async with connect(url, origin=own_origin, additional_headers={"Cookie": cookie}) as socket:
        assert await request(socket, {"op": "ping", "id": 1}) == {"op": "pong", "id": 1}
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, origin="http://evil.example", additional_headers={"Cookie": cookie}):
            pass
    assert refused.value.response.status_code == 403


async def test_without_credentials_the_server_closes_with_4401(serve, grants_db):
    url = serve()
    async with connect(url) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 5)
    assert closed.value.rcvd.code == 4401


async def test_two_web_processes_each_subscribe_once_and_one_fanout_reaches_the_sockets_of_both(serve, household):
    # Two servers, two event loops, two hubs: what two web processes behind the Redis layer do.
    urls = [serve(), serve()]
    token = await sync_to_async(bearer_token)(household, "push:read")
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        connect(urls[0], additional_headers=headers) as first,
        connect(urls[1], additional_headers=headers) as second,
    ):
        for n, socket in enumerate((first, second)):
            assert (await request(socket, {"op": "subscribe", "topic": "/home/#", "id": n}))["op"] == "ack"
        bus = push.get_bus()
        await assert_bus_subscribers(bus.url, bus.channel, 2)
        await push.fanout("/home/hall/measure/2", b"18.5")
        for n, socket in enumerate((first, second)):
            message = json.loads(await asyncio.wait_for(socket.recv(), 5))
            assert (message["payload"], message["subs"]) == (18.5, [n])


@pytest.mark.slow
async def test_a_socket_held_open_past_redis_pys_5_s_timeout_still_delivers(serve, staff):
    url = serve()
    token = await sync_to_async(bearer_token)(staff, "push:read")
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as socket:
        await request(socket, {"op": "subscribe", "topic": "/idle/#", "id": 1})
        await asyncio.sleep(6.5)
        await push.fanout("/idle/1", b"still here")
        message = json.loads(await asyncio.wait_for(socket.recv(), 5))
        assert message["payload"] == "still here"
        assert await request(socket, {"op": "ping", "id": 2}) == {"op": "pong", "id": 2}


@pytest.mark.slow
async def test_a_thousand_connections_arriving_at_once_all_connect_subscribe_and_receive(
    serve, household, redis_url, settings
):
    # Production's channel layer (channels-redis) is configured, yet no socket opens a Redis connection of its own:
    # A group_add per socket is what exhausted the pool (MaxConnectionsError) under a burst of 1,000 sockets.
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": redis_url, "socket_timeout": None}], "capacity": 1000},
        }
    }
    channel_layers.backends.clear()
    # A load test of one process: one user's socket limit (20 by default) is lifted for it.
    settings.PUSH_MAX_SOCKETS_PER_USER = 1000
    redis_client = redis.Redis.from_url(redis_url)
    redis_clients_before = redis_client.info("clients")["connected_clients"]
    url = serve()
    token = await sync_to_async(bearer_token)(household, "push:read")
    headers = {"Authorization": f"Bearer {token}"}
    count = 1000

    async def one(n: int):
        socket = await connect(url, additional_headers=headers, open_timeout=60, ping_interval=None)
        # Clients and server share this process (and its GIL): the last of 1,000 may wait a while.
        reply = await request(socket, {"op": "subscribe", "topic": "/home/#", "id": n}, timeout=60)
        assert reply == {"op": "ack", "id": n}
        return socket

    started = time.monotonic()
    sockets = await asyncio.gather(*(one(n) for n in range(count)))
    connect_seconds = time.monotonic() - started
    try:
        await wait_for_listener(push.get_bus())
        await push.fanout("/home/kitchen/measure/1", b"21.5")
        messages = await asyncio.gather(*(asyncio.wait_for(s.recv(), 30) for s in sockets))
        assert [json.loads(m)["subs"] for m in messages] == [[n] for n in range(count)]
        # A few for the process (its subscriber, its command pool), not one per socket; other tests may
        # hold some of their own on the same Redis meanwhile, hence the margin.
        assert redis_client.info("clients")["connected_clients"] - redis_clients_before < 100
    finally:
        await asyncio.gather(*(s.close() for s in sockets))
        redis_client.close()
        channel_layers.backends.clear()
    print(f"{count} connections opened and subscribed in {connect_seconds:.2f} s")


async def test_a_client_that_stays_silent_is_closed_with_4000_even_if_its_library_pings(serve, staff):
    # WebSocket-level pings stop at the server (ASGI never shows them to the application): only frames count.
    routes = URLRouter([path("ws/push", PushConsumer.as_asgi(heartbeat_interval=0.1, heartbeat_timeout=0.5))])
    url = serve(Lifespan(ProtocolTypeRouter({"websocket": push_auth_stack(routes)}), run_embedded=False))
    token = await sync_to_async(bearer_token)(staff, "push:read")
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        connect(url, additional_headers=headers, ping_interval=0.1) as silent,
        connect(url, additional_headers=headers) as chatty,
    ):
        # The chatty one sends a frame every 0.1 s (well inside the timeout) until the silent one is closed.
        silence = asyncio.ensure_future(asyncio.wait_for(silent.recv(), 5))
        n = 0
        while n < 10 or not silence.done():
            assert await request(chatty, {"op": "ping", "id": n}) == {"op": "pong", "id": n}
            n += 1
            await asyncio.wait([silence], timeout=0.1)
        with pytest.raises(ConnectionClosed) as closed:
            silence.result()
        assert closed.value.rcvd.code == 4000
        assert await request(chatty, {"op": "ping", "id": 99}) == {"op": "pong", "id": 99}


class NonReadingClient:
    """A WebSocket client on a plain socket with a small receive buffer, which stops reading after subscribing.

    A client library would keep reading into its own buffers (and Linux lets a loopback socket's buffer grow to
    tens of MB): this one lets TCP back up to the server at once. websockets' sans-I/O protocol does the framing.
    """

    def __init__(self, url: str, token: str) -> None:
        self.protocol = ClientProtocol(parse_uri(url), max_size=None)
        parts = urlsplit(url)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)  # fixed: no autotuning
        self.socket.settimeout(10)
        self.socket.connect((parts.hostname, parts.port))
        handshake = self.protocol.connect()
        handshake.headers["Authorization"] = f"Bearer {token}"
        self.protocol.send_request(handshake)
        self._flush()
        self.events: list = []
        while not any(isinstance(event, Response) for event in self.events):
            self._read()

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.socket.sendall(data)

    def _read(self) -> bool:
        data = self.socket.recv(65_536)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        self.events.extend(self.protocol.events_received())
        self._flush()
        return bool(data)

    def send(self, frame: dict) -> None:
        self.protocol.send_text(json.dumps(frame).encode())
        self._flush()

    def next_text(self) -> dict:
        while True:
            for index, event in enumerate(self.events):
                if isinstance(event, Frame) and event.opcode == Opcode.TEXT:
                    del self.events[index]
                    return json.loads(event.data)
            self._read()

    def read_until_closed(self) -> tuple[int, int]:
        """Read everything left; (close code, text frames read)."""
        frames = 0
        while True:
            for event in self.events:
                if isinstance(event, Frame) and event.opcode == Opcode.CLOSE:
                    return Close.parse(event.data).code, frames
                if isinstance(event, Frame) and event.opcode == Opcode.TEXT:
                    frames += 1
            self.events.clear()
            if not self._read():
                raise AssertionError(f"the connection ended without a close frame after {frames} frames")


@pytest.mark.slow
async def test_a_client_that_stops_reading_is_closed_with_4408_while_a_fast_one_gets_everything(serve, staff):
    # The hub's stack with a small queue per socket, so the test need not flood gigabytes.
    routes = URLRouter([path("ws/push", PushConsumer.as_asgi(queue_size=20))])
    app = Lifespan(ProtocolTypeRouter({"websocket": push_auth_stack(routes)}), run_embedded=False)
    url = serve(app)
    token = await sync_to_async(bearer_token)(staff, "push:read")
    chunk = "x" * 65_536
    total = 200  # 13 MB: far more than the slow client's socket buffers hold
    slow = await asyncio.to_thread(NonReadingClient, url, token)
    slow.send({"op": "subscribe", "topic": "/flood/#", "id": 1})
    assert (await asyncio.to_thread(slow.next_text)) == {"op": "ack", "id": 1}
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=None) as fast:
        assert (await request(fast, {"op": "subscribe", "topic": "/flood/#", "id": 1}))["op"] == "ack"
        await wait_for_listener(push.get_bus())

        async def publish():
            for n in range(total):
                await push.fanout(f"/flood/{n}", chunk)
                await asyncio.sleep(0)

        async def read_fast():
            got = []
            while len(got) < total:
                got.append(json.loads(await asyncio.wait_for(fast.recv(), 10))["topic"])
            return got

        _, fast_topics = await asyncio.gather(publish(), read_fast())
        assert fast_topics == [f"/flood/{n}" for n in range(total)]
    # Now it reads: what was on its way, then the close.
    code, frames = await asyncio.to_thread(slow.read_until_closed)
    assert code == 4408
    assert frames < total
