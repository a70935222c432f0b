"""Reads of the heating app's radio half: device definitions, nodes with their latest values, readings, the link."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from heating.models import Command, CommandState, House, Node, Reading, Room, RoomHeater
from heating.swap import DefinitionLibrary, DeviceDefinition
from heating.swap.definitions import SHIPPED_DEVICES_DIR, folder_state, unit_symbol
from heating.swap.registers import system_state_name
from heating.thermostat import schedule, setpoint
from heating.thermostat.schedule import Block
from heating.thermostat.setpoint import Presets, Setpoint
from hub.roles import STAFF_GROUP
from hub.selectors import heartbeat_get
from hub.timefmt import format_utc

logger = logging.getLogger(__name__)

#: How often :func:`definitions` looks whether the operator's folder changed (a stat of each file in it).
DEFINITIONS_RECHECK_SECONDS = 5.0


@dataclass
class _LoadedDefinitions:
    folder_state: tuple
    checked_at: float
    library: DefinitionLibrary


_loaded: dict[str, _LoadedDefinitions] = {}
_loading = threading.Lock()


def definitions() -> DefinitionLibrary:
    """The shipped device definitions with ``SWAP_DEVICES_DIR``'s merged over them.

    Loaded once and reloaded when a file in the operator's folder is added, edited or removed (looked at every
    ``DEFINITIONS_RECHECK_SECONDS`` at most), so a dropped-in device needs no restart. Files that cannot be read
    are logged by name and listed in the library's ``errors`` (and in ``/healthz``).
    """
    folder = settings.SWAP_DEVICES_DIR
    now = time.monotonic()
    loaded = _loaded.get(folder)
    if loaded is not None and now - loaded.checked_at < DEFINITIONS_RECHECK_SECONDS:
        return loaded.library
    with _loading:
        state = folder_state(folder) if folder else ()
        loaded = _loaded.get(folder)
        if loaded is None or loaded.folder_state != state:
            library = DefinitionLibrary.load(SHIPPED_DEVICES_DIR, *([folder] if folder else []))
            for error in library.errors:
                logger.warning("device definition skipped: %s", error)
            loaded = _loaded[folder] = _LoadedDefinitions(state, now, library)
        loaded.checked_at = now
        return loaded.library


def node_definition(node: Node, library: DefinitionLibrary | None = None) -> DeviceDefinition | None:
    """The device definition of ``node``'s product (from ``library``, default :func:`definitions`); ``None`` while
    its product is not known or no definition describes it."""
    if node.manufacturer_id is None or node.product_id is None:
        return None
    return (definitions() if library is None else library).get(node.manufacturer_id, node.product_id)


def latest_readings(node: Node) -> list[Reading]:
    """The newest reading of each endpoint of ``node``, in endpoint id order."""
    definition = node_definition(node)
    if definition is not None:
        # One indexed lookup per endpoint (endpoint_id, -recorded_at): right however rarely an endpoint reports.
        newest = (
            Reading.objects.filter(node=node, endpoint_id=endpoint.lagarto_id(node.address))
            .order_by("-recorded_at", "-id")
            .first()
            for endpoint in definition.endpoints
        )
        latest = {reading.endpoint_id: reading for reading in newest if reading is not None}
    else:
        latest = {}
        # No definition (any more): the endpoints are whatever its recent readings name.
        for reading in node.readings.order_by("-recorded_at", "-id")[:500]:
            latest.setdefault(reading.endpoint_id, reading)
    return sorted(latest.values(), key=lambda reading: [int(part) for part in reading.endpoint_id.split(".")])


def nodes_matching(user, q: str, limit: int) -> list[dict]:
    """``/v1/search`` hits (``heating:read``): nodes whose name or location contains ``q``, or whose address it is
    (the id in hex as the API writes it, ``0x``-prefixed, or decimal as in lagarto's endpoint ids)."""
    text = q.strip().lower()
    by_address = Q(key=text.removeprefix("0x"))
    # ASCII digits only: str.isdigit() also accepts "²" or "①", which int() refuses; and nine digits at most,
    # so a 5,000-digit query never reaches int() (it refuses those too) nor overflows the column.
    if text.isascii() and text.isdigit() and len(text) <= 9:
        by_address |= Q(address=int(text))
    matches = Node.objects.filter(Q(name__icontains=text) | Q(location__icontains=text) | by_address)
    return [
        {"id": node.key, "title": f"{node} ({node.place})", "url": f"/v1/nodes/{node.key}"} for node in matches[:limit]
    ]


def readings_filter(
    *,
    node: str | None = None,
    endpoint: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Reading]:
    readings = Reading.objects.select_related("node")
    if node:
        readings = readings.filter(node__key=node)
    if endpoint:
        readings = readings.filter(endpoint_id=endpoint) if "." in endpoint else readings.filter(name=endpoint)
    if since:
        readings = readings.filter(recorded_at__gte=since)
    if until:
        readings = readings.filter(recorded_at__lt=until)
    return readings


def commands_pending() -> QuerySet[Command]:
    """Commands the serial worker still has to send (oldest first)."""
    return Command.objects.filter(state=CommandState.QUEUED).select_related("node").order_by("requested_at", "id")


def link_state() -> dict:
    """The modem link as the serial worker last reported it (any process reads it from the heartbeat row)."""
    from heating.services import WORKER_HEARTBEAT

    beat = heartbeat_get(WORKER_HEARTBEAT)
    if beat is None:
        return {"up": False, "detail": "the serial worker has not reported yet", "beat_at": None}
    details = beat.details or {}
    return {
        "up": bool(details.get("link_up")),
        "detail": details.get("detail", ""),
        "port": details.get("port", ""),
        "decode_errors": details.get("decode_errors", 0),
        "modem": details.get("modem"),
        "beat_at": beat.beat_at,
        "interval_seconds": beat.interval_seconds,
    }


def _endpoint_label(definition: DeviceDefinition | None, name: str) -> str:
    """The endpoint's name for people (its definition's ``label``), else the register's name."""
    if definition is None:
        return name
    try:
        return definition.endpoint(name).human_name
    except KeyError:
        return name


def heating_overview(*, user=None) -> dict:
    """What the Devices page shows, JSON-ready: the modem link and each node with its latest values, signal,
    last-heard time, state and its last command; ``can_switch`` when the user may send commands. A relay that
    heats a room is listed under ``heats`` (its room's thermostat switches it), not among the ``switches``."""

    def when(value):
        return format_utc(value) if value else None

    link = link_state()
    nodes = []
    heaters: dict[int, list[RoomHeater]] = {}
    for heater in RoomHeater.objects.select_related("room"):
        heaters.setdefault(heater.node_id, []).append(heater)
    for node in Node.objects.all():
        definition = node_definition(node)
        outputs = {e.name: e for e in definition.endpoints if e.writable and e.type == "bin"} if definition else {}
        heats = heaters.get(node.pk, [])
        thermostats = {heater.endpoint for heater in heats}
        last_command = node.commands.order_by("-requested_at", "-id").first()
        nodes.append(
            {
                "id": node.key,
                "name": str(node),
                "location": node.place,
                "device": (
                    f"unknown product {node.manufacturer_id}/{node.product_id}"
                    if node.unknown_product
                    else (definition.product if definition else "not identified yet")
                ),
                "reachable": node.reachable,
                "state": system_state_name(node.system_state),
                "last_heard": when(node.last_heard),
                "rssi": node.last_rssi,
                "lqi": node.last_lqi,
                "values": [
                    {
                        "id": reading.endpoint_id,
                        "name": reading.name,
                        "label": _endpoint_label(definition, reading.name),
                        "value": reading.value,
                        "unit": unit_symbol(reading.unit),
                        "at": when(reading.recorded_at),
                        "switch": reading.name in outputs,
                    }
                    for reading in latest_readings(node)
                ],
                "switches": sorted(name for name in outputs if name not in thermostats),
                "heats": [
                    {
                        "endpoint": heater.endpoint,
                        "label": _endpoint_label(definition, heater.endpoint),
                        "room": heater.room.slug,
                        "room_name": heater.room.name,
                    }
                    for heater in heats
                ],
                "last_command": (
                    {
                        "endpoint": last_command.endpoint,
                        "value": last_command.requested_value,
                        "state": last_command.state,
                        "error": last_command.error,
                    }
                    if last_command
                    else None
                ),
            }
        )
    return {
        "link": {"up": link["up"], "detail": link["detail"], "at": when(link["beat_at"])},
        "nodes": nodes,
        "can_switch": bool(user is not None and user.has_perm("hub.send_commands")),
    }


# --- rooms -----------------------------------------------------------------------------------------------------


def house() -> House:
    """The house's settings row, made on first use. Its ``hub_id`` is ``HUB_ID`` when that is set; otherwise a
    random id made once and kept (Home Assistant's entities are named by it, so it must not change)."""
    the_house, _ = House.objects.get_or_create(pk=1)
    if not the_house.hub_id:
        House.objects.filter(pk=1, hub_id="").update(hub_id=settings.HUB_ID or f"hub{secrets.token_hex(4)}")
        the_house.refresh_from_db(fields=["hub_id"])
    if settings.HUB_ID:
        the_house.hub_id = settings.HUB_ID
    return the_house


def house_zone() -> ZoneInfo:
    """The house's zone (``HUB_TIME_ZONE``): schedules, boosts and "next change" are in its wall-clock time."""
    return ZoneInfo(settings.TIME_ZONE)


def room_presets(room: Room, the_house: House | None = None) -> Presets:
    """What comfort, eco, away, frost and maximum mean in ``room``: its own values, else the house's."""
    the_house = the_house or house()

    def pick(own: float | None, house_value: float) -> float:
        return house_value if own is None else own

    return Presets(
        comfort=pick(room.comfort, the_house.comfort),
        eco=pick(room.eco, the_house.eco),
        away=pick(room.away_temperature, the_house.away_temperature),
        frost=pick(room.frost, the_house.frost),
        maximum=pick(room.maximum, the_house.maximum),
    )


def room_blocks(room: Room) -> list[Block]:
    """The room's week as the schedule module's blocks (in weekday and start order)."""
    return [
        Block(
            weekday=row.weekday,
            start=row.start_minute,
            end=row.end_minute,
            preset=row.preset or None,
            temperature=None if row.preset else row.temperature,
        )
        for row in sorted(room.schedule_blocks.all(), key=lambda row: (row.weekday, row.start_minute))
    ]


def room_setpoint(room: Room, *, at: datetime, the_house: House | None = None) -> Setpoint:
    """The target that applies to ``room`` at ``at``, and why (boost, away, off, manual, override, schedule)."""
    the_house = the_house or house()
    return room_setpoint_with(
        room,
        at=at,
        house_away=the_house.away,
        blocks=room_blocks(room),
        presets=room_presets(room, the_house),
        zone=house_zone(),
    )


def room_setpoint_with(
    room: Room, *, at: datetime, house_away: bool, blocks: list[Block], presets: Presets, zone: ZoneInfo
) -> Setpoint:
    """:func:`room_setpoint` from the room's blocks and presets and the house's zone already worked out (the
    thermostat converts them once per load, not for every decision)."""
    return setpoint.resolve(
        mode=room.mode,
        manual_target=room.manual_target,
        override_target=room.override_target,
        override_until=room.override_until,
        boost_until=room.boost_until,
        house_away=house_away,
        blocks=blocks,
        presets=presets,
        now=at,
        zone=zone,
    )


def temperature_endpoints(definition: DeviceDefinition | None) -> list[str]:
    """A device's endpoints a room's temperature can come from: numeric inputs in °C."""
    if definition is None:
        return []
    return [
        endpoint.name
        for endpoint in definition.endpoints
        if endpoint.type == "num" and not endpoint.writable and endpoint.unit is not None and endpoint.unit.name == "C"
    ]


@dataclass(frozen=True)
class HeardEndpoint:
    """A node's endpoint a room can use (its temperature source or a heater's relay), as staff choose it."""

    node: Node
    endpoint: str
    #: "Living room heater (a1): Room temperature (RoomTemp)": the node as people know it, never only an address.
    label: str
    #: The room whose heater this relay is now (another room cannot have it); None when it is free.
    heats: Room | None = None

    @property
    def value(self) -> str:
        """The form's value of this choice: ``<node id>:<endpoint>``."""
        return f"{self.node.pk}:{self.endpoint}"


def _heard_nodes(room: Room | None) -> list[Node]:
    """Nodes the radio has heard, plus any node ``room`` already uses (so its form shows what it has)."""
    heard = Q(last_heard__isnull=False)
    if room is not None and room.pk is not None:
        heard |= Q(temperature_of=room) | Q(heater_of__room=room)
    return list(Node.objects.filter(heard).distinct().order_by("name", "address"))


def _heard_label(node: Node, definition: DeviceDefinition | None, endpoint: str) -> str:
    human = _endpoint_label(definition, endpoint)
    what = human if human == endpoint else f"{human} ({endpoint})"
    return f"{node} ({node.key}): {what}"


def heard_temperature_sources(*, room: Room | None = None) -> list[HeardEndpoint]:
    """Every temperature endpoint of the nodes heard: what a room's temperature source is chosen from."""
    return [
        HeardEndpoint(node=node, endpoint=name, label=_heard_label(node, definition, name))
        for node in _heard_nodes(room)
        for definition in [node_definition(node)]
        for name in temperature_endpoints(definition)
    ]


def heard_relays(*, room: Room | None = None) -> list[HeardEndpoint]:
    """Every relay endpoint of the nodes heard (what a heater is chosen from), each with the room it heats now."""
    from heating.services import relay_endpoints

    nodes = _heard_nodes(room)
    heating = {
        (heater.node_id, heater.endpoint): heater.room
        for heater in RoomHeater.objects.filter(node__in=nodes).select_related("room")
    }
    return [
        HeardEndpoint(
            node=node,
            endpoint=name,
            label=_heard_label(node, definition, name),
            heats=heating.get((node.pk, name)),
        )
        for node in nodes
        for definition in [node_definition(node)]
        for name in relay_endpoints(definition)
    ]


def sensor_stale_seconds() -> float:
    """A temperature older than this is stale (the thermostat switches the room's heaters off)."""
    return float(settings.HEATING_SENSOR_STALE_SECONDS)


def room_temperature(room: Room) -> Reading | None:
    """The newest reading of the room's temperature endpoint."""
    if room.temperature_node_id is None or not room.temperature_endpoint:
        return None
    return (
        Reading.objects.filter(node_id=room.temperature_node_id, name=room.temperature_endpoint)
        .order_by("-recorded_at", "-id")
        .first()
    )


def heater_reported_on(heater: RoomHeater) -> bool | None:
    """What the heater's relay last reported: its newest reading, else the register the node last sent; None when
    neither is known."""
    reading = (
        Reading.objects.filter(node_id=heater.node_id, name=heater.endpoint).order_by("-recorded_at", "-id").first()
    )
    if reading is not None:
        return _relay_value(reading.value)
    node = heater.node
    definition = node_definition(node)
    if definition is None:
        return None
    try:
        endpoint = definition.endpoint(heater.endpoint)
    except KeyError:
        return None
    raw = node.registers.get(str(endpoint.register_id))
    if not raw:
        return None
    try:
        return _relay_value(definition.decode(endpoint.register_id, bytes.fromhex(raw)).get(heater.endpoint))
    except ValueError:
        return None


def _relay_value(value) -> bool | None:
    if isinstance(value, str):
        return {"on": True, "off": False, "1": True, "0": False, "true": True, "false": False}.get(value.lower())
    if isinstance(value, bool | int | float):
        return bool(value)
    return None


def _next_change_text(room: Room, point: Setpoint, *, at: datetime, the_house: House) -> str | None:
    """``"19.5 °C at 17:00"``: what the room's target becomes next and when, in the house's wall-clock time."""
    zone = house_zone()
    presets = room_presets(room, the_house)
    blocks = room_blocks(room)
    if point.source == "schedule":
        change = schedule.next_change(blocks, at, zone)
        if change is None:
            return None
        when, block = change
        return schedule.format_next_change(when, presets.of(block), now=at, zone=zone)
    if point.source == "override" and point.until is not None:
        after = presets.of(schedule.block_at(blocks, point.until, zone))
        return schedule.format_next_change(point.until, after, now=at, zone=zone)
    if point.source == "boost" and point.until is not None and point.target is not None:
        return schedule.format_next_change(point.until, point.target, now=at, zone=zone)
    return None


def _when(moment: datetime | None) -> str | None:
    return format_utc(moment) if moment else None


def room_state(room: Room, *, at: datetime, the_house: House | None = None) -> dict:
    """What a room tile, the API and the MQTT state topics show, JSON-ready (times in UTC, ``next_change`` in the
    house's zone): temperature and whether it is stale, the target that applies and why, whether a heater reports
    on, the thermostat's last reason, the next change and the open alerts."""
    the_house = the_house or house()
    reading = room_temperature(room)
    temperature = reading.value if reading is not None and isinstance(reading.value, int | float) else None
    stale = reading is None or (at - reading.recorded_at).total_seconds() > sensor_stale_seconds()
    point = room_setpoint(room, at=at, the_house=the_house)
    reported = [heater_reported_on(heater) for heater in room.heaters.all()]
    decision = room.decisions.order_by("-at", "-id").first()
    alerts = room.alerts.filter(cleared_at__isnull=True).order_by("-raised_at", "-id")
    return {
        "id": room.slug,
        "name": room.name,
        "temperature": None if temperature is None else float(temperature),
        "temperature_at": _when(reading.recorded_at) if reading is not None else None,
        "stale": stale,
        "target": point.target,
        "mode": room.mode,
        "source": point.source,
        "until": _when(point.until),
        "boost": point.boost,
        "boost_until": _when(room.boost_until if point.boost else None),
        "away": the_house.away,
        "heating": True if any(reported) else (False if reported and None not in reported else None),
        "heaters": len(reported),
        "decision": decision.reason if decision is not None else None,
        "decision_at": _when(decision.at) if decision is not None else None,
        "next_change": _next_change_text(room, point, at=at, the_house=the_house),
        "alerts": [
            {
                "id": alert.pk,
                "kind": alert.kind,
                "title": alert.get_kind_display(),
                "message": alert.message,
                "raised_at": _when(alert.raised_at),
                "acknowledged": alert.acknowledged_at is not None,
            }
            for alert in alerts
        ],
    }


def rooms_with_state_relations() -> QuerySet[Room]:
    return Room.objects.select_related("temperature_node").prefetch_related("heaters__node", "schedule_blocks")


#: How many staff members the "who can give you control" line names.
CONTROL_HINT_NAMES = 3


def control_hint(user) -> str | None:
    """For a user without ``heating.control``: who can give it to them; None for a user who has it."""
    if user is not None and user.has_perm("heating.control"):
        return None
    # Staff as hub.roles counts them: the is_staff flag, a superuser, or a member of the staff group.
    is_staff = Q(is_staff=True) | Q(is_superuser=True) | Q(groups__name=STAFF_GROUP)
    staff = get_user_model().objects.filter(is_staff, is_active=True).distinct().order_by("username")
    names = [member.get_full_name() or member.get_username() for member in staff[: CONTROL_HINT_NAMES + 1]]
    if not names:
        return "Ask the hub's administrator to add you to the household group to change targets and schedules."
    shown = ", ".join(names[:CONTROL_HINT_NAMES]) + (", …" if len(names) > CONTROL_HINT_NAMES else "")
    return f"Ask a staff member ({shown}) to add you to the household group to change targets and schedules."


def rooms_overview(*, user, at: datetime) -> dict:
    """The home page's house: every room's state in order, the away switch, the house's zone, and whether the user
    may change them (``can_control``) — if not, ``control_hint`` says who can give them control."""
    the_house = house()
    can_control = bool(user is not None and user.has_perm("heating.control"))
    return {
        "house": {"away": the_house.away, "away_since": _when(the_house.away_since), "zone": settings.TIME_ZONE},
        "rooms": [room_state(room, at=at, the_house=the_house) for room in rooms_with_state_relations()],
        "can_control": can_control,
        "control_hint": None if can_control else control_hint(user),
    }


# --- room history ----------------------------------------------------------------------------------------------


def room_history(room: Room, *, since: datetime, until: datetime, points: int, now: datetime | None = None) -> dict:
    """``room``'s temperature, target and heater-on periods from ``since`` (inclusive) to ``until`` (exclusive),
    JSON-ready, each series downsampled to at most ``points`` points (2 to 2,000): see heating/history.py."""
    from heating import history

    return history.room_history(room, since=since, until=until, points=points, now=now)
