"""Long-running workers: one class each, the same code under a management command and in the embedded default.

A worker subclasses :class:`Worker` and implements :meth:`Worker.serve`, a loop
that returns once ``self.stopping`` is set. Production runs it in the foreground
with :func:`run_in_foreground` (SIGTERM/SIGINT stop it cleanly); the embedded
default starts it on a thread from the ASGI lifespan (:mod:`hub.embedded`).

A worker that loses a dependency (broker, database, modem) waits before trying again with a :class:`Backoff`:
exponential, capped, with jitter, configured by two fields every worker's timings call ``retry_initial`` and
``retry_max``.
"""

from __future__ import annotations

import contextlib
import logging
import random
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Literal

from django.db import DatabaseError, close_old_connections

logger = logging.getLogger(__name__)

Jitter = Literal["none", "full", "equal"]
JITTERS: tuple[Jitter, ...] = ("none", "full", "equal")

#: What the workers use: each wait is between half and all of the exponential delay, so processes that lost the
#: same broker at the same moment do not all come back at the same moment, and none retries in a tight loop.
DEFAULT_JITTER: Jitter = "equal"


class Backoff:
    """Exponential back-off with a cap and jitter.

    The n-th :meth:`next_delay` (counting from 0 since the last :meth:`reset`) is based on
    ``min(maximum, initial * multiplier**n)``; jitter then picks the wait from that base:

    * ``"none"``: the base itself;
    * ``"full"``: uniformly between 0 and the base;
    * ``"equal"``: half the base plus uniformly up to the other half.

    (The two jittered forms are those of AWS's architecture note "Exponential Backoff And Jitter": they spread
    clients that failed together, so they do not all retry together.) ``random`` returns a float in [0, 1); tests
    pass their own to make the waits exact.
    """

    def __init__(
        self,
        *,
        initial: float,
        maximum: float,
        multiplier: float = 2.0,
        jitter: Jitter = DEFAULT_JITTER,
        random: Callable[[], float] = random.random,
    ) -> None:
        if initial < 0 or maximum < initial:
            raise ValueError(f"back-off needs 0 <= initial <= maximum, not initial={initial!r} maximum={maximum!r}")
        if multiplier < 1:
            raise ValueError(f"back-off multiplier must be at least 1, not {multiplier!r}")
        if jitter not in JITTERS:
            raise ValueError(f"back-off jitter must be one of {', '.join(JITTERS)}, not {jitter!r}")
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.jitter = jitter
        self._random = random
        self.attempts = 0
        self._base = initial

    @classmethod
    def from_timings(cls, timings: object, *, random: Callable[[], float] = random.random) -> Backoff:
        """The back-off a worker's timings describe: their ``retry_initial``, ``retry_max`` and ``retry_jitter``."""
        return cls(
            initial=timings.retry_initial,
            maximum=timings.retry_max,
            jitter=getattr(timings, "retry_jitter", DEFAULT_JITTER),
            random=random,
        )

    def next_delay(self) -> float:
        """How long to wait before the next attempt; each call counts one more failed attempt."""
        base = self._base
        self.attempts += 1
        # Grown step by step (not initial * multiplier**attempts): no overflow however long the outage.
        self._base = min(self.maximum, self._base * self.multiplier)
        if self.jitter == "full":
            return base * self._random()
        if self.jitter == "equal":
            return base / 2 + base / 2 * self._random()
        return base

    def reset(self) -> None:
        """The dependency answered: the next failure waits ``initial`` again."""
        self.attempts = 0
        self._base = self.initial


class Heartbeat:
    """A worker's heartbeat row (what ``/healthz`` reads), written at most once an interval: :meth:`beat` writes it
    when the interval has passed since the last write, when forced, or after :meth:`soon` (news for the health
    report, such as an outage starting or ending). A database that does not answer costs a missed beat, never
    the worker."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._last: float | None = None  # None: write at the next beat

    def soon(self) -> None:
        self._last = None

    def beat(self, *, interval: float, details: Callable[[], dict], force: bool = False) -> None:
        now = time.monotonic()
        if not force and self._last is not None and now - self._last < interval:
            return
        self._last = now
        from hub.services import heartbeat_record  # imports the models: only once the apps are loaded

        with contextlib.suppress(DatabaseError):
            heartbeat_record(name=self.name, interval_seconds=interval, details=details())


class Worker(ABC):
    #: A short name used in logs, thread names and the health report.
    name: str = "worker"

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # start() and stop() may come from different threads (a web process starts a writer on its first request
        # while a shutdown stops it): one at a time, so stop() never meets a thread made but not yet started.
        self._lifecycle = threading.Lock()

    @abstractmethod
    def serve(self) -> None:
        """Do the work until ``self.stopping`` is set, then return."""

    def run(self) -> None:
        """Run ``serve`` in the calling thread, closing this thread's DB connections afterwards."""
        logger.info("%s starting", self.name)
        try:
            self.serve()
        finally:
            close_old_connections()
            logger.info("%s stopped", self.name)

    def start(self) -> None:
        """Run on a daemon thread and return at once."""
        with self._lifecycle:
            if self._thread is not None and self._thread.is_alive():
                return
            self.stopping.clear()
            self._thread = threading.Thread(target=self._run_logged, name=self.name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the loop to finish and wait for it."""
        self.stopping.set()
        with self._lifecycle:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)  # still ``alive`` meanwhile, so a start() now would not run a second loop
            if thread.is_alive():
                logger.warning("%s did not stop within %.1f s", self.name, timeout)
            with self._lifecycle:
                if self._thread is thread:
                    self._thread = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run_logged(self) -> None:
        try:
            self.run()
        except Exception:
            logger.exception("%s crashed", self.name)


def run_in_foreground(worker: Worker) -> None:
    """Run ``worker`` in this thread until SIGTERM or SIGINT (what a management command does)."""

    def request_stop(signum: int, _frame: object) -> None:
        logger.info("%s received signal %s, stopping", worker.name, signal.Signals(signum).name)
        worker.stopping.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        worker.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
