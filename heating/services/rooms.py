"""Writes of the heating app's rooms half, what a household and staff change: rooms, their heaters, targets, modes,
boosts, schedules and the house's presets and away switch. Each refuses bad input with RoomInputError naming the
field and the allowed range, and publishes ``heating.room_changed`` through ``_room_changed`` in its transaction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

import messaging
from heating import room_topics
from heating.models import (
    House,
    Mode,
    Node,
    Room,
    RoomHeater,
    ScheduleBlock,
    validate_room_slug,
)
from heating.services.radio import SOURCE
from heating.swap import DeviceDefinition
from heating.thermostat import schedule
from heating.thermostat.schedule import Block
from heating.thermostat.setpoint import override_end
from heating.topics import definition_label
from hub.timefmt import format_utc

#: Frost and maximum temperatures a house or a room may be given (°C, inclusive).
FROST_RANGE = (5.0, 12.0)
MAXIMUM_RANGE = (25.0, 35.0)
#: A target stays this far below the maximum (the maximum switches the heaters off whatever the target).
TARGET_BELOW_MAXIMUM = 1.0
#: Boost lasts 1 minute to 24 hours; preset "boost" (Home Assistant's) boosts for the default.
BOOST_MINUTES = (1, 24 * 60)
BOOST_DEFAULT_MINUTES = 60
#: A manual change on schedule may be held for up to a week.
OVERRIDE_MINUTES = (1, 7 * 24 * 60)
#: Power a heater may be given (W).
HEATER_POWER_RANGE = (1, 100_000)
#: Preset names of Home Assistant's climate entity (``preset/set``).
ROOM_PRESETS = ("boost", "away", "none")
#: The fields room_update changes (the API's names, but ``slug`` for the API's ``id``; the admin's room form too).
ROOM_UPDATE_FIELDS = (
    "name",
    "slug",
    "position",
    "temperature_node",
    "temperature_endpoint",
    "comfort",
    "eco",
    "away_temperature",
    "frost",
    "maximum",
    "proportional",
)


class RoomInputError(ValueError):
    """Input a room service refuses; ``field`` names it as the API does (``target``, ``blocks[3]``, …), the
    message says the allowed range (for the API's 400)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def _number(value, *, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RoomInputError(f"{field} must be a number of °C, not {value!r}", field=field)
    return float(value)


def _whole_minutes(value, *, field: str, allowed: tuple[int, int], what: str) -> int:
    low, high = allowed
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RoomInputError(f"{field} must be a whole number of minutes from {low} to {high} ({what})", field=field)
    return value


def _in_range(value, *, field: str, low: float, high: float) -> float:
    number = _number(value, field=field)
    if not low <= number <= high:
        raise RoomInputError(f"{field} {number:g} °C is outside the allowed {low:g}\N{EN DASH}{high:g} °C", field=field)
    return number


def _target_range(room: Room) -> tuple[float, float]:
    """What a target of ``room`` may be: its frost temperature to its maximum minus 1 °C."""
    from heating.selectors import room_presets

    presets = room_presets(room)
    return presets.frost, presets.maximum - TARGET_BELOW_MAXIMUM


def _check_target(room: Room, value, *, field: str = "target") -> float:
    low, high = _target_range(room)
    return _in_range(value, field=field, low=low, high=high)


def _now(at: datetime | None) -> datetime:
    return at if at is not None else timezone.now()


def _house_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def _check_slug(slug, *, field: str = "id", room: Room | None = None) -> str:
    if not isinstance(slug, str):
        raise RoomInputError(f"{field} must be text", field=field)
    try:
        validate_room_slug(slug)
    except ValidationError as exc:
        raise RoomInputError(" ".join(exc.messages), field=field) from None
    others = Room.objects.filter(slug=slug)
    if room is not None:
        others = others.exclude(pk=room.pk)
    if others.exists():
        raise RoomInputError(f"a room with id {slug!r} exists already; choose another id", field=field)
    return slug


def _check_name(name) -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > Room._meta.get_field("name").max_length:
        raise RoomInputError("name must be 1 to 100 characters", field="name")
    return name.strip()


def _check_temperature_endpoint(node: Node | None, endpoint) -> str:
    """The endpoint of ``node`` that gives a temperature: the one named, else the node's first temperature input."""
    from heating.selectors import node_definition, temperature_endpoints

    if node is None:
        if endpoint:
            raise RoomInputError("temperature_endpoint needs a temperature_node", field="temperature_endpoint")
        return ""
    if not isinstance(node, Node):
        raise RoomInputError("temperature_node must be a node the radio has heard", field="temperature_node")
    choices = temperature_endpoints(node_definition(node))
    if not endpoint:
        return choices[0] if choices else ""
    if not isinstance(endpoint, str):
        raise RoomInputError("temperature_endpoint must be an endpoint's name", field="temperature_endpoint")
    if node_definition(node) is not None and endpoint not in choices:
        raise RoomInputError(
            f"{node} has no temperature endpoint {endpoint!r} (choose {', '.join(choices) or 'none: it has none'})",
            field="temperature_endpoint",
        )
    return endpoint


def _assign_node(node: Node, slug: str) -> None:
    """A node in a room is in the room's location (its readings' topics name the room)."""
    if node.location != slug:
        node.location = slug
        Node.objects.filter(pk=node.pk).update(location=slug)


@transaction.atomic
def room_create(
    *, slug: str, name: str, temperature_node: Node | None = None, temperature_endpoint: str = "", by=None
) -> Room:
    """A new room (mode schedule, the house's presets), its temperature node moved to the room's location."""
    slug = _check_slug(slug)
    name = _check_name(name)
    endpoint = _check_temperature_endpoint(temperature_node, temperature_endpoint)
    position = (Room.objects.aggregate(last=models.Max("position"))["last"] or 0) + 1
    room = Room.objects.create(
        slug=slug, name=name, position=position, temperature_node=temperature_node, temperature_endpoint=endpoint
    )
    if temperature_node is not None:
        _assign_node(temperature_node, slug)
    _room_changed(room, at=timezone.now(), changed=["created"], by=by)
    return room


def _check_preset_limits(room: Room, changes: dict) -> None:
    """Frost 5 to 12 °C, maximum 25 to 35 °C, each preset within frost .. maximum - 1 (after the change)."""
    from heating.selectors import house

    the_house = house()
    for field, (low, high) in (("frost", FROST_RANGE), ("maximum", MAXIMUM_RANGE)):
        if changes.get(field) is not None:
            changes[field] = _in_range(changes[field], field=field, low=low, high=high)
    frost = changes.get("frost", room.frost)
    maximum = changes.get("maximum", room.maximum)
    low = the_house.frost if frost is None else frost
    high = (the_house.maximum if maximum is None else maximum) - TARGET_BELOW_MAXIMUM
    for field in ("comfort", "eco", "away_temperature"):
        if changes.get(field) is not None:
            changes[field] = _in_range(changes[field], field=field, low=low, high=high)
    limit = next((field for field in ("maximum", "frost") if field in changes), None)
    if limit is not None and room.pk is not None:
        _check_range_keeps_targets(room, changes, low=low, high=high, field=limit)


def _check_range_keeps_targets(room: Room, changes: dict, *, low: float, high: float, field: str) -> None:
    """A new frost or maximum must leave the room's own presets, manual target and schedule inside the range."""
    from heating.selectors import room_blocks

    allowed = f"{low:g}\N{EN DASH}{high:g} °C"
    kept = [(name, changes.get(name, getattr(room, name))) for name in ("comfort", "eco", "away_temperature")]
    kept.append(("manual target", room.manual_target))
    for name, value in kept:
        if value is not None and not low <= value <= high:
            raise RoomInputError(
                f"{field}: the room's {name.replace('_temperature', '')} {value:g} °C would be outside the allowed "
                f"{allowed}; change it first",
                field=field,
            )
    for block in room_blocks(room):
        if block.temperature is not None and not low <= block.temperature <= high:
            raise RoomInputError(
                f"{field}: the schedule's {block.describe()} asks for {block.temperature:g} °C, outside the allowed "
                f"{allowed}; change the schedule first",
                field=field,
            )


@transaction.atomic
def room_update(*, room: Room, by=None, **fields) -> Room:
    """Change a room's name, id (``slug``: its nodes and topics move with it), position, temperature source, preset
    overrides (None: the house's) or proportional control. Unknown fields are refused."""
    room = Room.objects.select_for_update().get(pk=room.pk)
    previous_slug = room.slug
    fields = room_fields_check(room=room, fields=fields)
    changed = [field for field, value in fields.items() if getattr(room, field) != value]
    for field, value in fields.items():
        setattr(room, field, value)
    room.save()
    if room.slug != previous_slug:
        # Its nodes follow it: their readings' topics name the new id.
        Node.objects.filter(location=previous_slug).filter(
            models.Q(heater_of__room=room) | models.Q(temperature_of=room)
        ).update(location=room.slug)
    if room.temperature_node is not None:
        _assign_node(room.temperature_node, room.slug)
    if changed:
        _room_changed(room, at=timezone.now(), changed=changed, by=by, previous_slug=previous_slug)
    return room


def room_fields_check(*, room: Room, fields: dict) -> dict:
    """``fields`` checked as room_update would change ``room`` with them (a new, unsaved room too): the values to
    store, or RoomInputError naming the first field at fault. Writes nothing (the admin's forms use it)."""
    fields = dict(fields)
    unknown = sorted(set(fields) - set(ROOM_UPDATE_FIELDS))
    if unknown:
        raise RoomInputError(
            f"{unknown[0]} cannot be changed here (these can: {', '.join(ROOM_UPDATE_FIELDS)})", field=unknown[0]
        )
    if "slug" in fields:
        fields["slug"] = _check_slug(fields["slug"], room=room)
    if "name" in fields:
        fields["name"] = _check_name(fields["name"])
    if "position" in fields:
        position = fields["position"]
        if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position <= 32767:
            raise RoomInputError("position must be a whole number from 0 to 32767", field="position")
    if "proportional" in fields and not isinstance(fields["proportional"], bool):
        raise RoomInputError("proportional must be true or false", field="proportional")
    if "temperature_node" in fields or "temperature_endpoint" in fields:
        node = fields.get("temperature_node", room.temperature_node)
        endpoint = fields.get("temperature_endpoint", "" if "temperature_node" in fields else room.temperature_endpoint)
        fields["temperature_endpoint"] = _check_temperature_endpoint(node, endpoint)
        fields["temperature_node"] = node
    _check_preset_limits(room, fields)
    return fields


@transaction.atomic
def room_heaters_set(*, room: Room, heaters: Sequence[tuple[Node, str, int]], by=None) -> None:
    """The room's heaters are exactly these (node, relay endpoint, power in W); each node moves to the room's
    location. A relay that heats another room is refused: unassign it there first."""
    wanted = heaters_check(room=room, heaters=heaters)
    RoomHeater.objects.filter(room=room).delete()
    RoomHeater.objects.bulk_create(wanted)
    for heater in wanted:
        _assign_node(heater.node, room.slug)
    _room_changed(room, at=timezone.now(), changed=["heaters"], by=by)


def heaters_check(*, room: Room, heaters: Sequence[tuple[Node, str, int]]) -> list[RoomHeater]:
    """The heaters room_heaters_set would store (unsaved), or RoomInputError naming ``heaters[i]``."""
    from heating.selectors import node_definition

    wanted: list[RoomHeater] = []
    seen: set[tuple[int, str]] = set()
    for index, item in enumerate(heaters):
        field = f"heaters[{index}]"
        try:
            node, endpoint, power_w = item
        except (TypeError, ValueError):
            message = f"{field} must be a node, its relay endpoint and the power in W"
            raise RoomInputError(message, field=field) from None
        if not isinstance(node, Node) or node.pk is None:
            raise RoomInputError(f"{field}: choose a node the radio has heard", field=field)
        definition = node_definition(node)
        relays = relay_endpoints(definition)
        if not isinstance(endpoint, str) or (definition is not None and endpoint not in relays):
            raise RoomInputError(
                f"{field}: {node} has no relay {endpoint!r} (choose {', '.join(relays) or 'none: it has none'})",
                field=field,
            )
        low, high = HEATER_POWER_RANGE
        if isinstance(power_w, bool) or not isinstance(power_w, int) or not low <= power_w <= high:
            raise RoomInputError(f"{field}: power must be a whole number of W from {low} to {high}", field=field)
        if (node.pk, endpoint) in seen:
            raise RoomInputError(f"{field}: {node} {endpoint} is listed twice", field=field)
        seen.add((node.pk, endpoint))
        elsewhere = (
            RoomHeater.objects.filter(node=node, endpoint=endpoint)
            .exclude(room_id=room.pk)
            .select_related("room")
            .first()
        )
        if elsewhere is not None:
            raise RoomInputError(
                f"{field}: {node} {endpoint} heats {elsewhere.room.name} already; remove it there first", field=field
            )
        wanted.append(RoomHeater(room=room, node=node, endpoint=endpoint, power_w=power_w))
    return wanted


#: Writable on/off endpoints that switch how a node works, not a load: the room heater's Manual (register 20,
#: which hands its relay to the hub; the thermostat writes it, see heating/thermostat_runner.py). Never a heater.
MODE_SWITCH_ENDPOINTS = frozenset({"Manual"})


def relay_endpoints(definition: DeviceDefinition | None) -> list[str]:
    """A device's endpoints a room heater can be: writable on/off outputs that switch a load."""
    if definition is None:
        return []
    return [
        endpoint.name
        for endpoint in definition.endpoints
        if endpoint.writable and endpoint.type == "bin" and endpoint.name not in MODE_SWITCH_ENDPOINTS
    ]


def _locked(room: Room) -> Room:
    return Room.objects.select_for_update().get(pk=room.pk)


@transaction.atomic
def room_target_set(
    *,
    room: Room,
    target: float,
    minutes: int | None = None,
    by=None,
    origin: str,
    at: datetime | None = None,
) -> Room:
    """A new target: in manual mode it stays; on schedule it holds until the schedule's next change, or for
    ``minutes``; a room that was off goes to manual with it."""
    from heating.selectors import room_blocks

    now = _now(at)
    room = _locked(room)
    target = _check_target(room, target)
    if minutes is not None:
        minutes = _whole_minutes(minutes, field="minutes", allowed=OVERRIDE_MINUTES, what="up to a week")
    if room.mode == Mode.SCHEDULE:
        room.override_target = target
        room.override_until = override_end(room_blocks(room), now, _house_zone(), minutes)
        changed = ["target"]
    else:
        changed = ["target"] if room.mode == Mode.MANUAL else ["target", "mode"]
        room.mode = Mode.MANUAL
        room.manual_target = target
    room.save()
    _room_changed(room, at=now, changed=changed, by=by, origin=origin)
    return room


@transaction.atomic
def room_mode_set(*, room: Room, mode: str, by=None, origin: str, at: datetime | None = None) -> Room:
    """Off (frost protection only; a boost ends), manual (keeps the target that applied) or schedule (any
    override ends: choosing schedule again while a manual change holds resumes the schedule)."""
    from heating.selectors import room_setpoint

    if mode not in Mode.values:
        raise RoomInputError(f"mode {mode!r} is not one of {', '.join(Mode.values)}", field="mode")
    now = _now(at)
    room = _locked(room)
    if mode == room.mode and not (mode == Mode.SCHEDULE and room.override_target is not None):
        return room
    if mode == Mode.MANUAL:
        current = room_setpoint(room, at=now).target
        low, high = _target_range(room)
        if current is not None and low <= current <= high:
            room.manual_target = current
        elif room.manual_target is None:
            from heating.selectors import room_presets

            room.manual_target = room_presets(room).comfort
    if mode == Mode.OFF:
        room.boost_until = None  # off really means off
    room.override_target = room.override_until = None
    room.mode = mode
    room.save()
    _room_changed(room, at=now, changed=["mode"], by=by, origin=origin)
    return room


@transaction.atomic
def room_boost(*, room: Room, minutes: int, by=None, origin: str, at: datetime | None = None) -> Room:
    """Heat for ``minutes`` (1 to 1440), then back to what applied before."""
    minutes = _whole_minutes(minutes, field="minutes", allowed=BOOST_MINUTES, what="a boost lasts at most 24 h")
    now = _now(at)
    room = _locked(room)
    room.boost_until = now + timedelta(minutes=minutes)
    room.save()
    _room_changed(room, at=now, changed=["boost"], by=by, origin=origin)
    return room


@transaction.atomic
def room_boost_cancel(*, room: Room, by=None, origin: str, at: datetime | None = None) -> Room:
    now = _now(at)
    room = _locked(room)
    if room.boost_until is None:
        return room
    room.boost_until = None
    room.save()
    _room_changed(room, at=now, changed=["boost"], by=by, origin=origin)
    return room


@transaction.atomic
def room_preset_set(*, room: Room, preset: str, by=None, origin: str, at: datetime | None = None) -> Room:
    """Home Assistant's presets: ``boost`` boosts for an hour; ``away`` sets the house away (away is house-wide);
    ``none`` ends the room's boost and the house's away."""
    from heating.selectors import house

    if preset not in ROOM_PRESETS:
        raise RoomInputError(f"preset {preset!r} is not one of {', '.join(ROOM_PRESETS)}", field="preset")
    now = _now(at)
    if preset == "boost":
        return room_boost(room=room, minutes=BOOST_DEFAULT_MINUTES, by=by, origin=origin, at=now)
    if preset == "away":
        house_away_set(away=True, by=by, origin=origin, at=now)
        return Room.objects.get(pk=room.pk)
    room = room_boost_cancel(room=room, by=by, origin=origin, at=now)
    if house().away:
        house_away_set(away=False, by=by, origin=origin, at=now)
    return Room.objects.get(pk=room.pk)


@transaction.atomic
def house_away_set(*, away: bool, by=None, origin: str, at: datetime | None = None) -> House:
    """Everyone out (every room holds the away temperature; rooms that are off stay off), or back."""
    from heating.selectors import house

    if not isinstance(away, bool):
        raise RoomInputError("away must be true or false", field="away")
    now = _now(at)
    the_house = house()
    if the_house.away == away:
        return the_house
    House.objects.filter(pk=the_house.pk).update(away=away, away_since=now if away else None)
    the_house.away, the_house.away_since = away, (now if away else None)
    for room in Room.objects.all():
        _room_changed(room, at=now, changed=["away"], by=by, origin=origin)
    return the_house


@transaction.atomic
def house_presets_set(*, by=None, **presets) -> House:
    """The house's comfort, eco, away_temperature, frost (5 to 12 °C) and maximum (25 to 35 °C)."""
    from heating.selectors import house

    allowed = ("comfort", "eco", "away_temperature", "frost", "maximum")
    unknown = sorted(set(presets) - set(allowed))
    if unknown:
        raise RoomInputError(f"{unknown[0]} is not a preset (these are: {', '.join(allowed)})", field=unknown[0])
    the_house = house()
    values = house_presets_check({name: getattr(the_house, name) for name in allowed} | presets)
    House.objects.filter(pk=the_house.pk).update(**values)
    for name, value in values.items():
        setattr(the_house, name, value)
    now = timezone.now()
    for room in Room.objects.all():
        _room_changed(room, at=now, changed=["presets"], by=by)
    return the_house


def house_presets_check(values: dict) -> dict:
    """All five house presets checked together (frost 5 to 12 °C, maximum 25 to 35 °C, the others within frost ..
    maximum - 1): the values to store, or RoomInputError naming the first field at fault. Writes nothing."""
    values = dict(values)
    values["frost"] = _in_range(values["frost"], field="frost", low=FROST_RANGE[0], high=FROST_RANGE[1])
    values["maximum"] = _in_range(values["maximum"], field="maximum", low=MAXIMUM_RANGE[0], high=MAXIMUM_RANGE[1])
    for name in ("comfort", "eco", "away_temperature"):
        values[name] = _in_range(
            values[name], field=name, low=values["frost"], high=values["maximum"] - TARGET_BELOW_MAXIMUM
        )
    _check_rooms_keep_targets(values)
    return values


def _check_rooms_keep_targets(values: dict) -> None:
    """A new house frost or maximum must leave the targets of the rooms that use it inside their range."""
    from heating.selectors import house

    current = house()
    changed = [name for name in ("maximum", "frost") if values[name] != getattr(current, name)]
    if not changed:
        return
    inheriting = models.Q(frost__isnull=True) | models.Q(maximum__isnull=True)
    for room in Room.objects.filter(inheriting).prefetch_related("schedule_blocks"):
        low = values["frost"] if room.frost is None else room.frost
        high = (values["maximum"] if room.maximum is None else room.maximum) - TARGET_BELOW_MAXIMUM
        try:
            _check_range_keeps_targets(room, {}, low=low, high=high, field=changed[0])
        except RoomInputError as error:
            raise RoomInputError(f"{room.name}: {error.message}", field=error.field) from None


def schedule_check(*, room: Room, blocks: Sequence[Block], field: str = "blocks") -> None:
    """RoomInputError naming the first bad block (``blocks[i]``) as schedule_replace would refuse it; writes nothing."""
    _check_blocks(room, blocks, field=field)


def _check_blocks(room: Room, blocks: Sequence[Block], *, field: str = "blocks") -> None:
    low, high = _target_range(room)
    try:
        schedule.validate(blocks, minimum=low, maximum=high)
    except schedule.ScheduleError as exc:
        where = f"{field}[{exc.index}]" if exc.index is not None else field
        raise RoomInputError(exc.message, field=where) from None


def _blocks_store(room: Room, blocks: Sequence[Block]) -> None:
    ScheduleBlock.objects.filter(room=room).delete()
    ScheduleBlock.objects.bulk_create(
        ScheduleBlock(
            room=room,
            weekday=block.weekday,
            start_minute=block.start,
            end_minute=block.end,
            preset=block.preset or "",
            temperature=block.temperature,
        )
        for block in blocks
    )


@transaction.atomic
def schedule_replace(*, room: Room, blocks: Sequence[Block], by=None) -> None:
    """The room's week is exactly these blocks (house wall-clock time); refused whole, naming the first bad block."""
    blocks = list(blocks)
    _check_blocks(room, blocks)
    _blocks_store(room, blocks)
    _room_changed(room, at=timezone.now(), changed=["schedule"], by=by)


@transaction.atomic
def schedule_copy(*, source: Room, targets: Sequence[Room], by=None) -> None:
    """Each target room's week becomes a copy of ``source``'s (all or none: a block outside a target's range is
    refused naming the room)."""
    from heating.selectors import room_blocks

    blocks = room_blocks(source)
    # As stored now: a caller's instance may predate a change of the room's range.
    targets = [Room.objects.get(pk=target.pk) for target in targets]
    for index, target in enumerate(targets):
        try:
            _check_blocks(target, blocks)
        except RoomInputError as exc:
            raise RoomInputError(f"{target.name}: {exc.message}", field=f"targets[{index}]") from None
    now = timezone.now()
    for target in targets:
        if target.pk == source.pk:
            continue
        _blocks_store(target, blocks)
        _room_changed(target, at=now, changed=["schedule"], by=by)


#: The simulator's three room heaters (heating.simulator: addresses 0xA1.., the third a cold store whose heater
#: cannot keep up) as the embedded default's rooms: (slug, name, heater power in W, mode).
SIMULATED_ROOMS = (
    ("living", "Living room", 1500, Mode.SCHEDULE),
    ("bedroom", "Bedroom", 1000, Mode.SCHEDULE),
    ("garage", "Garage", 2000, Mode.OFF),
)
SIMULATED_ADDRESSES = (0xA1, 0xA2, 0xA3)
#: Their week: comfort mornings and evenings (eco between blocks).
_SIMULATED_WEEK = (("06:30", "08:30"), ("17:00", "22:30"))
#: The room heater's product (heating/swap/devices/heater): manufacturer 72, product 1.
_ROOM_HEATER_PRODUCT = (72, 1)


@transaction.atomic
def rooms_create_simulated(*, addresses: Sequence[int] = SIMULATED_ADDRESSES) -> list[Room]:
    """The embedded default with the simulator (``SERIAL_PORT`` unset): one room per simulated heater node, with its
    heater and temperature, when the house has no room yet (so a fresh ``make run`` shows a working thermostat).
    Called by the embedded start-up only, never by a migration: production never gets simulated rooms."""
    from heating.selectors import definitions

    if Room.objects.exists():
        return []
    definition = definitions().get(*_ROOM_HEATER_PRODUCT)
    rooms = []
    for address, (slug, name, power_w, mode) in zip(addresses, SIMULATED_ROOMS, strict=False):
        node, _ = Node.objects.get_or_create(
            address=address,
            defaults={
                "name": f"{name} heater (simulated)",
                "manufacturer_id": _ROOM_HEATER_PRODUCT[0],
                "product_id": _ROOM_HEATER_PRODUCT[1],
                "definition": definition_label(definition) if definition else "",
            },
        )
        room = room_create(slug=slug, name=name, temperature_node=node)
        room_heaters_set(room=room, heaters=[(node, "Heating", power_w)])
        blocks = [
            block
            for start, end in _SIMULATED_WEEK
            for block in schedule.expand("every_day", start, end, preset="comfort")
        ]
        schedule_replace(room=room, blocks=blocks)
        if mode != Mode.SCHEDULE:
            room = room_mode_set(room=room, mode=mode, origin="simulator")
        rooms.append(room)
    return rooms


def _room_changed(
    room: Room, *, at: datetime, changed: Sequence[str], by=None, origin: str = "", previous_slug: str | None = None
) -> None:
    """The one place a room's change is announced: ``heating.room_changed`` with the room's state, in the caller's
    transaction (so a rolled-back change announces nothing)."""
    from heating.selectors import room_setpoint

    point = room_setpoint(room, at=at)
    data = {
        "room": room.slug,
        "name": room.name,
        "changed": list(changed),
        "mode": room.mode,
        "target": point.target,
        "source": point.source,
        "until": format_utc(point.until) if point.until else None,
        "boost_until": format_utc(room.boost_until) if room.boost_until else None,
        "by": by.get_username() if by is not None and getattr(by, "is_authenticated", False) else None,
        "origin": origin,
    }
    if previous_slug is not None and previous_slug != room.slug:
        data["previous_room"] = previous_slug
    messaging.publish("heating.room_changed", data, source=SOURCE, occurred_at=at)
    # Its retained MQTT state topics and Home Assistant's discovery config follow (a new id clears the old ones).
    messaging.publish_many(room_topics.room_changed_events(room, at=at, changed=changed, previous_slug=previous_slug))


@transaction.atomic
def room_delete(*, room: Room, by=None) -> None:
    """Remove a room (its heaters, schedule, decisions and alerts go with it); its retained MQTT topics and its Home
    Assistant entity are cleared."""
    slug = room.slug
    room.delete()
    messaging.publish_many(room_topics.room_removed_events(slug, at=timezone.now()))
