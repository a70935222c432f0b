"""Faults on the publishing side: the broker connection cut (TCP proxy in front of the real RabbitMQ)."""

import time

import pytest

import messaging
from messaging.models import OutboxEvent
from messaging.relay import OutboxRelay, RelayTimings
from tests.messaging.relay_support import publish_beside_a_running_relay
from tests.support.waiting import wait_until

# Also run on PostgreSQL by `make test`'s second pass. While the relay thread runs, progress is read from the
# relay, not the table: SQLite's shared-cache test database refuses a second thread's read ("table is locked").
pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def relay_through(url: str, **overrides) -> OutboxRelay:
    timers = {"retry_initial": 0.02, "retry_max": 0.2, "idle_interval": 0.05, "lock_interval": 0.05}
    timings = RelayTimings(connect_timeout=1.0, confirm_timeout=2.0, heartbeat_interval=30.0, **{**timers, **overrides})
    return OutboxRelay(amqp_url=url, timings=timings)


def test_publishing_while_the_broker_is_unreachable_loses_nothing_and_drains_in_order(bus, tcp_proxy):
    proxy = tcp_proxy(bus.url)
    relay = relay_through(proxy.url_for(bus.url))
    relay.start()
    try:
        assert wait_until(lambda: relay.health_details()["broker"] == "connected", timeout=5)
        proxy.cut()
        assert wait_until(lambda: relay.health_details()["failures"] >= 2, timeout=5)

        started = time.monotonic()
        ids = [publish_beside_a_running_relay("test.outage", {"n": n}, source="test") for n in range(300)]
        assert time.monotonic() - started < 5  # every call returned without waiting on the broker

        # The relay keeps trying, with back-off, against a dead connection: three more attempts, none published.
        failures = relay.health_details()["failures"]
        assert wait_until(lambda: relay.health_details()["failures"] >= failures + 3, timeout=5)
        assert relay.published == 0
        assert relay.health_details()["broker"] == "unreachable"
        assert relay.alive

        proxy.restore()
        assert wait_until(lambda: relay.published == 300, timeout=15)
    finally:
        relay.stop(timeout=5)
    assert not OutboxEvent.objects.exists()
    arrived = bus.collect(bus.db_queue, count=300, settle=0.3)
    assert [m.properties["message_id"] for m in arrived] == [str(i) for i in ids]  # in order, each once


def test_a_cut_in_the_middle_of_draining_keeps_every_event_and_the_order(bus, tcp_proxy):
    proxy = tcp_proxy(bus.url)
    ids = [messaging.publish("test.cut", {"n": n}, source="test") for n in range(5000)]
    relay = relay_through(proxy.url_for(bus.url), batch_size=200)
    relay.start()
    try:
        assert wait_until(lambda: relay.published >= 1000, timeout=15)
        proxy.cut()
        assert wait_until(lambda: relay.health_details()["broker"] == "unreachable", timeout=5)
        assert relay.published < 5000
        assert relay.health_details()["broker"] == "unreachable"
        proxy.restore()
        assert wait_until(lambda: relay.published == 5000, timeout=30)
    finally:
        relay.stop(timeout=5)
    assert not OutboxEvent.objects.exists()
    arrived = [m.properties["message_id"] for m in bus.collect(bus.db_queue, count=5000, timeout=20, settle=0.5)]
    # Unconfirmed events of the cut batch may arrive twice (the store keeps each id once); none is lost, and
    # the first arrivals keep the outbox order.
    assert list(dict.fromkeys(arrived)) == [str(i) for i in ids]
    assert len(arrived) - 5000 <= 200
