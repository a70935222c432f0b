"""How fast does the events.db consumer store events, next to plain kombu consuming, and does its memory stay flat?

Against the local RabbitMQ and PostgreSQL, in one run, on a scratch database and bus names of its own:

1. raw: a full quorum queue of N envelopes drained by plain kombu (prefetch 500, one ack per message, nothing
   stored) — the ceiling a consumer can reach on this broker;
2. events.db: the same full queue drained by ``manage.py consume_events db`` (a separate process, as production
   runs it) storing each event in PostgreSQL — events stored per second, and its ratio to (1);
3. long run: M events published while the consumer keeps up; the consumer process's RSS sampled as it goes.

    python -m bench bus_consume     (BENCH_EVENTS=N, default 50,000; BENCH_ROUNDS, default 3: raw and stored
                                      alternate and the medians are compared; BENCH_LONG_EVENTS=M, default
                                      1,000,000; BENCH_AMQP_URL, BENCH_POSTGRES_URL point elsewhere)
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PROJECT_DIR = Path(__file__).resolve().parent.parent
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
PREFETCH = 500


def envelope_body(index: int) -> tuple[bytes, dict]:
    event_id = str(uuid.uuid4())
    body = json.dumps(
        {
            "id": event_id,
            "type": "bench.reading",
            "occurred_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "source": "bench",
            "data": {"index": index, "celsius": 21.5, "node": index % 64},
        },
        separators=(",", ":"),
    ).encode()
    properties = {
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "message_id": event_id,
        "type": "bench.reading",
        "delivery_mode": 2,
    }
    return body, properties


def bus_environment() -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {
        "EVENTS_EXCHANGE": f"bench-ce-{suffix}",
        "EVENTS_TOPIC_EXCHANGE": f"bench-topic-{suffix}",
        "EVENTS_DB_QUEUE": f"bench-db-{suffix}",
        "EVENTS_NOTIFY_QUEUE": f"bench-notify-{suffix}",
        "EVENTS_DEAD_LETTER_EXCHANGE": f"bench-dlx-{suffix}",
        "EVENTS_DEAD_LETTER_QUEUE": f"bench-dead-{suffix}",
    }


def manage(env: dict[str, str], *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", *args], cwd=PROJECT_DIR, env=env, **popen)


def fill(connection, queue: str, count: int, *, first_index: int = 0) -> None:
    """Publish ``count`` envelopes straight to ``queue`` (the default exchange), then wait until all are there."""
    from kombu import Producer

    channel = connection.channel()
    producer = Producer(channel)
    for index in range(first_index, first_index + count):
        body, properties = envelope_body(index)
        producer.publish(body, exchange="", routing_key=queue, **properties)
    while channel.queue_declare(queue=queue, passive=True).message_count < count:
        time.sleep(0.05)
    channel.close()


def raw_consume_rate(connection, queue: str, count: int) -> float:
    """Plain kombu: prefetch 500, ack each message, decode nothing."""
    from kombu import Consumer, Queue

    channel = connection.channel()
    channel.basic_qos(0, PREFETCH, False)
    received = 0

    def on_message(message):
        nonlocal received
        message.ack()
        received += 1

    started = time.perf_counter()
    with Consumer(channel, queues=[Queue(queue, no_declare=True)], on_message=on_message, auto_declare=False):
        while received < count:
            connection.drain_events(timeout=10)
    elapsed = time.perf_counter() - started
    channel.close()
    return count / elapsed


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Table:
    def __init__(self, url: str) -> None:
        import psycopg

        self.connection = psycopg.connect(url, autocommit=True)

    def count(self) -> int:
        return self.connection.execute("SELECT count(*) FROM messaging_event").fetchone()[0]

    def truncate(self) -> None:
        self.connection.execute("TRUNCATE messaging_event")


def main(argv: list[str]) -> int:
    import psycopg
    from kombu import Connection

    events = int(os.environ.get("BENCH_EVENTS", "50000"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    long_events = int(os.environ.get("BENCH_LONG_EVENTS", "1000000"))
    database = f"hub_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    database_url = urlunsplit(urlsplit(POSTGRES_URL)._replace(path=f"/{database}"))
    names = bus_environment()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-bus-consume-"))
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "AMQP_URL": AMQP_URL,
        "HUB_MODE": "embedded",
        # As production runs: with DEBUG on Django renders every statement's parameters into its query log.
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        **names,
    }
    consumer = None
    try:
        for step in (("migrate", "--noinput"), ("messaging_setup",)):
            done = manage(env, *step, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if done.wait(180) != 0:
                print(f"manage.py {' '.join(step)} failed: {done.stderr.read().decode()}")
                return 1
        queue = names["EVENTS_DB_QUEUE"]
        table = Table(database_url)
        log = (log_dir / "consumer.log").open("w")
        with Connection(AMQP_URL) as connection:
            print(
                f"RabbitMQ {connection.connection.server_properties.get('version')}, quorum queue {queue}; "
                f"PostgreSQL scratch database {database}; {events:,} envelopes per run",
                flush=True,
            )
            raws, stored_rates = [], []
            for round_number in range(1, rounds + 1):
                # Raw and stored alternate, so both see the same machine (other work makes single runs swing).
                fill(connection, queue, events)
                raws.append(raw_consume_rate(connection, queue, events))
                table.truncate()
                fill(connection, queue, events)
                consumer = manage(env, "consume_events", "db", stdout=log, stderr=subprocess.STDOUT)
                stored_rate = stored_rate_of(connection, queue, table, consumer, events)
                if stored_rate is None:
                    print(f"events.db consumer did not finish; log in {log_dir}")
                    return 1
                stored_rates.append(stored_rate)
                print(
                    f"round {round_number}: raw kombu consume {raws[-1]:,.0f} messages/s; events.db stored "
                    f"{stored_rate:,.0f} events/s = {stored_rate / raws[-1]:.2f} of raw",
                    flush=True,
                )
                if round_number < rounds or not long_events:
                    consumer.terminate()
                    consumer.wait(30)
            raw, stored = statistics.median(raws), statistics.median(stored_rates)
            print(
                f"median of {rounds}: raw kombu consume (prefetch {PREFETCH}, ack per message) {raw:,.0f} messages/s; "
                f"events.db consumer (batches of {PREFETCH}, one multiple-ack per commit) {stored:,.0f} events "
                f"stored/s = {stored / raw:.2f} of raw (targets: >= 5,000/s and >= 0.90)",
                flush=True,
            )

            if long_events:
                long_run(connection, queue, table, consumer.pid, long_events, first_index=events)
    finally:
        if consumer is not None:
            consumer.terminate()
            consumer.wait(30)
        with Connection(AMQP_URL) as connection:
            channel = connection.channel()
            for key in ("EVENTS_DB_QUEUE", "EVENTS_NOTIFY_QUEUE", "EVENTS_DEAD_LETTER_QUEUE"):
                channel.queue_delete(names[key])
            for key in ("EVENTS_EXCHANGE", "EVENTS_TOPIC_EXCHANGE", "EVENTS_DEAD_LETTER_EXCHANGE"):
                channel.exchange_delete(names[key])
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return 0


def stored_rate_of(connection, queue: str, table: Table, consumer: subprocess.Popen, events: int) -> float | None:
    """Events stored per second by ``consumer`` from the full ``queue``: from when the queue starts to drain to
    when the table holds them all. The table is counted only once the queue is empty: count(*) polled in a loop
    would compete with the consumer."""
    channel = connection.channel()
    deadline = time.monotonic() + 600
    while channel.queue_declare(queue=queue, passive=True).message_count >= events:
        if time.monotonic() > deadline or consumer.poll() is not None:
            return None
        time.sleep(0.02)
    start_time = time.perf_counter()
    while channel.queue_declare(queue=queue, passive=True).message_count > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    while table.count() < events and time.monotonic() < deadline:
        time.sleep(0.05)
    finished = time.perf_counter()
    channel.close()
    return events / (finished - start_time) if table.count() >= events else None


def long_run(connection, queue: str, table: Table, pid: int, total: int, *, first_index: int) -> None:
    """Keep the consumer busy for ``total`` events (backlog capped at 50,000) and sample its RSS every 30 s."""
    from kombu import Producer

    channel = connection.channel()
    producer = Producer(channel)
    base = table.count()
    interval = float(os.environ.get("BENCH_SAMPLE_SECONDS", "30"))
    samples = [(0, rss_kib(pid))]
    published = 0
    started = time.perf_counter()
    next_sample = started + interval
    print(f"long run: {total:,} events; the consumer's RSS every {interval:.0f} s:", flush=True)
    print(f"  {0:>6.0f} s {0:>11,} stored  RSS {samples[0][1]:>8,} KiB", flush=True)
    while True:
        if published < total and channel.queue_declare(queue=queue, passive=True).message_count < 50_000:
            chunk = min(5_000, total - published)
            for index in range(chunk):
                body, properties = envelope_body(first_index + published + index)
                producer.publish(body, exchange="", routing_key=queue, **properties)
            published += chunk
            continue
        now = time.perf_counter()
        if now >= next_sample:
            stored = table.count() - base
            samples.append((stored, rss_kib(pid)))
            print(f"  {now - started:>6.0f} s {stored:>11,} stored  RSS {samples[-1][1]:>8,} KiB", flush=True)
            next_sample = now + interval
            if stored >= total:
                break
        elif published >= total and channel.queue_declare(queue=queue, passive=True).message_count == 0:
            next_sample = now  # the queue is drained: take the last sample now
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    rss = [kib for _, kib in samples[1:]] or [samples[0][1]]
    print(
        f"long run: {total:,} events in {elapsed:,.0f} s ({total / elapsed:,.0f}/s); RSS {samples[0][1]:,} KiB "
        f"at start, then between {min(rss):,} and {max(rss):,} KiB; last minus first sample: {rss[-1] - rss[0]:+,} KiB",
        flush=True,
    )
    channel.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
