"""How a message reaches every web process, and where the last retained value of each topic is kept.

One interface, two implementations picked by ``REDIS_URL``:

* :class:`MemoryBus` (embedded default, one process): retained values in a dict, deliveries handed straight to
  this process's hubs (thread-safe, so the ``events.notify`` thread and the bridge may call it).
* :class:`RedisBus`: ONE Redis pub/sub message per message, whatever the number of subscribers — each web
  process subscribes once and fans out locally (a Channels group send per subscriber delivered a quarter of
  the load at seconds of latency: docs/benchmarks.md). Retained values live in a Redis hash, so every process sees them;
  storing and publishing are one script, one round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import weakref
from collections.abc import Callable, Coroutine, Iterable
from typing import Protocol

import redis
import redis.asyncio as aioredis

from hub.workers import Backoff
from messaging.push.frames import PushMessage
from messaging.topics import is_wildcard, matches

logger = logging.getLogger(__name__)

Deliver = Callable[[PushMessage], None]
#: Called (on the hub's loop) with each notice any process announced: ``{"users": [ids] or None}`` (None: all).
Notice = Callable[[dict], None]


class PushBus(Protocol):
    async def publish(self, messages: Iterable[PushMessage]) -> None: ...

    def publish_sync(self, messages: Iterable[PushMessage]) -> None: ...

    async def retained(self, topic_filter: str) -> list[PushMessage]:
        """The last retained value of every topic the filter matches."""

    async def retained_size(self, topic: str) -> tuple[int, int]:
        """(bytes every retained value holds, bytes ``topic``'s holds), each counted as its wire text in UTF-8."""

    def announce_sync(self, notice: dict) -> None:
        """Send a control notice (JSON-able) to every process's hub; ``grants changed`` is the one there is."""

    async def listen(self, deliver: Deliver, notice: Notice | None = None) -> None:
        """Run until cancelled, calling ``deliver`` (on this loop) for every message any process published, and
        ``notice`` for every notice any process announced — and, with a transport that can lose them while it is
        away (Redis), once with ``{"users": None}`` after each reconnect, since one may have been missed."""


def wire_bytes(message: PushMessage) -> int:
    """What a retained value holds, as both buses count it: its wire text (topic, header, payload) in UTF-8."""
    return len(message.to_wire().encode())


def _newer(message: PushMessage, current: PushMessage | None) -> bool:
    # Ties go to the later arrival: events of one transaction share a millisecond and arrive in outbox order.
    return current is None or message.order >= current.order


class MemoryBus:
    """One process: no transport at all, the same hub code behind it."""

    def __init__(self) -> None:
        self._retained: dict[str, PushMessage] = {}
        self._retained_sizes: dict[str, int] = {}
        self._retained_bytes = 0
        self._lock = threading.Lock()
        self._listeners: set[tuple[asyncio.AbstractEventLoop, Deliver]] = set()
        self._noticed: set[tuple[asyncio.AbstractEventLoop, Notice]] = set()

    def publish_sync(self, messages: Iterable[PushMessage]) -> None:
        messages = list(messages)
        with self._lock:
            for message in messages:
                if message.retain and _newer(message, self._retained.get(message.topic)):
                    self._retained_bytes -= self._retained_sizes.pop(message.topic, 0)
                    if message.clears:
                        self._retained.pop(message.topic, None)
                    else:
                        self._retained[message.topic] = message
                        self._retained_sizes[message.topic] = size = wire_bytes(message)
                        self._retained_bytes += size
            listeners = list(self._listeners)
        for loop, deliver in listeners:
            try:
                for message in messages:
                    loop.call_soon_threadsafe(deliver, message)
            except RuntimeError:  # that loop is closed: its hub is gone
                with self._lock:
                    self._listeners.discard((loop, deliver))

    async def publish(self, messages: Iterable[PushMessage]) -> None:
        self.publish_sync(messages)

    async def retained(self, topic_filter: str) -> list[PushMessage]:
        with self._lock:
            if not is_wildcard(topic_filter):
                found = self._retained.get(topic_filter)
                return [found] if found else []
            return [message for topic, message in self._retained.items() if matches(topic_filter, topic)]

    async def retained_size(self, topic: str) -> tuple[int, int]:
        with self._lock:
            return self._retained_bytes, self._retained_sizes.get(topic, 0)

    def announce_sync(self, notice: dict) -> None:
        with self._lock:
            noticed = list(self._noticed)
        for loop, callback in noticed:
            try:
                loop.call_soon_threadsafe(callback, notice)
            except RuntimeError:  # that loop is closed: its hub is gone
                with self._lock:
                    self._noticed.discard((loop, callback))

    def listen(self, deliver: Deliver, notice: Notice | None = None) -> Coroutine[None, None, None]:
        # Registered before the coroutine first runs, so a fanout right after the hub starts is not missed.
        loop = asyncio.get_running_loop()
        entry = (loop, deliver)
        noticed = (loop, notice) if notice is not None else None
        with self._lock:
            self._listeners.add(entry)
            if noticed is not None:
                self._noticed.add(noticed)
        return self._hold(entry, noticed)

    async def _hold(self, entry: tuple[asyncio.AbstractEventLoop, Deliver], noticed) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            with self._lock:
                self._listeners.discard(entry)
                self._noticed.discard(noticed)


# KEYS[3], the bytes every retained value holds, is kept with the hash. A deployment whose hash predates that
# count (or whose count was lost) has it summed once from the hash, the first time either script runs.
_COUNT_RETAINED = """
if redis.call('EXISTS', KEYS[3]) == 0 then
  local total = 0
  for _, wire in ipairs(redis.call('HVALS', KEYS[1])) do total = total + #wire end
  redis.call('SET', KEYS[3], total)
end
"""

# KEYS: the retained values hash, their order keys hash, their byte count. ARGV: channel, wire message, topic,
# mode, order. mode: 0 live only, 1 retain, 2 clear the retained value (an empty retained MQTT payload).
_PUBLISH_SCRIPT = (
    """
if ARGV[4] ~= '0' then
  local current = redis.call('HGET', KEYS[2], ARGV[3])
  if (not current) or tonumber(ARGV[5]) >= tonumber(current) then
"""
    + _COUNT_RETAINED
    + """
    local held = redis.call('HSTRLEN', KEYS[1], ARGV[3])
    if ARGV[4] == '2' then
      redis.call('HDEL', KEYS[1], ARGV[3])
      redis.call('HDEL', KEYS[2], ARGV[3])
      redis.call('DECRBY', KEYS[3], held)
    else
      redis.call('HSET', KEYS[1], ARGV[3], ARGV[2])
      redis.call('HSET', KEYS[2], ARGV[3], ARGV[5])
      redis.call('INCRBY', KEYS[3], string.len(ARGV[2]) - held)
    end
  end
end
return redis.call('PUBLISH', ARGV[1], ARGV[2])
"""
)

# KEYS: the retained values hash, (unused), their byte count. ARGV: a topic. Returns {all bytes, the topic's}.
_SIZE_SCRIPT = (
    _COUNT_RETAINED
    + """
return {tonumber(redis.call('GET', KEYS[3])), redis.call('HSTRLEN', KEYS[1], ARGV[1])}
"""
)


class RedisBus:
    """Redis pub/sub between web processes, a hash for retained values.

    ``pool_size`` bounds the connections one process opens for commands: a burst of 1,000 subscriptions
    waits for a free connection instead of failing with ``MaxConnectionsError``. The subscriber
    connection has no socket timeout (redis-py 8's default 5 s would tear it down) and pings every
    ``health_check_interval`` seconds instead, so a dead connection is noticed and re-made after a back-off
    (:class:`hub.workers.Backoff`) from ``retry_initial`` up to ``retry_max``.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "hub:push:",
        pool_size: int = 32,
        health_check_interval: float = 15.0,
        retry_initial: float = 0.2,
        retry_max: float = 5.0,
        command_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.channel = f"{prefix}messages"
        #: Control notices (grants changed): rare, on a channel of their own so a message never needs a kind.
        self.notice_channel = f"{prefix}notices"
        self.retained_key = f"{prefix}retained"
        self.order_key = f"{prefix}retained-order"
        self.bytes_key = f"{prefix}retained-bytes"
        self.pool_size = pool_size
        self.health_check_interval = health_check_interval
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.command_timeout = command_timeout
        self._sync = redis.Redis(
            connection_pool=redis.BlockingConnectionPool.from_url(
                url, max_connections=pool_size, timeout=command_timeout, socket_timeout=command_timeout
            )
        )
        self._sync_script = self._sync.register_script(_PUBLISH_SCRIPT)
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
            weakref.WeakKeyDictionary()
        )
        self.connected = threading.Event()

    def _client(self) -> aioredis.Redis:
        # redis.asyncio connections belong to the loop that made them: one client per loop.
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            pool = aioredis.BlockingConnectionPool.from_url(
                self.url,
                max_connections=self.pool_size,
                timeout=self.command_timeout,
                socket_timeout=self.command_timeout,
            )
            client = self._async_clients[loop] = aioredis.Redis(connection_pool=pool)
        return client

    def _script_args(self, message: PushMessage) -> tuple[list[str], list[object]]:
        mode = "2" if message.clears else "1" if message.retain else "0"
        wire = message.to_wire()
        return [self.retained_key, self.order_key, self.bytes_key], [
            self.channel,
            wire,
            message.topic,
            mode,
            message.order,
        ]

    def publish_sync(self, messages: Iterable[PushMessage]) -> None:
        messages = list(messages)
        if len(messages) == 1:
            keys, args = self._script_args(messages[0])
            self._sync_script(keys=keys, args=args)
            return
        with self._sync.pipeline(transaction=False) as pipe:
            for message in messages:
                keys, args = self._script_args(message)
                self._sync_script(keys=keys, args=args, client=pipe)
            pipe.execute()

    async def publish(self, messages: Iterable[PushMessage]) -> None:
        client = self._client()
        script = client.register_script(_PUBLISH_SCRIPT)
        messages = list(messages)
        if len(messages) == 1:
            keys, args = self._script_args(messages[0])
            await script(keys=keys, args=args)
            return
        async with client.pipeline(transaction=False) as pipe:
            for message in messages:
                keys, args = self._script_args(message)
                await script(keys=keys, args=args, client=pipe)
            await pipe.execute()

    async def retained(self, topic_filter: str) -> list[PushMessage]:
        client = self._client()
        if not is_wildcard(topic_filter):
            wire = await client.hget(self.retained_key, topic_filter)
            return [PushMessage.from_wire(wire)] if wire else []
        found = []
        async for topic, wire in client.hscan_iter(self.retained_key, count=500):
            if matches(topic_filter, topic.decode("utf-8")):
                found.append(PushMessage.from_wire(wire))
        return found

    async def retained_size(self, topic: str) -> tuple[int, int]:
        script = self._client().register_script(_SIZE_SCRIPT)
        total, held = await script(keys=[self.retained_key, self.order_key, self.bytes_key], args=[topic])
        return int(total), int(held)

    def announce_sync(self, notice: dict) -> None:
        self._sync.publish(self.notice_channel, json.dumps(notice))

    async def listen(self, deliver: Deliver, notice: Notice | None = None) -> None:
        backoff = Backoff.from_timings(self)
        channels = (self.channel, self.notice_channel) if notice is not None else (self.channel,)
        notice_channel = self.notice_channel.encode()
        subscribed_before = False
        while True:
            client = aioredis.Redis.from_url(
                self.url, socket_timeout=None, health_check_interval=self.health_check_interval
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*channels)
                self.connected.set()
                backoff.reset()
                logger.info("live push: listening on Redis channel %s", self.channel)
                if subscribed_before and notice is not None:
                    # Pub/sub keeps nothing for an absent subscriber: a grant change announced during the cut is
                    # lost, so every socket here checks its grants again.
                    _notice_safely(notice, {"users": None, "why": "resubscribed"})
                subscribed_before = True
                while True:
                    message = await pubsub.get_message(timeout=self.health_check_interval)
                    if message is None:
                        # Idle: a PING proves the connection alive (health_check_interval alone waits for a read).
                        await pubsub.ping()
                        continue
                    if message.get("type") != "message":
                        continue
                    if message.get("channel") == notice_channel:
                        _notice_safely(notice, message["data"])
                        continue
                    try:
                        deliver(PushMessage.from_wire(message["data"]))
                    except Exception:
                        logger.exception("live push: a message from Redis could not be delivered")
            except (redis.RedisError, OSError) as exc:
                self.connected.clear()
                delay = backoff.next_delay()
                logger.warning("live push: Redis subscription lost (%s); again in %.1f s", exc, delay)
            finally:
                self.connected.clear()
                await _close_quietly(pubsub, client)
            await asyncio.sleep(delay)

    def ping(self) -> None:
        self._sync.ping()

    def close(self) -> None:
        self._sync.close()


def _notice_safely(notice: Notice, data: bytes | dict) -> None:
    try:
        notice(json.loads(data) if isinstance(data, (bytes, str)) else data)
    except Exception:
        logger.exception("live push: a notice could not be handled")


async def _close_quietly(pubsub, client) -> None:
    for closing in (pubsub.aclose, client.aclose):
        # A cut connection may fail to close; it is gone either way.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(closing(), 1.0)
