"""Filters for the Events page: the hub's one date format and an event's JSON."""

from __future__ import annotations

import json

from django import template

from hub.timefmt import format_utc

register = template.Library()


@register.filter
def hub_time(moment) -> str:
    return format_utc(moment) if moment else ""


@register.filter
def compact_json(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@register.filter
def envelope_json(event) -> str:
    envelope = {
        "id": str(event.id),
        "type": event.type,
        "occurred_at": format_utc(event.occurred_at),
        "source": event.source,
        "data": event.data,
    }
    if event.topics:
        envelope["topics"] = event.topics
    return json.dumps(envelope, indent=2, ensure_ascii=False)
