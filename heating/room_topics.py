"""A room on MQTT: its retained state topics under ``MQTT_HOME_PREFIX`` and its Home Assistant discovery config.

State, retained, each a bare value (what Home Assistant's MQTT climate reads without templates)::

    <prefix>/<room>/temperature   21.64     the room's temperature source, °C; None once the sensor is stale
    <prefix>/<room>/target        21.5      the target that applies now; None while the room is off
    <prefix>/<room>/mode          auto      off | heat (the room's manual mode) | auto (its schedule)
    <prefix>/<room>/heating       heating   heating (a heater reports on) | idle | off (mode off, heaters off)
    <prefix>/<room>/preset        none      boost | away (the house is away) | none

Commands (handled in :mod:`heating.mqtt_handlers`): ``<prefix>/<room>/target/set``, ``/mode/set`` and
``/preset/set``. Discovery: ``homeassistant/climate/<HUB_ID>_<room>/config`` (retained), and the hub's
availability on ``hub/<HUB_ID>/availability`` (said by the MQTT bridge, see :mod:`messaging.mqtt`).

Changes go out as events (``heating.room_state`` for a state topic, ``heating.room_discovery`` for a config),
published in the caller's transaction and taken to the broker by the bridge; an empty payload clears a retained
topic. After every (re)connect the bridge also republishes every room's config and state (:func:`broker_connected`),
so a broker that lost its retained messages is whole again. What time alone changes (a schedule block begins, a boost
or override ends, a sensor goes stale) the thermostat's tick publishes through :class:`SetpointTopics`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

import messaging
from heating.models import House, Mode, Reading, Room, RoomHeater

logger = logging.getLogger(__name__)

SOURCE = "heating"
STATE_EVENT = "heating.room_state"
DISCOVERY_EVENT = "heating.room_discovery"

#: The room's modes as Home Assistant names them, and back.
HA_MODES = {Mode.OFF: "off", Mode.MANUAL: "heat", Mode.SCHEDULE: "auto"}
MODES_FROM_HA = {ha: mode for mode, ha in HA_MODES.items()}
#: Home Assistant's preset list (it adds "none" itself and refuses a config that lists it).
HA_PRESETS = ("boost", "away")
NO_PRESET = "none"
#: What Home Assistant's climate reads as "no value" on a temperature topic (an empty payload it ignores).
NO_VALUE = "None"
#: The target's step in Home Assistant's card, and the precision it shows temperatures with.
TARGET_STEP = 0.5
PRECISION = 0.1
#: The state topics' last levels, in the order they are published.
STATE_LEVELS = ("temperature", "target", "mode", "heating", "preset")
#: The set topics under the house prefix (``{home}`` is ``MQTT_HOME_PREFIX``); publishing there needs
#: ``heating.control`` (registered in ``HeatingConfig.ready``).
SET_TOPICS = ("{home}/+/target/set", "{home}/+/mode/set", "{home}/+/preset/set")
DISCOVERY_PREFIX = "homeassistant"
#: ``changed`` entries of ``heating.room_changed`` after which a room's discovery config is sent again.
DISCOVERY_CHANGES = frozenset({"created", "name", "slug", "frost", "maximum", "presets"})


# --- names ---------------------------------------------------------------------------------------------------


def room_topic(slug: str, level: str) -> str:
    """``<prefix>/<room>/<level>`` (``level`` may itself have levels: ``target/set``)."""
    return f"{settings.MQTT_HOME_PREFIX}/{slug}/{level}"


def hub_id() -> str:
    """``HUB_ID``, else the random id the house row keeps (see ``heating.selectors.house``)."""
    from heating.selectors import house

    return house().hub_id


def availability_topic(hub: str | None = None) -> str:
    """``hub/<HUB_ID>/availability``: ``online`` while the hub's MQTT bridge is connected, else ``offline``."""
    return f"hub/{hub or hub_id()}/availability"


def discovery_topic(slug: str, hub: str | None = None) -> str:
    return f"{DISCOVERY_PREFIX}/climate/{hub or hub_id()}_{slug}/config"


# --- payloads ------------------------------------------------------------------------------------------------


def temperature_payload(value: Any) -> float | str:
    """A temperature as a bare number (two decimals: the sensors' resolution), or ``None`` for no number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return NO_VALUE
    return round(float(value), 2)


def ha_preset(state: dict) -> str:
    """boost while boosting; away while the house is away and the room follows it; else none."""
    return _preset(boost=bool(state.get("boost")), source=state.get("source"))


def _preset(*, boost: bool, source: str | None) -> str:
    if boost:
        return "boost"
    if source == "away":
        return "away"
    return NO_PRESET


def ha_action(mode: str, heating: bool | None) -> str:
    """What Home Assistant's ``action_topic`` takes: heating, idle or off (mode off with its heaters off)."""
    if heating:
        return "heating"
    return "off" if mode == Mode.OFF else "idle"


