"""Writes that belong to the hub itself (shared by every app)."""

from __future__ import annotations

import secrets

from django.utils import timezone

from hub.models import Heartbeat


def heartbeat_record(*, name: str, interval_seconds: float, details: dict | None = None) -> None:
    """Record that worker ``name`` is alive; it promises to call again within ``interval_seconds``."""
    Heartbeat.objects.update_or_create(
        name=name,
        defaults={"beat_at": timezone.now(), "interval_seconds": interval_seconds, "details": details or {}},
    )


def admin_account_ensure(*, username: str = "admin") -> str | None:
    """Create the first admin account when there is none; return its generated password (once), else None."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user_model = get_user_model()
    if user_model.objects.filter(is_superuser=True).exists():
        return None
    password = secrets.token_urlsafe(12)
    user = user_model.objects.create_superuser(username=username, email="", password=password)
    user.groups.add(*Group.objects.filter(name__in=["staff", "household"]))
    return password
