"""Live push to browsers (``/ws/push``): the fan-out API the rest of the hub calls.

Deliver a message to every browser subscription, in every web process, whose filter matches::

    from messaging import push

    await push.fanout("/news/europe/sport", b'{"score": "2-1"}')          # on an event loop
    push.fanout_sync("/home/kitchen/measure/3.12.0", b"21.5", retain=True)  # from a thread (e.g. paho's side)

* ``payload``: bytes as received (UTF-8 JSON arrives in the browser as that value, other UTF-8 as a string,
  anything else base64 with ``"encoding": "base64"``), or a JSON-able value (a hub event's envelope or data).
* ``retain=True`` keeps it as the topic's last value: every new subscription matching the topic gets it at
  once. The greatest ``occurred_at`` (default: ``received_at``) wins, ties go to the later call. An empty
  bytes payload with ``retain=True`` clears the topic's last value (MQTT's rule) and is still delivered.
* ``received_at``: when the hub received it (the frame's ``ts``); default now.

One call is one Redis pub/sub message when ``REDIS_URL`` is set (each web process subscribes once and fans out
to its own sockets), or a hand-off to this process's sockets otherwise; it never waits on a browser.
``fanout_many`` / ``fanout_many_sync`` send a batch in one round trip.

Browser publishes go through :func:`browser_publish` (grants checked; to the broker when ``MQTT_URL`` is set,
else straight to ``messaging.mqtt``'s handlers and to :func:`fanout`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from messaging.push.bus import MemoryBus, PushBus, RedisBus, wire_bytes
from messaging.push.frames import PushMessage, encode_message
from messaging.push.grants import Grants, PushRefused, grants_for
from messaging.push.hub import PushHub
from messaging.topics import validate_topic

__all__ = [
    "Grants",
    "PushMessage",
    "PushRefused",
    "announce_grants_changed",
    "browser_publish",
    "fanout",
    "fanout_many",
    "fanout_many_sync",
    "fanout_sync",
    "get_bus",
    "message",
    "process_hub",
    "use_bus",
]

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_bus: PushBus | None = None
_hubs: dict[asyncio.AbstractEventLoop, PushHub] = {}


def get_bus() -> PushBus:
    """The process's bus: Redis when ``REDIS_URL`` is set, in memory otherwise."""
    global _bus
    with _lock:
        if _bus is None:
            from django.conf import settings

            _bus = RedisBus(settings.REDIS_URL) if settings.REDIS_URL else MemoryBus()
        return _bus


def use_bus(bus: PushBus | None) -> None:
    """Replace the process's bus (tests; ``None`` rebuilds it from settings). Existing hubs are forgotten."""
    global _bus
    with _lock:
        _bus = bus
        hubs = list(_hubs.values())
        _hubs.clear()
    for hub in hubs:
        if hub.loop.is_running() and not hub.loop.is_closed() and hub._listener is not None:
            hub.loop.call_soon_threadsafe(hub._listener.cancel)


def process_hub() -> PushHub:
    """This event loop's hub (one per web process in practice), started on first use."""
    loop = asyncio.get_running_loop()
    bus = get_bus()
    with _lock:
        hub = _hubs.get(loop)
        if hub is None:
            for stale in [known for known in _hubs if known.is_closed()]:
                del _hubs[stale]
            hub = _hubs[loop] = PushHub(bus, loop=loop, reload_grants=_reload_grants)
    hub.start()
    return hub


async def _reload_grants(user_key) -> Grants | None:
    from channels.db import database_sync_to_async

    from messaging.push.grants import grants_reload

    return await database_sync_to_async(grants_reload)(user_key)


def announce_grants_changed(users: Iterable[Any] | None) -> None:
    """Tell every web process that these users' grants (``None``: anyone's) may have changed; their open sockets
    read them again and drop what they no longer cover. One bus notice; never raises (logged instead)."""
    notice = {"users": None if users is None else sorted({str(user) for user in users})}
    if notice["users"] == []:
        return
    try:
        get_bus().announce_sync(notice)
    except Exception:
        # The change itself is committed; the sockets' minute-by-minute credential check remains.
        logger.exception("live push: the grants notice for %s could not be sent", notice["users"] or "everyone")


def message(
    topic: str,
    payload: Any,
    *,
    retain: bool = False,
    received_at: datetime | None = None,
    occurred_at: datetime | None = None,
) -> PushMessage:
    """A message ready for :func:`fanout_many`: the payload is encoded here, once."""
    validate_topic(topic)
    return encode_message(topic, payload, retain=retain, received_at=received_at, occurred_at=occurred_at)


