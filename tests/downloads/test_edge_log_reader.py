"""The edge log reader on real files: every line nginx wrote becomes one audit row, its download count and its bus
event, whatever happens to the file (rotation, copytruncate, half-written lines, garbage) or to the reader (read
twice, database down, kill -9)."""

from __future__ import annotations

import io
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import OperationalError

from downloads import edge_log_reader, services
from downloads.edge_log_reader import EdgeLogReader, ReaderTimings
from downloads.models import AccessLogPosition, DownloadEvent, DownloadLink
from hub import health
from messaging.models import OutboxEvent
from tests.support.runhub import PROJECT_DIR
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

# Fast timings: batches of 7 lines so a file of a few dozen lines takes several commits.
TIMINGS = ReaderTimings(batch_lines=7, batch_seconds=0.05, poll_interval=0.01, rotation_grace=0.2, retry_initial=0.01)


def edge_line(link=None, *, status=200, method="GET", range_="", number=0, request_id=None) -> str:
    """One line as nginx's edge_downloads format writes it."""
    return (
        json.dumps(
            {
                "t": f"{time.time():.3f}",
                "id": request_id or secrets.token_hex(16),
                "ip": "198.51.100.7",
                "m": method,
                "uri": f"/dl/sig/{link.customer.slug}/exp/{link.path}" if link else "/dl/sig/acme/exp/gone.txt",
                "s": str(status),
                "b": "0" if method == "HEAD" else "12",
                "range": range_,
                "ua": f"client {number}",
                "link": str(link.pk) if link else "",
            }
        )
        + "\n"
    )


def append(path: Path, text: str) -> None:
    with open(path, "a") as handle:
        handle.write(text)


def served_lines(link, count: int, *, start: int = 0) -> str:
    return "".join(edge_line(link, number=start + n) for n in range(count))


def stored_agents() -> list[str]:
    return sorted(DownloadEvent.objects.values_list("user_agent", flat=True))


def agents(start: int, stop: int) -> list[str]:
    return sorted(f"client {n}" for n in range(start, stop))


def bus_events(kind: str = "downloads.served") -> int:
    return OutboxEvent.objects.filter(type=kind).count()


@pytest.fixture
def log(tmp_path, settings):
    path = tmp_path / "edge" / "downloads.log"
    path.parent.mkdir()
    settings.DOWNLOADS_EDGE_LOG = str(path)
    return path


@pytest.mark.postgres
def test_lines_become_audit_rows_download_counts_and_events(make_link, log):
    link, other = make_link(), make_link("dir1/example1.txt")
    append(log, served_lines(link, 20))
    append(log, edge_line(link, status=206, range_="bytes=0-5", number=20))  # from byte 0: a download
    append(log, edge_line(link, status=206, range_="bytes=6-", number=21))  # its continuation: not another
    append(log, edge_line(link, method="HEAD", number=22))  # HEAD never counts
    append(log, edge_line(other, status=304, number=23))  # a refusal: audited, not counted
    reader = EdgeLogReader(log, timings=TIMINGS)
    reader.run_until_caught_up()

    assert stored_agents() == agents(0, 24)
    rows = DownloadEvent.objects.filter(link=link)
    assert rows.count() == 23
    assert set(DownloadEvent.objects.values_list("accel", flat=True)) == {True}
    assert rows.get(user_agent="client 21").outcome == "partial"
    assert DownloadEvent.objects.get(user_agent="client 23").outcome == "not_modified"
    link.refresh_from_db()
    other.refresh_from_db()
    assert link.download_count == 21  # 20 whole files and the range from byte 0
    assert link.last_fetched_at is not None
    assert other.download_count == 0
    assert bus_events("downloads.served") == 23
    assert bus_events("downloads.refused") == 1
    event = OutboxEvent.objects.filter(type="downloads.served").order_by("id").first()
    # The same payload as the hub's own download path publishes.
    assert set(event.data) == {"link", "customer", "path", "method", "status", "outcome", "range", "bytes", "ip", "at"}
    assert (event.data["link"], event.data["customer"], event.data["path"]) == (link.pk, "acme", link.path)
    position = AccessLogPosition.objects.get(path=str(log))
    assert (position.inode, position.offset) == (os.stat(log).st_ino, log.stat().st_size)
    assert (position.lines_read, position.lines_unparseable) == (24, 0)


