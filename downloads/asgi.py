"""The download path: a lean ASGI app dispatched in ``hub/asgi.py`` before Django, whose request cycle costs far
more than verifying a link (docs/decisions/0001-asgi-server.md#consequences).

It verifies the link, looks up its record and the file in one trip to a thread, and streams the bytes itself
(with Range) or hands them to nginx by ``X-Accel-Redirect``; every attempt goes to the batched audit
(``downloads.audit``). The answers: docs/downloads-links.md#answers; the whole path:
docs/downloads.md#why-it-is-fast-the-download-path-before-django.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import mimetypes
import os
import secrets
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from urllib.parse import quote

from django.db import close_old_connections
from django.db.utils import DatabaseError

from downloads import audit
from downloads.http_range import UNSATISFIABLE, multipart_parts, nginx_range_bytes, parse_ranges
from downloads.selectors import link_records
from downloads.signing import (
    InvalidLink,
    KeyRing,
    LegacyConfig,
    UnsafePath,
    VerifiedLink,
    check_relative_path,
    split_link,
    stat_under_real_root,
    verify_link,
)

logger = logging.getLogger(__name__)

# The one answer to anything not authentic: it must not say which check failed.
NOT_AUTHENTIC_BODY = b"Not found\n"
_TEXT = [(b"content-type", b"text/plain; charset=utf-8"), (b"cache-control", b"no-store")]
_MAX_HEADER_VALUE = 8192
# Under X-Accel-Redirect nginx sends the file and writes these itself (from the file and the client's Range).
_NGINX_SETS = frozenset((b"content-length", b"content-range", b"accept-ranges", b"etag", b"last-modified"))


@dataclass(frozen=True)
class DownloadConfig:
    root: str
    prefix: str = "/dl/"
    host: str = ""
    keys: KeyRing | None = None
    legacy: LegacyConfig | None = None
    accel_location: str = ""
    chunk_size: int = 256 * 1024
    # Files up to this size are read in the same thread trip as the lookup (one hop instead of two).
    inline_size: int = 64 * 1024
    # How long after its last request a capped download may be continued by a Range that skips byte 0.
    resume_window: timedelta = timedelta(hours=1)


def config_from_settings() -> DownloadConfig:
    from django.conf import settings

    from downloads.keys import key_ring
    from downloads.services import legacy_config

    return DownloadConfig(
        root=os.path.realpath(settings.DOWNLOADS_ROOT),
        prefix=settings.DOWNLOADS_PREFIX,
        host=settings.DOWNLOADS_HOST.lower(),
        keys=key_ring(),
        legacy=legacy_config(),
        accel_location=settings.DOWNLOADS_ACCEL_LOCATION.rstrip("/"),
        resume_window=timedelta(seconds=settings.DOWNLOADS_RESUME_WINDOW),
    )


_UNKNOWN = object()


@dataclass(slots=True)
class _Plan:
    """What to answer for an authentic, unexpired link, decided in the worker thread."""

    status: int
    outcome: str
    body: bytes = b""
    link_id: int | None = None
    count_pending: bool = False
    file: str = ""
    size: int = 0
    first: int = 0
    length: int = 0
    headers: list = field(default_factory=list)
    relative: str = ""  # the real file's path under the root (what X-Accel-Redirect names)
    # Several ranges: the multipart/byteranges body as literal bytes and (offset, length) slices of the file.
    parts: list = field(default_factory=list)
    ranges: str = ""  # what the audit's range column says for several ranges
    file_bytes: int = 0  # of the file's bytes, how many the answer carries (without multipart framing)


@functools.lru_cache(maxsize=4096)
def _content_type(path: str) -> bytes:
    # mimetypes walks its tables for every call; a busy link asks for the same name again and again.
    return (mimetypes.guess_type(path)[0] or "application/octet-stream").encode("latin-1")


def content_disposition(path: str) -> bytes:
    """``attachment`` with the file's own name: an ASCII fallback and RFC 5987 ``filename*`` for the rest."""
    name = path.rsplit("/", 1)[-1]
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;' else "_" for ch in name)
    value = f'attachment; filename="{fallback}"'
    if fallback != name:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value.encode("ascii")


