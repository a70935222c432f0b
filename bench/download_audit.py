"""How many download attempts per second does the audit store on PostgreSQL, bus events included?

Two writers, on a scratch PostgreSQL database of their own (in a child process, ``bench._support``):

1. ``downloads.services.attempts_record`` — what the hub's audit writer (``downloads.audit.AuditWriter``) calls for
   the downloads the hub answers itself — in batches of 500 (the writer's) and 5,000;
2. the edge log reader (``downloads.edge_log_reader.EdgeLogReader``) storing nginx's edge access log: a file of
   ready lines read from its start in batches of up to 5,000 lines, each stored once by its request id.

Each attempt is one audit row, its download count (three in four are served downloads of 2,000 links, so every
batch updates many links) and one ``downloads.served`` / ``downloads.refused`` outbox row, all in the batch's
transaction; the figures count all three and check them after the run. The target is 20,000 attempts/s with the
events (issue 13; about 6,000 before the batched writes). Three rounds each, the median reported.

    python -m bench download_audit     (BENCH_AUDIT_ATTEMPTS=N a round, default 50,000; BENCH_POSTGRES_URL)
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench._support import run_child, scratch_postgres, setup_django

TARGET = 20_000
LINKS = 2_000
ROUNDS = 3


def _links() -> list:
    from downloads.models import DownloadLink
    from downloads.services import customer_create, link_create

    root = Path(os.environ["DOWNLOADS_ROOT"])
    root.mkdir(parents=True, exist_ok=True)
    (root / "small.bin").write_bytes(b"x" * 4096)
    customer = customer_create(slug="bench")
    first = link_create(customer=customer, path="small.bin", expires_at=datetime.now(UTC) + timedelta(days=1))
    # The rest as copies of the first's row: link_create's signing and checks are not what is measured here.
    rows = [
        DownloadLink(
            customer=customer,
            path=first.path,
            expires_at=first.expires_at,
            signature=f"{first.signature}-{number}",
            nonce=f"n{number}",
            expiry_text=first.expiry_text,
            key_id=first.key_id,
        )
        for number in range(1, LINKS)
    ]
    DownloadLink.objects.bulk_create(rows, batch_size=1000)
    return list(DownloadLink.objects.order_by("id"))


def _attempts(links: list, count: int) -> list:
    from downloads.audit import Attempt

    now = datetime.now(UTC)
    attempts = []
    for number in range(count):
        served = number % 4 != 3  # three served for one refused, as a busy day might look
        link = links[number % len(links)]
        attempts.append(
            Attempt(
                at=now,
                method="GET",
                status=200 if served else 404,
                outcome="served" if served else "invalid",
                customer="bench",
                path="small.bin",
                ip="198.51.100.4",
                user_agent="curl/8.5.0",
                bytes_sent=4096 if served else 0,
                link_id=link.pk if served else None,
                count_pending=served,
                attempt_id=secrets.token_hex(16) if served else "",
            )
        )
    return attempts


def _edge_lines(links: list, count: int) -> bytes:
    lines = []
    now = time.time()
    for number in range(count):
        served = number % 4 != 3
        link = links[number % len(links)]
        lines.append(
            json.dumps(
                {
                    "t": f"{now:.3f}",
                    "id": secrets.token_hex(16),
                    "ip": "198.51.100.4",
                    "m": "GET",
                    "uri": f"/dl/{link.signature}/bench/{link.expiry_text}/small.bin",
                    "s": "200" if served else "404",
                    "b": "4096" if served else "0",
                    "range": "",
                    "ua": "curl/8.5.0",
                    "link": str(link.pk),
                },
                separators=(",", ":"),
            )
        )
    return ("\n".join(lines) + "\n").encode()


def _totals() -> tuple[int, int, int]:
    from django.db.models import Sum

    from downloads.models import DownloadEvent, DownloadLink
    from messaging.models import OutboxEvent

    return (
        DownloadEvent.objects.count(),
        OutboxEvent.objects.filter(type__in=["downloads.served", "downloads.refused"]).count(),
        DownloadLink.objects.aggregate(total=Sum("download_count"))["total"] or 0,
    )


def _backend_cpu() -> float:
    """CPU seconds the PostgreSQL backend serving this process has used (it runs on this machine: /proc)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")  # another machine's server: only the wall-clock rate is known
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Clock:
    """Wall time, and CPU time of this process plus its PostgreSQL backend: on a busy machine the wall-clock rate
    says how loaded it was; the CPU per attempt is what the ingest itself costs."""

    def __enter__(self):
        self.wall, self.cpu, self.server = time.perf_counter(), time.process_time(), _backend_cpu()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        self.server = _backend_cpu() - self.server


