"""Waiting on something observable instead of sleeping a fixed time.

Every test that needs "until this is true" uses these, so the polling loop (and its one ``sleep``) lives here.
A test that must show that something did *not* happen waits instead for a later thing that can only come after
it (a counter, a marker message, a worker's loop count), never for a fixed time.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    *,
    timeout: float = 20.0,
    interval: float = 0.02,
    ignoring: tuple[type[BaseException], ...] = (),
) -> T | bool:
    """Poll ``condition`` until it returns something truthy (returned) or ``timeout`` seconds pass.

    After the deadline the condition is asked once more and that (falsy) answer returned, so callers write
    ``assert wait_until(...)``. Exceptions of the ``ignoring`` types count as "not yet" (a server still starting,
    a database file still locked); after the deadline they count as False.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
        except ignoring:
            result = False
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(interval)


def wait_for(
    condition: Callable[[], T],
    *,
    timeout: float = 20.0,
    interval: float = 0.02,
    what: str = "condition",
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """Like :func:`wait_until`, but a timeout fails the test with a message naming ``what`` was awaited."""
    result = wait_until(condition, timeout=timeout, interval=interval, ignoring=ignoring)
    if not result:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")
    return result


async def async_wait_until(condition: Callable[[], T], *, timeout: float = 5.0, interval: float = 0.02) -> T:
    """Await until ``condition`` returns something truthy (returned); ``TimeoutError`` after ``timeout`` seconds.

    The event loop keeps running in between, so tasks under test make progress.
    """
    async with asyncio.timeout(timeout):
        while not (result := condition()):
            await asyncio.sleep(interval)
    return result


async def async_poll(probe: Callable[[], Awaitable[T]], *, timeout: float = 5.0, interval: float = 0.05) -> T:
    """Await ``probe()`` again and again until it returns something truthy (returned); ``TimeoutError`` after
    ``timeout`` seconds. For what can only be observed by asking, such as a socket's answer to a request."""
    async with asyncio.timeout(timeout):
        while not (result := await probe()):
            await asyncio.sleep(interval)
    return result


def accepts_connections(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on ``host:port`` (a server still starting answers False)."""
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        return False
    return True


def retry_while_locked(action: Callable[[], T], *, timeout: float = 5.0, interval: float = 0.005) -> T:
    """``action()``, again while the test database answers "locked"; its result.

    pytest-django's in-memory SQLite database is shared between threads through SQLite's shared cache, whose
    table locks fail at once instead of waiting their turn as the hub's WAL file and PostgreSQL do. A test that
    writes from two threads retries here; any other error, or "locked" past ``timeout``, is raised.
    """
    from django.db import OperationalError

    results: list[T] = []

    def attempt() -> bool:
        try:
            results.append(action())
        except OperationalError as exc:
            if "locked" not in str(exc):
                raise
            return False
        return True

    if not wait_until(attempt, timeout=timeout, interval=interval):
        return action()  # once more, so the test sees the error itself
    return results[0]


async def callbacks_run() -> None:
    """Return once every callback already scheduled on this event loop has run (``call_soon`` keeps order).

    What another thread handed to the loop with ``call_soon_threadsafe`` before this call is delivered after it.
    """
    done = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(done.set_result, None)
    await done
