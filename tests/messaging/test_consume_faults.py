"""Faults: the events.db consumer process (``manage.py consume_events db``) against RabbitMQ and PostgreSQL.

It is killed with SIGKILL mid-stream, and its database is cut behind a TCP proxy: nothing is lost, nothing is
stored twice, nothing is acknowledged that was not stored.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from kombu import Connection, Producer

from tests.messaging.consume_support import BusNames, make_event
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.services, pytest.mark.slow]

PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scratch_database(postgres_url, tmp_path_factory):
    """A PostgreSQL database of its own, migrated, dropped afterwards."""
    name = f"hub_consume_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(postgres_url)._replace(path=f"/{name}"))
    log = tmp_path_factory.mktemp("migrate") / "migrate.log"
    with log.open("w") as output:
        migrated = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=PROJECT_DIR,
            env={**os.environ, "DATABASE_URL": url},
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=120,
        )
    assert migrated.returncode == 0, log.read_text()
    yield url
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def event_table(scratch_database):
    with psycopg.connect(scratch_database, autocommit=True) as connection:
        connection.execute("TRUNCATE messaging_event")
    return EventTable(scratch_database)


class EventTable:
    def __init__(self, url: str) -> None:
        self.url = url

    def count(self) -> int:
        with psycopg.connect(self.url, autocommit=True) as connection:
            return connection.execute("SELECT count(*) FROM messaging_event").fetchone()[0]

    def ids(self) -> set[uuid.UUID]:
        with psycopg.connect(self.url, autocommit=True) as connection:
            return {row[0] for row in connection.execute("SELECT id FROM messaging_event")}


class ConsumerProcess:
    """``manage.py consume_events db`` as production runs it, on the test's bus names and database."""

    def __init__(self, *, amqp_url: str, database_url: str, names: BusNames, log: Path) -> None:
        self.env = {**os.environ, "AMQP_URL": amqp_url, "DATABASE_URL": database_url, **names.settings()}
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("a") as output:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "consume_events", "db", "--flush-ms", "50", "--retry-max-seconds", "0.5"],
                cwd=PROJECT_DIR,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@pytest.fixture
def consumer_process(amqp_url, bus_names, scratch_database, tmp_path):
    started: list[ConsumerProcess] = []

    def make(database_url: str = scratch_database) -> ConsumerProcess:
        process = ConsumerProcess(
            amqp_url=amqp_url, database_url=database_url, names=bus_names, log=tmp_path / "consumer.log"
        )
        started.append(process)
        return process

    yield make
    for process in started:
        process.stop()


def test_sigkill_twice_while_20000_events_arrive_leaves_exactly_20000_events(rabbit, event_table, consumer_process):
    events = [make_event(i) for i in range(20_000)]
    consumer = consumer_process()
    consumer.start()

    def publish_steadily():
        # About 4 s of traffic, so both kills land while events are still arriving. A connection of its own:
        # py-amqp connections are not shared between threads.
        with Connection(rabbit.url) as connection:
            producer = Producer(connection.channel())
            for start in range(0, len(events), 500):
                for event in events[start : start + 500]:
                    producer.publish(
                        event.body(), exchange=rabbit.names.exchange, routing_key=event.type, **event.amqp_properties()
                    )
                time.sleep(0.1)

    publisher = threading.Thread(target=publish_steadily)
    publisher.start()
    try:
        counts_at_kill = []
        for threshold in (2_000, 8_000):
            assert wait_until(lambda threshold=threshold: event_table.count() >= threshold, timeout=60), (
                consumer.output()
            )
            consumer.kill()
            counts_at_kill.append(event_table.count())
            consumer.start()
    finally:
        publisher.join(60)

    assert wait_until(lambda: event_table.count() >= 20_000 and rabbit.ready(rabbit.names.db_queue) == 0, timeout=90)
    time.sleep(0.5)  # anything still unacknowledged would be stored twice now, were the store not idempotent
    assert event_table.count() == 20_000
    assert event_table.ids() == {event.id for event in events}
    assert all(count < 20_000 for count in counts_at_kill)
    assert rabbit.take_all(rabbit.names.dead_letter_queue) == []


def test_database_unreachable_nothing_is_acknowledged_that_was_not_stored(
    rabbit, event_table, consumer_process, scratch_database, tcp_proxy
):
    proxy = tcp_proxy(scratch_database)
    consumer = consumer_process(proxy.url_for(scratch_database))
    consumer.start()
    queue = rabbit.names.db_queue

    rabbit.publish_events(make_event(i) for i in range(100))
    assert wait_until(lambda: event_table.count() == 100, timeout=60), consumer.output()

    # The database goes away while events arrive: the consumer retries and resumes by itself once it is back.
    proxy.cut()
    rabbit.publish_events(make_event(i) for i in range(200))
    assert wait_until(lambda: "retrying in" in consumer.output(), timeout=20), consumer.output()
    assert wait_until(lambda: rabbit.ready(queue) == 0)  # delivered to the consumer, held unacknowledged
    assert event_table.count() == 100
    proxy.restore()
    assert wait_until(lambda: event_table.count() == 300 and rabbit.ready(queue) == 0, timeout=30), consumer.output()

    # Cut again and kill the consumer while it holds events it could not store: they are all still queued.
    proxy.cut()
    retries_before = consumer.output().count("retrying in")
    rabbit.publish_events(make_event(i) for i in range(150))
    assert wait_until(lambda: consumer.output().count("retrying in") >= retries_before + 2, timeout=20)
    assert rabbit.ready(queue) == 0
    consumer.kill()
    assert wait_until(lambda: rabbit.ready(queue) == 150)
    assert event_table.count() == 300

    proxy.restore()
    consumer.start()
    assert wait_until(lambda: event_table.count() == 450 and rabbit.ready(queue) == 0, timeout=60), consumer.output()
    assert rabbit.take_all(rabbit.names.dead_letter_queue) == []


def test_an_event_postgresql_refuses_is_dead_lettered_after_n_attempts_while_the_rest_is_stored(
    rabbit, event_table, consumer_process
):
    good = [make_event(i) for i in range(40)]
    # jsonb has no place for U+0000: PostgreSQL refuses this event every time (DataError), never transiently.
    refused = make_event(99, data={"note": "nul \u0000 inside"})
    rabbit.publish_events([*good[:20], refused, *good[20:]])
    consumer = consumer_process()
    consumer.start()

    assert wait_until(lambda: rabbit.ready(rabbit.names.dead_letter_queue) == 1, timeout=60), consumer.output()
    assert wait_until(lambda: event_table.count() == 40 and rabbit.ready(rabbit.names.db_queue) == 0)
    assert event_table.ids() == {event.id for event in good}
    [dead] = rabbit.take_all(rabbit.names.dead_letter_queue)
    assert dead.properties["message_id"] == str(refused.id)
    assert dead.headers["x-hub-dead-reason"].startswith("failed 5 times: DataError")
    assert f"dead-lettered message {refused.id}: failed 5 times" in consumer.output()