def state_payloads(state: dict) -> dict[str, Any]:
    """The state topics' payloads (by last level) from ``heating.selectors.room_state``; the temperature only when
    the room has one."""
    payloads: dict[str, Any] = {}
    if state.get("temperature") is not None:
        payloads["temperature"] = temperature_payload(state["temperature"])
    payloads["target"] = temperature_payload(state.get("target"))
    payloads["mode"] = HA_MODES.get(state["mode"], "off")
    payloads["heating"] = ha_action(state["mode"], state.get("heating"))
    payloads["preset"] = ha_preset(state)
    return payloads


def discovery_config(room: Room, *, hub: str, the_house: House | None = None) -> dict:
    """The room as a Home Assistant MQTT climate entity (keys checked against Home Assistant's documented list in
    ``tests/heating/ha_mqtt_climate_keys.json``)."""
    from heating.selectors import room_presets

    presets = room_presets(room, the_house)
    from heating.services import TARGET_BELOW_MAXIMUM

    unique_id = f"{hub}_{room.slug}"
    device = {
        "identifiers": [unique_id],
        "name": room.name,
        "manufacturer": "Home hub",
        "model": "Room thermostat",
        "suggested_area": room.name,
    }
    if getattr(settings, "HUB_PUBLIC_URL", ""):
        device["configuration_url"] = f"{settings.HUB_PUBLIC_URL}/"
    return {
        # The entity takes its device's name (the room's): Home Assistant's naming for a device's main entity.
        "name": None,
        "unique_id": unique_id,
        "device": device,
        "availability_topic": availability_topic(hub),
        "payload_available": "online",
        "payload_not_available": "offline",
        "current_temperature_topic": room_topic(room.slug, "temperature"),
        "temperature_state_topic": room_topic(room.slug, "target"),
        "temperature_command_topic": room_topic(room.slug, "target/set"),
        "mode_state_topic": room_topic(room.slug, "mode"),
        "mode_command_topic": room_topic(room.slug, "mode/set"),
        "modes": list(HA_MODES.values()),
        "preset_mode_state_topic": room_topic(room.slug, "preset"),
        "preset_mode_command_topic": room_topic(room.slug, "preset/set"),
        "preset_modes": list(HA_PRESETS),
        "action_topic": room_topic(room.slug, "heating"),
        "min_temp": presets.frost,
        "max_temp": presets.maximum - TARGET_BELOW_MAXIMUM,
        "temp_step": TARGET_STEP,
        "precision": PRECISION,
        "temperature_unit": "C",
        "qos": 1,
        # Home Assistant's commands are requests of the moment: never retained (a retained one is ignored here).
        "retain": False,
    }


# --- events --------------------------------------------------------------------------------------------------


def _state_event(slug: str, level: str, payload: Any, *, at: datetime) -> messaging.Event:
    return messaging.new_event(
        STATE_EVENT, payload, source=SOURCE, topics=[room_topic(slug, level)], retain=True, occurred_at=at
    )


def _discovery_event(topic: str, config: dict | str, *, at: datetime) -> messaging.Event:
    return messaging.new_event(DISCOVERY_EVENT, config, source=SOURCE, topics=[topic], retain=True, occurred_at=at)


def room_changed_events(
    room: Room, *, at: datetime, changed: Iterable[str], previous_slug: str | None = None
) -> list[messaging.Event]:
    """What ``heating.services._room_changed`` publishes besides ``heating.room_changed``: the room's state topics
    and, when created, renamed or its limits changed, its discovery config; a new id clears the old id's topics."""
    from heating.selectors import house, room_state

    the_house = house()
    changed = set(changed)
    state = room_state(room, at=at, the_house=the_house)
    events: list[messaging.Event] = []
    moved = previous_slug is not None and previous_slug != room.slug
    if moved:
        events += room_removed_events(previous_slug, at=at, hub=the_house.hub_id)
    if moved or changed & DISCOVERY_CHANGES:
        events.append(
            _discovery_event(
                discovery_topic(room.slug, the_house.hub_id),
                discovery_config(room, hub=the_house.hub_id, the_house=the_house),
                at=at,
            )
        )
    events += [_state_event(room.slug, level, payload, at=at) for level, payload in state_payloads(state).items()]
    return events


