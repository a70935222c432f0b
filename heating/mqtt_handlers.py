"""The action topic ``<MQTT_HOME_PREFIX>/<location>/action/<endpoint id>`` (lagarto's): queue a command row. And the
rooms' set topics ``<MQTT_HOME_PREFIX>/<room>/target|mode|preset/set`` (Home Assistant's commands): call the rooms'
services (:func:`room_set_received`; publishing there needs ``heating.control``).

Who may publish there is decided before a message reaches this handler: the broker's ACL (``deploy/mosquitto.conf``)
for MQTT clients, and for browsers ``messaging.push``'s grants together with the rule registered in
``HeatingConfig.ready`` (:data:`ACTION_TOPICS` needs :data:`SEND_COMMANDS`). The handler only queues; the serial
worker sends. A browser's publish carries its author (``MqttMessage.published_by``), so the command names them.
"""

from __future__ import annotations

import json
import logging
import math

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


# --- the rooms' set topics ------------------------------------------------------------------------------------

#: Publishing on a room's set topics needs this (besides a publish grant, for browsers).
CONTROL = "heating.control"


def room_set_received(message: MqttMessage) -> None:
    """``<prefix>/<room>/target/set`` (a number, °C), ``/mode/set`` (off, heat, auto) or ``/preset/set`` (boost,
    away, none): Home Assistant's commands, or anyone's the broker or ``/ws/push`` let through. Anything else is
    logged and ignored."""
    from heating import room_topics
    from heating.models import Room
    from heating.services import RoomInputError, room_mode_set, room_preset_set, room_target_set

    if message.retain:
        logger.warning("retained command on %s ignored: publish commands without retain", message.topic)
        return
    prefix = settings.MQTT_HOME_PREFIX
    rest = message.topic[len(prefix) :].split("/") if message.topic.startswith(prefix + "/") else []
    # ["", room, "target" | "mode" | "preset", "set"]
    if len(rest) != 4 or rest[3] != "set" or rest[2] not in ("target", "mode", "preset"):
        logger.warning("set topic %s not understood: expected %s/<room>/target|mode|preset/set", message.topic, prefix)
        return
    slug, what = rest[1], rest[2]
    room = Room.objects.filter(slug=slug).first()
    if room is None:
        logger.warning("%s ignored: there is no room %r", message.topic, slug)
        return
    try:
        text = message.payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        logger.warning("%s ignored: the payload is not UTF-8 text", message.topic)
        return
    author = None
    if message.published_by is not None:
        author = get_user_model().objects.filter(pk=message.published_by, is_active=True).first()
    origin = ORIGIN_MQTT if message.published_by is None else ORIGIN_PUSH
    try:
        if what == "target":
            target = _number(text)
            if target is None:
                logger.warning("%s ignored: %r is not a temperature (a number of °C)", message.topic, text[:40])
                return
            room_target_set(room=room, target=target, by=author, origin=origin)
        elif what == "mode":
            mode = room_topics.MODES_FROM_HA.get(text)
            if mode is None:
                logger.warning(
                    "%s ignored: %r is not a mode (%s)", message.topic, text[:40], ", ".join(room_topics.MODES_FROM_HA)
                )
                return
            room_mode_set(room=room, mode=mode, by=author, origin=origin)
        else:
            presets = (*room_topics.HA_PRESETS, room_topics.NO_PRESET)
            if text not in presets:
                logger.warning("%s ignored: %r is not a preset (%s)", message.topic, text[:40], ", ".join(presets))
                return
            room_preset_set(room=room, preset=text, by=author, origin=origin)
    except RoomInputError as exc:
        logger.warning("%s refused: %s", message.topic, exc)
        return
    logger.info("%s: room %s set to %r", message.topic, slug, text[:40])


def _number(text: str) -> float | None:
    """A finite number from ``21.5`` (Home Assistant's form) or JSON ``{"value": 21.5}``; None for anything else."""
    value = action_value(text.encode())
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
