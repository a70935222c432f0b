"""The MQTT bridge: the broker on one side, the hub's browsers and event bus on the other.

One :class:`MqttBridge` runs per installation (``python manage.py mqtt_bridge`` in production, a lifespan thread
in the embedded default when ``MQTT_URL`` is set). It holds the hub's handler-running MQTT client and:

* **broker → browsers**: every message on ``MQTT_BRIDGE_FILTERS`` (default ``#``) goes to the matching browser
  subscriptions in every web process through :func:`messaging.push.fanout`, in the order the broker sent them
  (a retained message the broker hands over on (re)subscribe goes as retained). Under MQTT 3.1.1, which clears
  RETAIN on what it forwards live, the broker is asked every ``MQTT_RETAINED_REFRESH`` seconds to hand the
  retained messages over again (:meth:`messaging.mqtt.MqttClient.refresh_retained`), so a value retained
  mid-session becomes the topic's last value for browsers too; only copies that change it are forwarded;
* **events → broker**: its own queue ``MQTT_BRIDGE_QUEUE`` on the event bus, bound to ``EVENTS_EXCHANGE``, so
  each event reaches it once however many web processes run; each of an event's ``topics`` is published with
  ``data`` as the payload (QoS 1, retained when the event is), and the batch is acknowledged on the bus only
  once the broker has every publication;
* **browsers → broker**: a granted browser publish arrives on the channel layer channel :data:`PUBLISH_CHANNEL`
  (:func:`publish_request`, called by the push endpoint in any web process), is published to the broker and
  handed to the apps' MQTT handlers here, once;
* runs the MQTT handlers apps registered (``messaging.mqtt.subscribe``) for every message from the broker, and their
  connect hooks (``messaging.mqtt.on_connect``) after every connection;
* announces the hub on the retained availability topic an app names (``messaging.mqtt.availability_from``):
  ``online`` while connected, ``offline`` as its last will and when it stops.

No loop: what its own client publishes is never delivered back to it (MQTT v5 ``noLocal``, see
:mod:`messaging.mqtt`), so an event's topics and a browser's publish are not forwarded to browsers a second time
(the event bus and the push endpoint already delivered them) nor handed to handlers twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from kombu import Connection, Queue

from hub.health import CheckResult, heartbeat_check
from hub.selectors import heartbeat_get
from hub.services import heartbeat_record
from hub.workers import Worker
from messaging import topology
from messaging.consumers_amqp import BatchConsumer, ConsumerTimings
from messaging.envelope import Event
from messaging.mqtt import (
    PROTOCOL_V311,
    HandlerRegistry,
    MqttClient,
    MqttMessage,
    MqttTimings,
    Publication,
    encode_payload,
)
from messaging.mqtt import handlers as mqtt_handlers
from messaging.push.grants import PushRefused
from messaging.topics import InvalidTopicError, validate_filter, validate_topic

logger = logging.getLogger(__name__)

BRIDGE_NAME = "mqtt_bridge"
EVENTS_CONSUMER_NAME = "mqtt_bridge.events"
#: The channel layer channel a web process sends a granted browser publish to; only the bridge receives on it.
PUBLISH_CHANNEL = "mqtt-bridge.publish"
PUBLISH_MESSAGE_TYPE = "mqtt.publish"
#: How long a web process waits for the bridge to take a browser's publish before refusing it.
TAKE_TIMEOUT = 2.0
#: How much longer it waits for the bridge's answer to a request taken just in time.
REPLY_GRACE = 0.5
#: The error a browser gets when its publish is refused because the bridge or its broker is away.
BROKER_UNREACHABLE = "broker unreachable: not published"
#: The most broker messages handed to the browsers' fan-out in one round trip.
FORWARD_BATCH = 200

#: ``fanout(topic, payload, *, retain, received_at)``: hand one message to every matching browser subscription.
Fanout = Callable[..., Awaitable[None]]


class BrokerDidNotConfirm(Exception):
    """The broker did not acknowledge an event's publication in time; the batch stays on the bus and is retried."""


