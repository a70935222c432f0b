"""How fast does the outbox relay publish, next to plain kombu publishing with and without a confirm per message?

Against the local RabbitMQ (and PostgreSQL), in one run, on bus names and scratch databases of its own. Every
publish goes to the hub's topology (fanout ``ce`` → two durable quorum queues, persistent messages):

1. raw kombu, a publisher confirm awaited after every message (``confirm_publish``) — the target to beat;
2. raw kombu, no confirms at all — the ceiling (nothing is known to have arrived);
3. the relay draining a pre-filled outbox on PostgreSQL, and 4. on SQLite (the embedded default's file, WAL):
   rows read in id order, published in batches with one confirm wait per batch, deleted once confirmed.

Each is printed in events/s and as a ratio to (1).

    python -m bench bus_publish      (BENCH_EVENTS=N relay and unconfirmed events, default 50,000;
                                      BENCH_CONFIRM_EVENTS=M confirm-per-message events, default 5,000;
                                      BENCH_AMQP_URL, BENCH_POSTGRES_URL point elsewhere)
"""

from __future__ import annotations

import json
import os
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
BATCH_SIZE = 500


def bus_environment() -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {
        "EVENTS_EXCHANGE": f"bench-pub-ce-{suffix}",
        "EVENTS_TOPIC_EXCHANGE": f"bench-pub-topic-{suffix}",
        "EVENTS_DB_QUEUE": f"bench-pub-db-{suffix}",
        "EVENTS_NOTIFY_QUEUE": f"bench-pub-notify-{suffix}",
        "EVENTS_DEAD_LETTER_EXCHANGE": f"bench-pub-dlx-{suffix}",
        "EVENTS_DEAD_LETTER_QUEUE": f"bench-pub-dead-{suffix}",
    }


def sample_body(index: int) -> tuple[bytes, dict]:
    """The same envelope and properties the relay sends, built without Django."""
    event_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    body = json.dumps(
        {
            "id": event_id,
            "type": "bench.reading",
            "occurred_at": now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
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
        "timestamp": int(now.timestamp()),
        "headers": {"x-hub-topics": [], "x-hub-retain": False},
        "delivery_mode": 2,
    }
    return body, properties


def raw_publish_rate(names: dict[str, str], count: int, *, confirm_each: bool) -> float:
    from kombu import Connection, Exchange

    exchange = Exchange(names["EVENTS_EXCHANGE"], type="fanout", durable=True, passive=True)
    messages = [sample_body(index) for index in range(count)]
    options = {"confirm_publish": True} if confirm_each else {}
    with Connection(AMQP_URL, transport_options=options) as connection:
        producer = connection.Producer(exchange=exchange, auto_declare=False)
        started = time.perf_counter()
        for body, properties in messages:
            producer.publish(body, routing_key="bench.reading", mandatory=True, **properties)
        elapsed = time.perf_counter() - started
    return count / elapsed


def purge(names: dict[str, str]) -> None:
    from kombu import Connection, Queue

    with Connection(AMQP_URL) as connection:
        for key in ("EVENTS_DB_QUEUE", "EVENTS_NOTIFY_QUEUE"):
            Queue(names[key], no_declare=True)(connection.channel()).purge()


def delete_bus(names: dict[str, str]) -> None:
    from kombu import Connection, Exchange, Queue

    with Connection(AMQP_URL) as connection:
        for key in ("EVENTS_DB_QUEUE", "EVENTS_NOTIFY_QUEUE", "EVENTS_DEAD_LETTER_QUEUE"):
            Queue(names[key], no_declare=True)(connection.channel()).delete()
        for key in ("EVENTS_TOPIC_EXCHANGE", "EVENTS_EXCHANGE", "EVENTS_DEAD_LETTER_EXCHANGE"):
            Exchange(names[key])(connection.channel()).delete()


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=300
    )


