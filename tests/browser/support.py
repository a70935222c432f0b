"""Helpers for browser tests: the hub served by uvicorn on a thread, Chromium's launch, signing in through the form,
and the rooms the household's pages are tested with (``a_room``, ``history_for``, ``radio_reporting``, ``tile``,
``wait_live``).

The fixtures that use these live in ``tests/browser/conftest.py``; put browser tests under ``tests/browser/``.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from datetime import timedelta
from pathlib import Path

import uvicorn
from django.utils import timezone

from hub.asgi import WEBSOCKET_IMPLEMENTATION
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
#: How long a page may take to show what a test waits for (ms).
WAIT_MS = 10_000
#: An iPhone 12-15's CSS width: the schedule editor is checked at it.
PHONE_390 = {"width": 390, "height": 844}


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
        config = uvicorn.Config(
            app,
            lifespan="on",
            log_level="warning",
            access_log=False,
            ws=WEBSOCKET_IMPLEMENTATION,  # the WebSocket implementation every server of the hub uses
            ws_per_message_deflate=False,
        )
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


# --- rooms -----------------------------------------------------------------------------------------------------


def radio_reporting(*, up: bool = True) -> None:
    from heating.services import WORKER_HEARTBEAT
    from hub.services import heartbeat_record

    heartbeat_record(
        name=WORKER_HEARTBEAT, interval_seconds=15, details={"link_up": up, "detail": "modem on the simulator"}
    )


def a_room(slug: str, name: str, address: int, *, temperature: float, heating: bool, position: int, **fields):
    from heating.models import Node, Reading, Room, RoomHeater

    heard = timezone.now() - timedelta(seconds=30)
    node = Node.objects.create(
        address=address,
        manufacturer_id=72,
        product_id=1,
        definition="heater/Room heater",
        name=f"{name} heater",
        location=slug,
        last_heard=heard,
        reachable=True,
        system_state=1,
    )
    Reading.objects.create(
        node=node, endpoint_id=f"{address}.11.0", name="RoomTemp", value=temperature, unit="C", recorded_at=heard
    )
    Reading.objects.create(node=node, endpoint_id=f"{address}.12.0", name="Heating", value=heating, recorded_at=heard)
    room = Room.objects.create(
        slug=slug, name=name, position=position, temperature_node=node, temperature_endpoint="RoomTemp", **fields
    )
    RoomHeater.objects.create(room=room, node=node, endpoint="Heating", power_w=1500)
    return room


def history_for(room, *, hours: int = 24) -> None:
    """A day of readings every 10 minutes, warming while the heater is on, and the thermostat's decisions."""
    from heating.models import Decision, Reading

    node = room.temperature_node
    start = timezone.now() - timedelta(hours=hours)
    temperature = 18.0
    readings, decisions = [], []
    heat = None
    for step in range(hours * 6):
        at = start + timedelta(minutes=10 * step)
        now_heat = temperature < 20.7 if heat is None or not heat else temperature < 21.3
        if now_heat != heat:
            reason = "on: below target" if now_heat else "off: at target"
            decisions.append(
                Decision(room=room, at=at, heat=now_heat, reason=reason, target=21.0, temperature=temperature)
            )
            heat = now_heat
        temperature += 0.12 if heat else -0.05
        readings.append(
            Reading(
                node=node,
                endpoint_id=f"{node.address}.11.0",
                name="RoomTemp",
                value=round(temperature, 2),
                unit="C",
                recorded_at=at,
            )
        )
        readings.append(
            Reading(node=node, endpoint_id=f"{node.address}.12.0", name="Heating", value=heat, recorded_at=at)
        )
    Reading.objects.bulk_create(readings)
    Decision.objects.bulk_create(decisions)


def tile(page, slug: str):
    return page.locator(f'[data-room="{slug}"]')


def wait_live(page) -> None:
    """Until the page's socket is open and subscribed (rooms.js exposes its HubPush client)."""
    page.wait_for_function("() => window.hubRooms && window.hubRooms.push && window.hubRooms.push.status === 'open'")
    page.evaluate("() => Promise.all([...window.hubRooms.push._subscriptions.values()].map((s) => s.ready))")
