"""Two real web processes (two uvicorns serving the hub) on one Redis push bus: nothing published is lost, and each
WebSocket client gets the messages in the order they were published, whichever process it is connected to.

The servers are separate OS processes, as in production, on a scratch SQLite database; the test process is a third
process that publishes through ``messaging.push`` into the same Redis channel.

No setting names the push bus's Redis prefix (``messaging.push.get_bus`` builds ``RedisBus(REDIS_URL)`` with the
default ``hub:push:``), so each server is started through :func:`application_on_test_prefix`, a uvicorn factory
that puts the bus on this test's own prefix (``redis_push_bus``'s) and returns ``hub.asgi.application`` itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.support.waiting import accepts_connections, wait_for

pytestmark = [pytest.mark.services, pytest.mark.slow]

PROJECT_DIR = Path(__file__).resolve().parents[2]
#: The environment variable that carries the push bus's Redis prefix to the servers.
PREFIX_VARIABLE = "TEST_PUSH_BUS_PREFIX"
CLIENTS_PER_PROCESS = 10
MESSAGES = 2000
TOPICS = 8
#: The tail of the sequence goes out as the MQTT bridge sends it: ``fanout_many`` batches, one round trip each.
BATCH = 100
FACTORY = "tests.messaging.test_push_two_processes:application_on_test_prefix"


def application_on_test_prefix():
    """``uvicorn --factory``: the hub's ASGI application, its push bus on the prefix in ``TEST_PUSH_BUS_PREFIX``."""
    from django.conf import settings

    from hub.asgi import application
    from messaging import push
    from messaging.push.bus import RedisBus

    push.use_bus(RedisBus(settings.REDIS_URL, prefix=os.environ[PREFIX_VARIABLE]))
    return application


def free_port(taken: set[int]) -> int:
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in taken:
            return port


SESSION_SCRIPT = """
from importlib import import_module
from django.conf import settings
from django.contrib.auth.models import Group, User
user = User.objects.create_user('pusher', password='correct horse battery staple')
user.groups.add(Group.objects.get(name='staff'))
session = import_module(settings.SESSION_ENGINE).SessionStore()
session['_auth_user_id'] = str(user.pk)
session['_auth_user_backend'] = 'django.contrib.auth.backends.ModelBackend'
session['_auth_user_hash'] = user.get_session_auth_hash()
session.create()
print(settings.SESSION_COOKIE_NAME + '=' + session.session_key)
"""


@dataclass
class WebProcess:
    process: subprocess.Popen
    port: int
    cookie: str

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/push"

    @property
    def headers(self) -> dict[str, str]:
        # A browser page of this very server: its session cookie, its own Origin.
        return {"Cookie": self.cookie, "Origin": f"http://127.0.0.1:{self.port}"}

    def alive(self) -> bool:
        return self.process.poll() is None


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture
def two_web_processes(tmp_path, redis_url, redis_push_bus):
    """Two uvicorns serving ``hub.asgi:application`` on one scratch SQLite database and this test's Redis push bus
    (``redis_push_bus``'s prefix, which this process publishes on too); both stopped afterwards."""
    environment = {
        **os.environ,
        "HUB_MODE": "embedded",
        "HUB_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'hub.sqlite3'}",
        "REDIS_URL": redis_url,
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "false",
        "PUSH_MAX_SOCKETS_PER_USER": str(2 * CLIENTS_PER_PROCESS),
        PREFIX_VARIABLE: redis_push_bus.channel.removesuffix("messages"),
    }
    for variable in ("AMQP_URL", "MQTT_URL", "SYSLOG_ADDRESS"):
        environment.pop(variable, None)

    def manage(*args: str) -> str:
        completed = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=PROJECT_DIR,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert completed.returncode == 0, f"manage.py {args[0]} failed:\n{completed.stderr[-3000:]}"
        return completed.stdout

    manage("migrate", "--noinput", "-v", "0")
    cookie = manage("shell", "-c", SESSION_SCRIPT).strip().splitlines()[-1]

    servers: list[WebProcess] = []
    ports: set[int] = set()
    try:
        for index in range(2):
            port = free_port(ports)
            ports.add(port)
            log = (tmp_path / f"web-{index}.log").open("w")
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "--factory",
                    FACTORY,
                    "--host=127.0.0.1",
                    f"--port={port}",
                    "--lifespan=off",
                    "--no-access-log",
                    "--log-level=warning",
                    "--ws-per-message-deflate=false",
                ],
                cwd=PROJECT_DIR,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            servers.append(WebProcess(process, port, cookie))

        def listening(server: WebProcess) -> bool:
            if not server.alive():
                log = (tmp_path / f"web-{servers.index(server)}.log").read_text()
                raise AssertionError(f"web process on port {server.port} exited ({server.process.returncode}):\n{log}")
            return accepts_connections(server.port)

        for server in servers:
            wait_for(lambda server=server: listening(server), timeout=60, what=f"uvicorn on port {server.port}")
        yield servers
    finally:
        for server in servers:
            stop(server.process)


