"""Who counts as staff, one rule for the pages, the API and live push.

Staff is Django's ``is_staff`` flag (or a superuser) or membership of the ``staff``
group that the first migration creates, so an admin can make someone staff either way.
"""

from __future__ import annotations

STAFF_GROUP = "staff"


def user_is_staff(user) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff or user.is_superuser:
        return True
    return user.groups.filter(name=STAFF_GROUP).exists()