def room_removed_events(slug: str, *, at: datetime, hub: str | None = None) -> list[messaging.Event]:
    """Empty retained payloads on a room's state topics and its discovery config: gone from the broker and from
    Home Assistant (a deleted room, or the old id of a renamed one)."""
    events = [_state_event(slug, level, "", at=at) for level in STATE_LEVELS]
    events.append(_discovery_event(discovery_topic(slug, hub), "", at=at))
    return events


def readings_events(rows: Sequence[Reading]) -> list[messaging.Event]:
    """For a stored batch of readings: the temperature topic of each room whose source reported, and the heating
    topic of each room one of whose heaters' relays reported (its other heaters as they last reported)."""
    if not rows:
        return []
    from heating.selectors import heater_reported_on

    node_ids = {row.node_id for row in rows}
    newest: dict[tuple[int, str], Reading] = {}
    for row in rows:
        key = (row.node_id, row.name)
        if key not in newest or row.recorded_at >= newest[key].recorded_at:
            newest[key] = row
    events: list[messaging.Event] = []
    for room in Room.objects.filter(temperature_node_id__in=node_ids).only(
        "slug", "temperature_node_id", "temperature_endpoint"
    ):
        row = newest.get((room.temperature_node_id, room.temperature_endpoint))
        if row is not None:
            events.append(_state_event(room.slug, "temperature", temperature_payload(row.value), at=row.recorded_at))
    heated = {
        heater.room_id: heater
        for heater in RoomHeater.objects.filter(node_id__in=node_ids).select_related("room")
        if (heater.node_id, heater.endpoint) in newest
    }
    for heater in heated.values():
        room = heater.room
        reported = [heater_reported_on(each) for each in room.heaters.select_related("node")]
        at = newest[(heater.node_id, heater.endpoint)].recorded_at
        events.append(_state_event(room.slug, "heating", ha_action(room.mode, any(reported)), at=at))
    return events


class SetpointTopics:
    """The target and preset topics again when time alone changed them (a schedule block began, an override or a
    boost ended), which no service call announces: the thermostat's tick hands each room's resolved setpoint to
    :meth:`events` and publishes what it returns. The first setpoint seen of a room is published too (the process
    may have started after a change)."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[str, Any, str]] = {}
        self._stale: dict[int, bool] = {}

    def events(self, room: Room, point, *, at: datetime) -> list[messaging.Event]:
        """``point``: ``heating.selectors.room_setpoint``'s :class:`~heating.thermostat.setpoint.Setpoint`."""
        now = (room.slug, temperature_payload(point.target), _preset(boost=point.boost, source=point.source))
        last = self._last.get(room.pk)
        self._last[room.pk] = now
        if last == now:
            return []
        moved = last is None or last[0] != now[0]
        events = []
        if moved or last[1] != now[1]:
            events.append(_state_event(room.slug, "target", now[1], at=at))
        if moved or last[2] != now[2]:
            events.append(_state_event(room.slug, "preset", now[2], at=at))
        return events

    def stale_events(self, room: Room, *, stale: bool, at: datetime) -> list[messaging.Event]:
        """``None`` on the temperature topic when the room's sensor goes stale (the thermostat's judgement, the same
        as its ``sensor_stale`` alert), so Home Assistant shows no temperature rather than an old one as current; the
        next reading publishes a temperature again."""
        was = self._stale.get(room.pk)
        self._stale[room.pk] = stale
        if stale and was is not True:
            return [_state_event(room.slug, "temperature", NO_VALUE, at=at)]
        return []


# --- the bridge's greeting ------------------------------------------------------------------------------------


def broker_connected(client) -> None:
    """``messaging.mqtt.on_connect`` hook: every room's discovery config and state topics, retained, straight from
    the database (a broker without persistence forgets retained messages when it restarts)."""
    from heating.selectors import house, room_state, rooms_with_state_relations

    the_house = house()
    now = timezone.now()
    count = 0
    for room in rooms_with_state_relations():
        client.publish(
            discovery_topic(room.slug, the_house.hub_id),
            discovery_config(room, hub=the_house.hub_id, the_house=the_house),
            qos=1,
            retain=True,
        )
        for level, payload in state_payloads(room_state(room, at=now, the_house=the_house)).items():
            client.publish(room_topic(room.slug, level), payload, qos=1, retain=True)
        count += 1
    logger.info("MQTT: Home Assistant discovery and state of %d room(s) published", count)