class DownloadApp:
    def __init__(
        self,
        config: DownloadConfig,
        *,
        submit: Callable[[audit.Attempt], None] = audit.submit,
        journal: Callable[[audit.Attempt], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.config = config
        self.submit = submit
        # Appends a served attempt to the audit journal; the writer ``submit`` feeds must be the one that
        # empties and replays it (downloads_router pairs the process's own).
        self.journal = journal
        self.clock = clock
        self._executor = executor
        self._host = config.host.encode("latin-1")

    @property
    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="downloads")
        return self._executor

    def handles(self, scope) -> bool:
        """Every path under the prefix, and every path on the dedicated downloads host."""
        if scope["type"] != "http":
            return False
        if scope["path"].startswith(self.config.prefix):
            return True
        if self._host:
            for name, value in scope["headers"]:
                if name == b"host":
                    return value.split(b":", 1)[0].lower() == self._host
        return False

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await _answer_lifespan(receive, send)  # served on its own (tests, a dedicated downloads process)
            return
        if scope["type"] != "http":
            return
        attempt = audit.Attempt(at=self.clock(), method=scope.get("method", "")[:8], status=0, outcome="")
        try:
            await self._answer(scope, receive, send, attempt)
        except Exception:
            logger.exception("download failed")
            if attempt.status == 0:
                attempt.status, attempt.outcome = 503, "error"
                await _text(send, 503, b"Service unavailable, try again later\n", attempt.method)
        finally:
            try:
                self.submit(attempt)
            except Exception:
                logger.exception("download audit: could not queue the attempt")

    async def _answer(self, scope, receive, send, attempt: audit.Attempt) -> None:
        headers = _headers(scope)
        attempt.ip = self._client_ip(scope, headers)
        attempt.user_agent = headers.get(b"user-agent", b"")[:512].decode("latin-1")
        method = attempt.method
        path = scope["path"]
        rest = path[len(self.config.prefix) :] if path.startswith(self.config.prefix) else path.lstrip("/")
        parts = split_link(rest) if len(rest) <= 4096 else None
        if parts is not None:
            attempt.customer, attempt.path = parts.customer[:200], parts.path[:1088]
        if method not in ("GET", "HEAD"):
            attempt.status, attempt.outcome = 405, "method"
            await _text(send, 405, b"Method not allowed\n", method, [(b"allow", b"GET, HEAD")])
            return
        if parts is None:
            attempt.status, attempt.outcome, attempt.path = 403, "forbidden", rest[:1088]
            await _text(send, 403, b"Forbidden\n", method)
            return
        try:
            link = verify_link(parts, keys=self.config.keys, legacy=self.config.legacy)
        except InvalidLink:
            attempt.status, attempt.outcome = 404, "invalid"
            await _text(send, 404, NOT_AUTHENTIC_BODY, method)
            return
        if link.is_expired(attempt.at):
            attempt.status, attempt.outcome = 410, "expired"
            await _text(send, 410, b"Link expired\n", method)
            return
        range_header = headers.get(b"range", b"").decode("latin-1") or None
        if_range = headers.get(b"if-range", b"").decode("latin-1") or None
        loop = asyncio.get_running_loop()
        known, record = link_records.peek(link)
        client = (attempt.ip, attempt.user_agent)
        if known and (record is None or not record.capped):
            # The record is fresh in memory and no count must be claimed: no database work is left, only the
            # file's metadata (and a small file's bytes), from the page cache in microseconds. A thread trip
            # would cost more than it saves here; bigger files are still read on threads.
            plan = self._plan(link, method, range_header, if_range, attempt.at, client, record=record)
        else:
            plan = await loop.run_in_executor(
                self.executor, self._plan, link, method, range_header, if_range, attempt.at, client
            )
        attempt.status, attempt.outcome, attempt.link_id = plan.status, plan.outcome, plan.link_id
        attempt.count_pending = plan.count_pending
        if plan.status not in (200, 206):
            await _text(send, plan.status, plan.body, method, plan.headers)
            return
        if plan.ranges:
            attempt.range = plan.ranges
        elif plan.first or plan.length != plan.size:
            attempt.range = f"{plan.first}-{plan.first + plan.length - 1}/{plan.size}"
        if self.journal is not None:
            # On disk before any byte goes out: a kill from here on cannot lose this download's audit. The line
            # says the whole answer went out, which is what a replay records if the kill comes mid-body.
            attempt.bytes_sent = plan.file_bytes if method == "GET" else 0
            try:
                self.journal(attempt)
            except OSError:
                logger.exception("download audit journal not writable: refusing to serve without an audit")
                attempt.status, attempt.outcome, attempt.bytes_sent = 503, "error", 0
                await _text(send, 503, b"Service unavailable, try again later\n", method)
                return
            attempt.bytes_sent = 0
        if self.config.accel_location:
            # nginx sends the bytes and does Range itself; the audit records what it was asked to hand out.
            attempt.accel, attempt.bytes_sent = True, plan.file_bytes if method == "GET" else 0
            target = f"{self.config.accel_location}/{quote(plan.relative, safe='/')}"
            response_headers = [
                (b"x-accel-redirect", target.encode("ascii")),
                # An empty body nginx can see the end of: it keeps the upstream connection alive (it closes it
                # after a chunked one, which halved the rate here).
                (b"content-length", b"0"),
                *(header for header in plan.headers if header[0] not in _NGINX_SETS),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": response_headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": plan.status, "headers": plan.headers})
        if method == "HEAD" or plan.length == 0:
            await send({"type": "http.response.body", "body": b""})
        elif plan.body or plan.length <= self.config.inline_size:
            await send({"type": "http.response.body", "body": plan.body})
            attempt.bytes_sent = plan.file_bytes
        else:
            attempt.bytes_sent = await self._stream(receive, send, plan)

    def _plan(
        self, link: VerifiedLink, method: str, range_header, if_range, now: datetime, client, record=_UNKNOWN
    ) -> _Plan:
        """The link's record, the file, the Range and the download count (in a worker thread unless the record
        is already known and nothing needs the database). ``client`` is (address, User-Agent)."""
        from downloads.services import link_download_resume, link_download_start

        if record is _UNKNOWN:
            try:
                # Before the database: no record can name such a path, and PostgreSQL refuses a NUL in a query.
                check_relative_path(link.path)
            except UnsafePath:
                return _Plan(404, "missing", b"File not found\n")
            try:
                record = link_records.record_for(link)
            except DatabaseError:
                close_old_connections()  # a dropped connection is replaced on the next try
                record = link_records.record_for(link)
        if record is None and link.format == "hub":
            # Every hub link is recorded when issued: no record means an admin deleted it.
            return _Plan(410, "revoked", b"Link revoked\n")
        link_id = record.id if record else None
        if record is not None and record.revoked:
            return _Plan(410, "revoked", b"Link revoked\n", link_id)
        if record is not None and record.used_up and (method != "GET" or range_header is None):
            # Only a Range GET may still be served: as the continuation of the download that took the last unit.
            return _Plan(410, "used_up", b"Download limit reached\n", link_id)
        try:
            real, relative, status = stat_under_real_root(self.config.root, link.path)
        except (UnsafePath, OSError):
            return _Plan(404, "missing", b"File not found\n", link_id)
        if not stat.S_ISREG(status.st_mode):
            return _Plan(404, "missing", b"File not found\n", link_id)
        size = status.st_size
        etag = f'"{status.st_mtime_ns:x}-{size:x}"'
        accel = bool(self.config.accel_location)
        # Under X-Accel nginx writes Last-Modified itself: the date is only formatted when something reads it.
        last_modified = formatdate(status.st_mtime, usegmt=True) if not accel or if_range is not None else ""
        wanted = parse_ranges(range_header, size)
        # Under X-Accel nginx checks If-Range itself, against its own validators only ("<mtime hex>-<size hex>",
        # Last-Modified): the hub's ETag would send the client the whole file.
        validators = (last_modified, *_nginx_etag(accel, status)) if accel else (etag, last_modified)
        if if_range is not None and if_range not in validators:
            wanted = None  # the file changed since the client's first part: send it all again
        nginx_bytes = None
        if accel and wanted and wanted != UNSATISFIABLE:
            # What nginx will hand out is what counts: it sends overlapping ranges as asked, and the whole file
            # when they add up to more than it or the header is not exactly "bytes=…".
            nginx_bytes = nginx_range_bytes(range_header, size)
            if nginx_bytes is None:
                wanted = None
        common = [
            (b"accept-ranges", b"bytes"),
            (b"etag", etag.encode("ascii")),
            (b"cache-control", b"private, no-transform"),
            (b"x-content-type-options", b"nosniff"),
        ]
        if not accel:
            common.insert(2, (b"last-modified", last_modified.encode("ascii")))
        if wanted == UNSATISFIABLE:
            return _Plan(
                416,
                "unsatisfiable",
                b"Range not satisfiable\n",
                link_id,
                headers=[(b"content-range", f"bytes */{size}".encode("ascii"))],
            )
        first, last = wanted[0] if wanted else (0, size - 1)
        length = last - first + 1 if size else 0
        file_bytes = sum(b - a + 1 for a, b in wanted) if wanted else size
        if nginx_bytes is not None:
            file_bytes = nginx_bytes
        # A GET that includes byte 0 starts a download; HEAD never counts. A capped link's Range that skips byte 0
        # is a continuation only of this client's recent download with bytes left in its budget (twice the file),
        # else it starts one too: without that, `bytes=1-` again and again would fetch a capped file for ever.
        count_pending = False
        if method == "GET" and record is not None:
            if record.capped:
                ip, user_agent = client
                counted = dict(record=record, ip=ip, user_agent=user_agent, bytes_planned=file_bytes, now=now)
                resumed = first > 0 and link_download_resume(
                    **counted, file_size=size, window=self.config.resume_window
                )
                if not resumed:
                    started = link_download_start(**counted)
                    link_records.forget(link)  # its count changed: the next fetch reads it afresh
                    if not started:
                        return _Plan(410, "used_up", b"Download limit reached\n", link_id)
            elif first == 0:
                count_pending = True
        content_type = _content_type(link.path)
        plan = _Plan(
            206 if wanted else 200,
            "partial" if wanted else "served",
            b"",
            link_id,
            count_pending,
            real,
            size,
            first,
            length,
            relative=relative,
            file_bytes=file_bytes,
        )
        if wanted and len(wanted) > 1:
            # Parts apart from each other: one multipart/byteranges answer (RFC 9110 §14.6), at most 16 parts.
            boundary = secrets.token_hex(16).encode("ascii")
            plan.parts, plan.length = multipart_parts(wanted, size=size, content_type=content_type, boundary=boundary)
            plan.ranges = ",".join(f"{first}-{last}" for first, last in wanted) + f"/{size}"
            content_type = b"multipart/byteranges; boundary=" + boundary
        plan.headers = [
            (b"content-type", content_type),
            (b"content-length", str(plan.length).encode("ascii")),
            (b"content-disposition", content_disposition(link.path)),
            *common,
        ]
        if wanted and not plan.parts:
            plan.headers.append((b"content-range", f"bytes {first}-{last}/{size}".encode("ascii")))
        if method == "GET" and 0 < plan.length <= self.config.inline_size and not accel:
            with open(real, "rb") as handle:
                plan.body = b"".join(_read_parts(handle, plan.parts or [(first, length)]))
        return plan

    async def _stream(self, receive, send, plan: _Plan) -> int:
        """Send the answer's file slices (and a multipart answer's framing) a chunk at a time; stop early if the
        client goes. Returns how many of the file's bytes went out."""
        loop = asyncio.get_running_loop()
        disconnected = asyncio.Event()

        async def watch_disconnect() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    disconnected.set()
                    return

        watcher = asyncio.ensure_future(watch_disconnect())
        sent = 0
        fd = await loop.run_in_executor(self.executor, os.open, plan.file, os.O_RDONLY)
        try:
            shrank = False
            for part in plan.parts or [(plan.first, plan.length)]:
                if disconnected.is_set() or shrank:
                    break
                if isinstance(part, bytes):
                    await send({"type": "http.response.body", "body": part, "more_body": True})
                    continue
                offset, remaining = part
                while remaining > 0 and not disconnected.is_set():
                    chunk = await loop.run_in_executor(
                        self.executor, os.pread, fd, min(self.config.chunk_size, remaining), offset
                    )
                    if not chunk:
                        shrank = True  # the file shrank under us; the client sees a short body, never foreign bytes
                        break
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    sent += len(chunk)
                    offset += len(chunk)
                    remaining -= len(chunk)
            if not disconnected.is_set():
                await send({"type": "http.response.body", "body": b""})
        finally:
            watcher.cancel()
            os.close(fd)
        return sent

    def _client_ip(self, scope, headers) -> str | None:
        # The server's own record of the peer, never a header: behind nginx, uvicorn has already put the address
        # nginx saw here, trusting X-Forwarded-For from nginx's address only (an X-Real-IP could come from anyone).
        client = scope.get("client")
        return client[0] if client else None


