"""The embedded default: both consumers run in process on kombu's memory:// transport."""

from __future__ import annotations

import pytest
from kombu import Connection, Producer

from messaging import topology
from messaging.consumers_amqp import EventsDbConsumer, EventsNotifyConsumer
from messaging.models import Event as StoredEvent
from tests.messaging import consume_support
from tests.messaging.consume_support import make_event, running, wait_until

bus_names = consume_support.bus_names

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
        store = EventsDbConsumer(amqp_url="memory://", batch_size=16, flush_after=0.02, idle_poll=0.05)
        notify = EventsNotifyConsumer(amqp_url="memory://", notifier=notifier, idle_poll=0.05)
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