@pytest.mark.postgres
def test_a_line_read_twice_is_stored_once(make_link, log):
    link = make_link()
    append(log, served_lines(link, 15))
    EdgeLogReader(log, timings=TIMINGS).run_until_caught_up()
    # A reader that lost its position (or died after a commit it never heard of) reads the file again.
    AccessLogPosition.objects.all().delete()
    append(log, served_lines(link, 5, start=15))
    EdgeLogReader(log, timings=TIMINGS).run_until_caught_up()

    assert stored_agents() == agents(0, 20)
    link.refresh_from_db()
    assert link.download_count == 20
    assert bus_events() == 20


@pytest.mark.postgres
def test_a_link_deleted_since_keeps_its_row_without_the_link(make_link, log):
    link = make_link()
    append(log, edge_line(link, number=0))
    DownloadLink.objects.filter(pk=link.pk).delete()
    EdgeLogReader(log, timings=TIMINGS).run_until_caught_up()
    row = DownloadEvent.objects.get()
    assert (row.link_id, row.customer, row.path) == (None, "acme", link.path)


@pytest.mark.postgres
def test_rotation_by_rename_mid_stream_loses_nothing(make_link, log):
    link = make_link()
    append(log, served_lines(link, 30))
    reader = EdgeLogReader(log, timings=TIMINGS)
    reader.step()  # one batch of 7 committed, 23 lines left in the file
    assert DownloadEvent.objects.count() == 7

    rotated = log.with_name("downloads.log.1")
    log.rename(rotated)
    append(rotated, served_lines(link, 5, start=30))  # an nginx worker that has not reopened its log yet
    append(log, served_lines(link, 10, start=35))  # the new file nginx created
    reader.run_until_caught_up()

    assert stored_agents() == agents(0, 45)
    link.refresh_from_db()
    assert link.download_count == 45
    position = AccessLogPosition.objects.get()
    assert (position.inode, position.offset) == (log.stat().st_ino, log.stat().st_size)


@pytest.mark.postgres
def test_a_reader_restarted_after_a_rotation_finishes_the_old_file_first(make_link, log):
    link = make_link()
    append(log, served_lines(link, 20))
    first = EdgeLogReader(log, timings=TIMINGS)
    first.step()
    first.stop()  # a stop (or a kill) with 13 lines of this file still to read
    log.rename(log.with_name("downloads.log.1"))
    append(log, served_lines(link, 4, start=20))
    EdgeLogReader(log, timings=TIMINGS).run_until_caught_up()

    assert stored_agents() == agents(0, 24)


@pytest.mark.postgres
def test_copytruncate_starts_again_at_0(make_link, log):
    link = make_link()
    append(log, served_lines(link, 12))
    reader = EdgeLogReader(log, timings=TIMINGS)
    reader.run_until_caught_up()
    shutil.copyfile(log, log.with_name("downloads.log.1"))
    with open(log, "r+") as handle:
        handle.truncate(0)
    append(log, served_lines(link, 3, start=12))  # shorter than what was read: the reader sees the file shrank
    reader.run_until_caught_up()

    assert stored_agents() == agents(0, 15)
    assert AccessLogPosition.objects.get().offset == log.stat().st_size


@pytest.mark.postgres
def test_copytruncate_written_past_the_old_offset_before_the_reader_looks_loses_nothing(make_link, log):
    link = make_link()
    append(log, served_lines(link, 5))
    reader = EdgeLogReader(log, timings=TIMINGS)
    reader.run_until_caught_up()
    with open(log, "r+") as handle:
        handle.truncate(0)
    append(log, served_lines(link, 20, start=5))  # a busy log: longer than before by the next look
    reader.run_until_caught_up()
    assert stored_agents() == agents(0, 25)

    # The same while no reader runs: the next one finds the stored offset in the middle of other lines.
    reader.stop()
    with open(log, "r+") as handle:
        handle.truncate(0)
    append(log, served_lines(link, 30, start=25))
    EdgeLogReader(log, timings=TIMINGS).run_until_caught_up()
    assert stored_agents() == agents(0, 55)
    link.refresh_from_db()
    assert link.download_count == 55


