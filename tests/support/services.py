"""Where the real local services are, and whether a test may skip when one is missing.

With ``CI`` set a missing service fails the test; without it the test skips with a reason.
URLs come from the ``TEST_*_URL`` variables, else the services' standard local ports.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

DEFAULT_URLS = {
    "postgres": "postgres://postgres@127.0.0.1:5432/test",
    "redis": "redis://127.0.0.1:6379/0",
    "amqp": "amqp://guest:guest@127.0.0.1:5672//",
    "mqtt": "mqtt://127.0.0.1:1883",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def service_url(kind: str) -> str:
    return os.environ.get(f"TEST_{kind.upper()}_URL", DEFAULT_URLS[kind])


def reachable(url: str, timeout: float = 1.0) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(kind: str) -> str:
    """The service's URL, or skip (fail under CI) when nothing listens there."""
    url = service_url(kind)
    if not reachable(url):
        message = f"{kind} is not reachable at {url}"
        if in_ci():
            pytest.fail(f"{message} (CI is set, so a missing service is a failure)")
        pytest.skip(f"{message}; start it or set TEST_{kind.upper()}_URL")
    return url
