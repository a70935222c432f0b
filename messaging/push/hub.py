"""The per-process fan-out: one subscription to the bus per web process, a filter index, a queue per socket.

Each web process (each event loop serving WebSockets) has one :class:`PushHub`. It listens to the bus once,
and for each message walks the :class:`~messaging.topics.FilterIndex` (cost grows with the topic's depth and
the matching filters, never with the number of subscriptions), groups the matches by connection, builds the
frame once per distinct ``subs`` list and offers it to each connection's bounded queue. Nothing here waits on a
socket: a connection that cannot take its frame is closed by its own consumer (4408).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from messaging.push.bus import PushBus
from messaging.push.frames import PushMessage, message_frame, sort_ids
from messaging.topics import FilterIndex

logger = logging.getLogger(__name__)


class PushConnection(Protocol):
    #: filter → the id of the subscription the client made with it
    subscriptions: dict[str, Any]

    def offer(self, frame: str, message: PushMessage | None = None) -> None:
        """Queue a frame for the socket without waiting (a full queue is the connection's business)."""


class PushHub:
    def __init__(self, bus: PushBus, *, loop: asyncio.AbstractEventLoop) -> None:
        self.bus = bus
        self.loop = loop
        self._index: FilterIndex[PushConnection] = FilterIndex()
        self._listener: asyncio.Task | None = None
        self.delivered = 0

    def start(self) -> None:
        if self._listener is None or self._listener.done():
            self._listener = self.loop.create_task(self.bus.listen(self.deliver), name="push-hub-listener")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            # Stopping: how the listener ended no longer matters.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None

    # -- subscriptions (on the hub's loop) --

    def subscribe(self, connection: PushConnection, topic_filter: str, subscription_id: Any) -> None:
        connection.subscriptions[topic_filter] = subscription_id
        self._index.add(topic_filter, connection)

    def unsubscribe(self, connection: PushConnection, topic_filter: str) -> bool:
        """Forget the connection's subscription on ``topic_filter``; False when it had none."""
        if topic_filter not in connection.subscriptions:
            return False
        del connection.subscriptions[topic_filter]
        self._index.remove(topic_filter, connection)
        return True

    def detach(self, connection: PushConnection) -> None:
        for topic_filter in list(connection.subscriptions):
            self._index.remove(topic_filter, connection)
        connection.subscriptions.clear()

    @property
    def filters(self) -> int:
        return len(self._index)

    # -- delivery (on the hub's loop) --

    def deliver(self, message: PushMessage) -> None:
        matched = self._index.match_filters(message.topic)
        if not matched:
            return
        ids_by_connection: dict[PushConnection, list[Any]] = {}
        for topic_filter, connections in matched.items():
            for connection in connections:
                subscription_id = connection.subscriptions.get(topic_filter)
                if subscription_id is not None:
                    ids_by_connection.setdefault(connection, []).append(subscription_id)
        prefix = message.frame_prefix(retained=False)
        frames: dict[tuple[Any, ...], str] = {}
        for connection, ids in ids_by_connection.items():
            key = tuple(ids) if len(ids) == 1 else tuple(sort_ids(ids))
            frame = frames.get(key)
            if frame is None:
                frame = frames[key] = message_frame(prefix, list(key))
            connection.offer(frame, message)
        self.delivered += len(ids_by_connection)
