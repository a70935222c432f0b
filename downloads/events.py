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
    """One ``downloads.served`` and one ``downloads.refused`` event per audit batch, summing up its attempts.

    Per batch and as a summary: a busy download path makes thousands of attempts a second, and an outbox row
    (or a JSON list) for each would cost more than serving them (bench/downloads.py). The attempts themselves
    are in the audit (``/v1/download-events``).
    """
    groups: dict[str, list] = {"downloads.served": [], "downloads.refused": []}
    for attempt in attempts:
        groups["downloads.served" if attempt.served else "downloads.refused"].append(attempt)
    for type, group in groups.items():
        if not group:
            continue
        outcomes: dict[str, int] = {}
        customers: dict[str, int] = {}
        for attempt in group:
            outcomes[attempt.outcome] = outcomes.get(attempt.outcome, 0) + 1
            customers[attempt.customer] = customers.get(attempt.customer, 0) + 1
        links = sorted({attempt.link_id for attempt in group if attempt.link_id is not None})
        data = {
            "count": len(group),
            "first_at": group[0].at.isoformat(),
            "last_at": group[-1].at.isoformat(),
            "outcomes": outcomes,
            "customers": dict(sorted(customers.items(), key=lambda item: -item[1])[:50]),
            "links": links[:100],
            "bytes": sum(attempt.bytes_sent for attempt in group),
        }
        _publish(type, data, occurred_at=group[-1].at)