def _nginx_etag(accel: bool, status: os.stat_result) -> tuple[str, ...]:
    return (f'"{int(status.st_mtime):x}-{status.st_size:x}"',) if accel else ()


def _read_parts(handle, parts) -> list[bytes]:
    """A small answer's body: literal multipart framing as it is, file slices read from ``handle``."""
    pieces = []
    for part in parts:
        if isinstance(part, bytes):
            pieces.append(part)
        else:
            offset, length = part
            handle.seek(offset)
            pieces.append(handle.read(length))
    return pieces


async def _answer_lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _headers(scope) -> dict[bytes, bytes]:
    """Request headers by lower-case name (the first of repeated ones), over-long values cut."""
    found: dict[bytes, bytes] = {}
    for name, value in scope.get("headers", ()):
        found.setdefault(name.lower(), value[:_MAX_HEADER_VALUE])
    return found


async def _text(send, status: int, body: bytes, method: str, extra=()) -> None:
    headers = [*_TEXT, (b"content-length", str(len(body)).encode("ascii")), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


def downloads_router(fallback, app: DownloadApp | None = None):
    """An ASGI app sending download requests to ``app`` (built from settings) and everything else to ``fallback``."""
    app = app or DownloadApp(config_from_settings(), journal=audit.journal_for_settings())

    async def route(scope, receive, send) -> None:
        if app.handles(scope):
            await app(scope, receive, send)
        else:
            await fallback(scope, receive, send)

    route.download_app = app
    return route
