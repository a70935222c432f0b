"""Foreign producers: a plain kombu producer script reaches the hub with serializer="json"; pickle is refused."""

from __future__ import annotations

import logging
import uuid

import pytest
from kombu import Connection, Exchange
from kombu.common import maybe_declare
from kombu.pools import producers

from messaging.consumers_amqp import EventsDbConsumer
from messaging.envelope import FOREIGN_SOURCE, REASON_HEADER, event_from_message
from messaging.models import Event as StoredEvent
from tests.messaging.consume_support import running
from tests.support.waiting import wait_until

PAYLOADS = [
    {"operation": "create", "content": "the object"},
    {"operation": "update", "content": "updated fields", "id": "id of the object"},
]


def post_producer(url: str, exchange_name: str, *, serializer: str, **properties) -> None:
    """A plain kombu producer script, as households already run it, apart from the exchange name and the serializer."""
    task_exchange = Exchange(exchange_name, type="fanout")
    connection = Connection(url)
    try:
        with producers[connection].acquire(block=True) as producer:
            maybe_declare(task_exchange, producer.channel)
            for payload in PAYLOADS:
                producer.publish(
                    payload, exchange=exchange_name, serializer=serializer, routing_key="user.write", **properties
                )
    finally:
        connection.release()


def consumer(url: str) -> EventsDbConsumer:
    return EventsDbConsumer(
        amqp_url=url, timings=EventsDbConsumer.timings_with(batch_size=50, flush_after=0.05, idle_poll=0.1)
    )


def test_a_foreign_json_body_becomes_an_event_typed_by_its_routing_key():
    event = event_from_message(
        b'{"operation": "create"}', content_type="application/json", routing_key="user.write", message_id=None
    )
    assert (event.type, event.data, event.source) == ("user.write", {"operation": "create"}, FOREIGN_SOURCE)


def test_a_foreign_message_id_is_the_event_id_and_a_non_uuid_one_maps_to_a_stable_id():
    given = uuid.uuid4()
    read = event_from_message(b"{}", content_type="application/json", routing_key="a.b", message_id=str(given))
    assert read.id == given
    first = event_from_message(b"{}", content_type="application/json", routing_key="a.b", message_id="order-17")
    again = event_from_message(b"{}", content_type="application/json", routing_key="a.b", message_id="order-17")
    assert first.id == again.id
    assert (
        first.id
        != event_from_message(b"{}", content_type="application/json", routing_key="a.b", message_id="order-18").id
    )


def test_without_a_message_id_each_delivery_gets_a_new_id_so_it_is_stored_at_least_once():
    first = event_from_message(b"{}", content_type="application/json", routing_key="a.b")
    again = event_from_message(b"{}", content_type="application/json", routing_key="a.b")
    assert first.id != again.id


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_the_posts_producer_with_json_is_stored_with_type_from_the_routing_key(rabbit):
    post_producer(rabbit.url, rabbit.names.exchange, serializer="json")

    with running(consumer(rabbit.url)):
        assert wait_until(lambda: StoredEvent.objects.count() == 2)

    stored = list(StoredEvent.objects.order_by("received_at", "data__operation"))
    assert sorted(event.data["operation"] for event in stored) == ["create", "update"]
    assert {event.type for event in stored} == {"user.write"}
    assert {event.source for event in stored} == {FOREIGN_SOURCE}
    assert {event.data["operation"]: event.data for event in stored}["update"] == PAYLOADS[1]
    assert rabbit.take_all(rabbit.names.dead_letter_queue) == []


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_foreign_message_id_makes_redeliveries_idempotent(rabbit):
    message_id = str(uuid.uuid4())
    post_producer(rabbit.url, rabbit.names.exchange, serializer="json", message_id=message_id)

    with running(consumer(rabbit.url)):
        assert wait_until(lambda: rabbit.ready(rabbit.names.db_queue) == 0 and StoredEvent.objects.count() == 1)

    # Both payloads carried the same message_id: the hub treats them as one event, stored once.
    assert StoredEvent.objects.get().id == uuid.UUID(message_id)


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_the_posts_pickle_producer_goes_to_the_dead_letter_queue_with_a_log_line(rabbit, caplog):
    caplog.set_level(logging.WARNING, logger="messaging.consumers_amqp")
    post_producer(rabbit.url, rabbit.names.exchange, serializer="pickle")

    with running(consumer(rabbit.url)):
        assert wait_until(lambda: rabbit.ready(rabbit.names.dead_letter_queue) == 2)

    assert StoredEvent.objects.count() == 0
    dead = rabbit.take_all(rabbit.names.dead_letter_queue)
    assert [m.headers[REASON_HEADER] for m in dead] == [
        "pickle payloads are refused: the hub never unpickles data from the wire"
    ] * 2
    assert [m.delivery_info["routing_key"] for m in dead] == ["user.write", "user.write"]
    lines = [r.getMessage() for r in caplog.records if "dead-lettered" in r.getMessage()]
    assert len(lines) == 2
    assert all("never unpickles" in line for line in lines)
