"""Who may open ``/ws/push``: the origin check and the bearer-token / session authentication (convention 6).

* A browser always sends ``Origin``: it must name an allowed host (``ALLOWED_HOSTS``), else the handshake is
  refused with 403. The connection then carries the browser's signed-in session.
* A connection without ``Origin`` is not a browser: it goes on to the bearer-token check (Channels'
  ``AllowedHostsOriginValidator`` would refuse it outright). ``Authorization: Bearer <token>`` must be a live
  django-oauth-toolkit token of an active user with the scope ``push:read`` (or the umbrella ``read``).
* Anyone else arrives as ``AnonymousUser``; the consumer accepts and closes with 4401, so a script learns why.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from channels.auth import get_user
from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from channels.sessions import SessionMiddlewareStack
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.request import validate_host

from hub.api.scopes import scope_granted

PUSH_SCOPE = "push:read"


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def origin_allowed(origin: str, *, host: str | None = None) -> bool:
    """Whether a browser's ``Origin`` may connect: the page came from the hub itself (same host and port as the
    ``Host`` header), from one of ``ALLOWED_HOSTS``, or from ``CSRF_TRUSTED_ORIGINS``.

    ``ALLOWED_HOSTS = ["*"]`` (the embedded default on 0.0.0.0) does not let every site in: a page elsewhere
    could otherwise open the socket with the user's cookies. ``null`` and non-http origins never pass.
    """
    try:
        parts = urlsplit(origin)
        origin_host = parts.hostname
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not origin_host:
        return False
    if host is not None and parts.netloc.lower() == host.lower():
        return True
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    allowed = [pattern for pattern in settings.ALLOWED_HOSTS if pattern != "*"]
    return validate_host(origin_host, allowed)


class OriginCheck:
    """Refuse a WebSocket whose ``Origin`` is not an allowed host (403); let one without ``Origin`` through."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            origin = _header(scope, b"origin")
            if origin is not None and not origin_allowed(origin, host=_header(scope, b"host")):
                return await WebsocketDenier()(scope, receive, send)
        return await self.app(scope, receive, send)


def bearer_token_user(token: str, *, scope: str = PUSH_SCOPE):
    """The user a live token with ``scope`` acts for, else ``AnonymousUser`` (expired, unknown, wrong scope)."""
    from oauth2_provider.models import get_access_token_model

    # Tokens are stored as their SHA-256 (as django-oauth-toolkit itself looks them up).
    checksum = hashlib.sha256(token.encode("utf-8")).hexdigest()
    access_token = get_access_token_model().objects.select_related("user").filter(token_checksum=checksum).first()
    if access_token is None or access_token.is_expired() or access_token.user is None:
        return AnonymousUser()
    if not access_token.user.is_active or not scope_granted(access_token.scope or "", scope):
        return AnonymousUser()
    return access_token.user


user_for_bearer_token = database_sync_to_async(bearer_token_user)


class PushAuthMiddleware:
    """Set ``scope["user"]``: from a bearer token, else (browsers only) from the session, else anonymous."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        authorization = _header(scope, b"authorization") or ""
        method, _, credentials = authorization.partition(" ")
        if method.lower() == "bearer" and credentials.strip():
            scope["user"] = await user_for_bearer_token(credentials.strip())
            scope["push_auth"] = "bearer"
            scope["push_token"] = credentials.strip()
        elif _header(scope, b"origin") is not None:
            scope["user"] = await get_user(scope)
            scope["push_auth"] = "session"
        else:
            scope["user"] = AnonymousUser()
            scope["push_auth"] = None
        return await self.app(scope, receive, send)


def push_auth_stack(app):
    """The origin check, the session (cookies) and :class:`PushAuthMiddleware` around ``app``."""
    return OriginCheck(SessionMiddlewareStack(PushAuthMiddleware(app)))


@database_sync_to_async
def still_authenticated(scope) -> bool:
    """Whether the credentials a socket was opened with still hold: the account active, and the token still
    live with its scope, or the session not signed out. Sockets re-check now and then, as the REST API does on
    every request."""
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        return False
    if scope.get("push_auth") == "bearer":
        current = bearer_token_user(scope["push_token"])
        return current.is_authenticated and current.pk == user.pk
    from django.contrib.auth import get_user_model

    if not get_user_model().objects.filter(pk=user.pk, is_active=True).exists():
        return False
    session = scope.get("session")
    return session is None or session.session_key is None or session.exists(session.session_key)
