"""The reader of nginx's edge access log: every download nginx served by itself becomes its audit row, its share of
the link's download count and its ``downloads.served`` / ``downloads.refused`` event, exactly once.

The log is the journal. The reader follows ``DOWNLOADS_EDGE_LOG``, takes the lines nginx has finished (a last line
without its newline is waited for), and commits each batch (up to ``batch_lines`` lines or ``batch_seconds``) with
the file's inode and the offset after the batch (``AccessLogPosition``) in ONE transaction. A reader killed at any
moment starts again from the last committed offset; a line it reads a second time is skipped by its ``attempt_id``
(nginx's ``$request_id``). A database outage stops the reading, never skips lines: the same batch is retried with
the worker's back-off. Rotation (docs/downloads.md "Edge audit"):

* by rename (logrotate's default): once the path names a new inode, the old file is read to its end through the
  descriptor still open, and kept until no line has come for ``rotation_grace`` (an nginx worker may write to it
  until it reopens its log), then the new file is read from 0. A reader that was stopped in between finds the old
  file by its inode in the same folder;
* by ``copytruncate``: the file shrinks under the offset, and reading restarts at 0.

A line that is not an ``edge_downloads`` record is counted (``lines_unparseable``, shown degraded by /healthz) and
logged, and the reading goes on. ``python manage.py read_edge_log`` runs it in production.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections

from downloads import audit, edge_log
from hub.workers import DEFAULT_JITTER, Backoff, Heartbeat, Jitter, Worker

logger = logging.getLogger(__name__)

READER_NAME = "downloads-edge-log"
# How many bytes before the offset tell the file read so far from one written again after a truncation.
_TAIL_BYTES = 64


@dataclass(frozen=True)
class ReaderTimings:
    #: A batch is committed at this many lines, or ``batch_seconds`` after its first line, whichever comes first.
    batch_lines: int = 5000
    batch_seconds: float = 0.2
    #: How often a reader that has caught up looks for new lines.
    poll_interval: float = 0.2
    #: How long a rotated file must stay without new lines before the reader leaves it for the new one.
    rotation_grace: float = 1.0
    #: Bytes asked of the file per read.
    read_bytes: int = 1024 * 1024
    #: A "line" this long without its newline is not one of nginx's: counted unparseable and skipped.
    max_line_bytes: int = 1024 * 1024
    #: Back-off after a failed commit (the database is down or restarting).
    retry_initial: float = 0.5
    retry_max: float = 30.0
    retry_jitter: Jitter = DEFAULT_JITTER
    #: How often the reader records its heartbeat for /healthz.
    heartbeat_interval: float = 15.0


@dataclass
class _Batch:
    """Lines taken from the open file, not yet committed."""

    attempts: list
    lines: int = 0
    unparseable: int = 0
    end: int = 0  # the file offset after the batch's last complete line (or skipped bytes)
    started: float = 0.0
    skipping: bool = False  # inside a too-long line at ``end``: drop bytes up to its newline


class EdgeLogReader(Worker):
    name = READER_NAME

    def __init__(
        self, path: str | os.PathLike | None = None, *, prefix: str | None = None, timings: ReaderTimings | None = None
    ) -> None:
        super().__init__()
        self.path = Path(path if path is not None else settings.DOWNLOADS_EDGE_LOG)
        self.prefix = prefix if prefix is not None else settings.DOWNLOADS_PREFIX
        self.timings = timings or ReaderTimings()
        self._backoff = Backoff.from_timings(self.timings)
        self._fd: int | None = None
        self.inode = 0
        self.offset = 0  # committed: where the next batch starts in the open file
        self.lines_read = 0
        self.lines_unparseable = 0
        self.stored = 0  # attempts stored by this process (lines read again are not)
        self.failures = 0
        self.last_error = ""
        self._loaded = False
        self._skipping = False  # at ``offset``, inside a too-long line (see _Batch.skipping)
        self._rotated_since: float | None = None  # the path names another file; when this one last gave a line
        self._tail = b""  # the bytes just before ``offset`` (see _rewritten)
        self._heartbeat = Heartbeat(READER_NAME)

    # -- the loop

    def serve(self) -> None:
        try:
            while not self.stopping.is_set():
                delay = self.step()
                if delay > 0:
                    self.stopping.wait(delay)
        finally:
            self._close()
            self._beat(force=True)

    def step(self) -> float:
        """Commit one batch if there is one; returns how long to wait before the next step (0: go on at once)."""
        try:
            if not self._loaded:
                self._load_position()
            if self._fd is None and not self._open_current():
                self._beat()
                return self.timings.poll_interval
            if self._rewritten():
                # Truncated and written again past the offset before the reader looked (copytruncate on a busy
                # log): what follows the offset is not what was read up to it. Read it all again; the lines
                # already stored are known by their ids.
                logger.warning("edge log: %s changed under the reader (copytruncate?): reading it from 0", self.path)
                self.offset, self._skipping, self._tail = 0, False, b""
                self._commit(_Batch(attempts=[], end=0))
                self._recovered()
                return 0
            batch = self._read_batch()
            if batch.end == self.offset and not batch.lines:
                # Nothing new here: has the path moved on to another file, or was this one truncated?
                if not self._follow_rotation():
                    self._recovered()
                    self._beat()
                    return self.timings.poll_interval
                batch = _Batch(attempts=[], end=self.offset)  # the switch itself is committed at once
            self._commit(batch)
        except Exception as exc:
            return self._failed(exc)
        self._recovered()
        self._beat()
        return 0  # something was committed: there may be more at once

    def run_until_caught_up(self, *, timeout: float = 30.0) -> None:
        """Step until every finished line of the path's file is committed (tests, the benchmark)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.step()
            if self.caught_up():
                return
        raise TimeoutError(f"the edge log reader did not catch up with {self.path} within {timeout} s")

    def caught_up(self) -> bool:
        """Reading the path's current file, and nothing but an unfinished line after the committed offset."""
        if self._fd is None or self.failures or self._rotated_since is not None:
            return False
        try:
            if os.stat(self.path).st_ino != self.inode:
                return False
        except FileNotFoundError:
            return False
        rest = os.pread(self._fd, self.timings.max_line_bytes, self.offset)
        return b"\n" not in rest

    # -- positions and files

    def _load_position(self) -> None:
        from downloads.selectors import edge_log_position

        position = edge_log_position(path=str(self.path))
        if position is not None:
            self.inode, self.offset = position.inode, position.offset
            self.lines_read, self.lines_unparseable = position.lines_read, position.lines_unparseable
        self._loaded = True

    def _open_current(self) -> bool:
        """Open the file the stored position names (the path, or the rotated file holding that inode in the same
        folder), else the path from 0; False when there is no file yet."""
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            status = None
        if self.inode and (status is None or status.st_ino != self.inode):
            rotated = self._find_inode(self.inode)
            if rotated is not None:
                self._open(rotated, self.inode, self.offset)
                logger.info("edge log: finishing the rotated file %s from offset %d", rotated, self.offset)
                return True
            if status is not None:
                logger.warning(
                    "edge log: the file read so far (inode %d, offset %d) is gone; reading %s from its start",
                    self.inode,
                    self.offset,
                    self.path,
                )
        if status is None:
            return False
        offset = self.offset if status.st_ino == self.inode else 0
        self._open(self.path, status.st_ino, offset)
        return True

    def _find_inode(self, inode: int) -> Path | None:
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.path.parent):
                with contextlib.suppress(OSError):
                    if entry.inode() == inode and entry.is_file(follow_symlinks=False):
                        return Path(entry.path)
        return None

    def _open(self, path: Path, inode: int, offset: int) -> None:
        fd = os.open(path, os.O_RDONLY)
        status = os.fstat(fd)
        if status.st_ino != inode:  # rotated between the stat and the open: take what is there now, from 0
            inode, offset = status.st_ino, 0
        if status.st_size < offset:
            logger.warning("edge log: %s is shorter than the stored offset (truncated): reading from 0", path)
            offset = 0
        elif offset and os.pread(fd, 1, offset - 1) != b"\n":
            # A committed offset always follows a newline: this is another content (truncated and written again).
            logger.warning("edge log: %s does not match the stored offset (rewritten): reading from 0", path)
            offset = 0
        self._close()
        self._fd, self.inode, self.offset = fd, inode, offset
        self._skipping, self._rotated_since = False, None
        self._tail = self._tail_at(offset) if offset else b""

    def _close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def _size(self) -> int:
        return os.fstat(self._fd).st_size

    def _follow_rotation(self) -> bool:
        """At the end of the open file: move to the file the path names now when it is another one (after the
        grace) or when this one was truncated. True when the reader switched (the new position is committed)."""
        size = self._size()
        if size < self.offset:
            logger.warning("edge log: %s was truncated (copytruncate?): reading it again from 0", self.path)
            self.offset, self._skipping = 0, False
            return True
        try:
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            current = None
        if current is None or current == self.inode:
            self._rotated_since = None
            return False
        now = time.monotonic()
        if self._rotated_since is None:
            self._rotated_since = now
        if now - self._rotated_since < self.timings.rotation_grace:
            return False
        if size > self.offset:
            # The old file ends with a line nginx never finished: it will not be, count it and move on.
            self.lines_unparseable += 1
            logger.warning("edge log: the rotated file (inode %d) ends with an unfinished line", self.inode)
        self._open(self.path, current, 0)
        return True

    # -- batches

    def _read_batch(self) -> _Batch:
        timings = self.timings
        batch = _Batch(attempts=[], end=self.offset, started=time.monotonic(), skipping=self._skipping)
        while batch.lines < timings.batch_lines:
            before = batch.end
            chunk = os.pread(self._fd, timings.read_bytes, before)
            if chunk and b"\n" not in chunk and len(chunk) == timings.read_bytes < timings.max_line_bytes:
                chunk = os.pread(self._fd, timings.max_line_bytes, before)  # one long line: read all of it
            if chunk:
                self._take(batch, chunk)
            waited = time.monotonic() - batch.started
            if batch.end == before:
                # Only an unfinished line (or nothing) after what was taken.
                if not batch.lines or waited >= timings.batch_seconds:
                    break
                # Lines are coming: wait a little for more, so a busy log makes few, large commits.
                if self.stopping.wait(min(0.02, timings.batch_seconds)):
                    break
            elif waited >= timings.batch_seconds:
                break
        if batch.lines:
            self._rotated_since = None
        return batch

    def _take(self, batch: _Batch, chunk: bytes) -> None:
        """Parse the finished lines at the start of ``chunk`` (read at ``batch.end``) into the batch."""
        lines, used = edge_log.complete_lines(chunk)
        if batch.skipping:
            if not used:
                batch.end += len(chunk)
                return
            # The rest of the long line, up to its newline, goes with it.
            skipped = len(lines[0]) + 1
            lines, batch.end, used, batch.skipping = lines[1:], batch.end + skipped, used - skipped, False
        if not used:
            if len(chunk) >= self.timings.max_line_bytes:
                # Not a line nginx would write: count it once, drop its bytes up to its newline.
                batch.unparseable += 1
                batch.end += len(chunk)
                batch.skipping = True
                logger.warning("edge log: a line of more than %d bytes, skipped", self.timings.max_line_bytes)
            return
        room = self.timings.batch_lines - batch.lines
        if len(lines) > room:
            lines = lines[:room]
            used = sum(len(line) + 1 for line in lines)
        for line in lines:
            self._parse_into(batch, line)
        batch.end += used

    def _parse_into(self, batch: _Batch, line: bytes) -> None:
        batch.lines += 1
        if not line.strip():
            return
        try:
            parsed = edge_log.parse_line(line, prefix=self.prefix)
        except Exception as exc:  # a parser bug must not stop the audit: the line is counted, the rest read
            parsed = edge_log.Unparseable(f"{type(exc).__name__}: {exc}", line[:200].decode("utf-8", "replace"))
        if isinstance(parsed, edge_log.Unparseable):
            batch.unparseable += 1
            total = self.lines_unparseable + batch.unparseable
            if total <= 20 or total % 1000 == 0:
                logger.warning("edge log: unparseable line (%d so far): %s: %r", total, parsed.reason, parsed.sample)
            return
        batch.attempts.append(
            audit.Attempt(
                at=parsed.at,
                method=parsed.method,
                status=parsed.status,
                outcome=parsed.outcome,
                customer=parsed.customer,
                path=parsed.path,
                ip=parsed.ip,
                user_agent=parsed.user_agent,
                range=parsed.range,
                bytes_sent=parsed.bytes_sent,
                accel=True,
                link_id=parsed.link_id,
                count_pending=parsed.count_pending,
                attempt_id=parsed.attempt_id,
            )
        )

    def _commit(self, batch: _Batch) -> None:
        from downloads.services import edge_batch_record

        lines_read = self.lines_read + batch.lines
        unparseable = self.lines_unparseable + batch.unparseable
        self.stored += edge_batch_record(
            attempts=batch.attempts,
            position={
                "path": str(self.path),
                "inode": self.inode,
                "offset": batch.end,
                "lines_read": lines_read,
                "lines_unparseable": unparseable,
            },
        )
        self.offset, self.lines_read, self.lines_unparseable = batch.end, lines_read, unparseable
        self._skipping = batch.skipping
        if batch.end:
            self._tail = self._tail_at(batch.end)

    def _tail_at(self, offset: int) -> bytes:
        """The bytes just before ``offset``: while the file is the one read, they stay the same."""
        start = max(0, offset - _TAIL_BYTES)
        return os.pread(self._fd, offset - start, start)

    def _rewritten(self) -> bool:
        """Whether the bytes before the offset are no longer those that were read (or, right after a start, no
        longer end a line): the file was truncated and written again."""
        if not self.offset or self._skipping:
            return False
        return self._tail_at(self.offset) != self._tail

    # -- failures and health

    def _failed(self, exc: Exception) -> float:
        # Nothing moves on: the same lines are read and committed again once the database answers.
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:500]
        close_old_connections()
        if not isinstance(exc, DatabaseError | OSError):
            logger.exception("edge log: unexpected failure (attempt %d), retrying", self.failures)
        else:
            (logger.warning if self.failures == 1 else logger.debug)(
                "edge log: reading or storing a batch failed (attempt %d), retrying: %s", self.failures, self.last_error
            )
        if self.failures == 1:
            self._heartbeat.soon()
        self._beat()
        return self._backoff.next_delay()

    def _recovered(self) -> None:
        if self.failures:
            logger.info("edge log: the database answers again after %d failed attempt(s)", self.failures)
            self._heartbeat.soon()
        self.failures, self.last_error = 0, ""
        self._backoff.reset()

    def _beat(self, *, force: bool = False) -> None:
        self._heartbeat.beat(interval=self.timings.heartbeat_interval, details=self.health_details, force=force)

    def health_details(self) -> dict[str, Any]:
        backlog = None
        if self._fd is not None:
            with contextlib.suppress(OSError):
                backlog = max(0, self._size() - self.offset)
        return {
            "path": str(self.path),
            "inode": self.inode,
            "offset": self.offset,
            "backlog_bytes": backlog,
            "lines_read": self.lines_read,
            "lines_unparseable": self.lines_unparseable,
            "stored": self.stored,
            "failures": self.failures,
            "last_error": self.last_error,
        }


