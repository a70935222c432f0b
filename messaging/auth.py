"""Who may open ``/ws/push``: the origin check and the bearer-token / session authentication.

* A browser always sends ``Origin``: it must be one of the hub's own origins (:func:`origin_allowed`: scheme,
  host and port all equal), else the handshake is refused with 403. The connection then carries the browser's
  signed-in session.
* A connection without ``Origin`` is not a browser: it goes on to the bearer-token check (Channels'
  ``AllowedHostsOriginValidator`` would refuse it outright). ``Authorization: Bearer <token>`` must be a live
  django-oauth-toolkit token of an active user with the scope ``push:read`` (or the umbrella ``read``).
* Anyone else arrives as ``AnonymousUser``; the consumer accepts and closes with 4401, so a script learns why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from importlib import import_module
from urllib.parse import urlsplit

from channels.auth import get_user
from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from channels.sessions import CookieMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.request import split_domain_port, validate_host

from hub.api.scopes import scope_granted

PUSH_SCOPE = "push:read"


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


DEFAULT_PORTS = {"http": 80, "https": 443}

#: (scheme, host in lower case, port with the scheme's default made explicit)
Origin = tuple[str, str, int]


def parse_origin(text: str) -> Origin | None:
    """An http(s) origin as (scheme, host, port), else None (``null``, ``file://``, a path, credentials, a bad port)."""
    try:
        parts = urlsplit(text)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not host:
        return None
    if parts.path or parts.query or parts.fragment or parts.username is not None or parts.password is not None:
        return None
    return parts.scheme, host, DEFAULT_PORTS[parts.scheme] if port is None else port


def _matches_trusted(origin: Origin, trusted: str) -> bool:
    """Django's ``CSRF_TRUSTED_ORIGINS`` rule: exact, or ``scheme://*.domain[:port]`` for the domain and its
    subdomains (the same scheme and port)."""
    wildcard = "://*." in trusted
    pattern = parse_origin(trusted.replace("://*.", "://", 1) if wildcard else trusted)
    if pattern is None:
        return False
    scheme, host, port = origin
    if not wildcard:
        return origin == pattern
    return scheme == pattern[0] and port == pattern[2] and (host == pattern[1] or host.endswith("." + pattern[1]))


def origin_allowed(
    origin: str,
    *,
    host: str | None,
    secure: bool,
    public_url: str,
    trusted_origins: Iterable[str],
    allowed_hosts: Iterable[str],
) -> bool:
    """Whether a browser's ``Origin`` is one of the hub's own, compared as (scheme, host, port):

    * ``public_url``'s origin (``HUB_PUBLIC_URL``);
    * ``<scheme>://<host>``, the ``Host`` header the browser sent, with https when the socket is secure (wss, or
      https at the proxy as the ASGI server reports it) — only when that host is one of ``allowed_hosts``, as
      Django asks of every page it serves;
    * an entry of ``trusted_origins`` (``CSRF_TRUSTED_ORIGINS``, with Django's ``*.`` subdomain rule).

    A matching host alone is not enough: a page on another port or scheme of the same host is another site to
    the browser, and ``ALLOWED_HOSTS`` admits no origin by itself. ``null`` and non-http origins never pass.
    """
    parsed = parse_origin(origin)
    if parsed is None:
        return False
    public = urlsplit(public_url)
    if parsed == parse_origin(f"{public.scheme}://{public.netloc}"):  # the URL may carry a path; its origin counts
        return True
    if host:
        domain, _port = split_domain_port(host)
        scheme = "https" if secure else "http"
        if domain and validate_host(domain, list(allowed_hosts)) and parsed == parse_origin(f"{scheme}://{host}"):
            return True
    return any(_matches_trusted(parsed, trusted) for trusted in trusted_origins)


def scope_origin_allowed(scope, origin: str) -> bool:
    """:func:`origin_allowed` for a WebSocket's ASGI scope and this hub's settings.

    ``wss`` in the scope means TLS reached this server, or (in production) that nginx said https and uvicorn,
    trusting nginx's address alone, rewrote the scheme; the header itself is never read here.
    """
    return origin_allowed(
        origin,
        host=_header(scope, b"host"),
        secure=scope.get("scheme", "ws") == "wss",
        public_url=settings.HUB_PUBLIC_URL,
        trusted_origins=settings.CSRF_TRUSTED_ORIGINS,
        allowed_hosts=settings.ALLOWED_HOSTS,
    )


class OriginCheck:
    """Refuse a WebSocket whose ``Origin`` is not one of the hub's own (403); let one without ``Origin`` through."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            origin = _header(scope, b"origin")
            if origin is not None and not scope_origin_allowed(scope, origin):
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


class ReadOnlySession:
    """``scope["session"]``: the session the request's cookie names, loaded from the store when first read.

    In place of Channels' ``SessionMiddleware``, which also wraps every ``send`` of the connection to save a
    changed session when the response starts: on ``/ws/push`` that wrapper ran for every frame (about a tenth of
    a web process's CPU per delivery, bench/push.py) and had nothing to save, as a push socket never changes its
    session (signing out elsewhere deletes it, which the socket notices: :func:`still_authenticated`).
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        store = import_module(settings.SESSION_ENGINE).SessionStore
        session_key = scope["cookies"].get(settings.SESSION_COOKIE_NAME)
        return await self.app(dict(scope, session=store(session_key)), receive, send)


def push_auth_stack(app):
    """The origin check, the cookies, the session (read only) and :class:`PushAuthMiddleware` around ``app``."""
    return OriginCheck(CookieMiddleware(ReadOnlySession(PushAuthMiddleware(app))))


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
