"""The audit of download attempts, written off the request path in batches.

The download app hands each attempt to :func:`submit` (a deque append, no I/O); :class:`AuditWriter`, a
``hub.workers.Worker``, writes them every ``batch_rows`` rows or ``flush_interval`` seconds, whichever comes
first, in one transaction with the download counts and the bus events. The embedded default starts it from the
lifespan; a production web process starts it on its first attempt and flushes what is left at exit.

That queue dies with the process, so an attempt that is *served* (200/206) is first appended to the
:class:`AuditJournal`, a file under ``DOWNLOADS_AUDIT_JOURNAL``, before its response starts. The writer replays
what a killed process left there when it starts, skipping attempts already in the database (each has a unique
``attempt_id``), so every served download is audited exactly once whatever moment the kill came.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

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
    # Set when the attempt is journaled: 32 hex digits, unique in the audit table (how a replay knows it is done).
    attempt_id: str = ""
    # The journal file holding this attempt until the database has it (not written anywhere).
    journal_segment: Any = None

    @property
    def served(self) -> bool:
        return self.status in (200, 206)


#: What a journal line holds: every field of an attempt but the journal's own bookkeeping.
_JOURNALED = tuple(field.name for field in dataclasses.fields(Attempt) if field.name != "journal_segment")
_SUFFIX = ".journal"


class _Segment:
    """One journal file, written by this process and locked by it (``flock``) for as long as it is open."""

    __slots__ = ("fd", "outstanding", "path", "size")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)  # tells a later replay that a live process still owns it
        self.size = 0
        self.outstanding = 0  # lines not yet in the database

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class AuditJournal:
    """Append-only files in ``directory``, one JSON line per served attempt, written before its bytes go out.

    One ``write(2)`` on an ``O_APPEND`` descriptor a line, and no ``fsync``: the line is in the kernel's page cache
    when the call returns, which a killed process cannot take back (a power cut can; docs/security.md says what
    that loses). Once the database has every line of a file, the file is emptied (or, if it grew past
    ``segment_bytes`` meanwhile, a new one is begun and the old one deleted). Each process writes files of its own
    and holds an exclusive ``flock`` on them; a file nobody holds belonged to a process that died, and
    :meth:`orphans` hands it to the replay.
    """

    def __init__(self, directory: str | os.PathLike, *, segment_bytes: int = 4 * 1024 * 1024) -> None:
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._active: _Segment | None = None
        self._sealed: list[_Segment] = []
        self._serial = 0

    def append(self, attempt: Attempt) -> None:
        """Journal ``attempt`` (giving it its ``attempt_id``); raises ``OSError`` if it cannot be written."""
        attempt.attempt_id = secrets.token_hex(16)
        record = {name: getattr(attempt, name) for name in _JOURNALED}
        record["at"] = attempt.at.isoformat()
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        with self._lock:
            segment = self._active or self._open_segment()
            written = os.write(segment.fd, line)
            if written != len(line):  # a full disk: never leave half a line for the replay to misread
                os.ftruncate(segment.fd, segment.size)
                raise OSError(f"audit journal {segment.path}: only {written} of {len(line)} bytes written")
            segment.size += written
            segment.outstanding += 1
            attempt.journal_segment = segment

    def committed(self, attempts: Iterable[Attempt]) -> None:
        """The database has ``attempts``: their lines may go."""
        with self._lock:
            for attempt in attempts:
                segment = attempt.journal_segment
                if segment is not None:
                    segment.outstanding -= 1
                    attempt.journal_segment = None
            for segment in [s for s in self._sealed if s.outstanding <= 0]:
                self._sealed.remove(segment)
                with contextlib.suppress(OSError):
                    segment.path.unlink()
                segment.close()
            active = self._active
            if active is not None and active.size:
                if active.outstanding <= 0:
                    os.ftruncate(active.fd, 0)  # O_APPEND: the next line goes to the new end, offset 0
                    active.size = 0
                elif active.size >= self.segment_bytes:
                    # Downloads keep coming and some line is always waiting: start afresh, delete this one later.
                    self._sealed.append(active)
                    self._active = None

    def owned(self) -> set[Path]:
        with self._lock:
            return {segment.path for segment in (*self._sealed, *([self._active] if self._active else []))}

    def orphans(self) -> list[tuple[Path, int]]:
        """Journal files no live process holds, each now locked by the caller: ``(path, descriptor)``."""
        if not self.directory.is_dir():
            return []
        owned = self.owned()
        found = []
        for path in sorted(self.directory.glob(f"*{_SUFFIX}")):
            if path in owned:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue  # another process replayed and deleted it meanwhile
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)  # its process is alive
                continue
            found.append((path, fd))
        return found

    def close(self) -> None:
        with self._lock:
            for segment in (*self._sealed, *([self._active] if self._active else [])):
                segment.close()
            self._sealed, self._active = [], None

    def _open_segment(self) -> _Segment:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._serial += 1
        name = f"{os.getpid()}-{time.time_ns()}-{self._serial}{_SUFFIX}"
        self._active = _Segment(self.directory / name)
        return self._active


def journal_read(fd: int) -> list[Attempt]:
    """The attempts in a journal file; a torn last line (the kill came mid-write, before any byte went out) and
    anything else unreadable is skipped with a log line."""
    with os.fdopen(os.dup(fd), "rb") as handle:
        data = handle.read()
    attempts = []
    for number, line in enumerate(data.splitlines(), 1):
        try:
            record = json.loads(line)
            record["at"] = datetime.fromisoformat(record["at"])
            attempts.append(Attempt(**{name: record[name] for name in _JOURNALED}))
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("download audit journal: line %d unreadable, skipped (%s)", number, exc)
    return attempts


class AuditWriter(Worker):
    name = "downloads-audit"

    def __init__(
        self,
        *,
        batch_rows: int = 500,
        flush_interval: float = 0.25,
        max_pending: int = 200_000,
        journal: AuditJournal | None = None,
    ) -> None:
        super().__init__()
        self.batch_rows = batch_rows
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.journal = journal
        self.replayed = 0
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
            self.replay()
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

    def replay(self) -> int:
        """Write what killed processes left in the journal (each attempt once: those already in the database are
        skipped), then delete their files; returns how many attempts were written."""
        from downloads.services import attempts_record

        if self.journal is None:
            return 0
        replayed = 0
        for path, fd in self.journal.orphans():
            try:
                attempts = journal_read(fd)
                for start in range(0, len(attempts), self.batch_rows):
                    batch = attempts[start : start + self.batch_rows]
                    replayed += attempts_record(attempts=batch, skip_recorded=True)
                path.unlink()
            except Exception:
                # Kept for the next start; the downloads go on meanwhile.
                close_old_connections()
                logger.exception("download audit: replaying the journal %s failed; kept for the next start", path)
            finally:
                os.close(fd)
        if replayed:
            logger.warning("download audit: %d attempt(s) a stopped process had not written were replayed", replayed)
        self.replayed += replayed
        return replayed

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
            if self.journal is not None:
                self.journal.committed(batch)
            written += len(batch)
        return written


writer = AuditWriter()
_atexit_registered = False


def journal_for_settings():
    """The journal's append for ``DOWNLOADS_AUDIT_JOURNAL`` (attached to the process's writer, which replays and
    empties it), or None when the setting is empty."""
    from django.conf import settings

    directory = settings.DOWNLOADS_AUDIT_JOURNAL
    if not directory:
        return None
    if writer.journal is None or writer.journal.directory != Path(directory):
        writer.journal = AuditJournal(directory)
    return writer.journal.append


def writer_for_embedded() -> AuditWriter:
    journal_for_settings()  # so the lifespan's start replays what a killed process left, before any download
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
