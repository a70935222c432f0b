"""Staff-only pages: the rule of who counts as staff is :func:`hub.roles.user_is_staff`."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, user_passes_test
from django.core.exceptions import PermissionDenied

from hub.roles import user_is_staff


def _staff_or_forbidden(user) -> bool:
    # A signed-in household member gets a 403, not another trip to the login page.
    if not user_is_staff(user):
        raise PermissionDenied("This page is for the hub's staff.")
    return True


def staff_required(view):
    """Sign-in first (redirect to the login page), then staff only (403)."""
    return login_required(user_passes_test(_staff_or_forbidden)(view))
