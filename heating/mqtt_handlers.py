"""The action topic ``<MQTT_HOME_PREFIX>/<location>/action/<endpoint id>`` (lagarto's): queue a command row.

Who may publish there is decided before a message reaches this handler: the broker's ACL (``deploy/mosquitto.conf``)
for MQTT clients, and for browsers ``messaging.push``'s grants together with the rule registered in
``HeatingConfig.ready`` (:data:`ACTION_TOPICS` needs :data:`SEND_COMMANDS`). The handler only queues; the serial
worker sends. A browser's publish carries its author (``MqttMessage.published_by``), so the command names them.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.contrib.auth import get_user_model

from heating.models import Node
from heating.selectors import node_definition
from heating.services import CommandRefused, command_queue
from messaging.mqtt import MqttMessage

logger = logging.getLogger(__name__)

#: lagarto's action topics under the house prefix (``{home}`` is ``MQTT_HOME_PREFIX``), and anything below them.
ACTION_TOPICS = "{home}/+/action/#"
SEND_COMMANDS = "hub.send_commands"
#: ``Command.origin`` of an action from the broker, and of one a signed-in user published through ``/ws/push``.
ORIGIN_MQTT = "mqtt"
ORIGIN_PUSH = "push"


def action_value(payload: bytes):
    """lagarto sends the bare value (``1``, ``on``, ``21.5``); JSON ``{"value": …}`` is taken too."""
    text = payload.decode("utf-8").strip()
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, dict):
        return value.get("value")
    return value


def action_received(message: MqttMessage) -> None:
    if message.retain:
        # A retained action would be replayed to the bridge at every (re)connect and switch the heater again,
        # long after whoever sent it meant it: actions count only when published without the retain flag.
        # (A browser's publish reaches here once, as it was sent, with retain False whatever it asked to keep.)
        logger.warning("retained action on %s ignored: publish actions without retain", message.topic)
        return
    prefix = settings.MQTT_HOME_PREFIX
    rest = message.topic[len(prefix) :].split("/") if message.topic.startswith(prefix + "/") else []
    # ["", location, "action", endpoint id]
    if len(rest) != 4 or rest[2] != "action":
        logger.warning("action topic %s not understood: expected %s/<location>/action/<id>", message.topic, prefix)
        return
    location, endpoint_id = rest[1], rest[3]
    try:
        address = int(endpoint_id.split(".")[0])
    except ValueError:
        logger.warning(
            "action on %s: %r is not an endpoint id <address>.<register>.<index>", message.topic, endpoint_id
        )
        return
    node = Node.objects.filter(address=address).first()
    if node is None or node.place != location:
        logger.warning("action on %s: no node %s in location %r", message.topic, endpoint_id, location)
        return
    author = None
    if message.published_by is not None:
        author = get_user_model().objects.filter(pk=message.published_by, is_active=True).first()
    try:
        value = action_value(message.payload)
        command = command_queue(
            node=node,
            endpoint=endpoint_id,
            value=value,
            definition=node_definition(node),
            requested_by=author,
            origin=ORIGIN_MQTT if message.published_by is None else ORIGIN_PUSH,
        )
    except (CommandRefused, UnicodeDecodeError) as exc:
        logger.warning("action on %s refused: %s", message.topic, exc)
        return
    logger.info("action on %s queued command %s", message.topic, command.pk)
