"""The downloads app's events on the bus: links created and revoked, and one event per download attempt.

An attempt's event carries the client's IP (the audit's subscribers need it to spot abuse) but not its user
agent, which stays in the audit (``/v1/download-events``).
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

from django.contrib.auth.models import AbstractBaseUser

import messaging
from hub.timefmt import format_utc

SOURCE = "hub.downloads"


def _publish(type: str, data: dict, *, occurred_at=None) -> None:
    messaging.publish(type, data, source=SOURCE, occurred_at=occurred_at)


def publish_link_event(type: str, link, *, by: AbstractBaseUser | None = None) -> None:
    _publish(
        type,
        {
            "link": link.pk,
            "customer": link.customer.slug,
            "path": link.path,
            "expires_at": link.expires_at.isoformat(),
            "max_downloads": link.max_downloads,
            "format": link.format,
            "by": by.get_username() if by is not None else None,
        },
    )


def publish_attempts(attempts) -> None:
    """One ``downloads.served`` (200/206) or ``downloads.refused`` (anything else) event per download attempt.

    Queued with one ``publish_many`` (one COPY or insert for the whole batch) in the caller's transaction, the
    audit writer's: a rolled-back batch publishes nothing. One ``publish`` per attempt was one INSERT each
    (~0.5 ms). The events are built as ``messaging.new_event`` builds them (a fresh id, the time in UTC to the
    millisecond) without its checks, which cost a third of an attempt's audit (bench/download_audit.py) and
    cannot fail here: the payload is strings, integers and None, a few hundred bytes.
    """
    attempts = list(attempts)
    if not attempts:
        return
    # One read of the random source for the whole batch instead of one per event (uuid4 does the same per id).
    random = os.urandom(16 * len(attempts))
    messaging.publish_many(
        messaging.Event(
            id=uuid.UUID(bytes=random[16 * index : 16 * index + 16], version=4),
            type="downloads.served" if attempt.served else "downloads.refused",
            occurred_at=_millisecond(attempt.at),
            source=SOURCE,
            data={
                "link": attempt.link_id,
                "customer": attempt.customer,
                "path": attempt.path,
                "method": attempt.method,
                "status": attempt.status,
                "outcome": attempt.outcome,
                "range": attempt.range,
                "bytes": attempt.bytes_sent,
                "ip": attempt.ip,
                "at": format_utc(attempt.at),
            },
        )
        for index, attempt in enumerate(attempts)
    )


def _millisecond(at: datetime) -> datetime:
    """``at`` in UTC to the millisecond, the precision ``messaging.new_event`` keeps (the wire format's)."""
    utc = at.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)