@pytest.mark.postgres
def test_a_partial_last_line_is_waited_for(make_link, log):
    link = make_link()
    whole = edge_line(link, number=1)
    append(log, edge_line(link, number=0) + whole[:40])  # nginx is in the middle of writing the second line
    reader = EdgeLogReader(log, timings=TIMINGS)
    reader.run_until_caught_up()
    assert stored_agents() == ["client 0"]
    assert AccessLogPosition.objects.get().lines_unparseable == 0

    append(log, whole[40:])
    reader.run_until_caught_up()
    assert stored_agents() == ["client 0", "client 1"]
    assert AccessLogPosition.objects.get().lines_unparseable == 0


@pytest.mark.postgres
def test_unparseable_lines_are_counted_shown_degraded_and_the_reading_goes_on(make_link, log, client, monkeypatch):
    monkeypatch.setattr(health, "_checks", {})
    health.register_check("downloads_edge_log", edge_log_reader.health_check)
    link = make_link()
    append(log, served_lines(link, 3))
    reader = EdgeLogReader(log, timings=TIMINGS)
    reader.run_until_caught_up()
    assert client.get("/healthz").json()["checks"]["downloads_edge_log"]["ok"] is True

    append(log, "this is not json\n")
    append(log, json.dumps({"t": "1733420000.000", "id": "x"}) + "\n")  # keys missing
    append(log, edge_line(link, number=3).replace('"s": "200"', '"s": "OK"'))  # a bad number
    append(log, served_lines(link, 3, start=4))
    reader.run_until_caught_up()

    assert stored_agents() == sorted([*agents(0, 3), *agents(4, 7)])
    assert AccessLogPosition.objects.get().lines_unparseable == 3
    body = client.get("/healthz").json()
    assert body["status"] == "degraded"
    assert body["checks"]["downloads_edge_log"]["ok"] is False
    assert "3 unparseable line(s)" in body["checks"]["downloads_edge_log"]["detail"]
    assert reader.step() == TIMINGS.poll_interval  # still reading, nothing new

    services.edge_log_unparseable_reset(path=str(log))
    assert client.get("/healthz").json()["checks"]["downloads_edge_log"]["ok"] is True


@pytest.mark.postgres
def test_a_database_outage_is_retried_and_skips_no_line(make_link, log, monkeypatch, client):
    monkeypatch.setattr(health, "_checks", {})
    health.register_check("downloads_edge_log", edge_log_reader.health_check)
    link = make_link()
    append(log, served_lines(link, 10))
    real = services.edge_batch_record
    failures = []

    def down(**kwargs):
        failures.append(1)
        raise OperationalError("connection refused")

    monkeypatch.setattr(services, "edge_batch_record", down)
    reader = EdgeLogReader(log, timings=TIMINGS)
    delays = [reader.step() for _ in range(3)]
    assert len(failures) == 3
    assert delays[0] > 0
    assert delays[2] >= delays[0]
    assert DownloadEvent.objects.count() == 0
    detail = client.get("/healthz").json()["checks"]["downloads_edge_log"]
    assert detail["ok"] is False
    assert "connection refused" in detail["detail"]

    monkeypatch.setattr(services, "edge_batch_record", real)
    reader.run_until_caught_up()
    assert stored_agents() == agents(0, 10)
    assert client.get("/healthz").json()["checks"]["downloads_edge_log"]["ok"] is True


