"""Action topics published from a browser: who may switch a heater, and who the command row names.

Without ``MQTT_URL`` a granted ``/ws/push`` publish reaches heating's handler in the web process; with it, the bridge
publishes it to the broker (the real Mosquitto here) and runs the handler, the author travelling with the request on
the channel layer. Either way the command is queued once, whatever ``retain`` the browser asked for.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Group, User

from heating.models import Command, CommandState, Node
from heating.mqtt_handlers import ACTION_TOPICS, action_received
from messaging import mqtt, push
from messaging.models import TopicGrant
from messaging.push.grants import PushRefused
from messaging.topic_rules import expand_home
from tests.messaging.push_support import connect_consumer, make_user
from tests.messaging.test_mqtt_broker import WAIT, clear_retained, mosquitto_pub, mosquitto_sub_one
from tests.support.waiting import wait_for

PREFIXES = ["/home", "", "/site/a/home"]
ENDPOINT = "161.12.0"  # the room heater's "Heating" output at address 0xA1


def heater(location: str = "living") -> Node:
    return Node.objects.create(
        address=0xA1, manufacturer_id=72, product_id=1, definition="heater/Room heater", location=location
    )


def switcher(name: str, *, send_commands: bool) -> User:
    """A household member whose group an admin let publish anywhere ('#'): only the permission tells them apart."""
    tinkerers, _ = Group.objects.get_or_create(name="tinkerers")
    TopicGrant.objects.get_or_create(group=tinkerers, topic_filter="#", defaults={"may_publish": True})
    user = make_user(name, "household", perms=("hub.send_commands",) if send_commands else ())
    user.groups.add(tinkerers)
    return User.objects.get(pk=user.pk)


@pytest.fixture
def action_handler_for(settings):
    """``action_handler_for(prefix)``: heating's handler registered on that prefix's action topics for the test.

    The app registers it once at start-up for the configured prefix; a test switching the prefix needs its own.
    """
    added: list[str] = []

    def register(prefix: str) -> str:
        settings.MQTT_HOME_PREFIX = prefix
        topic_filter = expand_home(ACTION_TOPICS, home_prefix=prefix)
        if not any(s.handler is action_received for s in mqtt.handlers.subscriptions_for(f"{prefix}/x/action/1")):
            mqtt.handlers.subscribe(topic_filter, action_received)
            added.append(topic_filter)
        return topic_filter

    yield register
    for topic_filter in added:
        mqtt.handlers.unsubscribe(topic_filter, action_received)


# --- without a broker: straight to the handler ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("prefix", PREFIXES)
def test_a_hash_publish_grant_switches_nothing_without_send_commands_under_every_prefix(
    settings, grants_db, memory_bus, action_handler_for, prefix
):
    settings.MQTT_URL = None
    action_handler_for(prefix)
    heater()
    topic = f"{prefix}/living/action/{ENDPOINT}"

    with pytest.raises(PushRefused, match=r"hub\.send_commands"):
        asyncio.run(push.browser_publish(user=switcher("hana", send_commands=False), topic=topic, payload=1))
    assert not Command.objects.exists(), "no heater was switched"

    allowed = switcher("ivo", send_commands=True)
    asyncio.run(push.browser_publish(user=allowed, topic=topic, payload=1))
    command = Command.objects.get()
    assert (command.endpoint, command.value, command.requested_by, command.origin) == ("Heating", "01", allowed, "push")


@pytest.mark.django_db(transaction=True)
async def test_over_the_socket_the_command_names_its_author_and_a_retained_publish_acts_once(
    settings, grants_db, memory_bus
):
    settings.MQTT_URL = None
    await database_sync_to_async(heater)()
    topic = f"{settings.MQTT_HOME_PREFIX}/living/action/{ENDPOINT}"
    author = await database_sync_to_async(switcher)("ivo", send_commands=True)
    socket = await connect_consumer(author)
    reply = await socket.request({"op": "publish", "topic": topic, "payload": "on", "retain": True, "id": 1})
    assert reply == {"op": "ack", "id": 1}

    # The retained value is replayed to every later subscriber: a browser sees it, the heater is not switched again.
    watcher = await connect_consumer(author)
    assert await watcher.subscribe(topic, 7) == {"op": "ack", "id": 7}
    replay = await watcher.receive()
    assert (replay["topic"], replay["payload"], replay["retained"]) == (topic, "on", True)
    # The serial worker would confirm it (none runs here): a relay takes one pending command at a time.
    await database_sync_to_async(confirm_all)()
    # A later publish through the same handler: had the replay switched the heater, its command would be there too.
    reply = await socket.request({"op": "publish", "topic": topic, "payload": "off", "id": 2})
    assert reply == {"op": "ack", "id": 2}

    commands = await database_sync_to_async(
        lambda: list(Command.objects.select_related("requested_by").order_by("pk"))
    )()
    assert [(c.requested_by, c.origin, c.requested_value) for c in commands] == [
        (author, "push", "on"),
        (author, "push", "off"),
    ]
    for each in (socket, watcher):
        await each.close()


@pytest.mark.django_db(transaction=True)
def test_an_action_from_the_broker_has_no_author_and_says_so(settings):
    heater()
    message = mqtt.MqttMessage(topic=f"{settings.MQTT_HOME_PREFIX}/living/action/{ENDPOINT}", payload=b"1", qos=1)
    asyncio.run(mqtt.handlers.dispatch(message))
    command = Command.objects.get()
    assert (command.requested_by, command.origin) == (None, "mqtt")


# --- with a broker: through the bridge ---------------------------------------------------------------------


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_through_the_broker_the_author_is_kept_and_a_restarted_bridge_does_not_act_on_the_retained_copy(
    settings, mqtt_url, redis_layer, grants_db, memory_bus, caplog
):
    from messaging.bridge import BridgeTimings, MqttBridge

    prefix = f"/test-actions/{uuid.uuid4().hex[:12]}"  # this test's own house on the shared broker
    settings.MQTT_HOME_PREFIX = prefix
    settings.MQTT_URL = mqtt_url
    registry = mqtt.HandlerRegistry()
    registry.subscribe(expand_home(ACTION_TOPICS, home_prefix=prefix), action_received)
    heater()
    topic = f"{prefix}/living/action/{ENDPOINT}"
    author = switcher("ivo", send_commands=True)

    def start_bridge() -> MqttBridge:
        bridge = MqttBridge(
            mqtt_url=mqtt_url,
            filters=[f"{prefix}/#"],
            fanout=_no_browsers,
            registry=registry,
            consume_events=False,
            receive_browser_publishes=True,
            channel_layer=redis_layer(),
            timings=BridgeTimings(
                heartbeat_interval=3600, mqtt=mqtt.MqttTimings(keepalive=5, retry_initial=0.05, retry_max=0.2)
            ),
        )
        bridge.start()
        assert bridge.wait_until_ready(WAIT + 5), "the bridge did not get ready"
        return bridge

    bridge = start_bridge()
    try:
        asyncio.run(push.browser_publish(user=author, topic=topic, payload="on", retain=True))
        wait_for(Command.objects.exists, timeout=WAIT, what="the bridge to queue the command")
        kept = mosquitto_sub_one(mqtt_url, topic, retained_only=True)
        output, _ = kept.communicate(timeout=WAIT + 2)
        assert output.strip() == f"1 1 {topic} on", "the broker keeps it retained, as the browser asked"
    finally:
        bridge.stop(timeout=WAIT)

    # A new bridge subscribes and the broker hands it the retained action: not a new request.
    bridge = start_bridge()
    try:
        wait_for(
            lambda: "retained action on" in caplog.text and topic in caplog.text,
            timeout=WAIT,
            what="the new bridge's handler to see the retained copy",
        )
        assert [(c.requested_by, c.origin) for c in Command.objects.select_related("requested_by")] == [
            (author, "push")
        ]
        clear_retained(mqtt_url, topic)
        confirm_all()  # as the serial worker would (none runs here): a relay takes one pending command at a time
        # An MQTT client's live action is taken as before (the broker's ACL vouched for it): no author, origin mqtt.
        mosquitto_pub(mqtt_url, topic, "off")
        wait_for(lambda: Command.objects.count() == 2, timeout=WAIT, what="the broker's action to be queued")
    finally:
        bridge.stop(timeout=WAIT)
        clear_retained(mqtt_url, topic)
    commands = list(Command.objects.select_related("requested_by").order_by("pk"))
    assert [(c.requested_by, c.origin, c.requested_value) for c in commands] == [
        (author, "push", "on"),
        (None, "mqtt", "off"),
    ]


def confirm_all() -> None:
    Command.objects.update(state=CommandState.CONFIRMED)


async def _no_browsers(topic, payload, *, retain, received_at) -> None:
    """The bridge's fan-out to browsers, which this test does not look at."""
