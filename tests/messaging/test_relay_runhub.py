"""The embedded default end to end: `manage.py runhub`'s lifespan runs the relay and the events.db consumer on
``memory://``; another process (a script, a management command) only writes the SQLite outbox."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthz(base: str) -> dict:
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        return json.loads(error.read())


def wait_until(condition, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return True
        except (OSError, sqlite3.OperationalError):
            pass
        time.sleep(0.2)
    return False


def test_an_event_written_by_another_process_is_relayed_and_stored_by_the_running_hub(tmp_path):
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HUB_", "DJANGO_", "EVENTS_"))
        and key not in ("DATABASE_URL", "REDIS_URL", "AMQP_URL", "MQTT_URL", "ALLOWED_HOSTS", "SECRET_KEY")
    }
    port = free_port()
    database = tmp_path / "hub.sqlite3"
    environ.update(
        HUB_MODE="embedded",
        HUB_BIND=f"127.0.0.1:{port}",
        HUB_VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{database}",
        LOG_LEVEL="WARNING",
    )
    run = {"cwd": PROJECT_DIR, "env": environ, "capture_output": True, "text": True, "timeout": 180}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], check=True, **run)
    hub = subprocess.Popen(
        [sys.executable, "manage.py", "runhub"],
        cwd=PROJECT_DIR,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: healthz(base)["checks"]["worker:relay_outbox"]["ok"], timeout=60)
        code = "import messaging; print(messaging.publish('test.embedded', {'n': 1}, source='script'))"
        published = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], **run)
        assert published.returncode == 0, published.stderr
        event_id = published.stdout.strip().splitlines()[-1]

        def stored() -> bool:
            with sqlite3.connect(database, timeout=5) as db:
                row = db.execute("SELECT type, source FROM messaging_event WHERE id = ?", [event_id.replace("-", "")])
                return row.fetchone() == ("test.embedded", "script")

        assert wait_until(stored, timeout=30)
        with sqlite3.connect(database, timeout=5) as db:
            assert db.execute("SELECT count(*) FROM messaging_outboxevent").fetchone() == (0,)
        report = healthz(base)["checks"]
        assert report["outbox"]["ok"]
        assert report["broker"]["ok"]
    finally:
        hub.send_signal(signal.SIGTERM)
        try:
            hub.wait(timeout=20)
        except subprocess.TimeoutExpired:
            hub.kill()
            hub.wait()
    # uvicorn re-raises the signal once its shutdown is done, so the exit status may be the signal's own.
    assert hub.returncode in (0, -signal.SIGTERM)
