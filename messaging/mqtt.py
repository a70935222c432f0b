"""The hub's one MQTT client (the only module importing paho-mqtt) and the registry of MQTT handlers.

Apps register handlers from ``AppConfig.ready``::

    from messaging import mqtt

    mqtt.subscribe("/home/+/action/#", queue_command)   # sync (runs off the loop, ORM allowed) or async

Registering does nothing else. Handlers run only where the bridge runs a client
with ``run_handlers=True`` (its command, or its lifespan task in the embedded
default), so an incoming message is handled once however many web processes run.

paho runs its network loop on its own thread (``loop_start``); every callback
that concerns the application is handed to ONE asyncio event loop the client is
given, with ``call_soon_threadsafe`` — never ``async_to_sync`` or a loop per
message (see channels_redis #125/#266 for what that costs). Handlers then run
in order from a single dispatcher task on that loop: async handlers on the loop
itself, sync handlers through ``database_sync_to_async`` so they may use the ORM.

The handler-running client also says whether the hub is up, and greets the broker on every connection: an app
names the retained availability topic (``mqtt.availability_from``, heating's ``hub/<HUB_ID>/availability``), which
gets ``online`` on connect, ``offline`` on a clean stop and, as the client's last will, ``offline`` from the
broker when the connection dies; and ``mqtt.on_connect`` hooks run after each (re)connect (heating republishes
its Home Assistant discovery and room state there).

The client never receives back what it published itself: with MQTT v5 (the
default) every subscription carries the ``noLocal`` option; when v3.1.1 is
forced it remembers its own recent publications and drops their echoes. In
both it drops its own retained messages, which the broker hands back on every
(re)subscribe whatever ``noLocal`` says.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import logging
import os
import secrets
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import paho.mqtt.client as paho
from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from hub.health import CheckResult
from hub.workers import DEFAULT_JITTER, Backoff, Jitter
from messaging.topics import FilterIndex, covers, minimal_filters, validate_filter, validate_topic

logger = logging.getLogger(__name__)

PROTOCOL_V5 = "5"
PROTOCOL_V311 = "3.1.1"
_PROTOCOLS = {PROTOCOL_V5: MQTTProtocolVersion.MQTTv5, PROTOCOL_V311: MQTTProtocolVersion.MQTTv311}
_URL_OPTIONS = ("client_id", "protocol", "ca_certs")


# --- where the broker is ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str | None = None
    protocol: str = PROTOCOL_V5
    ca_certs: str | None = None

    def __str__(self) -> str:
        # Never the password: this goes to logs and /healthz.
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_mqtt_url(url: str, *, setting: str = "MQTT_URL") -> BrokerAddress:
    """``mqtt://user:pass@host:port`` (``mqtts://`` for TLS; options ``?client_id=…&protocol=3.1.1&ca_certs=…``).

    A malformed value raises ``ImproperlyConfigured`` naming the setting, so a typo stops start-up.
    """

    def error(reason: str) -> ImproperlyConfigured:
        shown = url
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is not None and parts.password:
            shown = url.replace(f":{parts.password}@", ":***@", 1)
        return ImproperlyConfigured(
            f"{setting}={shown!r} is not a valid MQTT URL: {reason} "
            f"(expected mqtt://user:password@host:port or mqtts://… for TLS)"
        )

    if not isinstance(url, str) or not url.strip():
        raise error("it is empty")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("mqtt", "mqtts"):
        raise error(f"the scheme must be mqtt or mqtts, not {parts.scheme or 'missing'!r}")
    if not parts.hostname:
        raise error("it names no host")
    try:
        port = parts.port
    except ValueError:
        raise error("the port is not a number from 1 to 65535") from None
    if port == 0:
        raise error("the port is not a number from 1 to 65535")
    if parts.path not in ("", "/") or parts.fragment:
        raise error("it must not have a path or fragment")
    options = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(options) - set(_URL_OPTIONS))
    if unknown:
        raise error(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(_URL_OPTIONS)}")
    single = {name: values[-1] for name, values in options.items()}
    protocol = single.get("protocol", PROTOCOL_V5)
    if protocol not in _PROTOCOLS:
        raise error(f"protocol must be {PROTOCOL_V5} or {PROTOCOL_V311}, not {protocol!r}")
    tls = parts.scheme == "mqtts"
    return BrokerAddress(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        client_id=single.get("client_id") or None,
        protocol=protocol,
        ca_certs=single.get("ca_certs") or None,
    )


# --- messages and handlers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MqttMessage:
    topic: str
    payload: bytes
    qos: int = 0
    #: True only for a retained message the broker sent because a subscription was (re)made (under MQTT v5 with
    #: ``retain_as_published``, also for a live message its publisher sent retained).
    retain: bool = False
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: The id of the hub user who published it through ``/ws/push`` (grants already checked); ``None`` for a
    #: message from the broker, whose author the hub cannot know.
    published_by: int | None = None
    #: A retained copy handed over again by :meth:`MqttClient.refresh_retained` (MQTT 3.1.1): ``on_message`` gets
    #: it, the handlers never do (they had the message when it was published).
    refreshed: bool = False

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8")


Handler = Callable[[MqttMessage], Awaitable[None] | None]
#: ``hook(client)`` after every (re)connect of the handler-running client: sync (off the loop, ORM allowed) or async.
ConnectHook = Callable[["MqttClient"], Awaitable[None] | None]
#: Names the retained availability topic (called once as the bridge starts; sync, ORM allowed); None for none.
AvailabilityTopic = Callable[[], str | None]
#: What the availability topic says (Home Assistant's defaults for ``payload_available``/``payload_not_available``).
ONLINE = "online"
OFFLINE = "offline"


@dataclass(frozen=True)
class Subscription:
    topic_filter: str
    handler: Handler
    qos: int = 1
    order: int = field(default=0, compare=False)


class HandlerRegistry:
    """Topic filter → handlers. Filled from ``AppConfig.ready``; run by the client that has ``run_handlers=True``."""

    def __init__(self) -> None:
        self._index: FilterIndex[Subscription] = FilterIndex()
        self._order = count()
        self._connect_hooks: list[ConnectHook] = []
        self._availability: AvailabilityTopic | None = None

    def subscribe(self, topic_filter: str, handler: Handler, *, qos: int = 1) -> Handler:
        """Register ``handler`` for messages matching ``topic_filter``; returns it, so it works as a decorator."""
        validate_filter(topic_filter)
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, not {qos!r}")
        self._index.add(topic_filter, Subscription(topic_filter, handler, qos, next(self._order)))
        return handler

    def unsubscribe(self, topic_filter: str, handler: Handler) -> None:
        for subscription in self._index.subscribers_of(topic_filter):
            if subscription.handler == handler:
                self._index.remove(topic_filter, subscription)

    def on_connect(self, hook: ConnectHook) -> ConnectHook:
        """Run ``hook(client)`` after every (re)connect of the client running these handlers; returns it."""
        if hook not in self._connect_hooks:
            self._connect_hooks.append(hook)
        return hook

    def connect_hooks(self) -> tuple[ConnectHook, ...]:
        return tuple(self._connect_hooks)

    def availability_from(self, provider: AvailabilityTopic | None) -> None:
        """Say where the handler-running client announces the hub: ``provider()`` names the retained topic."""
        self._availability = provider

    def availability_topic(self) -> str | None:
        """The availability topic, or None (no provider, or it failed: logged, and the client goes without)."""
        if self._availability is None:
            return None
        try:
            topic = self._availability()
            if topic is not None:
                validate_topic(topic)
            return topic
        except Exception:
            logger.exception("MQTT availability topic not known: %s failed", _describe(self._availability))
            return None

    async def run_connect_hooks(self, client: MqttClient) -> None:
        """Each hook in registration order; a failing one is logged and the others still run."""
        for hook in self.connect_hooks():
            try:
                if inspect.iscoroutinefunction(hook):
                    await hook(client)
                else:
                    await database_sync_to_async(hook)(client)
            except Exception:
                logger.exception("MQTT connect hook %s failed", _describe(hook))

    def filters(self) -> dict[str, int]:
        """Each registered filter with the highest QoS any of its handlers asked for."""
        return {f: max(s.qos for s in self._index.subscribers_of(f)) for f in self._index.filters()}

    def subscriptions_for(self, topic: str) -> list[Subscription]:
        return sorted(self._index.match(topic), key=lambda subscription: subscription.order)

    async def dispatch(self, message: MqttMessage, subscriptions: Iterable[Subscription] | None = None) -> None:
        """Run every handler matching the message, in registration order; a failing handler is logged and skipped.

        Also what a granted browser publish uses when there is no broker (docs/architecture/mqtt-bridge.md).
        """
        if subscriptions is None:
            subscriptions = self.subscriptions_for(message.topic)
        for subscription in subscriptions:
            handler = subscription.handler
            try:
                if inspect.iscoroutinefunction(handler):
                    await handler(message)
                else:
                    await database_sync_to_async(handler)(message)
            except Exception:
                logger.exception(
                    "MQTT handler %s for %s failed on %s", _describe(handler), subscription.topic_filter, message.topic
                )


def _describe(handler: Callable) -> str:
    return f"{getattr(handler, '__module__', '?')}.{getattr(handler, '__qualname__', repr(handler))}"


#: The registry apps fill from ``AppConfig.ready``.
handlers = HandlerRegistry()


def subscribe(topic_filter: str, handler: Handler, *, qos: int = 1) -> Handler:
    """Register an MQTT handler (``AppConfig.ready``); it runs only in the bridge. See the module docstring."""
    return handlers.subscribe(topic_filter, handler, qos=qos)


def on_connect(hook: ConnectHook) -> ConnectHook:
    """Register ``hook(client)`` to run in the bridge after each connection to the broker (``AppConfig.ready``)."""
    return handlers.on_connect(hook)


def availability_from(provider: AvailabilityTopic) -> None:
    """Name the bridge's retained availability topic through ``provider()`` (``AppConfig.ready``); see the module
    docstring."""
    handlers.availability_from(provider)


# --- own publications, for brokers spoken to in MQTT v3.1.1 ----------------------------------------------------


class _OwnPublications:
    """What this client published, so its echo can be dropped where the broker's ``noLocal`` does not reach.

    * Live echoes (``track_live``, MQTT v3.1.1 only: v5 has ``noLocal``): a foreign message with the same
      topic and payload within ``window`` seconds is dropped too, the price of v3.1.1. One echo is expected
      per publication, as Mosquitto sends a v3.1.1 client one copy however many of its subscriptions match.
    * Retained echoes (both versions): the broker hands our own retained message back whenever we
      (re)subscribe, and Mosquitto applies ``noLocal`` only to live messages.
    """

    def __init__(self, window: float, *, track_live: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._track_live = track_live
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, bytes], int] = {}
        self._expiry: deque[tuple[float, tuple[str, bytes]]] = deque()
        # The broker sends a retained message of ours back when we re-subscribe, long after the window.
        self._retained: dict[str, bytes] = {}

    @staticmethod
    def _digest(payload: bytes) -> bytes:
        return hashlib.blake2b(payload, digest_size=16).digest()

    def record(self, topic: str, payload: bytes, *, retain: bool) -> None:
        key = (topic, self._digest(payload))
        with self._lock:
            if self._track_live:
                self._prune()
                self._pending[key] = self._pending.get(key, 0) + 1
                self._expiry.append((self._clock() + self._window, key))
            if retain and payload:
                self._retained[topic] = key[1]
            elif retain:
                self._retained.pop(topic, None)  # an empty retained payload clears the topic

    def is_echo(self, topic: str, payload: bytes, *, retained: bool) -> bool:
        key = (topic, self._digest(payload))
        with self._lock:
            self._prune()
            pending = self._pending.get(key, 0)
            if pending:
                self._pending[key] = pending - 1
                return True
            return retained and self._retained.get(topic) == key[1]

    def _prune(self) -> None:
        now = self._clock()
        while self._expiry and self._expiry[0][0] <= now:
            _, key = self._expiry.popleft()
            left = self._pending.get(key, 0) - 1
            if left > 0:
                self._pending[key] = left
            else:
                self._pending.pop(key, None)


# --- the client ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionState:
    broker: str
    connected: bool
    since: datetime | None
    last_error: str
    connects: int
    dropped_messages: int


@dataclass(frozen=True)
class Publication:
    """What ``publish`` returns: ``wait`` blocks (off the event loop!) until the broker has it (QoS ≥ 1)."""

    mid: int
    accepted: bool
    _info: paho.MQTTMessageInfo = field(repr=False)

    def wait(self, timeout: float) -> bool:
        if not self.accepted:
            return False
        info = self._info
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            info.wait_for_publish(timeout)
            return info.is_published()
        # Queued while disconnected: paho sends it after the reconnect and marks the same info published,
        # but leaves rc at MQTT_ERR_NO_CONN, which makes its own wait_for_publish raise at once.
        with info._condition:
            return info._condition.wait_for(lambda: info._published, timeout)


@dataclass(frozen=True)
class _BrokerSubscription:
    topic_filter: str
    qos: int
    identifier: int


_live_clients: weakref.WeakSet[MqttClient] = weakref.WeakSet()
#: How long :meth:`MqttClient.stop` waits for the broker to take its "offline".
OFFLINE_WAIT = 2.0


@dataclass(frozen=True)
class MqttTimings:
    """A client's timers and sizes (tests shrink the timers)."""

    #: Seconds between keepalive pings; the broker drops a client silent for one and a half times this.
    keepalive: int = 60
    #: Reconnect back-off (``hub.workers.Backoff``): first wait, longest, jitter; back to the first once connected.
    retry_initial: float = 1.0
    retry_max: float = 60.0
    retry_jitter: Jitter = DEFAULT_JITTER
    #: How long (MQTT v3.1.1 only) a message like one this client published counts as its own echo.
    own_publication_window: float = 30.0
    #: How far handlers may fall behind before messages for them are dropped (and counted).
    queue_size: int = 10_000


