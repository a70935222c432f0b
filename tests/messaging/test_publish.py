"""``messaging.publish`` / ``apublish``: an outbox row in the caller's transaction, at once, checked first."""

import math
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import transaction

import messaging
from messaging.models import OutboxEvent

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_publish_writes_an_outbox_row_and_returns_its_id():
    at = datetime(2026, 11, 28, 7, 30, 0, 123456, tzinfo=UTC)
    event_id = messaging.publish(
        "heating.reading",
        {"room": "kitchen", "celsius": 21.5},
        source="heating",
        topics=["/home/kitchen/measure/1"],
        retain=True,
        occurred_at=at,
    )
    assert isinstance(event_id, uuid.UUID)
    row = OutboxEvent.objects.get()
    assert row.event_id == event_id
    assert (row.type, row.source, row.data) == ("heating.reading", "heating", {"room": "kitchen", "celsius": 21.5})
    assert (row.topics, row.retain) == (["/home/kitchen/measure/1"], True)
    # Kept to the millisecond, the wire format's precision, so row, envelope and stored event agree.
    assert row.occurred_at == datetime(2026, 11, 28, 7, 30, 0, 123000, tzinfo=UTC)


def test_occurred_at_defaults_to_now_and_other_zones_become_utc():
    before = datetime.now(UTC) - timedelta(seconds=1)
    messaging.publish("a.b", 1, source="test")
    assert before <= OutboxEvent.objects.get().occurred_at <= datetime.now(UTC)
    plus_two = timezone(timedelta(hours=2))
    messaging.publish("a.b", 2, source="test", occurred_at=datetime(2026, 1, 1, 9, 0, tzinfo=plus_two))
    assert OutboxEvent.objects.get(data=2).occurred_at == datetime(2026, 1, 1, 7, 0, tzinfo=UTC)


def test_publish_does_not_touch_the_broker(settings):
    settings.AMQP_URL = "amqp://guest:guest@127.0.0.1:1//"  # nothing listens there
    started = time.monotonic()
    for n in range(50):
        messaging.publish("a.b", {"n": n}, source="test")
    assert time.monotonic() - started < 2
    assert OutboxEvent.objects.count() == 50


def test_a_rolled_back_transaction_publishes_nothing():
    def failing_change():
        with transaction.atomic():
            messaging.publish("downloads.link_created", {"id": 1}, source="downloads")
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        failing_change()
    assert not OutboxEvent.objects.exists()


def test_rows_keep_the_order_they_were_published_in():
    ids = [messaging.publish("a.b", n, source="test") for n in range(5)]
    assert list(OutboxEvent.objects.order_by("id").values_list("event_id", flat=True)) == ids


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("", {}), {"source": "x"}, "event type"),
        (("a.b", {}), {"source": ""}, "source"),
        (("x" * 201, {}), {"source": "x"}, "event type"),
        (("a.b", {"when": datetime.now(UTC)}), {"source": "x"}, "not JSON-serialisable"),
        (("a.b", {1, 2}), {"source": "x"}, "not JSON-serialisable"),
        (("a.b", {"v": math.nan}), {"source": "x"}, "not JSON-serialisable"),
        (("a.b", {}), {"source": "x", "occurred_at": datetime(2026, 1, 1)}, "timezone-aware"),
        (("a.b", {}), {"source": "x", "occurred_at": "2026-01-01T00:00:00Z"}, "timezone-aware"),
        (("a.b", {}), {"source": "x", "topics": "/home/kitchen"}, "not the string"),
        (("a.b", {}), {"source": "x", "topics": ["/home/+/measure"]}, "no wildcards"),
        (("a.b", {}), {"source": "x", "topics": [""]}, "topic"),
        (("a.b", {}), {"source": "x", "retain": "yes"}, "retain"),
        (("a.b", "x" * (1024 * 1024 + 1)), {"source": "x"}, "limit"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error_and_writes_nothing(args, kwargs, message):
    with pytest.raises(messaging.InvalidEvent, match=message):
        messaging.publish(*args, **kwargs)
    assert not OutboxEvent.objects.exists()


def test_invalid_event_is_a_value_error_for_callers_that_catch_those():
    with pytest.raises(ValueError, match="event type"):
        messaging.publish("", {}, source="x")


@pytest.mark.django_db(transaction=True)
async def test_apublish_writes_the_row_from_async_code():
    event_id = await messaging.apublish("heating.node_seen", {"node": 5}, source="heating", topics=("/x",))
    row = await OutboxEvent.objects.aget(event_id=event_id)
    assert (row.type, row.data, row.topics) == ("heating.node_seen", {"node": 5}, ["/x"])


@pytest.mark.django_db(transaction=True)
async def test_apublish_refuses_bad_input_too():
    with pytest.raises(messaging.InvalidEvent):
        await messaging.apublish("a.b", object(), source="x")
    with pytest.raises(messaging.InvalidEvent, match="not the string"):
        await messaging.apublish("a.b", {}, source="x", topics="/home/kitchen")
    assert await OutboxEvent.objects.acount() == 0


def test_the_package_imports_before_django_is_set_up():
    code = "import messaging; print(messaging.publish.__name__, messaging.apublish.__name__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env={})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["publish", "apublish"]


def test_publish_many_writes_in_order_the_rows_publish_would_write():
    at = datetime.now(UTC)
    arguments = {"source": "heating", "topics": ["/home/x/measure/1.2.0"], "retain": True, "occurred_at": at}
    single = messaging.publish("heating.reading", {"id": "1.2.0", "value": 1}, **arguments)
    burst = [messaging.new_event("heating.reading", {"id": "1.2.0", "value": n}, **arguments) for n in (2, 3)]
    ids = messaging.publish_many(burst)
    assert ids == [event.id for event in burst]
    rows = list(OutboxEvent.objects.order_by("id"))
    assert [row.event_id for row in rows] == [single, *ids]
    assert [row.data["value"] for row in rows] == [1, 2, 3]
    for field in OutboxEvent._meta.concrete_fields:
        if field.name not in {"id", "event_id", "created_at", "data"}:
            assert getattr(rows[1], field.name) == getattr(rows[0], field.name), field.name


def test_a_rolled_back_burst_publishes_nothing():
    with transaction.atomic():
        messaging.publish_many([messaging.new_event("x.y", {}, source="test")])
        transaction.set_rollback(True)
    assert not OutboxEvent.objects.exists()
