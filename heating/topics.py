"""How the heating app names things on the bus, in lagarto's shapes: its topics, endpoint ids and payload values."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from heating.swap import DeviceDefinition, Endpoint


def measure_topic(*, location: str, endpoint_id: str) -> str:
    """lagarto's ``/<location>/measure/<id>`` under the house prefix (an empty prefix gives lagarto's exact shape)."""
    return f"{settings.MQTT_HOME_PREFIX}/{location}/measure/{endpoint_id}"


def lagarto_value(endpoint: Endpoint, value: Any) -> Any:
    """lagarto shows binary endpoints as ``"on"``/``"off"``; numbers and text as they are."""
    if endpoint.type == "bin":
        return "on" if value else "off"
    return value


def definition_label(definition: DeviceDefinition) -> str:
    return f"{definition.developer}/{definition.product}"


def endpoint_find(definition: DeviceDefinition, *, address: int, name_or_id: str) -> Endpoint | None:
    """The endpoint named ``name_or_id``, or whose lagarto id (``161.12.0``) it is, on the node at ``address``."""
    for candidate in definition.endpoints:
        if candidate.name == name_or_id or candidate.lagarto_id(address) == name_or_id:
            return candidate
    return None
