"""Grant changes reach open ``/ws/push`` sockets within 5 s, in every web process, through one notice on the push bus.

Most tests run two web servers (uvicorn, each its own event loop, its own hub and its own subscription to the real
Redis) in threads of the test process, as ``tests/messaging/test_ws_server.py`` does; the changes are made with the
ORM in the test's thread, as the admin makes them (its forms save models and set many-to-many relations), so the
signals see exactly what the admin's saves send. The last (slow) test runs two real web processes of the production
command on PostgreSQL and makes the changes from a third process.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import secrets
import signal
import socket as sockets_module
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group, Permission, User
from django.db import transaction
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from hub.asgi import build_application
from messaging import push
from messaging.models import TopicGrant
from messaging.push.bus import RedisBus
from messaging.push.hub import PushHub
from tests.browser.support import HubServer
from tests.messaging.push_support import bearer_token, make_user
from tests.support.waiting import accepts_connections, async_poll, async_wait_until, wait_until

pytestmark = pytest.mark.services

#: What the issue asks: a change reaches open sockets within 5 s.
WITHIN = 5.0

orm = sync_to_async


@pytest.fixture
def two_web_processes(redis_push_bus, grants_db, settings):
    """The ws:// URLs of ``/ws/push`` on two servers, both listening on the Redis bus before the test starts."""
    settings.MQTT_URL = None
    servers = [HubServer(build_application(run_embedded=False)) for _ in range(2)]
    yield [server.url.replace("http://", "ws://") + "/ws/push" for server in servers]
    for server in servers:
        server.stop()


@pytest.fixture
def notices(redis_push_bus):
    """The notices sent on the bus, as a Redis subscriber of the notice channel sees them."""
    client = redis.Redis.from_url(redis_push_bus.url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(redis_push_bus.notice_channel)
    pubsub.get_message(timeout=1)  # the subscription's confirmation

    def taken(timeout: float = 1.0) -> list[dict]:
        seen = []
        while (message := pubsub.get_message(timeout=timeout)) is not None:
            seen.append(json.loads(message["data"]))
            timeout = 0.2
        return seen

    yield taken
    pubsub.close()
    client.close()


async def open_sockets(urls: list[str], user: User) -> list:
    """A socket of ``user`` on each server (one token for all: the script is the same)."""
    token = await orm(bearer_token)(user, "push:read")
    return [await open_socket(url, {"Authorization": f"Bearer {token}"}) for url in urls]


async def open_socket(url: str, headers: dict):
    socket = await connect(url, additional_headers=headers)
    # A ping answered: this server's hub has started (``listening`` waits for its Redis subscription).
    assert await request(socket, {"op": "ping", "id": "p"}) == {"op": "pong", "id": "p"}
    return socket


async def request(socket, frame: dict, *, timeout: float = 5) -> dict:
    await socket.send(json.dumps(frame))
    return json.loads(await asyncio.wait_for(socket.recv(), timeout))


async def subscribe(socket, topic_filter: str, sub_id) -> None:
    assert await request(socket, {"op": "subscribe", "topic": topic_filter, "id": sub_id}) == {
        "op": "ack",
        "id": sub_id,
    }


async def listening(bus: RedisBus, count: int) -> None:
    """Until ``count`` hubs subscribe on Redis (each subscribes to the messages and the notices in one command)."""
    client = redis.Redis.from_url(bus.url)
    try:
        await async_wait_until(lambda: client.pubsub_numsub(bus.channel)[0][1] >= count, timeout=5)
    finally:
        client.close()


async def next_frame(socket, *, timeout: float = WITHIN) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), timeout))


def watcher(name: str, *filters: str) -> User:
    """A user whose group ``<name>-group`` may subscribe to ``filters``."""
    group = Group.objects.create(name=f"{name}-group")
    for topic_filter in filters:
        TopicGrant.objects.create(group=group, topic_filter=topic_filter, may_subscribe=True)
    user = make_user(name)
    user.groups.add(group)
    return user