def health_check():
    """/healthz (registered when DOWNLOADS_EDGE_LOG is set): degraded while the reader is not running, cannot
    write to the database, or has met lines it could not read (until `read_edge_log --reset-unparseable`)."""
    from downloads.selectors import edge_log_position
    from hub.health import CheckResult, heartbeat_check
    from hub.selectors import heartbeat_get

    path = settings.DOWNLOADS_EDGE_LOG
    position = edge_log_position(path=path)
    unparseable = position.lines_unparseable if position is not None else 0
    if unparseable:
        return CheckResult(
            False,
            f"{unparseable} unparseable line(s) in {path} (the reader's log names them; "
            "`manage.py read_edge_log --reset-unparseable` clears the count)",
        )
    beat = heartbeat_check(READER_NAME)
    if not beat.ok:
        return CheckResult(False, f"reader not running: {beat.detail}")
    heartbeat = heartbeat_get(READER_NAME)
    details = (heartbeat.details if heartbeat else None) or {}
    if details.get("failures"):
        return CheckResult(False, f"cannot store the log's lines, retrying: {details.get('last_error')}")
    read = position.lines_read if position is not None else 0
    return CheckResult(True, f"{read} lines read; {details.get('backlog_bytes') or 0} bytes waiting; {beat.detail}")
