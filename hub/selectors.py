"""Reads that belong to the hub itself."""

from __future__ import annotations

from hub.models import Heartbeat


def heartbeat_get(name: str) -> Heartbeat | None:
    return Heartbeat.objects.filter(name=name).first()
