"""Who counts as staff on the hub's pages: Django's ``is_staff`` flag or membership of the ``staff`` group."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, user_passes_test
from django.core.exceptions import PermissionDenied

STAFF_GROUP = "staff"
HOUSEHOLD_GROUP = "household"


def user_is_staff(user) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff or user.is_superuser:
        return True
    return user.groups.filter(name=STAFF_GROUP).exists()


def _staff_or_forbidden(user) -> bool:
    # A signed-in household member gets a 403, not another trip to the login page.
    if not user_is_staff(user):
        raise PermissionDenied("This page is for the hub's staff.")
    return True


def staff_required(view):
    """Sign-in first (redirect to the login page), then staff only (403)."""
    return login_required(user_passes_test(_staff_or_forbidden)(view))
