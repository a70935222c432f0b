"""The events.db consumer against the real RabbitMQ (stores in the test database, in a worker thread)."""

from __future__ import annotations

import time

import pytest
from django.db import DataError, OperationalError
from kombu.message import Message

from messaging.consumers_amqp import EventsDbConsumer
from messaging.event_store import events_store
from messaging.models import Event as StoredEvent
from tests.messaging.consume_support import make_event, running
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def fast_consumer(url, *, store=events_store, **options) -> EventsDbConsumer:
    options = {
        "batch_size": 100,
        "flush_after": 0.05,
        "retry_initial": 0.05,
        "retry_max": 0.2,
        "idle_poll": 0.1,
        **options,
    }
    return EventsDbConsumer(amqp_url=url, store=store, timings=EventsDbConsumer.timings_with(**options))


def test_each_event_is_stored_once_however_often_it_is_delivered(rabbit):
    events = [make_event(i) for i in range(250)]
    rabbit.publish_events(events)
    rabbit.publish_events(events[:50])  # the relay may publish again after a lost confirm

    with running(fast_consumer(rabbit.url)):
        assert wait_until(lambda: rabbit.ready(rabbit.names.db_queue) == 0 and StoredEvent.objects.count() == 250)

    stored = StoredEvent.objects.get(id=events[7].id)
    assert (stored.type, stored.source, stored.data, stored.occurred_at) == (
        "test.happened",
        "tests",
        {"index": 7},
        events[7].occurred_at,
    )
    assert rabbit.take_all(rabbit.names.dead_letter_queue) == []


def test_a_batch_is_acknowledged_with_one_multiple_ack_after_its_commit(rabbit, monkeypatch):
    acks: list[tuple[int, bool, int]] = []
    real_ack = Message.ack

    def recording_ack(message, multiple=False):
        acks.append((message.delivery_tag, multiple, StoredEvent.objects.count()))
        return real_ack(message, multiple=multiple)

    monkeypatch.setattr(Message, "ack", recording_ack)
    rabbit.publish_events(make_event(i) for i in range(1000))

    with running(fast_consumer(rabbit.url, batch_size=250, flush_after=1.0)):
        # Only the worker reads the table meanwhile (SQLite's shared in-memory test database locks tables).
        assert wait_until(lambda: len(acks) >= 4)
    assert StoredEvent.objects.count() == 1000

    # 1,000 messages, batches of 250: four acknowledgements, each covering its whole batch,
    # each made once the batch was committed (the table already held it).
    assert [(tag, multiple) for tag, multiple, _ in acks] == [(250, True), (500, True), (750, True), (1000, True)]
    assert [stored_then for _, _, stored_then in acks] == [250, 500, 750, 1000]


def test_a_transient_database_error_acknowledges_nothing_and_is_retried(rabbit):
    calls = []

    def database_away(*, events):
        calls.append(len(events))
        raise OperationalError("could not connect to server: Connection refused")

    rabbit.publish_events(make_event(i) for i in range(30))
    with running(fast_consumer(rabbit.url, store=database_away)):
        assert wait_until(lambda: len(calls) >= 3)
    # The worker stopped while the store kept failing: every message is back in the queue, none was lost.
    assert wait_until(lambda: rabbit.ready(rabbit.names.db_queue) == 30)
    assert StoredEvent.objects.count() == 0

    outage = {"left": 3}

    def database_returns(*, events):
        if outage["left"]:
            outage["left"] -= 1
            raise OperationalError("server closed the connection unexpectedly")
        events_store(events=events)

    with running(fast_consumer(rabbit.url, store=database_returns)):
        assert wait_until(lambda: StoredEvent.objects.count() == 30 and rabbit.ready(rabbit.names.db_queue) == 0)
    assert outage["left"] == 0
    assert rabbit.take_all(rabbit.names.dead_letter_queue) == []