async def fanout(
    topic: str,
    payload: Any,
    *,
    retain: bool = False,
    received_at: datetime | None = None,
    occurred_at: datetime | None = None,
) -> None:
    """Deliver to every matching browser subscription in every web process (see the module docstring)."""
    await get_bus().publish([message(topic, payload, retain=retain, received_at=received_at, occurred_at=occurred_at)])


def fanout_sync(
    topic: str,
    payload: Any,
    *,
    retain: bool = False,
    received_at: datetime | None = None,
    occurred_at: datetime | None = None,
) -> None:
    """:func:`fanout` for threads (not for an event loop's thread: it waits on Redis)."""
    get_bus().publish_sync([message(topic, payload, retain=retain, received_at=received_at, occurred_at=occurred_at)])


async def fanout_many(messages: Iterable[PushMessage]) -> None:
    """Several messages (built with :func:`message`), in order, in one round trip."""
    await get_bus().publish(messages)


def fanout_many_sync(messages: Iterable[PushMessage]) -> None:
    get_bus().publish_sync(messages)


async def browser_publish(
    *, user, topic: str, payload: Any, retain: bool = False, grants: Grants | None = None
) -> None:
    """A publish from ``/ws/push`` (or anything acting for a user); raises :class:`PushRefused` when not granted.

    ``payload`` is what the client sent: bytes as they are, a string as UTF-8, any other JSON value as JSON
    (:func:`messaging.mqtt.encode_payload`). It goes to the browsers through :func:`fanout` at once, and:
    with ``MQTT_URL``, to the bridge (``messaging.bridge.publish_request``), which publishes it to the broker
    and runs the apps' MQTT handlers — its own client never hears it back, so it is not delivered twice;
    without, straight to the registered MQTT handlers here. With ``MQTT_URL`` and the bridge or its broker away,
    ``messaging.bridge.BrokerUnreachable`` (a :class:`PushRefused`) is raised and nothing is published or queued.
    """
    from channels.db import database_sync_to_async
    from django.conf import settings

    from messaging import mqtt

    validate_topic(topic)
    if grants is None:
        grants = await database_sync_to_async(grants_for)(user)
    grants.check_publish(topic)
    data = mqtt.encode_payload(payload)
    pending = message(topic, data, retain=retain)
    if pending.retain and not pending.clears:
        await _check_retained_room(pending, limit=settings.PUSH_MAX_RETAINED_BYTES)
    # The handlers learn who asked (a command row names its author); they run once, as published, with retain
    # False: a retained copy replayed later (to a browser, or by the broker to the bridge) is not a new request.
    author = user.pk if user is not None and user.is_authenticated else None
    if settings.MQTT_URL:
        from messaging.bridge import publish_request

        await publish_request(topic, data, retain=retain, published_by=author)
    else:
        await mqtt.handlers.dispatch(mqtt.MqttMessage(topic=topic, payload=data, qos=1, published_by=author))
    await get_bus().publish([pending])


async def _check_retained_room(pending: PushMessage, *, limit: int) -> None:
    """Refuse a retained value that would take the bus's retained store beyond ``limit`` bytes (all topics).

    Checked before the publish, not in the same step, so parallel publishes may pass it together: each is at
    most one request (262,144 characters), which bounds the overshoot.
    """
    total, held = await get_bus().retained_size(pending.topic)
    size = wire_bytes(pending)
    if total - held + size > limit:
        raise PushRefused(
            f"the hub keeps at most {limit} bytes of retained values (PUSH_MAX_RETAINED_BYTES) and holds {total}: "
            f"this {size}-byte value would not fit. Publish it without retain, or clear retained topics "
            "(a retained empty payload)"
        )


def health_check():
    """``push`` in /healthz (non-critical): whether this process's hubs hear the Redis channel."""
    from hub.health import CheckResult

    bus = get_bus()
    if not isinstance(bus, RedisBus):
        return CheckResult(True, "in-process fan-out (no REDIS_URL)")
    with _lock:
        hubs = len(_hubs)
    try:
        bus.ping()
    except Exception as exc:
        return CheckResult(False, f"Redis unreachable: {exc}")
    if hubs and not bus.connected.is_set():
        return CheckResult(False, "Redis answers, but this process is not subscribed to the push channel yet")
    listening = "subscribed" if hubs else "no WebSocket served yet"
    return CheckResult(True, f"Redis answers; {listening}")
