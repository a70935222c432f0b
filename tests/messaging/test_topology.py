"""The bus topology on the real RabbitMQ (per-test names) and on the memory transport of the embedded default."""

import json
import uuid

import pytest
from django.core.management import CommandError, call_command
from kombu import Connection, Exchange, Queue

from messaging import topology
from tests.messaging.relay_support import collect, delete_names

pytestmark = pytest.mark.services


def _publish(url, exchange, routing_key, body):
    with Connection(url) as conn:
        producer = conn.Producer()
        producer.publish(
            body, exchange=Exchange(exchange, type="fanout", passive=True), routing_key=routing_key, serializer="json"
        )


def test_declaring_twice_is_harmless_and_gives_quorum_queues_on_rabbitmq(bus):
    with Connection(bus.url) as conn:
        first = topology.declare(conn)
        second = topology.declare(conn)
        assert topology.supports_quorum_queues(conn)
    assert first == second
    assert first.db_queue.queue_arguments["x-queue-type"] == "quorum"
    # The broker holds a quorum queue: declaring the same name as a classic queue is refused.
    with Connection(bus.url) as conn, pytest.raises(Exception, match=r"PRECONDITION_FAILED|inequivalent"):
        Queue(bus.db_queue, durable=True, queue_arguments={"x-queue-type": "classic"})(conn.channel()).declare()


def test_fanout_reaches_both_queues_and_the_topic_exchange_routes_by_type(bus):
    with Connection(bus.url) as conn:
        declared = topology.declare(conn)
        channel = conn.channel()
        heating = Queue(f"{bus.exchange}.heating", declared.topic, routing_key="heating.#", auto_delete=True)
        heating(channel).declare()
    _publish(bus.url, bus.exchange, "heating.reading", {"celsius": 21.5})
    _publish(bus.url, bus.exchange, "downloads.served", {"link": 7})

    for queue in (bus.db_queue, bus.notify_queue):
        arrived = collect(bus.url, queue, count=2, timeout=5)
        assert [m.delivery_info["routing_key"] for m in arrived] == ["heating.reading", "downloads.served"]
    arrived = collect(bus.url, f"{bus.exchange}.heating", count=2, timeout=1)
    assert [json.loads(m.body) for m in arrived] == [{"celsius": 21.5}]
    delete_names(bus.url, queues=[f"{bus.exchange}.heating"])


def test_what_a_consumer_rejects_goes_to_the_dead_letter_queue(bus):
    with Connection(bus.url) as conn:
        topology.declare(conn)
    _publish(bus.url, bus.exchange, "user.write", {"x": 1})
    with Connection(bus.url) as conn:
        message = Queue(bus.db_queue, no_declare=True)(conn.channel()).get(no_ack=False)
        assert message is not None
        message.reject(requeue=False)
    dead = collect(bus.url, bus.names["EVENTS_DEAD_LETTER_QUEUE"], count=1, timeout=5)
    assert [json.loads(m.body) for m in dead] == [{"x": 1}]


def test_an_existing_queue_with_other_settings_is_reported_by_name(bus):
    with Connection(bus.url) as conn:
        Queue(bus.db_queue, durable=True, queue_arguments={"x-queue-type": "classic"})(conn.channel()).declare()
    with Connection(bus.url) as conn, pytest.raises(topology.TopologyConflict, match=bus.db_queue):
        topology.declare(conn)
    with pytest.raises(CommandError, match=bus.db_queue):
        call_command("messaging_setup", timeout=2)


def test_messaging_setup_declares_the_topology(bus, capsys):
    call_command("messaging_setup", timeout=5)
    assert bus.db_queue in capsys.readouterr().out
    with Connection(bus.url) as conn:
        # passive: fails unless the command created them
        for name in (bus.db_queue, bus.notify_queue, bus.names["EVENTS_DEAD_LETTER_QUEUE"]):
            Queue(name, channel=conn.channel()).queue_declare(passive=True)


def test_messaging_setup_names_an_unreachable_broker(settings):
    settings.AMQP_URL = "amqp://guest:guest@127.0.0.1:1//"
    with pytest.raises(CommandError, match="unreachable"):
        call_command("messaging_setup", timeout=0.5)


def test_memory_transport_gets_classic_queues_and_fans_out(settings):
    settings.EVENTS_EXCHANGE = f"mem-{uuid.uuid4().hex[:8]}"
    settings.EVENTS_DB_QUEUE = f"{settings.EVENTS_EXCHANGE}.db"
    settings.EVENTS_NOTIFY_QUEUE = f"{settings.EVENTS_EXCHANGE}.notify"
    with Connection("memory://") as conn:
        declared = topology.declare(conn)
        assert not topology.supports_quorum_queues(conn)
        assert "x-queue-type" not in declared.db_queue.queue_arguments
        conn.Producer().publish({"a": 1}, exchange=declared.fanout, routing_key="x.y", serializer="json")
        for queue in (declared.db_queue, declared.notify_queue):
            message = queue(conn.default_channel).get(no_ack=True)
            assert message is not None
            assert json.loads(message.body) == {"a": 1}
