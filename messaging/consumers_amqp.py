"""The bus's two consumers: ``events.db`` (the event log) and ``events.notify`` (the hand-off to live push).

Both run the same loop (:class:`BatchConsumer`): prefetch 2N messages, collect up to N or for T seconds, process
the batch on a thread of its own while the next one arrives, and only then acknowledge it with ONE multiple-ack
from the connection's thread: batching acks and inserts is where the throughput comes from (docs/benchmarks.md).
kombu's ``on_message`` hook hands over raw messages, so kombu deserialises nothing: a pickled body is refused
by :mod:`messaging.envelope`, never loaded.

What a consumer can never process goes to the dead-letter exchange with the reason in
:data:`~messaging.envelope.REASON_HEADER` (published with a broker confirm before the original is acked):
unreadable messages, and messages that failed ``max_attempts`` times (counted in process and from the quorum
queue's ``x-delivery-count``). A transient error (database or channel layer away) is retried with back-off
and acknowledges nothing, so a crash at any point only causes a redelivery, which the store ignores by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, replace
from typing import ClassVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connections, reset_queries
from kombu import Connection, Consumer, Producer, Queue
from kombu.message import Message

from hub.services import heartbeat_record
from hub.workers import DEFAULT_JITTER, Backoff, Jitter, Worker
from messaging import topology
from messaging.envelope import REASON_HEADER, Event, PoisonMessage, event_from_message
from messaging.event_store import events_store
from messaging.notify import Notifier, build_notifier

logger = logging.getLogger(__name__)

#: Which queue a dead letter came from (beside the reason) so ops can tell the two consumers' apart.
DEAD_QUEUE_HEADER = "x-hub-dead-queue"
#: RabbitMQ quorum queues count earlier deliveries of a message in this header.
DELIVERY_COUNT_HEADER = "x-delivery-count"


class _StopRequested(Exception):
    """Raised out of a retry wait when the worker is asked to stop; nothing of the batch is acknowledged."""


class Verdict(enum.Enum):
    ACK = "ack"
    REQUEUE = "requeue"
    DEAD = "dead"


@dataclass
class Delivery:
    message: Message
    event: Event | None = None
    verdict: Verdict = Verdict.ACK
    reason: str = ""

    def dead(self, reason: str) -> None:
        self.verdict, self.reason = Verdict.DEAD, reason

    @property
    def delivery_count(self) -> int:
        try:
            return int((self.message.headers or {}).get(DELIVERY_COUNT_HEADER, 0))
        except (TypeError, ValueError):
            return 0


def delivery_read(message: Message) -> tuple[Event | None, str]:
    """The event in ``message``, or None and the reason it can never be read."""
    properties = message.properties or {}
    try:
        event = event_from_message(
            message.body,
            content_type=message.content_type or None,
            routing_key=(message.delivery_info or {}).get("routing_key") or "",
            message_id=properties.get("message_id"),
            timestamp=properties.get("timestamp"),
            headers=message.headers,
            app_id=properties.get("app_id"),
        )
    except PoisonMessage as exc:
        return None, str(exc)
    return event, ""


@dataclass
class _InFlight:
    future: Future
    deliveries: list[Delivery]


class DeadLetterPublisher:
    """Publishes to the dead-letter exchange on its own confirmed connection (so a dead letter is never lost
    between the publish and the original's ack, and confirms never interleave with the consumer's deliveries)."""

    def __init__(self, *, amqp_url: str, exchange: str, confirm_timeout: float = 10.0) -> None:
        self.amqp_url = amqp_url
        self.exchange = exchange
        self.confirm_timeout = confirm_timeout
        self._connection: Connection | None = None
        self._producer: Producer | None = None

    def publish(self, message: Message, *, reason: str, queue: str) -> None:
        if self._producer is None:
            self._connection = Connection(self.amqp_url, transport_options={"confirm_publish": True})
            self._producer = Producer(self._connection.channel())
        properties = message.properties or {}
        headers = {**(message.headers or {}), REASON_HEADER: reason[:1000], DEAD_QUEUE_HEADER: queue}
        optional = {key: properties[key] for key in ("message_id", "type", "timestamp", "app_id") if key in properties}
        try:
            self._producer.publish(
                message.body,
                exchange=self.exchange,
                routing_key=(message.delivery_info or {}).get("routing_key") or "",
                content_type=message.content_type or "application/octet-stream",
                content_encoding=message.content_encoding or "binary",
                headers=headers,
                delivery_mode=2,
                confirm_timeout=self.confirm_timeout,
                **optional,
            )
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception:  # already broken; nothing to release
                logger.debug("closing the dead-letter connection failed", exc_info=True)
        self._connection = self._producer = None


@dataclass(frozen=True)
class ConsumerTimings:
    """A consumer's sizes and timers (tests shrink the timers to milliseconds)."""

    #: The most messages processed and acknowledged at once (the prefetch is twice this).
    batch_size: int = 500
    #: The longest a batch waits to fill before it is processed.
    flush_after: float = 0.2
    #: Failures before a message goes to the dead-letter queue.
    max_attempts: int = 5
    #: How often the consumer records its heartbeat for /healthz.
    heartbeat_interval: float = 15.0
    #: Back-off for a lost broker connection and for transient errors: first wait, longest, jitter (``hub.workers``).
    retry_initial: float = 0.5
    retry_max: float = 10.0
    retry_jitter: Jitter = DEFAULT_JITTER
    #: How long one wait for deliveries lasts while nothing arrives.
    idle_poll: float = 1.0
    #: The AMQP heartbeat asked of the broker.
    broker_heartbeat: float = 30.0


