"""Which browser origins may open ``/ws/push``: the rule as a table, then through the hub's ASGI application.

An origin passes only when scheme, host and port all equal one of the hub's own origins: ``HUB_PUBLIC_URL``'s,
``<scheme>://<Host header>`` (https when the socket is wss), or a ``CSRF_TRUSTED_ORIGINS`` entry.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from hub.asgi import build_application
from messaging.auth import origin_allowed
from tests.messaging.push_support import Socket, WebsocketCommunicator

pytestmark = pytest.mark.usefixtures("memory_bus")

SETTINGS_FILE = Path(__file__).resolve().parents[2] / "hub" / "settings.py"

PUBLIC = "https://hub.example"
TRUSTED = ["https://*.trusted.example", "http://lan.example:8080"]
ALLOWED = ["hub.example", "192.168.1.20", ".trusted.example"]

# (origin, Host header, socket is wss, allowed)
RULES = [
    # HUB_PUBLIC_URL's origin, whatever Host the socket came in by; the default port may be written out.
    ("https://hub.example", "127.0.0.1:8000", False, True),
    ("https://hub.example:443", "127.0.0.1:8000", False, True),
    ("https://HUB.example", "127.0.0.1:8000", False, True),
    # The same host on another port or scheme is another site.
    ("https://hub.example:8443", "127.0.0.1:8000", False, False),
    ("http://hub.example", "127.0.0.1:8000", False, False),
    # Look-alike hosts.
    ("https://evil-hub.example", "127.0.0.1:8000", False, False),
    ("https://hub.example.evil.com", "127.0.0.1:8000", False, False),
    ("https://evil.com", "hub.example.evil.com", True, False),
    # The Host the socket was opened with, in the socket's own scheme.
    ("http://192.168.1.20:8000", "192.168.1.20:8000", False, True),
    ("http://192.168.1.20:8001", "192.168.1.20:8000", False, False),
    ("https://192.168.1.20:8000", "192.168.1.20:8000", False, False),
    ("http://192.168.1.20", "192.168.1.20:80", False, True),
    ("https://192.168.1.20", "192.168.1.20", True, True),
    ("http://192.168.1.20", "192.168.1.20", True, False),
    # ...only when that Host is one Django would serve a page for (a rebound DNS name is not).
    ("http://rebound.example:8000", "rebound.example:8000", False, False),
    # ALLOWED_HOSTS alone admits no origin: the Host header says 192.168.1.20, the page came from hub.example:8000.
    ("http://hub.example:8000", "192.168.1.20:8000", False, False),
    # CSRF_TRUSTED_ORIGINS, with Django's "*." rule: the domain and its subdomains, same scheme and port.
    ("https://a.trusted.example", "127.0.0.1:8000", False, True),
    ("https://b.a.trusted.example:443", "127.0.0.1:8000", False, True),
    ("https://trusted.example", "127.0.0.1:8000", False, True),
    ("http://a.trusted.example", "127.0.0.1:8000", False, False),
    ("https://a.trusted.example:8443", "127.0.0.1:8000", False, False),
    ("https://eviltrusted.example", "127.0.0.1:8000", False, False),
    ("https://trusted.example.evil.com", "127.0.0.1:8000", False, False),
    ("http://lan.example:8080", "127.0.0.1:8000", False, True),
    ("http://lan.example", "127.0.0.1:8000", False, False),
    # Not an origin at all.
    ("null", "hub.example", True, False),
    ("file://", "hub.example", True, False),
    ("https://hub.example/path", "hub.example", True, False),
    ("https://someone@hub.example", "hub.example", True, False),
    ("https://hub.example:99999", "hub.example", True, False),
    ("https://[::1", "hub.example", True, False),
]


@pytest.mark.parametrize(("origin", "host", "secure", "allowed"), RULES)
def test_origin_rules(origin, host, secure, allowed):
    verdict = origin_allowed(
        origin, host=host, secure=secure, public_url=PUBLIC, trusted_origins=TRUSTED, allowed_hosts=ALLOWED
    )
    assert verdict is allowed


def test_the_public_urls_path_does_not_matter_and_a_missing_host_falls_back_to_the_other_rules():
    rules = {"public_url": "https://hub.example/hub", "trusted_origins": (), "allowed_hosts": ["*"]}
    assert origin_allowed("https://hub.example", host=None, secure=True, **rules)
    assert not origin_allowed("https://other.example", host=None, secure=True, **rules)


def test_ipv6_hosts_compare_without_brackets_mattering():
    rules = {"public_url": "http://127.0.0.1:8000", "trusted_origins": (), "allowed_hosts": ["[::1]"]}
    assert origin_allowed("http://[::1]:8000", host="[::1]:8000", secure=False, **rules)
    assert not origin_allowed("http://[::1]:8001", host="[::1]:8000", secure=False, **rules)


# --- through the ASGI application -----------------------------------------------------------------------------


def settings_under(monkeypatch, tmp_path, **environ: str) -> dict:
    """What ``hub/settings.py`` makes of exactly this environment (the running test's settings are untouched)."""
    for name in ("HUB_MODE", "HUB_BIND", "HUB_PUBLIC_URL", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HUB_VAR_DIR", str(tmp_path / "var"))
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE), run_name="hub_settings_under_test")


