"""The event bus feeds live push: the real ``events.notify`` consumer on RabbitMQ hands events to the sockets."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from messaging.push.bus import MemoryBus
from messaging.push.hub import PushHub
from messaging.push.notifier import PushNotifier
from tests.messaging.consume_support import make_event, running
from tests.messaging.test_notify import notify_consumer
from tests.messaging.test_push_bus import FakeSocket


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
async def test_events_from_the_bus_reach_subscribed_sockets_and_retained_ones_stay_for_new_subscribers(rabbit):
    bus = MemoryBus()
    hub = PushHub(bus, loop=asyncio.get_running_loop())
    hub.start()
    watcher = FakeSocket()
    hub.subscribe(watcher, "/events/heating/#", "events")
    hub.subscribe(watcher, "/home/+/measure/#", "measures")
    t0 = datetime(2026, 11, 28, 7, 30, tzinfo=UTC)
    topic = "/home/kitchen/measure/3.12.0"
    newer = make_event(1, type="heating.reading", topics=(topic,), retain=True, data={"t": 21}, occurred_at=t0)
    older = make_event(
        2, type="heating.reading", topics=(topic,), retain=True, data={"t": 20}, occurred_at=t0 - timedelta(1)
    )
    other = make_event(3, type="downloads.served", data={"link": 1})
    # Handled after downloads.served, which no subscription matches: its frame shows that one was passed over.
    sentinel = make_event(4, type="heating.sentinel")
    await asyncio.to_thread(rabbit.publish_events, [newer, older, other, sentinel])

    with running(notify_consumer(rabbit.url, PushNotifier(bus=bus))):
        frames = [await watcher.next(timeout=10) for _ in range(4)]
        after = await watcher.next(timeout=10)
    assert (after["topic"], after["payload"]["id"]) == ("/events/heating/sentinel", str(sentinel.id))

    assert [(f["topic"], f["subs"]) for f in frames] == [
        ("/events/heating/reading", ["events"]),
        (topic, ["measures"]),
        ("/events/heating/reading", ["events"]),
        (topic, ["measures"]),
    ]
    assert frames[0]["payload"] == json.loads(newer.body())
    assert frames[1]["payload"] == {"t": 21}
    assert watcher.frames == []
    # The older event arrived later but does not become the last value.
    [last] = await bus.retained(topic)
    assert json.loads(last.payload) == {"t": 21}
    await hub.close()