class _PahoClient(paho.Client):
    """paho's client, waiting between reconnection attempts as :class:`hub.workers.Backoff` says.

    paho's loop thread calls ``_reconnect_wait`` before each new attempt; the wait it takes is set through the public
    ``reconnect_delay_set`` (both bounds the same), so paho only sleeps (and still stops sleeping when told to stop).
    Were a paho release to stop calling this method, its own doubling between the same bounds would take over.
    """

    def __init__(self, *args, backoff: Backoff, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.backoff = backoff
        self.reconnect_delay_set(backoff.initial, backoff.maximum)

    def _reconnect_wait(self) -> None:
        delay = self.backoff.next_delay()
        self.reconnect_delay_set(delay, delay)
        super()._reconnect_wait()


def encode_payload(payload: Any) -> bytes:
    """bytes as they are, text as UTF-8, ``None`` as empty, anything else as compact JSON."""
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if payload is None:
        return b""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class MqttClient:
    """One connection to the broker: back-off, re-subscribe after every (re)connect, publish, handlers.

    * ``run_handlers``: subscribe to every filter in ``registry`` and run its handlers (the bridge only).
    * ``listen`` and ``on_message``: further filters whose every message goes to ``on_message`` (sync or
      async, called on ``loop``); the bridge uses it to forward messages to browsers.
    * ``loop``: the one asyncio loop that receives paho's callbacks; needed for handlers or ``on_message``,
      not for a client that only publishes.

    Every timer and size is a field of :class:`MqttTimings` (keepalive, reconnect back-off, the v3.1.1 echo window,
    the handlers' queue) so tests run fast. ``start`` and ``stop`` may be called from any thread.
    ``retain_as_published`` (MQTT v5): ``MqttMessage.retain`` is then True for every message its publisher sent
    retained, live ones included, not only for those the broker hands over on (re)subscribe. MQTT 3.1.1 has no
    such option: there :meth:`refresh_retained` has the broker hand the retained messages over again.
    ``availability_topic``: retained ``online`` there on every connect (before subscribing, so the broker never hands
    the client an older ``offline`` of its own), ``offline`` on :meth:`stop`, and ``offline`` as the last will the
    broker publishes when the connection dies without a goodbye. With ``run_handlers`` the registry's connect hooks
    run after every (re)connect.
    """

    def __init__(  # noqa: PLR0913 — broker, collaborators, client options, all defaulted; timings in MqttTimings
        self,
        url: str | BrokerAddress | None = None,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        registry: HandlerRegistry | None = None,
        run_handlers: bool = False,
        listen: Iterable[str] = (),
        listen_qos: int = 0,
        on_message: Callable[[MqttMessage], Awaitable[None] | None] | None = None,
        protocol: str | None = None,
        client_id: str | None = None,
        retain_as_published: bool = False,
        availability_topic: str | None = None,
        timings: MqttTimings | None = None,
    ) -> None:
        if url is None:
            url = settings.MQTT_URL
            if not url:
                raise ImproperlyConfigured("MQTT_URL is not set, so there is no broker to connect to")
        self.address = url if isinstance(url, BrokerAddress) else parse_mqtt_url(url)
        self.protocol = protocol or self.address.protocol
        if self.protocol not in _PROTOCOLS:
            raise ValueError(f"protocol must be {PROTOCOL_V5} or {PROTOCOL_V311}, not {self.protocol!r}")
        self.registry = handlers if registry is None else registry
        self.run_handlers = run_handlers
        self.on_message = on_message
        self._listen: FilterIndex[bool] = FilterIndex()
        for topic_filter in listen:
            self._listen.add(topic_filter, True)
        if (run_handlers or on_message is not None) and loop is None:
            raise ValueError("a client that runs handlers or on_message needs the event loop to run them on")
        if len(self._listen) and on_message is None:
            raise ValueError("listen filters without an on_message hook would receive messages nobody reads")
        self._loop = loop
        # MQTT v5 "retain as published": ``MqttMessage.retain`` is then also True for a live message its publisher
        # sent retained (the bridge needs that to keep browsers' last values current). v3.1.1 has no such option.
        self._retain_as_published = retain_as_published
        if availability_topic is not None:
            validate_topic(availability_topic)
        self.availability_topic = availability_topic
        self.client_id = client_id or self.address.client_id or _default_client_id()
        self.timings = timings or MqttTimings()
        self._own = _OwnPublications(self.timings.own_publication_window, track_live=self.protocol == PROTOCOL_V311)
        self._queue: asyncio.Queue[tuple[MqttMessage, list[Subscription]]] = asyncio.Queue(
            maxsize=self.timings.queue_size
        )
        self._dispatcher: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()

        self._plan = self._subscription_plan(listen_qos)
        self._by_filter: FilterIndex[_BrokerSubscription] = FilterIndex()
        for subscription in self._plan:
            self._by_filter.add(subscription.topic_filter, subscription)

        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._ready = threading.Event()
        self._pending_subscribes: set[int] = set()
        # Set by refresh_retained, cleared by each (re)connect: from then on a retained message is a refreshed copy.
        self._refresh_sent = False
        self._since: datetime | None = None
        self._last_error = "not started"
        self._connects = 0
        self._dropped = 0
        self._stopping = False
        self._paho = self._build_paho()

    # -- life cycle --

    def start(self) -> None:
        """Connect in the background and return at once; paho retries with back-off until the broker answers."""
        self._stopping = False
        if self._loop is not None and self.run_handlers:
            # Scheduled before paho's thread starts, so the dispatcher exists before the first message arrives.
            self._loop.call_soon_threadsafe(self._start_dispatcher)
        self._last_error = "connecting"
        self._paho.connect_async(
            self.address.host,
            self.address.port,
            keepalive=self.timings.keepalive,
            **({"clean_start": True} if self.protocol == PROTOCOL_V5 else {}),
        )
        logger.info("MQTT client %s connecting to %s (MQTT %s)", self.client_id, self.address, self.protocol)
        _live_clients.add(self)
        self._paho.loop_start()

    def stop(self) -> None:
        """Disconnect, stop paho's thread and the dispatcher. Handlers already running finish on their own."""
        self._stopping = True
        _live_clients.discard(self)
        if self.availability_topic is not None and self.connected:
            # A clean disconnect does not fire the last will: say "offline" ourselves, and wait briefly for it.
            self.publish(self.availability_topic, OFFLINE, qos=1, retain=True).wait(OFFLINE_WAIT)
        self._paho.disconnect()
        self._paho.loop_stop()
        self._connected.clear()
        self._ready.clear()
        self._last_error = "stopped"
        if self._loop is not None and not self._loop.is_closed():
            # The loop may close in between; then there is nothing left to cancel.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop_dispatcher)

    def wait_until_ready(self, timeout: float) -> bool:
        """Block until connected and every subscription is acknowledged (tests, start-up logs)."""
        return self._ready.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def state(self) -> ConnectionState:
        return ConnectionState(
            broker=str(self.address),
            connected=self.connected,
            since=self._since,
            last_error=self._last_error,
            connects=self._connects,
            dropped_messages=self._dropped,
        )

    @property
    def broker_filters(self) -> list[str]:
        """What the client subscribes to at the broker (filters covered by a wider one are left out)."""
        return [subscription.topic_filter for subscription in self._plan]

    # -- publishing --

    def publish(self, topic: str, payload: Any = b"", *, qos: int = 0, retain: bool = False) -> Publication:
        """Send without waiting (safe on the event loop and from any thread). QoS ≥ 1 is queued while disconnected."""
        validate_topic(topic)
        data = encode_payload(payload)
        # Before sending, so the echo cannot arrive before it is known.
        self._own.record(topic, data, retain=retain)
        info = self._paho.publish(topic, data, qos=qos, retain=retain)
        accepted = info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (qos > 0 and info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN)
        if not accepted:
            logger.warning("MQTT publish to %s not sent: %s", topic, paho.error_string(info.rc))
        return Publication(info.mid, accepted, info)

    # -- paho's thread --

    def _build_paho(self) -> paho.Client:
        v5 = self.protocol == PROTOCOL_V5
        client = _PahoClient(
            backoff=Backoff.from_timings(self.timings),
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=_PROTOCOLS[self.protocol],
            **({} if v5 else {"clean_session": True}),
        )
        # Our callbacks catch their own errors; this keeps an unforeseen one from ending paho's thread.
        client.suppress_exceptions = True
        client.enable_logger(logging.getLogger(f"{__name__}.paho"))
        if self.address.username is not None:
            client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            client.tls_set(ca_certs=self.address.ca_certs)
        if self.availability_topic is not None:
            client.will_set(self.availability_topic, OFFLINE.encode(), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _subscription_plan(self, listen_qos: int) -> tuple[_BrokerSubscription, ...]:
        wanted: dict[str, int] = {f: listen_qos for f in self._listen.filters()}
        if self.run_handlers:
            for topic_filter, qos in self.registry.filters().items():
                wanted[topic_filter] = max(qos, wanted.get(topic_filter, 0))
        plan = []
        for identifier, topic_filter in enumerate(minimal_filters(wanted), start=1):
            qos = max(q for f, q in wanted.items() if covers(topic_filter, f))
            plan.append(_BrokerSubscription(topic_filter, qos, identifier))
        return tuple(plan)

    def _on_connect(self, client: paho.Client, _userdata, _flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            self._last_error = f"broker refused the connection: {reason_code}"
            logger.warning("MQTT broker %s refused the connection: %s", self.address, reason_code)
            return
        self._paho.backoff.reset()
        with self._lock:
            self._connects += 1
            self._since = datetime.now(UTC)
            self._last_error = ""
            self._pending_subscribes.clear()
            self._refresh_sent = False
            self._connected.set()
            if self.availability_topic is not None:
                # Before the subscriptions: the broker then hands back this "online" (our own, dropped), never an
                # "offline" a previous connection's last will left.
                self.publish(self.availability_topic, ONLINE, qos=1, retain=True)
            # A clean session forgets subscriptions: send them all again after every (re)connect.
            for subscription in self._plan:
                result, mid = self._send_subscribe(client, subscription)
                if result == MQTTErrorCode.MQTT_ERR_SUCCESS and mid is not None:
                    self._pending_subscribes.add(mid)
            if not self._pending_subscribes:
                self._ready.set()
        logger.info(
            "MQTT connected to %s (connection %d); subscribing to %s",
            self.address,
            self._connects,
            ", ".join(self.broker_filters) or "nothing",
        )
        if self.run_handlers and self._loop is not None and self.registry.connect_hooks():
            try:
                self._loop.call_soon_threadsafe(self._start_connect_hooks)
            except RuntimeError:
                logger.debug("MQTT connect hooks not run: the event loop is closed")

    def refresh_retained(self) -> bool:
        """Subscribe again to every filter, so the broker hands over the retained messages they match (MQTT 3.1.1).

        Under 3.1.1 the broker clears RETAIN on a message it forwards to an existing subscription (§3.3.1.3), so a
        value retained while this client listens arrives as a live one. A SUBSCRIBE identical to an existing one
        replaces it without interrupting the flow and re-sends the retained messages it matches (§3.8.4). Those
        copies reach ``on_message`` with ``retain`` and ``refreshed`` set, never the handlers: they had the message
        when it was published. From the first refresh on a connection every retained message on it counts as a
        refreshed copy (under 3.1.1 the flag comes only with a subscription); a reconnect's own subscriptions
        hand the retained messages over as before, to the handlers too.

        Returns whether the subscriptions went out: False when not connected, and under MQTT v5, whose
        ``retain_as_published`` keeps the flag on live messages, so there is nothing to refresh.
        """
        if self.protocol != PROTOCOL_V311 or not self._connected.is_set():
            return False
        with self._lock:
            self._refresh_sent = True
            for subscription in self._plan:
                self._send_subscribe(self._paho, subscription)
        return True

    def _send_subscribe(self, client: paho.Client, subscription: _BrokerSubscription):
        if self.protocol != PROTOCOL_V5:
            return client.subscribe(subscription.topic_filter, qos=subscription.qos)
        properties = Properties(PacketTypes.SUBSCRIBE)
        # One identifier per filter: a message carries the identifiers of the subscriptions it matched,
        # which is how a copy sent for an overlapping subscription is recognised (see _is_duplicate).
        properties.SubscriptionIdentifier = subscription.identifier
        options = SubscribeOptions(qos=subscription.qos, noLocal=True, retainAsPublished=self._retain_as_published)
        return client.subscribe(subscription.topic_filter, options=options, properties=properties)

    def _on_subscribe(self, _client, _userdata, mid, reason_codes, _properties) -> None:
        for reason_code in reason_codes:
            if reason_code.is_failure:
                logger.error("MQTT broker %s refused a subscription (message %s): %s", self.address, mid, reason_code)
        with self._lock:
            self._pending_subscribes.discard(mid)
            if not self._pending_subscribes and self._connected.is_set():
                self._ready.set()

    def _on_connect_fail(self, _client, _userdata) -> None:
        self._last_error = f"cannot reach {self.address}"
        logger.debug("MQTT connection to %s failed; paho retries with back-off", self.address)

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        self._connected.clear()
        self._ready.clear()
        self._since = datetime.now(UTC)
        if self._stopping:
            return
        self._last_error = f"disconnected: {reason_code}"
        logger.warning("MQTT disconnected from %s (%s); reconnecting with back-off", self.address, reason_code)

    def _on_message(self, _client, _userdata, raw: paho.MQTTMessage) -> None:
        try:
            topic = raw.topic
        except UnicodeDecodeError:
            logger.warning("MQTT message with a topic that is not UTF-8 dropped")
            return
        payload = bytes(raw.payload)
        if self._own.is_echo(topic, payload, retained=bool(raw.retain)):
            return
        if self._is_duplicate(topic, raw):
            return
        retained = bool(raw.retain)
        message = MqttMessage(
            topic=topic, payload=payload, qos=raw.qos, retain=retained, refreshed=retained and self._refresh_sent
        )
        if self._loop is None:
            return
        try:
            self._loop.call_soon_threadsafe(self._deliver, message)
        except RuntimeError:
            logger.debug("MQTT message on %s dropped: the event loop is closed", topic)

    def _is_duplicate(self, topic: str, raw: paho.MQTTMessage) -> bool:
        """Whether this is a second copy of a message (one copy arrives per overlapping subscription).

        Of the broker subscriptions matching the topic, the copy for the lowest identifier is the one kept;
        a broker that sends one copy listing all identifiers keeps that copy too.
        """
        identifiers = getattr(raw.properties, "SubscriptionIdentifier", None) if raw.properties else None
        if not identifiers:
            return False
        matching = self._by_filter.match(topic)
        if len(matching) < 2:
            return False
        return min(subscription.identifier for subscription in matching) not in identifiers

    # -- the event loop's thread --

    def _deliver(self, message: MqttMessage) -> None:
        if self.on_message is not None and self._listen.match(message.topic):
            try:
                result = self.on_message(message)
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self._background.add(task)
                    task.add_done_callback(self._background_done)
            except Exception:
                logger.exception("MQTT on_message hook failed on %s", message.topic)
        if not self.run_handlers or message.refreshed:
            return
        subscriptions = self.registry.subscriptions_for(message.topic)
        if not subscriptions:
            return
        try:
            self._queue.put_nowait((message, subscriptions))
        except asyncio.QueueFull:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                logger.error(
                    "MQTT handlers cannot keep up: %d message(s) dropped so far (queue of %d full)",
                    self._dropped,
                    self._queue.maxsize,
                )

    def _background_done(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("MQTT on_message hook failed", exc_info=task.exception())

    def _start_dispatcher(self) -> None:
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch_forever(), name="mqtt-handlers")

    def _start_connect_hooks(self) -> None:
        task = asyncio.get_running_loop().create_task(self.registry.run_connect_hooks(self), name="mqtt-connect-hooks")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _stop_dispatcher(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            self._dispatcher = None

    async def _dispatch_forever(self) -> None:
        # One task, one message at a time: handlers see messages in the order the broker sent them.
        while True:
            message, subscriptions = await self._queue.get()
            await self.registry.dispatch(message, subscriptions)


def _default_client_id() -> str:
    host = socket.gethostname().split(".")[0][:12] or "host"
    return f"hub-{host}-{os.getpid()}-{secrets.token_hex(3)}"


# --- /healthz -----------------------------------------------------------------------------------------------


def health_check() -> CheckResult:
    """Non-critical: the state of this process's MQTT client, or whether the broker answers when it has none."""
    clients = list(_live_clients)
    if clients:
        down = [client.state for client in clients if not client.connected]
        if down:
            return CheckResult(False, "; ".join(f"{state.broker}: {state.last_error or 'down'}" for state in down))
        return CheckResult(True, ", ".join(f"connected to {client.state.broker}" for client in clients))
    address = parse_mqtt_url(settings.MQTT_URL)
    try:
        with socket.create_connection((address.host, address.port), timeout=1.0):
            pass
    except OSError as exc:
        return CheckResult(False, f"{address} unreachable: {exc}")
    return CheckResult(True, f"{address} reachable (no MQTT client in this process)")
