"""The OAuth 2.0 scopes of the hub's API: ``<app>:read`` / ``<app>:write`` and the umbrellas ``read`` / ``write``.

Pure (no Django): ``hub/settings.py`` hands ``API_SCOPES`` to django-oauth-toolkit.
"""

from __future__ import annotations

SCOPED_APPS = ("heating", "downloads", "events", "push", "users")
ACCESSES = ("read", "write")

API_SCOPES: dict[str, str] = {
    "read": "Read everything the user may read",
    "write": "Change everything the user may change",
    **{f"{app}:{access}": f"{access.capitalize()} {app}" for app in SCOPED_APPS for access in ACCESSES},
}


def umbrella_of(scope: str) -> str | None:
    """``events:read`` → ``read``: the umbrella scope that also grants ``scope``."""
    _app, sep, access = scope.partition(":")
    return access if sep and access in ACCESSES else None


def scope_granted(granted: str | list[str] | set[str], scope: str) -> bool:
    """Whether a token holding ``granted`` (space-separated or a collection) may act under ``scope``."""
    held = set(granted.split()) if isinstance(granted, str) else set(granted)
    return scope in held or umbrella_of(scope) in held
