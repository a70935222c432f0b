"""``manage.py relay_outbox`` as production runs it: a process that publishes and stops cleanly on SIGTERM."""

import os
import signal

import pytest

from tests.support.runhub import Process, killed_afterwards, manage

pytestmark = [pytest.mark.services, pytest.mark.slow]


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

    relay = Process(env, "relay_outbox")
    with killed_afterwards(relay):
        arrived = bus.collect(bus.db_queue, count=1, timeout=60)
        assert [m.properties["message_id"] for m in arrived] == [event_id]
        assert relay.stop(signal.SIGTERM, timeout=15) == 0, relay.output
    assert "relay_outbox stopped" in relay.output
    left = manage(env, "shell", "-c", "from messaging.models import OutboxEvent; print(OutboxEvent.objects.count())")
    assert left.stdout.strip().splitlines()[-1] == "0"
