"""The downloads app's events on the bus: links created and revoked, and one event per download attempt.

An attempt's event carries the client's IP (the audit's subscribers need it to spot abuse) but not its user
agent, which stays in the audit (``/v1/download-events``).
"""

from __future__ import annotations

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

    Built with ``messaging.new_event`` and queued with one ``publish_many`` (one insert for the whole batch) in
    the caller's transaction, the audit writer's: a rolled-back batch publishes nothing. One ``publish`` per
    attempt was one INSERT each (~0.5 ms); see bench/downloads.py part 5 for what a batch costs now.
    """
    messaging.publish_many(
        messaging.new_event(
            "downloads.served" if attempt.served else "downloads.refused",
            {
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
            source=SOURCE,
            occurred_at=attempt.at,
        )
        for attempt in attempts
    )
