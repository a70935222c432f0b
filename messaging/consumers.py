"""``/ws/push``: the WebSocket consumer (protocol in ``messaging.push.frames`` and docs/architecture/live-push.md).

Thin: parse a request, check it against the user's grants, hand subscriptions to the process's
:class:`~messaging.push.hub.PushHub`, answer. Everything sent to the socket goes through one bounded queue
drained by one writer task, so a request's ``ack`` always precedes the retained values it brings, and a socket
that cannot keep up is noticed (its queue fills) without holding up anyone else.

What one user can make a web process hold is bounded by the ``PUSH_MAX_*`` settings (docs/security.md): bytes
waiting per socket (4408), subscriptions per socket and what they hold (an ``error`` frame), sockets per user in
this process (4429).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
from collections import deque
from collections.abc import Awaitable
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from messaging import push
from messaging.auth import still_authenticated
from messaging.push.frames import (
    LEVEL_BYTES,
    BadRequest,
    PushMessage,
    Request,
    ack_frame,
    dropped_frame,
    error_frame,
    frame_bytes,
    message_frame,
    parse_request,
    pong_frame,
    subscription_bytes,
)
from messaging.push.grants import Grants, PushRefused, grants_for, grants_reload
from messaging.push.hub import socket_quota
from messaging.topics import InvalidTopicError, validate_filter

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_TOO_SLOW = 4408
CLOSE_TOO_MANY_SOCKETS = 4429
CLOSE_HEARTBEAT_LOST = 4000


class PushConsumer(AsyncWebsocketConsumer):
    # Deliveries come from the process's hub, not from a channel-layer channel per socket: no Redis work per
    # connection (a group_add per socket exhausted channels-redis' pool when 1,000 sockets arrived at once).
    channel_layer_alias = None

    #: Frames waiting for a socket before it counts as too slow (closed with 4408).
    queue_size = 1000
    #: How often the silence of the client is checked, and how long it may stay silent before 4000.
    heartbeat_interval = 10.0
    heartbeat_timeout = 60.0
    #: How often an open socket checks that its account, token or session still holds (else 4401).
    reauth_interval = 60.0
    #: The byte and count bounds; None takes the ``PUSH_MAX_*`` setting when the socket opens.
    max_queued_bytes: int | None = None
    max_subscription_bytes: int | None = None
    max_subscriptions: int | None = None
    max_sockets_per_user: int | None = None
    #: The user this socket counts against in the process's socket quota, once claimed.
    _quota_key: Any = None
    _options = (
        "queue_size",
        "heartbeat_interval",
        "heartbeat_timeout",
        "reauth_interval",
        "max_queued_bytes",
        "max_subscription_bytes",
        "max_subscriptions",
        "max_sockets_per_user",
    )

    def __init__(self, **options) -> None:
        # ``PushConsumer.as_asgi(heartbeat_timeout=0.3)``: timers and bounds injectable, as tests need.
        unknown = set(options) - set(self._options)
        if unknown:
            raise TypeError(f"PushConsumer does not take {', '.join(sorted(unknown))}")
        super().__init__()
        for name, value in options.items():
            setattr(self, name, value)

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.subscriptions: dict[str, Any] = {}
        self._closing = False
        self._tasks: list[asyncio.Task] = []
        if user is None or not user.is_authenticated or not user.is_active:
            await self._refuse(CLOSE_UNAUTHENTICATED)
            return
        self._resolve_limits()
        if not socket_quota.claim(user.pk, self, self.max_sockets_per_user):
            logger.info("live push: %s already has %s sockets open here", user, self.max_sockets_per_user)
            await self._refuse(CLOSE_TOO_MANY_SOCKETS)
            return
        self._quota_key = user.pk
        self.hub = push.process_hub()
        seen = self.hub.notices
        self.grants = await database_sync_to_async(grants_for)(user)
        while self.hub.notices != seen:  # a grants change arrived while they were read: read them afresh
            seen = self.hub.notices
            grants = await database_sync_to_async(grants_reload)(user.pk)
            if grants is None:
                await self._refuse(CLOSE_UNAUTHENTICATED)
                return
            self.grants = grants
        # From here (no await in between) a grants notice naming this user, from any process, reaches this socket.
        self.hub.attach(self, user.pk)
        # Frames waiting for the socket, and the writer's wake-up call while it has none (lighter than a Queue:
        # this runs once per delivery).
        self._pending: deque[str] = deque()
        self._pending_bytes = 0
        self._subscription_bytes = 0
        self._wakeup: asyncio.Future | None = None
        # A send offer() started that the server made wait, for the writer to finish (see _send_now).
        self._sending: Awaitable | None = None
        self._sending_bytes = 0
        self._reauth_task: asyncio.Future | None = None
        self._loop = asyncio.get_running_loop()
        self._last_heard = self._loop.time()
        #: While retained values are fetched: topic → order of the newest live message since (see _subscribe).
        self._live_since: dict[str, int] | None = None
        await self.accept()
        self._tasks = [asyncio.create_task(self._write_forever(), name="push-writer")]
        # The heartbeat and credential watches are timers, not a task each: a thousand sockets waiting on a
        # task apiece held more memory than a timer handle (docs/architecture/live-push.md, "Serving it").
        self._heartbeat_timer = self._loop.call_later(self.heartbeat_interval, self._check_heartbeat)
        self._schedule_reauth()

    async def disconnect(self, code: int) -> None:
        self._closing = True
        if hasattr(self, "hub"):
            self.hub.detach(self)
        for task in self._tasks:
            task.cancel()
        self._stop_watches()
        self._drop_sending()
        if self._quota_key is not None:
            socket_quota.release(self._quota_key, self)
            self._quota_key = None

    async def _refuse(self, code: int) -> None:
        # Accept first: a close before accepting is a bare HTTP 403, and a script could not tell why.
        await self.accept()
        await self.close(code=code)
        self._closing = True

    def _resolve_limits(self) -> None:
        for name, setting in (
            ("max_queued_bytes", "PUSH_MAX_QUEUED_BYTES"),
            ("max_subscription_bytes", "PUSH_MAX_SUBSCRIPTION_BYTES"),
            ("max_subscriptions", "PUSH_MAX_SUBSCRIPTIONS"),
            ("max_sockets_per_user", "PUSH_MAX_SOCKETS_PER_USER"),
        ):
            if getattr(self, name) is None:
                setattr(self, name, getattr(settings, setting))

    # -- PushConnection (called by the hub, on this loop) --

    def offer(self, frame: str, message: PushMessage | None = None) -> None:
        if self._closing:
            return
        if self._live_since is not None and message is not None:
            self._live_since[message.topic] = max(message.order, self._live_since.get(message.topic, message.order))
        size = frame_bytes(frame)
        if self._wakeup is not None and not self._pending:
            # The writer is parked with nothing waiting: write the frame now, on this turn, rather than wake it
            # (that task switch was a fifth of the web process's CPU per delivery, bench/push.py).
            self._send_now(frame, size)
            return
        if len(self._pending) >= self.queue_size or self._pending_bytes + size > self.max_queued_bytes:
            self._shut(CLOSE_TOO_SLOW, "too slow to keep up")
            return
        self._pending.append(frame)
        self._pending_bytes += size
        self._wake_writer()

    def _send_now(self, frame: str, size: int) -> None:
        """Run the server's ``send`` of ``frame`` until it waits; only a send the server makes wait (its buffer
        towards the peer is full) is left to the writer, which finishes it before the frames queued after it."""
        sending = self.base_send({"type": "websocket.send", "text": frame})
        if not inspect.iscoroutine(sending):  # a server whose send is another kind of awaitable (granian's)
            self._hand_to_writer(sending, size)
            return
        try:
            waiting_on = sending.send(None)
        except StopIteration:
            return  # written
        except Exception as exc:  # the server takes no more frames (the peer left): its disconnect event follows
            logger.debug("live push: a frame for a closed socket of %s: %r", self.scope.get("user"), exc)
            self._closing = True
            self.hub.detach(self)
            return
        self._hand_to_writer(_Continue(sending, waiting_on), size)

    def _hand_to_writer(self, sending, size: int) -> None:
        self._sending = sending
        self._sending_bytes = size
        self._pending_bytes += size  # still this process's memory until the server has taken it
        self._wake_writer()

    def _wake_writer(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            if not wakeup.done():
                wakeup.set_result(None)

    def grants_changed(self, grants: Grants | None) -> None:
        """The user's grants read again after a notice: drop what they no longer cover; a disabled account: 4401."""
        if self._closing:
            return
        if grants is None:
            self._shut(CLOSE_UNAUTHENTICATED, "account disabled or deleted")
            return
        self.grants = grants
        for topic_filter, subscription_id in list(self.subscriptions.items()):
            try:
                grants.check_subscribe(topic_filter)
            except PushRefused:
                self.hub.unsubscribe(self, topic_filter)
                self._subscription_bytes -= subscription_bytes(topic_filter, subscription_id)
                self.offer(dropped_frame(subscription_id, topic_filter))

    # -- requests --

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self._closing:
            return
        self._last_heard = self._loop.time()
        try:
            request = parse_request(text_data)
            if request.op == "ping":
                self.offer(pong_frame(request.id))
            elif request.op == "subscribe":
                await self._subscribe(request)
            elif request.op == "unsubscribe":
                self._unsubscribe(request)
            else:
                await self._publish(request)
        except BadRequest as exc:
            self.offer(error_frame(exc.request_id, str(exc)))

    async def _subscribe(self, request: Request) -> None:
        topic_filter = request.topic
        try:
            validate_filter(topic_filter)
            self.grants.check_subscribe(topic_filter)
        except (InvalidTopicError, PushRefused) as exc:
            raise BadRequest(str(exc), request_id=request.id) from None
        replaced = topic_filter in self.subscriptions
        if not replaced and len(self.subscriptions) >= self.max_subscriptions:
            raise BadRequest(f"at most {self.max_subscriptions} subscriptions per connection", request_id=request.id)
        held = self._subscription_bytes
        if replaced:
            held -= subscription_bytes(topic_filter, self.subscriptions[topic_filter])
        held += subscription_bytes(topic_filter, request.id)
        if held > self.max_subscription_bytes:
            raise BadRequest(
                f"this connection's subscriptions would hold {held} bytes, more than the {self.max_subscription_bytes}"
                f" allowed (a filter counts its text, its id and {LEVEL_BYTES} bytes per level): unsubscribe from"
                " some, or use a wildcard",
                request_id=request.id,
            )
        self._subscription_bytes = held
        self._live_since = {}
        try:
            self.hub.subscribe(self, topic_filter, request.id)
            self.offer(ack_frame(request.id))
            try:
                retained = await self.hub.bus.retained(topic_filter)
            except Exception:
                logger.exception("live push: the retained values of %s could not be read", topic_filter)
                return
            for message in sorted(retained, key=lambda m: m.order):
                # A live message newer than the stored value arrived meanwhile: the stored one is stale now.
                if self._live_since.get(message.topic, -1) >= message.order:
                    continue
                await self._replay_room()
                if self._closing:
                    return
                self.offer(message_frame(message.frame_prefix(retained=True), [request.id]))
        finally:
            self._live_since = None

    async def _replay_room(self) -> None:
        """Wait while half of what this socket may queue is waiting.

        A replay answers the socket's own request and may hold more values than the socket may have waiting
        (1,000 frames, ``PUSH_MAX_QUEUED_BYTES``): offered at once it closed a reader that keeps up with 4408.
        Paced, it holds at most half of either; live messages keep the other half. A peer that stops reading
        stays here until the heartbeat watch closes it.
        """
        while not self._closing and (
            len(self._pending) >= self.queue_size // 2 or self._pending_bytes >= self.max_queued_bytes // 2
        ):
            await asyncio.sleep(0.005)

    def _unsubscribe(self, request: Request) -> None:
        try:
            validate_filter(request.topic)
        except InvalidTopicError as exc:
            raise BadRequest(str(exc), request_id=request.id) from None
        subscription_id = self.subscriptions.get(request.topic)
        if not self.hub.unsubscribe(self, request.topic):
            raise BadRequest(f"there is no subscription on {request.topic!r}", request_id=request.id)
        self._subscription_bytes -= subscription_bytes(request.topic, subscription_id)
        self.offer(ack_frame(request.id))

    async def _publish(self, request: Request) -> None:
        try:
            await push.browser_publish(
                user=self.scope["user"],
                topic=request.topic,
                payload=request.payload,
                retain=request.retain,
                grants=self.grants,
            )
        except (InvalidTopicError, PushRefused) as exc:
            raise BadRequest(str(exc), request_id=request.id) from None
        except Exception:
            logger.exception("live push: a publish to %s failed", request.topic)
            raise BadRequest("the hub could not publish this message; try again", request_id=request.id) from None
        self.offer(ack_frame(request.id))

    # -- the socket's side --

    async def _write_forever(self) -> None:
        send = self.base_send
        pending = self._pending
        while True:
            if self._sending is not None:
                await self._sending  # the frame offer() started; it goes before those queued after it
                self._sending = None
                self._pending_bytes -= self._sending_bytes
            while pending:
                frame = pending[0]
                # Counted until sent: a frame the server has not taken yet is still this process's memory.
                await send({"type": "websocket.send", "text": frame})
                if pending and pending[0] is frame:  # else _shut emptied the queue meanwhile
                    pending.popleft()
                    self._pending_bytes -= frame_bytes(frame)
            self._wakeup = self._loop.create_future()
            await self._wakeup

    def _check_heartbeat(self) -> None:
        if self._closing:
            return
        if self._loop.time() - self._last_heard > self.heartbeat_timeout:
            self._shut(CLOSE_HEARTBEAT_LOST, "heartbeat lost")
            return
        self._heartbeat_timer = self._loop.call_later(self.heartbeat_interval, self._check_heartbeat)

    def _schedule_reauth(self) -> None:
        # Jittered: a thousand sockets opened together must not all query the database in the same instant.
        delay = self.reauth_interval * random.uniform(0.75, 1.25)
        self._reauth_timer = self._loop.call_later(delay, self._reauth_due)

    def _reauth_due(self) -> None:
        if not self._closing:
            self._reauth_task = asyncio.ensure_future(self._reauth())

    async def _reauth(self) -> None:
        try:
            valid = await still_authenticated(self.scope)
        except Exception:  # the database away for a moment: keep the socket, check again next time
            logger.warning("live push: could not re-check a socket's credentials", exc_info=True)
            valid = True
        finally:
            self._reauth_task = None
        if not valid:
            self._shut(CLOSE_UNAUTHENTICATED, "credentials no longer valid")
        elif not self._closing:
            self._schedule_reauth()

    def _stop_watches(self) -> None:
        for timer in (getattr(self, "_heartbeat_timer", None), getattr(self, "_reauth_timer", None)):
            if timer is not None:
                timer.cancel()
        task = getattr(self, "_reauth_task", None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _shut(self, code: int, why: str) -> None:
        """Stop delivering and close with ``code``; the frames still queued are dropped."""
        if self._closing:
            return
        self._closing = True
        self.hub.detach(self)
        # Freed now, not when the peer finally takes the close frame (a reader that never reads may not).
        self._pending.clear()
        self._pending_bytes = 0
        self._drop_sending()
        logger.info("live push: closing a connection (%s) of %s: %s", code, self.scope.get("user"), why)
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self._stop_watches()
        self._tasks.append(asyncio.create_task(self._close_after_writer(code), name="push-close"))

    def _drop_sending(self) -> None:
        sending = getattr(self, "_sending", None)
        if sending is not None:
            self._sending = None
            close = getattr(sending, "close", None)  # a coroutine's; another awaitable may have none
            if close is not None:
                close()

    async def _close_after_writer(self, code: int) -> None:
        writer = self._tasks[0] if self._tasks else None
        if writer is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
        await self.close(code=code)


class _Continue:
    """The rest of a coroutine started by hand (``coroutine.send(None)``) that stopped at an await on
    ``waiting_on``: awaiting this runs it to its end, as if a task had run it from the start."""

    __slots__ = ("_coroutine", "_waiting_on")

    def __init__(self, coroutine, waiting_on) -> None:
        self._coroutine, self._waiting_on = coroutine, waiting_on

    def __await__(self):
        coroutine, waiting_on = self._coroutine, self._waiting_on
        while True:
            try:
                resumed_with = yield waiting_on
            except BaseException as exc:  # a cancellation (or anything thrown in) goes on into the coroutine
                try:
                    waiting_on = coroutine.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    waiting_on = coroutine.send(resumed_with)
                except StopIteration as stop:
                    return stop.value

    def close(self) -> None:
        self._coroutine.close()
