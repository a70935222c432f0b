"""The embedded default: both consumers run in process on kombu's memory:// transport."""

from __future__ import annotations

import pytest
from kombu import Connection, Producer

from messaging import topology
from messaging.consumers_amqp import EventsDbConsumer, EventsNotifyConsumer
from messaging.models import Event as StoredEvent
from tests.messaging.consume_support import make_event, running
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


class RecordingNotifier:
    def __init__(self):
        self.events = []

    async def notify(self, events):
        self.events.extend(events)


def test_events_published_on_the_memory_transport_are_stored_and_handed_over(bus_names):
    events = [make_event(i, topics=(f"/home/room{i}/temperature",), retain=True) for i in range(40)]
    notifier = RecordingNotifier()
    with Connection("memory://") as connection:
        topology.declare(connection)
        producer = Producer(connection.default_channel)
        store = EventsDbConsumer(
            amqp_url="memory://", timings=EventsDbConsumer.timings_with(batch_size=16, flush_after=0.02, idle_poll=0.05)
        )
        notify = EventsNotifyConsumer(
            amqp_url="memory://", notifier=notifier, timings=EventsNotifyConsumer.timings_with(idle_poll=0.05)
        )
        with running(store), running(notify):
            for event in events:
                producer.publish(
                    event.body(), exchange=bus_names.exchange, routing_key=event.type, **event.amqp_properties()
                )
            assert wait_until(lambda: len(notifier.events) == 40)
            assert wait_until(lambda: StoredEvent.objects.count() == 40)

    assert [e.id for e in notifier.events] == [e.id for e in events]
    assert notifier.events[3].topics == ("/home/room3/temperature",)
    assert notifier.events[3].retain is True
    assert set(StoredEvent.objects.values_list("id", flat=True)) == {e.id for e in events}


def test_both_consumers_are_registered_for_the_embedded_lifespan_and_report_heartbeats(client):
    from hub import embedded, health

    assert {"events.db", "events.notify"} <= set(embedded.registered())
    body = client.get("/healthz").json()
    # Not started in tests: /healthz says so (degraded, never down) instead of hiding them.
    assert body["checks"]["worker:events.db"] == {"ok": False, "critical": False, "detail": "no heartbeat yet"}
    assert body["checks"]["worker:events.notify"]["critical"] is False
    assert health.heartbeat_check("events.db").ok is False


def test_a_running_consumer_keeps_its_heartbeat_fresh(bus_names, client):
    consumer = EventsDbConsumer(
        amqp_url="memory://", timings=EventsDbConsumer.timings_with(heartbeat_interval=0.05, idle_poll=0.02)
    )
    with running(consumer):
        assert wait_until(lambda: client.get("/healthz").json()["checks"]["worker:events.db"]["ok"])


@pytest.mark.parametrize("which", ["db", "notify"])
def test_consume_events_runs_the_chosen_consumer_with_its_options(which, monkeypatch):
    from django.core.management import call_command

    from messaging.management.commands import consume_events

    ran = []
    monkeypatch.setattr(consume_events, "run_in_foreground", ran.append)
    call_command("consume_events", which, "--batch-size", "200", "--flush-ms", "75", "--max-attempts", "3")
    [worker] = ran
    assert worker.name == f"events.{which}"
    assert (worker.timings.batch_size, worker.timings.flush_after, worker.timings.max_attempts) == (200, 0.075, 3)
