"""Writes of the heating app's radio half: the node registry, readings, commands and the modem link's state.

Each write publishes its event (``heating.*``) through :func:`messaging.publish` in the same transaction, so a
rolled-back write publishes nothing. The serial worker is the main caller; the API, the page and the MQTT
action handler only queue commands.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

import messaging
from heating import room_topics
from heating.models import (
    Command,
    CommandState,
    Node,
    Reading,
    RoomHeater,
)
from heating.swap import DeviceDefinition, Endpoint
from heating.topics import definition_label, endpoint_find, lagarto_value, measure_topic
from hub import wakeups
from hub.services import heartbeat_record
from hub.timefmt import format_utc

SOURCE = "heating"
#: The serial worker's heartbeat row (``hub.Heartbeat``): link state, decode errors, modem versions in ``details``.
WORKER_HEARTBEAT = "serial_worker"
#: The wake-up signal a commit that queued a command sends (the serial worker registers for it: ``hub.wakeups``).
COMMANDS_QUEUED = "heating.commands_queued"


class CommandRefused(ValueError):
    """A command that cannot be sent; ``field`` names the input at fault (for the API's 400)."""

    def __init__(self, message: str, *, field: str = "endpoint") -> None:
        super().__init__(message)
        self.field = field


class RoomHeaterCommandRefused(CommandRefused):
    """A raw command on a relay a room's thermostat switches: the input is fine, the relay is not free (the API's
    409). ``room`` is the room it heats."""

    def __init__(self, message: str, *, room) -> None:
        super().__init__(message, field="endpoint")
        self.room = room


#: ``Command.origin`` of the thermostat's own relay and Manual-mode commands: the only ones a room's heater takes.
ORIGIN_THERMOSTAT = "thermostat"


class CommandPending(CommandRefused):
    """The relay already has a command waiting for its STATUS (``pending``): one at a time per relay."""

    def __init__(self, message: str, *, pending: Command) -> None:
        super().__init__(message, field="endpoint")
        self.pending = pending


# --- nodes -----------------------------------------------------------------------------------------------------


@transaction.atomic
def node_register(*, address: int, at: datetime) -> Node:
    """The node with this address, created (and announced as ``heating.node_seen``) when first heard."""
    node, created = Node.objects.get_or_create(address=address, defaults={"first_seen": at, "last_heard": at})
    if created:
        node.reachable = True
        Node.objects.filter(pk=node.pk).update(reachable=True)
        _publish_node_seen(node, at=at, new=True)
    return node


@transaction.atomic
def node_product_set(
    *, node: Node, manufacturer_id: int, product_id: int, definition: DeviceDefinition | None, at: datetime
) -> Node:
    """Record what product a node is (from its register 0); an unknown product is kept and flagged, not dropped."""
    node.manufacturer_id = manufacturer_id
    node.product_id = product_id
    node.definition = definition_label(definition) if definition else ""
    node.unknown_product = definition is None
    Node.objects.filter(pk=node.pk).update(
        manufacturer_id=manufacturer_id,
        product_id=product_id,
        definition=node.definition,
        unknown_product=node.unknown_product,
    )
    _publish_node_seen(node, at=at, new=False)
    return node


#: The node fields a batch of packets changes.
_HEARD_FIELDS = [
    "last_heard",
    "last_rssi",
    "last_lqi",
    "system_state",
    "nonce",
    "registers",
    "reachable",
    "signal_history",
]


def nodes_heard_save(*, nodes: Iterable[Node]) -> None:
    """Save what packets changed on nodes (last heard, signal and its history, state, nonce, register values), in one
    statement."""
    nodes = list(nodes)
    if nodes:
        Node.objects.bulk_update(nodes, _HEARD_FIELDS)


@transaction.atomic
def node_reachability_set(*, node: Node, reachable: bool, at: datetime) -> None:
    """A node starts or stops answering: ``heating.link_changed`` with ``data.node``."""
    node.reachable = reachable
    Node.objects.filter(pk=node.pk).update(reachable=reachable)
    messaging.publish(
        "heating.link_changed",
        {
            "node": node.key,
            "reachable": reachable,
            "last_heard": format_utc(node.last_heard) if node.last_heard else None,
        },
        source=SOURCE,
        occurred_at=at,
    )


def node_update(*, node: Node, name: str | None = None, location: str | None = None) -> Node:
    """What an admin edits; a new location moves the node's topics."""
    if name is not None:
        node.name = name
    if location is not None:
        node.location = location
    node.save(update_fields=["name", "location"])
    return node


def _publish_node_seen(node: Node, *, at: datetime, new: bool) -> None:
    messaging.publish(
        "heating.node_seen",
        {
            "node": node.key,
            "address": node.address,
            "new": new,
            "manufacturer_id": node.manufacturer_id,
            "product_id": node.product_id,
            "definition": node.definition,
            "unknown_product": node.unknown_product,
            "location": node.place,
        },
        source=SOURCE,
        occurred_at=at,
    )


# --- readings --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadingInput:
    node: Node
    endpoint: Endpoint
    value: Any
    at: datetime
    rssi: float | None = None
    lqi: int | None = None


def readings_record(*, readings: Sequence[ReadingInput]) -> list[Reading]:
    """Store a batch of readings in one insert; each one is published as ``heating.reading`` and retained on its
    ``…/<location>/measure/<id>`` topic in lagarto's JSON shape."""
    rows = []
    events: list[messaging.Event] = []
    with transaction.atomic():
        for item in readings:
            endpoint = item.endpoint
            unit = endpoint.unit.name if endpoint.unit else ""
            endpoint_id = endpoint.lagarto_id(item.node.address)
            rows.append(
                Reading(
                    node=item.node,
                    endpoint_id=endpoint_id,
                    name=endpoint.name,
                    value=item.value,
                    unit=unit,
                    recorded_at=item.at,
                    rssi=item.rssi,
                    lqi=item.lqi,
                )
            )
            location = item.node.place
            events.append(
                messaging.new_event(
                    "heating.reading",
                    {
                        # lagarto's shape first (what its dashboards and scripts read) …
                        "id": endpoint_id,
                        "name": endpoint.name,
                        "value": lagarto_value(endpoint, item.value),
                        "direction": endpoint.direction,
                        "type": endpoint.type,
                        "location": location,
                        "timestamp": format_utc(item.at),
                        # … then what the hub adds.
                        "node": item.node.key,
                        "unit": unit,
                        "rssi": item.rssi,
                    },
                    source=SOURCE,
                    topics=[measure_topic(location=location, endpoint_id=endpoint_id)],
                    retain=True,
                    occurred_at=item.at,
                )
            )
        Reading.objects.bulk_create(rows, batch_size=500)
        # A room's temperature source or heater relay among them: its retained temperature / heating topics too.
        events += room_topics.readings_events(rows)
        messaging.publish_many(events)
    return rows


def readings_prune(*, older_than: timedelta | None = None) -> int:
    """Delete readings older than ``READINGS_RETENTION_DAYS`` (or ``older_than``); how many went."""
    cutoff = timezone.now() - (older_than or timedelta(days=settings.READINGS_RETENTION_DAYS))
    deleted, _ = Reading.objects.filter(recorded_at__lt=cutoff).delete()
    return deleted


# --- commands --------------------------------------------------------------------------------------------------


def command_queue(
    *,
    node: Node,
    endpoint: str,
    value: Any,
    definition: DeviceDefinition | None,
    requested_by=None,
    origin: str = "",
) -> Command:
    """Queue a register write for the serial worker, by endpoint name or lagarto id (``161.12.0``).

    Refused (``CommandRefused``) for a node of unknown product, an endpoint that does not exist or is not an
    output, or a value the endpoint cannot hold; and (``RoomHeaterCommandRefused``) for a relay that heats a room,
    unless the thermostat sends it: staff unassign a heater from its room to switch it by hand.
    """
    if definition is None:
        raise CommandRefused(f"{node} is of an unknown product: its endpoints are not known", field="endpoint")
    target = endpoint_find(definition, address=node.address, name_or_id=endpoint)
    if target is None:
        raise CommandRefused(f"{definition.product} has no endpoint {endpoint!r}")
    if not target.writable:
        raise CommandRefused(f"{target.name!r} is an input: it cannot be written")
    if origin != ORIGIN_THERMOSTAT:
        _refuse_room_heater(node, target.name)
    current = node.registers.get(str(target.register_id))
    try:
        raw = definition.encode(target.name, value, bytes.fromhex(current) if current else None)
    except (ValueError, TypeError) as exc:
        raise CommandRefused(str(exc), field="value") from None
    with transaction.atomic():
        if target.type == "bin":
            _refuse_second_relay_command(node, target.name)
        command = Command.objects.create(
            node=node,
            endpoint=target.name,
            register_id=target.register_id,
            value=raw.hex().upper(),
            requested_value=value,
            requested_by=requested_by if requested_by is not None and requested_by.is_authenticated else None,
            origin=origin,
            requested_at=timezone.now(),
        )
    # The serial worker of this process (the embedded default) sends it at once, not at its next poll.
    transaction.on_commit(partial(wakeups.wake, COMMANDS_QUEUED))
    return command


def _refuse_second_relay_command(node: Node, endpoint: str) -> None:
    """A relay (a binary output) takes one pending command at a time: every write to the heater's register 12 pulses
    its relay, and two writers (the thermostat and a person) queueing behind each other would flap it. The node's
    row is locked so two processes cannot both see "none pending" (SQLite's IMMEDIATE transactions do the same)."""
    Node.objects.select_for_update().filter(pk=node.pk).exists()
    pending = (
        Command.objects.filter(node=node, endpoint=endpoint, state__in=[CommandState.QUEUED, CommandState.SENT])
        .order_by("requested_at")
        .first()
    )
    if pending is not None:
        raise CommandPending(
            f"{node}'s {endpoint!r} already has a command waiting to be confirmed (command {pending.pk}, "
            f"{pending.origin or 'unknown origin'}); send another once it is confirmed or failed",
            pending=pending,
        )


def _refuse_room_heater(node: Node, endpoint: str) -> None:
    heater = RoomHeater.objects.filter(node=node, endpoint=endpoint).select_related("room").first()
    if heater is not None:
        raise RoomHeaterCommandRefused(
            f"{node} {endpoint} heats the room {heater.room.name!r} ({heater.room.slug}): its thermostat switches "
            "it. Change the room's target or mode instead; staff unassign the heater from the room to switch it "
            "by hand.",
            room=heater.room,
        )


def command_mark_sent(*, command: Command, at: datetime) -> None:
    command.state = CommandState.SENT
    command.attempts += 1
    command.sent_at = at
    Command.objects.filter(pk=command.pk).update(state=command.state, attempts=command.attempts, sent_at=at)


def command_requeue(*, command: Command) -> None:
    """Back to the queue (a sleeping node: sent again when it is next heard)."""
    command.state = CommandState.QUEUED
    Command.objects.filter(pk=command.pk).update(state=command.state)


@transaction.atomic
def command_confirm(*, command: Command, at: datetime) -> None:
    """The node's STATUS carried the written value: ``heating.command_confirmed``."""
    command.state = CommandState.CONFIRMED
    command.finished_at = at
    Command.objects.filter(pk=command.pk).update(state=command.state, finished_at=at)
    messaging.publish("heating.command_confirmed", _command_data(command, at), source=SOURCE, occurred_at=at)


@transaction.atomic
def command_fail(*, command: Command, error: str, at: datetime) -> None:
    command.state = CommandState.FAILED
    command.finished_at = at
    command.error = error
    Command.objects.filter(pk=command.pk).update(state=command.state, finished_at=at, error=error)
    messaging.publish(
        "heating.command_failed", {**_command_data(command, at), "error": error}, source=SOURCE, occurred_at=at
    )


def _command_data(command: Command, at: datetime) -> dict:
    return {
        "command": command.pk,
        "node": command.node.key,
        "endpoint": command.endpoint,
        "register": command.register_id,
        "value": command.requested_value,
        "attempts": command.attempts,
        "requested_at": format_utc(command.requested_at),
        "latency_ms": round((at - command.requested_at).total_seconds() * 1000, 1),
    }


# --- the modem link --------------------------------------------------------------------------------------------


@transaction.atomic
def link_state_record(*, up: bool, port: str, detail: str, at: datetime, publish: bool, **details: Any) -> None:
    """The worker's heartbeat with the modem link's state in it; ``publish`` when the state changed."""
    heartbeat_record(
        name=WORKER_HEARTBEAT,
        interval_seconds=details.pop("interval_seconds", 30.0),
        details={"link_up": up, "port": port, "detail": detail, "at": format_utc(at), **details},
    )
    if publish:
        messaging.publish(
            "heating.link_changed",
            {"link": "modem", "up": up, "port": port, "detail": detail},
            source=SOURCE,
            occurred_at=at,
        )
