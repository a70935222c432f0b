"""Fixtures for the downloads app: a downloads root, keys, a customer, a lean app and a tiny ASGI client; and a real
nginx serving the file the side-by-side tests compare the hub with (tests/downloads/nginx_support.py)."""

from __future__ import annotations

import asyncio
import base64
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from downloads.asgi import DownloadApp, config_from_settings
from downloads.audit import AuditWriter
from downloads.signing import KeyRing
from tests.deploy.nginx_site import free_port, nginx_binary, nginx_running
from tests.downloads.accel_support import nginx_accel_site
from tests.downloads.nginx_support import (
    CONTENT,
    MODIFIED,
    SERVED_NAME,
    STATIC_HTTP,
    static_locations,
    write_nginx_conf,
)
from tests.support.downloads_files import downloads_tree

POST_SECRET = "This is just a long string to set a seed"
KEYS = KeyRing((("k2", b"k" * 32), ("k1", b"o" * 32)))
#: KEYS as DOWNLOADS_KEYS spells them (the settings keep the text; downloads.keys makes the ring).
KEYS_SETTING = "k2:" + base64.b64encode(b"k" * 32).decode() + ",k1:" + base64.b64encode(b"o" * 32).decode()


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    chunks: int


async def asgi_request(app, path: str, *, method: str = "GET", headers=(), client=("203.0.113.7", 5555)):
    """Call ``app`` with one HTTP request the way uvicorn would (path already percent-decoded)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "query_string": b"",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": client,
        "server": ("127.0.0.1", 8000),
    }
    received = asyncio.Event()
    messages = []

    async def receive():
        if not received.is_set():
            received.set()
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client never leaves in these tests

    async def send(message):
        messages.append(message)

    await app(scope, receive, send)
    start = messages[0]
    assert start["type"] == "http.response.start"
    bodies = [m for m in messages[1:] if m["type"] == "http.response.body"]
    assert bodies, "no body message"
    assert not bodies[-1].get("more_body", False), "the response never ended"
    return Response(
        start["status"],
        {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start["headers"]},
        b"".join(m.get("body", b"") for m in bodies),
        len(bodies),
    )


def fetch(app, path: str, **kwargs) -> Response:
    """:func:`asgi_request` from synchronous test code (where the ORM may be used freely)."""
    return asyncio.run(asgi_request(app, path, **kwargs))


@pytest.fixture(autouse=True)
def _fresh_link_record_cache():
    """Each test starts with an empty record cache (links of two tests can share a signature)."""
    from downloads.selectors import link_records

    link_records.clear()
    yield
    link_records.clear()


@pytest.fixture
def downloads_root(tmp_path, settings):
    root = downloads_tree(tmp_path)
    settings.DOWNLOADS_ROOT = root
    settings.DOWNLOADS_KEYS = KEYS_SETTING
    settings.DOWNLOADS_LEGACY_SECRET = ""
    settings.DOWNLOADS_LEGACY_TZ = ZoneInfo("Europe/Madrid")
    settings.DOWNLOADS_ACCEL_LOCATION = ""
    settings.DOWNLOADS_HOST = ""
    settings.DOWNLOADS_PREFIX = "/dl/"
    return root


@pytest.fixture
def customer(transactional_db):
    from downloads.services import customer_create

    return customer_create(slug="acme", name="ACME Corp")


@pytest.fixture
def audit_writer():
    """An audit writer that is never started: tests flush it when they want the rows written."""
    return AuditWriter(batch_rows=100, flush_interval=0.01)


@pytest.fixture
def make_app(downloads_root, audit_writer, settings):
    def make(*, clock=None, **overrides):
        for name, value in overrides.items():
            setattr(settings, name, value)
        kwargs = {"clock": clock} if clock else {}
        return DownloadApp(config_from_settings(), submit=audit_writer.submit, **kwargs)

    return make


@pytest.fixture
def make_link(customer, downloads_root):
    from downloads.services import link_create

    def make(path="dir1/example1.txt", *, days=7, **kwargs):
        return link_create(customer=customer, path=path, expires_at=datetime.now(UTC) + timedelta(days=days), **kwargs)

    return make


def link_path(link, prefix="/dl/") -> str:
    """The path a server hands the app for ``link`` (percent-decoded, as uvicorn does)."""
    from urllib.parse import unquote

    from downloads.signing import LinkParts

    return prefix + unquote(LinkParts(link.signature, link.customer.slug, link.expiry_text, link.path).as_path())


@pytest.fixture(scope="module")
def served_dir(tmp_path_factory):
    """A folder with nginx_support's CONTENT as SERVED_NAME, its mtime MODIFIED (so ETag and dates are fixed)."""
    root = tmp_path_factory.mktemp("same-as-nginx")
    root.chmod(0o755)
    (root / SERVED_NAME).write_bytes(CONTENT)
    os.utime(root / SERVED_NAME, (MODIFIED, MODIFIED))
    return root


@pytest.fixture(scope="module")
def nginx(served_dir, tmp_path_factory):
    """The machine's nginx serving ``served_dir`` over plain HTTP on a loopback port (the port is yielded)."""
    binary = nginx_binary()  # skips without nginx, fails under CI
    tmp = tmp_path_factory.mktemp("nginx")
    port = free_port()
    conf = write_nginx_conf(tmp, port, static_locations(served_dir), http=STATIC_HTTP)
    # nginx_running waits for the port it names "https"; this server listens there in plain HTTP.
    with nginx_running({"binary": binary, "conf": conf, "https": port}):
        yield port


@pytest.fixture
def nginx_in_front(tmp_path, transactional_db):
    """nginx with deploy/nginx.conf's X-Accel location in front of the download app: (its URL, the attempts)."""
    with nginx_accel_site(tmp_path) as site:
        yield site
