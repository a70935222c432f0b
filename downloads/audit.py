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
import mmap
import os
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from json.encoder import encode_basestring_ascii
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
# Each file starts with the field names; each line after it is a JSON array of one attempt's values in that
# order. A replay maps values by that header, so a hub upgraded between the kill and the restart reads old files.
_HEADER = json.dumps({"fields": _JOURNALED}).encode() + b"\n"
# JSON text for each value type an attempt holds, without json.dumps (more than twice as slow, and a quarter of
# the journal's cost per download: docs/benchmarks.md).
_JSON_TEXT = {
    str: encode_basestring_ascii,
    int: str,
    bool: lambda value: "true" if value else "false",
    type(None): lambda value: "null",
    datetime: lambda value: encode_basestring_ascii(value.isoformat()),
}


def _json_text(value: Any) -> str:
    encode = _JSON_TEXT.get(type(value))
    return encode(value) if encode is not None else json.dumps(value, default=str)


class _Segment:
    """One journal file, mapped into memory, written by this process and locked by it (``flock``) while open.

    Lines are copied into a shared mapping of the file: that is the kernel's page cache itself, so a line is kept
    once the copy is done, whatever happens to the process. A ``write(2)`` would do the same but lets go of the GIL,
    and under load every such let-go hands the event loop's turn to a busy thread for up to 5 ms (a measurable share of
    the embedded default's download rate: docs/benchmarks.md). The file's blocks are reserved when it is
    made, so a full disk is an ``OSError`` then, never a crash (SIGBUS) on a later copy.
    """

    __slots__ = ("capacity", "fd", "map", "outstanding", "path", "size")

    def __init__(self, path: Path, capacity: int) -> None:
        self.path = path
        self.capacity = capacity
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)  # tells a later replay that a live process still owns it
            os.posix_fallocate(self.fd, 0, capacity)
            self.map = mmap.mmap(self.fd, capacity)
        except BaseException:
            os.close(self.fd)
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        self.map[: len(_HEADER)] = _HEADER
        self.size = len(_HEADER)
        self.outstanding = 0  # lines not yet in the database

    def add(self, line: bytes) -> None:
        end = self.size + len(line)
        self.map[self.size : end] = line
        self.size = end
        self.outstanding += 1

    def empty(self) -> None:
        """Zero what follows the header (a reader stops at the first NUL), so no old line is read twice."""
        self.map[len(_HEADER) : self.size] = bytes(self.size - len(_HEADER))
        self.size = len(_HEADER)

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.map.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)


class _AttemptIds:
    """Unique attempt ids (32 hex digits of random bits) from one read of the random source per 256 ids: a
    read per download was a system call that let go of the GIL on the request path, and a busy audit writer took it
    each time. Not secret (they only make each journal line unique in the audit table), so a pool is fine; a forked
    child starts a pool of its own, so no two processes hand out the same ids."""

    _BATCH = 256

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._pool: list[str] = []
        self._lock = threading.Lock()  # a fork may come while another thread holds the old one

    def next(self) -> str:
        with self._lock:
            if not self._pool:
                text = os.urandom(16 * self._BATCH).hex()
                self._pool = [text[start : start + 32] for start in range(0, len(text), 32)]
            return self._pool.pop()


_attempt_ids = _AttemptIds()


class AuditJournal:
    """Append-only files in ``directory``, one JSON line per served attempt, written before its bytes go out.

    Each line is copied into a shared memory mapping of a ``segment_bytes`` file (see :class:`_Segment`), with no
    ``fsync``: it is in the kernel's page cache once copied, which a killed process cannot take back (a power cut
    can; docs/security.md says what that loses). Once the database has every line of the file, the lines are
    zeroed; a file that fills up while some line is still waiting is left for a new one and deleted once they are
    all written. Each process writes files of its own and holds an exclusive ``flock`` on them; a file nobody
    holds belonged to a process that died, and :meth:`orphans` hands it to the replay.
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
        attempt.attempt_id = _attempt_ids.next()
        line = ("[" + ",".join([_json_text(getattr(attempt, name)) for name in _JOURNALED]) + "]\n").encode()
        with self._lock:
            segment = self._active
            if segment is None or segment.size + len(line) > segment.capacity:
                if segment is not None:
                    self._sealed.append(segment)  # full: deleted once the database has all its lines
                segment = self._open_segment(max(self.segment_bytes, len(_HEADER) + len(line)))
            segment.add(line)
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
            if active is not None and active.outstanding <= 0 and active.size > len(_HEADER):
                active.empty()

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

    def _open_segment(self, capacity: int) -> _Segment:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._serial += 1
        name = f"{os.getpid()}-{time.time_ns()}-{self._serial}{_SUFFIX}"
        self._active = _Segment(self.directory / name, capacity)
        return self._active


def journal_read(fd: int) -> list[Attempt]:
    """The attempts in a journal file; a torn last line (the kill came mid-write, before any byte went out) and
    anything else unreadable is skipped with a log line."""
    with os.fdopen(os.dup(fd), "rb") as handle:
        lines = handle.read().split(b"\0", 1)[0].splitlines()
    try:
        fields = json.loads(lines[0])["fields"]
    except (IndexError, ValueError, KeyError, TypeError):
        if lines:
            logger.warning("download audit journal: no header line, %d line(s) skipped", len(lines))
        return []
    known = set(_JOURNALED)
    attempts = []
    for number, line in enumerate(lines[1:], 2):
        try:
            record = {name: value for name, value in zip(fields, json.loads(line), strict=True) if name in known}
            record["at"] = datetime.fromisoformat(record["at"])
            attempts.append(Attempt(**record))
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