@pytest.fixture
def hub_configured(settings, monkeypatch, tmp_path):
    """``hub_configured(NAME=value, …)``: the origin settings the hub would have under that environment."""

    def configure(**environ: str) -> None:
        loaded = settings_under(monkeypatch, tmp_path, **environ)
        for name in ("HUB_PUBLIC_URL", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS"):
            setattr(settings, name, loaded[name])

    return configure


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def open_browser_socket(user, *, origin: str, host: str, scheme: str = "ws") -> tuple[bool, Socket]:
    cookie = await sync_to_async(session_cookie)(user)
    headers = [(b"host", host.encode()), (b"origin", origin.encode()), (b"cookie", cookie.encode())]
    communicator = WebsocketCommunicator(build_application(run_embedded=False), "/ws/push", headers)
    # What the server puts in the scope: wss for TLS, or after uvicorn's --proxy-headers trusted nginx's https.
    communicator.scope["scheme"] = scheme
    accepted, _code = await communicator.connect()
    return accepted, Socket(communicator)


async def assert_served(socket: Socket) -> None:
    assert await socket.subscribe("/home/#", 1) == {"op": "ack", "id": 1}, "the session's user is served"
    await socket.close()


async def test_a_phone_on_the_home_network_is_accepted_when_the_hub_listens_on_every_interface(
    household, hub_configured
):
    hub_configured(HUB_BIND="0.0.0.0:8000")
    accepted, socket = await open_browser_socket(household, origin="http://192.168.1.20:8000", host="192.168.1.20:8000")
    assert accepted
    await assert_served(socket)


@pytest.mark.parametrize(
    "origin",
    [
        "http://192.168.1.20:8001",  # another port on the same host
        "https://192.168.1.20:8000",  # another scheme
        "http://evil-hub.example:8000",  # look-alikes
        "http://192.168.1.20.evil.com:8000",
        "http://127.0.0.1:8001",
    ],
)
async def test_another_port_scheme_or_look_alike_host_is_refused_at_the_handshake(household, hub_configured, origin):
    hub_configured(HUB_BIND="0.0.0.0:8000")
    accepted, _socket = await open_browser_socket(household, origin=origin, host="192.168.1.20:8000")
    assert not accepted, f"{origin} must get 403, not the session's data"


PRODUCTION = {
    "HUB_MODE": "production",
    "SECRET_KEY": "a-production-key-that-is-long-and-random-enough-0123456789abcdef",
    "ALLOWED_HOSTS": "hub.example,downloads.hub.example",
    "AMQP_URL": "amqp://hub:secret@rabbitmq:5672//",
}


async def test_https_behind_nginx_is_accepted_and_http_on_the_same_host_is_not(household, hub_configured):
    # HUB_PUBLIC_URL unset on purpose: the Host rule alone must carry the proxied page.
    hub_configured(**PRODUCTION)
    accepted, socket = await open_browser_socket(
        household, origin="https://hub.example", host="hub.example", scheme="wss"
    )
    assert accepted
    await assert_served(socket)
    for origin in ("http://hub.example", "https://hub.example:8443", "https://evil-hub.example"):
        accepted, _socket = await open_browser_socket(household, origin=origin, host="hub.example", scheme="wss")
        assert not accepted, origin
    # Without https in the scope (X-Forwarded-Proto not from the trusted proxy), an https page is not this socket's.
    accepted, _socket = await open_browser_socket(household, origin="https://hub.example", host="hub.example")
    assert not accepted


async def test_hub_public_url_and_csrf_trusted_origins_are_accepted_whatever_the_host(household, hub_configured):
    hub_configured(**PRODUCTION, HUB_PUBLIC_URL="https://hub.example", CSRF_TRUSTED_ORIGINS="https://*.partner.example")
    for origin in ("https://hub.example", "https://app.partner.example"):
        accepted, socket = await open_browser_socket(household, origin=origin, host="downloads.hub.example")
        assert accepted, origin
        await assert_served(socket)
    for origin in ("https://hub.example.evil.com", "http://app.partner.example", "https://evilpartner.example"):
        accepted, _socket = await open_browser_socket(household, origin=origin, host="downloads.hub.example")
        assert not accepted, origin


async def test_allowed_hosts_alone_admits_no_origin(household, hub_configured):
    hub_configured(**PRODUCTION)
    # downloads.hub.example is an allowed host, but this socket was opened on hub.example.
    accepted, _socket = await open_browser_socket(
        household, origin="https://downloads.hub.example", host="hub.example", scheme="wss"
    )
    assert not accepted