def child() -> None:
    """In the child, on its scratch database: the figures as one JSON line."""
    setup_django()
    from downloads.edge_log_reader import EdgeLogReader, ReaderTimings
    from downloads.services import attempts_record

    count = int(os.environ.get("BENCH_AUDIT_ATTEMPTS", "50000"))
    links = _links()
    figures: dict = {"attempts": count, "links": len(links), "batches": {}}
    expected = [0, 0, 0]

    def account(n: int) -> None:
        expected[0] += n
        expected[1] += n
        expected[2] += sum(1 for number in range(n) if number % 4 != 3)

    def record(name: str, clocks: list[_Clock]) -> None:
        figures["batches"][name] = {
            "rate": statistics.median(count / clock.wall for clock in clocks),
            "client_us": statistics.median(clock.cpu / count * 1e6 for clock in clocks),
            "server_us": statistics.median(clock.server / count * 1e6 for clock in clocks),
        }

    for batch in (500, 5000):
        clocks = []
        for _ in range(ROUNDS):
            attempts = _attempts(links, count)
            with _Clock() as clock:
                for start in range(0, count, batch):
                    attempts_record(attempts=attempts[start : start + batch])
            clocks.append(clock)
            account(count)
        record(f"attempts_record {batch}", clocks)

    clocks = []
    with tempfile.TemporaryDirectory(prefix="bench-edge-log-") as folder:
        for round_number in range(ROUNDS):
            log = Path(folder) / f"edge-{round_number}.log"
            log.write_bytes(_edge_lines(links, count))
            reader = EdgeLogReader(log, prefix="/dl/", timings=ReaderTimings(batch_lines=5000, poll_interval=0.001))
            with _Clock() as clock:
                reader.run_until_caught_up(timeout=600)
            clocks.append(clock)
            reader.stop()
            account(count)
    record("edge log reader 5000", clocks)
    figures["stored"], figures["expected"] = list(_totals()), expected
    print(json.dumps(figures))


def main(argv: list[str]) -> int:
    if "--child" in argv:
        child()
        return 0
    try:
        url, drop = scratch_postgres("bench_audit")
    except Exception as exc:  # no server here: say so, do not fail the whole run
        print(f"download audit: skipped, no PostgreSQL ({exc})")
        return 0
    try:
        with tempfile.TemporaryDirectory(prefix="bench-download-audit-") as workdir:
            figures = run_child(
                "bench.download_audit",
                database_url=url,
                workdir=workdir,
                env={"DOWNLOADS_ROOT": str(Path(workdir) / "downloads"), "LOG_LEVEL": "WARNING"},
                timeout=1800,
            )
    finally:
        drop()
    print(
        f"download audit ingest on PostgreSQL, events included ({figures['attempts']:,} attempts a round over "
        f"{figures['links']:,} links, median of {ROUNDS} rounds; target ≥ {TARGET:,} attempts/s):"
    )
    print(f"   (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs when it ended)")
    failures = 0
    for name, result in figures["batches"].items():
        writer, _, batch = name.rpartition(" ")
        rate, client, server = result["rate"], result["client_us"], result["server_us"]
        good = rate >= TARGET
        failures += not good
        print(
            f"   {writer:18} batches of {int(batch):>5,}: {rate:9,.0f} attempts/s  {'OK' if good else 'BELOW TARGET'}"
            f"  (CPU an attempt: {client:.0f} µs here + {server:.0f} µs in PostgreSQL = "
            f"{1e6 / (client + server):,.0f} attempts per CPU-second)"
        )
    rows, events, counted = figures["stored"]
    want_rows, want_events, want_counted = figures["expected"]
    complete = (rows, events, counted) == (want_rows, want_events, want_counted)
    print(
        f"   stored: {rows:,} audit rows, {events:,} bus events, {counted:,} downloads counted "
        f"({'all' if complete else f'EXPECTED {want_rows:,} / {want_events:,} / {want_counted:,}'})"
    )
    return 1 if failures or not complete else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
