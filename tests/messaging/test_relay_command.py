"""``manage.py relay_outbox`` as production runs it: a process that publishes and stops cleanly on SIGTERM."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.messaging.relay_support import bus_fixture  # noqa: F401

pytestmark = [pytest.mark.services, pytest.mark.slow]

PROJECT_DIR = Path(__file__).resolve().parents[2]


def manage(env, *args, timeout=180):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_relay_outbox_publishes_and_exits_cleanly_on_sigterm(bus, tmp_path):
    env = {
        **os.environ,
        "HUB_MODE": "embedded",
        "HUB_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'hub.sqlite3'}",
        "AMQP_URL": bus.url,
        **bus.names,
    }
    # What the compose init service does before the relay starts.
    assert manage(env, "migrate", "--noinput").returncode == 0
    assert manage(env, "messaging_setup").returncode == 0
    published = manage(
        env, "shell", "-c", "import messaging; print(messaging.publish('test.command', {'n': 1}, source='test'))"
    )
    assert published.returncode == 0, published.stderr
    event_id = published.stdout.strip().splitlines()[-1]

    relay = subprocess.Popen(
        [sys.executable, "manage.py", "relay_outbox"],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        arrived = bus.collect(bus.db_queue, count=1, timeout=60)
        assert [m.properties["message_id"] for m in arrived] == [event_id]
    finally:
        relay.send_signal(signal.SIGTERM)
        try:
            output, _ = relay.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            relay.kill()
            raise
    assert relay.returncode == 0, output
    assert "relay_outbox stopped" in output
    left = manage(env, "shell", "-c", "from messaging.models import OutboxEvent; print(OutboxEvent.objects.count())")
    assert left.stdout.strip().splitlines()[-1] == "0"
