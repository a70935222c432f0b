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
import threading
import weakref
from collections.abc import Awaitable, Callable
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

    def grants_changed(self, grants: Any) -> None:
        """Apply the user's grants read again (``None``: the account is gone or disabled)."""


#: Reads a user's grants again (``None`` when the user is gone or disabled); a coroutine function.
ReloadGrants = Callable[[Any], Awaitable[Any]]


class SocketQuota:
    """Open ``/ws/push`` sockets per user in this process, across its event loops (``PUSH_MAX_SOCKETS_PER_USER``).

    Per web process: with several web processes a user may hold that many sockets in each. It needs no shared
    store, and a process's memory is what the limit protects. Connections are held weakly, so one that vanished
    without its disconnect (a cancelled task) stops counting once it is gone.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[Any, weakref.WeakSet] = {}

    def claim(self, user_key: Any, connection: Any, limit: int) -> bool:
        """Count ``connection`` for ``user_key``; False (and nothing counted) when it already has ``limit``."""
        with self._lock:
            connections = self._open.setdefault(user_key, weakref.WeakSet())
            if connection in connections:
                return True
            if len(connections) >= limit:
                return False
            connections.add(connection)
            return True

    def release(self, user_key: Any, connection: Any) -> None:
        with self._lock:
            connections = self._open.get(user_key)
            if connections is None:
                return
            connections.discard(connection)
            if not connections:
                del self._open[user_key]

    def open_for(self, user_key: Any) -> int:
        with self._lock:
            connections = self._open.get(user_key)
            return 0 if connections is None else len(connections)


#: The process's count of open sockets per user.
socket_quota = SocketQuota()


class PushHub:
    def __init__(
        self, bus: PushBus, *, loop: asyncio.AbstractEventLoop, reload_grants: ReloadGrants | None = None
    ) -> None:
        self.bus = bus
        self.loop = loop
        self.reload_grants = reload_grants
        # user → this process's open sockets of that user, for grant notices (a user's grants are read once per
        # notice here however many sockets the user has open).
        # Held weakly, as the socket quota holds them: a connection that vanished without its disconnect goes.
        self._users: dict[Any, weakref.WeakSet] = {}
        self._rechecking: dict[Any, asyncio.Task] = {}
        self._recheck_again: set[Any] = set()
        #: Grants notices received so far: a socket reading its grants as it opens reads them again if one came.
        self.notices = 0
        # The trie holds each filter once; the sockets on a filter (with their subscription ids) sit beside it,
        # so a match yields a few filters and then plain dict iteration, no copies of large sets.
        self._index: FilterIndex[str] = FilterIndex()
        self._sockets: dict[str, dict[PushConnection, Any]] = {}
        self._listener: asyncio.Task | None = None
        self.delivered = 0

    def start(self) -> None:
        if self._listener is None or self._listener.done():
            self._listener = self.loop.create_task(self.bus.listen(self.deliver, self.notice), name="push-hub-listener")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            # Stopping: how the listener ended no longer matters.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None

    # -- subscriptions (on the hub's loop) --

    def subscribe(self, connection: PushConnection, topic_filter: str, subscription_id: Any) -> None:
        """Subscribe (or, for a filter it has already, give the connection's subscription a new id)."""
        sockets = self._sockets.get(topic_filter)
        if sockets is None:
            self._index.add(topic_filter, topic_filter)
            sockets = self._sockets[topic_filter] = {}
        sockets[connection] = subscription_id
        connection.subscriptions[topic_filter] = subscription_id

    def unsubscribe(self, connection: PushConnection, topic_filter: str) -> bool:
        """Forget the connection's subscription on ``topic_filter``; False when it had none."""
        if topic_filter not in connection.subscriptions:
            return False
        del connection.subscriptions[topic_filter]
        sockets = self._sockets[topic_filter]
        del sockets[connection]
        if not sockets:
            del self._sockets[topic_filter]
            self._index.remove(topic_filter, topic_filter)
        return True

    def detach(self, connection: PushConnection) -> None:
        for topic_filter in list(connection.subscriptions):
            self.unsubscribe(connection, topic_filter)
        self.forget(connection)

    # -- grant notices (on the hub's loop) --

    def attach(self, connection: PushConnection, user_key: Any) -> None:
        """Count ``connection`` as ``user_key``'s, so a notice naming that user reaches it."""
        # As text: a notice names users in JSON, which turns any primary key into a number or a string.
        user_key = str(user_key)
        self._users.setdefault(user_key, weakref.WeakSet()).add(connection)
        connection.user_key = user_key

    def forget(self, connection: PushConnection) -> None:
        user_key = getattr(connection, "user_key", None)
        connections = self._users.get(user_key)
        if connections is not None:
            connections.discard(connection)
            if not connections:
                del self._users[user_key]

    def notice(self, notice: dict) -> None:
        """A grants notice from any process: the sockets here of the users it names (all when None) re-check."""
        self.notices += 1
        users = notice.get("users")
        affected = list(self._users) if users is None else [str(user) for user in users if str(user) in self._users]
        for user_key in affected:
            if user_key in self._rechecking:
                self._recheck_again.add(user_key)  # read again once the read under way is done
            else:
                self._rechecking[user_key] = self.loop.create_task(self._recheck(user_key), name="push-grants-recheck")

    async def _recheck(self, user_key: Any) -> None:
        try:
            while True:
                self._recheck_again.discard(user_key)
                if self.reload_grants is None:
                    return
                try:
                    grants = await self.reload_grants(user_key)
                except Exception:
                    # The database away for a moment: the sockets keep what they had; the minute's credential
                    # check still closes a disabled account's sockets.
                    logger.warning("live push: could not read the grants of user %s again", user_key, exc_info=True)
                    return
                for connection in tuple(self._users.get(user_key, ())):
                    try:
                        connection.grants_changed(grants)
                    except Exception:
                        logger.exception("live push: new grants could not be applied to a socket")
                if user_key not in self._recheck_again:
                    return
        finally:
            self._rechecking.pop(user_key, None)

    @property
    def filters(self) -> int:
        return len(self._sockets)

    # -- delivery (on the hub's loop) --

    def deliver(self, message: PushMessage) -> None:
        matched = self._index.match(message.topic)
        if not matched:
            return
        prefix = message.frame_prefix(retained=False)
        if len(matched) == 1:
            # The common case: one filter matched, so each socket's subs list is its one id.
            frames: dict[Any, str] = {}
            # A snapshot: offering may close a socket too slow to keep up, which unsubscribes it.
            sockets = tuple(self._sockets[next(iter(matched))].items())
            for connection, subscription_id in sockets:
                frame = frames.get(subscription_id)
                if frame is None:
                    frame = frames[subscription_id] = message_frame(prefix, [subscription_id])
                connection.offer(frame, message)
            self.delivered += len(sockets)
            return
        ids_by_connection: dict[PushConnection, list[Any]] = {}
        for topic_filter in matched:
            for connection, subscription_id in self._sockets[topic_filter].items():
                ids_by_connection.setdefault(connection, []).append(subscription_id)
        frames_by_ids: dict[tuple[Any, ...], str] = {}
        for connection, ids in ids_by_connection.items():
            key = tuple(ids) if len(ids) == 1 else tuple(sort_ids(ids))
            frame = frames_by_ids.get(key)
            if frame is None:
                frame = frames_by_ids[key] = message_frame(prefix, list(key))
            connection.offer(frame, message)
        self.delivered += len(ids_by_connection)
