"""The outbox relay: publishes the rows ``messaging.publish`` wrote to the fanout exchange, in ``id`` order, in
batches the broker confirms once each, and deletes only confirmed rows. One relay publishes at a time (a lock).

What it does on a nack, a timeout, a lost connection, an unroutable event, and on the embedded default's
``memory://``: docs/architecture/event-bus.md#the-relay. Why an outbox: docs/decisions/0002-outbox.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import socket
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from kombu import Connection, Exchange, Producer
from kombu.exceptions import KombuError

from hub import wakeups
from hub.health import CheckResult, heartbeat_check
from hub.selectors import heartbeat_get
from hub.timefmt import format_utc, parse_utc
from hub.workers import DEFAULT_JITTER, Backoff, Heartbeat, Jitter, Worker
from messaging import envelope, selectors, services, topology
from messaging.event_store import outbox_events_store
from messaging.models import OutboxEvent

logger = logging.getLogger(__name__)

RELAY_NAME = "relay_outbox"

_relays: weakref.WeakSet[OutboxRelay] = weakref.WeakSet()


def wake_relays() -> None:
    """Called after a transaction that wrote outbox rows commits: an idle relay in this process starts at once."""
    for relay in list(_relays):
        relay.wake()


# A relay exists in this process only once this module is imported, so registering here misses none.
wakeups.register(services.OUTBOX_WRITTEN, wake_relays)


def event_from_row(row: OutboxEvent) -> envelope.Event:
    return envelope.Event(
        id=row.event_id,
        type=row.type,
        occurred_at=row.occurred_at,
        source=row.source,
        data=row.data,
        topics=tuple(row.topics or ()),
        retain=row.retain,
    )


# --- Publishing one batch --------------------------------------------------------------------------------


class PublishFailed(Exception):
    """The broker did not confirm the whole batch; ``confirmed`` leading events of it were confirmed."""

    def __init__(self, reason: str, *, confirmed: int) -> None:
        super().__init__(reason)
        self.confirmed = confirmed


@dataclass(frozen=True)
class Unroutable:
    event_id: str
    event_type: str
    reply_text: str


class BatchPublisher:
    """Publishes on one channel of ``connection``; on AMQP it waits for publisher confirms once per batch.

    Delivery tags count 1, 2, … per channel from ``confirm.select``; the broker acks them, usually many at once
    (``multiple``). A new publisher (a new channel) is made after any failure, so tags never need reconciling.
    """

    def __init__(
        self,
        conn: Connection,
        exchange: Exchange,
        *,
        confirm_timeout: float,
        on_unroutable: Callable[[Unroutable], None],
    ) -> None:
        self.connection = conn
        self.exchange = exchange
        self.confirm_timeout = confirm_timeout
        self.on_unroutable = on_unroutable
        self.channel = conn.channel()
        self.confirms = conn.transport.driver_type == "amqp"
        self._published = 0  # the last delivery tag used on this channel
        self._outstanding: set[int] = set()
        self._nacked: set[int] = set()
        if self.confirms:
            # Called directly (not through the connection's confirm_publish option), so basic_publish does
            # not wait per message: the acks are collected by the handlers below while draining.
            self.channel.confirm_select()
            self.channel.events["basic_ack"].add(self._on_ack)
            self.channel.events["basic_nack"].add(self._on_nack)
            self.channel.events["basic_return"].add(self._on_return)
        self.producer = Producer(self.channel, exchange=exchange, auto_declare=False)

    def publish(self, events: Sequence[envelope.Event]) -> None:
        """Publish ``events`` in order and return once the broker confirmed all; else raise :class:`PublishFailed`."""
        first_tag = self._published + 1
        for event in events:
            self.producer.publish(
                event.body(), exchange=self.exchange, routing_key=event.type, mandatory=True, **event.amqp_properties()
            )
            self._published += 1
            if self.confirms:
                self._outstanding.add(self._published)
        if not self.confirms:
            return
        deadline = time.monotonic() + self.confirm_timeout
        # Wait for every answer, not just the first nack: quorum queues ack later than a full queue nacks,
        # and only a fully known prefix may leave the outbox.
        while self._outstanding:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with contextlib.suppress(socket.timeout):
                self.connection.drain_events(timeout=remaining)
        unconfirmed = sorted(self._outstanding | self._nacked)
        if unconfirmed:
            confirmed = unconfirmed[0] - first_tag
            reason = "the broker nacked the batch" if self._nacked else f"no confirm within {self.confirm_timeout} s"
            raise PublishFailed(reason, confirmed=confirmed)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.channel.close()

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self._outstanding = {tag for tag in self._outstanding if tag > delivery_tag}
        else:
            self._outstanding.discard(delivery_tag)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        tags = {tag for tag in self._outstanding if tag <= delivery_tag} if multiple else {delivery_tag}
        self._outstanding -= tags
        self._nacked |= tags

    def _on_return(self, exc: Exception, exchange: str, routing_key: str, message: Any) -> None:
        properties = getattr(message, "properties", {}) or {}
        self.on_unroutable(
            Unroutable(
                event_id=str(properties.get("message_id", "?")),
                event_type=routing_key,
                reply_text=str(getattr(exc, "reply_text", exc)),
            )
        )


# --- One relay at a time ---------------------------------------------------------------------------------


class RelayLock:
    """Held by the one relay that publishes; the others keep asking. ``acquire`` is cheap when already held."""

    def acquire(self) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def lost(self) -> None:
        """The database connection went away (a PostgreSQL session lock went with it)."""


class PostgresAdvisoryLock(RelayLock):
    """A session-level advisory lock on this thread's database connection.

    It lives exactly as long as the connection: if Django reconnects (after an error), the lock is gone, so
    the relay notices a changed connection and asks again before it publishes anything.
    """

    def __init__(self, name: str) -> None:
        self.key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        self._held_on: Any = None

    def acquire(self) -> bool:
        if self._held_on is not None and self._held_on is connection.connection:
            return True
        self._held_on = None
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [self.key])
            if cursor.fetchone()[0]:
                self._held_on = connection.connection
        return self._held_on is not None

    def release(self) -> None:
        if self._held_on is not None and self._held_on is connection.connection:
            with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [self.key])
        self._held_on = None

    def lost(self) -> None:
        self._held_on = None


class FileLock(RelayLock):
    """An exclusive ``flock`` on a file beside the SQLite database: relays in any process on the machine queue."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Any = None

    def acquire(self) -> bool:
        if self._file is not None:
            return True
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class ProcessLock(RelayLock):
    """For an in-memory SQLite database, which only this process can see anyway."""

    _locks: dict[str, threading.Lock] = {}
    _guard = threading.Lock()

    def __init__(self, name: str) -> None:
        with self._guard:
            self._lock = self._locks.setdefault(name, threading.Lock())
        self._held = False

    def acquire(self) -> bool:
        if not self._held:
            self._held = self._lock.acquire(blocking=False)
        return self._held

    def release(self) -> None:
        if self._held:
            self._lock.release()
            self._held = False