@pytest.mark.slow
@pytest.mark.services
def test_a_reader_killed_at_any_moment_stores_each_line_exactly_once(tmp_path, postgres_url):
    """`manage.py read_edge_log` on PostgreSQL, killed with SIGKILL again and again while nginx-like writers append
    and the file is rotated: in the end one audit row, one count and one event per line."""
    import psycopg

    name = f"edge_kill_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    database_url = urlunsplit(urlsplit(postgres_url)._replace(path=f"/{name}"))
    log = tmp_path / "edge.log"
    environ = {
        **os.environ,
        "DATABASE_URL": database_url,
        "HUB_MODE": "embedded",
        "HUB_VAR_DIR": str(tmp_path / "var"),
        "DOWNLOADS_ROOT": str(tmp_path / "files"),
        "DOWNLOADS_EDGE_LOG": str(log),
        "LOG_LEVEL": "WARNING",
    }
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "f.bin").write_bytes(b"x" * 12)

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=PROJECT_DIR, env=environ, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    def query(sql: str):
        with psycopg.connect(database_url) as db:
            return db.execute(sql).fetchall()

    def stored() -> int:
        return query("SELECT count(*) FROM downloads_downloadevent")[0][0]

    try:
        manage("migrate", "-v0")
        manage("create_secure_link", "--create-customer", "acme", "2099-01-01T00:00:00Z", "f.bin")
        (link_id,) = query("SELECT id FROM downloads_downloadlink")[0]
        written = 0

        class Link:  # what edge_line needs of a link
            pk, path = link_id, "f.bin"
            customer = type("Customer", (), {"slug": "acme"})

        def write(count: int) -> None:
            nonlocal written
            append(log, served_lines(Link, count, start=written))
            written += count

        write(3000)
        rng = random.Random()
        kills_mid_stream = 0
        for round_number in range(6):
            reader = subprocess.Popen(
                [sys.executable, "manage.py", "read_edge_log", "--batch-lines", "500"],
                cwd=PROJECT_DIR,
                env=environ,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            # Once it is storing (its start-up takes a while on a busy machine), kill it at a random moment.
            # (write() returns None, so each poll that finds the condition false also writes more lines.)
            before = stored()
            wait_until(lambda before=before: stored() != before or write(50), timeout=60, interval=0.05)
            kill_at = time.monotonic() + rng.uniform(0.0, 0.6)
            wait_until(lambda kill_at=kill_at: time.monotonic() >= kill_at or write(100), timeout=5, interval=0.02)
            if round_number == 2:
                log.rename(log.with_name("edge.log.1"))  # rotated while the reader runs; the rest goes to a new file
                write(100)
            reader.send_signal(signal.SIGKILL)
            reader.wait(timeout=10)
            kills_mid_stream += stored() < written

        assert kills_mid_stream >= 4, "most kills came with lines still to store"
        reader = subprocess.Popen(
            [sys.executable, "manage.py", "read_edge_log"],
            cwd=PROJECT_DIR,
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Every line stored; a duplicate could only add rows, which the counts below would show.
        wait_until(lambda: stored() >= written, timeout=60, interval=0.2)
        reader.send_signal(signal.SIGTERM)
        _, errors = reader.communicate(timeout=30)
        assert reader.returncode == 0, errors[-2000:]

        rows = query(
            "SELECT count(*), count(DISTINCT attempt_id), count(DISTINCT user_agent) FROM downloads_downloadevent"
        )
        assert rows == [(written, written, written)], "one row per line, none twice"
        assert query("SELECT download_count FROM downloads_downloadlink") == [(written,)]
        assert query("SELECT count(*) FROM messaging_outboxevent WHERE type = 'downloads.served'") == [(written,)]
        assert query("SELECT lines_read, lines_unparseable FROM downloads_accesslogposition") == [(written, 0)]
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_the_command_needs_a_log_and_resets_the_unparseable_count(make_link, log, settings):
    from django.core.management import CommandError, call_command

    append(log, "garbage\n")
    EdgeLogReader(log, timings=TIMINGS).run_until_caught_up()
    assert AccessLogPosition.objects.get().lines_unparseable == 1

    out = io.StringIO()
    call_command("read_edge_log", "--reset-unparseable", stdout=out)
    assert "1 unparseable line(s) forgotten" in out.getvalue()
    assert AccessLogPosition.objects.get().lines_unparseable == 0

    settings.DOWNLOADS_EDGE_LOG = ""
    with pytest.raises(CommandError, match="DOWNLOADS_EDGE_LOG"):
        call_command("read_edge_log")
