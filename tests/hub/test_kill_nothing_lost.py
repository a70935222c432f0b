"""`kill -9` loses nothing in the embedded default: a real `manage.py runhub` is killed at random moments while
events pour into its outbox and clients download, then started again; every event ends up stored exactly once
and every download a client got a 200 or 206 for is audited exactly once (and counted and announced once)."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.support.runhub import PROJECT_DIR, RunningHub, embedded_environment, free_port, manage
from tests.support.waiting import wait_until

ROUNDS = 4
EVENTS_PER_ROUND = 3000
DOWNLOADERS = 6

pytestmark = pytest.mark.slow

# Runs in a `manage.py shell` beside the hub: each number read is a burst of that many events, committed in
# transactions of 250 (as a busy app would), acknowledged with a line once all are in the outbox.
PUBLISHER = """
import sys
import messaging
from django.db import transaction
sent = 0
for line in sys.stdin:
    total = int(line)
    for start in range(0, total, 250):
        with transaction.atomic():
            messaging.publish_many(
                messaging.new_event("test.burst", {"n": sent + n}, source="kill-test")
                for n in range(start, min(total, start + 250))
            )
    sent += total
    print("published", sent, flush=True)
"""


class Downloaders:
    """Threads fetching the link over and over (every third a Range from byte 0), each request with a User-Agent of
    its own (the audit keeps it)."""

    def __init__(self, url: str, round_number: int) -> None:
        self.url = url
        self.round = round_number
        self.received: list[str] = []  # agents whose request got a 200 or 206 status line
        self.attempted: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(DOWNLOADERS)]

    def __enter__(self) -> Downloaders:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _run(self, number: int) -> None:
        count = 0
        while not self._stop.is_set():
            agent = f"kill-test/{self.round}/{number}/{count}"
            count += 1
            self.attempted.append(agent)
            headers = {"User-Agent": agent}
            if count % 3 == 0:
                headers["Range"] = "bytes=0-99"  # a 206, which counts as a download too (it starts at byte 0)
            request = urllib.request.Request(self.url, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    if response.status in (200, 206):
                        self.received.append(agent)  # the status line is in: the server let bytes go
                    response.read()
            except (OSError, urllib.error.HTTPError):
                if self._stop.wait(0.05):
                    return


def test_sigkill_at_random_moments_loses_no_event_and_no_download_audit(tmp_path):
    started = time.monotonic()
    root = tmp_path / "downloads"
    root.mkdir()
    (root / "file.txt").write_bytes(b"payload " * 512)
    database = tmp_path / "hub.sqlite3"
    port = free_port()
    environ = embedded_environment(
        tmp_path,
        port=port,
        HUB_VAR_DIR=str(tmp_path / "var"),
        DOWNLOADS_ROOT=str(root),
        SECRET_KEY="kill-test-secret-key-0123456789abcdef0123456789abcdef",
        LOG_LEVEL="WARNING",
    )
    manage(environ, "migrate", "-v0", timeout=120, check=True)
    create_link = ["create_secure_link", "--create-customer", "acme", "2099-01-01T00:00:00Z", "file.txt"]
    link = manage(environ, *create_link, timeout=120, check=True).stdout.strip()
    url = f"http://127.0.0.1:{port}/dl/" + link.split("/dl/", 1)[1]
    publisher = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", PUBLISHER],
        cwd=PROJECT_DIR,
        env=environ,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    hubs: list[RunningHub] = []

    def start_hub() -> RunningHub:
        hubs.append(RunningHub(environ, port))
        hubs[-1].wait_until_answering(timeout=40)
        return hubs[-1]

    def query(sql: str) -> list[tuple]:
        with sqlite3.connect(database, timeout=10) as db:
            return db.execute(sql).fetchall()

    received: list[str] = []
    attempted: set[str] = set()
    published = 0
    rng = random.Random()
    try:
        for round_number in range(ROUNDS):
            hub = start_hub()
            with Downloaders(url, round_number) as downloads:
                time.sleep(rng.uniform(0.1, 0.5))
                publisher.stdin.write(f"{EVENTS_PER_ROUND}\n")
                publisher.stdin.flush()
                time.sleep(rng.uniform(0.2, 1.5))  # somewhere in the burst, the relay and the audit writer busy
                hub.process.send_signal(signal.SIGKILL)
                hub.process.wait(timeout=10)
            received += downloads.received
            attempted |= set(downloads.attempted)
            line = publisher.stdout.readline()
            while line and not line.startswith("published"):
                line = publisher.stdout.readline()
            assert line, "the publisher stopped"
            published = int(line.split()[1])

        hub = start_hub()  # the last start replays and drains what the kills left
        drained = wait_until(
            lambda: (
                query("SELECT count(*) FROM messaging_outboxevent") == [(0,)]
                and not list((tmp_path / "var" / "audit-journal").glob("*.journal"))
                and query("SELECT count(*) FROM messaging_event WHERE type = 'downloads.served'")
                == query("SELECT count(*) FROM downloads_downloadevent WHERE status IN (200, 206)")
            ),
            timeout=30,
            interval=0.1,
            ignoring=(sqlite3.OperationalError,),
        )
        hub.stop(signal.SIGTERM, timeout=30)
    finally:
        for hub in hubs:
            hub.kill()
        if publisher.poll() is None:
            publisher.kill()
            publisher.wait()

    assert published == ROUNDS * EVENTS_PER_ROUND
    stored = query(
        "SELECT count(*), count(DISTINCT json_extract(data, '$.n')) FROM messaging_event WHERE type = 'test.burst'"
    )
    assert stored == [(published, published)], "every event stored, each exactly once"

    assert len(received) > ROUNDS * 10, "the downloads ran"
    assert query("SELECT count(*) FROM downloads_downloadevent WHERE status = 206")[0][0] > 0, "ranges too"
    audited = [agent for (agent,) in query("SELECT user_agent FROM downloads_downloadevent WHERE status IN (200, 206)")]
    missing = set(received) - set(audited)
    assert not missing, f"{len(missing)} of {len(received)} downloads a client received were never audited"
    twice = {agent for agent in audited if audited.count(agent) > 1}
    assert not twice, f"audited more than once: {sorted(twice)[:5]}"
    # Only requests that were made; some the client never saw (the kill came between the journal and the reply).
    assert set(audited) <= attempted
    assert query("SELECT download_count FROM downloads_downloadlink") == [(len(audited),)]
    assert query("SELECT count(*) FROM messaging_event WHERE type = 'downloads.served'") == [(len(audited),)]
    assert drained, "the restarted hub drained the outbox and the journal"
    assert time.monotonic() - started < 90
