"""Where the ``events.notify`` consumer hands events over: the extension point for live push.

The consumer calls ``await notifier.notify(events)`` for each batch it received and acknowledges the batch only
once that returns; an exception means "not handed over" and the batch is retried. The default
:class:`ChannelLayerNotifier` sends each event, whole envelope with its topics and retain flag, to one channel
layer group. The live-push work replaces it (e.g. with per-process fan-out) by calling :func:`use_notifier`
from its ``AppConfig.ready``; tests pass a double straight to the consumer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from messaging.envelope import Event

#: The channel layer group the default notifier sends to, and the message type its members receive.
NOTIFY_GROUP = "events"
NOTIFY_MESSAGE_TYPE = "event.notify"


class Notifier(Protocol):
    async def notify(self, events: Sequence[Event]) -> None:
        """Hand ``events`` over (in order); raise if they could not be, so the consumer retries."""


def notify_message(event: Event) -> dict[str, Any]:
    """The channel layer message for one event: the whole envelope, its topics and its retain flag."""
    return {
        "type": NOTIFY_MESSAGE_TYPE,
        "envelope": event.envelope(),
        "topics": list(event.topics),
        "retain": event.retain,
    }


class ChannelLayerNotifier:
    def __init__(self, *, group: str = NOTIFY_GROUP, layer: Any = None) -> None:
        self.group = group
        self._layer = layer

    async def notify(self, events: Sequence[Event]) -> None:
        layer = self._layer
        if layer is None:
            from channels.layers import get_channel_layer

            layer = self._layer = get_channel_layer()
        for event in events:
            await layer.group_send(self.group, notify_message(event))


NotifierFactory = Callable[[], Notifier]
_factory: NotifierFactory = ChannelLayerNotifier


def use_notifier(factory: NotifierFactory) -> None:
    """Make the ``events.notify`` consumer hand events to what ``factory()`` returns from now on."""
    global _factory
    _factory = factory


def build_notifier() -> Notifier:
    return _factory()
