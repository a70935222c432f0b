"""The outbox relay against the real RabbitMQ (per-test names): wire format, order, confirms, returns, health."""

import json
import logging
import time
from datetime import timedelta

import pytest
from django.db import OperationalError, transaction
from django.utils import timezone
from kombu import Connection, Queue

import messaging
from hub.models import Heartbeat
from messaging import relay as relay_module
from messaging.envelope import RETAIN_HEADER, TOPICS_HEADER, event_from_message
from messaging.models import OutboxEvent
from messaging.relay import BatchPublisher, FileLock, OutboxRelay, ProcessLock, PublishFailed, RelayTimings
from tests.messaging.relay_support import delete_names
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.services, pytest.mark.postgres, pytest.mark.django_db]


def fast_relay(**overrides) -> OutboxRelay:
    timers = {"retry_initial": 0.01, "retry_max": 0.05, "idle_interval": 0.02, "lock_interval": 0.02}
    return OutboxRelay(
        timings=RelayTimings(**{**timers, "heartbeat_interval": 30.0, "confirm_timeout": 5.0, **overrides})
    )


def test_the_wire_carries_the_envelope_and_its_amqp_properties(bus):
    event_id = messaging.publish(
        "heating.reading", {"celsius": 21.5}, source="heating", topics=["/home/kitchen/measure/1"], retain=True
    )
    assert fast_relay().drain(timeout=10) == 1

    [message] = bus.collect(bus.db_queue, count=1)
    props, info = message.properties, message.delivery_info
    assert props["message_id"] == str(event_id)
    assert props["type"] == "heating.reading"
    assert props["content_type"] == "application/json"
    assert props["delivery_mode"] == 2  # persistent
    assert message.headers[TOPICS_HEADER] == ["/home/kitchen/measure/1"]
    assert message.headers[RETAIN_HEADER] is True
    assert (info["exchange"], info["routing_key"]) == (bus.exchange, "heating.reading")
    body = json.loads(message.body)
    assert set(body) == {"id", "type", "occurred_at", "source", "data"}
    assert body["id"] == str(event_id)
    assert body["data"] == {"celsius": 21.5}
    assert body["occurred_at"].endswith("Z")

    event = event_from_message(
        message.body if isinstance(message.body, bytes) else message.body.encode(),
        content_type=message.content_type,
        routing_key=info["routing_key"],
        message_id=props["message_id"],
        headers=message.headers,
    )
    assert (event.id, event.type, event.source, event.topics, event.retain) == (
        event_id,
        "heating.reading",
        "heating",
        ("/home/kitchen/measure/1",),
        True,
    )
    assert props["timestamp"] == int(event.occurred_at.timestamp())
    assert not OutboxEvent.objects.exists()


def test_events_leave_in_order_once_each_to_both_queues_in_batches(bus):
    ids = [messaging.publish("test.seq", {"n": n}, source="test") for n in range(1234)]
    relay = fast_relay(batch_size=100)
    assert relay.drain(timeout=30) == 1234
    assert not OutboxEvent.objects.exists()
    for queue in (bus.db_queue, bus.notify_queue):
        arrived = bus.collect(queue, count=1234, settle=0.2)
        assert [m.properties["message_id"] for m in arrived] == [str(i) for i in ids]


def test_a_rolled_back_transaction_reaches_no_queue(bus):
    def failing_change():
        with transaction.atomic():
            messaging.publish("test.rolled_back", {}, source="test")
            raise RuntimeError("undo")

    with pytest.raises(RuntimeError):
        failing_change()
    kept = messaging.publish("test.kept", {}, source="test")
    fast_relay().drain(timeout=10)
    arrived = bus.collect(bus.db_queue, count=2, timeout=1)
    assert [m.properties["message_id"] for m in arrived] == [str(kept)]