async def open_subscribed(server: WebProcess, topic_filter: str, subscription_id: int):
    socket_ = await connect(server.url, additional_headers=server.headers, max_queue=None, open_timeout=30)
    await socket_.send(json.dumps({"op": "subscribe", "topic": topic_filter, "id": subscription_id}))
    reply = json.loads(await asyncio.wait_for(socket_.recv(), 30))
    assert reply == {"op": "ack", "id": subscription_id}, reply
    return socket_


async def read_until_end(socket_, end_topic: str) -> list[tuple[str, object, list]]:
    """Every message frame (topic, payload, subs) up to the end marker, which is published after all the others."""
    received = []
    async for text in socket_:
        frame = json.loads(text)
        assert frame["op"] == "message", frame
        if frame["topic"] == end_topic:
            return received
        received.append((frame["topic"], frame["payload"], frame["subs"]))
    raise AssertionError(f"the connection closed after {len(received)} messages: {socket_.close_code}")


def describe(received: list[tuple[str, object, list]], expected: list[tuple[str, object, list]]) -> str:
    """What went wrong with one client's messages, in one line."""
    if received == expected:
        return "ok"
    sequence = [payload for _, payload, _ in received]
    missing = sorted(set(range(MESSAGES)) - set(sequence))
    disorder = next((i for i in range(1, len(sequence)) if not sequence[i - 1] < sequence[i]), None)
    more = "..." if len(missing) > 5 else ""
    return (
        f"{len(received)} messages, {len(expected)} expected; missing {missing[:5]}{more}; "
        f"first out of order at index {disorder}; first differing frame "
        f"{next((pair for pair in zip(received, expected, strict=False) if pair[0] != pair[1]), None)}"
    )


async def test_two_web_processes_deliver_every_message_in_publish_order_to_every_client_of_each(
    two_web_processes, redis_push_bus
):
    from messaging import push

    servers = two_web_processes
    pids = [server.process.pid for server in servers]
    assert len(set(pids)) == 2, pids
    assert all(server.alive() for server in servers)

    run = uuid.uuid4().hex[:8]
    topic_filter = f"/two-processes/{run}/+/seq"
    topics = [f"/two-processes/{run}/{n}/seq" for n in range(TOPICS)]
    end_topic = f"/two-processes/{run}/end/seq"

    sockets = {
        index: [await open_subscribed(server, topic_filter, n) for n in range(CLIENTS_PER_PROCESS)]
        for index, server in enumerate(servers)
    }
    readers: dict[int, list[asyncio.Task]] = {}
    try:
        # (Imported here: the servers import this module as their factory before Django is set up.)
        from tests.messaging.push_support import assert_bus_subscribers

        # Each web process subscribes to the Redis channel once, whatever its number of sockets: two in all.
        await assert_bus_subscribers(redis_push_bus.url, redis_push_bus.channel, 2, timeout=30)

        readers = {
            index: [asyncio.create_task(read_until_end(socket_, end_topic)) for socket_ in process_sockets]
            for index, process_sockets in sockets.items()
        }
        # Payload = sequence number; the topics take turns, so the order is kept across topics too. The first
        # half one fanout at a time, the rest in batches as the MQTT bridge sends them.
        half = MESSAGES // 2
        for seq in range(half):
            await push.fanout(topics[seq % TOPICS], seq)
        for start in range(half, MESSAGES, BATCH):
            await push.fanout_many(
                push.message(topics[seq % TOPICS], seq) for seq in range(start, min(start + BATCH, MESSAGES))
            )
        await push.fanout(end_topic, "end")

        every_reader = [task for tasks in readers.values() for task in tasks]
        # Generous for a busy two-CPU machine: it bounds only how long the end marker may take, not what arrives.
        await asyncio.wait(every_reader, timeout=60)
        assert all(task.done() for task in every_reader), "the end marker did not reach every client within 60 s"

        expected = [[(topics[seq % TOPICS], seq, [n]) for seq in range(MESSAGES)] for n in range(CLIENTS_PER_PROCESS)]
        for index, tasks in readers.items():
            outcome = [describe(task.result(), expected[n]) for n, task in enumerate(tasks)]
            assert outcome == ["ok"] * CLIENTS_PER_PROCESS, f"web process {index} (pid {pids[index]}): {outcome}"
        assert all(server.alive() for server in servers), "a web process died during the test"
    finally:
        for task in (task for tasks in readers.values() for task in tasks):
            task.cancel()
        await asyncio.gather(*(s.close() for process_sockets in sockets.values() for s in process_sockets))