async def test_a_deleted_grant_drops_the_subscriptions_it_covered_on_both_web_processes_within_5_s(
    two_web_processes, redis_push_bus, notices
):
    user = await orm(watcher)("wanda", "/news/#", "/weather/#")
    sockets = await open_sockets(two_web_processes, user)
    await listening(redis_push_bus, 2)
    for socket in sockets:
        await subscribe(socket, "/news/+/sport", 1)
        await subscribe(socket, "/weather/#", 2)
    await asyncio.to_thread(notices)  # those of the set-up (joining the group)

    started = time.monotonic()
    await orm(TopicGrant.objects.filter(topic_filter="/news/#").delete)()
    for socket in sockets:
        frame = await next_frame(socket)
        assert time.monotonic() - started < WITHIN
        assert (frame["op"], frame["id"], frame["topic"]) == ("error", 1, "/news/+/sport")
        assert "'/news/+/sport'" in frame["message"]
    # Dropped, not just reported: the sport message goes nowhere; the weather subscription still works.
    await push.fanout("/news/europe/sport", b"2-1")
    await push.fanout("/weather/today", b"sun")
    for socket in sockets:
        message = await next_frame(socket)
        assert (message["topic"], message["subs"]) == ("/weather/today", [2])
        await socket.close()
    assert [notice["users"] for notice in await asyncio.to_thread(notices)] == [[str(user.pk)]], (
        "one notice on the bus for the change, naming the group's member"
    )


async def test_leaving_a_group_drops_its_subscriptions_and_joining_again_allows_them_without_reconnecting(
    two_web_processes, redis_push_bus
):
    user = await orm(watcher)("gil", "/garden/#")
    group = await orm(Group.objects.get)(name="gil-group")
    first, second = await open_sockets(two_web_processes, user)
    await listening(redis_push_bus, 2)
    await subscribe(first, "/garden/#", "g1")
    await subscribe(second, "/garden/+/moisture", "g2")

    await orm(user.groups.remove)(group)
    assert (await next_frame(first))["id"] == "g1"
    assert (await next_frame(second))["id"] == "g2"
    refused = await request(first, {"op": "subscribe", "topic": "/garden/#", "id": "again"})
    assert refused["op"] == "error"

    # From the group's side this time (the admin's group page sets its members the other way round).
    await orm(group.user_set.add)(user)

    async def subscribed_again() -> dict | None:  # refused until this socket's hub has read the grants again
        reply = await request(second, {"op": "subscribe", "topic": "/garden/#", "id": "back"})
        return reply if reply["op"] == "ack" else None

    assert await async_poll(subscribed_again, timeout=WITHIN) == {"op": "ack", "id": "back"}
    for socket in (first, second):
        await socket.close()


async def test_a_deactivated_users_sockets_close_with_4401_on_both_web_processes_and_others_stay(
    two_web_processes, redis_push_bus
):
    leaving = await orm(make_user)("lena", "household")
    staying = await orm(make_user)("sam", "household")
    sockets = await open_sockets(two_web_processes, leaving)
    others = await open_sockets(two_web_processes, staying)
    await listening(redis_push_bus, 2)

    started = time.monotonic()
    leaving.is_active = False
    await orm(leaving.save)()
    for socket in sockets:
        with pytest.raises(ConnectionClosed) as closed:
            await next_frame(socket)
        assert closed.value.rcvd.code == 4401
        assert time.monotonic() - started < WITHIN
    for socket in others:
        assert await request(socket, {"op": "ping", "id": 1}) == {"op": "pong", "id": 1}
        await socket.close()


async def test_signing_in_sends_no_notice(grants_db, notices):
    user = await orm(make_user)("nia", "household")
    assert [notice["users"] for notice in await asyncio.to_thread(notices)] == [[str(user.pk)]], "joining household"
    user.last_login = user.date_joined
    await orm(user.save)(update_fields=["last_login"])  # what every sign-in does
    assert await asyncio.to_thread(notices) == []


