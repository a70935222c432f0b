"""Helpers for the publishing-half tests: per-test bus names on the real RabbitMQ, and reading what arrived."""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass

from kombu import Connection, Consumer, Exchange, Queue

from tests.support.waiting import retry_while_locked

NAME_SETTINGS = {
    "EVENTS_EXCHANGE": "ce",
    "EVENTS_TOPIC_EXCHANGE": "topic",
    "EVENTS_DB_QUEUE": "db",
    "EVENTS_NOTIFY_QUEUE": "notify",
    "EVENTS_DEAD_LETTER_EXCHANGE": "dlx",
    "EVENTS_DEAD_LETTER_QUEUE": "dead",
}


@dataclass
class Bus:
    url: str
    names: dict[str, str]

    @property
    def exchange(self) -> str:
        return self.names["EVENTS_EXCHANGE"]

    @property
    def db_queue(self) -> str:
        return self.names["EVENTS_DB_QUEUE"]

    @property
    def notify_queue(self) -> str:
        return self.names["EVENTS_NOTIFY_QUEUE"]

    def collect(self, queue: str, *, count: int, timeout: float = 10.0, settle: float = 0.0) -> list:
        """The first ``count`` messages in ``queue`` (acknowledged), then whatever arrives within ``settle`` s."""
        return collect(self.url, queue, count=count, timeout=timeout, settle=settle)


def collect(url: str, queue_name: str, *, count: int, timeout: float = 10.0, settle: float = 0.0) -> list:
    received: list = []
    with Connection(url) as conn:
        queue = Queue(queue_name, no_declare=True)

        def on_message(body, message):
            received.append(message)
            message.ack()

        with Consumer(conn, queues=[queue], callbacks=[on_message], accept=["json"], prefetch_count=1000):
            deadline = time.monotonic() + timeout
            while len(received) < count and time.monotonic() < deadline:
                with contextlib.suppress(socket.timeout):
                    conn.drain_events(timeout=min(0.5, max(0.01, deadline - time.monotonic())))
            settle_until = time.monotonic() + settle
            while time.monotonic() < settle_until:
                with contextlib.suppress(socket.timeout):
                    conn.drain_events(timeout=max(0.01, settle_until - time.monotonic()))
    return received


def delete_names(url: str, *, queues=(), exchanges=()) -> None:
    with Connection(url) as conn:
        for queue in queues:
            with contextlib.suppress(Exception), conn.channel() as channel:
                Queue(queue, channel=channel).delete()
        for exchange in exchanges:
            with contextlib.suppress(Exception), conn.channel() as channel:
                Exchange(exchange, channel=channel).delete()


def publish_beside_a_running_relay(*args, **kwargs):
    """``messaging.publish`` from the test thread while a relay thread polls the outbox.

    The SQLite test database is in-memory with a shared cache, where a second connection's write fails at once
    with "table is locked" instead of waiting (the hub's WAL file and PostgreSQL wait); so retry briefly there.
    """
    import messaging

    return retry_while_locked(lambda: messaging.publish(*args, **kwargs))
