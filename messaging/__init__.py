"""The event bus (AMQP through kombu), the event log, live push and the MQTT bridge.

The public API other apps use: :func:`publish`, :func:`apublish`, and :func:`publish_many` for bursts.
They only write outbox rows in the caller's transaction; the relay (``messaging.relay``) takes them to the
broker. :func:`require_publish_permission` lets the app that owns a topic say which permission publishing there
needs (``{home}`` in a filter stands for ``MQTT_HOME_PREFIX``). This module stays importable before Django's
apps are ready, so the service is imported inside the functions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from messaging.envelope import Event, InvalidEvent, new_event
from messaging.topic_rules import HOME, require_publish_permission

__all__ = [
    "HOME",
    "Event",
    "InvalidEvent",
    "apublish",
    "new_event",
    "publish",
    "publish_many",
    "require_publish_permission",
]


def publish(
    type: str,
    data: Any,
    *,
    source: str,
    topics: Iterable[str] = (),
    retain: bool = False,
    occurred_at: datetime | None = None,
) -> uuid.UUID:
    """Queue an event in the caller's transaction and return its id at once; never waits on the broker.

    A rolled-back transaction publishes nothing; a broker outage loses nothing (the relay retries).
    Raises :class:`InvalidEvent` for an empty type or source, data that is not JSON, a naive ``occurred_at``.
    """
    from messaging.services import event_publish

    return event_publish(type=type, data=data, source=source, topics=topics, retain=retain, occurred_at=occurred_at)


def publish_many(events: Iterable[Event]) -> list[uuid.UUID]:
    """Queue a burst of events built with :func:`new_event` (same arguments as :func:`publish`) in one insert.

    The same outbox rows as calling :func:`publish` for each, in order, for callers that produce many at once.
    """
    from messaging.services import events_publish

    return events_publish(events=list(events))


async def apublish(
    type: str,
    data: Any,
    *,
    source: str,
    topics: Iterable[str] = (),
    retain: bool = False,
    occurred_at: datetime | None = None,
) -> uuid.UUID:
    """:func:`publish` for async code (runs on the thread that owns the caller's database connection)."""
    from asgiref.sync import sync_to_async

    return await sync_to_async(publish)(
        type, data, source=source, topics=topics, retain=retain, occurred_at=occurred_at
    )