def relay_lock_for(name: str) -> RelayLock:
    if connection.vendor == "postgresql":
        return PostgresAdvisoryLock(name)
    database = str(connection.settings_dict.get("NAME") or "")
    if connection.vendor == "sqlite" and database and ":memory:" not in database and "mode=memory" not in database:
        return FileLock(Path(f"{database}.{name}.lock"))
    return ProcessLock(name)


# --- The worker ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RelayTimings:
    """The relay's sizes and timers (tests shrink the timers to milliseconds)."""

    #: Rows per batch, one wait for the broker's confirms each.
    batch_size: int = 500
    #: How long a batch waits for its confirms before it counts as failed.
    confirm_timeout: float = 10.0
    #: How often an idle relay looks at the outbox (a commit in this process wakes it at once).
    idle_interval: float = 1.0
    #: How often a relay waiting for another one's lock asks again.
    lock_interval: float = 2.0
    #: Back-off after a failure (broker or database): the first wait, the longest, the jitter (``hub.workers``).
    retry_initial: float = 0.5
    retry_max: float = 30.0
    retry_jitter: Jitter = DEFAULT_JITTER
    #: How often the relay records its heartbeat for /healthz.
    heartbeat_interval: float = 15.0
    connect_timeout: float = 5.0
    #: The AMQP heartbeat asked of the broker (a half-open connection is noticed within about twice this).
    broker_heartbeat: float = 30.0


