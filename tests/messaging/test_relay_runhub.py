"""The embedded default end to end: `manage.py runhub`'s lifespan runs the relay and the events.db consumer on
``memory://``; another process (a script, a management command) only writes the SQLite outbox."""

from __future__ import annotations

import json
import signal
import sqlite3
import urllib.error
import urllib.request

import pytest

from tests.support.runhub import RunningHub, embedded_environment, free_port, killed_afterwards, manage
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def healthz(base: str) -> dict:
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        return json.loads(error.read())


def test_an_event_written_by_another_process_is_relayed_and_stored_by_the_running_hub(tmp_path):
    port = free_port()
    database = tmp_path / "hub.sqlite3"
    environ = embedded_environment(tmp_path, port=port, LOG_LEVEL="WARNING")
    manage(environ, "migrate", "--noinput", "-v", "0", check=True)
    hub = RunningHub(environ, port)
    base = hub.base
    with killed_afterwards(hub):
        assert wait_until(
            lambda: healthz(base)["checks"]["worker:relay_outbox"]["ok"], timeout=60, interval=0.2, ignoring=(OSError,)
        )
        code = "import messaging; print(messaging.publish('test.embedded', {'n': 1}, source='script'))"
        published = manage(environ, "shell", "-c", code)
        assert published.returncode == 0, published.stderr
        event_id = published.stdout.strip().splitlines()[-1]

        def stored() -> bool:
            with sqlite3.connect(database, timeout=5) as db:
                row = db.execute("SELECT type, source FROM messaging_event WHERE id = ?", [event_id.replace("-", "")])
                return row.fetchone() == ("test.embedded", "script")

        assert wait_until(stored, timeout=30, interval=0.2, ignoring=(sqlite3.OperationalError,))
        with sqlite3.connect(database, timeout=5) as db:
            assert db.execute("SELECT count(*) FROM messaging_outboxevent").fetchone() == (0,)
        report = healthz(base)["checks"]
        assert report["outbox"]["ok"]
        assert report["broker"]["ok"]
        # uvicorn re-raises the signal once its shutdown is done, so the exit status may be the signal's own.
        assert hub.stop(signal.SIGTERM, timeout=20) in (0, -signal.SIGTERM)
