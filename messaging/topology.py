"""The event bus's exchanges and queues, declared in one place.

``ce`` (fanout) → ``events.db`` and ``events.notify``; ``ce`` is also bound to
the topic exchange ``events.topic`` so another consumer can bind a queue to a
subset (``heating.#``, ``downloads.served``) by the event type used as routing
key. What cannot be processed goes to ``events.dlx`` → ``events.dead``.
Quorum queues where the broker supports them, classic otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from amqp.exceptions import PreconditionFailed
from django.conf import settings
from kombu import Connection, Exchange, Queue


@dataclass(frozen=True)
class Topology:
    fanout: Exchange
    topic: Exchange
    dead_letter: Exchange
    db_queue: Queue
    notify_queue: Queue
    dead_letter_queue: Queue

    def queues(self) -> tuple[Queue, ...]:
        return (self.db_queue, self.notify_queue, self.dead_letter_queue)


def supports_quorum_queues(connection: Connection) -> bool:
    """RabbitMQ 3.8 and later; the memory transport (and anything that is not RabbitMQ) gets classic queues."""
    if connection.transport.driver_type != "amqp":
        return False
    properties = getattr(connection.connection, "server_properties", {}) or {}
    product = properties.get("product", b"")
    version = properties.get("version", b"")
    product = product.decode() if isinstance(product, bytes) else str(product)
    version = version.decode() if isinstance(version, bytes) else str(version)
    if product != "RabbitMQ":
        return False
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (3, 8)


def build_topology(*, quorum: bool) -> Topology:
    fanout = Exchange(settings.EVENTS_EXCHANGE, type="fanout", durable=True)
    topic = Exchange(settings.EVENTS_TOPIC_EXCHANGE, type="topic", durable=True)
    dead_letter = Exchange(settings.EVENTS_DEAD_LETTER_EXCHANGE, type="fanout", durable=True)
    queue_arguments = {"x-queue-type": "quorum"} if quorum else {}
    dead_lettered = {**queue_arguments, "x-dead-letter-exchange": settings.EVENTS_DEAD_LETTER_EXCHANGE}
    return Topology(
        fanout=fanout,
        topic=topic,
        dead_letter=dead_letter,
        db_queue=Queue(settings.EVENTS_DB_QUEUE, fanout, durable=True, queue_arguments=dead_lettered),
        notify_queue=Queue(settings.EVENTS_NOTIFY_QUEUE, fanout, durable=True, queue_arguments=dead_lettered),
        dead_letter_queue=Queue(
            settings.EVENTS_DEAD_LETTER_QUEUE, dead_letter, durable=True, queue_arguments=queue_arguments
        ),
    )


class TopologyConflict(RuntimeError):
    """An exchange or queue already exists on the broker with other settings than the hub declares."""


def declare(connection: Connection) -> Topology:
    """Declare everything on ``connection`` (idempotent) and return what was declared."""
    connection.ensure_connection(max_retries=3)
    topology = build_topology(quorum=supports_quorum_queues(connection))
    channel = connection.default_channel
    entities = [*(topology.fanout, topology.topic, topology.dead_letter), *topology.queues()]
    for entity in entities:
        try:
            entity(channel).declare()
        except PreconditionFailed as exc:
            raise TopologyConflict(
                f"{type(entity).__name__.lower()} {entity.name!r} already exists on the broker with other "
                f"settings ({exc.reply_text}); it was made by hand or by an older setup: delete it, or choose "
                "another name with the EVENTS_* variables"
            ) from exc
    if connection.transport.driver_type == "amqp":
        # Exchange-to-exchange binding is a RabbitMQ extension; the memory transport has none.
        topology.topic(channel).bind_to(topology.fanout, routing_key="")
    return topology