@pytest.mark.parametrize("where", ["group", "user"])
async def test_a_removed_send_commands_permission_refuses_the_next_action_publish_on_an_open_socket(
    two_web_processes, redis_push_bus, settings, where
):
    settings.MQTT_HOME_PREFIX = f"/grants-{uuid.uuid4().hex[:8]}"
    topic = f"{settings.MQTT_HOME_PREFIX}/shed/action/1.12.0"

    def switcher() -> tuple[User, Permission, Group]:
        group = Group.objects.create(name="switchers")
        TopicGrant.objects.create(group=group, topic_filter="#", may_subscribe=True, may_publish=True)
        permission = Permission.objects.get(content_type__app_label="hub", codename="send_commands")
        user = make_user("ines")
        user.groups.add(group)
        (group.permissions if where == "group" else user.user_permissions).add(permission)
        return user, permission, group

    user, permission, group = await orm(switcher)()
    sockets = await open_sockets(two_web_processes, user)
    await listening(redis_push_bus, 2)
    frame = {"op": "publish", "topic": topic, "payload": 1, "id": "on"}
    for socket in sockets:
        assert await request(socket, frame) == {"op": "ack", "id": "on"}

    # From the permission's side for the group (as a data migration or the shell might), the user's own for the user.
    if where == "group":
        await orm(permission.group_set.remove)(group)
    else:
        await orm(user.user_permissions.remove)(permission)

    async def refused(socket) -> dict | None:  # acknowledged until this socket's hub has read the grants again
        reply = await request(socket, frame)
        return reply if reply["op"] == "error" else None

    for socket in sockets:
        reply = await async_poll(functools.partial(refused, socket), timeout=WITHIN)
        assert "hub.send_commands" in reply["message"]
        await socket.close()


async def test_a_superuser_made_ordinary_keeps_only_what_the_grants_cover(two_web_processes, redis_push_bus):
    user = await orm(make_user)("root", "household", is_superuser=True)
    (socket,) = await open_sockets(two_web_processes[1:], user)
    await listening(redis_push_bus, 1)
    await subscribe(socket, "#", 1)
    await subscribe(socket, "/events/heating/#", 2)
    user.is_superuser = False
    await orm(user.save)(update_fields=["is_superuser"])
    frame = await next_frame(socket)
    assert (frame["op"], frame["id"], frame["topic"]) == ("error", 1, "#")
    await push.fanout("/events/heating/reading", b"{}")
    assert (await next_frame(socket))["subs"] == [2], "household's own grant still covers the heating events"
    await socket.close()


async def test_a_rolled_back_change_sends_no_notice(grants_db, notices):
    await orm(watcher)("rob", "/news/#")
    assert len(await asyncio.to_thread(notices)) == 1, "joining the group"

    def change_then_fail() -> None:
        with transaction.atomic():
            TopicGrant.objects.filter(topic_filter="/news/#").delete()
            raise RuntimeError("the admin's save failed")

    with pytest.raises(RuntimeError):
        await orm(change_then_fail)()
    assert await asyncio.to_thread(notices) == []


class GrantedSocket:
    """A stand-in for a consumer: records the grants the hub hands it."""

    def __init__(self) -> None:
        self.subscriptions: dict = {}
        self.applied: list = []

    def offer(self, frame, message=None) -> None:
        pass

    def grants_changed(self, grants) -> None:
        self.applied.append(grants)


@pytest.mark.slow
async def test_a_notice_lost_while_redis_was_cut_is_made_up_for_once_the_hub_subscribes_again(redis_url, tcp_proxy):
    prefix = f"test:grants:{uuid.uuid4().hex[:8]}:"
    proxy = tcp_proxy(redis_url)
    behind_proxy = RedisBus(proxy.url_for(redis_url), prefix=prefix, retry_initial=0.05, health_check_interval=0.5)
    other_process = RedisBus(redis_url, prefix=prefix)
    reads: list = []

    async def reload_grants(user_key):
        reads.append(user_key)
        return f"grants #{len(reads)}"

    hub = PushHub(behind_proxy, loop=asyncio.get_running_loop(), reload_grants=reload_grants)
    hub.start()
    socket, bystander = GrantedSocket(), GrantedSocket()
    hub.attach(socket, 7)
    hub.attach(bystander, 8)
    try:
        await async_wait_until(behind_proxy.connected.is_set)
        other_process.announce_sync({"users": ["7"]})
        await async_wait_until(lambda: socket.applied == ["grants #1"])
        assert bystander.applied == [], "only the users a notice names read their grants again"

        proxy.cut()
        await async_wait_until(lambda: not behind_proxy.connected.is_set())
        other_process.announce_sync({"users": ["7"]})  # pub/sub keeps nothing: this one is lost
        proxy.restore()
        await async_wait_until(behind_proxy.connected.is_set, timeout=10)
        # Every socket of this process checks again, as a notice may have been missed.
        await async_wait_until(lambda: len(socket.applied) == 2 and len(bystander.applied) == 1)
        assert sorted(reads) == ["7", "7", "8"]
    finally:
        await hub.close()
        other_process.close()