class BatchConsumer(Worker):
    """Consume one queue of the bus in acknowledged batches; subclasses say what processing a batch means."""

    #: Which queue of :class:`messaging.topology.Topology` this consumer reads.
    queue_role: str = ""
    #: Errors that mean "try again later" (a dependency is away): retried with back-off, nothing acknowledged.
    transient_errors: tuple[type[BaseException], ...] = ()
    #: Whether an unreadable message goes to the dead-letter queue (else it is logged and dropped).
    dead_letter_unreadable: bool = True
    #: This kind of consumer's timings when none are given.
    default_timings: ClassVar[ConsumerTimings] = ConsumerTimings()

    def __init__(self, *, amqp_url: str | None = None, timings: ConsumerTimings | None = None) -> None:
        super().__init__()
        self.amqp_url = amqp_url or settings.AMQP_URL
        self.timings = timings or self.default_timings
        self.dead_letters = DeadLetterPublisher(amqp_url=self.amqp_url, exchange=settings.EVENTS_DEAD_LETTER_EXCHANGE)
        self.stats = {"processed": 0, "dead_lettered": 0, "requeued": 0, "batches": 0}
        self._pending: list[Message] = []
        self._failures: OrderedDict[str, int] = OrderedDict()
        self._multiple_ack = True
        self._queue_name = ""
        self._next_heartbeat = 0.0
        self._processing: ThreadPoolExecutor | None = None

    @classmethod
    def timings_with(cls, **changes) -> ConsumerTimings:
        """This kind of consumer's default timings with ``changes`` (field names of :class:`ConsumerTimings`)."""
        return replace(cls.default_timings, **changes)

    # --- what a subclass provides -------------------------------------------------------------------------
    def process(self, events: Sequence[Event]) -> None:
        raise NotImplementedError

    def setup(self) -> None:
        """Called once in the worker's thread before consuming."""

    def queue_declare(self, connection: Connection, declared: topology.Topology) -> Queue:
        """The queue to consume, once the bus's topology is declared (a consumer with a queue of its own declares
        it here, e.g. the MQTT bridge's)."""
        return getattr(declared, self.queue_role)

    def teardown(self) -> None:
        """Called once in the worker's thread after consuming."""

    # --- the loop -----------------------------------------------------------------------------------------
    def serve(self) -> None:
        self.setup()
        # Batches are processed on a thread of their own while this one drains the next batch from the broker:
        # the database works on one batch while the next arrives (py-amqp is used from this thread only).
        self._processing = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.name}-process")
        try:
            backoff = Backoff.from_timings(self.timings)
            while not self.stopping.is_set():
                connection = self._connect()
                errors = (*connection.connection_errors, *connection.channel_errors, OSError)
                try:
                    self._consume(connection)
                    backoff.reset()
                except _StopRequested:
                    return
                except errors as exc:
                    delay = backoff.next_delay()
                    logger.warning(
                        "%s: broker connection lost (%s: %s); reconnecting in %.1f s",
                        self.name,
                        type(exc).__name__,
                        exc,
                        delay,
                    )
                    self.dead_letters.close()
                    self.stopping.wait(delay)
                finally:
                    self._pending = []
                    try:
                        connection.release()
                    except Exception:
                        logger.debug("%s: releasing a broken connection failed", self.name, exc_info=True)
        finally:
            self._processing.submit(connections.close_all).result()
            self._processing.shutdown()
            self.dead_letters.close()
            self.teardown()

    def _connect(self) -> Connection:
        if self.amqp_url.startswith("memory://"):
            # The in-process broker of the embedded default polls; poll often so events are not held back.
            return Connection(self.amqp_url, transport_options={"polling_interval": 0.01})
        return Connection(self.amqp_url, heartbeat=self.timings.broker_heartbeat)

    def _consume(self, connection: Connection) -> None:
        queue = self.queue_declare(connection, topology.declare(connection))
        self._queue_name = queue.name
        # The memory transport's ack ignores ``multiple``; there each message is acked on its own (cheap in process).
        self._multiple_ack = connection.transport.driver_type == "amqp"
        channel = connection.channel()
        # Per-consumer prefetch (global QoS is not supported by quorum queues): one batch being processed, the
        # next one arriving meanwhile.
        channel.basic_qos(0, 2 * self.timings.batch_size, False)
        consumer = Consumer(channel, queues=[queue], on_message=self._receive, no_ack=False, auto_declare=False)
        with consumer:
            logger.info(
                "%s consuming %s (batch %d, flush %.0f ms)",
                self.name,
                queue.name,
                self.timings.batch_size,
                self.timings.flush_after * 1000,
            )
            self._drain(connection)

    def _receive(self, message: Message) -> None:
        self._pending.append(message)

    def _drain(self, connection: Connection) -> None:
        deadline: float | None = None
        in_flight: _InFlight | None = None
        try:
            while not self.stopping.is_set():
                now = time.monotonic()
                if now >= self._next_heartbeat:
                    self._beat()
                    self._next_heartbeat = now + self.timings.heartbeat_interval
                if in_flight is not None and in_flight.future.done():
                    self._finish(in_flight, connection)
                    in_flight = None
                idle_poll = self.timings.idle_poll
                timeout = idle_poll if deadline is None else max(0.001, min(idle_poll, deadline - now))
                if in_flight is not None:
                    timeout = min(timeout, 0.005)  # come back soon to acknowledge the batch once it is processed
                try:
                    connection.drain_events(timeout=timeout)
                except TimeoutError:  # socket.timeout: nothing arrived within the timeout
                    connection.heartbeat_check()
                if self._pending and deadline is None:
                    deadline = time.monotonic() + self.timings.flush_after
                if self._pending and (len(self._pending) >= self.timings.batch_size or time.monotonic() >= deadline):
                    if in_flight is not None:
                        self._finish(in_flight, connection)  # batches are acknowledged in delivery order
                        in_flight = None
                    batch, self._pending = self._pending, []
                    deadline = None
                    in_flight = self._start(batch)
        except BaseException:
            if in_flight is not None:
                # Let the processing thread finish before the connection goes: its batch is simply redelivered.
                futures_wait([in_flight.future])
            raise
        if in_flight is not None:
            self._finish(in_flight, connection)

    # --- one batch ----------------------------------------------------------------------------------------
    def _start(self, messages: list[Message]) -> _InFlight:
        deliveries = [Delivery(message) for message in messages]
        return _InFlight(self._processing.submit(self._process_on_thread, deliveries), deliveries)

    def _process_on_thread(self, deliveries: list[Delivery]) -> None:
        """Read and process one batch (on the processing thread, so the draining thread only drains)."""
        try:
            for delivery in deliveries:
                delivery.event, reason = delivery_read(delivery.message)
                if delivery.event is None:
                    self._unreadable(delivery, reason)
                elif delivery.delivery_count >= self.timings.max_attempts:
                    delivery.dead(f"delivered {delivery.delivery_count} times without being processed")
            self._process_with_fallback([d for d in deliveries if d.verdict is Verdict.ACK and d.event is not None])
        finally:
            # With DEBUG on (the embedded default) Django keeps every query's SQL; a request resets that, a
            # worker must.
            reset_queries()

    def _finish(self, in_flight: _InFlight, connection: Connection) -> None:
        while not futures_wait([in_flight.future], timeout=0.5).done:
            # Still processing (e.g. retrying while the database is away): keep reading (heartbeats, and deliveries
            # up to the prefetch into the next batch) and keep sending heartbeats, so neither side drops the
            # connection and redelivers the batch to a competitor meanwhile.
            with contextlib.suppress(TimeoutError):
                connection.drain_events(timeout=0.01)  # short: the batch may finish meanwhile
            connection.heartbeat_check()
        in_flight.future.result()  # re-raises _StopRequested: then nothing of the batch is acknowledged
        self._settle(in_flight.deliveries)
        reset_queries()

    def _unreadable(self, delivery: Delivery, reason: str) -> None:
        if self.dead_letter_unreadable:
            delivery.dead(reason)
        else:
            logger.info("%s: dropping a message it cannot read (%s); events.db dead-letters it", self.name, reason)

    def _process_with_fallback(self, deliveries: list[Delivery]) -> None:
        if not deliveries:
            return
        try:
            self._retrying(lambda: self.process([d.event for d in deliveries]))
            return
        except _StopRequested:
            raise
        except Exception as exc:
            if len(deliveries) == 1:
                self._failed(deliveries[0], exc)
                return
            logger.warning(
                "%s: a batch of %d failed (%s: %s); processing one by one",
                self.name,
                len(deliveries),
                type(exc).__name__,
                exc,
            )
        for delivery in deliveries:
            try:
                self._retrying(lambda delivery=delivery: self.process([delivery.event]))
            except _StopRequested:
                raise
            except Exception as exc:
                self._failed(delivery, exc)

    def _retrying(self, action: Callable[[], None]) -> None:
        backoff = Backoff.from_timings(self.timings)
        while True:
            try:
                action()
                return
            except self.transient_errors as exc:
                delay = backoff.next_delay()
                logger.warning(
                    "%s: %s: %s; retrying in %.1f s, nothing acknowledged", self.name, type(exc).__name__, exc, delay
                )
                self.recover_from_transient_error()
                if self.stopping.wait(delay):
                    raise _StopRequested from exc

    def recover_from_transient_error(self) -> None:
        """Drop whatever connection the error left broken before the next try."""

    def _failed(self, delivery: Delivery, exc: Exception) -> None:
        key = str(delivery.event.id)
        local = self._failures.pop(key, 0) + 1
        attempts = max(local, delivery.delivery_count + 1)
        if attempts >= self.timings.max_attempts:
            delivery.dead(f"failed {attempts} times: {type(exc).__name__}: {exc}")
            return
        self._failures[key] = local
        while len(self._failures) > 10_000:
            self._failures.popitem(last=False)
        delivery.verdict = Verdict.REQUEUE
        logger.warning(
            "%s: event %s failed (attempt %d of %d, %s: %s); requeued",
            self.name,
            key,
            attempts,
            self.timings.max_attempts,
            type(exc).__name__,
            exc,
        )

    def _settle(self, deliveries: list[Delivery]) -> None:
        """Dead letters first (confirmed), then requeues, then one multiple-ack for everything else."""
        for delivery in deliveries:
            if delivery.verdict is Verdict.DEAD:
                self.dead_letters.publish(delivery.message, reason=delivery.reason, queue=self._queue_name)
                logger.warning(
                    "%s: dead-lettered message %s: %s",
                    self.name,
                    (delivery.message.properties or {}).get("message_id"),
                    delivery.reason,
                )
                self.stats["dead_lettered"] += 1
        for delivery in deliveries:
            if delivery.verdict is Verdict.REQUEUE:
                delivery.message.requeue()
                self.stats["requeued"] += 1
        done = [d.message for d in deliveries if d.verdict is not Verdict.REQUEUE]
        if done:
            if self._multiple_ack:
                # Delivery tags rise in delivery order and every earlier batch is settled, so acking the last
                # one with multiple=True acknowledges exactly this batch's remaining messages.
                done[-1].ack(multiple=True)
            else:
                for message in done:
                    message.ack()
        self.stats["processed"] += sum(1 for d in deliveries if d.verdict is Verdict.ACK and d.event is not None)
        self.stats["batches"] += 1

    def _beat(self) -> None:
        try:
            heartbeat_record(name=self.name, interval_seconds=self.timings.heartbeat_interval, details=dict(self.stats))
        except Exception as exc:  # a missed heartbeat shows in /healthz; it must not stop the consumer
            logger.info("%s: heartbeat not recorded: %s", self.name, exc)
            close_old_connections()