def test_a_nacked_event_stays_in_the_outbox_and_is_retried_in_order(bus):
    """A full queue with overflow=reject-publish makes RabbitMQ nack: the relay keeps those rows until it can."""
    with Connection(bus.url) as conn:
        relay_module.topology.declare(conn)
        full = Queue(
            f"{bus.exchange}.full",
            relay_module.topology.build_topology(quorum=False).fanout,
            queue_arguments={"x-max-length": 3, "x-overflow": "reject-publish"},
        )
        full(conn.channel()).declare()
    ids = [messaging.publish("test.nack", {"n": n}, source="test") for n in range(8)]
    relay = fast_relay(batch_size=8)
    try:
        relay.step()
        kept = list(OutboxEvent.objects.order_by("id"))
        assert [row.event_id for row in kept] == ids[3:]  # the acked prefix left, the rest waits
        assert all(row.attempts == 1 and "nack" in row.last_error for row in kept)
    finally:
        delete_names(bus.url, queues=[f"{bus.exchange}.full"])
    relay.drain(timeout=10)
    assert not OutboxEvent.objects.exists()
    arrived = [m.properties["message_id"] for m in bus.collect(bus.db_queue, count=8 + 5, settle=0.2)]
    first_arrivals = list(dict.fromkeys(arrived))
    assert first_arrivals == [str(i) for i in ids]  # every event, in order; retried ones may come twice


@pytest.mark.django_db(transaction=True)
def test_a_database_error_after_the_confirm_retries_the_delete_not_the_publish(bus, monkeypatch):
    ids = [messaging.publish("test.db_blip", {"n": n}, source="test") for n in range(3)]
    real_delete = relay_module.services.outbox_published_delete
    calls = []

    def delete_failing_once(*, row_ids):
        calls.append(list(row_ids))
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real_delete(row_ids=row_ids)

    monkeypatch.setattr(relay_module.services, "outbox_published_delete", delete_failing_once)
    fast_relay().drain(timeout=5)
    assert not OutboxEvent.objects.exists()
    assert calls[0] == calls[1]
    arrived = bus.collect(bus.db_queue, count=4, timeout=1)
    assert [m.properties["message_id"] for m in arrived] == [str(i) for i in ids]  # not sent twice


def test_an_unroutable_event_is_logged_with_its_id_and_degrades_health(bus, caplog):
    relay = fast_relay()
    relay.step()  # connects and declares the topology
    delete_names(bus.url, queues=[bus.db_queue, bus.notify_queue])  # now nothing is bound to the exchange
    event_id = messaging.publish("test.lost", {}, source="test")
    with caplog.at_level(logging.WARNING, logger="messaging.relay"):
        relay.step()
    relay.drain(timeout=5)

    assert relay.unroutable == 1
    assert str(event_id) in caplog.text
    assert "unroutable" in caplog.text
    assert not OutboxEvent.objects.exists()  # confirmed by the broker: retrying would not help
    beat = Heartbeat.objects.get(name="relay_outbox")
    assert beat.details["unroutable"] == 1
    check = relay_module.relay_check()
    assert not check.ok
    assert str(event_id) in check.detail


def test_health_reports_a_connected_relay_and_an_old_backlog(bus):
    relay = fast_relay()
    relay.step()
    assert relay_module.relay_check().ok
    assert relay_module.broker_check().ok
    assert relay_module.outbox_check().ok

    messaging.publish("test.waiting", {}, source="test")
    OutboxEvent.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    check = relay_module.outbox_check()
    assert not check.ok
    assert "1 event(s) waiting" in check.detail
    relay.drain(timeout=5)
    assert relay_module.outbox_check().ok


def test_health_reports_an_unreachable_broker(settings):
    settings.AMQP_URL = "amqp://guest:guest@127.0.0.1:1//"
    assert not relay_module.broker_check().ok
    relay = fast_relay()
    relay.step()
    check = relay_module.relay_check()
    assert not check.ok
    assert "broker unreachable" in check.detail


def test_on_the_memory_transport_the_relay_publishes_without_confirms(settings):
    settings.AMQP_URL = "memory://"
    settings.EVENTS_EXCHANGE = "mem-relay.ce"
    settings.EVENTS_DB_QUEUE = "mem-relay.db"
    settings.EVENTS_NOTIFY_QUEUE = "mem-relay.notify"
    ids = [messaging.publish("test.mem", {"n": n}, source="test") for n in range(3)]
    relay = fast_relay()
    assert relay.drain(timeout=5) == 3
    with Connection("memory://") as conn:
        queue = Queue("mem-relay.db", no_declare=True)(conn.channel())
        got = [queue.get(no_ack=True) for _ in range(4)]
    assert [m.properties["message_id"] for m in got if m] == [str(i) for i in ids]