def relay_rate(env: dict[str, str], count: int) -> dict:
    """Migrate the scratch database, fill its outbox and time the relay draining it (in a child process)."""
    migrated = manage(env, "migrate", "--noinput")
    if migrated.returncode != 0:
        raise RuntimeError(f"migrate failed: {migrated.stderr[-2000:]}")
    child = subprocess.run(
        [sys.executable, "-m", "bench.bus_publish", "--relay-child", str(count)],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if child.returncode != 0:
        raise RuntimeError(f"relay run failed: {child.stderr[-2000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def relay_child(count: int) -> None:
    """In the child: Django set up on the scratch database; fill the outbox, then drain it with the relay."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
    django.setup()
    from messaging.models import OutboxEvent
    from messaging.relay import OutboxRelay, RelayTimings

    now = datetime.now(UTC)
    rows = (
        OutboxEvent(
            event_id=uuid.uuid4(),
            type="bench.reading",
            occurred_at=now,
            source="bench",
            data={"index": index, "celsius": 21.5, "node": index % 64},
        )
        for index in range(count)
    )
    batch: list[OutboxEvent] = []
    for row in rows:
        batch.append(row)
        if len(batch) == 5000:
            OutboxEvent.objects.bulk_create(batch)
            batch = []
    OutboxEvent.objects.bulk_create(batch)
    relay = OutboxRelay(timings=RelayTimings(batch_size=BATCH_SIZE, confirm_timeout=30.0))
    started = time.perf_counter()
    published = relay.drain(timeout=600)
    elapsed = time.perf_counter() - started
    left = OutboxEvent.objects.count()
    print(json.dumps({"published": published, "seconds": elapsed, "left": left, "rate": published / elapsed}))


def main(argv: list[str]) -> int:
    if argv[:1] == ["--relay-child"]:
        relay_child(int(argv[1]))
        return 0

    import psycopg

    events = int(os.environ.get("BENCH_EVENTS", "50000"))
    confirm_events = int(os.environ.get("BENCH_CONFIRM_EVENTS", "5000"))
    names = bus_environment()
    scratch = Path(tempfile.mkdtemp(prefix="bench-bus-publish-"))
    base_env = {**os.environ, "AMQP_URL": AMQP_URL, "HUB_MODE": "embedded", "LOG_LEVEL": "WARNING", **names}
    base_env["HUB_VAR_DIR"] = str(scratch)
    database = f"hub_bench_pub_{uuid.uuid4().hex[:8]}"
    postgres_url = urlunsplit(urlsplit(POSTGRES_URL)._replace(path=f"/{database}"))
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        setup = manage({**base_env, "DATABASE_URL": f"sqlite:///{scratch / 'setup.sqlite3'}"}, "messaging_setup")
        if setup.returncode != 0:
            print(f"messaging_setup failed: {setup.stderr[-2000:]}")
            return 1
        print(
            f"bus: fanout {names['EVENTS_EXCHANGE']} → quorum queues {names['EVENTS_DB_QUEUE']}, "
            f"{names['EVENTS_NOTIFY_QUEUE']}; persistent, mandatory; relay batch {BATCH_SIZE}",
            flush=True,
        )
        confirmed = raw_publish_rate(names, confirm_events, confirm_each=True)
        purge(names)
        unconfirmed = raw_publish_rate(names, events, confirm_each=False)
        time.sleep(2)  # let the broker take in what was sent unconfirmed before the next measurement
        purge(names)
        on_postgres = relay_rate({**base_env, "DATABASE_URL": postgres_url}, events)
        purge(names)
        on_sqlite = relay_rate({**base_env, "DATABASE_URL": f"sqlite:///{scratch / 'hub.sqlite3'}"}, events)
        purge(names)
    finally:
        try:
            delete_bus(names)
        finally:
            with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    rows = [
        (f"raw kombu, confirm per message ({confirm_events:,} events)", confirmed, ""),
        (f"raw kombu, no confirms ({events:,} events)", unconfirmed, "nothing known to have arrived"),
        (
            f"relay, PostgreSQL outbox ({on_postgres['published']:,} events)",
            on_postgres["rate"],
            f"{on_postgres['left']} left",
        ),
        (f"relay, SQLite outbox ({on_sqlite['published']:,} events)", on_sqlite["rate"], f"{on_sqlite['left']} left"),
    ]
    print(f"{'':52} {'events/s':>10} {'vs confirm/msg':>14}")
    for label, rate, note in rows:
        print(f"{label:52} {rate:10,.0f} {rate / confirmed:14.2f}  {note}")
    target_met = min(on_postgres["rate"], on_sqlite["rate"]) >= confirmed
    print(f"target (relay ≥ raw confirm-per-message): {'met' if target_met else 'NOT met'}")
    return 0 if target_met else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