class EventsDbConsumer(BatchConsumer):
    """``events.db``: store each event once in the event log, acknowledging each batch after its commit."""

    name = "events.db"
    queue_role = "db_queue"
    transient_errors = (OperationalError, InterfaceError)

    def __init__(
        self,
        *,
        store: Callable[..., None] = events_store,
        amqp_url: str | None = None,
        timings: ConsumerTimings | None = None,
    ) -> None:
        super().__init__(amqp_url=amqp_url, timings=timings)
        self.store = store

    def process(self, events: Sequence[Event]) -> None:
        self.store(events=events)

    def recover_from_transient_error(self) -> None:
        close_old_connections()


def _channel_layer_errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (OSError, TimeoutError)
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # the in-memory layer has no such failures
        return errors
    return (*errors, RedisConnectionError, RedisTimeoutError)


class EventsNotifyConsumer(BatchConsumer):
    """``events.notify``: hand each event to the notifier (live push), acknowledging after the hand-off.

    The hand-offs run on one event loop owned by this worker (never ``async_to_sync`` per message).
    Unreadable messages are dropped with a log line here: ``events.db`` dead-letters the same message.
    """

    name = "events.notify"
    queue_role = "notify_queue"
    transient_errors = _channel_layer_errors()
    dead_letter_unreadable = False
    # Live push: latency matters more than batch size.
    default_timings = ConsumerTimings(flush_after=0.02, batch_size=100)

    def __init__(
        self,
        *,
        notifier: Notifier | None = None,
        handoff_timeout: float = 10.0,
        amqp_url: str | None = None,
        timings: ConsumerTimings | None = None,
    ) -> None:
        super().__init__(amqp_url=amqp_url, timings=timings)
        self.notifier = notifier
        self.handoff_timeout = handoff_timeout
        self._loop: asyncio.AbstractEventLoop | None = None

    def setup(self) -> None:
        self._loop = asyncio.new_event_loop()
        if self.notifier is None:
            self.notifier = build_notifier()

    def teardown(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def process(self, events: Sequence[Event]) -> None:
        self._loop.run_until_complete(asyncio.wait_for(self.notifier.notify(events), self.handoff_timeout))


CONSUMERS: dict[str, type[BatchConsumer]] = {"db": EventsDbConsumer, "notify": EventsNotifyConsumer}

__all__ = [
    "CONSUMERS",
    "BatchConsumer",
    "ConsumerTimings",
    "DeadLetterPublisher",
    "EventsDbConsumer",
    "EventsNotifyConsumer",
]