@pytest.mark.django_db(transaction=True)
def test_the_relay_thread_publishes_soon_after_commit_and_stops_cleanly(bus):
    relay = fast_relay(idle_interval=5.0)  # a long poll: only the commit's wake-up makes it quick
    relay.start()
    try:
        assert wait_until(lambda: relay.health_details()["broker"] == "connected", timeout=5)
        started = time.monotonic()
        event_id = messaging.publish("test.live", {}, source="test")
        [message] = bus.collect(bus.db_queue, count=1, timeout=3)
        assert message.properties["message_id"] == str(event_id)
        assert time.monotonic() - started < 2
    finally:
        stop_started = time.monotonic()
        relay.stop(timeout=5)
    assert time.monotonic() - stop_started < 2
    assert not relay.alive
    # The lock went with it: another relay can publish now.
    other = fast_relay()
    messaging.publish("test.after", {}, source="test")
    assert other.drain(timeout=5) == 1


# --- Pieces tested without a broker -----------------------------------------------------------------------


class SilentBroker:
    """A channel and connection whose broker never confirms (what a stalled broker looks like)."""

    def __init__(self):
        self.events = {"basic_ack": set(), "basic_nack": set(), "basic_return": set()}
        self.published = 0
        self.transport = type("T", (), {"driver_type": "amqp"})()

    def channel(self):
        return self

    def confirm_select(self):
        pass

    def drain_events(self, timeout):
        # Nothing arrives: each drain times out (at once here; the publisher asks again until its own deadline).
        raise TimeoutError

    def close(self):
        pass


def test_a_batch_without_confirms_in_time_is_not_counted_as_published(monkeypatch):
    broker = SilentBroker()
    publisher = BatchPublisher(broker, None, confirm_timeout=0.05, on_unroutable=lambda _: None)
    monkeypatch.setattr(publisher.producer, "publish", lambda *a, **k: None)
    events = [messaging.envelope.new_event("a.b", n, source="t") for n in range(3)]
    started = time.monotonic()
    with pytest.raises(PublishFailed, match="no confirm within") as failed:
        publisher.publish(events)
    assert failed.value.confirmed == 0
    assert time.monotonic() - started < 1

    # Acks for the first two (multiple=True) and nothing for the third: two confirmed.
    publisher = BatchPublisher(broker, None, confirm_timeout=0.05, on_unroutable=lambda _: None)
    monkeypatch.setattr(publisher.producer, "publish", lambda *a, **k: None)
    original_drain = broker.drain_events

    def ack_two(timeout):
        publisher._on_ack(2, True)
        broker.drain_events = original_drain
        raise TimeoutError

    broker.drain_events = ack_two
    with pytest.raises(PublishFailed) as failed:
        publisher.publish(events)
    assert failed.value.confirmed == 2


def test_file_lock_lets_one_relay_in_at_a_time(tmp_path):
    first, second = FileLock(tmp_path / "relay.lock"), FileLock(tmp_path / "relay.lock")
    assert first.acquire()
    assert first.acquire()  # re-entrant for its holder
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


def test_process_lock_lets_one_relay_in_at_a_time():
    first, second = ProcessLock("test-lock"), ProcessLock("test-lock")
    assert first.acquire()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


def test_a_relay_that_cannot_reach_the_broker_waits_longer_each_time_up_to_retry_max_with_jitter(settings):
    settings.EVENTS_EXCHANGE = "test.relay-backoff"  # a lock of its own: no other test's relay holds it
    unreachable = "amqp://guest:guest@127.0.0.1:1//"
    exact = RelayTimings(retry_initial=0.1, retry_max=0.4, retry_jitter="none", connect_timeout=0.5)
    relay = OutboxRelay(amqp_url=unreachable, timings=exact)
    assert [relay.step() for _ in range(4)] == [0.1, 0.2, 0.4, 0.4]
    assert relay.health_details()["failures"] == 4
    relay._release_lock()

    jittered = OutboxRelay(amqp_url=unreachable, timings=RelayTimings(retry_initial=0.1, retry_max=0.4))
    waits = [jittered.step() for _ in range(3)]
    jittered._release_lock()
    # Equal jitter: between half and all of 0.1, 0.2, 0.4 s, so relays that lost the broker together spread out.
    assert [0.05 <= waits[0] <= 0.1, 0.1 <= waits[1] <= 0.2, 0.2 <= waits[2] <= 0.4] == [True, True, True]
