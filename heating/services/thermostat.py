"""Writes of the thermostat (heating.thermostat_runner, in the serial worker): its decisions, recorded when their
outcome or reason changes and hourly, and the alerts it raises and clears, which people acknowledge. Each publishes its
event (``heating.decision``, ``heating.alert_*``) through :func:`messaging.publish` in the same transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

import messaging
from heating.models import (
    Alert,
    AlertKind,
    Decision,
    Room,
)
from heating.services.radio import SOURCE
from hub.timefmt import format_utc

#: A decision equal to the room's last recorded one (same outcome, same reason) is recorded again after this long, so
#: the room page and the event log show the thermostat still deciding.
DECISION_REPEAT = timedelta(hours=1)


def decision_record(
    *, room: Room, at: datetime, heat: bool, reason: str, target: float | None, temperature: float | None
) -> Decision | None:
    """Record the thermostat's decision for ``room`` and publish it as ``heating.decision``, only when its outcome or
    reason differs from the room's last recorded decision or that one is ``DECISION_REPEAT`` old; else ``None``."""
    with transaction.atomic():
        last = Decision.objects.filter(room=room).order_by("-at", "-id").first()
        changed = last is None or (last.heat, last.reason) != (heat, reason)
        if not changed and at - last.at < DECISION_REPEAT:
            return None
        decision = Decision.objects.create(
            room=room, at=at, heat=heat, reason=reason, target=target, temperature=temperature
        )
        messaging.publish(
            "heating.decision",
            {
                "room": room.slug,
                "heat": heat,
                "reason": reason,
                "target": target,
                "temperature": temperature,
                "changed": changed,
                "at": format_utc(at),
            },
            source=SOURCE,
            occurred_at=at,
        )
    return decision


def _open_alerts(room: Room | None, kind: str):
    return Alert.objects.filter(room=room, kind=kind, cleared_at__isnull=True)


def alert_raise(*, room: Room | None, kind: str, message: str, at: datetime) -> Alert | None:
    """Open an alert of ``kind`` (``AlertKind``) for ``room`` and publish ``heating.alert_raised``; ``None`` when
    one is already open (raising again while open changes nothing)."""
    if kind not in AlertKind.values:
        raise ValueError(f"{kind!r} is not an alert kind ({', '.join(AlertKind.values)})")
    try:
        with transaction.atomic():
            if _open_alerts(room, kind).exists():
                return None
            alert = Alert.objects.create(room=room, kind=kind, message=message[:300], raised_at=at)
            messaging.publish("heating.alert_raised", _alert_data(alert), source=SOURCE, occurred_at=at)
    except IntegrityError:
        return None  # another process opened it between the check and the insert
    return alert


def alert_clear(*, room: Room | None, kind: str, at: datetime) -> Alert | None:
    """Close the open alert of ``kind`` for ``room`` (its condition is over) and publish ``heating.alert_cleared``;
    ``None`` when none was open."""
    with transaction.atomic():
        alert = _open_alerts(room, kind).select_for_update().first()
        if alert is None:
            return None
        alert.cleared_at = at
        alert.save(update_fields=["cleared_at"])
        messaging.publish("heating.alert_cleared", _alert_data(alert), source=SOURCE, occurred_at=at)
    return alert


def alert_acknowledge(*, alert: Alert, by=None, at: datetime) -> Alert:
    """Someone has seen the alert: it stays open until its condition clears, but no longer asks for attention.
    Publishes ``heating.alert_acknowledged`` (so every open page shows who saw it at once); acknowledging an alert
    already acknowledged changes nothing and publishes nothing."""
    if alert.acknowledged_at is not None:
        return alert
    who = by if by is not None and by.is_authenticated else None
    with transaction.atomic():
        # Only the first of two people acknowledging at once records it (and announces it).
        if not Alert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
            acknowledged_at=at, acknowledged_by=who
        ):
            alert.refresh_from_db(fields=["acknowledged_at", "acknowledged_by"])
            return alert
        alert.acknowledged_at = at
        alert.acknowledged_by = who
        messaging.publish(
            "heating.alert_acknowledged",
            {**_alert_data(alert), "by": who.get_username() if who is not None else None, "at": format_utc(at)},
            source=SOURCE,
            occurred_at=at,
        )
    return alert


def _alert_data(alert: Alert) -> dict:
    return {
        "alert": alert.pk,
        "room": alert.room.slug if alert.room is not None else None,
        "kind": alert.kind,
        "title": alert.get_kind_display(),
        "message": alert.message,
        "raised_at": format_utc(alert.raised_at),
        "cleared_at": format_utc(alert.cleared_at) if alert.cleared_at else None,
    }
