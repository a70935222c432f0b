"""The audit journal: a served download is on disk before its bytes go out, and a writer started after a kill
replays what the dead process left, each attempt exactly once (the end-to-end kill test is
tests/hub/test_kill_nothing_lost.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from downloads.asgi import DownloadApp, config_from_settings
from downloads.audit import Attempt, AuditJournal, AuditWriter
from downloads.models import DownloadEvent
from messaging.models import OutboxEvent
from tests.downloads.conftest import asgi_request, fetch, link_path

pytestmark = pytest.mark.django_db(transaction=True)


def journal_lines(directory) -> list[bytes]:
    """The attempts' lines of every journal file (each file starts with a header naming the fields)."""
    return [line for path in sorted(directory.glob("*.journal")) for line in journal_lines_of(path)]


def journal_lines_of(path) -> list[bytes]:
    return path.read_bytes().split(b"\0", 1)[0].splitlines()[1:]


def served(link, n: int) -> Attempt:
    return Attempt(
        at=datetime.now(UTC),
        method="GET",
        status=200,
        outcome="served",
        customer=link.customer.slug,
        path=link.path,
        ip="203.0.113.7",
        user_agent=f"agent {n}",
        bytes_sent=12,
        link_id=link.pk,
        count_pending=True,
    )


def die(journal: AuditJournal) -> None:
    """What a SIGKILL leaves: the files as written, their locks released by the kernel."""
    journal.close()


def test_a_served_download_is_in_the_journal_before_its_response_starts(make_link, tmp_path):
    link = make_link()
    journal = AuditJournal(tmp_path / "journal")
    writer = AuditWriter(journal=journal)
    app = DownloadApp(config_from_settings(), submit=writer.submit, journal=journal.append)
    seen_at_start = []

    async def request():
        original = app.__call__

        async def watching(scope, receive, send):
            async def send_and_look(message):
                if message["type"] == "http.response.start":
                    seen_at_start.extend(journal_lines(tmp_path / "journal"))
                await send(message)

            await original(scope, receive, send_and_look)

        return await asgi_request(watching, link_path(link), headers=[("User-Agent", "first look")])

    response = asyncio.run(request())
    assert response.status == 200
    assert len(seen_at_start) == 1
    assert b'"first look"' in seen_at_start[0]
    assert b",200," in seen_at_start[0]
    # Written to the database, the journal lets go of it.
    assert writer.flush() == 1
    assert journal_lines(tmp_path / "journal") == []
    row = DownloadEvent.objects.get()
    assert row.attempt_id is not None
    assert row.user_agent == "first look"


def test_refusals_are_not_journaled_and_without_a_journal_nothing_is_written_to_disk(make_link, tmp_path, settings):
    link = make_link()
    journal = AuditJournal(tmp_path / "journal")
    writer = AuditWriter(journal=journal)
    app = DownloadApp(config_from_settings(), submit=writer.submit, journal=journal.append)
    assert fetch(app, "/dl/not-a-link").status == 403
    assert journal_lines(tmp_path / "journal") == []
    plain = DownloadApp(config_from_settings(), submit=writer.submit)
    assert fetch(plain, link_path(link)).status == 200
    assert not (tmp_path / "journal").exists() or journal_lines(tmp_path / "journal") == []


def test_a_writer_started_after_a_kill_replays_each_served_attempt_exactly_once(make_link, tmp_path):
    link = make_link()
    directory = tmp_path / "journal"
    dead = AuditJournal(directory)
    dead_writer = AuditWriter(journal=dead)
    attempts = [served(link, n) for n in range(6)]
    for attempt in attempts:
        dead.append(attempt)
        dead_writer.submit(attempt)
    # Two were written and their lines let go; two more were committed but the kill came before the journal
    # heard of it; the last two never reached the database.
    from downloads.services import attempts_record

    dead_writer._pending.clear()
    attempts_record(attempts=attempts[:2])
    dead.committed(attempts[:2])
    attempts_record(attempts=attempts[2:4])
    die(dead)
    assert len(journal_lines(directory)) == 6  # a file is emptied only once all its lines are written

    survivor = AuditWriter(journal=AuditJournal(directory))
    assert survivor.replay() == 2
    assert sorted(DownloadEvent.objects.values_list("user_agent", flat=True)) == [f"agent {n}" for n in range(6)]
    link.refresh_from_db()
    assert link.download_count == 6  # each counted once, replayed or not
    assert OutboxEvent.objects.filter(type="downloads.served").count() == 6
    assert list(directory.glob("*.journal")) == []
    assert survivor.replay() == 0


def test_a_live_processs_journal_is_not_replayed_and_a_torn_last_line_is_skipped(make_link, tmp_path):
    link = make_link()
    directory = tmp_path / "journal"
    alive = AuditJournal(directory)
    alive.append(served(link, 1))
    other = AuditWriter(journal=AuditJournal(directory))
    assert other.replay() == 0  # its owner still holds it: its own writer will write it
    assert len(journal_lines(directory)) == 1

    die(alive)
    [path] = directory.glob("*.journal")
    with path.open("ab") as handle:
        handle.write(b'["2026-12-05T10:00:00+00:00","GET",2')  # the kill came mid-write: no byte went out for it
    assert other.replay() == 1
    assert DownloadEvent.objects.get().user_agent == "agent 1"


def test_a_full_journal_file_is_followed_by_a_new_one_and_deleted_once_all_its_lines_are_written(make_link, tmp_path):
    link = make_link()
    directory = tmp_path / "journal"
    journal = AuditJournal(directory, segment_bytes=1000)
    writer = AuditWriter(journal=journal)
    in_flight = served(link, 0)
    journal.append(in_flight)  # a long download still streaming: its line must stay
    for n in range(1, 20):
        attempt = served(link, n)
        journal.append(attempt)
        writer.submit(attempt)
    files = sorted(directory.glob("*.journal"))
    assert len(files) > 2  # each file holds what fits in 1,000 bytes
    assert len(journal_lines(directory)) == 20
    writer.flush()
    # Files whose lines are all written are deleted (or, the one in use, emptied); the first keeps the one still
    # streaming (and its neighbours, skipped by a replay as already written).
    assert sorted(directory.glob("*.journal")) == [files[0], files[-1]]
    assert journal_lines(directory) == journal_lines_of(files[0])
    assert any(b'"agent 0"' in line for line in journal_lines(directory))
    writer.submit(in_flight)
    writer.flush()
    assert journal_lines(directory) == []
    assert len(list(directory.glob("*.journal"))) == 1  # the file in use stays, with nothing but its header


def test_a_journal_written_with_other_fields_is_replayed_by_its_header(make_link, tmp_path):
    """A hub upgraded between the kill and the restart: the file names its fields, whatever the order or extras."""
    link = make_link()
    directory = tmp_path / "journal"
    directory.mkdir()
    fields = ["status", "at", "method", "outcome", "link_id", "user_agent", "attempt_id", "some_future_field"]
    values = [200, "2026-12-05T10:00:00+00:00", "GET", "served", link.pk, "older hub", "ab" * 16, 1]
    (directory / "1-1-1.journal").write_text(json.dumps({"fields": fields}) + "\n" + json.dumps(values) + "\n")
    assert AuditWriter(journal=AuditJournal(directory)).replay() == 1
    row = DownloadEvent.objects.get()
    assert (row.user_agent, row.status, row.link_id, row.attempt_id.hex) == ("older hub", 200, link.pk, "ab" * 16)
