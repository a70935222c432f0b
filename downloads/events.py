"""The downloads app's events on the bus (``messaging.publish``): data only, no IPs or user agents."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

import messaging

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


def publish_attempt_event(attempt) -> None:
    _publish(
        "downloads.served" if attempt.served else "downloads.refused",
        {
            "link": attempt.link_id,
            "customer": attempt.customer,
            "path": attempt.path,
            "status": attempt.status,
            "outcome": attempt.outcome,
            "range": attempt.range,
            "bytes": attempt.bytes_sent,
            "accel": attempt.accel,
        },
        occurred_at=attempt.at,
    )