def bridge_filters(filters: Iterable[str] | None = None) -> list[str]:
    """``MQTT_BRIDGE_FILTERS`` checked: a malformed filter stops start-up with a message naming the setting."""
    chosen = list(settings.MQTT_BRIDGE_FILTERS if filters is None else filters)
    for topic_filter in chosen:
        try:
            validate_filter(topic_filter)
        except InvalidTopicError as exc:
            raise ImproperlyConfigured(f"MQTT_BRIDGE_FILTERS contains {topic_filter!r}: {exc}") from None
    return chosen


class BrokerUnreachable(PushRefused):
    """The bridge (or its broker) cannot take a browser's publish now; nothing was published, nothing is queued."""

    def __init__(self) -> None:
        super().__init__(BROKER_UNREACHABLE)


def bridge_reachable() -> bool:
    """Whether the bridge's heartbeat is fresh (within twice its interval): a bridge that stopped beating is down."""
    return heartbeat_check(BRIDGE_NAME).ok


async def publish_request(
    topic: str,
    payload: Any,
    *,
    retain: bool = False,
    published_by: int | None = None,
    layer: Any = None,
    take_timeout: float = TAKE_TIMEOUT,
) -> None:
    """Ask the bridge (in whichever process it runs) to publish a granted browser message to the broker.

    ``payload`` is encoded as :func:`messaging.mqtt.encode_payload` does (JSON values as compact JSON, text as
    UTF-8). ``published_by`` (the user's id) travels with the request on the hub's own channel layer, not over
    MQTT, so the handlers the bridge runs know who asked. Raises :class:`~messaging.topics.InvalidTopicError` for
    a topic with wildcards.

    Returns once the bridge has published it. Raises :class:`BrokerUnreachable` when the bridge's heartbeat is
    stale (older than twice its interval), when the bridge does not take the request within ``take_timeout``
    seconds, or when the bridge is not connected to its broker. A refused request is never published later: it
    carries the time by which it must be taken, and a bridge that receives it after that drops it (a heater
    command applied when the bridge comes back, maybe hours later, is unsafe).
    """
    validate_topic(topic)
    if not await database_sync_to_async(bridge_reachable)():
        raise BrokerUnreachable
    if layer is None:
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
    reply_to = await layer.new_channel()
    await layer.send(
        PUBLISH_CHANNEL,
        {
            "type": PUBLISH_MESSAGE_TYPE,
            "topic": topic,
            "payload": encode_payload(payload),
            "retain": bool(retain),
            "published_by": published_by,
            "reply_to": reply_to,
            # Wall-clock time: the bridge runs in another process (same host or clock-synchronised ones).
            "take_by": time.time() + take_timeout,
        },
    )
    # A little longer than the bridge may take it: a reply sent just before the limit is still on its way.
    reply = await _receive_within(layer, reply_to, take_timeout + REPLY_GRACE)
    if reply is None or not reply.get("published"):
        raise BrokerUnreachable