def test_an_event_that_keeps_failing_is_dead_lettered_after_n_attempts_and_the_rest_is_stored(rabbit, caplog):
    events = [make_event(i) for i in range(20)]
    bad = events[9]
    attempts = []

    def store_refusing_one(*, events):
        if any(event.id == bad.id for event in events):
            attempts.append(len(events))
            raise DataError("unsupported Unicode escape sequence")
        events_store(events=events)

    rabbit.publish_events(events)
    with running(fast_consumer(rabbit.url, store=store_refusing_one, max_attempts=3)):
        assert wait_until(lambda: StoredEvent.objects.count() == 19)
        assert wait_until(lambda: rabbit.ready(rabbit.names.dead_letter_queue) == 1)

    assert not StoredEvent.objects.filter(id=bad.id).exists()
    [dead] = rabbit.take_all(rabbit.names.dead_letter_queue)
    assert dead.properties["message_id"] == str(bad.id)
    reason = dead.headers["x-hub-dead-reason"]
    assert reason.startswith("failed 3 times: DataError: unsupported Unicode escape sequence")
    assert dead.headers["x-hub-dead-queue"] == rabbit.names.db_queue
    assert any("dead-lettered" in r.getMessage() and str(bad.id) in r.getMessage() for r in caplog.records)
    assert rabbit.ready(rabbit.names.db_queue) == 0


def test_a_message_redelivered_n_times_is_dead_lettered_without_another_try(rabbit):
    event = make_event(1)
    rabbit.publish_events([event])
    # Another consumer took it and gave it back (crashed, say) four times: the quorum queue counts that.
    for _ in range(4):
        assert wait_until(lambda: rabbit.ready(rabbit.names.db_queue) == 1)
        message = rabbit.channel.basic_get(rabbit.names.db_queue)
        rabbit.channel.basic_reject(message.delivery_tag, requeue=True)

    tried = []

    def store(*, events):
        tried.extend(events)
        events_store(events=events)

    with running(fast_consumer(rabbit.url, store=store, max_attempts=4)):
        assert wait_until(lambda: rabbit.ready(rabbit.names.dead_letter_queue) == 1)
    assert tried == []
    [dead] = rabbit.take_all(rabbit.names.dead_letter_queue)
    assert dead.headers["x-hub-dead-reason"] == "delivered 4 times without being processed"


def test_with_debug_on_the_consumer_does_not_keep_every_query_it_ran(rabbit, settings):
    from django.db import connection

    settings.DEBUG = True  # the embedded default: Django logs each query until something resets the log
    logged = []

    def store(*, events):
        events_store(events=events)
        logged.append(len(connection.queries))

    rabbit.publish_events(make_event(i) for i in range(1000))
    with running(fast_consumer(rabbit.url, store=store, batch_size=100)):
        assert wait_until(lambda: len(logged) >= 10)
    assert max(logged) < 12, logged  # per batch (plus the first heartbeat), not a growing total


@pytest.mark.slow
def test_a_long_database_outage_keeps_the_broker_connection_alive(rabbit, caplog):
    """While a batch waits on the database, the consumer keeps AMQP heartbeats going: no dropped connection,
    no redelivery to a competitor, and the batch is stored once the database is back."""
    outage_ends = time.monotonic() + 7  # several heartbeat intervals of 1 s
    tries = []

    def database_away_for_a_while(*, events):
        tries.append(len(events))
        if time.monotonic() < outage_ends:
            raise OperationalError("could not connect to server: Connection refused")
        events_store(events=events)
        stored.extend(events)

    stored = []
    rabbit.publish_events(make_event(i) for i in range(2500))  # more than the two batches prefetched
    consumer = fast_consumer(
        rabbit.url,
        store=database_away_for_a_while,
        batch_size=500,
        retry_initial=0.5,
        retry_max=0.5,
        broker_heartbeat=1,
    )
    with running(consumer):
        # Only the consumer touches the table meanwhile (SQLite's shared in-memory test database locks tables).
        assert wait_until(lambda: len(stored) == 2500, timeout=30)
    assert StoredEvent.objects.count() == 2500
    assert len(tries) >= 10
    assert not [r for r in caplog.records if "broker connection lost" in r.getMessage()]
