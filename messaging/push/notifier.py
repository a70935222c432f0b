"""The ``events.notify`` consumer's hand-off for live push: each event to its topics, in one round trip.

An event reaches browsers on ``/events/<type with dots as slashes>`` as its whole envelope, and on each of its
own ``topics`` as its ``data`` (docs/architecture/live-push.md). A retained event becomes the last value of all of
those topics; "last" is the greatest ``occurred_at``, then the order the consumer hands events over (the
outbox's).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from messaging.envelope import Event
from messaging.push.frames import PushMessage, encode_message

EVENTS_PREFIX = "/events/"


def events_topic(event_type: str) -> str:
    return EVENTS_PREFIX + event_type.replace(".", "/")


def event_messages(event: Event, *, received_at: datetime) -> list[PushMessage]:
    common = {"retain": event.retain, "received_at": received_at, "occurred_at": event.occurred_at}
    messages = [encode_message(events_topic(event.type), event.envelope(), **common)]
    messages.extend(encode_message(topic, event.data, **common) for topic in event.topics)
    return messages


class PushNotifier:
    """Installed with ``messaging.notify.use_notifier`` from ``MessagingConfig.ready``."""

    def __init__(self, *, bus=None) -> None:
        self._bus = bus

    async def notify(self, events: Sequence[Event]) -> None:
        from messaging import push

        received_at = datetime.now(UTC)
        messages = [message for event in events for message in event_messages(event, received_at=received_at)]
        if messages:
            await (self._bus or push.get_bus()).publish(messages)