async def _receive_within(layer: Any, channel: str, timeout: float) -> dict | None:
    """The next message on ``channel`` within ``timeout`` seconds, else None (the receive is then cancelled)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    receiving = asyncio.ensure_future(layer.receive(channel))
    try:
        while not receiving.done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            # Short steps: in the embedded default the in-memory layer is completed from the bridge's thread,
            # which does not wake this loop; waking it now and then lets the reply through.
            await asyncio.wait({receiving}, timeout=min(remaining, 0.05))
        return receiving.result()
    finally:
        if not receiving.done():
            receiving.cancel()


class BridgeEventsConsumer(BatchConsumer):
    """The bridge's queue on the event bus: publish each event's topics to the broker, ack once it has them."""

    name = EVENTS_CONSUMER_NAME
    transient_errors = (BrokerDidNotConfirm,)
    # ``events.db`` dead-letters an unreadable message already; a second copy would only be noise.
    dead_letter_unreadable = False
    default_timings = ConsumerTimings(flush_after=0.02, batch_size=100)

    def __init__(
        self,
        *,
        bridge: MqttBridge,
        confirm_timeout: float = 10.0,
        amqp_url: str | None = None,
        timings: ConsumerTimings | None = None,
    ) -> None:
        super().__init__(amqp_url=amqp_url, timings=timings)
        self.bridge = bridge
        self.confirm_timeout = confirm_timeout
        #: Set once the queue is declared and bound: from then on no event is missed.
        self.queue_ready = threading.Event()

    def queue_declare(self, connection: Connection, declared: topology.Topology) -> Queue:
        # Same kind of queue as the bus's own (quorum on RabbitMQ, dead-lettered), bound to the fanout exchange:
        # the topic exchange is not routed to on memory://, and the bridge wants every event with topics anyway.
        queue = Queue(
            settings.MQTT_BRIDGE_QUEUE,
            declared.fanout,
            durable=True,
            queue_arguments=dict(declared.notify_queue.queue_arguments or {}),
        )
        queue(connection.default_channel).declare()
        self.queue_ready.set()
        return queue

    def process(self, events: Sequence[Event]) -> None:
        publications: list[tuple[str, Publication]] = []
        for event in events:
            publications.extend(self.bridge.event_publish(event))
        deadline = time.monotonic() + self.confirm_timeout
        for topic, publication in publications:
            if not publication.wait(max(0.0, deadline - time.monotonic())):
                raise BrokerDidNotConfirm(
                    f"the MQTT broker did not acknowledge {topic} within {self.confirm_timeout} s"
                )


@dataclass(frozen=True)
class BridgeTimings:
    """The bridge's timers and sizes, its MQTT client's and its event consumer's among them."""

    #: How often the bridge records its heartbeat for /healthz.
    heartbeat_interval: float = 15.0
    #: How many broker messages may wait for the browsers' fan-out before further ones are dropped (and counted).
    forward_queue_size: int = 10_000
    #: Its MQTT client: a shorter keepalive and back-off than a client's defaults, as browsers wait on the bridge.
    mqtt: MqttTimings = field(default_factory=lambda: MqttTimings(keepalive=30, retry_initial=0.5, retry_max=30.0))
    #: Its consumer of the event bus.
    events: ConsumerTimings = field(default_factory=lambda: BridgeEventsConsumer.default_timings)
    #: MQTT 3.1.1 only: seconds between asking the broker for the retained messages again (``MQTT_RETAINED_REFRESH``),
    #: counted from each (re)connect, whose own subscriptions hand them over.
    retained_refresh: float = field(default_factory=lambda: settings.MQTT_RETAINED_REFRESH)


