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


def publish_attempts(attempts) -> None:
    """One ``downloads.served`` and one ``downloads.refused`` event per audit batch, listing its attempts.

    Per batch, not per attempt: a busy download path makes thousands of attempts a second, and one outbox
    row each would cost more than serving them (bench/downloads.py measured ~0.5 ms a row here).
    """
    by_type: dict[str, list] = {"downloads.served": [], "downloads.refused": []}
    for attempt in attempts:
        by_type["downloads.served" if attempt.served else "downloads.refused"].append(
            {
                "at": attempt.at.isoformat(),
                "link": attempt.link_id,
                "customer": attempt.customer,
                "path": attempt.path,
                "status": attempt.status,
                "outcome": attempt.outcome,
                "range": attempt.range,
                "bytes": attempt.bytes_sent,
                "accel": attempt.accel,
            }
        )
    for type, items in by_type.items():
        if items:
            _publish(type, {"count": len(items), "attempts": items}, occurred_at=attempts[-1].at)
