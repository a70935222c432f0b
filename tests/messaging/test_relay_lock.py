"""Only one relay publishes at a time; another waits on the lock and takes over when the first stops.

Runs on SQLite (one process: a process lock) and again on PostgreSQL in `make test`'s second pass, where the
lock is a session-level advisory lock held on each relay thread's own database connection.
"""

import pytest
from django.db import connection

from messaging.models import OutboxEvent
from messaging.relay import OutboxRelay, PostgresAdvisoryLock, RelayTimings, relay_lock_for
from tests.messaging.relay_support import publish_beside_a_running_relay
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.services, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def quick_relay() -> OutboxRelay:
    return OutboxRelay(
        timings=RelayTimings(
            retry_initial=0.02, retry_max=0.2, idle_interval=0.05, lock_interval=0.05, heartbeat_interval=30.0
        )
    )


def test_two_relays_one_publishes_the_other_takes_over_and_order_holds(bus):
    first, second = quick_relay(), quick_relay()
    first.start()
    assert wait_until(lambda: first.leader, timeout=5)
    attempts = []  # the second relay's tries for the lock, each answered
    try_lock = second._acquire_lock
    second._acquire_lock = lambda: attempts.append(try_lock()) or attempts[-1]
    second.start()
    try:
        assert wait_until(lambda: len(attempts) >= 3, timeout=5)
        assert attempts[:3] == [False, False, False]
        assert first.leader
        assert not second.leader  # waiting on the lock

        ids = [publish_beside_a_running_relay("test.lock", {"n": n}, source="test") for n in range(500)]
        assert wait_until(lambda: first.published == 500, timeout=15)
        assert second.published == 0

        first.stop(timeout=5)
        assert wait_until(lambda: second.leader, timeout=5)
        ids += [publish_beside_a_running_relay("test.lock", {"n": n}, source="test") for n in range(500, 1000)]
        assert wait_until(lambda: second.published == 500, timeout=15)
    finally:
        first.stop(timeout=5)
        second.stop(timeout=5)
    assert not OutboxEvent.objects.exists()
    arrived = bus.collect(bus.db_queue, count=1000, settle=0.3)
    assert [m.properties["message_id"] for m in arrived] == [str(i) for i in ids]


def test_on_postgresql_the_lock_is_an_advisory_lock_that_a_second_session_cannot_take(bus):
    if connection.vendor != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's; this run is on SQLite (make test runs it again on PostgreSQL)")
    import psycopg

    lock = relay_lock_for("relay_outbox:test-advisory")
    assert isinstance(lock, PostgresAdvisoryLock)
    assert lock.acquire()
    dsn = connection.get_connection_params()
    dsn.pop("cursor_factory", None)
    dsn.pop("context", None)
    with psycopg.connect(**dsn, autocommit=True) as other:
        assert other.execute("SELECT pg_try_advisory_lock(%s)", [lock.key]).fetchone()[0] is False
        lock.release()
        assert other.execute("SELECT pg_try_advisory_lock(%s)", [lock.key]).fetchone()[0] is True
        other.execute("SELECT pg_advisory_unlock(%s)", [lock.key])


def test_a_relay_whose_database_connection_was_replaced_asks_for_the_lock_again(bus):
    if connection.vendor != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's; this run is on SQLite (make test runs it again on PostgreSQL)")
    lock = relay_lock_for("relay_outbox:test-reconnect")
    assert lock.acquire()
    connection.close()  # the session, and with it the lock, is gone
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        assert cursor.fetchone()[0] == 0
    assert lock.acquire()  # noticed the new connection and took the lock on it
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        assert cursor.fetchone()[0] == 1
    lock.release()
