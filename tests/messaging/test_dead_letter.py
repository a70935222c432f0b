"""Poison messages: each ends in the dead-letter queue with its reason; the good ones around them are stored."""

from __future__ import annotations

import json
import logging
import pickle

import pytest

from messaging.consumers_amqp import EventsDbConsumer
from messaging.envelope import REASON_HEADER, PoisonMessage, event_from_message
from messaging.models import Event as StoredEvent
from tests.messaging.consume_support import make_event, running
from tests.support.waiting import wait_until

GOOD_ENVELOPE = make_event(0).envelope()


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"{not json", "application/json", "body is not valid JSON"),
        (b"", "application/json", "empty body"),
        (pickle.dumps({"operation": "create"}), "application/x-python-serialize", "pickle payloads are refused"),
        (b'{"a": 1}', "text/plain", "content type 'text/plain' is not application/json"),
        (b'{"a": 1}', None, "content type None is not application/json"),
        (b"[" + b"1," * (5 * 1024 * 1024) + b"1]", "application/json", "over the 1048576-byte limit"),
        (json.dumps({**GOOD_ENVELOPE, "occurred_at": "yesterday"}).encode(), "application/json", "occurred_at:"),
        (json.dumps({**GOOD_ENVELOPE, "occurred_at": "2026-11-28T07:30:00"}).encode(), "application/json", "no zone"),
        (json.dumps({**GOOD_ENVELOPE, "id": "seven"}).encode(), "application/json", "envelope id 'seven'"),
        (b"\xff\xfe{}", "application/json", "body is not valid JSON"),
    ],
)
def test_a_message_the_hub_can_never_store_is_refused_with_its_reason(body, content_type, reason):
    with pytest.raises(PoisonMessage, match=None) as refused:
        event_from_message(body, content_type=content_type, routing_key="user.write")
    assert reason in str(refused.value)


def test_a_pickled_body_is_never_loaded(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("pickle.loads was called on a message body")

    monkeypatch.setattr(pickle, "loads", forbidden)
    with pytest.raises(PoisonMessage, match="never unpickles"):
        event_from_message(pickle.dumps({"a": 1}), content_type="application/x-python-serialize", routing_key="x")


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_poison_messages_end_in_the_dead_letter_queue_and_the_consumer_keeps_going(rabbit, caplog):
    caplog.set_level(logging.WARNING, logger="messaging.consumers_amqp")
    good = [make_event(i) for i in range(6)]
    poison = {
        "invalid-json": dict(body=b"{oops", content_type="application/json"),
        "pickle": dict(
            body=pickle.dumps({"operation": "create"}),
            content_type="application/x-python-serialize",
            content_encoding="binary",
        ),
        "ten-megabytes": dict(
            body=b'"' + b"x" * (10 * 1024 * 1024) + b'"', content_type="application/json", content_encoding="utf-8"
        ),
        "wrong-content-type": dict(body=b"<p>hello</p>", content_type="text/html", content_encoding="utf-8"),
        "bad-date": dict(
            body=json.dumps({**good[0].envelope(), "occurred_at": "28/11/2026"}).encode(),
            content_type="application/json",
            content_encoding="utf-8",
        ),
    }
    # good, poison, good, poison, …, good: every poison message has good ones on both sides.
    rabbit.publish_events(good[:1])
    for index, (name, message) in enumerate(poison.items(), start=1):
        rabbit.publish_raw(message_id=name, **message)
        rabbit.publish_events(good[index : index + 1])

    consumer = EventsDbConsumer(
        amqp_url=rabbit.url, timings=EventsDbConsumer.timings_with(batch_size=3, flush_after=0.05, idle_poll=0.1)
    )
    with running(consumer):
        assert wait_until(lambda: rabbit.ready(rabbit.names.dead_letter_queue) == len(poison), timeout=30)
        assert wait_until(lambda: rabbit.ready(rabbit.names.db_queue) == 0)
        assert consumer.alive

    assert set(StoredEvent.objects.values_list("id", flat=True)) == {event.id for event in good}
    dead = {m.properties["message_id"]: m for m in rabbit.take_all(rabbit.names.dead_letter_queue)}
    assert set(dead) == set(poison)
    reasons = {name: message.headers[REASON_HEADER] for name, message in dead.items()}
    assert reasons["invalid-json"].startswith("body is not valid JSON")
    assert reasons["pickle"] == "pickle payloads are refused: the hub never unpickles data from the wire"
    assert reasons["ten-megabytes"] == "body of 10485762 bytes is over the 1048576-byte limit"
    assert reasons["wrong-content-type"] == "content type 'text/html' is not application/json"
    assert reasons["bad-date"].startswith("occurred_at: '28/11/2026' is not an ISO 8601 time")
    # The dead letter keeps the original body for whoever inspects the queue.
    assert bytes(dead["pickle"].body) == poison["pickle"]["body"]
    logged = " ".join(record.getMessage() for record in caplog.records)
    for name, reason in reasons.items():
        assert f"dead-lettered message {name}: {reason}" in logged


@pytest.mark.django_db(transaction=True)
def test_the_embedded_memory_transport_dead_letters_too(bus_names):
    from kombu import Connection, Producer

    from messaging import topology

    with Connection("memory://") as connection:
        topology.declare(connection)
        producer = Producer(connection.default_channel)
        producer.publish(
            b"{oops",
            exchange=bus_names.exchange,
            routing_key="x.y",
            content_type="application/json",
            message_id="bad-one",
        )
        good = make_event(1)
        producer.publish(good.body(), exchange=bus_names.exchange, routing_key=good.type, **good.amqp_properties())
        with running(
            EventsDbConsumer(
                amqp_url="memory://", timings=EventsDbConsumer.timings_with(flush_after=0.02, idle_poll=0.05)
            )
        ):
            assert wait_until(lambda: StoredEvent.objects.filter(id=good.id).exists())
            taken = []
            channel = connection.channel()
            assert wait_until(
                lambda: taken.append(channel.basic_get(bus_names.dead_letter_queue, no_ack=True)) or taken[-1]
            )
        message = taken[-1]
        assert message.headers[REASON_HEADER].startswith("body is not valid JSON")
        assert message.properties["message_id"] == "bad-one"