# --- two web processes of the production command, the change made in a third ---------------------------------

PROJECT_DIR = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with sockets_module.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def production_processes(postgres_url, redis_url, amqp_url, tmp_path):
    """``run(code)`` runs Python in a ``manage.py shell`` (the admin's process, say) and returns its last line;
    ``start_web()`` starts one more ``uvicorn hub.asgi:application`` (HUB_MODE=production) and returns its
    /ws/push URL. All on a fresh PostgreSQL database and the real Redis; everything stopped and dropped after."""
    import psycopg

    name = f"hub_grants_{secrets.token_hex(4)}"
    parts = urlsplit(postgres_url)
    admin_url = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HUB_", "DJANGO_", "MQTT_")) and key not in ("DATABASE_URL", "REDIS_URL", "AMQP_URL")
    }
    environ.update(
        HUB_MODE="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", "")),
        REDIS_URL=redis_url,
        AMQP_URL=amqp_url,
        HUB_VAR_DIR=str(tmp_path),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    processes: list[subprocess.Popen] = []

    def run(code: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=PROJECT_DIR,
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout.strip().splitlines()[-1]  # the code's own print, after the shell's greeting

    def start_web() -> str:
        port = free_port()
        log = (tmp_path / f"web-{port}.log").open("w")
        argv = ["uvicorn", "hub.asgi:application", "--host=127.0.0.1", f"--port={port}", "--lifespan=on"]
        processes.append(subprocess.Popen(argv, cwd=PROJECT_DIR, env=environ, stdout=log, stderr=subprocess.STDOUT))
        assert wait_until(lambda: accepts_connections(port) or processes[-1].poll() is not None, timeout=60)
        assert processes[-1].poll() is None, (tmp_path / f"web-{port}.log").read_text()[-3000:]
        return f"ws://127.0.0.1:{port}/ws/push"

    migrated = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input"],
        cwd=PROJECT_DIR,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    yield run, start_web
    for process in processes:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


SET_UP = """
from django.contrib.auth.models import Group, User
from messaging.models import TopicGrant
from tests.messaging.push_support import bearer_token
group = Group.objects.create(name="readers")
TopicGrant.objects.create(group=group, topic_filter="{news}/#", may_subscribe=True)
TopicGrant.objects.create(group=group, topic_filter="{weather}/#", may_subscribe=True)
user = User.objects.create_user("pat")
user.groups.add(group)
print(bearer_token(user, "push:read"))
"""

# Each prints the wall-clock time its change committed at (autocommit: when the statement returned).
REVOKE = """
import time
from messaging.models import TopicGrant
TopicGrant.objects.filter(topic_filter="{news}/#").delete()
print(time.time())
"""
DEACTIVATE = """
import time
from django.contrib.auth.models import User
user = User.objects.get(username="pat")
user.is_active = False
user.save()
print(time.time())
"""


@pytest.mark.slow
async def test_two_production_web_processes_apply_a_change_made_in_a_third_within_5_s(production_processes, redis_url):
    run, start_web = production_processes
    tree = f"/grants-{uuid.uuid4().hex[:8]}"  # topics of this test's own on the machine's shared Redis
    news, weather = f"{tree}/news", f"{tree}/weather"
    token = (await asyncio.to_thread(run, SET_UP.format(news=news, weather=weather))).strip()
    urls = [await asyncio.to_thread(start_web) for _ in range(2)]
    sockets = [await open_socket(url, {"Authorization": f"Bearer {token}"}) for url in urls]
    for socket in sockets:
        await subscribe(socket, f"{news}/#", "n")
        await subscribe(socket, f"{weather}/#", "w")
    # Both processes hear the bus once a message reaches both (one subscription carries messages and notices).
    production_bus = RedisBus(redis_url)  # the production prefix, as any process of that installation has it
    try:
        await asyncio.to_thread(production_bus.publish_sync, [push.message(f"{weather}/probe", b"1")])
        for socket in sockets:
            assert (await next_frame(socket))["subs"] == ["w"]
    finally:
        production_bus.close()

    committed = float(await asyncio.to_thread(run, REVOKE.format(news=news)))
    for socket in sockets:
        frame = await next_frame(socket, timeout=WITHIN + 5)
        assert time.time() - committed < WITHIN
        assert (frame["op"], frame["id"], frame["topic"]) == ("error", "n", f"{news}/#")

    committed = float(await asyncio.to_thread(run, DEACTIVATE))
    for socket in sockets:
        with pytest.raises(ConnectionClosed) as closed:
            await next_frame(socket, timeout=WITHIN + 5)
        assert closed.value.rcvd.code == 4401
        assert time.time() - committed < WITHIN


async def test_changes_made_in_the_admin_pages_reach_open_sockets(two_web_processes, redis_push_bus):
    from django.test import Client

    def set_up() -> tuple[User, Client, TopicGrant, Group]:
        user = watcher("ada", "/lab/#", "/garden/#")
        group = Group.objects.get(name="ada-group")
        admin = Client()
        admin.force_login(User.objects.create_superuser("root", password="plum-orchard-velvet-42"))
        return user, admin, TopicGrant.objects.get(topic_filter="/lab/#"), group

    user, admin, grant, group = await orm(set_up)()
    sockets = await open_sockets(two_web_processes, user)
    await listening(redis_push_bus, 2)
    for socket in sockets:
        await subscribe(socket, "/lab/+/temperature", "lab")
        await subscribe(socket, "/garden/#", "garden")

    # The grant's change form: "may subscribe" unticked.
    changed = await orm(admin.post)(
        f"/admin/messaging/topicgrant/{grant.pk}/change/",
        {"group": group.pk, "topic_filter": "/lab/#", "may_publish": "on"},
    )
    assert changed.status_code == 302, changed.content.decode()[:2000]
    for socket in sockets:
        frame = await next_frame(socket)
        assert (frame["op"], frame["id"], frame["topic"]) == ("error", "lab", "/lab/+/temperature")

    # The user's change form: the active flag unticked (the rest of the form posted as it was shown).
    def deactivate() -> int:
        page = admin.get(f"/admin/auth/user/{user.pk}/change/")
        form = page.context["adminform"].form
        shown = {name: form[name].value() for name in form.fields}
        data = {name: value for name, value in shown.items() if value not in (None, False)}
        del data["is_active"]  # an unticked box is not posted
        for name in ("date_joined", "last_login"):  # split date and time widgets
            if data.pop(name, None) is not None:
                data[f"{name}_0"], data[f"{name}_1"] = shown[name].strftime("%Y-%m-%d %H:%M:%S").split()
        return admin.post(f"/admin/auth/user/{user.pk}/change/", data).status_code

    assert await orm(deactivate)() == 302
    for socket in sockets:
        with pytest.raises(ConnectionClosed) as closed:
            await next_frame(socket)
        assert closed.value.rcvd.code == 4401


async def test_a_change_committed_while_a_socket_reads_its_grants_on_opening_is_not_missed(
    grants_db, memory_bus, monkeypatch
):
    from messaging import consumers
    from tests.messaging.push_support import connect_consumer

    user = await orm(watcher)("olga", "/news/#")
    read_as_it_opens = consumers.grants_for

    def read_then_an_admin_revokes(who):
        grants = read_as_it_opens(who)
        TopicGrant.objects.filter(topic_filter="/news/#").delete()  # before the socket counts as the user's
        return grants

    monkeypatch.setattr(consumers, "grants_for", read_then_an_admin_revokes)
    socket = await connect_consumer(user)
    reply = await socket.subscribe("/news/#", 1)
    assert (reply["op"], reply["id"]) == ("error", 1)
    await socket.close()
