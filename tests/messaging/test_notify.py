"""The events.notify consumer hands each event to the notifier (the live-push extension point), acked after."""

from __future__ import annotations

import asyncio
import logging

import pytest
from channels.layers import InMemoryChannelLayer

from messaging import notify
from messaging.consumers_amqp import EventsNotifyConsumer
from tests.messaging.consume_support import make_event, running
from tests.support.waiting import wait_until


class RecordingNotifier:
    """The test double: records each hand-off, optionally failing the first few as a lost channel layer would."""

    def __init__(self, *, failures: int = 0):
        self.events = []
        self.loops = set()
        self.failures = failures

    async def notify(self, events):
        self.loops.add(id(asyncio.get_running_loop()))
        if self.failures:
            self.failures -= 1
            raise ConnectionError("channel layer unreachable")
        self.events.extend(events)


def notify_consumer(url, notifier, **options):
    options = {"flush_after": 0.02, "retry_initial": 0.02, "retry_max": 0.1, "idle_poll": 0.1, **options}
    return EventsNotifyConsumer(amqp_url=url, notifier=notifier, timings=EventsNotifyConsumer.timings_with(**options))


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_each_event_is_handed_over_whole_with_topics_and_retain_on_one_event_loop(rabbit):
    events = [make_event(i, topics=("/home/kitchen/measure/1.12.0",), retain=bool(i % 2)) for i in range(300)]
    notifier = RecordingNotifier()
    rabbit.publish_events(events)

    with running(notify_consumer(rabbit.url, notifier, batch_size=50)):
        assert wait_until(lambda: len(notifier.events) == 300 and rabbit.ready(rabbit.names.notify_queue) == 0)

    assert notifier.events == events  # same order, same envelope, topics and retain flag
    assert notifier.events[1].retain is True
    assert notifier.events[1].envelope() == events[1].envelope()
    # At least six batches went through one event loop: no new loop (or async_to_sync) per message.
    assert len(notifier.loops) == 1


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_nothing_is_acknowledged_before_the_hand_off_succeeds(rabbit):
    rabbit.publish_events(make_event(i) for i in range(10))
    failing = RecordingNotifier(failures=10_000)
    with running(notify_consumer(rabbit.url, failing)):
        assert wait_until(lambda: failing.failures <= 10_000 - 3)
    assert wait_until(lambda: rabbit.ready(rabbit.names.notify_queue) == 10)

    recovering = RecordingNotifier(failures=2)
    with running(notify_consumer(rabbit.url, recovering)):
        assert wait_until(lambda: len(recovering.events) == 10 and rabbit.ready(rabbit.names.notify_queue) == 0)
    assert recovering.failures == 0


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_an_unreadable_message_is_dropped_with_a_log_line_not_dead_lettered_twice(rabbit, caplog):
    caplog.set_level(logging.INFO, logger="messaging.consumers_amqp")
    notifier = RecordingNotifier()
    rabbit.publish_raw(b"{broken", content_type="application/json")
    good = make_event(1)
    rabbit.publish_events([good])
    with running(notify_consumer(rabbit.url, notifier)):
        assert wait_until(lambda: len(notifier.events) >= 1 and rabbit.ready(rabbit.names.notify_queue) == 0)
    assert notifier.events == [good]
    # events.db dead-letters the same message; a second copy from events.notify would only confuse.
    dead_from_notify = [
        m
        for m in rabbit.take_all(rabbit.names.dead_letter_queue)
        if m.headers.get("x-hub-dead-queue") == rabbit.names.notify_queue
    ]
    assert dead_from_notify == []
    assert any("dropping a message it cannot read (body is not valid JSON" in r.getMessage() for r in caplog.records)


async def test_the_default_notifier_sends_the_whole_envelope_to_the_channel_layer_group():
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add(notify.NOTIFY_GROUP, channel)
    event = make_event(5, topics=("/home/hall/measure/2.11.0",), retain=True)

    await notify.ChannelLayerNotifier(layer=layer).notify([event])

    received = await asyncio.wait_for(layer.receive(channel), 1)
    assert received == {
        "type": "event.notify",
        "envelope": event.envelope(),
        "topics": ["/home/hall/measure/2.11.0"],
        "retain": True,
    }


def test_the_push_work_can_replace_the_notifier(monkeypatch):
    monkeypatch.setattr(notify, "_factory", notify._factory)
    replacement = RecordingNotifier()
    notify.use_notifier(lambda: replacement)
    assert notify.build_notifier() is replacement
    consumer = EventsNotifyConsumer(amqp_url="memory://")
    consumer.setup()
    try:
        assert consumer.notifier is replacement
    finally:
        consumer.teardown()
