"""The embedded default: publish → relay → memory:// → the events.db consumer, all in one process."""

import uuid

import pytest

from hub import embedded
from messaging import relay as relay_module
from messaging.consumers_amqp import EventsDbConsumer
from messaging.models import Event as StoredEvent
from messaging.models import OutboxEvent
from tests.messaging.relay_support import publish_beside_a_running_relay
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def use_memory_bus_names(settings) -> None:
    """The in-memory transport, with exchange and queue names of this test's own."""
    prefix = f"embedded-{uuid.uuid4().hex[:8]}"
    settings.AMQP_URL = "memory://"
    settings.EVENTS_EXCHANGE = f"{prefix}.ce"
    settings.EVENTS_DB_QUEUE = f"{prefix}.db"
    settings.EVENTS_NOTIFY_QUEUE = f"{prefix}.notify"
    settings.EVENTS_DEAD_LETTER_QUEUE = f"{prefix}.dead"


def start_relay_and_store(settings) -> tuple[relay_module.OutboxRelay, EventsDbConsumer]:
    """What the embedded default's lifespan runs: the relay and the events.db consumer on ``memory://``, started."""
    use_memory_bus_names(settings)
    relay = relay_module.OutboxRelay(
        timings=relay_module.RelayTimings(idle_interval=0.05, retry_initial=0.02, retry_max=0.1)
    )
    store = EventsDbConsumer(
        amqp_url="memory://", timings=EventsDbConsumer.timings_with(batch_size=16, flush_after=0.02, idle_poll=0.05)
    )
    relay.start()
    store.start()
    return relay, store


def test_the_relay_is_registered_for_the_lifespan_and_uses_the_memory_transport_by_default(settings):
    assert relay_module.RELAY_NAME in embedded.registered()
    settings.AMQP_URL = "memory://"
    relay = relay_module.embedded_relay()
    assert isinstance(relay, relay_module.OutboxRelay)
    assert relay.amqp_url == "memory://"
    assert not relay.alive  # registering and building start nothing; the lifespan does


def test_published_events_are_stored_by_the_in_process_consumer(settings):
    relay, store = start_relay_and_store(settings)
    try:
        ids = [publish_beside_a_running_relay("test.embedded", {"n": n}, source="test") for n in range(25)]
        assert wait_until(lambda: relay.published == 25)
        assert wait_until(lambda: StoredEvent.objects.count() == 25)
    finally:
        store.stop(timeout=5)
        relay.stop(timeout=5)
    assert set(StoredEvent.objects.values_list("id", flat=True)) == set(ids)
    assert not OutboxEvent.objects.exists()


def test_on_the_memory_transport_an_event_leaves_the_outbox_only_stored_in_the_event_log(settings):
    """No events.db consumer runs here: what the relay took from the outbox must already be in the event log, since
    the in-memory transport's copy dies with the process (a kill right after the relay's pass loses nothing)."""
    use_memory_bus_names(settings)
    import messaging

    ids = messaging.publish_many(messaging.new_event("test.kill", {"n": n}, source="test") for n in range(1200))
    relay = relay_module.OutboxRelay(
        timings=relay_module.RelayTimings(batch_size=500, retry_initial=0.02, retry_max=0.1)
    )
    # Pass by pass, as a kill could interrupt it anywhere: after each, every event is in exactly one place.
    while OutboxEvent.objects.exists():
        relay.step()
        waiting = set(OutboxEvent.objects.values_list("event_id", flat=True))
        stored = set(StoredEvent.objects.values_list("id", flat=True))
        assert not waiting & stored
        assert waiting | stored == set(ids)
    relay.drain(timeout=5)
    assert relay.published == 1200
    assert StoredEvent.objects.count() == 1200


def test_the_events_db_consumer_after_the_relay_stores_nothing_twice(settings):
    relay, store = start_relay_and_store(settings)
    try:
        ids = [publish_beside_a_running_relay("test.embedded", {"n": n}, source="test") for n in range(40)]
        assert wait_until(lambda: store.stats["processed"] == 40)
    finally:
        store.stop(timeout=5)
        relay.stop(timeout=5)
    assert sorted(StoredEvent.objects.values_list("id", flat=True)) == sorted(ids)
