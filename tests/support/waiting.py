"""Waiting on something observable instead of sleeping a fixed time.

Every test that needs "until this is true" uses these, so the polling loop (and its one ``sleep``) lives here.
A test that must show that something did *not* happen waits instead for a later thing that can only come after
it (a counter, a marker message, a worker's loop count), never for a fixed time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
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
