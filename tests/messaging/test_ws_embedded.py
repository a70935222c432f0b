"""The embedded default end to end: an event on memory:// → the events.notify consumer's thread → the in-memory
bus → the server's loop → a signed-in browser's socket. No Redis, the same code."""

from __future__ import annotations

import asyncio
import json

from asgiref.sync import sync_to_async
from django.test import Client
from kombu import Connection, Producer
from websockets.asyncio.client import connect

from hub.asgi import build_application
from messaging import topology
from messaging.consumers_amqp import EventsNotifyConsumer
from tests.browser.support import HubServer
from tests.messaging.consume_support import make_event, running


async def test_an_event_reaches_a_signed_in_browser_through_the_notify_consumer(bus_names, memory_bus, household):
    client = Client()
    await sync_to_async(client.force_login)(household)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    server = HubServer(build_application(run_embedded=False))
    reading = make_event(
        1, type="heating.reading", data={"t": 21.5}, topics=("/home/kitchen/measure/3.12.0",), retain=True
    )
    try:
        url = server.url.replace("http://", "ws://") + "/ws/push"
        async with connect(url, origin=server.url, additional_headers={"Cookie": cookie}) as socket:
            for sub_id, topic_filter in ((1, "/events/heating/#"), (2, "/home/+/measure/#")):
                await socket.send(json.dumps({"op": "subscribe", "topic": topic_filter, "id": sub_id}))
                assert json.loads(await asyncio.wait_for(socket.recv(), 5)) == {"op": "ack", "id": sub_id}

            def publish_on_memory_transport():
                with Connection("memory://") as connection:
                    topology.declare(connection)
                    Producer(connection.default_channel).publish(
                        reading.body(),
                        exchange=bus_names.exchange,
                        routing_key=reading.type,
                        **reading.amqp_properties(),
                    )

            # The consumer's own notifier: what MessagingConfig.ready installed (PushNotifier on this bus).
            with running(
                EventsNotifyConsumer(amqp_url="memory://", timings=EventsNotifyConsumer.timings_with(idle_poll=0.05))
            ):
                await asyncio.to_thread(publish_on_memory_transport)
                frames = [json.loads(await asyncio.wait_for(socket.recv(), 10)) for _ in range(2)]
        assert [(f["topic"], f["subs"]) for f in frames] == [
            ("/events/heating/reading", [1]),
            ("/home/kitchen/measure/3.12.0", [2]),
        ]
        assert frames[0]["payload"] == json.loads(reading.body())
        assert frames[1]["payload"] == {"t": 21.5}
        # Retained: a browser arriving later sees the reading at once.
        [stored] = await memory_bus.retained("/home/kitchen/measure/3.12.0")
        assert json.loads(stored.payload) == {"t": 21.5}
    finally:
        await asyncio.to_thread(server.stop)