class MqttBridge(Worker):
    """See the module docstring. Every timer is a field of :class:`BridgeTimings`; ``fanout`` and ``registry`` are
    injectable (tests)."""

    name = BRIDGE_NAME

    def __init__(  # noqa: PLR0913 — collaborators and switches, keyword-only with defaults; timings in BridgeTimings
        self,
        *,
        mqtt_url: str | None = None,
        filters: Iterable[str] | None = None,
        fanout: Fanout | None = None,
        registry: HandlerRegistry | None = None,
        consume_events: bool = True,
        amqp_url: str | None = None,
        receive_browser_publishes: bool = True,
        channel_layer: Any = None,
        timings: BridgeTimings | None = None,
    ) -> None:
        super().__init__()
        self.mqtt_url = mqtt_url or settings.MQTT_URL
        if not self.mqtt_url:
            raise ImproperlyConfigured("MQTT_URL is not set, so the MQTT bridge has no broker to connect to")
        self.filters = bridge_filters(filters)
        self._fanout = fanout
        self.registry = registry
        self.consume_events = consume_events
        self.amqp_url = amqp_url
        self.receive_browser_publishes = receive_browser_publishes
        self._channel_layer = channel_layer
        self.timings = timings or BridgeTimings()
        self.client: MqttClient | None = None
        self.events: BridgeEventsConsumer | None = None
        self.stats = {
            "forwarded": 0,
            "forward_dropped": 0,
            "events_published": 0,
            "browser_published": 0,
            "browser_refused": 0,
            "browser_expired": 0,
            "retained_refreshes": 0,
        }
        self._started = threading.Event()
        self._forward_queue: asyncio.Queue[MqttMessage] | None = None
        # topic → occurred_at of the newest retained event published there: an older one (a redelivery, or
        # two producers racing) must not overwrite it, as "last" means the greatest occurred_at.
        self._retained_at: dict[str, datetime] = {}
        self._retained_lock = threading.Lock()
        # topic → digest of the retained value browsers were last given from either side of the bridge, so a
        # refreshed copy of the same value (MQTT 3.1.1) is not sent to every browser again at each refresh.
        self._browsers_retained: dict[str, bytes] = {}
        self._refresh_connects = 0
        self._next_refresh = 0.0

    # -- life cycle ------------------------------------------------------------------------------------------

    def serve(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._forward_queue = asyncio.Queue(maxsize=self.timings.forward_queue_size)
        registry = self.registry if self.registry is not None else mqtt_handlers
        self.client = MqttClient(
            self.mqtt_url,
            loop=loop,
            registry=registry,
            run_handlers=True,
            # The hub's presence (heating names it hub/<HUB_ID>/availability): "online" while this bridge is
            # connected, "offline" as its last will and when it stops.
            availability_topic=registry.availability_topic(),
            listen=self.filters,
            on_message=self._enqueue_forward,
            # A live message published retained is the topic's new last value for browsers too, not only the one
            # the broker hands over on (re)subscribe.
            retain_as_published=True,
            timings=self.timings.mqtt,
        )
        if self.consume_events:
            self.events = BridgeEventsConsumer(bridge=self, amqp_url=self.amqp_url, timings=self.timings.events)
        self.client.start()
        if self.events is not None:
            self.events.start()
        self._started.set()
        try:
            loop.run_until_complete(self._run())
        finally:
            if self.events is not None:
                self.events.stop()
            self.client.stop()
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()
            asyncio.set_event_loop(None)

    def wait_until_ready(self, timeout: float) -> bool:
        """Block until connected and subscribed at the broker and (when consuming) bound on the event bus."""
        deadline = time.monotonic() + timeout
        if not self._started.wait(timeout):
            return False
        if not self.client.wait_until_ready(max(0.0, deadline - time.monotonic())):
            return False
        if self.events is not None:
            return self.events.queue_ready.wait(max(0.0, deadline - time.monotonic()))
        return True

    async def _run(self) -> None:
        tasks = [asyncio.create_task(self._forward_forever(), name="mqtt-bridge-forward")]
        if self.receive_browser_publishes:
            tasks.append(asyncio.create_task(self._browser_publishes_forever(), name="mqtt-bridge-publish"))
        next_beat = 0.0
        try:
            while not self.stopping.is_set():
                now = time.monotonic()
                if now >= next_beat:
                    await self._beat()
                    next_beat = now + self.timings.heartbeat_interval
                self._refresh_retained_when_due(now)
                for task in tasks:
                    if task.done() and not task.cancelled() and task.exception() is not None:
                        raise task.exception()
                await asyncio.sleep(0.05)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- broker → browsers ------------------------------------------------------------------------------------

    def _refresh_retained_when_due(self, now: float) -> None:
        if self.client.protocol != PROTOCOL_V311:
            return  # MQTT v5: retain as published keeps the flag on live messages
        connects = self.client.state.connects
        if connects != self._refresh_connects:
            # A (re)connect subscribes afresh (clean session), which hands the retained messages over already.
            self._refresh_connects = connects
            self._next_refresh = now + self.timings.retained_refresh
        elif now >= self._next_refresh:
            self._next_refresh = now + self.timings.retained_refresh
            if self.client.refresh_retained():
                self.stats["retained_refreshes"] += 1

    def _enqueue_forward(self, message: MqttMessage) -> None:
        # Called on the loop for each message, in the broker's order; one task forwards them in that order.
        if message.retain:
            changed = self._browsers_retained_update(message.topic, message.payload)
            if message.refreshed and not changed:
                return  # the browsers' last value already: a refresh must not send it to them all again
        try:
            self._forward_queue.put_nowait(message)
        except asyncio.QueueFull:
            self.stats["forward_dropped"] += 1
            if self.stats["forward_dropped"] in (1, 10, 100) or self.stats["forward_dropped"] % 1000 == 0:
                logger.error(
                    "MQTT bridge: browsers' fan-out cannot keep up; %d message(s) dropped so far",
                    self.stats["forward_dropped"],
                )

    async def _forward_forever(self) -> None:
        if self._fanout is not None:
            while True:
                await self._forward_one(self._fanout, await self._forward_queue.get())
        from messaging import push

        while True:
            # What queued up while the last round trip was under way goes in one (one Redis call, not one each).
            batch = [await self._forward_queue.get()]
            while len(batch) < FORWARD_BATCH and not self._forward_queue.empty():
                batch.append(self._forward_queue.get_nowait())
            try:
                messages = [push.message(m.topic, m.payload, retain=m.retain, received_at=m.received_at) for m in batch]
                await push.fanout_many(messages)
                self.stats["forwarded"] += len(batch)
            except Exception:
                logger.exception("MQTT bridge: forwarding %d message(s) to browsers failed", len(batch))

    async def _forward_one(self, fanout: Fanout, message: MqttMessage) -> None:
        try:
            await fanout(message.topic, message.payload, retain=message.retain, received_at=message.received_at)
            self.stats["forwarded"] += 1
        except Exception:
            logger.exception("MQTT bridge: forwarding %s to browsers failed", message.topic)

    # -- events → broker --------------------------------------------------------------------------------------

    def event_publish(self, event: Event) -> list[tuple[str, Publication]]:
        """Publish each of ``event``'s topics to the broker (``data`` as payload); any thread. Returns the sends."""
        publications = []
        for topic in event.topics:
            if event.retain and not self._retained_is_newest(topic, event.occurred_at):
                logger.info("MQTT bridge: retained event %s on %s is older than the last one; skipped", event.id, topic)
                continue
            if event.retain:
                self._browsers_retained_update(topic, encode_payload(event.data))
            publications.append((topic, self.client.publish(topic, event.data, qos=1, retain=event.retain)))
        self.stats["events_published"] += len(publications)
        return publications

    def _browsers_retained_update(self, topic: str, payload: bytes) -> bool:
        """Remember ``payload`` as the retained value browsers get for ``topic``; whether that changes it."""
        digest = hashlib.blake2b(payload, digest_size=16).digest()
        with self._retained_lock:
            changed = self._browsers_retained.get(topic) != digest
            if payload:
                self._browsers_retained[topic] = digest
            else:
                self._browsers_retained.pop(topic, None)  # an empty retained payload clears the topic
            if len(self._browsers_retained) > 100_000:  # bounded: forgotten ones are forwarded once more, no harm
                for stale in list(self._browsers_retained)[:50_000]:
                    del self._browsers_retained[stale]
            return changed

    def _retained_is_newest(self, topic: str, occurred_at: datetime) -> bool:
        with self._retained_lock:
            newest = self._retained_at.get(topic)
            if newest is not None and occurred_at < newest:
                return False
            self._retained_at[topic] = occurred_at
            if len(self._retained_at) > 100_000:  # bounded: forget the oldest half
                for stale in list(self._retained_at)[:50_000]:
                    del self._retained_at[stale]
            return True

    # -- browsers → broker ------------------------------------------------------------------------------------

    async def _browser_publishes_forever(self) -> None:
        layer = self._channel_layer
        if layer is None:
            from channels.layers import get_channel_layer

            layer = self._channel_layer = get_channel_layer()
        while True:
            try:
                request = await layer.receive(PUBLISH_CHANNEL)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: retry without busy-looping
                logger.warning("MQTT bridge: channel layer receive failed (%s: %s); retrying", type(exc).__name__, exc)
                await asyncio.sleep(1.0)
                continue
            await self.take_browser_publish(layer, request)

    async def take_browser_publish(self, layer: Any, request: dict) -> None:
        """One request from :func:`publish_request`: published and answered, refused, or dropped when late."""
        take_by = request.get("take_by")
        if take_by is not None and time.time() > take_by:
            # Its web process has told the browser "not published" by now; publishing it anyway (a bridge back
            # after an outage working through the requests left on the layer) would act on a stale command.
            self.stats["browser_expired"] += 1
            logger.warning("MQTT bridge: a browser publish to %s arrived too late and is dropped", request.get("topic"))
            return
        reply_to = request.get("reply_to")

        async def reply(published: bool) -> None:
            if reply_to is None:  # a request from a web process that does not wait for an answer
                return
            try:
                await layer.send(reply_to, {"type": "mqtt.published", "published": published})
            except Exception as exc:  # its web process refuses the publish by itself when no answer comes
                logger.warning("MQTT bridge: could not answer a browser publish: %s", exc)

        await self.browser_publish(
            request["topic"],
            request["payload"],
            retain=bool(request.get("retain")),
            published_by=request.get("published_by"),
            reply=reply,
        )

    async def browser_publish(
        self,
        topic: str,
        payload: bytes,
        *,
        retain: bool,
        published_by: int | None = None,
        reply: Callable[[bool], Awaitable[None]] | None = None,
    ) -> bool:
        """Publish to the broker, then run the matching handlers here (our own client never receives it back).

        The handlers get it once, with its author and retain False: when the broker hands the retained copy back
        (a reconnect, a restarted bridge) it carries the retain flag, which action handlers ignore.

        Not connected to the broker, nothing is done and False returned: paho would queue it until the reconnect,
        and a command sent whenever the broker is back is not what the browser asked for. ``reply(published)``
        is awaited once the outcome is known, before the handlers run.
        """
        try:
            validate_topic(topic)
        except InvalidTopicError as exc:
            logger.warning("MQTT bridge: browser publish refused: %s", exc)
            if reply is not None:
                await reply(False)
            return False
        if not self.client.connected:
            self.stats["browser_refused"] += 1
            logger.warning("MQTT bridge: a browser publish to %s refused: not connected to the broker", topic)
            if reply is not None:
                await reply(False)
            return False
        if retain:
            self._browsers_retained_update(topic, bytes(payload))
        self.client.publish(topic, payload, qos=1, retain=retain)
        self.stats["browser_published"] += 1
        if reply is not None:
            await reply(True)
        registry = self.client.registry
        await registry.dispatch(
            MqttMessage(topic=topic, payload=bytes(payload), qos=1, retain=False, published_by=published_by)
        )
        return True

    # -- health -----------------------------------------------------------------------------------------------

    async def _beat(self) -> None:
        state = self.client.state
        details = {
            **self.stats,
            "broker": state.broker,
            "connected": state.connected,
            "last_error": state.last_error,
            "connects": state.connects,
            "handler_dropped": state.dropped_messages,
            "at": datetime.now(UTC).isoformat(),
        }
        try:
            await database_sync_to_async(heartbeat_record)(
                name=BRIDGE_NAME, interval_seconds=self.timings.heartbeat_interval, details=details
            )
        except Exception as exc:  # a missed heartbeat shows in /healthz; it must not stop the bridge
            logger.info("MQTT bridge: heartbeat not recorded: %s", exc)


def bridge_check() -> CheckResult:
    """``worker:mqtt_bridge`` in /healthz: a fresh heartbeat from a bridge connected to its broker."""
    beat = heartbeat_check(BRIDGE_NAME)
    if not beat.ok:
        return beat
    heartbeat = heartbeat_get(BRIDGE_NAME)
    details = (heartbeat.details if heartbeat else None) or {}
    if not details.get("connected"):
        return CheckResult(False, f"not connected to {details.get('broker')}: {details.get('last_error') or 'down'}")
    return CheckResult(
        True,
        f"connected to {details.get('broker')}; {details.get('forwarded', 0)} forwarded, "
        f"{details.get('events_published', 0)} event topic(s) published; {beat.detail}",
    )


def embedded_bridge() -> MqttBridge | None:
    """The lifespan's factory: a bridge only when ``MQTT_URL`` is set."""
    return MqttBridge() if settings.MQTT_URL else None