class OutboxRelay(Worker):
    """Drains the outbox to the broker; ``python manage.py relay_outbox`` in production, a thread when embedded.

    Every timer is a field of :class:`RelayTimings` so tests run in milliseconds.
    """

    name = RELAY_NAME

    def __init__(self, *, amqp_url: str | None = None, timings: RelayTimings | None = None) -> None:
        super().__init__()
        self.amqp_url = amqp_url or settings.AMQP_URL
        self.timings = timings or RelayTimings()
        self._backoff = Backoff.from_timings(self.timings)
        self.published = 0
        self.unroutable = 0
        self.last_unroutable: Unroutable | None = None
        self.last_unroutable_at = None
        self.last_error = ""
        self.leader = False
        self._failures = 0
        self._to_delete: list[int] = []
        self._wake = threading.Event()
        self._lock: RelayLock | None = None
        self._connection: Connection | None = None
        self._publisher: BatchPublisher | None = None
        self._heartbeat = Heartbeat(RELAY_NAME)
        transport = Connection(self.amqp_url)
        self._broker_errors = (*transport.connection_errors, *transport.channel_errors)
        _relays.add(self)

    # -- lifecycle

    def serve(self) -> None:
        try:
            while not self.stopping.is_set():
                delay = self.step()
                if delay > 0:
                    self._wake.wait(delay)
                    self._wake.clear()
        finally:
            self._disconnect()
            self._release_lock()

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        self._wake.set()
        super().stop(timeout)

    def wake(self) -> None:
        self._wake.set()

    def drain(self, *, timeout: float = 30.0) -> int:
        """Publish until the outbox is empty (tests and the benchmark); return how many were published."""
        before = self.published
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                delay = self.step()
                if not selectors.outbox_backlog()[0]:
                    break
                if self._failures:
                    time.sleep(delay)
        finally:
            self._disconnect()
            self._release_lock()
        return self.published - before

    # -- one pass

    def step(self) -> float:
        """Publish at most one batch; return how long to wait before the next pass."""
        rows: list[OutboxEvent] = []
        try:
            if not self._acquire_lock():
                return self.timings.lock_interval
            self._delete_confirmed()
            self._ensure_publisher()
            self._probe_broker()
            self._beat_if_due()
            rows = selectors.outbox_batch(limit=self.timings.batch_size)
            if not rows:
                self._recovered()  # connected, and nothing waits: whatever failed before is over
                return self.timings.idle_interval
            self._publish(rows)
            self._recovered()
            return 0.0
        except DatabaseError as exc:
            self._note_failure(f"database: {exc}")
            if self._lock is not None:
                self._lock.lost()
            self.leader = False
            with contextlib.suppress(Exception):
                connection.close()
            return self._backoff.next_delay()
        except (KombuError, OSError, PublishFailed, topology.TopologyConflict, *self._broker_errors) as exc:
            self._note_failure(f"broker: {type(exc).__name__}: {exc}")
            self._disconnect()
            confirmed = exc.confirmed if isinstance(exc, PublishFailed) else 0
            with contextlib.suppress(DatabaseError):
                services.outbox_failure_record(row_ids=[row.id for row in rows[confirmed:]], error=self.last_error)
            self._beat_if_due()  # alive, and says the broker is unreachable
            return self._backoff.next_delay()

    def _publish(self, rows: list[OutboxEvent]) -> None:
        assert self._publisher is not None
        events = [event_from_row(row) for row in rows]
        if not self._publisher.confirms:
            # Nothing would confirm, and the transport keeps nothing across a kill: the event log is the only
            # safe place, so each row leaves the outbox in the transaction that stores it.
            outbox_events_store(events=events, row_ids=[row.id for row in rows])
            self.published += len(rows)
            self._publisher.publish(events)
            return
        try:
            self._publisher.publish(events)
        except PublishFailed as exc:
            # What the broker did confirm leaves the outbox; the rest is retried from its first row.
            self._confirmed_rows(rows[: exc.confirmed])
            raise
        self._confirmed_rows(rows)

    def _confirmed_rows(self, rows: list[OutboxEvent]) -> None:
        self.published += len(rows)
        self._to_delete = [row.id for row in rows]
        self._delete_confirmed()

    def _delete_confirmed(self) -> None:
        """Delete the rows the broker confirmed. Kept until it works: a database hiccup then costs a retried
        delete, not a second copy of every event in the batch."""
        if self._to_delete:
            services.outbox_published_delete(row_ids=self._to_delete)
            self._to_delete = []

    # -- the broker

    def _ensure_publisher(self) -> None:
        if self._publisher is not None:
            return
        conn = Connection(
            self.amqp_url, connect_timeout=self.timings.connect_timeout, heartbeat=self.timings.broker_heartbeat
        )
        try:
            # One attempt, no kombu retry pause: the relay's own back-off decides when to try again.
            conn.ensure_connection(max_retries=0)
            declared = topology.declare(conn)
            self._publisher = BatchPublisher(
                conn, declared.fanout, confirm_timeout=self.timings.confirm_timeout, on_unroutable=self._on_unroutable
            )
        except BaseException:
            with contextlib.suppress(Exception):
                conn.release()
            raise
        self._connection = conn
        self._heartbeat.soon()
        if self._failures:
            logger.info("relay reconnected to the broker after %d failed attempt(s)", self._failures)

    def _probe_broker(self) -> None:
        """Notice a dead connection while idle, and keep AMQP heartbeats flowing (a half-open one times out)."""
        assert self._publisher is not None
        if not self._publisher.confirms:
            return
        self._publisher.connection.heartbeat_check()
        with contextlib.suppress(socket.timeout):
            # Non-blocking: raises at once if the broker closed the socket; also takes any late confirm.
            self._publisher.connection.drain_events(timeout=0)

    def _disconnect(self) -> None:
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.release()
            self._connection = None

    def _on_unroutable(self, unroutable: Unroutable) -> None:
        self.unroutable += 1
        self.last_unroutable = unroutable
        self.last_unroutable_at = timezone.now()
        self._heartbeat.soon()
        logger.warning(
            "event %s (%s) was unroutable: no queue is bound to exchange %s (%s)",
            unroutable.event_id,
            unroutable.event_type,
            settings.EVENTS_EXCHANGE,
            unroutable.reply_text,
        )

    # -- the lock

    def _acquire_lock(self) -> bool:
        if self._lock is None:
            self._lock = relay_lock_for(f"{RELAY_NAME}:{settings.EVENTS_EXCHANGE}")
        held = self._lock.acquire()
        if held != self.leader:
            logger.info("relay %s the outbox", "now publishes" if held else "waits for another relay to release")
            if not held:
                self._disconnect()
        self.leader = held
        return held

    def _release_lock(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(Exception):
                self._lock.release()
        self.leader = False

    # -- failures and health

    def _note_failure(self, error: str) -> None:
        self._failures += 1
        self.last_error = error
        if self._failures == 1:
            self._heartbeat.soon()  # the health report learns of the outage at the next beat, not every retry
        log = logger.warning if self._failures == 1 else logger.debug
        log("relay attempt %d failed, the outbox is kept: %s", self._failures, error)

    def _recovered(self) -> None:
        self._failures = 0
        self._backoff.reset()

    def _beat_if_due(self, *, force: bool = False) -> None:
        self._heartbeat.beat(interval=self.timings.heartbeat_interval, details=self.health_details, force=force)

    def health_details(self) -> dict[str, Any]:
        return {
            "broker": "connected" if self._publisher is not None else "unreachable",
            "last_error": self.last_error if self._failures else "",
            "failures": self._failures,
            "published": self.published,
            "unroutable": self.unroutable,
            "last_unroutable_event": self.last_unroutable.event_id if self.last_unroutable else None,
            "last_unroutable_at": format_utc(self.last_unroutable_at) if self.last_unroutable_at else None,
        }


# --- Health (registered from MessagingConfig.ready; run by /healthz in any process) ------------------------

#: Events waiting longer than this mean the relay is down, stuck or cannot reach the broker.
OUTBOX_MAX_AGE_SECONDS = 60.0
#: An unroutable event keeps the relay's report degraded this long, so someone gets to see it.
UNROUTABLE_REPORT_SECONDS = 15 * 60


def relay_check() -> CheckResult:
    beat = heartbeat_check(RELAY_NAME)
    if not beat.ok:
        return beat
    heartbeat = heartbeat_get(RELAY_NAME)
    details = (heartbeat.details if heartbeat else None) or {}
    if details.get("broker") != "connected":
        return CheckResult(False, f"broker unreachable: {details.get('last_error') or 'not connected yet'}")
    last_unroutable_at = details.get("last_unroutable_at")
    if last_unroutable_at:
        age = (timezone.now() - parse_utc(last_unroutable_at)).total_seconds()
        if age < UNROUTABLE_REPORT_SECONDS:
            return CheckResult(
                False,
                f"{details.get('unroutable')} unroutable event(s) since start, the last "
                f"{details.get('last_unroutable_event')} {age:.0f} s ago: is a queue bound to the exchange?",
            )
    return CheckResult(True, f"{details.get('published', 0)} published since start; {beat.detail}")


def outbox_check() -> CheckResult:
    count, oldest = selectors.outbox_backlog()
    if not count:
        return CheckResult(True, "empty")
    age = (timezone.now() - oldest).total_seconds()
    detail = f"{count} event(s) waiting, the oldest for {age:.0f} s"
    return CheckResult(age <= OUTBOX_MAX_AGE_SECONDS, detail)


def broker_check() -> CheckResult:
    conn = Connection(settings.AMQP_URL, connect_timeout=2)
    try:
        conn.ensure_connection(max_retries=0)
    except (KombuError, OSError, *conn.connection_errors) as exc:
        return CheckResult(False, f"{type(exc).__name__}: {exc}")
    finally:
        conn.release()
    return CheckResult(True, conn.transport.driver_type)


def embedded_relay() -> OutboxRelay:
    return OutboxRelay()
