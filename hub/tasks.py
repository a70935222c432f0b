"""Periodic work of the hub itself (scheduled in ``CELERY_BEAT_SCHEDULE``)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="hub.clear_expired_tokens")
def clear_expired_tokens() -> None:
    """Delete expired OAuth tokens and grants, as django-oauth-toolkit's ``cleartokens`` does; idempotent.

    Without it every token a script ever got stays in the database (and in the admin) for good.
    """
    from oauth2_provider.models import clear_expired

    clear_expired()
