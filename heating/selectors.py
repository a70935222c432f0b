"""Reads of the heating app's radio half: device definitions, nodes with their latest values, readings, the link."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Q, QuerySet

from heating.models import Command, CommandState, Node, Reading
from heating.swap import DefinitionLibrary, DeviceDefinition
from heating.swap.definitions import SHIPPED_DEVICES_DIR, folder_state
from heating.swap.registers import system_state_name
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


def heating_overview(*, user=None) -> dict:
    """What the Heating page shows, JSON-ready: the modem link and each node with its latest values, signal,
    last-heard time, state and its last command; ``can_switch`` when the user may send commands."""

    def when(value):
        return format_utc(value) if value else None

    link = link_state()
    nodes = []
    for node in Node.objects.all():
        definition = node_definition(node)
        outputs = {e.name: e for e in definition.endpoints if e.writable and e.type == "bin"} if definition else {}
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
                        "value": reading.value,
                        "unit": reading.unit,
                        "at": when(reading.recorded_at),
                        "switch": reading.name in outputs,
                    }
                    for reading in latest_readings(node)
                ],
                "switches": sorted(outputs),
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
