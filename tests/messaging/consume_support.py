"""Helpers for the consumer tests: per-test bus names, a real-RabbitMQ test bus, running a worker."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from kombu import Connection, Producer

from hub.workers import Worker
from messaging import topology
from messaging.envelope import Event


@dataclass(frozen=True)
class BusNames:
    exchange: str
    topic: str
    db_queue: str
    notify_queue: str
    dead_letter_exchange: str
    dead_letter_queue: str

    @classmethod
    def unique(cls) -> BusNames:
        suffix = uuid.uuid4().hex[:10]
        return cls(
            exchange=f"test-ce-{suffix}",
            topic=f"test-topic-{suffix}",
            db_queue=f"test-db-{suffix}",
            notify_queue=f"test-notify-{suffix}",
            dead_letter_exchange=f"test-dlx-{suffix}",
            dead_letter_queue=f"test-dead-{suffix}",
        )

    def settings(self) -> dict[str, str]:
        return {
            "EVENTS_EXCHANGE": self.exchange,
            "EVENTS_TOPIC_EXCHANGE": self.topic,
            "EVENTS_DB_QUEUE": self.db_queue,
            "EVENTS_NOTIFY_QUEUE": self.notify_queue,
            "EVENTS_DEAD_LETTER_EXCHANGE": self.dead_letter_exchange,
            "EVENTS_DEAD_LETTER_QUEUE": self.dead_letter_queue,
        }


def make_event(index: int = 0, *, type: str = "test.happened", **fields) -> Event:
    values = {
        "id": uuid.uuid4(),
        "type": type,
        "occurred_at": datetime(2026, 11, 28, 7, 30, tzinfo=UTC),
        "source": "tests",
        "data": {"index": index},
    }
    values.update(fields)
    return Event(**values)


class RabbitBus:
    """The test's own kombu connection to the real broker, on the test's unique names."""

    def __init__(self, url: str, names: BusNames) -> None:
        self.url = url
        self.names = names
        self.connection = Connection(url)
        self.topology = topology.declare(self.connection)
        self.channel = self.connection.channel()
        self.producer = Producer(self.channel)

    def publish_events(self, events: Iterable[Event]) -> None:
        for event in events:
            self.producer.publish(
                event.body(), exchange=self.names.exchange, routing_key=event.type, **event.amqp_properties()
            )

    def publish_raw(self, body, *, routing_key: str = "raw.message", **properties) -> None:
        self.producer.publish(body, exchange=self.names.exchange, routing_key=routing_key, **properties)

    def ready(self, queue: str) -> int:
        """Messages ready in ``queue`` (delivered-but-unacknowledged ones are not counted)."""
        return self.channel.queue_declare(queue=queue, passive=True).message_count

    def take_all(self, queue: str) -> list:
        """Every message now in ``queue``, acknowledged (so removed)."""
        taken = []
        while (message := self.channel.basic_get(queue, no_ack=True)) is not None:
            taken.append(message)
        return taken

    def close(self) -> None:
        with contextlib.suppress(Exception):
            channel = self.connection.channel()
            for queue in self.topology.queues():
                channel.queue_delete(queue.name)
            for exchange in (self.topology.fanout, self.topology.topic, self.topology.dead_letter):
                channel.exchange_delete(exchange.name)
        self.connection.release()


@contextlib.contextmanager
def running(worker: Worker) -> Iterator[Worker]:
    worker.start()
    try:
        yield worker
    finally:
        worker.stop(timeout=10)
        assert not worker.alive, f"{worker.name} did not stop"
