"""Periodic work of the heating app (``CELERY_BEAT_SCHEDULE`` in hub/settings.py)."""

from __future__ import annotations

import logging

from celery import shared_task

from heating.services import readings_prune as prune

logger = logging.getLogger(__name__)


@shared_task(name="heating.tasks.readings_prune")
def readings_prune() -> int:
    """Delete readings older than ``READINGS_RETENTION_DAYS``; idempotent, so a second run just finds none."""
    deleted = prune()
    if deleted:
        logger.info("pruned %d readings older than the retention period", deleted)
    return deleted
