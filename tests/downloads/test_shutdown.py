"""Nothing audited is lost when a web process stops: embedded (the lifespan stops the writer) and production
(the writer started on the first download is flushed at exit)."""

from __future__ import annotations

import signal
import sqlite3
import sys
import urllib.request

import pytest

from tests.support.runhub import Process, embedded_environment, free_port, killed_afterwards, manage
from tests.support.waiting import wait_until


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["embedded", "production"])
def test_every_attempt_queued_before_sigterm_is_written(tmp_path, mode):
    root = tmp_path / "downloads"
    root.mkdir()
    (root / "file.txt").write_text("payload\n")
    database = tmp_path / "hub.sqlite3"
    environ = embedded_environment(
        tmp_path,
        HUB_MODE=mode,
        HUB_VAR_DIR=str(tmp_path / "var"),
        DOWNLOADS_ROOT=str(root),
        SECRET_KEY="shutdown-test-secret-key-0123456789abcdef0123456789",
        ALLOWED_HOSTS="127.0.0.1",
        LOG_LEVEL="WARNING",
    )
    if mode == "production":
        environ.update(AMQP_URL="amqp://guest:guest@127.0.0.1:9//", DEBUG="false")
    manage(environ, "migrate", "-v0", timeout=120, check=True)
    create_link = ["create_secure_link", "acme", "2099-01-01T00:00:00Z", "file.txt", "--create-customer"]
    url = manage(environ, *create_link, timeout=120, check=True).stdout.strip()
    port = free_port()
    path = "/dl/" + url.split("/dl/", 1)[1]
    server = Process(
        environ,
        *(sys.executable, "-m", "uvicorn", "tests.downloads.slow_flush_app:application"),
        *("--host", "127.0.0.1", "--port", str(port), "--lifespan", "on", "--log-level", "warning"),
        manage_py=False,
    )

    def first_download() -> bool:
        assert server.running, server.output
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            assert response.read() == b"payload\n"
        return True

    with killed_afterwards(server):
        assert wait_until(first_download, timeout=60, interval=0.2, ignoring=(OSError,)), "the server did not start"
        for _ in range(19):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                response.read()
        with sqlite3.connect(database) as connection:
            assert connection.execute("SELECT count(*) FROM downloads_downloadevent").fetchone() == (0,)
        server.stop(signal.SIGTERM, timeout=60)
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
