"""The audit of download attempts, written off the request path in batches.

The download app hands each attempt to :func:`submit` (a deque append, no I/O); :class:`AuditWriter`, a
``hub.workers.Worker``, writes them every ``batch_rows`` rows or ``flush_interval`` seconds, whichever comes
first, in one transaction with the download counts and the bus events. The embedded default starts it from the
lifespan; a production web process starts it on its first attempt and flushes what is left at exit.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from django.db import close_old_connections

from hub.workers import Worker

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Attempt:
    at: datetime
    method: str
    status: int
    outcome: str  # served, partial, invalid, forbidden, expired, revoked, used_up, missing, unsatisfiable, …
    customer: str = ""
    path: str = ""
    ip: str | None = None
    user_agent: str = ""
    range: str = ""
    bytes_sent: int = 0
    accel: bool = False
    link_id: int | None = None
    # True when the batch must add this one to the link's download count (uncapped links; capped ones were
    # claimed atomically at request time).
    count_pending: bool = False

    @property
    def served(self) -> bool:
        return self.status in (200, 206)


class AuditWriter(Worker):
    name = "downloads-audit"

    def __init__(self, *, batch_rows: int = 500, flush_interval: float = 0.25, max_pending: int = 200_000) -> None:
        super().__init__()
        self.batch_rows = batch_rows
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self._pending: deque[Attempt] = deque()
        self._wake = threading.Event()
        self._start_lock = threading.Lock()
        self.dropped = 0

    def submit(self, attempt: Attempt) -> None:
        if len(self._pending) >= self.max_pending:
            # The database has been down for a long while: keep memory bounded, say so in the log.
            self._pending.popleft()
            self.dropped += 1
            if self.dropped % 1000 == 1:
                logger.error("download audit backlog full: %d attempts dropped so far", self.dropped)
        self._pending.append(attempt)
        if len(self._pending) >= self.batch_rows:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def ensure_started(self) -> None:
        if not self.alive:
            with self._start_lock:
                if not self.alive:
                    self.start()

    def serve(self) -> None:
        try:
            while not self.stopping.is_set():
                self._wake.wait(self.flush_interval)
                self._wake.clear()
                self.flush()
        finally:
            # Nothing submitted before stop() is lost: drain what is left (retrying briefly if the DB is busy).
            for _ in range(3):
                try:
                    self.flush()
                    break
                except Exception:
                    logger.exception("download audit: final flush failed, retrying")
                    time.sleep(0.2)

    def stop(self, timeout: float = 60.0) -> None:
        # Longer than the base's 10 s: a backlog left by a burst is drained before the process exits.
        self.stopping.set()
        self._wake.set()
        super().stop(timeout)

    def flush(self) -> int:
        """Write everything pending now, in batches; returns how many attempts were written."""
        from downloads.services import attempts_record

        written = 0
        while self._pending:
            batch = []
            while self._pending and len(batch) < self.batch_rows:
                batch.append(self._pending.popleft())
            try:
                attempts_record(attempts=batch)
            except Exception:
                # Put them back in order and try again on the next round (the DB may be restarting).
                self._pending.extendleft(reversed(batch))
                close_old_connections()
                logger.exception("download audit: writing %d attempts failed; will retry", len(batch))
                if self.stopping.is_set():
                    raise
                return written
            written += len(batch)
        return written


writer = AuditWriter()
_atexit_registered = False


def writer_for_embedded() -> AuditWriter:
    return writer


def submit(attempt: Attempt) -> None:
    """Queue ``attempt`` for the audit; starts the writer in processes where the lifespan did not."""
    global _atexit_registered
    writer.submit(attempt)
    if not writer.alive:
        from hub import embedded

        writer.ensure_started()
        # The lifespan shutdown stops (and so flushes) it; atexit covers servers without a lifespan.
        embedded.track(writer)
        if not _atexit_registered:
            _atexit_registered = True
            atexit.register(writer.stop)


def health_check():
    """/healthz: degraded while this process's audit backlog is large (the database is slow or down) or rows
    were dropped; the download path itself keeps answering."""
    from hub.health import CheckResult

    if writer.dropped:
        return CheckResult(False, f"{writer.dropped} audit rows dropped (backlog full); {writer.pending} waiting")
    if writer.pending > 10 * writer.batch_rows:
        return CheckResult(False, f"{writer.pending} audit rows waiting to be written")
    return CheckResult(True, f"{writer.pending} audit rows waiting")
