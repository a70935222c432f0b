"""The radio's services outside the worker: lagarto's topics and JSON shape, the action-topic handler, retention."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from heating import mqtt_handlers
from heating.models import Command, Node, Reading
from heating.selectors import definitions
from heating.services import ReadingInput, readings_record
from heating.tasks import readings_prune
from messaging import mqtt
from messaging.models import OutboxEvent

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

HEATER = definitions().get(72, 1)


@pytest.fixture
def heater():
    return Node.objects.create(address=0xA1, manufacturer_id=72, product_id=1, definition="heater/Room heater")


@pytest.mark.parametrize(
    ("prefix", "topic"), [("/home", "/home/living/measure/161.11.0"), ("", "/living/measure/161.11.0")]
)
def test_a_reading_is_published_retained_on_its_lagarto_topic(settings, heater, prefix, topic):
    settings.MQTT_HOME_PREFIX = prefix
    heater.location = "living"
    now = timezone.now()
    readings_record(
        readings=[ReadingInput(node=heater, endpoint=HEATER.endpoint("RoomTemp"), value=-3.25, at=now, rssi=-70.0)]
    )
    event = OutboxEvent.objects.get(type="heating.reading")
    assert event.topics == [topic]
    assert event.retain
    assert event.data["id"] == "161.11.0"
    assert event.data["name"] == "RoomTemp"
    assert event.data["value"] == -3.25
    assert event.data["location"] == "living"
    assert event.data["direction"] == "inp"
    assert event.data["type"] == "num"
    assert event.data["timestamp"].endswith("Z")
    assert Reading.objects.get().value == -3.25


def test_a_binary_endpoint_reads_on_or_off_as_lagarto_showed_it(heater):
    readings_record(
        readings=[ReadingInput(node=heater, endpoint=HEATER.endpoint("Heating"), value=True, at=timezone.now())]
    )
    assert OutboxEvent.objects.get(type="heating.reading").data["value"] == "on"


def dispatch(topic: str, payload: bytes, *, retain: bool = False) -> None:
    asyncio.run(mqtt.handlers.dispatch(mqtt.MqttMessage(topic=topic, payload=payload, qos=1, retain=retain)))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("payload", [b"1", b"on", b'{"value": 1}'])
def test_the_action_topic_handler_is_registered_and_queues_a_command(heater, payload):
    Node.objects.filter(pk=heater.pk).update(location="living")
    dispatch(f"{settings.MQTT_HOME_PREFIX}/living/action/161.12.0", payload)
    command = Command.objects.get()
    assert (command.endpoint, command.value, command.origin, command.state) == ("Heating", "01", "mqtt", "queued")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "topic",
    [
        "{prefix}/kitchen/action/161.12.0",  # the node is not in that location
        "{prefix}/living/action/161.11.0",  # an input
        "{prefix}/living/action/999.12.0",  # no such node
        "{prefix}/living/action/abc",
    ],
)
def test_action_messages_that_do_not_fit_queue_nothing(heater, topic):
    Node.objects.filter(pk=heater.pk).update(location="living")
    dispatch(topic.format(prefix=settings.MQTT_HOME_PREFIX), b"1")
    assert not Command.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_retained_action_is_ignored_so_a_reconnect_never_switches_a_heater_again(heater, caplog):
    Node.objects.filter(pk=heater.pk).update(location="living")
    dispatch(f"{settings.MQTT_HOME_PREFIX}/living/action/161.12.0", b"1", retain=True)
    assert not Command.objects.exists()
    assert "publish actions without retain" in caplog.text


def test_the_handler_reads_lagarto_payloads():
    assert mqtt_handlers.action_value(b" on ") == "on"
    assert mqtt_handlers.action_value(b"21.5") == 21.5
    assert mqtt_handlers.action_value(b'{"value": "off"}') == "off"


def test_old_readings_are_pruned_by_the_beat_task(settings, heater):
    settings.READINGS_RETENTION_DAYS = 30
    now = timezone.now()
    Reading.objects.create(node=heater, endpoint_id="161.11.0", name="RoomTemp", value=1, recorded_at=now)
    Reading.objects.create(
        node=heater, endpoint_id="161.11.0", name="RoomTemp", value=2, recorded_at=now - timedelta(days=31)
    )
    assert readings_prune.delay().get() == 1
    assert list(Reading.objects.values_list("value", flat=True)) == [1]
    assert readings_prune() == 0  # idempotent
    entry = settings.CELERY_BEAT_SCHEDULE["heating.readings_prune"]
    assert entry["task"] == readings_prune.name


@pytest.mark.django_db(transaction=True)
def test_a_browser_switches_hardware_over_the_action_topic_only_with_send_commands(settings, heater):
    """The action-topic rule (docs/architecture/heating-radio.md#mqtt-actions) end to end without a broker:
    /ws/push's publish reaches the handler only for a user granted the topic AND holding hub.send_commands; the
    handler then queues the command."""
    from django.contrib.auth.models import Group, Permission, User

    from messaging import push
    from messaging.models import TopicGrant
    from messaging.push.grants import PushRefused

    settings.MQTT_URL = None
    Node.objects.filter(pk=heater.pk).update(location="living")
    topic = f"{settings.MQTT_HOME_PREFIX}/living/action/161.12.0"
    tinkerers = Group.objects.create(name="tinkerers")
    TopicGrant.objects.create(group=tinkerers, topic_filter="#", may_subscribe=True, may_publish=True)
    user = User.objects.create_user("tim")
    user.groups.add(tinkerers)  # may publish anywhere, but may not switch hardware
    with pytest.raises(PushRefused, match="send_commands"):
        asyncio.run(push.browser_publish(user=user, topic=topic, payload=1))
    assert not Command.objects.exists()
    user.user_permissions.add(Permission.objects.get(codename="send_commands", content_type__app_label="hub"))
    user = User.objects.get(pk=user.pk)  # permissions are cached per instance
    asyncio.run(push.browser_publish(user=user, topic=topic, payload=1))
    command = Command.objects.get()
    assert (command.endpoint, command.value, command.origin, command.requested_by) == ("Heating", "01", "push", user)


@pytest.mark.parametrize("outcome", ["confirm", "fail"])
def test_a_command_changes_state_only_together_with_its_event(heater, monkeypatch, outcome):
    """A command's new state and its heating.command_* event commit together: if the event cannot be written, the
    state stays as it was (a watcher never sees a failed or confirmed command whose event is missing)."""
    import messaging
    from heating import services
    from heating.selectors import node_definition

    command = services.command_queue(node=heater, endpoint="Heating", value=1, definition=node_definition(heater))

    def event_not_written(*args, **kwargs):
        raise RuntimeError("the outbox refused the event")

    monkeypatch.setattr(messaging, "publish", event_not_written)  # as every heating.services module calls it
    finish = {
        "confirm": lambda: services.command_confirm(command=command, at=timezone.now()),
        "fail": lambda: services.command_fail(command=command, error="no answer", at=timezone.now()),
    }[outcome]
    with pytest.raises(RuntimeError):
        finish()
    command.refresh_from_db()
    assert command.state == "queued"
    assert not OutboxEvent.objects.filter(type__startswith="heating.command_").exists()
