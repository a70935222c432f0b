"""Fixtures the messaging tests share: per-test names on the real RabbitMQ, users with grants (tests/conftest.py
has the push bus and the grants database)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User

from tests.messaging.consume_support import BusNames, RabbitBus
from tests.messaging.push_support import make_user
from tests.messaging.relay_support import NAME_SETTINGS, Bus, delete_names


@pytest.fixture
def bus(settings, amqp_url) -> Iterator[Bus]:
    """Unique exchange and queue names for this test on the real RabbitMQ; all deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    names = {setting: f"{prefix}.{suffix}" for setting, suffix in NAME_SETTINGS.items()}
    for setting, name in names.items():
        setattr(settings, setting, name)
    settings.AMQP_URL = amqp_url
    yield Bus(url=amqp_url, names=names)
    delete_names(
        amqp_url,
        queues=[names[s] for s in ("EVENTS_DB_QUEUE", "EVENTS_NOTIFY_QUEUE", "EVENTS_DEAD_LETTER_QUEUE")],
        exchanges=[names[s] for s in ("EVENTS_TOPIC_EXCHANGE", "EVENTS_EXCHANGE", "EVENTS_DEAD_LETTER_EXCHANGE")],
    )


@pytest.fixture
def bus_names(settings) -> BusNames:
    """Unique event-bus names in the settings (the consumer tests' spelling of them)."""
    names = BusNames.unique()
    for key, value in names.settings().items():
        setattr(settings, key, value)
    return names


@pytest.fixture
def rabbit(amqp_url, bus_names) -> Iterator[RabbitBus]:
    """The real RabbitMQ with this test's exchanges and queues; deleted afterwards."""
    bus = RabbitBus(amqp_url, bus_names)
    yield bus
    bus.close()


@pytest.fixture
def household(grants_db) -> User:
    return make_user("alice", "household")


@pytest.fixture
def staff(grants_db) -> User:
    return make_user("bob", "staff", is_staff=True)


@pytest.fixture
def redis_push_bus(redis_url):
    """The push bus on the real Redis, under a key prefix of this test's own (removed afterwards)."""
    import redis

    from messaging import push
    from messaging.push.bus import RedisBus

    prefix = f"test:push:{uuid.uuid4().hex[:8]}:"
    bus = RedisBus(redis_url, prefix=prefix)
    push.use_bus(bus)
    yield bus
    push.use_bus(None)
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()
