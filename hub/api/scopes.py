"""The OAuth 2.0 scopes of the hub's API: ``<app>:read`` / ``<app>:write`` and the umbrellas ``read`` / ``write``.

Each app registers its pair from its ``AppConfig.ready`` (hub names no app)::

    from hub.api.scopes import register_scopes

    register_scopes("heating", order=10)

django-oauth-toolkit and the OpenAPI document read them through :class:`RegisteredScopes` (the
``SCOPES_BACKEND_CLASS`` in ``hub/settings.py``). Pure (no Django at import).
"""

from __future__ import annotations

ACCESSES = ("read", "write")
UMBRELLAS: dict[str, str] = {
    "read": "Read everything the user may read",
    "write": "Change everything the user may change",
}

#: app → its place in the list (lower first; equal places keep registration order).
_apps: dict[str, int] = {}


def register_scopes(app: str, *, order: int) -> None:
    """Add ``<app>:read`` and ``<app>:write`` (described "Read <app>", "Write <app>")."""
    if not app or ":" in app or " " in app:
        raise ValueError(f"a scope's app is one word without ':' or spaces, not {app!r}")
    _apps[app] = order


def unregister_scopes(app: str) -> None:
    _apps.pop(app, None)


def scoped_apps() -> tuple[str, ...]:
    """The apps with scopes, in the order the API lists them."""
    return tuple(sorted(_apps, key=_apps.__getitem__))  # sorted() is stable: ties keep registration order


def api_scopes() -> dict[str, str]:
    """Every scope a token may carry with its description: the umbrellas, then each app's read and write."""
    return {
        **UMBRELLAS,
        **{f"{app}:{access}": f"{access.capitalize()} {app}" for app in scoped_apps() for access in ACCESSES},
    }


def umbrella_of(scope: str) -> str | None:
    """``events:read`` → ``read``: the umbrella scope that also grants ``scope``."""
    _app, sep, access = scope.partition(":")
    return access if sep and access in ACCESSES else None


def scope_granted(granted: str | list[str] | set[str], scope: str) -> bool:
    """Whether a token holding ``granted`` (space-separated or a collection) may act under ``scope``."""
    held = set(granted.split()) if isinstance(granted, str) else set(granted)
    return scope in held or umbrella_of(scope) in held


class RegisteredScopes:
    """django-oauth-toolkit's scopes backend over the registered scopes (its ``BaseScopes`` interface).

    Settings are read before the apps register, so the scopes cannot be a dict in ``OAUTH2_PROVIDER``.
    """

    def get_all_scopes(self) -> dict[str, str]:
        return api_scopes()

    def get_available_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        return list(api_scopes())

    def get_default_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        from oauth2_provider.settings import oauth2_settings

        return [scope for scope in oauth2_settings.DEFAULT_SCOPES if scope in api_scopes()]
