"""Nothing audited is lost when a web process stops: embedded (the lifespan stops the writer) and production
(the writer started on the first download is flushed at exit)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["embedded", "production"])
def test_every_attempt_queued_before_sigterm_is_written(tmp_path, mode):
    root = tmp_path / "downloads"
    root.mkdir()
    (root / "file.txt").write_text("payload\n")
    database = tmp_path / "hub.sqlite3"
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("DOWNLOADS_", "HUB_", "DJANGO_"))}
    for name in ("DATABASE_URL", "REDIS_URL", "AMQP_URL", "MQTT_URL", "SERIAL_PORT", "DEBUG", "ALLOWED_HOSTS"):
        environ.pop(name, None)
    environ.update(
        HUB_MODE=mode,
        HUB_VAR_DIR=str(tmp_path / "var"),
        DATABASE_URL=f"sqlite:///{database}",
        DOWNLOADS_ROOT=str(root),
        SECRET_KEY="shutdown-test-secret-key-0123456789abcdef0123456789",
        ALLOWED_HOSTS="127.0.0.1",
        LOG_LEVEL="WARNING",
    )
    if mode == "production":
        environ.update(AMQP_URL="amqp://guest:guest@127.0.0.1:9//", DEBUG="false")
    run = {"cwd": PROJECT_DIR, "env": environ, "capture_output": True, "text": True, "timeout": 120}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], check=True, **run)
    url = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "create_secure_link",
            "acme",
            "2099-01-01T00:00:00Z",
            "file.txt",
            "--create-customer",
        ],
        check=True,
        **run,
    ).stdout.strip()
    port = free_port()
    path = "/dl/" + url.split("/dl/", 1)[1]
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "tests.downloads.slow_flush_app:application"),
            *("--host", "127.0.0.1", "--port", str(port), "--lifespan", "on", "--log-level", "warning"),
        ],
        cwd=PROJECT_DIR,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
                    assert response.read() == b"payload\n"
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        for _ in range(19):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                response.read()
        with sqlite3.connect(database) as connection:
            assert connection.execute("SELECT count(*) FROM downloads_downloadevent").fetchone() == (0,)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)

    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*), sum(bytes_sent) FROM downloads_downloadevent").fetchone() == (
            20,
            20 * len(b"payload\n"),
        )
        assert connection.execute("SELECT download_count FROM downloads_downloadlink").fetchone() == (20,)


def test_healthz_reports_a_large_audit_backlog_as_degraded(monkeypatch):
    from datetime import UTC, datetime

    from downloads import audit

    writer = audit.AuditWriter(batch_rows=2, max_pending=5)
    monkeypatch.setattr(audit, "writer", writer)
    assert audit.health_check().ok
    for _ in range(21):
        writer.submit(audit.Attempt(at=datetime.now(UTC), method="GET", status=403, outcome="forbidden"))
    result = audit.health_check()
    assert not result.ok
    assert "16 audit rows dropped" in result.detail
