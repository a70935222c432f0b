"""Helpers for browser tests: the hub served by uvicorn on a thread, Chromium's launch, signing in through the form.

The fixtures that use these live in ``tests/browser/conftest.py``; put browser tests under ``tests/browser/``.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from pathlib import Path

import uvicorn

from tests.support.waiting import wait_until

CHROMIUM = Path(os.environ.get("HUB_TEST_CHROMIUM", "/usr/bin/chromium"))
# Headless, no sandbox (containers), and nothing Chromium would fetch on its own: tests reach only 127.0.0.1.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}
ARTIFACTS = Path(os.environ.get("HUB_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
# The password every browser-test user gets; long and uncommon enough for the hub's validators.
PASSWORD = "plum-orchard-velvet-42"


class HubServer:
    """The real ASGI application under uvicorn on a free 127.0.0.1 port, in a background thread."""

    def __init__(self, app, *, port: int = 0, start_timeout: float = 15.0) -> None:
        # port 0: a free one; a test that stops a server and starts it again passes the port it had.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port))
        host, port = self._socket.getsockname()
        self.port = port
        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="hub-test-server", daemon=True
        )
        self._thread.start()
        wait_until(lambda: self._server.started or not self._thread.is_alive(), timeout=start_timeout)
        if not self._server.started:
            raise RuntimeError(f"the hub's test server did not start within {start_timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self._socket.close()


def artifact_name(nodeid: str) -> str:
    """A file-name-safe stem for a test id: ``tests/browser/test_x.py::test_y[phone]`` → ``test_x-test_y-phone``."""
    stem = nodeid.split("/")[-1].replace(".py::", "-")
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-")


def login(page, user, password: str = PASSWORD) -> None:
    """Sign ``user`` in through the hub's login form on ``page`` and wait for the dashboard."""
    page.goto("/login/")
    page.get_by_label("Username").fill(user.get_username())
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"^https?://[^/]+/(\?.*)?$"))
